"""A reviewer's cross-check: every headline number of a run, re-derived with independent code.

Given a run folder, :func:`crosscheck` recomputes from the artifacts alone (the cohort manifest,
``splits.csv``, the patient-level predictions) each number the report states and compares it with
the value the report shows:

* Table 1: each p-value with the test the table names (scipy: ``ttest_ind``, ``mannwhitneyu``,
  ``chi2_contingency`` without continuity correction, ``fisher_exact``), and the group sizes;
* Table 3: each cell — the confusion counts at the stated threshold, accuracy, sensitivity,
  specificity, PPV, NPV with their Clopper–Pearson CIs (scipy's ``binomtest``), the AUC
  (scikit-learn's ``roc_auc_score``) and its DeLong CI;
* every DeLong test (``delong.csv``), and its Holm and BH p adjusted within its family
  (statsmodels' ``multipletests``, one call per family): z and p, from a naive O(m·n)
  DeLong written here from the 1988 paper (placement values by explicit comparison of every
  positive with every negative), not the package's fast routine;
* the out-of-fold AUCs and CIs of ``cv_summary.csv`` (k-fold runs);
* each sequence's per-split AUCs and DeLong CIs of ``per_split/<model_id>.csv`` (section 3).

Models are found by ``model_id`` (``predictions/models.csv`` has one column per model id, every
table a ``model_id`` column); no display label is ever inverted.

Nothing here imports :mod:`alnm_core.stats`: a bug there cannot hide itself. A row whose
reported value was made with a method this check does not re-implement (e.g. bootstrap CIs, the
logit PPV/NPV interval) is listed as "not re-derived" rather than silently passed.

Example::

    >>> from alnm_core.crosscheck import naive_delong
    >>> round(naive_delong([1, 1, 0, 0], {"a": [0.9, 0.6, 0.7, 0.1]})["auc"]["a"], 4)
    0.75
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

#: absolute tolerance for a recomputed value to count as the same number
TOLERANCE = 1e-6
COLUMNS = ["section", "item", "reported", "recomputed", "abs_diff", "ok", "how"]


# ----------------------------------------------------------------------------- naive DeLong
def naive_delong(labels, scores: dict[str, np.ndarray]) -> dict:
    """AUCs and their DeLong covariance matrix by explicit pairwise comparison (O(m·n)).

    ``psi(x, y) = 1 if x > y, 1/2 if x == y, 0 otherwise`` for every positive x and negative y;
    V10 (per positive) and V01 (per negative) are its row and column means; the covariance is
    S10/m + S01/n (DeLong, DeLong & Clarke-Pearson 1988, eq. 4-5).
    """
    y = np.asarray(labels).astype(int)
    names = list(scores)
    v10, v01, aucs = [], [], {}
    for k in names:
        s = np.asarray(scores[k], float)
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]).astype(float) + 0.5 * (pos[:, None] == neg[None, :])
        aucs[k] = float(psi.mean())
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    m, n = len(v10[0]), len(v01[0])
    s10 = np.atleast_2d(np.cov(np.vstack(v10))) if len(names) > 1 else np.array([[np.var(v10[0], ddof=1)]])
    s01 = np.atleast_2d(np.cov(np.vstack(v01))) if len(names) > 1 else np.array([[np.var(v01[0], ddof=1)]])
    cov = s10 / m + s01 / n
    return {"auc": aucs, "cov": pd.DataFrame(cov, index=names, columns=names)}


def _delong_pair(y, a, b) -> tuple[float, float]:
    d = naive_delong(y, {"a": a, "b": b})
    diff = d["auc"]["a"] - d["auc"]["b"]
    var = d["cov"].loc["a", "a"] + d["cov"].loc["b", "b"] - 2 * d["cov"].loc["a", "b"]
    if var <= 0:
        return (0.0, 1.0) if diff == 0 else (np.sign(diff) * np.inf, 0.0)
    z = diff / np.sqrt(var)
    return float(z), float(2 * sps.norm.sf(abs(z)))


def _delong_ci(y, p, *, logit: bool = False) -> tuple[float, float, float]:
    """AUC and its 95% DeLong CI (AUC ± 1.96 SE, clipped to [0, 1], as pROC), or with
    ``logit`` the same SE on the logit scale, back-transformed (0 < AUC < 1 only)."""
    d = naive_delong(y, {"m": p})
    auc, se = d["auc"]["m"], float(np.sqrt(d["cov"].iloc[0, 0]))
    q = sps.norm.ppf(0.975)
    if logit:
        lg, sl = np.log(auc / (1 - auc)), se / (auc * (1 - auc))
        return auc, float(1 / (1 + np.exp(-(lg - q * sl)))), float(1 / (1 + np.exp(-(lg + q * sl))))
    return auc, max(0.0, auc - q * se), min(1.0, auc + q * se)


# ----------------------------------------------------------------------------- rows
def _row(section, item, reported, recomputed, how, tol=TOLERANCE) -> dict:
    rep = float(reported) if reported is not None and str(reported) != "" else np.nan
    rec = float(recomputed) if recomputed is not None else np.nan
    if np.isnan(rep) and np.isnan(rec):
        diff, ok = 0.0, True
    elif np.isinf(rep) or np.isinf(rec):
        diff, ok = (0.0, True) if rep == rec else (np.inf, False)
    else:
        diff = abs(rep - rec)
        ok = bool(diff <= tol)
    return dict(section=section, item=item, reported=rep, recomputed=rec, abs_diff=diff, ok=ok, how=how)


def _skip(section, item, reported, why) -> dict:
    return dict(section=section, item=item, reported=float(reported) if str(reported) not in ("", "nan") else np.nan,
                recomputed=np.nan, abs_diff=np.nan, ok=None, how=f"not re-derived: {why}")


def _cp(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return np.nan, np.nan
    ci = sps.binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="exact")
    return float(ci.low), float(ci.high)


# ----------------------------------------------------------------------------- Table 1
_CONTINUOUS = {"Age": "age", "Tumor size": "tumor_size_cm"}
_CATEGORICAL = {"Tumor margin": "margin", "TIC curve type": "tic_type", "Field strength": "field_strength"}


def _table1_rows(t1: pd.DataFrame, data: pd.DataFrame) -> list[dict]:
    rows = []
    for population, sub in t1.groupby("population", sort=False):
        d = data if population == "All patients" else data[data.split == "test"]
        g1, g0 = d[d.alnm == 1], d[d.alnm == 0]
        for _, r in sub.iterrows():
            label, test = str(r.characteristic), str(r.test)
            item = f"{population}: {label}"
            if label == "Number":
                rows.append(_row("Table 1", f"{population}: n ALNM", str(r.group1).lstrip("n="), len(g1), "count"))
                rows.append(_row("Table 1", f"{population}: n non-ALNM", str(r.group0).lstrip("n="), len(g0), "count"))
                continue
            if not test or test == "nan":
                continue
            col = next((c for k, c in _CONTINUOUS.items() if label.startswith(k)), None)
            if col is not None:
                x1, x0 = g1[col].astype(float), g0[col].astype(float)
                if test.startswith("Welch"):
                    p, how = sps.ttest_ind(x1, x0, equal_var=False).pvalue, "scipy ttest_ind(equal_var=False)"
                elif test.startswith("Student"):
                    p, how = sps.ttest_ind(x1, x0, equal_var=True).pvalue, "scipy ttest_ind(equal_var=True)"
                elif test.startswith("Mann-Whitney"):
                    p = sps.mannwhitneyu(x1, x0, alternative="two-sided", method="asymptotic",
                                         use_continuity=False).pvalue
                    how = "scipy mannwhitneyu(asymptotic, no continuity correction)"
                else:
                    rows.append(_skip("Table 1", item, r.p_value, f"test {test!r}"))
                    continue
                rows.append(_row("Table 1", f"{item} p", r.p_value, p, how))
                continue
            col = _CATEGORICAL.get(label)
            if col is None or col not in d.columns:
                rows.append(_skip("Table 1", item, r.p_value, "unknown characteristic"))
                continue
            table = pd.crosstab(d.alnm, d[col]).to_numpy()
            if test.startswith("not testable"):  # one level (or one group): no p, and none here
                rows.append(_row("Table 1", f"{item} p", r.p_value,
                                 np.nan if min(table.shape) < 2 else -1.0, "a table with one level has no test"))
            elif test.startswith("Pearson"):
                p = sps.chi2_contingency(table, correction=False).pvalue
                rows.append(_row("Table 1", f"{item} p", r.p_value, p, "scipy chi2_contingency(correction=False)"))
            elif test.startswith("Fisher") and table.shape == (2, 2):
                p = sps.fisher_exact(table).pvalue
                rows.append(_row("Table 1", f"{item} p", r.p_value, p, "scipy fisher_exact"))
            else:
                rows.append(_skip("Table 1", item, r.p_value, f"{test} on a {table.shape[0]}×{table.shape[1]} table"))
    return rows


# ----------------------------------------------------------------------------- Table 3
def _table3_metric_rows(r, y: np.ndarray, p: np.ndarray, item: str) -> list[dict]:
    """Counts and metrics of one Table 3 row at its (finite) threshold."""
    rows = []
    pred = (p >= float(r.threshold)).astype(int)
    tp, fp = int(((y == 1) & (pred == 1)).sum()), int(((y == 0) & (pred == 1)).sum())
    fn, tn = int(((y == 1) & (pred == 0)).sum()), int(((y == 0) & (pred == 0)).sum())
    for name, v in (("TP", tp), ("FP", fp), ("FN", fn), ("TN", tn)):
        rows.append(_row("Table 3", f"{item} {name}", r[name.lower()], v, f"count of prob >= {float(r.threshold):.4f}"))
    for key, k, n in (("acc", tp + tn, len(y)), ("sen", tp, tp + fn), ("spe", tn, tn + fp),
                      ("ppv", tp, tp + fp), ("npv", tn, tn + fn)):
        est = k / n if n else np.nan
        rows.append(_row("Table 3", f"{item} {key.upper()}", r[key], est, f"{k}/{n}"))
        method = str(r.get(f"{key}_method", "Clopper-Pearson"))
        if method.startswith(("Clopper", "exact")):
            lo, hi = _cp(k, n)
            rows.append(_row("Table 3", f"{item} {key.upper()} 95% CI low", r[f"{key}_low"], lo, "scipy binomtest exact CI"))
            rows.append(_row("Table 3", f"{item} {key.upper()} 95% CI high", r[f"{key}_high"], hi, "scipy binomtest exact CI"))
        elif n:
            rows.append(_skip("Table 3", f"{item} {key.upper()} 95% CI", r[f"{key}_low"], f"{method} interval"))
    return rows


def _table3_rows(t3: pd.DataFrame, preds: pd.DataFrame) -> list[dict]:
    from sklearn.metrics import roc_auc_score

    test = preds[preds.split == "test"]
    y = test.label.to_numpy(int)
    rows = []
    for _, r in t3.iterrows():
        col = r.model_id
        item = f"{r.model} @ {r.threshold_from}"
        if col is None or col not in test.columns:
            rows.append(_skip("Table 3", item, r.auc, "no prediction column for this model"))
            continue
        p = test[col].to_numpy(float)
        if np.isfinite(float(r.threshold)):
            rows += _table3_metric_rows(r, y, p, item)
        else:  # Youden: no threshold better than chance, no metrics
            rows.append(_skip("Table 3", f"{item} metrics", r.acc, "no threshold (J = 0)"))
        auc = roc_auc_score(y, p)
        rows.append(_row("Table 3", f"{item} AUC", r.auc, auc, "sklearn roc_auc_score"))
        logit = str(r.auc_ci_method).startswith("logit-transformed DeLong") and 0 < auc < 1
        if str(r.auc_ci_method).startswith("DeLong") or logit:
            _, lo, hi = _delong_ci(y, p, logit=logit)
            how = "naive O(m·n) DeLong variance" + (", logit scale" if logit else "")
            rows.append(_row("Table 3", f"{item} AUC 95% CI low", r.auc_low, lo, how))
            rows.append(_row("Table 3", f"{item} AUC 95% CI high", r.auc_high, hi, how))
        else:
            rows.append(_skip("Table 3", f"{item} AUC 95% CI", r.auc_low, f"{r.auc_ci_method} interval"))
    return rows


def _delong_rows(table: pd.DataFrame, preds: pd.DataFrame, section: str) -> list[dict]:
    test = preds[preds.split == "test"]
    y = test.label.to_numpy(int)
    rows = []
    for _, r in table.iterrows():
        item = f"{r.get('label_a', r.model_a)} vs {r.get('label_b', r.model_b)}"
        if r.model_a not in test.columns or r.model_b not in test.columns:
            rows.append(_skip(section, item, r.p_value, "no prediction column"))
            continue
        z, p = _delong_pair(y, test[r.model_a].to_numpy(float), test[r.model_b].to_numpy(float))
        rows.append(_row(section, f"{item} z", r.z, z, "naive O(m·n) DeLong"))
        rows.append(_row(section, f"{item} p", r.p_value, p, "naive O(m·n) DeLong"))
    return rows


def _adjusted_rows(table: pd.DataFrame) -> list[dict]:
    """Holm and BH within each family of ``delong.csv``, by statsmodels (pairs in no family
    carry no adjusted p)."""
    from statsmodels.stats.multitest import multipletests

    rows = []
    for fam, g in table[table.role != "none"].groupby("family", sort=False):
        for col, method in (("p_holm", "holm"), ("p_bh", "fdr_bh")):
            adj = multipletests(g.p_value.to_numpy(float), method=method)[1]
            for (_, r), v in zip(g.iterrows(), adj):
                item = f"{r.get('label_a', r.model_a)} vs {r.get('label_b', r.model_b)} {col} ({fam})"
                rows.append(_row("DeLong families", item, r[col], v, f"statsmodels multipletests {method}"))
    return rows


def _per_split_rows(table: pd.DataFrame, preds: pd.DataFrame, label: str) -> list[dict]:
    """A sequence's per-split AUCs and their DeLong CIs (notebook 3), from its predictions."""
    rows = []
    for _, r in table.iterrows():
        d = preds[preds.split == r.split]
        auc, lo, hi = _delong_ci(d.label.to_numpy(int), d.prob.to_numpy(float))
        item = f"{label} {r.split} AUC"
        rows.append(_row("Per-sequence CNN", item, r.auc, auc, "naive O(m·n) DeLong"))
        rows.append(_row("Per-sequence CNN", f"{item} CI low", r.auc_delong_low, lo, "naive O(m·n) DeLong variance"))
        rows.append(_row("Per-sequence CNN", f"{item} CI high", r.auc_delong_high, hi, "naive O(m·n) DeLong variance"))
    return rows


