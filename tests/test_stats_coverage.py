"""Simulated coverage of the CIs the study offers (alnm_core.stats.coverage), on few replicates
and seeded, so that each assertion holds with room to spare; README.md states the figures of
`alnm bench --only coverage` (more replicates)."""
from __future__ import annotations

import pytest

from alnm_core.stats.coverage import auc_ci_coverage, predictive_value_coverage


@pytest.mark.parametrize("n_pos, n_neg", [(8, 42), (10, 90)])
def test_delong_auc_ci_holds_where_the_exact_ci_under_covers(n_pos, n_neg):
    delong = auc_ci_coverage(n_pos, n_neg, auc=0.8, method="delong", reps=300, seed=11)
    exact = auc_ci_coverage(n_pos, n_neg, auc=0.8, method="exact", reps=300, seed=11)
    print(f"\n{n_pos}/{n_neg}: DeLong {delong:.3f}, exact {exact:.3f}")
    assert delong >= 0.85
    assert exact < delong - 0.03  # the exact CI on AUC x N ignores the case/control split
    if n_neg / n_pos >= 8:
        assert exact < 0.8


def test_bootstrap_auc_ci_holds_on_a_balanced_design():
    cov = auc_ci_coverage(25, 25, auc=0.8, method="bootstrap", reps=150, seed=3, n_boot=300)
    assert cov >= 0.85


def test_exact_predictive_value_cis_hold_when_prevalence_is_estimated():
    kw = dict(prevalence=0.4, sensitivity=0.75, specificity=0.9, reps=1500, seed=5)
    exact = predictive_value_coverage(50, method="exact", **kw)
    logit = predictive_value_coverage(50, method="logit", **kw)
    print(f"\nPPV/NPV coverage at n=50: exact {exact}, logit {logit}")
    assert min(exact) >= 0.95
    assert logit[0] < exact[0] and logit[1] < exact[1]


# ------------------------------------------------------------ the committed coverage table
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from alnm_core.stats import coverage_lookup as CL  # noqa: E402
from alnm_core.stats.coverage import simulate_cell  # noqa: E402


def _toy_table():
    rows = []
    for (p, n), base in (((10, 90), 0.80), ((20, 80), 0.90), ((50, 50), 0.94)):
        for auc, drop in ((0.7, 0.0), (0.8, 0.02), (0.9, 0.05)):
            for m, extra in (("delong", 0.0), ("logit_delong", 0.03)):
                rows.append(dict(method=m, n_pos=p, n_neg=n, auc=auc, reps=1000, n_boot=500,
                                 level=0.95, coverage=base - drop + extra, mc_se=0.007,
                                 truth_below=0.0, truth_above=0.0, mean_width=0.2 + extra,
                                 special=0.0, seed=1))
    return pd.DataFrame(rows)


def test_lookup_nearest_design_and_auc_interpolation():
    t = _toy_table()
    r = CL.lookup_coverage("delong", 20, 80, 0.85, table=t)
    assert (r.design_n_pos, r.design_n_neg, r.exact_design) == (20, 80, True)
    assert r.coverage == pytest.approx(0.9 - 0.035)  # halfway between 0.88 and 0.85
    # classes are symmetric; the nearest design in log sizes
    assert CL.lookup_coverage("delong", 80, 20, 0.85, table=t).coverage == r.coverage
    near = CL.lookup_coverage("delong", 12, 88, 0.8, table=t)
    assert (near.design_n_pos, near.design_n_neg, near.exact_design) == (10, 90, False)
    assert CL.lookup_coverage("delong", 45, 60, 0.8, table=t).design_n_pos == 50
    # AUC below 0.5 read as 1 - AUC; outside the grid clamped and flagged
    assert CL.lookup_coverage("delong", 20, 80, 0.15, table=t).coverage == pytest.approx(0.9 - 0.035)
    lo = CL.lookup_coverage("delong", 20, 80, 0.55, table=t)
    assert (lo.auc_used, lo.extrapolated, lo.coverage) == (0.7, True, 0.9)
    assert CL.lookup_coverage("delong", 20, 80, 0.97, table=t).coverage == pytest.approx(0.85)
    with pytest.raises(ValueError, match="no simulated coverage for method 'hanley'"):
        CL.lookup_coverage("hanley", 20, 80, 0.8, table=t)
    with pytest.raises(ValueError, match="both classes"):
        CL.lookup_coverage("delong", 0, 80, 0.8, table=t)


