"""Statistics off the paper's design, pinned to R (tests/golden/stats_golden2.R: pROC 1.18,
nortest, stats::binom.test / chisq.test / fisher.test / glm / p.adjust). Each case was a wrong
or misleading answer before: equal AUCs in one-sided DeLong tests, a zero variance of the
difference, multiplicity, the Lilliefors p-value, Table 1's test per table."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alnm_core import stats as S
from alnm_core.config import resolve_config
from alnm_core.stats.normality import lilliefors

GOLD = Path(__file__).parent / "golden"
G = json.loads((GOLD / "stats_golden2.json").read_text())
TOL = 1e-9


def _f(v):
    return float(v) if not isinstance(v, str) else float(v.replace("Inf", "inf"))


@pytest.mark.parametrize("case", ["nonzero_var", "zero_var_identical", "zero_var_monotone_transform",
                                  "zero_var_within_class_permuted"])
@pytest.mark.parametrize("alternative", ["two_sided", "greater", "less"])
def test_delong_with_equal_aucs_as_proc(case, alternative):
    g = G["delong_equal_auc"]
    c = g[case]
    r = S.delong_test(g["y"], c["a"], c["b"], alternative=alternative.replace("_", "-"))
    want = c[alternative]
    assert r.z == _f(want["statistic"])
    assert r.p_value == pytest.approx(_f(want["p_value"]), abs=TOL)
    assert (r.ci_low, r.ci_high) == pytest.approx(tuple(map(_f, want["conf_int"])), abs=TOL)


@pytest.mark.parametrize("alternative", ["two_sided", "greater", "less"])
def test_perfect_against_constant_in_every_delong_entry_point(alternative):
    g = G["delong_perfect_vs_constant"]
    want = g[alternative]
    alt = alternative.replace("_", "-")
    r = S.delong_test(g["y"], g["a"], g["b"], alternative=alt)
    assert r.z == _f(want["statistic"]) == np.inf
    assert r.p_value == pytest.approx(_f(want["p_value"]), abs=TOL)
    assert (r.ci_low, r.ci_high) == pytest.approx(tuple(map(_f, want["conf_int"])), abs=TOL)
    if alternative == "two_sided":  # the matrix gives the same answer as the test
        m = S.delong_matrix(g["y"], {"a": np.asarray(g["a"]), "b": np.asarray(g["b"])}).iloc[0]
        assert (m.z, m.p_value, m.ci_low, m.ci_high) == (r.z, r.p_value, r.ci_low, r.ci_high)
    rev = g["reversed"][alternative]
    rr = S.delong_test(g["y"], g["b"], g["a"], alternative=alt)
    assert rr.z == _f(rev["statistic"]) and rr.p_value == pytest.approx(_f(rev["p_value"]), abs=TOL)


def test_delong_matrix_pairs_and_multiplicity():
    g = G["delong_matrix_set"]
    d = pd.read_csv(GOLD / "g2_matrix.csv")
    m = S.delong_matrix(d.y, {k: d[k].to_numpy() for k in ("s1", "s2", "s3", "s4")})
    for _, row in m.iterrows():
        want = g["pairs"][f"{row.model_a}_vs_{row.model_b}"]
        assert row.z == pytest.approx(_f(want["z"]), abs=TOL)
        assert row.p_value == pytest.approx(_f(want["p"]), abs=TOL)
        assert (row.ci_low, row.ci_high) == pytest.approx(tuple(map(_f, want["conf_int"])), abs=TOL)
    # the family is every pair (the order of g["pair_order"])
    assert m.p_holm.to_numpy() == pytest.approx(g["all_pairs"]["holm"], abs=TOL)
    assert m.p_bh.to_numpy() == pytest.approx(g["all_pairs"]["BH"], abs=TOL)
    fam = g["s1_vs_others"]
    assert S.holm(fam["p"]) == pytest.approx(fam["holm"], abs=TOL)
    assert S.benjamini_hochberg(fam["p"]) == pytest.approx(fam["BH"], abs=TOL)


def test_auc_delong_ci():
    d = pd.read_csv(GOLD / "g2_matrix.csv")
    ci = S.auc_ci(d.y, d.s1, method="delong")
    assert (ci.auc, ci.low, ci.high) == pytest.approx(
        (G["auc_ci"]["auc"], G["auc_ci"]["delong"]["lower"], G["auc_ci"]["delong"]["upper"]), abs=TOL)
    boot = S.auc_ci(d.y, d.s1, method="bootstrap", n_boot=2000, seed=1)
    assert abs(boot.low - G["auc_ci"]["bootstrap"]["lower"]) < 0.02  # different RNGs: close, not equal
    assert abs(boot.high - G["auc_ci"]["bootstrap"]["upper"]) < 0.02


def test_unpaired_delong_small_groups():
    a, b = pd.read_csv(GOLD / "g2_unpaired_a.csv"), pd.read_csv(GOLD / "g2_unpaired_b.csv")
    g = G["unpaired_small"]
    for alt in ("two_sided", "greater", "less"):
        r = S.delong_test_unpaired(a.y, a.s, b.y, b.s, alternative=alt.replace("_", "-"))
        assert r.statistic == pytest.approx(_f(g[alt]["statistic"]), abs=TOL)
        assert r.df == pytest.approx(_f(g[alt]["df"]), abs=1e-7)
        assert r.p_value == pytest.approx(_f(g[alt]["p_value"]), abs=TOL)
    assert S.auc_ci(a.y, a.s, method="delong")[1:3] == pytest.approx(tuple(g["ci_auc_a"][::2]), abs=TOL)


@pytest.mark.parametrize("i", range(6))
def test_clopper_pearson_and_wilson(i):
    c = G["binom"]["cases"][i]
    assert S.clopper_pearson(c["x"], c["n"]) == pytest.approx(tuple(c["clopper_pearson"]), abs=1e-12)
    assert S.wilson(c["x"], c["n"]) == pytest.approx(tuple(c["wilson"]), abs=1e-12)


@pytest.mark.parametrize("sample", list("abcdef"))
def test_lilliefors_and_shapiro_as_r(sample):
    d = pd.read_csv(GOLD / "g2_lillie.csv")
    x = d[d["sample"] == sample].value.to_numpy()
    g = G["lilliefors"][sample]
    stat, p = lilliefors(x)
    assert stat == pytest.approx(g["D"], abs=1e-12)
    assert p == pytest.approx(g["p_value"], abs=1e-12)
    nm = S.normality(x)
    assert nm["lilliefors_p"] == pytest.approx(g["p_value"], abs=1e-12)
    assert nm["shapiro_p"] == pytest.approx(g["shapiro_p"], abs=1e-8)


@pytest.mark.parametrize("name", ["train_margin", "train_tic", "test_margin", "test_tic", "two_by_three"])
def test_table1_categorical_tests_as_r(name):
    g = G["table1"][name]
    table = np.asarray(g["table"]) if "table" in g else None
    if table is None:
        pytest.skip("no table in the golden file")
    chi = S.categorical_test(table, method="chi2")
    assert chi.p_value == pytest.approx(g["chisq_p"], abs=TOL)
    fis = S.categorical_test(table, method="fisher")
    assert fis.p_value == pytest.approx(g["fisher_p"], abs=1e-7)


def test_calibration_as_r_glm():
    d = pd.read_csv(GOLD / "g2_calib.csv")
    g = G["glm_calibration"]
    c = S.calibration_intercept_slope(d.y, d.p)
    assert c.slope == pytest.approx(g["tight_control"]["calibration_slope"], abs=1e-8)
    assert c.intercept == pytest.approx(g["tight_control"]["calibration_intercept"], abs=1e-8)
    assert c.brier == pytest.approx(g["brier"], abs=1e-12)


def test_paper_profile_reproduces_the_papers_table1_choice():
    """All patients: Pearson chi-square; test set: Fisher's exact test (the paper's p-values)."""
    cfg = resolve_config("paper").stats
    assert (cfg.categorical_test, cfg.categorical_test_test_set) == ("chi2", "fisher")

    def cohort(margins, tics):
        out = []
        for y, (reg, irr), (ii, iii) in ((1, margins[0], tics[0]), (0, margins[1], tics[1])):
            m = ["regular"] * reg + ["irregular"] * irr
            t = ["II"] * ii + ["III"] * iii
            out += [dict(alnm=y, margin=mm, tic_type=tt, age=50.0 + k % 7, tumor_size_cm=2.0 + (k % 5) / 10)
                    for k, (mm, tt) in enumerate(zip(m, t))]
        return pd.DataFrame(out)
    all_pat = cohort(((33, 65), (69, 85)), ((70, 28), (98, 56)))
    test = cohort(((7, 13), (15, 15)), ((14, 6), (15, 15)))
    from alnm_core.run.steps_data import table1_pair
    t_all, t_test = table1_pair(all_pat, test, cfg)
    p = lambda t, c: t.loc[t.characteristic == c, "p_value"].iloc[0]
    assert round(p(t_all, "Tumor margin"), 3) == 0.079 and round(p(t_all, "TIC curve type"), 3) == 0.201
    assert round(p(t_test, "Tumor margin"), 3) == 0.387 and round(p(t_test, "TIC curve type"), 3) == 0.243
    assert set(t_test.loc[t_test.test != "", "test"]) >= {"Fisher exact"}