def _cv_rows(cv: pd.DataFrame, preds: pd.DataFrame) -> list[dict]:
    dev = preds[preds.split == "dev"]
    y = dev.label.to_numpy(int)
    rows = []
    for _, r in cv.iterrows():
        col = r.model_id
        if col not in dev.columns or dev.empty:
            continue
        auc, lo, hi = _delong_ci(y, dev[col].to_numpy(float))
        rows.append(_row("Cross-validation", f"{r.model} out-of-fold AUC", r.auc_oof, auc, "naive O(m·n) DeLong"))
        rows.append(_row("Cross-validation", f"{r.model} out-of-fold AUC CI low", r.auc_oof_low, lo,
                         "naive O(m·n) DeLong variance"))
        rows.append(_row("Cross-validation", f"{r.model} out-of-fold AUC CI high", r.auc_oof_high, hi,
                         "naive O(m·n) DeLong variance"))
    return rows


# ----------------------------------------------------------------------------- entry point
def crosscheck(run_dir: str | Path) -> pd.DataFrame:
    """Every headline number of the run in ``run_dir``: reported vs recomputed, ✓ or ✗.

    Returns:
        DataFrame with columns ``section, item, reported, recomputed, abs_diff, ok, how``;
        ``ok`` is True (same to :data:`TOLERANCE`), False (differs) or None (not re-derived,
        ``how`` says why).
    """
    run_dir = Path(run_dir)
    art = run_dir / "artifacts"
    info = json.loads((run_dir / "run.json").read_text())
    cohort = pd.read_csv(Path(info["cohort"]) / "cohort.csv", dtype={"patient_id": str})
    splits = pd.read_csv(art / "splits.csv", dtype={"patient_id": str})
    # splits.csv lists the analysed patients (exclusions are not in it)
    data = cohort.merge(splits[["patient_id", "split"]], on="patient_id")
    # every model's predictions by model id (the table the evaluation step computed from)
    preds = pd.read_csv(art / "predictions" / "models.csv", dtype={"patient_id": str})
    rows = _table1_rows(pd.read_csv(art / "table1.csv", keep_default_na=False), data)
    for f in sorted(p for p in (art / "per_split").glob("*.csv") if not p.stem.endswith("_flags")):
        mine = pd.read_csv(art / "predictions" / f.name, dtype={"patient_id": str})
        rows += _per_split_rows(pd.read_csv(f), mine, f.stem)
    rows += _table3_rows(pd.read_csv(art / "table3.csv"), preds)
    dl = pd.read_csv(art / "delong.csv")
    rows += _delong_rows(dl, preds, "DeLong (every pair)") + _adjusted_rows(dl)
    if (art / "cv_summary.csv").is_file():
        rows += _cv_rows(pd.read_csv(art / "cv_summary.csv"), preds)
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(check: pd.DataFrame) -> str:
    """One line: how many numbers agree, differ, and were not re-derived."""
    ok = int((check.ok == True).sum())  # noqa: E712 (None is a third state)
    bad = int((check.ok == False).sum())  # noqa: E712
    skipped = int(check.ok.isna().sum())
    return (f"{ok} of {ok + bad} re-derived numbers agree to {TOLERANCE:g}"
            + (f"; **{bad} differ**" if bad else "") + (f"; {skipped} not re-derived (see 'how')" if skipped else ""))
