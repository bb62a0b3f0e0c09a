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
