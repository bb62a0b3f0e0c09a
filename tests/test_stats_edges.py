"""Edge cases as pROC (issue 23), pinned to tests/golden/stats_golden3.R: the unpaired DeLong
test when both variances are 0, and the Youden threshold where no finite cut-off beats chance
(AUC < 0.5, constant scores) or where several tie."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alnm_core import stats as S

GOLD = Path(__file__).parent / "golden"
G = json.loads((GOLD / "stats_golden3.json").read_text())


def _f(v):
    return float(v) if not isinstance(v, str) else float(v.replace("Inf", "inf"))


@pytest.mark.parametrize("alternative", ["two_sided", "greater", "less"])
def test_unpaired_zero_variance_different_aucs(alternative):
    g = G["unpaired_zero_var"]["issue_example"]
    alt = alternative.replace("_", "-")
    r = S.delong_test_unpaired(g["ya"], g["sa"], g["yb"], g["sb"], alternative=alt)
    want = g[alternative]
    assert (r.auc_a, r.auc_b) == (g["auc_a"], g["auc_b"]) == (1.0, 0.5)
    assert g["var_a"] == g["var_b"] == 0
    # pROC: D = Inf (kept), df = NaN (kept), p = NaN; ours: the paired convention
    assert r.statistic == _f(want["statistic"]) == np.inf
    assert np.isnan(r.df) and np.isnan(_f(want["df"]))
    assert np.isnan(_f(want["p_value"]))
    assert r.p_value == {"two_sided": 0.0, "greater": 0.0, "less": 1.0}[alternative]
    # the same as the paired test's rule for a non-zero difference with zero variance
    assert r.p_value == S.compare(0.5, 0.0, alternative=alt).p_value
    rev = G["unpaired_zero_var"]["reversed"][alternative]
    rr = S.delong_test_unpaired(g["yb"], g["sb"], g["ya"], g["sa"], alternative=alt)
    assert rr.statistic == -np.inf and _f(rev["statistic"]) == -np.inf
    assert rr.p_value == {"two_sided": 0.0, "greater": 1.0, "less": 0.0}[alternative]


def test_unpaired_zero_variance_equal_aucs():
    g = G["unpaired_zero_var"]["equal_auc"]
    assert g["auc_a"] == g["auc_b"] == 1.0
    assert np.isnan(_f(g["two_sided"]["statistic"]))  # pROC: 0/0
    for alt, p in (("two-sided", 1.0), ("greater", 0.5), ("less", 0.5)):
        r = S.delong_test_unpaired(g["ya"], g["sa"], g["yb"], g["sb"], alternative=alt)
        assert (r.statistic, r.p_value) == (0.0, p)


def test_unpaired_with_one_zero_variance_is_finite_as_proc():
    # curve a perfect (variance 0), curve b ordinary: pROC's D, df and p are finite
    ya, sa = [1] * 5 + [0] * 7, [0.9] * 5 + [0.1] * 7
    yb, sb = [1, 1, 1, 0, 0, 0, 1, 0], [0.8, 0.3, 0.6, 0.2, 0.7, 0.1, 0.5, 0.4]
    r = S.delong_test_unpaired(ya, sa, yb, sb)
    assert np.isfinite(r.statistic) and np.isfinite(r.df) and 0 < r.p_value < 1


@pytest.mark.parametrize("case", ["inverted", "constant", "below_half_no_gain",
                                  "below_half_inner_gain", "tied_best", "ordinary"])
def test_youden_as_proc_coords_best(case):
    g = G["youden"][case]
    r = S.youden_threshold(g["y"], g["s"])
    want = [_f(t) for t in (g["thresholds"] if isinstance(g["thresholds"], list) else [g["thresholds"]])]
    assert list(r.all_thresholds) == pytest.approx(want, abs=1e-12)
    assert r.threshold == pytest.approx(want[0], abs=1e-12)  # pROC's first row
    sen = g["sensitivity"] if isinstance(g["sensitivity"], list) else [g["sensitivity"]]
    spe = g["specificity"] if isinstance(g["specificity"], list) else [g["specificity"]]
    assert (r.sensitivity, r.specificity) == pytest.approx((sen[0], spe[0]), abs=1e-12)
    no_gain = case in ("inverted", "constant", "below_half_no_gain")
    assert r.finite is not no_gain
    assert (r.label == "no threshold") is no_gain
    if no_gain:
        assert r.youden_j == 0 and r.all_thresholds == (-np.inf, np.inf)
    else:
        assert r.youden_j > 0 and r.label == f"{r.threshold:.3f}"


def test_an_auc_below_half_never_gets_an_inside_threshold_with_negative_j():
    rng = np.random.default_rng(0)
    for _ in range(200):
        y = rng.integers(0, 2, 12)
        if y.min() == y.max():
            continue
        s = rng.normal(size=12) - 1.5 * y  # mostly inverted
        r = S.youden_threshold(y, s)
        assert r.youden_j >= 0
        assert r.finite == (r.youden_j > 1e-12) == np.all(np.isfinite(r.all_thresholds))


def test_families_are_adjusted_separately_as_p_adjust():
    g2 = json.loads((GOLD / "stats_golden2.json").read_text())["delong_matrix_set"]
    allp, three = g2["all_pairs"], g2["s1_vs_others"]
    # family A: every pair (6 tests); family B: s1 against the others (3 tests), interleaved
    p = np.r_[allp["p"], three["p"]]
    fam = ["all"] * 6 + ["s1"] * 3
    order = np.random.default_rng(0).permutation(9)
    adj = S.adjust_within_families(p[order], np.array(fam)[order])
    back = np.empty(9)
    back[order] = adj
    assert back == pytest.approx(np.r_[allp["holm"], three["holm"]], abs=1e-12)
    bh = np.empty(9)
    bh[order] = S.adjust_within_families(p[order], np.array(fam)[order], method="bh")
    assert bh == pytest.approx(np.r_[allp["BH"], three["BH"]], abs=1e-12)
    with pytest.raises(ValueError, match="family labels"):
        S.adjust_within_families([0.1, 0.2], ["a"])
