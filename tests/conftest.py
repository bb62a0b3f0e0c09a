"""Shared fixtures: small phantom cohorts generated on the fly (never downloaded)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.pop("MPLBACKEND", None)
# keep the ROI cache of the test session out of the user's ~/.cache (kernels inherit this)
_CACHE = Path(__import__("tempfile").mkdtemp(prefix="alnm-test-cache-"))
os.environ["ALNM_CACHE"] = str(_CACHE)

from alnm_core.config import PhantomConfig, resolve_config  # noqa: E402
from alnm_core.phantom import write_phantom  # noqa: E402

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
