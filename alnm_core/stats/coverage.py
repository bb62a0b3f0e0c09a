"""Simulated coverage of the confidence intervals the study offers (what 95% really means).

* AUC CIs on binormal data: positives ~ N(mu, 1), negatives ~ N(0, 1), so that the true AUC is
  ``Phi(mu / sqrt 2)``; fixed numbers of positives and negatives per sample.
* PPV / NPV CIs when the prevalence is estimated from the same sample (every cohort here): each
  patient is positive with probability ``prevalence``, then tested with the given sensitivity and
  specificity; the true predictive values follow from Bayes' rule.

Seeded, so the figures in README.md are reproducible (``alnm bench --only coverage`` prints them;
``tests/test_stats_coverage.py`` checks them on fewer replicates).

Example:
    >>> cov = auc_ci_coverage(25, 25, auc=0.8, method="delong", reps=200, seed=1)
    >>> 0.85 < cov < 1.0
    True
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from .auc_ci import auc_ci
from .diagnostic import metrics_from_counts


def binormal_mu(auc: float) -> float:
    """The separation of two unit-variance normals whose AUC is ``auc``."""
    return float(np.sqrt(2) * stats.norm.ppf(auc))


def auc_ci_coverage(n_pos: int, n_neg: int, *, auc: float = 0.8, method: str = "delong",
                    reps: int = 400, seed: int = 0, n_boot: int = 500, level: float = 0.95) -> float:
    """Share of ``reps`` simulated samples whose AUC CI (``method``) contains the true AUC."""
    rng = np.random.default_rng(seed)
    mu = binormal_mu(auc)
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    hit = 0
    for r in range(reps):
        s = np.r_[rng.normal(mu, 1, n_pos), rng.normal(0, 1, n_neg)]
        ci = auc_ci(y, s, method=method, n_boot=n_boot, seed=r, level=level)
        hit += ci.low <= auc <= ci.high
    return hit / reps


def predictive_value_coverage(n: int, *, prevalence: float, sensitivity: float, specificity: float,
                              method: str, reps: int = 2000, seed: int = 0,
                              level: float = 0.95) -> tuple[float, float]:
    """Coverage of the PPV and NPV intervals (``method``: ``exact`` or ``logit``) when the
    prevalence is estimated from the same sample of ``n`` patients.

    Samples where a predictive value is undefined (no test positive or no test negative) are
    left out of that value's coverage.
    """
    rng = np.random.default_rng(seed)
    p, se, sp = prevalence, sensitivity, specificity
    ppv = se * p / (se * p + (1 - sp) * (1 - p))
    npv = sp * (1 - p) / (sp * (1 - p) + (1 - se) * p)
    cells = [p * se, (1 - p) * (1 - sp), p * (1 - se), (1 - p) * sp]  # tp, fp, fn, tn
    hits = {"ppv": [0, 0], "npv": [0, 0]}
    for _ in range(reps):
        tp, fp, fn, tn = rng.multinomial(n, cells)
        m = metrics_from_counts(tp, fp, fn, tn, level=level, ppv_npv_method=method)
        for key, truth in (("ppv", ppv), ("npv", npv)):
            e = m[key]
            if np.isfinite(e.low):
                hits[key][0] += e.low <= truth <= e.high
                hits[key][1] += 1
    return hits["ppv"][0] / hits["ppv"][1], hits["npv"][0] / hits["npv"][1]
