"""DeLong's variance of the AUC and tests comparing ROC curves, as R's pROC computes them.

Placements come from Sun & Xu's (2014) midrank algorithm: with ``Tz`` the midranks of all
scores, ``Tx`` the midranks among positives and ``Ty`` among negatives,

* ``V10_i = (Tz_i - Tx_i) / n``  for each positive (its fraction of negatives below, ties 1/2),
* ``V01_j = 1 - (Tz_j - Ty_j) / m`` for each negative (its fraction of positives above),

so the AUC and its covariance matrix cost O(N log N) instead of O(m n). Covariances use the
``n - 1`` denominator, as pROC (``var(roc, method = "delong")``).

Sign convention: a - b, as pROC's ``roc.test(roc1, roc2)``.
"""
from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from ._validation import check_alternative, check_labels, check_level, check_scores


class Placements(NamedTuple):
    """AUCs and DeLong placements of k scores against one label vector."""

    aucs: np.ndarray  # (k,)
    v10: np.ndarray  # (k, m) positives' placements
    v01: np.ndarray  # (k, n) negatives' placements


def _sorted_midranks(xs: np.ndarray) -> np.ndarray:
    """Midranks (1-based, ties averaged) of an already sorted 1-D array."""
    new = np.empty(xs.size, bool)
    new[:1] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], xs.size)
    return np.repeat((starts + ends + 1) / 2.0, ends - starts)


