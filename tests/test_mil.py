"""Attention MIL (alnm_core.mil, alnm_core.mil_training): pooling over variable bags, the
training unit's contract (determinism, resume, roles, checkpoint), prediction on new crops,
and the attention finding the slices that carry the label."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from alnm_core.config import ConfigError, MilConfig, TrainConfig, resolve_config
from alnm_core.mil import (BagPool, MilNetwork, load_mil_network, make_bags, pack_batches,
                           pad_bags, predict_mil)
from alnm_core.mil_training import mil_trajectory_key, train_mil_unit
from alnm_core.models import trajectory_settings
from alnm_core.roi import SequenceCrops
from alnm_core.stats import auc
from alnm_core.training import TrainingError, UnitFiles


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _files(d):
    return UnitFiles(d / "checkpoint.pt", d / "last.pt", d / "history.csv")


def toy_bags(n_pat=20, size=16, seed=0, k=2, lo=3, hi=7):
    """Patients with 3-6 slices; in a positive patient ``k`` slices at random places carry a
    bright ring (the label), the others look like a negative patient's."""
    rng = np.random.default_rng(seed)
    ids = [f"M{i:03d}" for i in range(n_pat)]
    labels = np.array([i % 2 for i in range(n_pat)])
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    crops, pid, sl, eff = [], [], [], []
    for p, y in zip(ids, labels):
        n = int(rng.integers(lo, hi))
        hot = set(rng.choice(n, size=min(k, n), replace=False).tolist())
        for s in range(n):
            img = 0.3 + 0.2 * rng.random((size, size))
            img[r < size * 0.19] = 0.6
            if y and s in hot:
                img[(r >= size * 0.22) & (r < size * 0.31)] = 0.95
            crops.append(img)
            pid.append(p)
            sl.append(20 - 2 * s)  # descending: bags must sort their slices
            eff.append(bool(y and s in hot))
    n = len(pid)
    sc = SequenceCrops("T2WI", np.array(crops, np.float32), np.array(pid), np.array(sl),
                       np.zeros((n, 4)), np.ones(n), np.ones((n, 3)), np.zeros((n, 2)),
                       pd.DataFrame({"patient_id": ids}), [], key=f"miltoy{seed}-{n_pat}")
    n_tr, n_va = int(0.6 * n_pat), int(0.2 * n_pat)
    role = ["train"] * n_tr + ["val"] * n_va + ["test"] * (n_pat - n_tr - n_va)
    roles = pd.DataFrame({"patient_id": ids, "label": labels, "role": role})
    return sc, roles, pd.DataFrame({"patient_id": pid, "slice_index": sl, "effect": eff})


CFG = TrainConfig(arch="resnet18", epochs=2, batch_size=12, lr=1e-3, device="cpu")
MIL = MilConfig(pooling="gated_attention", max_slices=4)


# ----------------------------------------------------------------------------- pooling
@pytest.mark.parametrize("pooling", ["gated_attention", "attention", "mean", "max"])
def test_pooling_weights_sum_to_one_and_padding_changes_nothing(pooling):
    torch.manual_seed(0)
    pool = BagPool(8, pooling, hidden=4).eval()
    feats = torch.randn(9, 8)
    lengths = torch.tensor([4, 1, 3, 1])
    h, mask = pad_bags(feats, lengths)
    z, w = pool(h, mask)
    assert w.shape == (4, 4) and z.shape == (4, 8)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(4))
    assert (w[~mask] == 0).all() and (w[mask] > 0).any()
    # each bag pooled alone gives the same result as in the padded batch
    start = 0
    for b, n in enumerate(lengths.tolist()):
        hb, mb = pad_bags(feats[start:start + n], torch.tensor([n]))
        zb, wb = pool(hb, mb)
        torch.testing.assert_close(zb[0], z[b])
        torch.testing.assert_close(wb[0], w[b, :n])
        start += n
    if pooling == "mean":
        torch.testing.assert_close(w[0], torch.full((4,), 0.25))
    if pooling == "max":
        torch.testing.assert_close(z[0], feats[:4].max(dim=0).values)


def test_pad_bags_and_pooling_refuse_bad_input():
    with pytest.raises(ValueError, match="do not add up"):
        pad_bags(torch.zeros(3, 2), torch.tensor([2, 2]))
    with pytest.raises(ValueError, match="empty"):
        pad_bags(torch.zeros(2, 2), torch.tensor([2, 0]))
    with pytest.raises(ValueError, match="pooling"):
        BagPool(4, "median")


