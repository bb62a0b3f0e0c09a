"""The run folder: paths, ``run.json`` (provenance) and reading artifacts back.

One run = one folder ``reports/<run_name>/`` (layout in DESIGN.md). Notebooks pass results to
each other only through the files listed here.
"""
from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import StudyConfig, config_from_dict


@dataclass(frozen=True)
class RunPaths:
    """Every path of a run folder."""

    root: Path

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def splits(self) -> Path:
        return self.artifacts / "splits.csv"

    @property
    def table1(self) -> Path:
        return self.artifacts / "table1.csv"

    def roi(self, seq: str) -> Path:
        return self.artifacts / "roi" / f"{seq}.npz"

    def model_dir(self, seq: str) -> Path:
        return self.artifacts / "models" / seq

    def predictions(self, name: str) -> Path:
        return self.artifacts / "predictions" / f"{name}.csv"

    def slice_predictions(self, seq: str) -> Path:
        return self.artifacts / "predictions" / f"{seq}_slices.csv"

    @property
    def table3(self) -> Path:
        return self.artifacts / "table3.csv"

    @property
    def delong(self) -> Path:
        return self.artifacts / "delong.csv"

    def make(self) -> "RunPaths":
        for p in (self.notebooks, self.artifacts / "roi", self.artifacts / "models",
                  self.artifacts / "predictions"):
            p.mkdir(parents=True, exist_ok=True)
        return self


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
        return "unknown"


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages whose behaviour shapes the numbers."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("alnm", "numpy", "scipy", "pandas", "statsmodels", "scikit-learn", "torch",
                 "torchvision", "pydicom", "SimpleITK", "papermill", "nbconvert", "matplotlib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_info() -> dict[str, Any]:
    """The compute device a run would use."""
    info: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine()}
    try:
        import os

        import torch

        info["cpu_threads"] = torch.get_num_threads()
        info["cpu_count"] = os.cpu_count()
        info["cuda"] = bool(torch.cuda.is_available())
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        info["cuda"] = False
    return info


def write_run_json(paths: RunPaths, data: dict[str, Any]) -> None:
    tmp = paths.run_json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(paths.run_json)


def read_run_json(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `alnm run` (or `alnm demo`) first, "
                                "or set run_dir to an existing run folder")
    return json.loads(path.read_text())


def run_config(run_dir: str | Path) -> StudyConfig:
    """The resolved StudyConfig stored in a run's ``run.json``."""
    return config_from_dict(read_run_json(run_dir)["config"])


def update_run_json(run_dir: str | Path, **changes: Any) -> dict[str, Any]:
    """Merge top-level keys into ``run.json`` (dict values are merged one level deep)."""
    paths = RunPaths(Path(run_dir))
    data = read_run_json(run_dir)
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(data.get(k), dict):
            data[k] = {**data[k], **v}
        else:
            data[k] = v
    data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_run_json(paths, data)
    return data
