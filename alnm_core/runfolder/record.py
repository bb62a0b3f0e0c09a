"""``run.json``: the run's record of provenance and of every step that ran.

This module is the only writer of ``run.json`` (every other module calls the functions here).
It holds the resolved configuration, the seed, the git commit, package versions, the device and
timings; for each step the key of its inputs and what the key was made of (the configuration
values it read, its upstream steps' keys, the digest of the cohort files it read, its version:
``alnm status`` names what changed), its outputs, how long it took and what it reports
(exclusions, per-unit training records, ensemble weights); and each notebook's state. Updates
are read-modify-write under an advisory file lock and replace the file atomically.

Example:
    >>> info = read(Path("reports/demo"))          # doctest: +SKIP
    >>> info["steps"]["fuse"]["seconds"]           # doctest: +SKIP
    0.41
"""
from __future__ import annotations

import fcntl
import json
import os
import platform
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..config import StudyConfig, config_from_dict
from ..storage import atomic_write_text
from .paths import RunPaths


class RunRecordMissing(FileNotFoundError):
    """A folder without ``run.json``: not a run (yet)."""


def git_commit(start: Path | None = None) -> str:
    """The git commit of the code (``unknown`` outside a repository), ``+dirty`` if modified."""
    where = start or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=where, capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


PACKAGES = ("alnm", "numpy", "scipy", "pandas", "statsmodels", "scikit-learn", "torch",
            "torchvision", "pydicom", "SimpleITK", "papermill", "jupytext", "nbconvert",
            "matplotlib")


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages whose behaviour shapes the numbers."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_info() -> dict[str, Any]:
    """The compute device a run would use."""
    info: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(),
                            "cpu_count": os.cpu_count()}
    try:
        import torch

        info["cpu_threads"] = torch.get_num_threads()
        info["cuda"] = bool(torch.cuda.is_available())
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        info["cuda"] = False
    return info


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


@contextmanager
def _locked(paths: RunPaths) -> Iterator[None]:
    """Serialise read-modify-write of run.json between processes (advisory flock)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.root / ".run.json.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write(paths: RunPaths, data: dict[str, Any]) -> None:
    atomic_write_text(paths.run_json, json.dumps(data, indent=2, default=str), what="run.json")


def exists(run_dir: str | Path) -> bool:
    return (Path(run_dir) / "run.json").is_file()


def read(run_dir: str | Path) -> dict[str, Any]:
    """The record of a run.

    Raises:
        RunRecordMissing: no ``run.json`` in ``run_dir``.
    """
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise RunRecordMissing(f"{path} not found: run `alnm run` (or `alnm demo`) first, "
                               "or set run_dir to an existing run folder")
    return json.loads(path.read_text())


def config(run_dir: str | Path) -> StudyConfig:
    """The resolved StudyConfig stored in a run's ``run.json``."""
    return config_from_dict(read(run_dir)["config"])


def create(paths: RunPaths, cfg: StudyConfig, *, cohort_dir: Path, n_patients: int,
           extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start the record of a run (or refresh provenance of a resumed one, keeping its steps)."""
    with _locked(paths):
        old = json.loads(paths.run_json.read_text()) if paths.run_json.is_file() else {}
        data = {
            "run_name": paths.root.name,
            "created": old.get("created", now()),
            "updated": now(),
            "status": "running",
            "cohort": str(cohort_dir),
            "n_patients": n_patients,
            "seed": cfg.seed,
            "profile": cfg.profile,
            "config": cfg.to_dict(),
            "git_commit": git_commit(),
            "versions": package_versions(),
            "device": device_info(),
            "steps": old.get("steps", {}),
            "notebooks": old.get("notebooks", {}),
            "timings_s": old.get("timings_s", {}),
            **(extra or {}),
        }
        _write(paths, data)
    return data


def _update(run_dir: str | Path | RunPaths, **changes: Any) -> dict[str, Any]:
    """Merge top-level keys into ``run.json`` (dict values are merged one level deep)."""
    paths = run_dir if isinstance(run_dir, RunPaths) else RunPaths(Path(run_dir))
    with _locked(paths):
        data = read(paths.root)
        for k, v in changes.items():
            if isinstance(v, dict) and isinstance(data.get(k), dict):
                data[k] = {**data[k], **v}
            else:
                data[k] = v
        data["updated"] = now()
        _write(paths, data)
    return data


def step_state(paths: RunPaths, name: str) -> dict[str, Any] | None:
    """What ``run.json`` says of a step: ``key``, ``outputs``, ``seconds``, ``finished``."""
    if not paths.run_json.is_file():
        return None
    return read(paths.root).get("steps", {}).get(name)


def finish_step(paths: RunPaths, name: str, *, key: str, outputs: list[Path], seconds: float,
                inputs: dict[str, Any] | None = None, report: dict[str, Any] | None = None) -> None:
    """Record that a step ran with inputs ``key`` and wrote ``outputs``.

    Args:
        inputs: what the key was made of (``config``, ``upstream``, ``files``, ``version``),
            so that a later status can name what changed.
        report: what the step says about its work (exclusions, warnings, per-unit records...).
    """
    rel = [str(p.relative_to(paths.root)) for p in outputs]
    _update(paths, steps={name: {"key": key, "outputs": rel, "seconds": round(seconds, 3),
                                 "finished": now(), "inputs": inputs or {}, **(report or {})}})


def finish_notebook(paths: RunPaths, name: str, *, key: str | None, status: str, error: str,
                    seconds: float) -> None:
    """Record a notebook's execution (``status``: ok or failed)."""
    _update(paths, notebooks={name: {"key": key, "status": status, "error": error,
                                     "seconds": round(seconds, 2), "finished": now()}})


def set_status(paths: RunPaths, status: str, *, total_seconds: float | None = None) -> None:
    """The run's status (running, ok, failed, incomplete) and its total time."""
    extra = {} if total_seconds is None else {"timings_s": {"total": round(total_seconds, 2)}}
    _update(paths, status=status, **extra)


def exclusions(info: dict[str, Any]) -> list[dict[str, Any]]:
    """Patients left out by an ROI step (``patient_id, sequence, reason, file``), every sequence."""
    return [e for name, st in info.get("steps", {}).items() if name.startswith("roi:")
            for e in st.get("exclusions", [])]


def roi_warnings(info: dict[str, Any]) -> list[dict[str, Any]]:
    """Warnings of the ROI steps (``patient_id, sequence, warning``)."""
    return [w for name, st in info.get("steps", {}).items() if name.startswith("roi:")
            for w in st.get("warnings", [])]


def radiomics_exclusions(info: dict[str, Any]) -> list[dict[str, Any]]:
    """Patients whose radiomics features could not be computed (imputed), every sequence."""
    return [e for name, st in info.get("steps", {}).items() if name.startswith("radiomics_features:")
            for e in st.get("exclusions", [])]


def forget_step(paths: RunPaths, name: str) -> None:
    """Drop a step's record (its outputs are stale)."""
    with _locked(paths):
        data = read(paths.root)
        data.get("steps", {}).pop(name, None)
        _write(paths, data)