def test_bags_sort_slices_and_pack_whole_bags():
    b = make_bags(np.array(["b", "a", "b", "a", "c"]), np.array([7, 3, 2, 1, 0]), np.array([1, 0, 1, 0, 0]))
    assert b.patient_id.tolist() == ["b", "a", "c"]
    assert [s.tolist() for s in b.slice_index] == [[2, 7], [1, 3], [0]]
    assert b.label.tolist() == [1, 0, 0] and b.sizes.tolist() == [2, 2, 1]
    with pytest.raises(ValueError, match="patient a: a slice index appears twice"):
        make_bags(np.array(["a", "a"]), np.array([1, 1]))
    with pytest.raises(ValueError, match="patient a: its crops carry different labels"):
        make_bags(np.array(["a", "a"]), np.array([1, 2]), np.array([0, 1]))
    assert pack_batches([2, 0, 1], np.array([3, 4, 1]), 4) == [[2, 0], [1]]
    # bags are never split; a bag larger than the budget is a batch of its own
    assert pack_batches([0, 1, 2], np.array([6, 2, 2]), 4) == [[0], [1, 2]]
    # a last single-crop batch joins the one before (batch norm needs two values)
    assert pack_batches([0, 1], np.array([4, 1]), 4) == [[0, 1]]
    assert pack_batches([0, 1], np.array([1, 1]), 1) == [[0, 1]]


def test_network_shapes_with_variable_bag_sizes():
    net = MilNetwork(CFG, MIL).eval()
    logits, w = net(torch.rand(7, 1, 32, 32), torch.tensor([1, 4, 2]))
    assert logits.shape == (3, 2) and w.shape == (3, 4)
    torch.testing.assert_close(w.sum(1), torch.ones(3))
    assert w[0, 1:].abs().sum() == 0 and w[2, 2:].abs().sum() == 0


# ----------------------------------------------------------------------------- training unit
@pytest.mark.slow  # several seconds of training or phantom writing: the full suite
def test_same_seed_same_result_and_the_contract(tmp_path):
    sc, roles, _ = toy_bags()
    a = train_mil_unit(sc, roles, CFG, MIL, _files(tmp_path / "a"), seed=3)
    b = train_mil_unit(sc, roles, CFG, MIL, _files(tmp_path / "b"), seed=3)
    pd.testing.assert_frame_equal(a.patients, b.patients)
    pd.testing.assert_frame_equal(a.attention, b.attention)
    c = train_mil_unit(sc, roles, CFG, MIL, _files(tmp_path / "c"), seed=4)
    assert not np.array_equal(a.patients.prob.to_numpy(), c.patients.prob.to_numpy())
    # every role predicted, one row per patient, its slice count, the label of the roles table
    assert set(a.patients.split) == {"train", "val", "test"}
    assert sorted(a.patients.patient_id) == sorted(roles.patient_id)
    per = pd.Series(sc.patient_id).value_counts().sort_index()
    got = a.patients.set_index("patient_id").sort_index()
    assert got.n_slices.tolist() == per.tolist()
    assert got.label.tolist() == roles.set_index("patient_id").sort_index().label.tolist()
    assert a.patients.n_slices.nunique() > 1
    # attention over every slice (max_slices bounds training bags only), summing to 1
    assert len(a.attention) == len(sc.crops)
    np.testing.assert_allclose(a.attention.groupby("patient_id").weight.sum(), 1.0, atol=1e-6)
    assert (a.attention.weight >= 0).all()
    # selection on val only (best_val_auc), files written, resume state removed
    h = a.history
    assert {"train_loss", "train_auc", "val_loss", "val_auc", "seconds", "selected"} <= set(h.columns)
    assert h.selected.sum() == 1 and h.val_auc[h.selected].item() == h.val_auc.max()
    assert (tmp_path / "a" / "checkpoint.pt").is_file() and (tmp_path / "a" / "history.csv").is_file()
    assert not (tmp_path / "a" / "last.pt").exists()
    assert a.patients_per_s > 0 and a.slices_per_s > a.patients_per_s
    only = train_mil_unit(sc, roles, replace(CFG, selection="last"), MIL, _files(tmp_path / "d"),
                          seed=3, predict_roles=("test",))
    assert set(only.patients.split) == {"test"} and set(only.attention.split) == {"test"}
    assert only.history.selected.tolist() == [False, True]


