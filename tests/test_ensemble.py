from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alnm_core import ensemble as E
from alnm_core import evaluation


def _preds():
    # 4 validation + 4 test patients, three base models with known outputs
    rows = [
        # pid, split, label, T2WI, DWI, DCE
        ("v1", "val", 1, 0.9, 0.6, 0.4),
        ("v2", "val", 1, 0.7, 0.4, 0.6),
        ("v3", "val", 0, 0.2, 0.6, 0.7),
        ("v4", "val", 0, 0.3, 0.3, 0.4),
        ("t1", "test", 1, 0.8, 0.3, 0.3),
        ("t2", "test", 1, 0.4, 0.9, 0.8),
        ("t3", "test", 0, 0.6, 0.2, 0.1),
        ("t4", "test", 0, 0.1, 0.7, 0.9),
    ]
    df = pd.DataFrame(rows, columns=["patient_id", "split", "label", "T2WI", "DWI", "DCE"])
    return {s: df[["patient_id", "split", "label", s]].rename(columns={s: "prob"}) for s in ("T2WI", "DWI", "DCE")}


def test_weights_H_and_decisions_by_hand():
    res = E.fuse(_preds())
    fused, weights = res.ensemble, res.weights
    w = weights.set_index("model")
    # validation accuracies at 0.5: T2WI 4/4, DWI 2/4 (v1 right, v2 wrong, v3 wrong, v4 right), DCE 1/4... check:
    # DCE: v1 0.4->0 (wrong), v2 0.6->1 (right), v3 0.7->1 (wrong), v4 0.4->0 (right) = 2/4
    assert w.acc_validation.to_dict() == {"T2WI": 1.0, "DWI": 0.5, "DCE": 0.5}
    # test accuracies: T2WI t1 ok, t2 wrong, t3 wrong, t4 ok = 0.5; DWI: t1 wrong, t2 ok, t3 ok, t4 wrong = 0.5
    # DCE: t1 wrong, t2 ok, t3 ok, t4 wrong = 0.5 -> the paper-literal weights are equal here
    assert w.acc_test.to_dict() == {"T2WI": 0.5, "DWI": 0.5, "DCE": 0.5}
    assert w.weight_validation.to_list() == pytest.approx([0.5, 0.25, 0.25])
    t = fused.set_index("patient_id")
    # t2: H = 1*0.4 + 0.5*0.9 + 0.5*0.8 = 1.25; sum w = 2 -> threshold 1.0 -> positive, prob 0.625
    assert t.loc["t2", "weighted_vote"] == pytest.approx(1.25 / 2)
    # t3: H = 0.6 + 0.1 + 0.05 = 0.75 < 1 -> negative
    assert t.loc["t3", "weighted_vote"] == pytest.approx(0.375)
    assert t.loc["t2", "weighted_vote_test_weights"] == pytest.approx((0.4 + 0.9 + 0.8) / 3)
    assert t.loc["t4", "soft_vote"] == pytest.approx((0.1 + 0.7 + 0.9) / 3)
    assert t.loc["t4", "majority_vote"] == pytest.approx(2 / 3)
    assert t.loc["t1", "majority_vote"] == pytest.approx(1 / 3)
    assert fused.stacking.between(0, 1).all()


def test_weighted_vote_decision_rule_and_refusals():
    probs = pd.DataFrame({"a": [0.9, 0.2, 0.5], "b": [0.4, 0.6, 0.5]})
    r = E.weighted_vote(probs, {"a": 3.0, "b": 1.0})
    assert r.threshold == 2.0
    assert r.H.tolist() == pytest.approx([3.1, 1.2, 2.0])
    assert r.decision.tolist() == [1, 0, 1]          # H >= sum(w)/2, the tie counts as positive
    with pytest.raises(ValueError, match="no weight"):
        E.weighted_vote(probs, {"a": 1.0})
    with pytest.raises(ValueError, match="not all 0"):
        E.weighted_vote(probs, {"a": 0.0, "b": 0.0})
    with pytest.raises(ValueError, match="missing probabilities"):
        E.soft_vote(pd.DataFrame({"a": [0.1, np.nan], "b": [0.2, 0.3]}))


