"""Confidence intervals for one AUC: exact binomial (MedCalc), DeLong (pROC), bootstrap.

* ``exact``: Clopper-Pearson interval treating ``AUC x N`` as a binomial count out of ``N``
  patients (MedCalc's "binomial exact" AUC interval; it reproduces the CIs printed in the
  paper's Table 3 from the AUC and N = 50 alone).
* ``delong``: ``AUC +- z * sqrt(DeLong variance)``, clipped to [0, 1], as pROC's
  ``ci.auc(method = "delong")``.
* ``bootstrap``: stratified (cases and controls resampled separately, as pROC's default),
  seeded, percentile interval.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from ._validation import check_labels, check_level, check_scores
from .delong import delong_cov
from .roc import auc as _auc


class AucCI(NamedTuple):
    """An AUC with its confidence interval and how it was computed."""

    auc: float
    low: float
    high: float
    method: str = ""
    level: float = 0.95


def exact_auc_interval(auc_value: float, n: int, *, level: float = 0.95) -> tuple[float, float]:
    """MedCalc's exact binomial interval for an AUC from ``n`` patients.

    Example:
        >>> [round(v, 3) for v in exact_auc_interval(0.908, 50)]   # paper Table 3, T2WI
        [0.792, 0.971]
    """
    check_level(level)
    if not 0 <= auc_value <= 1:
        raise ValueError(f"AUC must be in [0, 1], got {auc_value}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    x = auc_value * n
    a = (1 - level) / 2
    low = 0.0 if x <= 0 else float(stats.beta.ppf(a, x, n - x + 1))
    high = 1.0 if x >= n else float(stats.beta.ppf(1 - a, x + 1, n - x))
    return low, high


def bootstrap_aucs(y_true, score, *, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """AUCs of ``n_boot`` stratified bootstrap resamples (vectorised, midrank AUC)."""
    y = check_labels(y_true)
    s = check_scores(score, y.size)
    rng = np.random.default_rng(seed)
    pos, neg = s[y == 1], s[y == 0]
    m, n = pos.size, neg.size
    out = np.empty(n_boot)
    chunk = max(1, int(2e6 // (m + n)))
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        bp = pos[rng.integers(0, m, size=(k, m))]
        bn = neg[rng.integers(0, n, size=(k, n))]
        r = stats.rankdata(np.concatenate([bp, bn], axis=1), axis=1)
        out[start:start + k] = (r[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    return out


def auc_ci(y_true, score, *, method: str = "exact", level: float = 0.95,
           n_boot: int = 2000, seed: int = 0) -> AucCI:
    """AUC with a confidence interval.

    Args:
        y_true: 0/1 labels (1 = positive).
        score: scores, higher = more likely positive (no direction flipping).
        method: ``exact`` (MedCalc binomial), ``delong`` (pROC) or ``bootstrap``.
        level: confidence level.
        n_boot: bootstrap replicates (``bootstrap`` only).
        seed: bootstrap seed.

    Returns:
        :class:`AucCI` ``(auc, low, high, method, level)``.

    Example:
        >>> r = auc_ci([0, 0, 1, 1, 0, 1], [0.2, 0.3, 0.7, 0.6, 0.65, 0.9], method="delong")
        >>> round(r.auc, 3)
        0.889
    """
    level = check_level(level)
    y = check_labels(y_true, min_per_class=2 if method == "delong" else 1)
    s = check_scores(score, y.size)
    a = _auc(y, s)
    if method == "exact":
        low, high = exact_auc_interval(a, y.size, level=level)
    elif method == "delong":
        _, S = delong_cov(y, s)
        sd = float(np.sqrt(max(S[0, 0], 0.0)))
        q = stats.norm.ppf(1 - (1 - level) / 2)
        low, high = max(0.0, a - q * sd), min(1.0, a + q * sd)
    elif method == "bootstrap":
        if n_boot < 100:
            raise ValueError(f"n_boot must be >= 100, got {n_boot}")
        boots = bootstrap_aucs(y, s, n_boot=n_boot, seed=seed)
        low, high = (float(v) for v in np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2]))
    else:
        raise ValueError(f"method must be 'exact', 'delong' or 'bootstrap', got {method!r}")
    return AucCI(a, float(low), float(high), method, level)
