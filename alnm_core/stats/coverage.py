"""Simulated coverage of the confidence intervals the study offers (what 95% really means).

* AUC CIs on binormal data: positives ~ N(mu, 1), negatives ~ N(0, 1), so that the true AUC is
  ``Phi(mu / sqrt 2)``; fixed numbers of positives and negatives per sample. Every method of
  :data:`.auc_ci.METHODS` is computed on the same samples by :func:`.auc_ci.auc_cis` (the code
  the tables use), the two bootstrap intervals from the same replicates.
* PPV / NPV CIs when the prevalence is estimated from the same sample (every cohort here): each
  patient is positive with probability ``prevalence``, then tested with the given sensitivity and
  specificity; the true predictive values follow from Bayes' rule.

The committed table ``alnm_core/stats/coverage_table.csv`` (read by
:mod:`.coverage_lookup`, shown in docs/statistics-coverage.md) is regenerated with::

    python -m alnm_core.stats.coverage --docs docs/statistics-coverage.md   # about 1-2 h
    python -m alnm_core.stats.coverage --reps 200 --out /tmp/quick.csv   # a quick look

Each cell has its own seed (from ``--seed`` and the cell), so cells can be run separately and
a killed run resumes where it stopped (cells already in ``--out`` are kept).

Example:
    >>> cov = auc_ci_coverage(25, 25, auc=0.8, method="delong", reps=200, seed=1)
    >>> 0.85 < cov < 1.0
    True
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .auc_ci import METHODS, auc_ci, auc_cis
from .coverage_lookup import TABLE_PATH, choose_primary, coverage_markdown
from .diagnostic import metrics_from_counts

#: (positives, negatives) of the committed table: the issue's three designs at N = 100, the
#: paper's test set (20/30) and development set (about 80/120), and a small unbalanced test set
DESIGNS = ((10, 40), (10, 90), (20, 30), (20, 80), (50, 50), (80, 120))
#: true AUCs of the committed table
AUCS = (0.6, 0.7, 0.8, 0.9, 0.95)
#: replicates per cell: the 95% Monte Carlo half-width 1.96 sqrt(c (1 - c) / reps) <= 0.0098
REPS = 10_000
#: bootstrap replicates per sample (the default of ``stats.bootstrap_n``)
N_BOOT = 2000
COLUMNS = ["method", "n_pos", "n_neg", "auc", "reps", "n_boot", "level", "coverage", "mc_se",
           "truth_below", "truth_above", "mean_width", "special", "seed"]


def binormal_mu(auc: float) -> float:
    """The separation of two unit-variance normals whose AUC is ``auc``."""
    return float(np.sqrt(2) * stats.norm.ppf(auc))


def auc_ci_coverage(n_pos: int, n_neg: int, *, auc: float = 0.8, method: str = "delong",
                    reps: int = 400, seed: int = 0, n_boot: int = 500, level: float = 0.95) -> float:
    """Share of ``reps`` simulated samples whose AUC CI (``method``) contains the true AUC."""
    rng = np.random.default_rng(seed)
    mu = binormal_mu(auc)
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    hit = 0
    for r in range(reps):
        s = np.r_[rng.normal(mu, 1, n_pos), rng.normal(0, 1, n_neg)]
        ci = auc_ci(y, s, method=method, n_boot=n_boot, seed=r, level=level)
        hit += ci.low <= auc <= ci.high
    return hit / reps


def _cell_seed(seed: int, n_pos: int, n_neg: int, auc: float) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=seed, spawn_key=(n_pos, n_neg, int(round(auc * 1000))))


def simulate_cell(n_pos: int, n_neg: int, auc: float, *, methods=METHODS, reps: int = REPS,
                  n_boot: int = N_BOOT, seed: int = 2024, level: float = 0.95) -> pd.DataFrame:
    """Coverage of every AUC CI method in one design (``n_pos`` / ``n_neg``, true ``auc``).

    Returns:
        One row per method: ``coverage`` (share of intervals containing the true AUC),
        ``mc_se`` (its Monte Carlo standard error), ``truth_below`` / ``truth_above`` (share of
        intervals lying entirely above / below the truth), ``mean_width``, ``special`` (share of
        samples where the method took a special case: complete separation, zero variance, BCa
        undefined), and the settings.
    """
    ss = _cell_seed(seed, n_pos, n_neg, auc)
    rng = np.random.default_rng(ss)
    boot_seeds = ss.generate_state(reps, np.uint32)
    mu = binormal_mu(auc)
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    k = len(methods)
    low, high, special = np.empty((reps, k)), np.empty((reps, k)), np.zeros((reps, k), bool)
    for r in range(reps):
        s = np.r_[rng.normal(mu, 1, n_pos), rng.normal(0, 1, n_neg)]
        cis = auc_cis(y, s, methods=methods, n_boot=n_boot, seed=int(boot_seeds[r]), level=level)
        for j, m in enumerate(methods):
            low[r, j], high[r, j], special[r, j] = cis[m].low, cis[m].high, bool(cis[m].note)
    cover = (low <= auc) & (auc <= high)
    cov = cover.mean(axis=0)
    return pd.DataFrame({
        "method": list(methods), "n_pos": n_pos, "n_neg": n_neg, "auc": auc, "reps": reps,
        "n_boot": n_boot, "level": level, "coverage": cov, "mc_se": np.sqrt(cov * (1 - cov) / reps),
        "truth_below": (auc < low).mean(axis=0), "truth_above": (auc > high).mean(axis=0),
        "mean_width": (high - low).mean(axis=0), "special": special.mean(axis=0), "seed": seed,
    })[COLUMNS]


def coverage_table(*, designs=DESIGNS, aucs=AUCS, methods=METHODS, reps: int = REPS,
                   n_boot: int = N_BOOT, seed: int = 2024, out: str | Path | None = None,
                   progress=None) -> pd.DataFrame:
    """The coverage table over ``designs`` x ``aucs``, one :func:`simulate_cell` per cell.

    With ``out``, each finished cell is appended to that CSV at once, and cells already there
    with the same settings are not simulated again (a killed run resumes).
    """
    done = pd.DataFrame(columns=COLUMNS)
    if out is not None and Path(out).is_file():
        done = pd.read_csv(out)
    parts = [done]
    for n_pos, n_neg in designs:
        for auc in aucs:
            have = done[(done.n_pos == n_pos) & (done.n_neg == n_neg) & np.isclose(done.auc, auc)
                        & (done.reps == reps) & (done.n_boot == n_boot) & (done.seed == seed)]
            if set(have.method) >= set(methods):
                continue
            t0 = time.time()
            cell = simulate_cell(n_pos, n_neg, auc, methods=methods, reps=reps, n_boot=n_boot,
                                 seed=seed)
            parts.append(cell)
            if out is not None:
                pd.concat(parts, ignore_index=True).to_csv(out, index=False)
            if progress is not None:
                progress(f"{n_pos}/{n_neg} AUC {auc}: " + ", ".join(
                    f"{m} {c:.3f}" for m, c in zip(cell.method, cell.coverage))
                    + f" ({time.time() - t0:.0f} s)")
    table = pd.concat(parts, ignore_index=True)
    return table.sort_values(["n_pos", "n_neg", "auc"], kind="stable").reset_index(drop=True)


def predictive_value_coverage(n: int, *, prevalence: float, sensitivity: float, specificity: float,
                              method: str, reps: int = 2000, seed: int = 0,
                              level: float = 0.95) -> tuple[float, float]:
    """Coverage of the PPV and NPV intervals (``method``: ``exact`` or ``logit``) when the
    prevalence is estimated from the same sample of ``n`` patients.

    Samples where a predictive value is undefined (no test positive or no test negative) are
    left out of that value's coverage.
    """
    rng = np.random.default_rng(seed)
    p, se, sp = prevalence, sensitivity, specificity
    ppv = se * p / (se * p + (1 - sp) * (1 - p))
    npv = sp * (1 - p) / (sp * (1 - p) + (1 - se) * p)
    cells = [p * se, (1 - p) * (1 - sp), p * (1 - se), (1 - p) * sp]  # tp, fp, fn, tn
    hits = {"ppv": [0, 0], "npv": [0, 0]}
    for _ in range(reps):
        tp, fp, fn, tn = rng.multinomial(n, cells)
        m = metrics_from_counts(tp, fp, fn, tn, level=level, ppv_npv_method=method)
        for key, truth in (("ppv", ppv), ("npv", npv)):
            e = m[key]
            if np.isfinite(e.low):
                hits[key][0] += e.low <= truth <= e.high
                hits[key][1] += 1
    return hits["ppv"][0] / hits["ppv"][1], hits["npv"][0] / hits["npv"][1]


def write_into_docs(path: Path, md: str) -> None:
    """Put ``md`` between the ``<!-- coverage table start ... -->`` and ``<!-- coverage table
    end -->`` lines of ``path``."""
    lines = path.read_text().splitlines(keepends=True)
    start = [i for i, ln in enumerate(lines) if ln.startswith("<!-- coverage table start")]
    end = [i for i, ln in enumerate(lines) if ln.startswith("<!-- coverage table end")]
    if len(start) != 1 or len(end) != 1 or end[0] < start[0]:
        raise ValueError(f"{path}: expected one '<!-- coverage table start' line before one "
                         "'<!-- coverage table end' line")
    path.write_text("".join(lines[:start[0] + 1]) + md + "".join(lines[end[0]:]))


def main(argv: list[str] | None = None) -> int:
    """``python -m alnm_core.stats.coverage``: simulate the table, write it and its Markdown."""
    ap = argparse.ArgumentParser(prog="python -m alnm_core.stats.coverage",
                                 description="Simulated coverage of the AUC confidence intervals.")
    ap.add_argument("--reps", type=int, default=REPS, help=f"replicates per cell ({REPS})")
    ap.add_argument("--n-boot", type=int, default=N_BOOT, help=f"bootstrap replicates ({N_BOOT})")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--out", default=str(TABLE_PATH), help="CSV to write (resumed if present)")
    ap.add_argument("--markdown", default=None, help="also write the Markdown table here")
    ap.add_argument("--docs", default=None,
                    help="replace the table between the coverage-table markers of this file")
    a = ap.parse_args(argv)
    table = coverage_table(reps=a.reps, n_boot=a.n_boot, seed=a.seed, out=a.out,
                           progress=lambda s: print(s, flush=True))
    table.to_csv(a.out, index=False)
    md = coverage_markdown(table)
    if a.markdown:
        Path(a.markdown).write_text(md)
    if a.docs:
        write_into_docs(Path(a.docs), md)
    print(md)
    print(f"primary method by the rule: {choose_primary(table)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
