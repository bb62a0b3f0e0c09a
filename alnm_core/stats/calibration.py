"""Calibration of predicted probabilities: Brier score, intercept and slope, reliability bins.

* Calibration slope: coefficient ``b`` of ``logit P(y=1) = a + b * logit(p)`` (ideal 1).
* Calibration intercept (calibration-in-the-large): ``a`` in ``logit P(y=1) = a + logit(p)``,
  i.e. with ``logit(p)`` as an offset (ideal 0).
Probabilities are clipped to ``[eps, 1 - eps]`` before the logit.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ._validation import check_labels, check_scores


def _check_probs(y_true, prob):
    y = check_labels(y_true)
    p = check_scores(prob, y.size, name="prob")
    if p.min() < 0 or p.max() > 1:
        raise ValueError("prob must be probabilities in [0, 1]")
    return y, p


def brier_score(y_true, prob) -> float:
    """Mean squared difference between probability and outcome (0 = perfect)."""
    y, p = _check_probs(y_true, prob)
    return float(np.mean((p - y) ** 2))


class Calibration(NamedTuple):
    intercept: float
    slope: float
    brier: float
    n: int


def calibration_intercept_slope(y_true, prob, *, eps: float = 1e-6) -> Calibration:
    """Calibration intercept (with logit offset) and slope by logistic regression."""
    import statsmodels.api as sm

    y, p = _check_probs(y_true, prob)
    lp = np.log(np.clip(p, eps, 1 - eps) / (1 - np.clip(p, eps, 1 - eps)))
    if np.ptp(lp) == 0:
        raise ValueError("all probabilities are equal: the calibration slope is undefined")
    import warnings

    try:
        with warnings.catch_warnings(), np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")
            slope_fit = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit()
            slope = float(slope_fit.params[1])
            int_fit = sm.GLM(y, np.ones((y.size, 1)), family=sm.families.Binomial(), offset=lp).fit()
            intercept = float(int_fit.params[0])
    except Exception as exc:  # perfect separation and friends
        raise ValueError(f"calibration model could not be fitted ({type(exc).__name__}: {exc})") from exc
    if not (np.isfinite(slope) and np.isfinite(intercept)) or abs(slope) > 1e3:
        raise ValueError("calibration model did not converge (classes separated by the score)")
    return Calibration(intercept, slope, brier_score(y, p), int(y.size))


def reliability_table(y_true, prob, *, n_bins: int = 10, strategy: str = "quantile") -> pd.DataFrame:
    """Binned mean predicted probability vs observed event rate.

    Args:
        strategy: ``quantile`` (equal counts) or ``uniform`` (equal widths on [0, 1]).

    Returns:
        DataFrame ``bin, n, mean_predicted, observed, low, high`` (Clopper-Pearson CI of the
        observed rate); empty bins are omitted.
    """
    from .diagnostic import clopper_pearson

    y, p = _check_probs(y_true, prob)
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    elif strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        raise ValueError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    rows = []
    for b in np.unique(idx):
        sel = idx == b
        k, n = int(y[sel].sum()), int(sel.sum())
        lo, hi = clopper_pearson(k, n)
        rows.append(dict(bin=int(b), n=n, mean_predicted=float(p[sel].mean()),
                         observed=k / n, low=lo, high=hi))
    return pd.DataFrame(rows)
