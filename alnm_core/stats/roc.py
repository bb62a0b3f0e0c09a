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
    """The Youden-optimal threshold, as pROC's ``coords(roc, "best", best.method = "youden")``.

    ``finite`` is False when no threshold does better than chance (best J = 0, reached at the
    infinite end thresholds: every patient called positive, or none). Then ``threshold`` is
    ``-inf`` (pROC's first row) and a table should print ``label`` ("no threshold") in place of
    a cut-off, rather than leave the row out.
    """

    threshold: float
    sensitivity: float
    specificity: float
    youden_j: float
    all_thresholds: tuple[float, ...]
    finite: bool = True

    @property
    def label(self) -> str:
        """The threshold for a table cell: ``"0.412"``, or ``"no threshold"`` (J = 0)."""
        return f"{self.threshold:.3f}" if self.finite else "no threshold"


#: Youden's J values closer than this count as tied (pROC compares them exactly; they differ
#: only where floating-point rounding splits a mathematical tie)
_J_TIE = 1e-12


def youden_threshold(y_true, score) -> YoudenResult:
    """Threshold maximising Youden's J = sensitivity + specificity - 1 (pROC ``coords(, "best")``).

    Every threshold of :func:`roc_curve` is a candidate, the infinite end thresholds included,
    as in pROC: they give J = 0, so a model no better than chance (AUC < 0.5 with no useful
    cut-off, or constant scores) gets J = 0 at ``-inf`` and ``+inf`` and ``finite = False``
    instead of an inside threshold with J < 0 or an error. Among equally good thresholds pROC
    returns them all; ``threshold`` is the first (lowest) and ``all_thresholds`` lists every one.

    Example:
        >>> r = youden_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        >>> [round(t, 3) for t in r.all_thresholds]
        [0.225, 0.6]
        >>> youden_threshold([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5]).label
        'no threshold'
    """
    curve = roc_curve(y_true, score)
    j = curve.sensitivity + curve.specificity - 1
    best = np.flatnonzero(np.isclose(j, j.max(), rtol=0, atol=_J_TIE))
    i = int(best[0])
    return YoudenResult(float(curve.thresholds[i]), float(curve.sensitivity[i]),
                        float(curve.specificity[i]), float(j[i]),
                        tuple(float(curve.thresholds[k]) for k in best),
                        bool(j.max() > _J_TIE))
