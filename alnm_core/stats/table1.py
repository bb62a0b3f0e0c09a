"""Table 1: group comparisons of clinical characteristics, with the test named beside each p.

Continuous variables (mean +- SD), ``continuous_method``:

* ``welch+mannwhitney`` (default): a fixed rule, no data-dependent choice of test. The shown p
  is Welch's t test, which compares the means the table shows and does not assume equal
  variances or sizes (Ruxton 2006; Delacre, Lakens & Leys 2017); the Mann-Whitney U p
  (distribution-free, same settings as below) is kept beside it in ``p_alt``. Choosing the
  test by a normality pretest distorts the type I error of the test finally used and is
  discouraged (Rochon, Gondan & Kieser 2012; Rasch, Kubinger & Moder 2011).
* ``auto``: the two-stage rule SPSS users apply, kept to reproduce the paper: normality by
  Shapiro-Wilk or by Lilliefors-corrected K-S (SPSS's "Kolmogorov-Smirnov with Lilliefors
  significance correction"; p-value as R's nortest, see :mod:`.normality`), then Student's t
  (Levene p >= alpha) or Welch's t when both groups look normal, else Mann-Whitney U.
* ``t``, ``welch``, ``mannwhitney``: that test alone. Mann-Whitney U uses the normal
  approximation with tie correction and no continuity correction (SPSS's asymptotic sig).

Both groups' normality p-values are reported in every mode (description, not a test choice).

Categorical variables: Pearson chi-square *without* continuity correction (SPSS's "Pearson
Chi-Square" row), or Fisher's exact test (exact for 2 x C tables by full enumeration) when an
expected count is below 5 (``auto``) or when asked.

Ordinal variables (TIC curve type I < II < III), ``ordinal_method``: ``trend`` (default) is the
Cochran-Armitage test for a trend in the proportion of the first group across the ordered
levels, scored 1, 2, 3 by their declared order (R's ``prop.trend.test``; 1 df, so it keeps the
power a 2 x 3 chi-square spreads over 2 df, and with two levels present it equals the Pearson
chi-square); the nominal test of ``categorical_method`` is kept beside it in ``p_alt``.
``categorical`` treats the variable as nominal (the paper).
"""
from __future__ import annotations

import itertools
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln

from .format import format_p
from .normality import normality

#: the continuous rules :func:`build_table1` knows (``continuous_test`` single tests plus the
#: fixed pair)
CONTINUOUS_METHODS = ("welch+mannwhitney", "auto", "t", "welch", "mannwhitney")
ORDINAL_METHODS = ("trend", "categorical")


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


