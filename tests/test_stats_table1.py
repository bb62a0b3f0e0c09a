"""Table 1 without two-stage test selection (issue 23): Welch's t shown with Mann-Whitney beside
it, and the Cochran-Armitage trend test for TIC type, pinned to R (tests/golden/stats_golden3.R:
t.test, wilcox.test, prop.trend.test, chisq.test); the paper profile keeps the SPSS rules."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alnm_core import stats as S
from alnm_core.config import StatsConfig, resolve_config

GOLD = Path(__file__).parent / "golden"
G = json.loads((GOLD / "stats_golden3.json").read_text())
TOL = 1e-9


@pytest.mark.parametrize("case", ["paper_all_two_levels", "paper_test_two_levels", "three_levels",
                                  "three_levels_flat"])
def test_trend_test_as_prop_trend_test(case):
    g = G["trend"][case]
    r = S.trend_test(g["table"], scores=g["score"])
    assert r.p_value == pytest.approx(g["p_value"], abs=TOL)
    assert r.statistic == pytest.approx(g["statistic"], abs=1e-9)
    assert r.test == "Cochran-Armitage trend"
    chi = S.categorical_test(g["table"], method="chi2")
    assert chi.p_value == pytest.approx(g["chisq_p"], abs=TOL)
    if case.endswith("two_levels"):  # two levels: the trend test is the Pearson chi-square
        assert r.p_value == pytest.approx(chi.p_value, abs=1e-12)


def test_trend_test_scores_only_matter_by_their_spacing():
    t = [[5, 12, 20], [15, 14, 10]]
    base = S.trend_test(t).p_value
    assert S.trend_test(t, scores=[10, 20, 30]).p_value == pytest.approx(base, abs=1e-12)
    assert S.trend_test(t, scores=[3, 2, 1]).p_value == pytest.approx(base, abs=1e-12)
    assert S.trend_test(t, scores=[1, 2, 5]).p_value != pytest.approx(base, abs=1e-6)
    # an empty level is dropped with its score
    assert S.trend_test([[0, 70, 28], [0, 98, 56]]).p_value == pytest.approx(
        G["trend"]["paper_all_two_levels"]["p_value"], abs=TOL)
    assert np.isnan(S.trend_test([[0, 5, 0], [0, 7, 0]]).p_value)
    with pytest.raises(ValueError, match="2 x k"):
        S.trend_test([[1, 2, 3]])


@pytest.mark.parametrize("var", ["age", "size"])
def test_welch_and_mann_whitney_as_r(var):
    d = pd.read_csv(GOLD / "g3_table1.csv")
    g = G["continuous"][var]
    a, b = d.loc[d.group == 1, var], d.loc[d.group == 0, var]
    w = S.continuous_test(a, b, method="welch")
    assert (w.p_value, w.statistic) == pytest.approx((g["welch_p"], g["welch_t"]), abs=TOL)
    mw = S.continuous_test(a, b, method="mannwhitney")
    assert (mw.p_value, mw.statistic) == pytest.approx((g["mw_p"], g["mw_W"]), abs=TOL)


def _cohort(seed=2, n=80):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return pd.DataFrame({
        "alnm": y, "age": np.round(rng.normal(50 + 3 * y, 8 + 4 * y), 0),
        "tumor_size_cm": np.round(rng.lognormal(0.8 + 0.2 * y, 0.5), 1),
        "margin": np.where(rng.uniform(size=n) < 0.4 + 0.2 * y, "irregular", "regular"),
        "tic_type": rng.choice(["I", "II", "III"], n, p=[0.2, 0.5, 0.3]),
    })


def test_fixed_rule_shows_welch_and_keeps_mann_whitney_beside_it():
    df = _cohort()
    t = S.build_table1(df)  # the defaults: welch+mannwhitney
    row = t[t.characteristic.str.startswith("Age")].iloc[0]
    a, b = df.age[df.alnm == 1], df.age[df.alnm == 0]
    assert row.test == "Welch t" and row.test_alt == "Mann-Whitney U"
    assert row.p_value == S.continuous_test(a, b, method="welch").p_value
    assert row.p_alt_value == S.continuous_test(a, b, method="mannwhitney").p_value
    assert row.p == S.format_p(row.p_value) and row.p_alt == S.format_p(row.p_alt_value)
    # no pretest: the normality test or level cannot change the shown p
    t2 = S.build_table1(df, normality_test="lilliefors", alpha=0.5)
    assert t2.p_value.equals(t.p_value)
    assert "SW p=" in row.normality  # still described


def test_pretest_rule_is_kept_as_an_option():
    df = _cohort()
    t = S.build_table1(df, continuous_method="auto")
    row = t[t.characteristic.str.startswith("Age")].iloc[0]
    assert "(" in row.test and row.test_alt == "" and np.isnan(row.p_alt_value)


def test_tic_type_gets_the_trend_test_and_the_nominal_test_beside_it():
    df = _cohort()
    tab = pd.crosstab(df.alnm, df.tic_type).loc[[1, 0], ["I", "II", "III"]].to_numpy()
    for cat in ("chi2", "fisher", "auto"):
        t = S.build_table1(df, ordinal_method="trend", categorical_method=cat)
        row = t[t.characteristic == "TIC curve type"].iloc[0]
        assert row.test == "Cochran-Armitage trend (I < II < III)"
        assert row.p_value == pytest.approx(S.trend_test(tab).p_value, abs=1e-15)
        nominal = S.categorical_test(tab, method=cat)
        assert (row.p_alt_value, row.test_alt) == (nominal.p_value, nominal.test)
        margin = t[t.characteristic == "Tumor margin"].iloc[0]  # nominal variables unchanged
        assert margin.test_alt == "" and margin.test == S.categorical_test(
            pd.crosstab(df.alnm, df.margin).loc[[1, 0], ["regular", "irregular"]].to_numpy(),
            method=cat).test
    # type I absent: II and III keep their scores 2 and 3, and the test is the chi-square
    d2 = df[df.tic_type != "I"]
    row = S.build_table1(d2, ordinal_method="trend").query("characteristic == 'TIC curve type'").iloc[0]
    tab2 = pd.crosstab(d2.alnm, d2.tic_type).loc[[1, 0], ["II", "III"]].to_numpy()
    assert row.p_value == pytest.approx(S.categorical_test(tab2, method="chi2").p_value, abs=1e-12)


def test_ordinal_column_needs_ordered_levels():
    df = _cohort()
    with pytest.raises(ValueError, match="ordinal column 'field'"):
        S.build_table1(df.assign(field=1), categorical=(("field", "Field", ()),), ordinal=("field",),
                       ordinal_method="trend")
    with pytest.raises(ValueError, match="continuous_method"):
        S.build_table1(df, continuous_method="pretest")


def test_defaults_and_the_paper_profile():
    s = StatsConfig()
    assert (s.continuous_test, s.ordinal_test) == ("welch+mannwhitney", "trend")
    p = resolve_config("paper").stats
    assert (p.continuous_test, p.ordinal_test, p.categorical_test, p.categorical_test_test_set) == (
        "auto", "categorical", "chi2", "fisher")
    for name in ("demo", "smoke"):
        assert resolve_config(name).stats.ordinal_test == "trend"
