"""Run-folder ownership: one run per folder at a time, and no silent overwrite.

* :class:`RunLock` holds ``.alnm-run.lock`` for the run's lifetime: an exclusive ``flock`` on
  the file (released by the kernel if the process dies) plus the holder's process id, host and
  command inside it, so a refusal can name the holder. A lock whose process is gone is stale and
  is taken over.
* :func:`check_reuse` compares the configuration and cohort of a folder's ``run.json`` with the
  ones asked for: the same resumes or reuses; a different one is refused with the keys that
  differ, unless the caller moves the old folder aside (:func:`move_aside`, never a deletion).

Example:
    >>> with RunLock(paths.lock, command="alnm run ..."):   # doctest: +SKIP
    ...     run_study(...)
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any


#: set by the pipeline for the notebook kernels it starts: the run folder it owns (the kernels
#: then run their steps without taking the lock their parent holds)
PIPELINE_ENV = "ALNM_PIPELINE_RUN"


class RunRefused(RuntimeError):
    """A run that must not start (folder in use, or holding a different run)."""


class RunLock:
    """Exclusive ownership of a run folder for the lifetime of a ``with`` block."""

    def __init__(self, path: Path, *, command: str = ""):
        self.path = Path(path)
        self.command = command
        self._fh = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RunRefused` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _describe(_read_holder(self.path))
            fh.close()
            raise RunRefused(f"{self.path.parent} is in use by another run ({holder}); wait for it "
                             "to finish, or choose another --name") from None
        old = _read_holder(self.path)
        if old.get("host") not in (None, socket.gethostname()) and _recent(old):
            # another machine holds it over a shared file system (flock may not reach across)
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
            raise RunRefused(f"{self.path.parent} is in use by a run on another machine "
                             f"({_describe(old)}); remove {self.path.name} if that run is gone")
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "command": self.command}))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _recent(holder: dict[str, Any], hours: float = 48) -> bool:
    try:
        started = time.mktime(time.strptime(holder["started"], "%Y-%m-%dT%H:%M:%S"))
    except (KeyError, ValueError):
        return False
    return time.time() - started < hours * 3600


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    return (f"process {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
            + (f": {holder['command']}" if holder.get("command") else ""))


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configuration mappings.

    Example:
        >>> config_differences({"train": {"epochs": 8}}, {"train": {"epochs": 3}})
        ['train.epochs: 8 -> 3']
    """
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


#: configuration keys that may differ between invocations of one run (how, not what)
EXECUTION_KEYS = ("run.", "run:")


def check_reuse(run_dir: Path, config: dict[str, Any], cohort_dir: Path) -> None:
    """Refuse to run into a folder that holds a different run.

    A folder without ``run.json`` (new, or a run that never started) is fine; one whose
    ``run.json`` has the same resolved configuration and cohort is resumed or reused.

    Raises:
        RunRefused: naming the keys that differ and the ways out.
    """
    rj = Path(run_dir) / "run.json"
    if not rj.is_file():
        if Path(run_dir).is_dir() and any(p.name != ".alnm-run.lock" for p in Path(run_dir).iterdir()):
            raise RunRefused(f"{run_dir} exists and holds files but no run.json: it is not a run "
                             "folder; choose another --name or --out")
        return
    try:
        old = json.loads(rj.read_text())
    except ValueError:
        raise RunRefused(f"{rj} cannot be read; choose another --name, or --overwrite to move "
                         "that folder aside") from None
    # run.* says where the units train (local, Ray), never what they compute: a run started
    # locally may be resumed on a cluster
    diffs = [d for d in config_differences(old.get("config", {}), config)
             if not d.startswith(EXECUTION_KEYS)]
    if str(Path(old.get("cohort", "")).resolve()) != str(Path(cohort_dir).resolve()):
        diffs.append(f"cohort: {old.get('cohort')} -> {Path(cohort_dir).resolve()}")
    if diffs:
        raise RunRefused(
            f"{run_dir} holds a run with other settings ({len(diffs)} difference(s): "
            + "; ".join(diffs[:8]) + ("; ..." if len(diffs) > 8 else "")
            + "). Nothing was changed. Give a new --name, or add --overwrite to move the old run "
            "aside (it is kept, renamed) and start afresh")


def move_aside(run_dir: Path) -> Path:
    """Rename a run folder to ``<name>.old-<timestamp>`` (never deletes it); returns the new path."""
    run_dir = Path(run_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{n}")
    run_dir.rename(target)
    return target


def new_run_folder(out: Path, base: str) -> Path:
    """Create a fresh, never-used folder ``out/base`` (``base-2``, ``base-3``... if taken)."""
    out.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        cand = out / (base if n == 1 else f"{base}-{n}")
        try:
            cand.mkdir()
            return cand
        except FileExistsError:
            n += 1
