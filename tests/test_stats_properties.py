"""Properties, edge cases and refusals of the statistics engine."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from alnm_core import stats as S


def _sample(draw, n_min=4, n_max=40):
    n = draw(st.integers(n_min, n_max))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda v: 2 <= sum(v) <= len(v) - 2))
    a = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))  # small range: many ties
    b = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    return np.array(y), np.array(a, float), np.array(b, float)


@st.composite
def samples(draw):
    return _sample(draw)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(samples())
def test_auc_invariant_to_monotone_transforms(s):
    y, a, _ = s
    base = S.auc(y, a)
    assert S.auc(y, np.exp(a / 3)) == pytest.approx(base)
    assert S.auc(y, 5 * a - 2) == pytest.approx(base)
    assert 0 <= base <= 1
    assert S.auc(y, -a) == pytest.approx(1 - base)  # no silent direction flip


@settings(max_examples=60, deadline=None, derandomize=True)
@given(samples())
def test_delong_symmetry_and_p_range(s):
    y, a, b = s
    ab, ba = S.delong_test(y, a, b), S.delong_test(y, b, a)
    assert ab.z == pytest.approx(-ba.z)
    assert ab.p_value == pytest.approx(ba.p_value)
    assert 0 <= ab.p_value <= 1 and not np.isnan(ab.p_value)
    for alt in ("greater", "less"):
        assert 0 <= S.delong_test(y, a, b, alternative=alt).p_value <= 1


@settings(max_examples=40, deadline=None, derandomize=True)
@given(samples())
def test_fast_delong_equals_naive(s):
    y, a, b = s
    from alnm_core.stats.delong import delong_naive

    z, p = delong_naive(y, a, b)
    r = S.delong_test(y, a, b)
    if np.isfinite(r.z) and r.z != 0:
        assert r.z == pytest.approx(z, rel=1e-9)


def test_identical_or_equal_auc_curves_give_z0_p1():
    y = np.array([0, 0, 0, 1, 1, 1])
    a = np.array([1, 2, 3, 4, 5, 6.0])
    r = S.delong_test(y, a, a)
    assert (r.z, r.p_value) == (0.0, 1.0)
    r = S.delong_test(y, a, 2 * a + 1)  # same ranking, same AUC
    assert (r.z, r.p_value) == (0.0, 1.0)
    m = S.delong_matrix(y, {"x": a, "y": a})
    assert m.p_value.iloc[0] == 1.0


@pytest.mark.parametrize("y, s, msg", [
    ([0, 1, 1], [0.1, 0.2], "lengths differ"),
    ([0, 2, 1], [0.1, 0.2, 0.3], "only 0 and 1"),
    ([1, 1, 1], [0.1, 0.2, 0.3], "no negative"),
    ([0, 1, 1], [0.1, np.nan, 0.3], "NaN or infinite"),
    ([0, 1, 1], [0.1, np.inf, 0.3], "NaN or infinite"),
])
def test_bad_input_raises_clear_errors(y, s, msg):
    with pytest.raises(ValueError, match=msg):
        S.auc(y, s)


def test_delong_needs_two_per_class():
    with pytest.raises(ValueError, match="at least 2"):
        S.delong_test([0, 0, 1], [1, 2, 3], [3, 2, 1])
    with pytest.raises(ValueError, match="alternative"):
        S.delong_test([0, 0, 1, 1], [1, 2, 3, 4], [1, 2, 3, 4], alternative="two")


def test_bootstrap_ci_is_seeded_and_brackets_auc():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = rng.normal(y, 1.0)
    a = S.auc_ci(y, s, method="bootstrap", n_boot=500, seed=3)
    b = S.auc_ci(y, s, method="bootstrap", n_boot=500, seed=3)
    assert a == b and a.low < a.auc < a.high
    d = S.auc_ci(y, s, method="delong")
    assert abs((a.high - a.low) - (d.high - d.low)) < 0.05  # similar widths at n=200
    with pytest.raises(ValueError, match="method"):
        S.auc_ci(y, s, method="hanley")


def test_roc_curve_matches_thresholds():
    y = [0, 0, 1, 1, 0, 1]
    s = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9]
    c = S.roc_curve(y, s)
    assert c.sensitivity[0] == 1 and c.specificity[0] == 0
    assert c.sensitivity[-1] == 0 and c.specificity[-1] == 1
    # trapezoidal area under the pROC points equals the Mann-Whitney AUC
    area = np.trapezoid(c.sensitivity[::-1], c.fpr[::-1])
    assert area == pytest.approx(S.auc(y, s))


def test_calibration_and_decision_curve():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 4000)
    y = (rng.random(4000) < p).astype(int)
    cal = S.calibration_intercept_slope(y, p)
    assert cal.slope == pytest.approx(1, abs=0.15) and cal.intercept == pytest.approx(0, abs=0.15)
    over = S.calibration_intercept_slope(y, np.clip(p ** 0.5, 0, 1))  # over-confident high
    assert over.intercept < -0.2
    assert S.brier_score([0, 1], [0.0, 1.0]) == 0.0
    rel = S.reliability_table(y, p, n_bins=5)
    assert len(rel) == 5 and rel.n.sum() == 4000
    assert np.allclose(rel.observed, rel.mean_predicted, atol=0.06)
    nb = S.net_benefit(y, p, [0.2, 0.5])
    assert (nb.model >= nb.treat_all - 1e-12).all()
    with pytest.raises(ValueError, match="strictly between"):
        S.net_benefit(y, p, [0.0])


def test_table1_tests():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, 60), rng.normal(0.8, 1, 60)
    r = S.continuous_test(a, b)
    assert r.test.startswith(("Student t (normal by Shapiro-Wilk", "Welch t (normal by Shapiro-Wilk"))
    assert r.p_value < 0.01
    assert r.p_value == pytest.approx(sps.ttest_ind(a, b).pvalue if r.test.startswith("Student t")
                                      else sps.ttest_ind(a, b, equal_var=False).pvalue)
    skew_a, skew_b = rng.exponential(1, 60) ** 3, rng.exponential(1.5, 60) ** 3
    assert S.continuous_test(skew_a, skew_b).test == "Mann-Whitney U (not normal by Shapiro-Wilk at 0.05)"
    # SPSS: asymptotic sig without continuity correction
    mw = S.continuous_test(skew_a, skew_b, method="mannwhitney")
    ref = sps.mannwhitneyu(skew_a, skew_b, method="asymptotic", use_continuity=False)
    assert mw.p_value == pytest.approx(ref.pvalue)
    # 2 x 3 exact Fisher equals the enumeration of R's fisher.test for a known table
    assert S.fisher_exact_2xc([[3, 1, 4], [1, 5, 2]]) == pytest.approx(0.2307692, abs=5e-7)  # R fisher.test
    df = pd.DataFrame({"alnm": [0, 1] * 20, "age": rng.normal(50, 10, 40),
                       "tumor_size_cm": rng.normal(2, 0.5, 40),
                       "margin": ["regular", "irregular"] * 20, "tic_type": ["II", "III", "III", "II"] * 10,
                       "field_strength": ["3T"] * 40})
    t = S.build_table1(df)
    assert {"Student t", "Welch t", "Mann-Whitney U"} & {x.split(" (")[0] for x in t.test}
    assert "TIC curve type" in set(t.characteristic)
    assert "I" not in set(t.level)  # absent level dropped


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.integers(-5, 5), min_size=1, max_size=60))
def test_midrank_equals_scipy_rankdata(values):
    from alnm_core.stats.delong import midrank

    x = np.array(values, float)
    np.testing.assert_allclose(midrank(x), sps.rankdata(x))
