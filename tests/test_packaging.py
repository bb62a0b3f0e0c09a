"""The package as users install it, and its layering.

* A real, non-editable install (``pip install .`` into a fresh virtual environment) runs the
  study from any working directory: the notebooks ship as package data and the phantom is
  cached outside the package.
* Lower modules never import higher ones and there are no import cycles (docs/architecture.md).
"""
from __future__ import annotations

import ast
import functools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "alnm_core"

#: layer of each module (docs/architecture.md): a module may import its own layer or lower ones
LAYERS = {
    0: ["config", "config_schema", "storage", "stats", "profiles", "numerics", "textsafe", "search_space"],
    1: ["volume", "dicom", "dicom_attrs", "jpeg_lossless", "imaging", "cohort", "splits", "phantom",
        "runfolder", "crosscheck", "boxes", "inputs", "dicom_header", "phantom_cache"],
    2: ["roi", "models", "aggregation", "radiomics_features", "protocol", "model_registry", "importers"],
    3: ["training", "gradcam", "ensemble", "evaluation", "radiomics_models", "mil", "mil_training",
        "tune_trial", "tune_ray", "tune"],
    4: ["run", "run.executor", "bundle", "report"],
    5: ["run.graph", "run.results", "run.steps_data", "run.steps_train", "run.steps_mil", "run.steps_eval",
        "run.steps_bundle", "run.registry"],
    6: ["run.pipeline", "run.external", "bench_mil"],
    7: ["notebook", "lab", "lab_contents", "bench"],
    8: ["cli"],
}
#: the largest a module may grow (docs/architecture.md: small modules, one idea each)
MAX_LINES = 600


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def _layer(mod: str) -> int | None:
    best = None
    for rank, names in LAYERS.items():
        for n in names:
            if mod == n or mod.startswith(n + "."):
                if best is None or len(n) > best[1]:
                    best = (rank, len(n))
    return None if best is None else best[0]


def _imports(path: Path) -> set[str]:
    """alnm_core modules imported by a file (absolute or relative, at any depth)."""
    mod = _module_name(path)
    pkg_parts = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("alnm_core"):
                target = node.module[len("alnm_core."):] if node.module != "alnm_core" else ""
            else:
                continue
            names = [a.name for a in node.names]
            for n in names:  # "from . import record" imports a module
                cand = f"{target}.{n}" if target else n
                out.add(cand if (PKG / cand.replace(".", "/")).with_suffix(".py").exists()
                        or (PKG / cand.replace(".", "/")).is_dir() else target)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("alnm_core."):
                    out.add(a.name[len("alnm_core."):])
    return {m for m in out if m}


@functools.lru_cache(maxsize=1)
def _graph() -> dict[str, set[str]]:
    files = [p for p in PKG.rglob("*.py") if "notebooks" not in p.parts]
    return {_module_name(p): _imports(p) for p in files}


def test_every_module_has_a_layer():
    missing = sorted(m for m in _graph() if m and _layer(m) is None)
    assert not missing, f"add these modules to LAYERS and docs/architecture.md: {missing}"


def test_lower_modules_never_import_higher_ones():
    bad = []
    for mod, deps in _graph().items():
        if not mod:
            continue
        for d in deps:
            if _layer(d) is not None and _layer(d) > _layer(mod):
                bad.append(f"{mod} (layer {_layer(mod)}) imports {d} (layer {_layer(d)})")
    assert not bad, "\n".join(bad)


def test_no_module_is_too_large():
    big = {m: n for m, n in ((_module_name(p), len(p.read_text().splitlines()))
                            for p in PKG.rglob("*.py") if "notebooks" not in p.parts) if n > MAX_LINES}
    assert not big, f"split these modules by concern (> {MAX_LINES} lines): {big}"


def test_no_import_cycles():
    graph = {m: {d for d in deps if d in _graph()} for m, deps in _graph().items()}
    seen, stack, on_stack, cycles = set(), [], set(), []

    def visit(m):
        seen.add(m)
        stack.append(m)
        on_stack.add(m)
        for d in graph.get(m, ()):
            if d in on_stack:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in seen:
                visit(d)
        stack.pop()
        on_stack.discard(m)

    for m in graph:
        if m not in seen:
            visit(m)
    assert not cycles, cycles


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The package built as a wheel (no network: this environment's setuptools)."""
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-w", str(out), str(REPO)], check=True, capture_output=True, text=True, timeout=300)
    (out / "build.log").write_text(r.stdout + r.stderr)
    return next(out.glob("alnm-*.whl"))


def test_wheel_ships_notebooks_and_profiles(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for stem in ("01_cohort_statistics", "02_roi_cropping", "03_train_sequence",
                 "04_ensemble_fusion", "05_roc_delong", "06_reviewer_crosscheck", "07_external_validation"):
        assert f"alnm_core/notebooks/{stem}.py" in names
    assert {"alnm_core/profiles/smoke.yaml", "alnm_core/profiles/demo.yaml",
            "alnm_core/profiles/paper.yaml"} <= set(names)
    assert "alnm_core/report/templates/model_card.md" in names
    assert not [n for n in names if n.startswith(("tests/", "reports/", "data/"))]
    log = (wheel.parent / "build.log").read_text()
    for warning in ("SetuptoolsDeprecationWarning", "is absent from the `packages` configuration",
                    "License classifiers are deprecated", "project.license` as a TOML table is deprecated"):
        assert warning not in log, warning


@pytest.mark.slow
def test_non_editable_install_runs_the_study_from_any_directory(wheel, smoke_cohort, tmp_path):
    """``pip install`` of the built wheel into a clean venv, then ``alnm demo`` from an
    unrelated folder.

    The venv reuses this environment's third-party packages (torch and friends) through a .pth
    file, so that only the package itself is installed; the editable install of the project is
    not visible there.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    where = subprocess.run([str(py), "-c", "import alnm_core; print(alnm_core.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert where.startswith(str(venv)), where  # the installed copy, not the source tree
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    # the phantom cache (ALNM_DATA) already holds the smoke phantom: `alnm demo` reuses it
    from alnm_core.config import resolve_config
    from alnm_core.phantom import phantom_stamp

    cached = tmp_path / "cache" / "phantom-smoke"
    shutil.copytree(smoke_cohort, cached)
    (cached / "PHANTOM.json").write_text(json.dumps(phantom_stamp(resolve_config("smoke").phantom)))
    stamp = (cached / "cohort.csv").stat().st_mtime_ns
    # nbconvert's templates live in the data folder of the environment that holds nbconvert
    env = {**os.environ, "ALNM_DATA": str(tmp_path / "cache"), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
           "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter")}
    r = subprocess.run([str(venv / "bin" / "alnm"), "demo", "--profile", "smoke", "--out", "out",
                        "--set", "train.epochs=1", "--set", "sequences=[DCE]",
                        "--set", "radiomics.enabled=false"],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads((cwd / "out" / "smoke" / "run.json").read_text())
    assert info["status"] == "ok" and len(info["notebooks"]) == 6  # 01-06, 03 once (DCE)
    assert (cwd / "out" / "smoke" / "model" / "bundle.json").is_file()
    assert (cwd / "out" / "smoke" / "report.html").is_file()
    assert (cached / "cohort.csv").stat().st_mtime_ns == stamp  # the cache was used, not rewritten
    assert not list(Path(where).parent.rglob("phantom-*"))
