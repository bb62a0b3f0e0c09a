"""ROC curve, AUC (Mann-Whitney, ties count 1/2) and the Youden-optimal threshold, as pROC.

Direction is fixed: positive class = 1 and a higher score means more likely positive
(pROC's ``direction = "<"``); nothing is flipped silently.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.stats import rankdata

from ._validation import check_labels, check_scores


def auc(y_true, score) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count 1/2).

    Args:
        y_true: 0/1 labels (1 = positive).
        score: scores, higher = more likely positive.

    Returns:
        AUC in [0, 1].

    Example:
        >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """
    y = check_labels(y_true)
    s = check_scores(score, y.size)
    r = rankdata(s)  # midranks
    n1 = int(y.sum())
    n0 = y.size - n1
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


class RocCurve(NamedTuple):
    """ROC coordinates at pROC's thresholds (-inf, midpoints between unique scores, +inf)."""

    thresholds: np.ndarray
    sensitivity: np.ndarray
    specificity: np.ndarray

    @property
    def fpr(self) -> np.ndarray:
        return 1 - self.specificity


def roc_curve(y_true, score) -> RocCurve:
    """Sensitivity and specificity at every threshold, positive when ``score >= threshold``.

    Thresholds are pROC's: ``-inf``, the midpoints between consecutive unique scores, ``+inf``
    (increasing), so sensitivity decreases from 1 to 0 along the arrays.
    """
    y = check_labels(y_true)
    s = check_scores(score, y.size)
    u = np.unique(s)
    thr = np.concatenate(([-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]))
    pos, neg = np.sort(s[y == 1]), np.sort(s[y == 0])
    sen = 1 - np.searchsorted(pos, thr, side="left") / pos.size
    spe = np.searchsorted(neg, thr, side="left") / neg.size
    return RocCurve(thr, sen, spe)


class YoudenResult(NamedTuple):
    threshold: float
    sensitivity: float
    specificity: float
    youden_j: float
    all_thresholds: tuple[float, ...]


def youden_threshold(y_true, score) -> YoudenResult:
    """Threshold maximising Youden's J = sensitivity + specificity - 1 (pROC ``coords(, "best")``).

    Among equally good thresholds pROC returns them all; ``threshold`` is the first (lowest)
    and ``all_thresholds`` lists every one. The infinite end thresholds are never chosen.

    Example:
        >>> youden_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]).threshold
        0.575
    """
    curve = roc_curve(y_true, score)
    j = curve.sensitivity + curve.specificity - 1
    inner = np.isfinite(curve.thresholds)
    if not inner.any():
        raise ValueError("all scores are equal: no threshold separates the classes")
    jj = np.where(inner, j, -np.inf)
    best = np.flatnonzero(np.isclose(jj, jj.max(), rtol=0, atol=1e-12))
    i = int(best[0])
    return YoudenResult(float(curve.thresholds[i]), float(curve.sensitivity[i]),
                        float(curve.specificity[i]), float(j[i]),
                        tuple(float(curve.thresholds[k]) for k in best))
