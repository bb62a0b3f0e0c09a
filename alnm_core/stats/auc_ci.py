"""Confidence intervals for one AUC: exact binomial (MedCalc), DeLong (pROC), logit DeLong,
percentile and BCa bootstrap.

* ``exact``: Clopper-Pearson interval treating ``AUC x N`` as a binomial count out of ``N``
  patients (MedCalc's "binomial exact" AUC interval, Stata ``roctab, binomial``; it reproduces
  the CIs printed in the paper's Table 3 from the AUC and N = 50 alone). It ignores how the
  N patients split into cases and controls and under-covers on unbalanced cohorts.
* ``delong``: ``AUC +- z * sqrt(V)`` with DeLong's variance ``V``, clipped to [0, 1], as pROC's
  ``ci.auc(method = "delong")`` (and Stata ``roctab``'s default).
* ``logit_delong``: the same variance on the logit scale (delta method), back-transformed:
  ``expit(logit(AUC) +- z * sqrt(V) / (AUC (1 - AUC)))`` (Pepe 2003, sec. 5.2; Qin & Hotilovac
  2008; Pohar Perme & Manevski 2019 recommend it over the untransformed interval). It stays
  inside (0, 1) and is asymmetric near 1, where the Wald interval under-covers.
* ``bootstrap``: stratified (cases and controls resampled separately, as pROC's default),
  seeded, percentile interval (quantile type 7, as pROC).
* ``bca``: the same replicates, bias-corrected and accelerated (:mod:`.bootstrap`, as
  ``boot::boot.ci(type = "bca")``) with the acceleration from the AUC's empirical influence
  values, which are DeLong's placements: ``(V10_i - AUC) / m`` for a case and
  ``(V01_j - AUC) / n`` for a control.

At AUC = 0 or 1 (complete separation) DeLong's variance is 0, the logit is infinite and every
bootstrap replicate equals the estimate, so ``logit_delong`` and ``bca`` return the exact bound
of :func:`separation_interval` instead (``delong`` and ``bootstrap`` keep pROC's point interval
[1, 1]); ``AucCI.note`` says so.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats
from scipy.special import expit

from ._validation import check_labels, check_level, check_scores
from .bootstrap import bca_interval
from .delong import placements
from .roc import auc as _auc

#: every AUC CI method, in the order of the coverage table
METHODS = ("delong", "logit_delong", "bootstrap", "bca", "exact")
#: the headline CI chosen by the coverage simulation (docs/statistics-coverage.md)
PRIMARY = "logit_delong"
#: how a table names each method
METHOD_LABELS = {
    "delong": "DeLong (as pROC)",
    "logit_delong": "logit-transformed DeLong",
    "bootstrap": "stratified percentile bootstrap",
    "bca": "stratified BCa bootstrap",
    "exact": "exact binomial on AUC x N (MedCalc / the paper's Table 3)",
}
#: the methods that need DeLong's placements (at least 2 cases and 2 controls)
_NEEDS_PLACEMENTS = ("delong", "logit_delong", "bca")


class AucCI(NamedTuple):
    """An AUC with its confidence interval, how it was computed, and any special case."""

    auc: float
    low: float
    high: float
    method: str = ""
    level: float = 0.95
    note: str = ""


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


def separation_interval(auc_value: float, n_pos: int, n_neg: int, *,
                        level: float = 0.95) -> tuple[float, float]:
    """Exact, distribution-free interval for an AUC of exactly 1 (or 0) in the sample.

    A sample AUC of 1 means every case scores above every control, in particular in
    ``k = min(n_pos, n_neg)`` disjoint case-control pairs: independent events, each of
    probability at most the true AUC. So ``P(AUC_hat = 1) <= AUC^k``, and the AUCs with
    ``AUC^k >= (1 - level) / 2`` form the interval ``[((1 - level) / 2)^(1/k), 1]`` (the
    Clopper-Pearson interval for k successes in k trials); at 0, the mirror image.

    Example:
        >>> [round(v, 4) for v in separation_interval(1.0, 10, 90)]
        [0.6915, 1.0]
    """
    level = check_level(level)
    k = min(int(n_pos), int(n_neg))
    if k < 1:
        raise ValueError("both classes are needed")
    bound = ((1 - level) / 2) ** (1 / k)
    if auc_value == 1:
        return float(bound), 1.0
    if auc_value == 0:
        return 0.0, float(1 - bound)
    raise ValueError(f"separation_interval is for an AUC of 0 or 1, got {auc_value}")


def bootstrap_aucs(y_true, score, *, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """AUCs of ``n_boot`` stratified bootstrap resamples (midrank AUC, ties count 1/2).

    Cases and controls are resampled separately with ``numpy.random.default_rng(seed)`` (case
    indices, then control indices, in chunks). The AUC of a resample needs no sorting: with the
    controls sorted once, each case's number of controls below it (and tied with it) in a
    resample is a cumulative count of the resampled controls at a fixed position, so a
    replicate costs O(m + n) integer operations. The count is exact, so the doubles are those
    of the midrank formula.
    """
    y = check_labels(y_true)
    s = check_scores(score, y.size)
    rng = np.random.default_rng(seed)
    pos, neg = s[y == 1], s[y == 0]
    m, n = pos.size, neg.size
    order = np.argsort(neg, kind="stable")
    sorted_neg = neg[order]
    lo = np.searchsorted(sorted_neg, pos, side="left")  # controls strictly below each case
    hi = np.searchsorted(sorted_neg, pos, side="right")  # ... below or tied
    place = np.empty(n, np.int64)
    place[order] = np.arange(n)  # each control's position among the sorted controls
    out = np.empty(n_boot)
    chunk = max(1, int(2e6 // (m + n)))
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        ip = rng.integers(0, m, size=(k, m))
        ineg = rng.integers(0, n, size=(k, n))
        counts = np.bincount((place[ineg] + n * np.arange(k)[:, None]).ravel(), minlength=k * n)
        cum = np.zeros((k, n + 1), np.int64)
        np.cumsum(counts.reshape(k, n), axis=1, out=cum[:, 1:])
        twice = cum[:, lo] + cum[:, hi]  # 2 x (below + ties / 2) for each original case
        out[start:start + k] = np.take_along_axis(twice, ip, axis=1).sum(axis=1) / (2 * m * n)
    return out


def _check_methods(methods) -> tuple[str, ...]:
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"method must be one of {', '.join(repr(m) for m in METHODS)}; "
                         f"got {bad[0] if bad else 'none'!r}")
    return methods


def auc_cis(y_true, score, *, methods=METHODS, level: float = 0.95, n_boot: int = 2000,
            seed: int = 0) -> dict[str, AucCI]:
    """The AUC with several confidence intervals at once (one ranking, one set of bootstrap
    replicates shared by ``bootstrap`` and ``bca``).

    Args:
        y_true: 0/1 labels (1 = positive), at least one of each class; with a single case or
            a single control DeLong's variance is undefined, so ``delong``, ``logit_delong``
            and ``bca`` return NaN bounds with a note (pROC's ``ci.auc`` gives NA there).
        score: scores, higher = more likely positive (no direction flipping).
        methods: any of :data:`METHODS`.
        level: confidence level.
        n_boot: bootstrap replicates (``bootstrap``, ``bca``; at least 100).
        seed: bootstrap seed.

    Returns:
        ``{method: AucCI}`` in the order asked.

    Example:
        >>> r = auc_cis([0, 0, 1, 1, 0, 1], [0.2, 0.3, 0.7, 0.6, 0.65, 0.9],
        ...             methods=("delong", "logit_delong"))
        >>> [round(r[k].low, 3) for k in r]
        [0.581, 0.261]
    """
    level = check_level(level)
    methods = _check_methods(methods)
    need_pl = any(m in _NEEDS_PLACEMENTS for m in methods)
    y = check_labels(y_true, min_per_class=1)
    s = check_scores(score, y.size)
    m_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    single = min(m_pos, n_neg) < 2  # DeLong's variance needs 2 of each class
    need_pl = need_pl and not single
    a = _auc(y, s)
    q = stats.norm.ppf(1 - (1 - level) / 2)
    var = np.nan
    if need_pl:
        p = placements(y, s)
        v10, v01 = p.v10[0], p.v01[0]
        var = float(np.cov(v10) / m_pos + np.cov(v01) / n_neg)  # pROC's var(roc, "delong")
    boots = None
    if "bootstrap" in methods or "bca" in methods:
        if n_boot < 100:
            raise ValueError(f"n_boot must be >= 100, got {n_boot}")
        boots = bootstrap_aucs(y, s, n_boot=n_boot, seed=seed)
    boundary = a in (0.0, 1.0)
    sep_note = (f"AUC = {a:g} (complete separation): exact bound from the min(cases, controls) = "
                f"{min(m_pos, n_neg)} disjoint case-control pairs")
    out = {}
    for method in methods:
        note = ""
        if single and method in _NEEDS_PLACEMENTS:
            low = high = float("nan")
            note = (f"{m_pos} case(s), {n_neg} control(s): DeLong's variance needs at least 2 of each "
                    "(pROC: NA)")
        elif method == "exact":
            low, high = exact_auc_interval(a, y.size, level=level)
        elif method == "delong":
            sd = float(np.sqrt(max(var, 0.0)))
            low, high = max(0.0, a - q * sd), min(1.0, a + q * sd)
        elif method == "bootstrap":
            low, high = (float(v) for v in np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2]))
        elif boundary:
            (low, high), note = separation_interval(a, m_pos, n_neg, level=level), sep_note
        elif var <= 0:
            low = high = a
            note = "zero DeLong variance (every score tied): point interval, as pROC's DeLong"
        elif method == "logit_delong":
            se = np.sqrt(var) / (a * (1 - a))
            lg = np.log(a / (1 - a))
            low, high = float(expit(lg - q * se)), float(expit(lg + q * se))
        else:  # bca
            influence = np.concatenate([(v10 - a) / m_pos, (v01 - a) / n_neg])
            try:
                low, high = bca_interval(boots, a, influence, level=level)
            except ValueError as exc:
                low, high = (float(v) for v in np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2]))
                note = f"BCa undefined ({exc}): percentile interval"
        out[method] = AucCI(float(a), float(low), float(high), method, level, note)
    return out


def auc_ci(y_true, score, *, method: str = PRIMARY, level: float = 0.95,
           n_boot: int = 2000, seed: int = 0) -> AucCI:
    """AUC with one confidence interval (see :func:`auc_cis` and the module docstring).

    Args:
        y_true: 0/1 labels (1 = positive).
        score: scores, higher = more likely positive (no direction flipping).
        method: one of :data:`METHODS`; the default is :data:`PRIMARY`, the method chosen by
            the coverage simulation (docs/statistics-coverage.md).
        level: confidence level.
        n_boot: bootstrap replicates (``bootstrap``, ``bca``).
        seed: bootstrap seed.

    Returns:
        :class:`AucCI` ``(auc, low, high, method, level, note)``.

    Example:
        >>> r = auc_ci([0, 0, 1, 1, 0, 1], [0.2, 0.3, 0.7, 0.6, 0.65, 0.9], method="delong")
        >>> round(r.auc, 3)
        0.889
    """
    if not isinstance(method, str):
        raise ValueError(f"method must be a string, got {method!r}")
    return auc_cis(y_true, score, methods=(method,), level=level, n_boot=n_boot, seed=seed)[method]