def test_table3_and_delong_structure():
    fused = E.fuse(_preds()).ensemble
    names = {"T2WI": "T2WI", "DWI": "DWI", "weighted_vote": "Multiparametric MRI"}
    t3 = evaluation.build_table3(fused, names, n_boot=200)
    assert len(t3) == 6 and set(t3.threshold_from) == {"fixed 0.5", "Youden on validation"}
    for col in ("acc", "sen", "spe", "ppv", "npv", "auc", "auc_low", "auc_high", "auc_delong_low",
                "auc_boot_high", "ppv_method", "auc_exact_low", "auc_exact_method", "auc_ci_method"):
        assert col in t3.columns
    assert (t3.auc_low <= t3.auc).all() and (t3.auc <= t3.auc_high).all()
    d = evaluation.delong_against(fused, "weighted_vote", ["T2WI", "DWI"])
    assert list(d.columns[:7]) == ["model_a", "model_b", "auc_a", "auc_b", "z", "p_value", "diff"]
    assert (d.p_holm >= d.p_value).all() and (d.p_bh >= d.p_value).all()
    # the headline CI is the logit DeLong (stats.auc_ci's default): the same variance as pROC's
    # DeLong CI on the logit scale, so inside [0, 1] and asymmetric, the DeLong CI kept beside it
    assert (t3.auc_ci_method == "logit-transformed DeLong").all() and (t3.auc_ci_key == "logit_delong").all()
    inner = (t3.auc > 0) & (t3.auc < 1)
    assert (t3.auc_low[inner] != t3.auc_delong_low[inner]).all() and ((t3.auc_low > 0) | ~inner).all()
    dl = evaluation.build_table3(fused, names, n_boot=200, auc_ci_method="delong")
    assert (dl.auc_ci_method == "DeLong (as pROC)").all() and (dl.auc_low == dl.auc_delong_low).all()


def test_holm():
    from alnm_core.stats import holm
    assert holm(np.array([0.01, 0.04, 0.03])).tolist() == pytest.approx([0.03, 0.06, 0.06])


def test_the_above_chance_rule_gives_a_chance_level_member_no_weight():
    """A member whose development AUC's DeLong CI reaches 0.5 is flagged; with
    weight_rule=above_chance it gets weight 0 (decided without the test set), and the paper's
    accuracy rule keeps it; the other rule's weights are shown beside."""
    rng = np.random.default_rng(0)
    n = 80
    y = np.array([0, 1] * (n // 2))
    good = np.clip(0.5 + 0.35 * (y - 0.5) + rng.normal(0, 0.1, n), 0, 1)
    noise = rng.uniform(0, 1, n)
    split = ["dev"] * 60 + ["test"] * 20
    preds = {m: pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "split": split, "label": y, "prob": p})
             for m, p in (("a", good), ("b", noise), ("c", good[::-1] * 0 + np.clip(good + rng.normal(0, .05, n), 0, 1)))}
    acc = E.fuse(preds, fit_split="dev", weight_rule="accuracy").weights.set_index("model")
    guard = E.fuse(preds, fit_split="dev", weight_rule="above_chance").weights.set_index("model")
    assert bool(acc.chance_level["b"]) and not acc.chance_level["a"]
    assert acc.weight_used["b"] > 0 and guard.weight_used["b"] == 0
    assert guard.weight_above_chance["b"] == 0 and acc.weight_above_chance["b"] == 0
    assert guard.weight_used["a"] == pytest.approx(guard.weight_above_chance["a"])
    with pytest.raises(ValueError, match="weight_rule"):
        E.fuse(preds, fit_split="dev", weight_rule="oracle")


def test_stacking_threshold_is_chosen_on_cross_fitted_predictions():
    """Under pure noise the stacker's predictions for the patients it is fitted on carry no
    signal once cross-fitted (mean AUC ~0.5), where its in-sample predictions look better than
    chance: the Youden threshold is chosen on the cross-fitted ones."""
    from alnm_core.stats import auc

    cross, inside = [], []
    for seed in range(30):
        r = np.random.default_rng(seed)
        n = 60
        y = np.r_[np.ones(n // 3, int), np.zeros(n - n // 3, int)]
        probs = pd.DataFrame(r.random((n, 3)), columns=["a", "b", "c"])
        cross.append(auc(y, E.cross_fitted_stacking(probs, y, seed=seed)))
        inside.append(auc(y, E.fit_stacking(probs, y).predict_proba(E._logit(probs.to_numpy()))[:, 1]))
    assert np.mean(inside) > 0.55 and abs(np.mean(cross) - 0.5) < 0.04 and np.mean(cross) < np.mean(inside)
    p = _preds()
    fused = E.fuse(p).ensemble
    val = fused.split == "val"
    # the fit-split rows are the cross-fitted predictions, the others the stacker fitted on all of val
    probs = fused.loc[val, list(p)]
    assert np.allclose(fused.stacking[val], E.cross_fitted_stacking(probs, fused.label[val]))