@pytest.mark.slow  # several seconds of training or phantom writing: the full suite
def test_resume_after_interruption_gives_the_same_result(tmp_path):
    sc, roles, _ = toy_bags(seed=1)
    cfg = replace(CFG, epochs=3)
    full = train_mil_unit(sc, roles, cfg, MIL, _files(tmp_path / "full"), seed=5)
    with pytest.raises(KeyboardInterrupt):
        train_mil_unit(sc, roles, cfg, MIL, _files(tmp_path / "cut"), seed=5, stop_after_epoch=1)
    assert (tmp_path / "cut" / "last.pt").is_file()
    resumed = train_mil_unit(sc, roles, cfg, MIL, _files(tmp_path / "cut"), seed=5)
    assert resumed.resumed_from == 1 and resumed.history.epoch.tolist() == [1, 2, 3]
    np.testing.assert_allclose(resumed.patients.prob, full.patients.prob, rtol=0, atol=1e-6)
    np.testing.assert_allclose(resumed.attention.weight, full.attention.weight, rtol=0, atol=1e-6)
    # other MIL settings, seed or roles do not continue that resume state; more epochs do
    key = mil_trajectory_key(cfg, MIL, sc, roles, 5)
    assert key == mil_trajectory_key(replace(cfg, epochs=9, models=("attention_mil",)), MIL, sc, roles, 5)
    assert key != mil_trajectory_key(cfg, replace(MIL, pooling="attention"), sc, roles, 5)
    assert key != mil_trajectory_key(cfg, MIL, sc, roles, 6)
    assert key != mil_trajectory_key(cfg, MIL, sc, roles.assign(role="train"), 5)


def test_on_epoch_sees_each_epoch_and_can_stop_the_unit(tmp_path):
    sc, roles, _ = toy_bags(seed=2)
    seen = []

    class Stop(Exception):
        pass

    def hook(row):
        seen.append(row)
        if row["epoch"] == 1:
            raise Stop

    with pytest.raises(Stop):
        train_mil_unit(sc, roles, replace(CFG, epochs=3), MIL, _files(tmp_path), seed=0, on_epoch=hook)
    assert [r["epoch"] for r in seen] == [1] and 0 <= seen[0]["val_auc"] <= 1


def test_checkpoint_reloads_to_the_same_predictions_on_new_crops(tmp_path):
    sc, roles, _ = toy_bags(seed=3)
    res = train_mil_unit(sc, roles, CFG, MIL, _files(tmp_path), seed=0)
    net = load_mil_network(CFG, MIL, tmp_path / "checkpoint.pt")
    test_ids = roles.patient_id[roles.role == "test"].tolist()
    pats, att = predict_mil(net, sc, patient_ids=test_ids)
    want = res.patients[res.patients.split == "test"].reset_index(drop=True)
    assert pats.patient_id.tolist() == want.patient_id.tolist()
    np.testing.assert_allclose(pats.prob, want.prob, atol=1e-6)
    wa = res.attention[res.attention.split == "test"].reset_index(drop=True)
    np.testing.assert_allclose(att.weight, wa.weight, atol=1e-6)
    assert att.slice_index.tolist() == wa.slice_index.tolist()
    with pytest.raises(ValueError, match="no crops for patient"):
        predict_mil(net, sc, patient_ids=["nobody"])


def test_refusals(tmp_path):
    sc, roles, _ = toy_bags()
    no_val = roles.assign(role=roles.role.replace({"val": "train"}))
    with pytest.raises(TrainingError, match="needs validation patients"):
        train_mil_unit(sc, no_val, CFG, MIL, _files(tmp_path), seed=0)
    one_class = roles[(roles.label == 0) | (roles.role != "train")]
    sc1 = SequenceCrops(sc.sequence, sc.crops, sc.patient_id, sc.slice_index, sc.bbox, sc.area_mm2,
                        sc.spacing, sc.raw_range, sc.per_patient, [], key=sc.key)
    excluded = set(roles.patient_id) - set(one_class.patient_id)
    with pytest.raises(TrainingError, match="only class"):
        train_mil_unit(sc1, one_class, CFG, MIL, _files(tmp_path), seed=0, excluded=excluded)


