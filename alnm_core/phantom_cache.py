"""The cache of generated phantom cohorts (``alnm demo``): one folder per profile, rewritten
only when the phantom's settings or generator version change (``PHANTOM.json``).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

from .config import PhantomConfig
from .phantom import phantom_stamp, write_phantom


def default_data_dir() -> Path:
    """Where generated phantom cohorts are cached: ``$ALNM_DATA``, else the user's cache
    (``$XDG_CACHE_HOME/alnm/data`` or ``~/.cache/alnm/data``); never inside the package."""
    env = os.environ.get("ALNM_DATA")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "alnm" / "data"


def phantom_dir(profile: str, data_dir: str | Path | None = None) -> Path:
    """The cache folder of a profile's phantom cohort (``<data>/phantom-<profile>``)."""
    return Path(data_dir or default_data_dir()) / f"phantom-{profile}"


def ensure_phantom(profile: str, cfg: PhantomConfig, data_dir: str | Path | None = None, *,
                   progress: Callable[[int, int], None] | None = None) -> Path:
    """The profile's phantom cohort, written unless the same settings are already on disk.

    Args:
        profile: names the cache folder.
        cfg: the phantom's settings (a different setting rewrites the folder).
        data_dir: the cache root (default :func:`default_data_dir`).
    """
    out = phantom_dir(profile, data_dir)
    stamp = out / "PHANTOM.json"
    want = phantom_stamp(cfg)
    if stamp.is_file() and json.loads(stamp.read_text()) == want and (out / "cohort.csv").is_file():
        return out
    if out.exists():
        shutil.rmtree(out)  # our own cache folder: rewrite it whole
    write_phantom(out, cfg, progress=progress)  # writes PHANTOM.json
    return out