def test_choose_primary_rule():
    t = _toy_table()
    assert CL.choose_primary(t) == "logit_delong"  # better worst case
    t2 = t.copy()
    t2.loc[t2.method == "logit_delong", "coverage"] -= 0.025  # now within 0.01: narrower wins
    assert CL.choose_primary(t2) == "delong"
    t3 = t.assign(method=t.method.replace("delong", "exact"))  # exact is never primary
    assert CL.choose_primary(t3) == "logit_delong"


def test_simulation_cells_are_seeded_and_complete():
    a = simulate_cell(10, 40, 0.8, reps=40, n_boot=100, seed=3)
    b = simulate_cell(10, 40, 0.8, reps=40, n_boot=100, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.method) == list(CL.METHODS)
    assert (a.truth_below + a.truth_above + a.coverage).to_numpy() == pytest.approx(1.0)


def test_committed_table_is_complete_and_precise():
    from alnm_core.stats.coverage import AUCS, DESIGNS, REPS

    t = CL.load_coverage_table()
    assert set(t.method) == set(CL.METHODS)
    cells = set(zip(t.n_pos, t.n_neg, t.auc))
    assert cells == {(p, n, a) for p, n in DESIGNS for a in AUCS}
    assert len(t) == len(cells) * len(CL.METHODS)
    assert (t.reps == REPS).all() and (t.n_boot == 2000).all()
    assert 1.96 * t.mc_se.max() <= 0.01  # the +-0.01 precision asked for
    # the audit, reproduced: at 10/90 the DeLong CI under-covers, exact worst
    r = t[(t.n_pos == 10) & (t.n_neg == 90) & (t.auc == 0.9)].set_index("method").coverage
    assert r["exact"] < r["delong"] < r["logit_delong"]


def test_primary_method_follows_from_the_committed_table():
    from alnm_core.config import StatsConfig
    from alnm_core.stats.auc_ci import PRIMARY

    assert CL.choose_primary(CL.load_coverage_table()) == PRIMARY == StatsConfig().auc_ci


def test_docs_show_the_committed_table():
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "statistics-coverage.md").read_text()
    assert CL.coverage_markdown(CL.load_coverage_table()) in doc


def test_footnote_states_the_coverage_at_the_cohorts_size():
    f = CL.coverage_footnote("logit_delong", 20, 30, 0.91)
    cov = CL.simulated_coverage("logit_delong", 20, 30, 0.91)
    assert f.startswith("AUC 95% CI: logit-transformed DeLong; its simulated coverage is "
                        f"{cov:.3f} at this cohort's size and AUC 0.91")
    f2 = CL.coverage_footnote("delong", 78, 124, 0.7)
    assert "nearest simulated design, 80 cases / 120 controls (this cohort: 78 / 124)" in f2
    with pytest.raises(ValueError, match="95%"):
        CL.coverage_footnote("delong", 20, 30, 0.9, level=0.9)
    # a whole Table 3: the range over its rows' AUCs, and the paper's exact CI beside it
    aucs = [0.572, 0.702, 0.908, 0.913]
    f3 = CL.coverage_footnote("logit_delong", 20, 30, aucs, compare=("exact",))
    covs = [CL.simulated_coverage("logit_delong", 20, 30, a) for a in aucs]
    ex = [CL.simulated_coverage("exact", 20, 30, a) for a in aucs]
    assert f"coverage is {min(covs):.3f}–{max(covs):.3f} at this cohort's size" in f3
    assert "the rows' AUCs (0.57–0.91), those outside 0.6–0.95 read at the nearest" in f3
    assert f"exact binomial on AUC x N (MedCalc / the paper's Table 3): {min(ex):.3f}–{max(ex):.3f}" in f3


@pytest.mark.slow
def test_a_fresh_simulation_agrees_with_the_committed_table():
    t = CL.load_coverage_table()
    fresh = simulate_cell(10, 90, 0.8, reps=600, seed=99).set_index("method")
    ref = t[(t.n_pos == 10) & (t.n_neg == 90) & (t.auc == 0.8)].set_index("method")
    for m in CL.METHODS:
        se = np.sqrt(ref.coverage[m] * (1 - ref.coverage[m]) / 600)
        assert abs(fresh.coverage[m] - ref.coverage[m]) < 4 * se + 0.002, m