def midrank(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their mean rank (as ``scipy.stats.rankdata``, faster in 1-D)."""
    x = np.asarray(x)
    order = np.argsort(x)
    out = np.empty(x.size)
    out[order] = _sorted_midranks(x[order])
    return out


def _placements_one(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """V10, V01 of one score with a single sort: the positives' and negatives' own midranks
    are read off the combined sorted sequence, which is already sorted within each class."""
    m, n = pos.size, neg.size
    z = np.concatenate([pos, neg])
    order = np.argsort(z)
    zs = z[order]
    tz = np.empty(m + n)
    tz[order] = _sorted_midranks(zs)
    is_pos = order < m
    tx = np.empty(m)
    tx[order[is_pos]] = _sorted_midranks(zs[is_pos])
    ty = np.empty(n)
    ty[order[~is_pos] - m] = _sorted_midranks(zs[~is_pos])
    return (tz[:m] - tx) / n, 1.0 - (tz[m:] - ty) / m


def placements(y_true, scores) -> Placements:
    """Sun & Xu midrank placements for one or more score vectors.

    Args:
        y_true: 0/1 labels, at least 2 of each class.
        scores: one score vector ``(N,)`` or several ``(k, N)``.
    """
    y = check_labels(y_true, min_per_class=2)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    k = s.shape[0]
    for i in range(k):
        check_scores(s[i], y.size, name=f"score #{i}" if k > 1 else "score")
    pos, neg = s[:, y == 1], s[:, y == 0]
    parts = [_placements_one(pos[i], neg[i]) for i in range(k)]
    v10 = np.vstack([p[0] for p in parts])
    v01 = np.vstack([p[1] for p in parts])
    aucs = v10.mean(axis=1)
    return Placements(aucs, v10, v01)


def delong_cov(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and their DeLong covariance matrix ``S = S10/m + S01/n``.

    Returns:
        ``(aucs, S)``, shapes ``(k,)`` and ``(k, k)``.
    """
    p = placements(y_true, scores)
    m, n = p.v10.shape[1], p.v01.shape[1]
    s10 = np.atleast_2d(np.cov(p.v10))
    s01 = np.atleast_2d(np.cov(p.v01))
    return p.aucs, s10 / m + s01 / n


def delong_var(y_true, score) -> float:
    """DeLong variance of one AUC (pROC ``var(roc, method = "delong")``)."""
    _, S = delong_cov(y_true, score)
    return float(S[0, 0])


class Comparison(NamedTuple):
    """z, p-value and CI of an AUC difference."""

    z: float
    p_value: float
    ci_low: float
    ci_high: float


#: below this, an AUC difference or its standard deviation counts as exactly zero
_ZERO = 1e-15


def compare(diff: float, var_diff: float, *, alternative: str = "two-sided",
            level: float = 0.95) -> Comparison:
    """The z statistic, p-value and CI of a paired AUC difference from its DeLong variance.

    The one routine behind every DeLong entry point (:func:`delong_test`, :func:`delong_matrix`),
    as pROC's paired calculations serve both its test and its CI: ``z = diff / sd``; a zero
    difference gives ``z = 0`` (p = 1 two-sided, 0.5 one-sided), a non-zero difference with zero
    variance ``z = +-inf`` (p = 0 or 1); the CI of the difference is ``diff +- q * sd`` (always
    two-sided, as pROC).

    Example:
        >>> compare(0.0, 0.02, alternative="greater").p_value
        0.5
        >>> compare(0.5, 0.0).z
        inf
    """
    check_alternative(alternative)
    q = stats.norm.ppf(1 - (1 - check_level(level)) / 2)
    sd = float(np.sqrt(max(var_diff, 0.0)))
    if abs(diff) <= _ZERO:
        z = 0.0
    elif sd <= _ZERO:
        z = float(np.sign(diff) * np.inf)
    else:
        z = diff / sd
    if alternative == "two-sided":
        p = float(2 * stats.norm.sf(abs(z)))
    elif alternative == "greater":
        p = float(stats.norm.sf(z))
    else:
        p = float(stats.norm.cdf(z))
    return Comparison(float(z), p, diff - q * sd, diff + q * sd)


class DeLongResult(NamedTuple):
    """Paired DeLong test of two correlated ROC curves (difference a - b)."""

    auc_a: float
    auc_b: float
    diff: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    var_a: float
    var_b: float
    cov: float
    alternative: str


def delong_test(y_true, score_a, score_b, *, alternative: str = "two-sided",
                level: float = 0.95) -> DeLongResult:
    """Paired DeLong test for two ROC curves on the same patients (pROC ``roc.test``).

    Args:
        y_true: 0/1 labels (at least 2 per class).
        score_a, score_b: the two models' scores for the same patients, same order.
        alternative: ``two-sided``, ``greater`` (AUC a > AUC b) or ``less``.
        level: confidence level of the CI of the difference (always two-sided, as pROC).

    Returns:
        :class:`DeLongResult`; z, p and the CI come from :func:`compare` (equal AUCs: ``z = 0``,
        p = 1 two-sided and 0.5 one-sided; a zero variance with unequal AUCs: ``z = +-inf``).

    Example:
        >>> r = delong_test([0, 0, 0, 1, 1, 1], [1, 2, 3, 4, 5, 6], [1, 5, 2, 4, 3, 6])
        >>> round(r.auc_a, 3), round(r.auc_b, 3)
        (1.0, 0.778)
    """
    y = check_labels(y_true, min_per_class=2)
    a = check_scores(score_a, y.size, name="score_a")
    b = check_scores(score_b, y.size, name="score_b")
    aucs, S = delong_cov(y, np.vstack([a, b]))
    diff = float(aucs[0] - aucs[1])
    c = compare(diff, float(S[0, 0] + S[1, 1] - 2 * S[0, 1]), alternative=alternative, level=level)
    return DeLongResult(float(aucs[0]), float(aucs[1]), diff, c.z, c.p_value, c.ci_low, c.ci_high,
                        float(S[0, 0]), float(S[1, 1]), float(S[0, 1]), alternative)


class UnpairedDeLongResult(NamedTuple):
    auc_a: float
    auc_b: float
    statistic: float
    df: float
    p_value: float
    alternative: str


def delong_test_unpaired(y_a, score_a, y_b, score_b, *,
                         alternative: str = "two-sided") -> UnpairedDeLongResult:
    """DeLong test for two ROC curves on different patients (pROC, ``paired = FALSE``).

    The statistic is ``D = (AUC_a - AUC_b) / sqrt(V_a + V_b)`` referred to Student's t with
    pROC's Welch-Satterthwaite degrees of freedom ``(V_a + V_b)^2 / (V_a^2/(N_a - 1) +
    V_b^2/(N_b - 1))``, ``N`` being each curve's number of patients.

    When both variances are 0 (each curve perfect, constant or otherwise degenerate) the
    convention is the paired test's (:func:`compare`): different AUCs give ``D = +-inf`` and
    p = 0 two-sided (0 or 1 one-sided), equal AUCs ``D = 0`` and p = 1 (0.5 one-sided); ``df``
    is NaN (0/0), as pROC's. pROC itself returns ``D = Inf`` (``NaN`` for equal AUCs) with
    p = NaN there.

    Example:
        >>> r = delong_test_unpaired([1]*5 + [0]*7, [.9]*5 + [.1]*7, [1]*6 + [0]*6, [.5]*12)
        >>> r.statistic, r.p_value
        (inf, 0.0)
    """
    check_alternative(alternative)
    pa, pb = placements(y_a, score_a), placements(y_b, score_b)
    terms = []
    for p in (pa, pb):
        vx, vy = np.var(p.v10[0], ddof=1), np.var(p.v01[0], ddof=1)
        m, n = p.v10.shape[1], p.v01.shape[1]
        terms.append((vx / m + vy / n, vx, vy, m, n))
    var_sum = terms[0][0] + terms[1][0]
    diff = float(pa.aucs[0] - pb.aucs[0])
    sd = float(np.sqrt(max(var_sum, 0.0)))
    if abs(diff) <= _ZERO:
        t = 0.0
    elif sd <= _ZERO:
        t = float(np.sign(diff) * np.inf)
    else:
        t = diff / sd
    # pROC's Welch-Satterthwaite form: each curve's variance over (its N - 1)
    denom = sum(v ** 2 / (m + n - 1) for v, _, _, m, n in terms)
    df = var_sum ** 2 / denom if denom > 0 else float("nan")
    dist = stats.t(df) if np.isfinite(df) else stats.norm  # only t = 0 or +-inf reach norm
    if alternative == "two-sided":
        p = float(2 * dist.sf(abs(t)))
    elif alternative == "greater":
        p = float(dist.sf(t))
    else:
        p = float(dist.cdf(t))
    return UnpairedDeLongResult(float(pa.aucs[0]), float(pb.aucs[0]), float(t), float(df), p,
                                alternative)


def delong_matrix(y_true, scores: dict[str, np.ndarray], *, level: float = 0.95) -> pd.DataFrame:
    """Paired DeLong tests for every pair of models, as a DataFrame.

    Columns: ``model_a, model_b, auc_a, auc_b, z, p_value`` (the contract of ``delong.csv``),
    then ``diff, ci_low, ci_high, cov``, and the p-values adjusted over the family of all pairs:
    ``p_holm`` (Holm) and ``p_bh`` (Benjamini-Hochberg). Covariances are computed once for all
    models (one ranking per model); z, p and CI come from :func:`compare`, as in
    :func:`delong_test`.
    """
    from .multiplicity import benjamini_hochberg, holm

    names = list(scores)
    if len(names) < 2:
        raise ValueError("delong_matrix needs at least two models")
    y = check_labels(y_true, min_per_class=2)
    mat = np.vstack([check_scores(scores[k], y.size, name=f"scores[{k!r}]") for k in names])
    aucs, S = delong_cov(y, mat)
    rows = []
    for i, j in itertools.combinations(range(len(names)), 2):
        diff = float(aucs[i] - aucs[j])
        c = compare(diff, float(S[i, i] + S[j, j] - 2 * S[i, j]), level=level)
        rows.append(dict(model_a=names[i], model_b=names[j], auc_a=float(aucs[i]),
                         auc_b=float(aucs[j]), z=c.z, p_value=c.p_value, diff=diff,
                         ci_low=c.ci_low, ci_high=c.ci_high, cov=float(S[i, j])))
    out = pd.DataFrame(rows)
    out["p_holm"] = holm(out.p_value.to_numpy())
    out["p_bh"] = benjamini_hochberg(out.p_value.to_numpy())
    return out


def delong_naive(y_true, score_a, score_b) -> tuple[float, float]:
    """Reference O(m x n) DeLong z and two-sided p, for benchmarks and tests only."""
    y = check_labels(y_true, min_per_class=2)
    out = []
    for s in (np.asarray(score_a, float), np.asarray(score_b, float)):
        x, w = s[y == 1], s[y == 0]
        psi = (x[:, None] > w[None, :]) + 0.5 * (x[:, None] == w[None, :])
        out.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    (a1, v10a, v01a), (a2, v10b, v01b) = out
    m, n = v10a.size, v01a.size
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    S = s10 / m + s01 / n
    sd = np.sqrt(S[0, 0] + S[1, 1] - 2 * S[0, 1])
    z = (a1 - a2) / sd if sd > 0 else 0.0
    return float(z), float(2 * stats.norm.sf(abs(z)))