@pytest.mark.slow
def test_attention_finds_the_slices_that_carry_the_label(tmp_path):
    """Two slices of each positive patient carry the label: after a short training the gated
    attention puts most of a positive patient's weight on them (uniform would give ~40%)."""
    sc, roles, truth = toy_bags(n_pat=32, seed=7, lo=4, hi=8)
    roles = roles.assign(role=np.where(roles.index < 24, "train", "test"))
    cfg = replace(CFG, epochs=5, batch_size=16, selection="last")
    res = train_mil_unit(sc, roles, cfg, replace(MIL, max_slices=0), _files(tmp_path), seed=1)
    att = res.attention.merge(truth, on=["patient_id", "slice_index"])
    pos = att[att.patient_id.isin(roles.patient_id[roles.label == 1])]
    on_effect = pos.groupby("patient_id").apply(lambda g: g.weight[g.effect].sum(), include_groups=False)
    uniform = pos.groupby("patient_id").effect.mean()
    assert uniform.mean() < 0.45
    assert on_effect.mean() > uniform.mean() + 0.2, (on_effect.mean(), uniform.mean())
    assert (on_effect > uniform).mean() >= 0.8
    test = res.patients[res.patients.split == "test"]
    assert auc(test.label, test.prob) >= 0.9


# ----------------------------------------------------------------------------- configuration
def test_models_and_mil_settings_are_validated():
    cfg = resolve_config("smoke", overrides=["train.models=[slice_vote,attention_mil]",
                                             "mil.pooling=max", "mil.max_slices=0"])
    assert cfg.train.models == ("slice_vote", "attention_mil") and cfg.mil.pooling == "max"
    assert resolve_config("smoke").train.models == ("slice_vote",)
    for bad, msg in [("train.models=[]", "non-empty"), ("train.models=[cnn]", "train.models"),
                     ("train.models=[slice_vote,slice_vote]", "without repeats"),
                     ("mil.pooling=median", "not one of"), ("mil.dropout=1.0", "mil.dropout"),
                     ("mil.max_slices=-1", "mil.max_slices"), ("mil.attention_hidden=0", "attention_hidden")]:
        with pytest.raises(ConfigError, match=msg):
            resolve_config("smoke", overrides=[bad])
    # which models are trained does not change how one trains (resume keys)
    assert trajectory_settings(cfg.train) == trajectory_settings(replace(cfg.train, models=("slice_vote",)))


def test_fold_models_average_and_the_attention_artifact():
    from alnm_core.mil import attention_artifact, average_over_models

    rng = np.random.default_rng(0)
    pats, atts = [], []
    for m in range(3):
        w = rng.random(5)
        atts.append(pd.DataFrame({"patient_id": ["a", "a", "a", "b", "b"], "split": "test",
                                  "slice_index": [1, 2, 3, 7, 8],
                                  "weight": np.r_[w[:3] / w[:3].sum(), w[3:] / w[3:].sum()]}))
        pats.append(pd.DataFrame({"patient_id": ["a", "b"], "split": "test", "label": [1, 0],
                                  "prob": rng.random(2), "n_slices": [3, 2]}))
    p, a = average_over_models(pats, atts)
    np.testing.assert_allclose(p.prob, np.mean([x.prob for x in pats], axis=0))
    assert p.label.tolist() == [1, 0] and p.n_slices.tolist() == [3, 2]
    np.testing.assert_allclose(a.groupby("patient_id").weight.sum(), 1.0)
    np.testing.assert_allclose(a.weight, np.mean([x.weight for x in atts], axis=0))
    art = attention_artifact(a, sequence="DWI")
    assert art.columns.tolist() == ["model_id", "patient_id", "sequence", "slice", "weight", "split"]
    assert set(art.model_id) == {"attention_mil_DWI"} and art.slice.tolist() == [1, 2, 3, 7, 8]
    with pytest.raises(ValueError, match="different slices of patient"):
        average_over_models(pats[:2], [atts[0], atts[1].assign(slice_index=[1, 2, 4, 7, 8])])


@pytest.mark.slow
def test_every_mil_key_changes_the_result(tmp_path):
    sc, roles, _ = toy_bags(n_pat=12, seed=4, lo=3, hi=7)
    cfg = replace(CFG, epochs=1, selection="last")
    base = train_mil_unit(sc, roles, cfg, MIL, _files(tmp_path / "base"), seed=0)
    for key, value in (("pooling", "attention"), ("attention_hidden", 7), ("dropout", 0.5),
                       ("max_slices", 2)):
        other = train_mil_unit(sc, roles, cfg, replace(MIL, **{key: value}), _files(tmp_path / key), seed=0)
        assert not np.allclose(base.patients.prob, other.patients.prob), key
