"""Recalibration of predicted probabilities: logistic (Platt) and isotonic maps, fitted on one
set of predictions and applied to another.

Meant to be fitted on the **out-of-fold** predictions of the development patients and applied
to the test predictions (never fitted on the test set). To show calibration after
recalibration on the out-of-fold predictions themselves, use :func:`cross_fitted`, which
recalibrates each fold with a map fitted on the other folds.

* ``platt``: logistic recalibration, ``P(y = 1) = expit(a + b * logit(p))`` fitted by maximum
  likelihood (the calibration-slope model of :mod:`.calibration`, so the fitted ``b`` is the
  calibration slope and after recalibration on the same data the slope is 1 and the intercept
  0; Cox 1958, Platt 1999 on the logit of the score, Steyerberg 2019 ch. 15). Probabilities
  are clipped to ``[eps, 1 - eps]`` before the logit. Pinned to R ``glm(y ~ qlogis(p),
  binomial)``.
* ``isotonic``: the non-decreasing step function closest to the outcomes in least squares
  (pool-adjacent-violators; tied probabilities pooled first, as scikit-learn), applied to new
  probabilities by linear interpolation between the fitted blocks' ends and clamped outside
  the fitted range (scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``). It can
  return exactly 0 or 1 and is unstable on small sets; Platt is the default.

Example:
    >>> fit = fit_platt([0, 0, 1, 0, 1, 1], [0.1, 0.3, 0.4, 0.6, 0.7, 0.9])
    >>> [round(float(v), 3) for v in apply_platt(fit, [0.5])]
    [0.5]
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.special import expit

from ._validation import check_labels, check_scores
from .calibration import _check_probs, calibration_intercept_slope

METHODS = ("platt", "isotonic")


class PlattFit(NamedTuple):
    """``P(y = 1) = expit(intercept + slope * logit(p))``, fitted on ``n`` predictions."""

    intercept: float
    slope: float
    n: int
    eps: float = 1e-6


class IsotonicFit(NamedTuple):
    """A non-decreasing map from probability to probability, as interpolation knots."""

    x: np.ndarray
    y: np.ndarray
    n: int


def _logit(p: np.ndarray, eps: float) -> np.ndarray:
    q = np.clip(p, eps, 1 - eps)
    return np.log(q / (1 - q))


def fit_platt(y_true, prob, *, eps: float = 1e-6, max_iter: int = 100) -> PlattFit:
    """Fit logistic recalibration ``logit P(y = 1) = a + b logit(p)`` by Newton-Raphson.

    Raises:
        ValueError: one class only, probabilities outside [0, 1], all probabilities equal, or
            the classes separated by the probability (no maximum likelihood estimate exists:
            use ``isotonic``), or no convergence.
    """
    y, p = _check_probs(y_true, prob)
    x = _logit(p, eps)
    if np.ptp(x) == 0:
        raise ValueError("all probabilities are equal: a Platt map cannot be fitted")
    x0, x1 = x[y == 0], x[y == 1]
    if x0.max() <= x1.min() or x1.max() <= x0.min():
        raise ValueError("the classes are separated by the probability (every positive at or "
                         "above every negative, or the reverse): the Platt fit has no finite "
                         "maximum likelihood estimate; use isotonic recalibration")
    X = np.column_stack([np.ones_like(x), x])
    ybar = y.mean()
    beta = np.array([np.log(ybar / (1 - ybar)), 0.0])
    for _ in range(max_iter):
        mu = expit(X @ beta)
        w = mu * (1 - mu)
        step = np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (y - mu))
        beta = beta + step
        if np.max(np.abs(step)) <= 1e-13 * (1 + np.max(np.abs(beta))):
            break
    else:
        raise ValueError(f"the Platt fit did not converge in {max_iter} iterations")
    return PlattFit(float(beta[0]), float(beta[1]), int(y.size), float(eps))


def apply_platt(fit: PlattFit, prob) -> np.ndarray:
    """Recalibrated probabilities ``expit(a + b logit(p))`` for new probabilities ``p``."""
    p = check_scores(prob, np.asarray(prob).shape[0], name="prob")
    if p.min() < 0 or p.max() > 1:
        raise ValueError("prob must be probabilities in [0, 1]")
    return expit(fit.intercept + fit.slope * _logit(p, fit.eps))


def _pava(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted pool-adjacent-violators: block values, first and last index of each block."""
    val, wt, start, end = [], [], [], []
    for i, (v, w) in enumerate(zip(values, weights)):
        val.append(float(v)), wt.append(float(w)), start.append(i), end.append(i)
        while len(val) > 1 and val[-2] > val[-1]:
            w2 = wt[-2] + wt[-1]
            v2 = (val[-2] * wt[-2] + val[-1] * wt[-1]) / w2
            e = end[-1]
            for lst in (val, wt, start, end):
                lst.pop()
            val[-1], wt[-1], end[-1] = v2, w2, e
    return np.array(val), np.array(start), np.array(end)


