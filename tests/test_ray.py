"""The training grid on Ray (``run.executor=ray``): the same predictions as the local executor,
a killed worker retried and resumed, a unit that fails for good stopping the run with its name,
units packed by their resources on a cluster it joins, bad settings refused, and no Ray process
left behind.

Faults are real: the test cluster's workers load ``tests/faults/sitecustomize.py``, which makes a
chosen unit's worker kill itself with SIGKILL after an epoch (no mock of Ray, and no test hook in
the package). One Ray cluster serves the module. Ray is an optional extra; these tests skip
without it (``make install`` installs it, so CI runs them).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from alnm_core.cli import main
from alnm_core.config import resolve_config
from alnm_core.run import executor as X
from alnm_core.runfolder.paths import RunPaths
from conftest import link_copy, run_steps

pytestmark = pytest.mark.slow
FAULTS = Path(__file__).parent / "faults"
T2 = "slice_vote_T2WI"

# Ray's token authentication: the Ray instances these tests start and their drivers share one
# token (set before Ray is imported, which reads it once); nothing is written to ~/.ray
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", os.urandom(16).hex())

#: one sequence, 2 folds, 2 epochs, one crop per patient: 2 units of a few seconds
TINY = ["sequences=[T2WI]", "train.epochs=2", "roi.slices=largest", "stats.bootstrap_n=100"]


def _ray_processes(temp_dir: str) -> list[str]:
    """Command lines of the processes of the Ray instance whose folder is ``temp_dir``."""
    import psutil

    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
        except psutil.Error:
            continue
        if temp_dir in cmd and p.info["pid"] != os.getpid():
            out.append(cmd[:160])
    return out


@pytest.fixture(scope="module")
def prepared(smoke_cohort, tmp_path_factory):
    """A run folder up to the crops, and the same grid trained by the local executor."""
    cfg = resolve_config("smoke", overrides=TINY)
    base = RunPaths(tmp_path_factory.mktemp("ray") / "base")
    run_steps(base, cfg, ["prepare", "roi:T2WI"], cohort=smoke_cohort)
    local = RunPaths(base.root.parent / "local")
    shutil.copytree(base.root, local.root)
    t0 = time.time()
    run_steps(local, cfg, ["train:T2WI"])
    print(f"\nlocal grid of 2 units: {time.time() - t0:.1f} s")
    return base, local, cfg


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A one-node cluster started with ``ray start`` (2 CPUs, 1 logical GPU) that the tests join
    with ``run.ray_address`` (the one Ray start of the module). Its workers load the fault
    injector (``tests/faults``); a test writes the fault file to choose whose worker dies. Ended
    by process id afterwards (never ``ray stop``: it would end every Ray on the machine)."""
    pytest.importorskip("ray")
    faults = tmp_path_factory.mktemp("faults") / "faults.json"
    faults.write_text("{}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = f"/tmp/alnm-ray-t{os.getpid()}"
    env = {**os.environ, "RAY_memory_monitor_refresh_ms": "0", "ALNM_FAULTS": str(faults),
           "PYTHONPATH": os.pathsep.join([str(FAULTS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    subprocess.run([str(Path(sys.executable).with_name("ray")), "start", "--head", f"--port={port}",
                    "--node-ip-address=127.0.0.1", "--num-cpus=2", "--num-gpus=1",
                    "--include-dashboard=false", "--object-store-memory=100000000",
                    f"--temp-dir={temp}", "--disable-usage-stats"],
                   env=env, check=True, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}", faults
    finally:
        X._reap(temp)
        shutil.rmtree(temp, ignore_errors=True)
        assert not _ray_processes(temp)


def test_ray_grid_equals_local_and_survives_a_killed_worker(prepared, cluster, tmp_path, monkeypatch):
    base, local, cfg = prepared
    address, faults = cluster
    marker = tmp_path / "killed-once"
    faults.write_text(json.dumps({"unit": f"{T2} r0-f1", "after_epoch": 1, "once": str(marker)}))
    run = RunPaths(tmp_path / "ray")
    shutil.copytree(base.root, run.root)
    cfg = resolve_config("smoke", overrides=TINY + ["run.executor=ray", f"run.ray_address={address}",
                                                   "run.max_retries=2"])
    ex = X.for_config(cfg, run_dir=run.root)
    lines: list[str] = []
    t0 = time.time()
    from alnm_core.run.registry import runner_for

    runner_for(run, cfg, executor=ex, progress=lines.append).get("train:T2WI")
    print(f"\nray grid of 3 units with one killed worker: {time.time() - t0:.1f} s {ex.timings}")
    assert marker.is_file(), "the worker was not killed"
    info = pd.read_json(run.unit_record(T2, "r0-f1"), typ="series")
    assert info["resumed_from_epoch"] == 1 and info["pid"] != os.getpid()
    # the same predictions as the uninterrupted local grid, whatever order the units finished in
    for f in (run.predictions(T2), run.unit_patient_predictions(T2)):
        a = pd.read_csv(local.root / f.relative_to(run.root))
        b = pd.read_csv(f)
        pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-6, rtol=0)
    assert any("resumed after epoch 1" in s for s in lines) and any("3/3 done" in s for s in lines)  # 2 folds + final
    assert not run.resume_state(T2, "r0-f1").exists()  # finished: removed again
    # a second run finds every unit finished: no Ray at all
    monkeypatch.setattr(X.RayExecutor, "_start", lambda *a: pytest.fail("Ray started for nothing"))
    again = RunPaths(link_copy(run.root, tmp_path / "again"))
    from alnm_core.runfolder import record

    record.forget_step(again, "train_units")
    runner_for(again, cfg, executor=ex).get("train:T2WI")


def test_joining_a_cluster_packs_units_by_their_resources(cluster, tmp_path):
    """Fractions pack units on the (logical) GPU, and the scheduler never runs more at once than
    the resources allow."""
    address, _ = cluster

    def most_at_once(spans):
        return max(sum(1 for a, b in spans if a <= t < b) for t, _ in spans)

    at_once = {}
    for gpus, n in ((0.25, 4), (0.5, 4)):  # room for 4, then 2 rounds of 2
        # each unit says it started, waits (at most 20 s) until as many units have started as the
        # resources allow, then works 1 s: a busy machine that starts Ray's extra workers slowly
        # cannot hide the packing, and a scheduler that allows more still shows more at once
        room, flags = int(1 / gpus), tmp_path / f"started-{gpus}"
        flags.mkdir()

        def work(unit, progress, flags=str(flags), room=room):  # sent by value to the workers
            import pathlib
            import time as t

            start = t.time()
            pathlib.Path(flags, str(unit)).touch()
            while len(list(pathlib.Path(flags).iterdir())) < room and t.time() - start < 20:
                t.sleep(0.05)
            t.sleep(1.0)
            return start, t.time()

        cfg = resolve_config("smoke", overrides=["run.executor=ray", f"run.ray_address={address}",
                                                 "run.cpus_per_task=0.5", f"run.gpus_per_task={gpus}"])
        at_once[gpus] = most_at_once(X.for_config(cfg).run(work, list(range(n))))
    print(f"\nunits at once by GPUs per unit: {at_once}")
    assert 2 < at_once[0.25] <= 4 and at_once[0.5] <= 2


def test_a_unit_that_fails_for_good_stops_the_run(prepared, cluster, smoke_cohort, tmp_path, capsys, monkeypatch):
    """``alnm run`` on Ray, a unit whose worker dies after every epoch: retried once, then exit
    code 1 naming the step, the unit and the worker's error; no hang. (The notebooks are left out
    of this run: papermill is tested elsewhere, and seconds count.)"""
    from alnm_core.run import pipeline

    address, faults = cluster
    faults.write_text(json.dumps({"unit": f"{T2} r0-f0", "after_epoch": 1}))
    monkeypatch.setattr(pipeline._Runner, "notebook", lambda self, *a: None)
    run = link_copy(prepared[0].root, tmp_path / "r")
    args = ["run", "--cohort", str(smoke_cohort),
            "--profile", "smoke", "--out", str(tmp_path), "--name", "r"]
    for s in TINY + ["run.executor=ray", f"run.ray_address={address}", "run.max_retries=1",
                     "run.cpus_per_task=2"]:
        args += ["--set", s]
    t0 = time.time()
    code = main(args)
    err = capsys.readouterr().err
    print(f"\nalnm run failing on Ray: {time.time() - t0:.1f} s")
    faults.write_text("{}")
    assert code == 1, err[-2000:]
    assert "step train_units failed" in err and "sequence T2WI, repeat 0, fold 0" in err
    assert "its worker died 2 time(s), run.max_retries=1 (WorkerCrashedError" in err
    assert "Traceback" not in err
    # the unit that died kept its resume state for the next attempt
    assert RunPaths(run).resume_state(T2, "r0-f0").is_file()


@pytest.mark.parametrize("setting, fragment", [
    ("run.executor=foo", "run.executor: 'foo' is not one of"),
    ("run.gpus_per_task=-1", "run.gpus_per_task: must be >= 0"),
    ("run.cpus_per_task=0", "run.cpus_per_task: must be > 0"),
    ("run.ray_address=nowhere", "run.ray_address"),
])
def test_bad_run_settings_are_one_message(setting, fragment, tmp_path, capsys):
    assert main(["run", "--cohort", str(tmp_path), "--out", str(tmp_path), "--set", setting]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_without_ray_the_error_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(X, "ray_available", lambda: False)
    code = main(["demo", "--profile", "smoke", "--out", str(tmp_path), "--data", str(tmp_path),
                 "--set", "run.executor=ray"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'alnm[ray]'" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # refused before the phantom or a run folder
    # the local executor needs no Ray
    assert isinstance(X.for_config(resolve_config("smoke")), X.LocalExecutor)
