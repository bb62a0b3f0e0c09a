from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dataclasses import replace

from alnm_core.config import TrainConfig
from alnm_core.gradcam import gradcam
from alnm_core.models import WeightsUnavailable, build_model, load_network
from alnm_core.roi import SequenceCrops
from alnm_core.training import TrainingError, UnitFiles, aggregate, split_crops, train_unit


def _files(d):
    return UnitFiles(d / "checkpoint.pt", d / "last.pt", d / "history.csv")


def train_sequence(crops, splits, cfg, out_dir, *, seed, **kw):
    """train_unit writing into one folder (as a run's unit folder)."""
    return train_unit(crops, splits, cfg, _files(out_dir), seed=seed, **kw)


def _toy(n_pat=24, per=2, size=32, seed=0, nan=False):
    """Crops whose label is a bright ring: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    ids = [f"T{i:03d}" for i in range(n_pat)]
    labels = np.array([i % 2 for i in range(n_pat)])
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    crops, pid, sl, area = [], [], [], []
    for p, y in zip(ids, labels):
        for k in range(per):
            img = 0.3 + 0.1 * rng.random((size, size))
            img[r < 6] = 0.5
            if y:
                img[(r >= 6) & (r < 9)] = 0.9
            crops.append(img)
            pid.append(p)
            sl.append(k)
            area.append(100.0 + k)
    crops = np.array(crops, np.float32)
    if nan:
        crops[:] = np.nan
    sc = SequenceCrops("T2WI", crops, np.array(pid), np.array(sl), np.zeros((len(pid), 4)), np.array(area),
                       np.ones((len(pid), 3)), np.zeros((len(pid), 2)),
                       pd.DataFrame({"patient_id": ids, "n_crops": per}), [], key=f"toy{seed}")
    n_tr = int(0.6 * n_pat)
    n_va = (n_pat - n_tr) // 2
    split = np.array(["train"] * n_tr + ["val"] * n_va + ["test"] * (n_pat - n_tr - n_va))
    splits = pd.DataFrame({"patient_id": ids, "label": labels, "split": split, "fold": 0})
    return sc, splits


CFG = TrainConfig(arch="resnet18", epochs=2, batch_size=8, lr=1e-3, num_threads=1, device="cpu")


def test_aggregation_mean_max_largest():
    s = pd.DataFrame({"patient_id": ["a", "a", "a", "b"], "split": "test", "label": [1, 1, 1, 0],
                      "prob": [0.2, 0.8, 0.5, 0.3], "area_mm2": [10, 5, 30, 1]})
    assert aggregate(s, "mean").prob.tolist() == pytest.approx([0.5, 0.3])
    assert aggregate(s, "max").prob.tolist() == pytest.approx([0.8, 0.3])
    assert aggregate(s, "largest").prob.tolist() == pytest.approx([0.5, 0.3])
    assert aggregate(s).n_slices.tolist() == [3, 1]
    with pytest.raises(ValueError, match="aggregation"):
        aggregate(s, "median")


@pytest.mark.slow  # several seconds of training or phantom writing: the full suite
def test_same_seed_same_predictions_on_cpu(tmp_path):
    sc, splits = _toy()
    a = train_sequence(sc, splits, CFG, tmp_path / "a", seed=3)
    b = train_sequence(sc, splits, CFG, tmp_path / "b", seed=3)
    np.testing.assert_array_equal(a.slices.prob.to_numpy(), b.slices.prob.to_numpy())
    c = train_sequence(sc, splits, CFG, tmp_path / "c", seed=4)
    assert not np.array_equal(a.slices.prob.to_numpy(), c.slices.prob.to_numpy())
    # every split predicted, test never used for selection (history has val columns only)
    assert set(a.patients.split) == {"train", "val", "test"}
    assert {"train_loss", "train_auc", "val_loss", "val_auc", "seconds", "selected"} <= set(a.history.columns)
    assert a.history.selected.sum() == 1
    best = a.history.loc[a.history.selected, "epoch"].item()
    assert a.history.val_auc[a.history.epoch == best].item() == a.history.val_auc.max()
    last = train_sequence(sc, splits, replace(CFG, epochs=3, selection="last"), tmp_path / "d", seed=3)
    assert last.history.loc[last.history.selected, "epoch"].item() == 3


@pytest.mark.slow  # several seconds of training or phantom writing: the full suite
def test_resume_after_interruption_gives_the_same_result(tmp_path):
    sc, splits = _toy()
    cfg = TrainConfig(**{**CFG.__dict__, "epochs": 3})
    full = train_sequence(sc, splits, cfg, tmp_path / "full", seed=5)
    assert not (tmp_path / "full" / "last.pt").exists()  # removed once finished (disk)
    with pytest.raises(KeyboardInterrupt):
        train_sequence(sc, splits, cfg, tmp_path / "cut", seed=5, stop_after_epoch=1)
    assert (tmp_path / "cut" / "last.pt").is_file()
    resumed = train_sequence(sc, splits, cfg, tmp_path / "cut", seed=5)
    assert resumed.resumed_from == 1
    np.testing.assert_allclose(resumed.slices.prob.to_numpy(), full.slices.prob.to_numpy(), rtol=0, atol=1e-6)
    assert resumed.history.epoch.tolist() == [1, 2, 3]


@pytest.mark.slow  # several seconds of training or phantom writing: the full suite
def test_more_epochs_continue_a_kept_training(tmp_path):
    """Resuming is keyed on the trajectory, not on epochs: 2 + 1 epochs == 3 epochs."""
    sc, splits = _toy()
    three = train_sequence(sc, splits, replace(CFG, epochs=3), tmp_path / "three", seed=2)
    keep = replace(CFG, epochs=2, keep_resume_state=True)
    train_sequence(sc, splits, keep, tmp_path / "grow", seed=2)
    assert (tmp_path / "grow" / "last.pt").is_file()
    grown = train_sequence(sc, splits, replace(keep, epochs=3), tmp_path / "grow", seed=2)
    assert grown.resumed_from == 2 and grown.history.epoch.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(grown.slices.prob.to_numpy(), three.slices.prob.to_numpy())
    # another trajectory (learning rate) does not continue from it
    other = train_sequence(sc, splits, replace(keep, epochs=3, lr=5e-4), tmp_path / "grow", seed=2)
    assert other.resumed_from == 0


@pytest.mark.slow  # several seconds of training or phantom writing: the full suite
def test_learns_the_toy_signal(tmp_path):
    sc, splits = _toy(n_pat=40, per=3)
    cfg = TrainConfig(**{**CFG.__dict__, "epochs": 4})
    r = train_sequence(sc, splits, cfg, tmp_path, seed=0)
    assert r.history.val_auc.max() >= 0.8


def test_refusals(tmp_path):
    sc, splits = _toy()
    one_class = splits.copy()
    one_class.loc[one_class.split == "val", "label"] = 0
    with pytest.raises(TrainingError, match="val split holds only class"):
        split_crops(sc, one_class, torch.device("cpu"))
    with pytest.raises(TrainingError, match="without a role"):
        split_crops(sc, splits.iloc[2:], torch.device("cpu"))
    bad, splits = _toy(nan=True)
    with pytest.raises(TrainingError, match="loss became nan; lower train.lr|loss became nan"):
        train_sequence(bad, splits, CFG, tmp_path, seed=0)


def test_checkpoint_reloads_to_the_same_predictions(tmp_path):
    sc, splits = _toy()
    r = train_sequence(sc, splits, CFG, tmp_path / "m", seed=1)
    pat = r.patients
    assert list(pat.columns) == ["patient_id", "split", "label", "prob", "n_slices"]
    assert len(pat) == 24 and pat.prob.between(0, 1).all()
    assert not [p for p in (tmp_path / "m").iterdir() if "tmp" in p.name]
    model = load_network(CFG, tmp_path / "m" / "checkpoint.pt")
    from alnm_core.training import predict_probs
    x = torch.from_numpy(sc.crops[:, None])
    again = pd.DataFrame({"patient_id": sc.patient_id, "slice_index": sc.slice_index,
                          "again": predict_probs(model, x, 64, torch.device("cpu"))})
    both = r.slices.merge(again, on=["patient_id", "slice_index"])
    assert len(both) == len(sc.crops)
    np.testing.assert_allclose(both.prob, both.again, rtol=0, atol=1e-6)
    x = torch.from_numpy(sc.crops[:4, None])
    heat = gradcam(model, x)
    assert heat.shape == (4, 32, 32) and heat.min() >= 0 and heat.max() <= 1


def test_model_builders_and_weights(tmp_path, monkeypatch):
    for arch in ("resnet18", "resnet34", "resnet50"):
        assert build_model(arch).fc.out_features == 2
    assert build_model("resnet18", in_channels=1).conv1.in_channels == 1
    ref = build_model("resnet18", num_classes=1000)
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    m = build_model("resnet18", weights_path=tmp_path / "w.pth")
    torch.testing.assert_close(m.conv1.weight, ref.conv1.weight)
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        build_model("resnet18", weights_path=tmp_path / "missing.pth")
    # no cached file and no network: the message says what to do
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    import torchvision.models as tvm

    def offline(*a, **k):
        raise OSError("network unreachable")
    monkeypatch.setattr(tvm.ResNet18_Weights.IMAGENET1K_V1.__class__, "get_state_dict", offline)
    with pytest.raises(WeightsUnavailable, match="train.weights_path"):
        build_model("resnet18", pretrained=True)


@pytest.mark.slow
def test_the_pinned_instruction_set_reproduces_the_golden_predictions():
    """train.cpu_isa=avx2 pins oneDNN and MKL to AVX2: a tiny training gives the committed
    predictions on any x86-64 machine with AVX2 or newer (same torch, one thread). In a fresh
    process: the libraries read the setting once, at their first use."""
    import json
    import platform
    import subprocess
    import sys

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the golden predictions are for x86-64")
    if "avx2" not in open("/proc/cpuinfo").read():
        pytest.skip("this CPU has no AVX2")
    golden = json.loads((Path(__file__).parent / "golden" / "tiny_training.json").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "MKL_CBWR")}
    out = subprocess.run([sys.executable, str(Path(__file__).parent / "golden" / "tiny_training.py"), "avx2"],
                         capture_output=True, text=True, env=env, timeout=600, check=True).stdout.split()
    assert out[0] == golden["sha256"], (out, golden)
