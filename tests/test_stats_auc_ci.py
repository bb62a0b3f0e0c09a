"""The AUC CIs added for small unbalanced cohorts (issue 23): logit-transformed DeLong and BCa
bootstrap pinned to R (tests/golden/stats_golden3.R: pROC 1.18, boot 1.3-28), the exact bound
at complete separation, and the faster bootstrap giving the same replicates as before."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alnm_core import stats as S
from alnm_core.stats.auc_ci import METHODS, bootstrap_aucs
from alnm_core.stats.bootstrap import bca_interval, norm_inter
from alnm_core.stats.delong import placements

GOLD = Path(__file__).parent / "golden"
G = json.loads((GOLD / "stats_golden3.json").read_text())
TOL = 1e-9


@pytest.mark.parametrize("i", range(5))
def test_logit_delong_ci_as_r(i):
    c = G["logit_delong"]["cases"][i]
    d = pd.read_csv(GOLD / c["file"])
    r = S.auc_ci(d[c["y"]], d[c["score"]], method="logit_delong")
    assert r.auc == pytest.approx(c["auc"], abs=TOL)
    assert (r.low, r.high) == pytest.approx(tuple(c["logit"]), abs=TOL)
    dl = S.auc_ci(d[c["y"]], d[c["score"]], method="delong")
    assert (dl.low, dl.high) == pytest.approx(tuple(c["delong"]), abs=TOL)
    # the logit interval never leaves (0, 1) and, above 0.5, reaches less far up than down
    assert 0 < r.low < r.auc < r.high < 1
    if r.auc > 0.5:
        assert r.high - r.auc < r.auc - r.low


def test_separation_interval_is_the_exact_bound():
    g = G["logit_delong"]["separation"]
    for k, bound in zip(g["k"], g["bound"]):
        assert S.separation_interval(1.0, k, 3 * k) == pytest.approx((bound, 1.0), abs=1e-15)
        assert S.separation_interval(0.0, 4 * k, k) == pytest.approx((0.0, 1 - bound), abs=1e-15)
    with pytest.raises(ValueError, match="0 or 1"):
        S.separation_interval(0.9, 10, 10)


def test_separation_bound_holds_its_level():
    """P(AUC_hat = 1) <= AUC^k: at a true AUC just below the bound, perfect separation happens
    in fewer than 2.5% of samples, in the binormal model and in a mixture built to make it
    as likely as possible (each case either far above or far below every control)."""
    rng = np.random.default_rng(4)
    k = 10
    bound = S.separation_interval(1.0, k, 30)[0]
    theta = bound - 0.01
    mu = np.sqrt(2) * stats.norm.ppf(theta)
    x, w = rng.normal(mu, 1, (20000, k)), rng.normal(0, 1, (20000, 30))
    assert (x.min(axis=1) > w.max(axis=1)).mean() < 0.025
    hi = rng.uniform(size=(20000, k)) < theta          # a case beats every control w.p. theta
    assert hi.all(axis=1).mean() < 0.025


def test_logit_and_bca_at_complete_separation():
    y = [1] * 10 + [0] * 40
    s = list(range(50, 60)) + list(range(40))
    r = S.auc_cis(y, s, methods=("delong", "logit_delong", "bootstrap", "bca", "exact"), n_boot=200)
    assert r["delong"][1:3] == (1.0, 1.0)  # pROC's point interval
    assert r["bootstrap"][1:3] == (1.0, 1.0)
    for m in ("logit_delong", "bca"):
        assert (r[m].low, r[m].high) == pytest.approx((0.025 ** 0.1, 1.0), abs=1e-15)
        assert "complete separation" in r[m].note and "10 disjoint" in r[m].note
    inv = S.auc_ci(y, [-v for v in s], method="logit_delong")
    assert (inv.auc, inv.high) == (0.0, pytest.approx(1 - 0.025 ** 0.1, abs=1e-15))


def test_constant_scores_give_a_point_interval_not_nan():
    r = S.auc_cis([0, 1] * 5, [0.3] * 10, methods=("logit_delong", "bca"), n_boot=200)
    for m in r.values():
        assert (m.auc, m.low, m.high) == (0.5, 0.5, 0.5)
        assert "zero DeLong variance" in m.note


def test_bca_interval_as_boot_ci():
    g = G["bca"]
    d = pd.read_csv(GOLD / "g3_bca.csv")
    t = pd.read_csv(GOLD / "g3_bca_replicates.csv").t.to_numpy()
    a = S.auc(d.y, d.s)
    assert a == pytest.approx(g["t0"], abs=1e-15)
    p = placements(d.y, d.s)
    m, n = int(d.y.sum()), int((1 - d.y).sum())
    L = np.r_[(p.v10[0] - a) / m, (p.v01[0] - a) / n]
    assert float(np.sum(L ** 3) / (6 * np.sum(L ** 2) ** 1.5)) == pytest.approx(g["acceleration"], abs=1e-12)
    assert bca_interval(t, a, L) == pytest.approx(tuple(g["bca_95"]), abs=TOL)
    assert bca_interval(t, a, L, level=0.9) == pytest.approx(tuple(g["bca_90"]), abs=TOL)
    # boot's percentile interval uses the same order-statistic interpolation
    assert tuple(norm_inter(t, [0.025, 0.975])) == pytest.approx(tuple(g["perc_95_boot"]), abs=TOL)
    # the stratified acceleration differs from boot's unscaled default (cases 12, controls 40)
    assert bca_interval(t, a, L) != pytest.approx(tuple(g["bca_95_boot_default_L"]), abs=1e-4)


def test_bca_end_to_end_is_close_to_r_with_another_rng():
    d = pd.read_csv(GOLD / "g3_bca.csv")
    r = S.auc_ci(d.y, d.s, method="bca", n_boot=4000, seed=2)
    assert abs(r.low - G["bca"]["bca_95"][0]) < 0.02 and abs(r.high - G["bca"]["bca_95"][1]) < 0.02
    assert r.note == ""


def test_bca_undefined_falls_back_to_percentile_and_says_so():
    # a bias correction of -inf: no bootstrap AUC falls below the estimate
    with pytest.raises(ValueError, match="below the estimate"):
        bca_interval(np.array([0.8, 0.9, 0.85]), 0.8, np.array([0.1, -0.1, 0.05]))
    with pytest.raises(ValueError, match="influence"):
        bca_interval(np.array([0.7, 0.9, 0.85]), 0.8, np.zeros(3))


def test_one_ranking_many_methods_equals_one_at_a_time():
    rng = np.random.default_rng(7)
    y = np.r_[np.ones(9, int), np.zeros(31, int)]
    s = np.round(rng.normal(size=40) + y, 1)
    both = S.auc_cis(y, s, n_boot=300, seed=5)
    assert list(both) == list(METHODS)
    for m in METHODS:
        assert both[m] == S.auc_ci(y, s, method=m, n_boot=300, seed=5)
    # the bootstrap pair shares its replicates: BCa moves the percentile ends, same data
    assert both["bca"][1:3] != both["bootstrap"][1:3]
    with pytest.raises(ValueError, match="one of"):
        S.auc_ci(y, s, method="hanley")


def test_counting_bootstrap_gives_the_rank_bootstrap_replicates():
    rng = np.random.default_rng(3)
    for m, n in ((7, 50), (30, 30), (40, 9)):
        y = np.r_[np.ones(m, int), np.zeros(n, int)]
        s = np.round(rng.normal(size=m + n) + y, 1)  # many ties
        fast = bootstrap_aucs(y, s, n_boot=500, seed=9)
        g = np.random.default_rng(9)
        ip, ineg = g.integers(0, m, size=(500, m)), g.integers(0, n, size=(500, n))
        r = stats.rankdata(np.concatenate([s[y == 1][ip], s[y == 0][ineg]], axis=1), axis=1)
        slow = (r[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
        assert np.array_equal(fast, slow)


def test_default_method_is_the_configured_primary():
    from alnm_core.config import StatsConfig

    assert S.PRIMARY_AUC_CI == StatsConfig().auc_ci
    y, s = [0, 0, 1, 1, 0, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.5]
    assert S.auc_ci(y, s).method == S.PRIMARY_AUC_CI
