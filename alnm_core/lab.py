"""JupyterLab for exploring and teaching: the project's kernel, notebooks that open as notebooks.

``alnm lab`` (and ``make lab``) registers this interpreter as the Jupyter kernel ``alnm`` in the
environment (``sys.prefix``; the same name the notebooks' metadata and papermill use, so a
machine with several environments never picks another one), tells JupyterLab to open the
jupytext ``.py`` notebooks as notebooks with one click, and starts JupyterLab on the notebooks.

A notebook opened in Lab reads its ``run_dir`` parameter (edit the parameters cell, e.g.
``run_dir = "../reports/demo"`` after ``make demo``) and ``interactive = True`` shows the
ipywidgets viewers (:mod:`alnm_core.report.widgets`).

Example::

    >>> from alnm_core.lab import kernel_spec_dict
    >>> kernel_spec_dict()["display_name"]
    'Python (alnm)'
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .run.pipeline import KERNEL_DISPLAY_NAME, KERNEL_NAME, notebook_dir

#: JupyterLab setting: open jupytext text notebooks (.py) as notebooks with one click
LAB_OVERRIDES = {"@jupyterlab/docmanager-extension:plugin": {
    "defaultViewers": {"python": "Jupytext Notebook"}},
    # no "official Jupyter news?" prompt over the notebooks (it would fetch from the internet)
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


def kernel_spec_dict(python: str | None = None) -> dict:
    """The ``kernel.json`` of the ``alnm`` kernel for an interpreter (default: this one)."""
    return {"argv": [python or sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": KERNEL_DISPLAY_NAME, "language": "python", "metadata": {"debugger": True}}


def register_kernel(prefix: str | Path | None = None) -> Path:
    """Write the ``alnm`` kernel spec under ``<prefix>/share/jupyter/kernels/alnm`` (default:
    this environment) and return its folder. Idempotent."""
    kdir = Path(prefix or sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME
    kdir.mkdir(parents=True, exist_ok=True)
    (kdir / "kernel.json").write_text(json.dumps(kernel_spec_dict(), indent=1))
    return kdir


def write_lab_settings(prefix: str | Path | None = None) -> Path:
    """Merge :data:`LAB_OVERRIDES` into the environment's JupyterLab ``overrides.json``."""
    path = Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.is_file() else {}
    for plugin, values in LAB_OVERRIDES.items():
        current.setdefault(plugin, {}).update(values)
    path.write_text(json.dumps(current, indent=1))
    return path


def checkpoint_dir() -> Path:
    """Where JupyterLab keeps the checkpoints of the notebooks it opens (``$ALNM_CACHE`` or
    ``~/.cache/alnm``, then ``lab-checkpoints``): not ``.ipynb_checkpoints`` in the package."""
    return Path(os.environ.get("ALNM_CACHE", Path.home() / ".cache" / "alnm")) / "lab-checkpoints"


def lab_command(root: Path, *, port: int | None = None, token: str | None = None,
                open_browser: bool = True) -> list[str]:
    """The ``jupyter lab`` command line serving ``root``."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}",
           "--ServerApp.ip=127.0.0.1",
           # jupytext's contents manager, opening notebooks as unmodified (alnm_core.lab_contents)
           "--ServerApp.contents_manager_class=alnm_core.lab_contents.ContentsManager",
           # Lab checkpoints every file it opens: kept in the cache, never beside the sources
           f"--FileCheckpoints.checkpoint_dir={checkpoint_dir()}"]
    if port:
        cmd.append(f"--ServerApp.port={port}")
    if token is not None:
        cmd.append(f"--IdentityProvider.token={token}")
    if not open_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers often run as root
        cmd.append("--allow-root")
    return cmd


def launch(root: str | Path | None = None, *, port: int | None = None,
           open_browser: bool = True) -> int:
    """Register the kernel and the Lab settings, then run JupyterLab on ``root`` (default: the
    repository's ``notebooks/`` when run from a checkout, else the package's notebooks)."""
    register_kernel()
    write_lab_settings()
    if root is None:
        root = Path("notebooks") if Path("notebooks").is_dir() else notebook_dir()
    env = dict(os.environ)
    return subprocess.call(lab_command(Path(root).resolve(), port=port, open_browser=open_browser),
                           env=env)
