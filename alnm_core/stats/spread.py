"""Fold-to-fold spread of a metric across cross-validation folds and repeats, to show beside a
pooled out-of-fold estimate.

The pooled out-of-fold AUC (every development patient's prediction, averaged over repeats, in
one ROC curve) and its DeLong CI treat the predictions as if one model made them; they ignore
that each fold had its own model. The spread of the per-fold AUCs (each fold's held-out
patients scored by that fold's model) shows that model-to-model variability. It is not a
confidence interval: folds share training patients, so their AUCs are correlated, and a small
fold's AUC is noisy (Bengio & Grandvalet 2004: no unbiased estimator of the variance of
k-fold cross-validation exists).

Example:
    >>> s = spread([0.71, 0.80, 0.76, 0.69, 0.83])
    >>> s.n, round(s.mean, 3), round(s.sd, 3), s.min, s.max
    (5, 0.758, 0.059, 0.69, 0.83)
    >>> s.text()
    '0.758 ± 0.059 (0.690–0.830), 5 folds'
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ._validation import check_labels, check_scores
from .roc import auc as _auc


class Spread(NamedTuple):
    """Summary of per-fold values (NaN values left out and counted in ``n_missing``)."""

    n: int
    mean: float
    sd: float  # sample SD (n - 1); NaN for fewer than 2 values
    min: float
    q1: float
    median: float
    q3: float
    max: float
    n_missing: int = 0

    def text(self, digits: int = 3, unit: str = "folds") -> str:
        """``mean ± SD (min–max), n folds`` for a table cell; ``—`` without values."""
        if self.n == 0:
            return "—"
        f = f"{{:.{digits}f}}"
        sd = f.format(self.sd) if np.isfinite(self.sd) else "—"
        out = f"{f.format(self.mean)} ± {sd} ({f.format(self.min)}–{f.format(self.max)}), {self.n} {unit}"
        return out + (f"; {self.n_missing} without a value" if self.n_missing else "")


def spread(values) -> Spread:
    """Mean, SD, range and quartiles of per-fold values (NaN left out, counted)."""
    v = np.asarray(values, float).ravel()
    ok = v[np.isfinite(v)]
    missing = int(v.size - ok.size)
    if ok.size == 0:
        nan = float("nan")
        return Spread(0, nan, nan, nan, nan, nan, nan, nan, missing)
    q1, med, q3 = np.quantile(ok, [0.25, 0.5, 0.75])
    sd = float(np.std(ok, ddof=1)) if ok.size > 1 else float("nan")
    return Spread(int(ok.size), float(ok.mean()), sd, float(ok.min()), float(q1), float(med),
                  float(q3), float(ok.max()), missing)


def fold_aucs(y_true, score, folds, repeats=None) -> pd.DataFrame:
    """The AUC of each fold's held-out patients (one row per repeat and fold).

    Args:
        y_true, score: out-of-fold labels and scores, one row per patient and repeat (as the
            unit prediction files: not averaged over repeats).
        folds: fold label of each row.
        repeats: repeat label of each row (None: one repeat).

    Returns:
        ``repeat, fold, n, n_pos, auc, note``: a fold with one class gets ``auc`` NaN and a
        note, never a silent drop.
    """
    y = check_labels(y_true, min_per_class=0)
    s = check_scores(score, y.size)
    f = np.asarray(folds)
    r = np.zeros(y.size, int) if repeats is None else np.asarray(repeats)
    if f.shape != (y.size,) or r.shape != (y.size,):
        raise ValueError(f"folds and repeats need one label per row ({y.size})")
    d = pd.DataFrame({"repeat": r, "fold": f, "y": y, "s": s})
    rows = []
    for (rep, fold), g in d.groupby(["repeat", "fold"], sort=True):
        n_pos = int(g.y.sum())
        row = dict(repeat=rep, fold=fold, n=len(g), n_pos=n_pos, auc=float("nan"), note="")
        if 0 < n_pos < len(g):
            row["auc"] = _auc(g.y.to_numpy(), g.s.to_numpy())
        else:
            row["note"] = "one class only: no AUC"
        rows.append(row)
    return pd.DataFrame(rows)
