"""Table 1: group comparisons of clinical characteristics, with the test named beside each p.

Continuous variables: mean +- SD; normality by Shapiro-Wilk and by Lilliefors-corrected K-S
(SPSS's "Kolmogorov-Smirnov with Lilliefors significance correction", the paper's check; p-value
as R's nortest, see :mod:`.normality`); then
Student's t (Levene p >= alpha) or Welch's t when both groups look normal, else Mann-Whitney U
(normal approximation with tie correction, no continuity correction, as SPSS's asymptotic sig).

Categorical variables: Pearson chi-square *without* continuity correction (SPSS's "Pearson
Chi-Square" row), or Fisher's exact test (exact for 2 x C tables by full enumeration) when an
expected count is below 5 (``auto``) or when asked.
"""
from __future__ import annotations

import itertools
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln

from .normality import normality


class TestResult(NamedTuple):
    p_value: float
    test: str
    statistic: float


def continuous_test(x_a, x_b, *, method: str = "auto", normality_test: str = "shapiro",
                    alpha: float = 0.05) -> TestResult:
    """Compare a continuous variable between two groups.

    Args:
        x_a, x_b: the two groups' values (NaN dropped).
        method: ``auto``, ``t`` (Student), ``welch`` or ``mannwhitney``.
        normality_test: ``shapiro`` or ``lilliefors`` decides normality for ``auto``.
        alpha: level of the normality and Levene checks.

    Returns:
        :class:`TestResult` ``(p_value, test, statistic)``; ``test`` names what was used.
    """
    a = np.asarray(x_a, float)
    b = np.asarray(x_b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        raise ValueError(f"each group needs >= 2 values (got {a.size} and {b.size})")
    if method not in ("auto", "t", "welch", "mannwhitney"):
        raise ValueError(f"method must be auto, t, welch or mannwhitney, got {method!r}")
    if normality_test not in ("shapiro", "lilliefors"):
        raise ValueError(f"normality_test must be shapiro or lilliefors, got {normality_test!r}")
    why = ""
    if method == "auto":
        # a group too small to check (n < 4) counts as not shown normal: rank test
        key = f"{normality_test}_p"
        name = "Shapiro-Wilk" if normality_test == "shapiro" else "Lilliefors K-S"
        normal = all(normality(v)[key] >= alpha for v in (a, b))
        if normal:
            equal = stats.levene(a, b, center="mean").pvalue >= alpha
            method = "t" if equal else "welch"
            why = f" (normal by {name}; Levene {'p >=' if equal else 'p <'} {alpha:g})"
        else:
            method = "mannwhitney"
            why = f" (not normal by {name} at {alpha:g})"
    if method == "t":
        r = stats.ttest_ind(a, b, equal_var=True)
        return TestResult(float(r.pvalue), "Student t" + why, float(r.statistic))
    if method == "welch":
        r = stats.ttest_ind(a, b, equal_var=False)
        return TestResult(float(r.pvalue), "Welch t" + why, float(r.statistic))
    r = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic", use_continuity=False)
    return TestResult(float(r.pvalue), "Mann-Whitney U" + why, float(r.statistic))


def _log_table_prob(table: np.ndarray) -> float:
    rows, cols, n = table.sum(axis=1), table.sum(axis=0), table.sum()
    return float(gammaln(rows + 1).sum() + gammaln(cols + 1).sum() - gammaln(n + 1)
                 - gammaln(table + 1).sum())


def fisher_exact_2xc(table) -> float:
    """Exact two-sided Fisher test for a 2 x C table (sum of probabilities <= observed).

    Enumerates every table with the observed margins (fine for Table 1 sizes), with R's
    relative tolerance 1e-7 when comparing probabilities.
    """
    t = np.asarray(table, dtype=int)
    if t.ndim != 2 or t.shape[0] != 2:
        raise ValueError(f"expected a 2 x C table, got shape {t.shape}")
    cols = t.sum(axis=0)
    r1 = int(t[0].sum())
    p_obs = _log_table_prob(t)
    total = 0.0
    tol = 1 + 1e-7
    ranges = [range(0, int(c) + 1) for c in cols[:-1]]
    for first in itertools.product(*ranges):
        last = r1 - sum(first)
        if not 0 <= last <= cols[-1]:
            continue
        row0 = np.array(list(first) + [last])
        cand = np.vstack([row0, cols - row0])
        lp = _log_table_prob(cand)
        if lp <= p_obs + np.log(tol):
            total += np.exp(lp)
    return float(min(1.0, total))


def categorical_test(table, *, method: str = "auto") -> TestResult:
    """Association test for a contingency table (groups x levels).

    Args:
        table: counts, 2-D; rows and columns with zero totals are dropped.
        method: ``auto`` (Pearson chi-square without continuity correction; Fisher's exact when
            any expected count < 5), ``chi2`` or ``fisher``.

    Returns:
        :class:`TestResult` with ``test`` naming the test used.

    Example:
        >>> categorical_test([[33, 65], [69, 85]]).test      # paper Table 1, tumour margin
        'Pearson chi-square'
    """
    t = np.asarray(table, dtype=float)
    if t.ndim != 2:
        raise ValueError(f"table must be 2-D, got shape {t.shape}")
    if np.any(t < 0) or np.any(t != np.round(t)):
        raise ValueError("table must hold non-negative integer counts")
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if t.shape[0] < 2 or t.shape[1] < 2:
        return TestResult(float("nan"), "not testable (one level)", float("nan"))
    if method not in ("auto", "chi2", "fisher"):
        raise ValueError(f"method must be auto, chi2 or fisher, got {method!r}")
    expected = stats.contingency.expected_freq(t)
    if method == "auto":
        method = "fisher" if expected.min() < 5 else "chi2"
    if method == "chi2":
        r = stats.chi2_contingency(t, correction=False)
        return TestResult(float(r.pvalue), "Pearson chi-square", float(r.statistic))
    if t.shape[0] == 2:
        return TestResult(fisher_exact_2xc(t.astype(int)), "Fisher exact", float("nan"))
    if t.shape[1] == 2:
        return TestResult(fisher_exact_2xc(t.T.astype(int)), "Fisher exact", float("nan"))
    r = stats.fisher_exact(t.astype(int), method=stats.PermutationMethod(n_resamples=20000,
                                                                         random_state=0))
    return TestResult(float(r.pvalue), "Fisher exact (Monte Carlo, 20000 resamples)", float("nan"))


def _fmt_normality(nm: dict) -> str:
    sw = f"SW p={nm['shapiro_p']:.3f}" if np.isfinite(nm["shapiro_p"]) else "SW not checked"
    ks = f"K-S(L) p={nm['lilliefors_p']:.3f}" if np.isfinite(nm["lilliefors_p"]) else "K-S(L) not checked"
    return f"{sw}, {ks} (n={nm['n']})"


def _fmt_mean_sd(x: np.ndarray, digits: int) -> str:
    return f"{np.mean(x):.{digits}f} ± {np.std(x, ddof=1):.{digits}f}"


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def build_table1(
    df: pd.DataFrame,
    *,
    group: str = "alnm",
    group_labels: tuple[str, str] = ("ALNM", "Non-ALNM"),
    continuous: Sequence[tuple[str, str, int]] = (("age", "Age (mean ± SD), years", 1),
                                                   ("tumor_size_cm", "Tumor size (mean ± SD), cm", 1)),
    categorical: Sequence[tuple[str, str, Sequence[str]]] = (
        ("margin", "Tumor margin", ("regular", "irregular")),
        ("tic_type", "TIC curve type", ("I", "II", "III")),
        ("field_strength", "Field strength", ()),
    ),
    categorical_method: str = "auto",
    continuous_method: str = "auto",
    normality_test: str = "shapiro",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Table 1 as in the paper: Total, ALNM, Non-ALNM, p, with the test named beside each p.

    Rows for levels absent from the whole cohort are dropped (e.g. TIC type I when no patient
    has it). Continuous rows also carry both normality p-values of each group. A characteristic
    no patient has a value for (a cohort that does not record it, e.g. the tumour margin of a
    public collection) is one row reading ``not recorded``, without a test.

    Returns:
        DataFrame ``characteristic, level, total, group1, group0, p_value, p, test,
        normality`` where ``group1`` is the group with ``group == 1``.
    """
    if group not in df.columns:
        raise ValueError(f"column {group!r} not in the data")
    g = df[group].astype(int)
    if set(g.unique()) - {0, 1}:
        raise ValueError(f"{group} must be 0/1")
    d1, d0 = df[g == 1], df[g == 0]
    n1, n0, n = len(d1), len(d0), len(df)
    rows = [dict(characteristic="Number", level="", total=f"n={n}", group1=f"n={n1}",
                 group0=f"n={n0}", p_value=np.nan, p="", test="", normality="")]
    def not_recorded(col: str, label: str) -> bool:
        values = df[col] if col in df.columns else pd.Series([], dtype=object)
        empty = values.isna() | (values.astype(str).str.strip().isin(("", "nan")))
        if len(values) and not empty.all():
            return False
        rows.append(dict(characteristic=label, level="", total="not recorded", group1="", group0="",
                         p_value=np.nan, p="", test="", normality=""))
        return True

    for col, label, digits in continuous:
        if not_recorded(col, label):
            continue
        x1, x0 = d1[col].astype(float).to_numpy(), d0[col].astype(float).to_numpy()
        r = continuous_test(x1, x0, method=continuous_method, normality_test=normality_test,
                            alpha=alpha)
        norm = "; ".join(f"{name}: {_fmt_normality(nm)}"
                         for name, nm in ((group_labels[0], normality(x1)), (group_labels[1], normality(x0))))
        rows.append(dict(characteristic=label, level="",
                         total=_fmt_mean_sd(df[col].astype(float).to_numpy(), digits),
                         group1=_fmt_mean_sd(x1, digits), group0=_fmt_mean_sd(x0, digits),
                         p_value=r.p_value, p=_fmt_p(r.p_value), test=r.test, normality=norm))
    for col, label, levels in categorical:
        if col not in df.columns or not_recorded(col, label):
            continue
        present = [lv for lv in (levels or sorted(df[col].unique())) if (df[col] == lv).any()]
        table = np.array([[int((d1[col] == lv).sum()) for lv in present],
                          [int((d0[col] == lv).sum()) for lv in present]])
        r = categorical_test(table, method=categorical_method)
        rows.append(dict(characteristic=label, level="", total="", group1="", group0="",
                         p_value=r.p_value, p=_fmt_p(r.p_value), test=r.test, normality=""))
        for j, lv in enumerate(present):
            k = int((df[col] == lv).sum())
            rows.append(dict(characteristic="", level=str(lv),
                             total=f"{k} ({100 * k / n:.1f})",
                             group1=f"{table[0, j]} ({100 * table[0, j] / max(n1, 1):.1f})",
                             group0=f"{table[1, j]} ({100 * table[1, j] / max(n0, 1):.1f})",
                             p_value=np.nan, p="", test="", normality=""))
    return pd.DataFrame(rows)