def trend_test(table, scores: Sequence[float] | None = None) -> TestResult:
    """Cochran-Armitage test for trend in proportions, as R's ``prop.trend.test(x, n, score)``.

    Args:
        table: 2 x k counts, rows = (group 1, group 0), columns = the ordered levels.
        scores: one score per column (default 1..k); only their spacing matters.

    Returns:
        :class:`TestResult` with the chi-square statistic (1 df). Columns with no patient are
        dropped (with their scores); fewer than two columns left: not testable.

    Example:
        >>> round(trend_test([[70, 28], [98, 56]], scores=[2, 3]).p_value, 3)   # paper, TIC
        0.201
    """
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[0] != 2:
        raise ValueError(f"expected a 2 x k table, got shape {t.shape}")
    if np.any(t < 0) or np.any(t != np.round(t)):
        raise ValueError("table must hold non-negative integer counts")
    sc = np.arange(1, t.shape[1] + 1, dtype=float) if scores is None else np.asarray(scores, float)
    if sc.shape != (t.shape[1],):
        raise ValueError(f"{sc.size} scores for {t.shape[1]} columns")
    keep = t.sum(axis=0) > 0
    t, sc = t[:, keep], sc[keep]
    name = "Cochran-Armitage trend"
    if t.shape[1] < 2 or np.ptp(sc) == 0 or (t.sum(axis=1) == 0).any():
        return TestResult(float("nan"), "not testable (one level)", float("nan"))
    x, n = t[0], t.sum(axis=0)
    N = n.sum()
    pbar = x.sum() / N
    sbar = (n * sc).sum() / N
    T = (x * (sc - sbar)).sum()
    chisq = float(T ** 2 / (pbar * (1 - pbar) * (n * (sc - sbar) ** 2).sum()))
    return TestResult(float(stats.chi2.sf(chisq, 1)), name, chisq)


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
    ordinal: Sequence[str] = ("tic_type",),
    categorical_method: str = "auto",
    continuous_method: str = "welch+mannwhitney",
    ordinal_method: str = "categorical",
    normality_test: str = "shapiro",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Table 1 as in the paper: Total, ALNM, Non-ALNM, p, with the test named beside each p.

    Rows for levels absent from the whole cohort are dropped (e.g. TIC type I when no patient
    has it). Continuous rows also carry both normality p-values of each group. A characteristic
    no patient has a value for (a cohort that does not record it, e.g. the tumour margin of a
    public collection) is one row reading ``not recorded``, without a test.

    Args:
        df: one row per patient with ``group`` and the variables.
        ordinal: categorical columns whose declared levels are ordered (scored 1, 2, ... in the
            order of ``categorical``'s level list, absent levels keeping their place).
        categorical_method: ``auto``, ``chi2`` or ``fisher`` (:func:`categorical_test`).
        continuous_method: one of :data:`CONTINUOUS_METHODS` (module docstring).
        ordinal_method: ``trend`` (Cochran-Armitage; the ``categorical_method`` test in
            ``p_alt``; the study's default, ``stats.ordinal_test``) or ``categorical`` (as any
            categorical variable; this function's default, so that a caller that does not pass
            ``stats.ordinal_test`` keeps the paper's test).
        normality_test, alpha: the ``auto`` rule's normality test and level.

    Returns:
        DataFrame ``characteristic, level, total, group1, group0, p_value, p, test,
        p_alt_value, p_alt, test_alt, normality`` where ``group1`` is the group with
        ``group == 1``; ``p`` and ``p_alt`` are formatted by :func:`.format.format_p`;
        ``p_alt*`` hold the second test of the fixed rules (Mann-Whitney beside Welch, the
        nominal test beside the trend test) and are empty otherwise.
    """
    if group not in df.columns:
        raise ValueError(f"column {group!r} not in the data")
    if continuous_method not in CONTINUOUS_METHODS:
        raise ValueError(f"continuous_method must be one of {CONTINUOUS_METHODS}, got {continuous_method!r}")
    if ordinal_method not in ORDINAL_METHODS:
        raise ValueError(f"ordinal_method must be one of {ORDINAL_METHODS}, got {ordinal_method!r}")
    g = df[group].astype(int)
    if set(g.unique()) - {0, 1}:
        raise ValueError(f"{group} must be 0/1")
    d1, d0 = df[g == 1], df[g == 0]
    n1, n0, n = len(d1), len(d0), len(df)
    blank = dict(p_alt_value=np.nan, p_alt="", test_alt="")
    rows = [dict(characteristic="Number", level="", total=f"n={n}", group1=f"n={n1}",
                 group0=f"n={n0}", p_value=np.nan, p="", test="", **blank, normality="")]

    def not_recorded(col: str, label: str) -> bool:
        values = df[col] if col in df.columns else pd.Series([], dtype=object)
        empty = values.isna() | (values.astype(str).str.strip().isin(("", "nan")))
        if len(values) and not empty.all():
            return False
        rows.append(dict(characteristic=label, level="", total="not recorded", group1="", group0="",
                         p_value=np.nan, p="", test="", **blank, normality=""))
        return True

    for col, label, digits in continuous:
        if not_recorded(col, label):
            continue
        x1, x0 = d1[col].astype(float).to_numpy(), d0[col].astype(float).to_numpy()
        alt = dict(blank)
        if continuous_method == "welch+mannwhitney":
            r = continuous_test(x1, x0, method="welch")
            mw = continuous_test(x1, x0, method="mannwhitney")
            alt = dict(p_alt_value=mw.p_value, p_alt=format_p(mw.p_value), test_alt=mw.test)
        else:
            r = continuous_test(x1, x0, method=continuous_method, normality_test=normality_test,
                                alpha=alpha)
        norm = "; ".join(f"{name}: {_fmt_normality(nm)}"
                         for name, nm in ((group_labels[0], normality(x1)), (group_labels[1], normality(x0))))
        rows.append(dict(characteristic=label, level="",
                         total=_fmt_mean_sd(df[col].astype(float).to_numpy(), digits),
                         group1=_fmt_mean_sd(x1, digits), group0=_fmt_mean_sd(x0, digits),
                         p_value=r.p_value, p=format_p(r.p_value), test=r.test, **alt,
                         normality=norm))
    for col, label, levels in categorical:
        if col not in df.columns or not_recorded(col, label):
            continue
        is_ordinal = col in ordinal and ordinal_method == "trend"
        if is_ordinal and not levels:
            raise ValueError(f"ordinal column {col!r} needs its levels listed in order")
        present = [lv for lv in (levels or sorted(df[col].unique())) if (df[col] == lv).any()]
        table = np.array([[int((d1[col] == lv).sum()) for lv in present],
                          [int((d0[col] == lv).sum()) for lv in present]])
        nominal = categorical_test(table, method=categorical_method)
        alt = dict(blank)
        if is_ordinal:
            r = trend_test(table, scores=[list(levels).index(lv) + 1 for lv in present])
            if np.isfinite(r.p_value):
                r = r._replace(test=f"{r.test} ({' < '.join(map(str, levels))})")
            alt = dict(p_alt_value=nominal.p_value, p_alt=format_p(nominal.p_value),
                       test_alt=nominal.test)
        else:
            r = nominal
        rows.append(dict(characteristic=label, level="", total="", group1="", group0="",
                         p_value=r.p_value, p=format_p(r.p_value), test=r.test, **alt,
                         normality=""))
        for j, lv in enumerate(present):
            k = int((df[col] == lv).sum())
            rows.append(dict(characteristic="", level=str(lv),
                             total=f"{k} ({100 * k / n:.1f})",
                             group1=f"{table[0, j]} ({100 * table[0, j] / max(n1, 1):.1f})",
                             group0=f"{table[1, j]} ({100 * table[1, j] / max(n0, 1):.1f})",
                             p_value=np.nan, p="", test="", **blank, normality=""))
    return pd.DataFrame(rows)
