"""Shared fixtures: small phantom cohorts generated on the fly (never downloaded), and one smoke
run of the whole pipeline that many tests read."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.pop("MPLBACKEND", None)
# keep the ROI cache and phantom data of the test session out of the user's ~/.cache (kernels
# inherit this)
_TMP = Path(tempfile.mkdtemp(prefix="alnm-test-"))
os.environ["ALNM_CACHE"] = str(_TMP / "cache")
os.environ["ALNM_DATA"] = str(_TMP / "data")

# oneDNN and MKL read their instruction set once, at their first use in a process: pin it for
# the test process as train.cpu_isa's default does for a training (whichever test convolves
# first), so that this process computes what a fresh Ray worker computes
from alnm_core.numerics import pin_cpu_isa  # noqa: E402

pin_cpu_isa("avx2")

from alnm_core.config import PhantomConfig, resolve_config  # noqa: E402
from alnm_core.phantom import write_phantom  # noqa: E402
from alnm_core.runfolder.paths import RunPaths  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> Path:
    """12 patients at small matrices: for reading, validation and ROI tests."""
    out = tmp_path_factory.mktemp("tiny") / "cohort"
    return write_phantom(out, PhantomConfig(n_patients=12, seed=5, matrix_scale=0.2))


@pytest.fixture
def cohort_copy(tiny_cohort, tmp_path) -> Path:
    """A writable copy of the tiny cohort, for tests that break it."""
    dst = tmp_path / "cohort"
    shutil.copytree(tiny_cohort, dst)
    return dst


@pytest.fixture(scope="session")
def smoke_cfg():
    return resolve_config("smoke")


@pytest.fixture(scope="session")
def smoke_cohort(tmp_path_factory, smoke_cfg) -> Path:
    out = tmp_path_factory.mktemp("smoke") / "cohort"
    return write_phantom(out, smoke_cfg.phantom)


@pytest.fixture(scope="session")
def smoke_run(smoke_cohort, tmp_path_factory) -> RunPaths:
    """The whole pipeline on the smoke profile through the CLI (steps, papermill, report)."""
    from alnm_core.cli import main

    out = tmp_path_factory.mktemp("reports")
    code = main(["run", "--cohort", str(smoke_cohort), "--profile", "smoke", "--out", str(out),
                 "--name", "smoke"])
    assert code == 0
    return RunPaths(out / "smoke")


@pytest.fixture(scope="session")
def study(smoke_cohort, tmp_path_factory):
    """Runs of the study's steps on the smoke cohort (no notebooks), made once per resolved
    configuration and shared by the session: ``paths, cfg = study("train.epochs=1", ...)``.
    Tests that change a run work on a :func:`link_copy`."""
    import json

    made: dict[str, tuple[RunPaths, object]] = {}

    def get(*overrides: str, profile: str = "smoke"):
        cfg = resolve_config(profile, overrides=list(overrides))
        key = json.dumps(cfg.to_dict(), sort_keys=True)
        if key not in made:
            paths = RunPaths(tmp_path_factory.mktemp("study") / "run")
            run_steps(paths, cfg, cohort=smoke_cohort)
            made[key] = (paths, cfg)
        return made[key]

    return get


def link_copy(src: Path, dst: Path) -> Path:
    """A copy of a run folder whose files are hard links (steps replace files atomically, so the
    original is never changed)."""
    shutil.copytree(src, dst, copy_function=os.link)
    return dst


def run_steps(paths: RunPaths, cfg, names=None, *, cohort: Path | None = None, executor=None):
    """Bring the named step instances (default: all) of a run up to date, as the pipeline does
    (no notebooks); ``cohort`` starts the run's record. Returns the runner (its results)."""
    from alnm_core.cohort import load_cohort
    from alnm_core.run.pipeline import start_record
    from alnm_core.run.registry import runner_for

    if cohort is not None:
        start_record(paths, cfg, Path(cohort).resolve(), len(load_cohort(cohort, cfg.sequences)))
    r = runner_for(paths, cfg, executor=executor)
    r.run(names)
    return r


def pytest_unconfigure(config):
    """The session's cache and phantom data go with it (every test session made a new folder)."""
    shutil.rmtree(_TMP, ignore_errors=True)


#: the modules that start Ray: one worker runs them, one Ray instance at a time (two on one
#: small machine compete for ports and cores)
_RAY_MODULES = ("tests/test_ray.py", "tests/test_gpu_check.py", "tests/test_tune.py")


def pytest_itemcollected(item):
    """With pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``): the tests of one module
    share a worker (module fixtures such as the Ray cluster are made once), and so do all the
    readers of the session's smoke run and of the shared ``study`` runs, so that each session
    fixture is computed by one worker, not by each. (Marked as each test is collected: xdist
    reads the groups in its own ``pytest_collection_modifyitems``.)"""
    names = set(getattr(item, "fixturenames", ()))
    module = item.nodeid.split("::")[0]
    group = ("smoke_run" if "smoke_run" in names else "study" if "study" in names
             else "ray" if module in _RAY_MODULES else module)
    item.add_marker(pytest.mark.xdist_group(group))


#: the longest work units first (xdist hands out groups in collection order): the shared study
#: runs, then the end-to-end and Ray modules, so that no long group starts last on one worker
_HEAVY_FIRST = ("ray", "study", "smoke_run", "tests/test_duke_study.py", "tests/test_pipeline.py",
                "tests/test_training.py", "tests/test_markup_end_to_end.py", "tests/test_run_folder.py",
                "tests/test_validation_protocol.py", "tests/test_lab_browser.py", "tests/test_mil.py")


def pytest_collection_modifyitems(config, items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # one process: the files' order

    def rank(item):
        group = next((m.args[0] for m in item.iter_markers("xdist_group")), "")
        return _HEAVY_FIRST.index(group) if group in _HEAVY_FIRST else len(_HEAVY_FIRST)

    items.sort(key=rank)
