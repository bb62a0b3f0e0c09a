"""The committed coverage table of the AUC CIs: look-up at a cohort's size, the footnote that
states it, the rule that chose the primary CI, and the Markdown of docs/statistics-coverage.md.

The table (``alnm_core/stats/coverage_table.csv``, written by ``python -m
alnm_core.stats.coverage``) holds the simulated coverage of every method of
:data:`.auc_ci.METHODS` in a grid of designs (cases / controls) and true AUCs. A cohort's
coverage is read at the **nearest simulated design** (distance between ``log`` of the smaller
and of the larger class sizes; the roles of cases and controls are symmetric) and
**interpolated linearly in the AUC** between the grid's AUCs; an AUC below 0.5 is read as
``1 - AUC`` (the intervals are symmetric under negating the score), one outside the grid at the
nearest grid AUC (``extrapolated`` says so). It is an approximation: the design is named in
:func:`coverage_footnote` so a reader sees how near it is.

Example:
    >>> round(simulated_coverage("delong", 10, 90, 0.8), 2) < 0.95
    True
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from .auc_ci import METHOD_LABELS, METHODS

#: the committed table (package data), written by ``python -m alnm_core.stats.coverage``
TABLE_PATH = Path(__file__).with_name("coverage_table.csv")


@lru_cache(maxsize=1)
def _committed() -> pd.DataFrame:
    if not TABLE_PATH.is_file():
        raise FileNotFoundError(f"{TABLE_PATH} is missing: run python -m alnm_core.stats.coverage")
    return pd.read_csv(TABLE_PATH)


def load_coverage_table() -> pd.DataFrame:
    """The committed coverage table (a copy)."""
    return _committed().copy()


class CoverageLookup(NamedTuple):
    """A simulated coverage and where in the table it was read."""

    coverage: float
    method: str
    design_n_pos: int
    design_n_neg: int
    auc_used: float  # the AUC the table was read at (folded to >= 0.5, clamped to the grid)
    extrapolated: bool  # the AUC lay outside the simulated grid
    exact_design: bool  # the cohort's own size is a simulated design
    reps: int
    level: float


def lookup_coverage(method: str, n_pos: int, n_neg: int, auc: float, *,
                    table: pd.DataFrame | None = None) -> CoverageLookup:
    """Simulated coverage of ``method``'s CI for a cohort of ``n_pos`` cases and ``n_neg``
    controls whose AUC is ``auc`` (see the module docstring for the rule).

    Raises:
        ValueError: unknown method, a class size below 1, or an AUC outside [0, 1].
    """
    t = _committed() if table is None else table
    if method not in set(t.method):
        raise ValueError(f"no simulated coverage for method {method!r}; the table has "
                         f"{sorted(set(t.method))}")
    if min(n_pos, n_neg) < 1:
        raise ValueError(f"both classes are needed (got {n_pos} cases, {n_neg} controls)")
    if not 0 <= auc <= 1 or not np.isfinite(auc):
        raise ValueError(f"AUC must be in [0, 1], got {auc}")
    t = t[t.method == method]
    small, large = sorted((int(n_pos), int(n_neg)))
    designs = t[["n_pos", "n_neg"]].drop_duplicates().to_numpy()
    d_small, d_large = designs.min(axis=1), designs.max(axis=1)
    dist = np.hypot(np.log(small / d_small), np.log(large / d_large))
    # nearest design; among equally near ones the smaller minority class (lower coverage)
    best = min(range(len(designs)), key=lambda i: (round(dist[i], 12), d_small[i]))
    dp, dn = (int(v) for v in designs[best])
    cell = t[(t.n_pos == dp) & (t.n_neg == dn)].sort_values("auc")
    grid = cell.auc.to_numpy(float)
    a = max(float(auc), 1 - float(auc))
    used = float(np.clip(a, grid[0], grid[-1]))
    cov = float(np.interp(used, grid, cell.coverage.to_numpy(float)))
    return CoverageLookup(cov, method, dp, dn, used, bool(not np.isclose(used, a)),
                          (small, large) == (min(dp, dn), max(dp, dn)),
                          int(cell.reps.min()), float(cell.level.iloc[0]))


def simulated_coverage(method: str, n_pos: int, n_neg: int, auc: float) -> float:
    """Simulated coverage of ``method``'s 95% CI at a cohort's size and AUC (the committed
    table, nearest design, interpolated in the AUC: :func:`lookup_coverage`)."""
    return lookup_coverage(method, n_pos, n_neg, auc).coverage


def coverage_footnote(method: str, n_pos: int, n_neg: int, auc, *, level: float = 0.95,
                      compare: tuple[str, ...] = ()) -> str:
    """One sentence for a table's footnote: the CI method and its simulated coverage at the
    cohort's size.

    Args:
        method: the headline CI method.
        n_pos, n_neg: the cohort's cases and controls.
        auc: one AUC, or the AUCs of every row of the table (the sentence then gives the range
            of coverages over them).
        level: the CIs' level (the table holds 95% CIs only).
        compare: other methods whose coverage range to add (e.g. ``("exact",)``, the paper's).

    Example:
        >>> coverage_footnote("delong", 20, 30, 0.9)[:44]
        'AUC 95% CI: DeLong (as pROC); its simulated '
    """
    aucs = [float(a) for a in np.atleast_1d(np.asarray(auc, float))]
    if not aucs:
        raise ValueError("no AUC given")
    looks = [lookup_coverage(method, n_pos, n_neg, a) for a in aucs]
    r = looks[0]
    if not np.isclose(level, r.level):
        raise ValueError(f"the coverage table is for {r.level:.0%} CIs, not {level:.0%}")
    where = ("at this cohort's size" if r.exact_design else
             f"at the nearest simulated design, {r.design_n_pos} cases / {r.design_n_neg} "
             f"controls (this cohort: {n_pos} / {n_neg})")

    def rng(vals, fmt):
        lo, hi = min(vals), max(vals)
        return fmt.format(lo) if np.isclose(lo, hi) else f"{fmt.format(lo)}–{fmt.format(hi)}"

    if len(aucs) == 1:
        at_auc = f"AUC {r.auc_used:g}" + (" (the nearest simulated AUC)" if r.extrapolated else "")
    else:
        at_auc = f"the rows' AUCs ({rng(aucs, '{:.2f}')})"
        if any(x.extrapolated for x in looks):
            at_auc += ", those outside 0.6–0.95 read at the nearest simulated AUC"
    text = (f"AUC {level:.0%} CI: {METHOD_LABELS.get(method, method)}; its simulated coverage is "
            f"{rng([x.coverage for x in looks], '{:.3f}')} {where} and {at_auc}")
    for other in compare:
        cov = [lookup_coverage(other, n_pos, n_neg, a).coverage for a in aucs]
        text += f"; {METHOD_LABELS.get(other, other)}: {rng(cov, '{:.3f}')}"
    return text + (f" (binormal scores, {r.reps:,} samples per design; "
                   "docs/statistics-coverage.md).")


def choose_primary(table: pd.DataFrame, *, tol: float = 0.01,
                   exclude: tuple[str, ...] = ("exact",)) -> str:
    """The rule that picks the primary AUC CI from a coverage table.

    1. Coverage first: each method's worst coverage over every cell of the table; the methods
       within ``tol`` (the simulation's precision) of the best worst case are candidates.
    2. Then precision: among those, the smallest mean width over the cells.

    ``exact`` is excluded: it is kept only as the paper-comparison column.
    """
    t = table[~table.method.isin(exclude)]
    worst = t.groupby("method").coverage.min()
    width = t.groupby("method").mean_width.mean()
    cands = worst.index[worst >= worst.max() - tol]
    return str(width[cands].idxmin())


def coverage_markdown(table: pd.DataFrame) -> str:
    """The table as Markdown: coverage (mean width) per design, AUC and method, then each
    method's worst and mean coverage and mean width."""
    methods = [m for m in METHODS if m in set(table.method)]
    head = "| cases / controls | AUC | " + " | ".join(METHOD_LABELS[m] for m in methods) + " |"
    lines = [head, "|" + "---|" * (len(methods) + 2)]
    for (n_pos, n_neg, auc), g in table.groupby(["n_pos", "n_neg", "auc"], sort=True):
        g = g.set_index("method")
        lines.append(f"| {n_pos} / {n_neg} | {auc:g} | " + " | ".join(
            f"{g.coverage[m]:.3f} ({g.mean_width[m]:.3f})" for m in methods) + " |")
    s = table.groupby("method").agg(worst=("coverage", "min"), mean=("coverage", "mean"),
                                    width=("mean_width", "mean"), special=("special", "mean"))
    lines += ["", "| method | worst coverage | mean coverage | mean width | special cases |",
              "|---|---|---|---|---|"]
    for m in methods:
        lines.append(f"| {METHOD_LABELS[m]} | {s.worst[m]:.3f} | {s['mean'][m]:.3f} | "
                     f"{s.width[m]:.3f} | {s.special[m]:.4f} |")
    reps = int(table.reps.min())
    lines += ["", f"{reps:,} samples per cell (Monte Carlo standard error at most "
                  f"{float(table.mc_se.max()):.4f}); {int(table.n_boot.iloc[0])} bootstrap "
                  f"replicates per sample; 95% intervals; seed {int(table.seed.iloc[0])}. "
                  f"Primary by the rule: **{METHOD_LABELS[choose_primary(table)]}**."]
    return "\n".join(lines) + "\n"
