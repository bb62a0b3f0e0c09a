"""Normality checks used by Table 1: Shapiro-Wilk and the Lilliefors-corrected
Kolmogorov-Smirnov test, with p-values as R computes them.

* Shapiro-Wilk: ``scipy.stats.shapiro`` (Royston's algorithm, as R's ``shapiro.test``).
* Lilliefors: the K-S distance to the normal with mean and SD estimated from the sample, and
  the p-value of R's ``nortest::lillie.test``: Dallal & Wilkinson's (1986) approximation, and
  where that exceeds 0.1, Stephens' (1974) modified statistic with a quartic interpolation.
  SPSS reads its Lilliefors p-value from a table that stops at 0.2 and prints ".200*" (meaning
  "at least 0.2") above it; the value here is the same below 0.1 and continues above 0.2.

Example:
    >>> import numpy as np
    >>> d, p = lilliefors(np.array([45, 52, 38, 61, 55, 49, 47, 58, 63, 41.0]))
    >>> round(float(d), 4)
    0.101
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def lilliefors(x) -> tuple[float, float]:
    """Lilliefors (K-S) statistic D and p-value, as R's ``nortest::lillie.test``.

    Raises:
        ValueError: fewer than 5 finite values.
    """
    x = np.sort(np.asarray(x, float)[np.isfinite(np.asarray(x, float))])
    n = x.size
    if n < 5:
        raise ValueError(f"the Lilliefors test needs at least 5 values, got {n}")
    p = stats.norm.cdf((x - x.mean()) / x.std(ddof=1))
    i = np.arange(1, n + 1)
    k = float(max(np.max(i / n - p), np.max(p - (i - 1) / n)))
    kd, nd = (k, n) if n <= 100 else (k * (n / 100) ** 0.49, 100)
    pvalue = np.exp(-7.01256 * kd ** 2 * (nd + 2.78019) + 2.99587 * kd * np.sqrt(nd + 2.78019)
                    - 0.122119 + 0.974598 / np.sqrt(nd) + 1.67997 / nd)
    if pvalue > 0.1:
        kk = (np.sqrt(n) - 0.01 + 0.85 / np.sqrt(n)) * k
        if kk <= 0.302:
            pvalue = 1.0
        elif kk <= 0.5:
            pvalue = 2.76773 - 19.828315 * kk + 80.709644 * kk ** 2 - 138.55152 * kk ** 3 + 81.218052 * kk ** 4
        elif kk <= 0.9:
            pvalue = -4.901232 + 40.662806 * kk - 97.490286 * kk ** 2 + 94.029866 * kk ** 3 - 32.355711 * kk ** 4
        elif kk <= 1.31:
            pvalue = 6.198765 - 19.558097 * kk + 23.186922 * kk ** 2 - 12.234627 * kk ** 3 + 2.423045 * kk ** 4
        else:
            pvalue = 0.0
    return k, float(pvalue)


def normality(x) -> dict[str, float]:
    """Shapiro-Wilk and Lilliefors p-values of one sample (NaN where the sample is too small:
    Shapiro-Wilk needs 3 values and Lilliefors 5; a constant sample gets 0)."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    out = {"shapiro_p": float("nan"), "lilliefors_p": float("nan"), "n": int(x.size)}
    if x.size >= 3 and np.ptp(x) == 0:
        return {**out, "shapiro_p": 0.0, "lilliefors_p": 0.0 if x.size >= 5 else float("nan")}
    if x.size >= 3:
        out["shapiro_p"] = float(stats.shapiro(x).pvalue)
    if x.size >= 5:
        out["lilliefors_p"] = lilliefors(x)[1]
    return out
