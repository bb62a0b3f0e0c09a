"""The bias-corrected and accelerated (BCa) bootstrap interval, as R's ``boot::boot.ci``.

Given bootstrap replicates ``t*`` of a statistic with estimate ``t0`` and empirical influence
values ``L`` (Efron 1987; Davison & Hinkley 1997, ch. 5):

* bias correction ``w = qnorm(#{t* < t0} / R)`` (strictly below, as ``boot``),
* acceleration ``a = sum(L^3) / (6 * sum(L^2)^1.5)``,
* adjusted levels ``pnorm(w + (w + z) / (1 - a (w + z)))`` for ``z = qnorm((1 -+ level) / 2)``,
* the end points read off the ordered replicates by ``boot``'s ``norm.inter``: order statistic
  ``(R + 1) * alpha``, interpolated between neighbours on the normal quantile scale.

For a stratified bootstrap (cases and controls resampled separately) pass each stratum's
influence values divided by the stratum's size: the acceleration is then Davison & Hinkley's
stratified form ``sum_k n_k^-3 sum_j l_kj^3 / (6 (sum_k n_k^-2 sum_j l_kj^2)^1.5)``, which is
what ``boot.ci(..., L = L)`` computes from those values (``boot``'s own jackknife ``empinf``
leaves strata unscaled, which is the unstratified formula).

Example:
    >>> import numpy as np
    >>> t = np.random.default_rng(0).normal(1.0, 0.1, 999)
    >>> low, high = bca_interval(t, 1.0, np.array([-0.1, 0.0, 0.1]))
    >>> bool(0.75 < low < 1.0 < high < 1.25)
    True
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from ._validation import check_level


def norm_inter(t, alpha) -> np.ndarray:
    """Quantiles of ``t`` at levels ``alpha`` by ``boot``'s ``norm.inter`` (interpolation
    between order statistics on the normal quantile scale; the extreme order statistic where
    ``(R + 1) * alpha`` falls outside ``[1, R]``)."""
    t = np.sort(np.asarray(t, float)[np.isfinite(np.asarray(t, float))])
    R = t.size
    if R == 0:
        raise ValueError("no finite bootstrap replicate")
    alpha = np.atleast_1d(np.asarray(alpha, float))
    rk = (R + 1) * alpha
    k = np.trunc(rk).astype(int)
    out = np.empty(alpha.size)
    for i in range(alpha.size):
        if k[i] <= 0:
            out[i] = t[0]
        elif k[i] >= R:
            out[i] = t[-1]
        elif k[i] == rk[i]:
            out[i] = t[k[i] - 1]
        else:
            z = stats.norm.ppf(alpha[i])
            z1, z2 = stats.norm.ppf(k[i] / (R + 1)), stats.norm.ppf((k[i] + 1) / (R + 1))
            lo, hi = t[k[i] - 1], t[k[i]]
            out[i] = lo + (z - z1) / (z2 - z1) * (hi - lo)
    return out


def bca_interval(replicates, estimate: float, influence, *,
                 level: float = 0.95) -> tuple[float, float]:
    """BCa interval from bootstrap replicates, as ``boot.ci(type = "bca", L = influence)``.

    Args:
        replicates: the bootstrap replicates ``t*`` (non-finite values are dropped, as ``boot``).
        estimate: the statistic on the original sample ``t0``.
        influence: empirical influence values (for a stratified bootstrap, each divided by its
            stratum's size; see the module docstring).
        level: confidence level.

    Returns:
        ``(low, high)``.

    Raises:
        ValueError: the bias correction is infinite (no replicate below the estimate, or all of
            them) or the acceleration is undefined (all influence values 0): BCa is not defined
            there (``boot`` stops with the same conditions).
    """
    level = check_level(level)
    t = np.asarray(replicates, float)
    t = t[np.isfinite(t)]
    if t.size == 0:
        raise ValueError("no finite bootstrap replicate")
    below = int(np.sum(t < estimate))
    if below == 0 or below == t.size:
        raise ValueError(f"BCa bias correction is infinite: {below} of {t.size} bootstrap "
                         "replicates lie below the estimate")
    w = stats.norm.ppf(below / t.size)
    L = np.asarray(influence, float)
    s2 = float(np.sum(L ** 2))
    if not s2 > 0:
        raise ValueError("BCa acceleration is undefined: every influence value is 0")
    a = float(np.sum(L ** 3)) / (6 * s2 ** 1.5)
    z = stats.norm.ppf(np.array([(1 - level) / 2, (1 + level) / 2]))
    adj = stats.norm.cdf(w + (w + z) / (1 - a * (w + z)))
    low, high = norm_inter(t, adj)
    return float(low), float(high)