def fit_isotonic(y_true, prob) -> IsotonicFit:
    """Fit an isotonic (non-decreasing) recalibration map by pool-adjacent-violators.

    Example:
        >>> fit = fit_isotonic([0, 1, 0, 1], [0.2, 0.4, 0.6, 0.8])
        >>> apply_isotonic(fit, [0.2, 0.5, 0.8]).tolist()
        [0.0, 0.5, 1.0]
    """
    y, p = _check_probs(y_true, prob)
    u, inv, cnt = np.unique(p, return_inverse=True, return_counts=True)
    means = np.bincount(inv, weights=y) / cnt
    val, start, end = _pava(means, cnt)
    xs, ys = [], []
    for v, s, e in zip(val, start, end):
        xs.append(u[s]), ys.append(v)
        if e != s:
            xs.append(u[e]), ys.append(v)
    return IsotonicFit(np.array(xs, float), np.array(ys, float), int(y.size))


def apply_isotonic(fit: IsotonicFit, prob) -> np.ndarray:
    """Recalibrated probabilities: linear between the fitted knots, clamped outside them."""
    p = check_scores(prob, np.asarray(prob).shape[0], name="prob")
    return np.interp(p, fit.x, fit.y)


def fit_recalibration(y_true, prob, *, method: str = "platt"):
    """Fit a recalibration map (``platt`` or ``isotonic``)."""
    if method == "platt":
        return fit_platt(y_true, prob)
    if method == "isotonic":
        return fit_isotonic(y_true, prob)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def apply_recalibration(fit, prob) -> np.ndarray:
    """Apply a map from :func:`fit_recalibration` to new probabilities."""
    if isinstance(fit, PlattFit):
        return apply_platt(fit, prob)
    if isinstance(fit, IsotonicFit):
        return apply_isotonic(fit, prob)
    raise TypeError(f"not a recalibration fit: {type(fit).__name__}")


def cross_fitted(y_true, prob, folds, *, method: str = "platt") -> np.ndarray:
    """Recalibrate each fold's predictions with a map fitted on the other folds only.

    Args:
        y_true, prob: out-of-fold labels and probabilities of the development patients.
        folds: fold label of each patient (any hashable values; at least 2 folds).
        method: ``platt`` or ``isotonic``.

    Returns:
        The cross-fitted recalibrated probabilities, in the input order: honest calibration
        curves, slopes and thresholds after recalibration without reusing a patient's own
        outcome.
    """
    y = check_labels(y_true)
    p = check_scores(prob, y.size, name="prob")
    f = np.asarray(folds)
    if f.shape != (y.size,):
        raise ValueError(f"folds has shape {f.shape}; one fold label per patient ({y.size}) needed")
    labels = pd.unique(f)
    if labels.size < 2:
        raise ValueError("cross-fitting needs at least 2 folds")
    out = np.empty(y.size)
    for k in labels:
        held = f == k
        try:
            fit = fit_recalibration(y[~held], p[~held], method=method)
        except ValueError as exc:
            raise ValueError(f"fold {k!r}: the map fitted on the other folds failed: {exc}") from exc
        out[held] = apply_recalibration(fit, p[held])
    return out


def calibration_before_after(y_true, prob_before, prob_after) -> pd.DataFrame:
    """Calibration intercept, slope and Brier score before and after recalibration.

    Returns:
        Two rows, ``stage`` = ``before`` / ``after``, with ``intercept, slope, brier, n`` (see
        :func:`.calibration.calibration_intercept_slope`; isotonic outputs of exactly 0 or 1 are
        clipped to 1e-6 there).
    """
    rows = []
    for stage, p in (("before", prob_before), ("after", prob_after)):
        c = calibration_intercept_slope(y_true, p)
        rows.append(dict(stage=stage, intercept=c.intercept, slope=c.slope, brier=c.brier, n=c.n))
    return pd.DataFrame(rows)
