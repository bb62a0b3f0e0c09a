"""``tools/gpu_check.sh``, the prepared GPU check: its ``--dry-run`` runs the same path as on the
GPU machine (the SimpleITK stand-in first on PYTHONPATH, the paper profile end to end through
papermill (the units in process), then ``alnm bench --only amp,pack``, which packs units on Ray)
on this CPU at toy sizes;
and the stand-in reads and writes what the real SimpleITK does."""
from __future__ import annotations

import importlib.util
import json

import pytest
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tools" / "gpu_check.sh"


def test_the_simpleitk_stand_in_matches_simpleitk(tmp_path):
    import SimpleITK as real

    spec = importlib.util.spec_from_file_location("sitk_shim", REPO / "tools/gpu/shim/SimpleITK.py")
    shim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shim)
    a = (np.random.default_rng(0).random((5, 7, 9)) > 0.5).astype(np.uint8)
    th = 0.3
    rot = (np.cos(th), -np.sin(th), 0.0, np.sin(th), np.cos(th), 0.0, 0.0, 0.0, 1.0)
    for i, (w, r) in enumerate(((shim, real), (real, shim))):
        img = w.GetImageFromArray(a)
        img.SetSpacing((0.7, 0.8, 3.0))
        img.SetOrigin((10.0, -20.0, 5.5))
        img.SetDirection(rot)
        w.WriteImage(img, str(tmp_path / f"m{i}.nii.gz"), useCompression=True)
        back = r.ReadImage(str(tmp_path / f"m{i}.nii.gz"))
        assert np.array_equal(r.GetArrayFromImage(back), a)
        np.testing.assert_allclose(back.GetSpacing(), (0.7, 0.8, 3.0), atol=1e-5)
        np.testing.assert_allclose(back.GetOrigin(), (10.0, -20.0, 5.5), atol=1e-4)
        np.testing.assert_allclose(back.GetDirection(), rot, atol=1e-5)


@pytest.mark.slow
def test_gpu_check_dry_run(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_OUT": str(tmp_path)}
    t0 = time.time()
    p = subprocess.run(["bash", str(SCRIPT), "--dry-run"], env=env, capture_output=True, text=True,
                       timeout=480)
    print(f"\ngpu_check.sh --dry-run: {time.time() - t0:.1f} s")
    log = (tmp_path / "gpu_check.log").read_text() if (tmp_path / "gpu_check.log").is_file() else ""
    assert p.returncode == 0, (p.stderr + log)[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["units"] == 3  # 2 folds + the final refit
    assert set(summary["notebooks"].values()) == {"ok"} and len(summary["notebooks"]) == 6
    assert (tmp_path / "report.html").is_file()
    names = set(summary["bench"])
    assert any(n.startswith("speed-up bf16") for n in names)
    if importlib.util.find_spec("ray"):
        assert any(n.startswith("packing gain") for n in names)


def test_gpu_check_refuses_unknown_arguments():
    p = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "usage" in p.stderr
