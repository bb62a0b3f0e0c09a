"""The study's evaluation tables: Table 3, DeLong comparisons, subgroups, clinical baseline.

Thin assembly over :mod:`alnm_core.stats`; every number's method is named in the output so a
reviewer can check it against MedCalc or pROC without reading code.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import stats as S
from .protocol import cross_fitted


AUC_CI_NAMES = S.METHOD_LABELS


def table3_rows(name: str, y_test, p_test, *, threshold: float, threshold_source: str,
                ppv_npv_method: str = "exact", auc_ci_method: str = "logit_delong", n_boot: int = 2000,
                seed: int = 0, model_id: str = "") -> dict:
    """One Table 3 row: metrics at ``threshold`` with CIs; the AUC with its headline CI
    (``auc_ci_method``, one of ``stats.AUC_CI_METHODS``), its simulated coverage at this
    cohort's size (``auc_ci_coverage``), and, labelled, the DeLong, bootstrap and exact binomial
    CIs (the last is MedCalc's and the paper's; it under-covers on unbalanced cohorts).
    A non-finite ``threshold`` (Youden: no cut-off better than chance) gives NaN metrics."""
    y = np.asarray(y_test).astype(int)
    p = np.asarray(p_test, float)
    cis = S.auc_cis(y, p, methods=tuple(dict.fromkeys(("exact", "delong", "bootstrap", auc_ci_method))),
                    n_boot=n_boot, seed=seed)
    head, dl, bs, ex = cis[auc_ci_method], cis["delong"], cis["bootstrap"], cis["exact"]
    row = {"model_id": model_id or name, "model": name, "threshold": threshold,
           "threshold_from": threshold_source, "n": len(y)}
    if np.isfinite(threshold):
        pred = (p >= threshold).astype(int)
        m = S.diagnostic_metrics(y, pred, ppv_npv_method=ppv_npv_method)
        tp, fp, fn, tn = S.confusion_counts(y, pred)
        row.update(tp=tp, fp=fp, fn=fn, tn=tn)
        for k in ("acc", "sen", "spe", "ppv", "npv"):
            row[k], row[f"{k}_low"], row[f"{k}_high"] = m[k][:3]
            row[f"{k}_method"] = m[k].method
        row.update(lr_pos=m["lr_pos"].estimate, lr_neg=m["lr_neg"].estimate, youden_j=m["youden_j"].estimate)
    else:
        row.update(tp=np.nan, fp=np.nan, fn=np.nan, tn=np.nan, lr_pos=np.nan, lr_neg=np.nan, youden_j=np.nan)
        for k in ("acc", "sen", "spe", "ppv", "npv"):
            row[k] = row[f"{k}_low"] = row[f"{k}_high"] = np.nan
            row[f"{k}_method"] = "no threshold"
    boot_name = f"stratified percentile bootstrap, {n_boot} replicates, seed {seed}"
    label = (f"{AUC_CI_NAMES[auc_ci_method]}, {n_boot} replicates, seed {seed}"
             if auc_ci_method in ("bootstrap", "bca") else AUC_CI_NAMES[auc_ci_method])
    n_pos = int(y.sum())
    row.update(auc=head.auc, auc_low=head.low, auc_high=head.high, auc_ci_method=label,
               auc_ci_key=auc_ci_method, auc_ci_note=head.note,
               auc_ci_coverage=S.simulated_coverage(auc_ci_method, n_pos, len(y) - n_pos, head.auc),
               auc_delong_low=dl.low, auc_delong_high=dl.high,
               auc_boot_low=bs.low, auc_boot_high=bs.high, auc_boot_method=boot_name,
               auc_exact_low=ex.low, auc_exact_high=ex.high, auc_exact_method=AUC_CI_NAMES["exact"])
    return row


def build_table3(preds: pd.DataFrame, models: dict[str, str], *, threshold: float = 0.5,
                 ppv_npv_method: str = "exact", auc_ci_method: str = "logit_delong", n_boot: int = 2000,
                 seed: int = 0, fit_split: str = "val", fit_name: str = "validation") -> pd.DataFrame:
    """Table 3 on the test split, at the paper's threshold and at a Youden threshold frozen on
    the development predictions.

    Args:
        preds: ``patient_id, split, label`` and one probability column per model (its model id).
        models: model id -> display name (table order).
        fit_split: ``split`` value of the predictions the Youden threshold is found on.
        fit_name: how they are called in the table (``validation``, ``out-of-fold``).

    Returns:
        One row per model and operating point (``threshold_from`` = ``fixed 0.5`` or
        ``Youden on <fit_name>``).
    """
    val, test = preds[preds.split == fit_split], preds[preds.split == "test"]
    rows = []
    for col, name in models.items():
        rows.append(table3_rows(name, test.label, test[col], threshold=threshold,
                                threshold_source=f"fixed {threshold:g}", ppv_npv_method=ppv_npv_method,
                                auc_ci_method=auc_ci_method, n_boot=n_boot, seed=seed, model_id=col))
    for col, name in models.items():
        yt = S.youden_threshold(val.label, val[col])  # raises only for one class: a real error
        rows.append(table3_rows(name, test.label, test[col], threshold=yt.threshold if yt.finite else np.nan,
                                threshold_source=f"Youden on {fit_name}", ppv_npv_method=ppv_npv_method,
                                auc_ci_method=auc_ci_method, n_boot=n_boot, seed=seed, model_id=col))
    return pd.DataFrame(rows)


def _threshold_text(t) -> str:
    """A threshold as printed (how it was chosen is the table's caption): a number, or "no
    threshold" when none is better than chance (Youden's J = 0 at every cut-off, as pROC)."""
    t = float(t)
    if np.isfinite(t):
        return f"{t:.3f}"
    return "no threshold (none better than chance)"


def format_table3(t3: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout: ACC SEN SPE PPV NPV AUC (95% CI), CIs in brackets; the headline AUC
    CI first, then the exact binomial CI labelled as the MedCalc / paper comparison."""
    out = pd.DataFrame({"Model": t3.model, "Threshold": [_threshold_text(t) for t in t3.threshold]})
    for k in ("acc", "sen", "spe", "ppv", "npv"):
        out[k.upper()] = [f"{e:.3f} ({lo:.3f}-{hi:.3f})" if np.isfinite(e) else "—"
                          for e, lo, hi in zip(t3[k], t3[f"{k}_low"], t3[f"{k}_high"])]
    key = str(t3.auc_ci_key.iloc[0])
    out[f"AUC (95% CI, {SHORT_CI[key]})"] = [f"{a:.3f} ({lo:.3f}-{hi:.3f})" for a, lo, hi in
                                            zip(t3.auc, t3.auc_low, t3.auc_high)]
    out["exact CI (MedCalc / paper)"] = [f"{lo:.3f}-{hi:.3f}" for lo, hi in
                                         zip(t3.auc_exact_low, t3.auc_exact_high)]
    if key != "delong":
        out["DeLong CI (pROC)"] = [f"{lo:.3f}-{hi:.3f}" for lo, hi in zip(t3.auc_delong_low, t3.auc_delong_high)]
    if key != "bootstrap":
        out["bootstrap CI"] = [f"{lo:.3f}-{hi:.3f}" for lo, hi in zip(t3.auc_boot_low, t3.auc_boot_high)]
    return out


#: the AUC CI's name in a column header
SHORT_CI = {"logit_delong": "logit DeLong", "delong": "DeLong", "bootstrap": "bootstrap", "bca": "BCa bootstrap"}


def with_labels(table: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """``label_a`` / ``label_b`` beside the model ids ``model_a`` / ``model_b`` of a DeLong table."""
    out = table.copy()
    out.insert(out.columns.get_loc("model_b") + 1, "label_b", out.model_b.map(labels))
    out.insert(out.columns.get_loc("model_a") + 1, "label_a", out.model_a.map(labels))
    return out


#: a model calling at least this share of the test patients one class at a threshold is flagged
ONE_CLASS_SHARE = 0.95


def model_flags(preds: pd.DataFrame, t3: pd.DataFrame, models: dict[str, str], *, fit_split: str,
                fit_name: str) -> pd.DataFrame:
    """The honest flags of Table 3: a model whose AUC on the development predictions (out-of-fold
    or validation) has a DeLong 95% CI reaching 0.5 (``chance-level``), and a model that calls at
    least 95% of the test patients one class at an operating point (``one class``).

    Returns:
        ``model_id, model, flag, detail``, one row per flag (none: an empty table).
    """
    rows = []
    fit = preds[preds.split == fit_split]
    for col, name in models.items():
        d = fit.dropna(subset=[col]) if col in fit else fit.iloc[:0]
        if d.label.nunique() == 2 and min(d.label.value_counts()) >= 2:
            ci = S.auc_ci(d.label, d[col], method="delong")
            if ci.low <= 0.5:
                rows.append({"model_id": col, "model": name, "flag": "chance-level",
                             "detail": f"{fit_name} AUC {ci.auc:.3f} (95% CI {ci.low:.3f}-{ci.high:.3f}) "
                                       "includes 0.5"})
    for _, r in t3[t3.model_id.isin(list(models))].iterrows():
        if not np.isfinite(float(r.threshold)):
            continue  # no operating point: nothing is called
        n = r.tp + r.fp + r.fn + r.tn
        pos = (r.tp + r.fp) / n if n else np.nan
        if n and max(pos, 1 - pos) >= ONE_CLASS_SHARE:
            side = "positive" if pos >= 0.5 else "negative"
            rows.append({"model_id": r.model_id, "model": r.model, "flag": "one class",
                         "detail": f"calls {max(pos, 1 - pos):.0%} of the test patients {side} at "
                                   f"{r.threshold_from} ({_threshold_text(r.threshold)})"})
    return pd.DataFrame(rows, columns=["model_id", "model", "flag", "detail"])


def table3_footnote(t3: pd.DataFrame, y_test=None) -> str:
    """How Table 3's CIs were obtained, one phrase per quantity (undefined cells named apart),
    and the headline AUC CI's simulated coverage at this test set's size (given ``y_test``)."""
    parts = []
    for keys, name in ((("acc", "sen", "spe"), "ACC, SEN, SPE"), (("ppv", "npv"), "PPV, NPV")):
        methods = sorted({str(m) for k in keys for m in t3[f"{k}_method"].dropna()
                          if not str(m).startswith(("undefined", "no threshold"))})
        if methods:
            parts.append(f"{name}: {' / '.join(methods)}")
    parts.append(f"AUC: {t3.auc_ci_method.iloc[0]}; beside it {t3.auc_exact_method.iloc[0]}")
    undefined = sorted({k.upper() for k in ("ppv", "npv") for m in t3[f"{k}_method"].dropna()
                        if str(m).startswith("undefined")})
    text = "95% CIs — " + "; ".join(parts) + "."
    if y_test is not None and "auc_ci_key" in t3:
        y = np.asarray(y_test).astype(int)
        text += " " + S.coverage_footnote(str(t3.auc_ci_key.iloc[0]), int(y.sum()), int(y.size - y.sum()),
                                          t3.auc.dropna().unique(), compare=("exact",))
    if "no threshold" in set(t3.get("acc_method", [])):
        text += (" A Youden row reading \"no threshold\" is a model whose development predictions no "
                 "cut-off separates better than chance (J = 0 everywhere, pROC's ±Inf threshold): "
                 "it has no operating point.")
    if undefined:
        text += (f" A dash marks a {' or '.join(undefined)} that is undefined at that threshold (no "
                 "patient called positive, or none called negative).")
    return text


def delong_against(preds: pd.DataFrame, reference: str, others: list[str]) -> pd.DataFrame:
    """Paired DeLong tests of ``reference`` against each model on the test split. The family
    for the adjusted p-values (``p_holm``, ``p_bh``) is exactly these comparisons (``family``)."""
    return delong_pairs(preds, [(reference, o) for o in others],
                        f"{reference} vs each of {len(others)} models")


def delong_pairs(preds: pd.DataFrame, pairs: list[tuple[str, str]], family: str) -> pd.DataFrame:
    """Paired DeLong tests of each ``(model_a, model_b)`` on the test split, with Holm and
    Benjamini-Hochberg adjusted p-values over exactly these comparisons (named ``family``)."""
    test = preds[preds.split == "test"]
    y = test.label.to_numpy(int)
    testable = min(int(y.sum()), int(y.size - y.sum())) >= 2  # DeLong needs 2 of each class
    rows = []
    for a, b in pairs:
        if testable:
            r = S.delong_test(y, test[a], test[b])
            rows.append(dict(model_a=a, model_b=b, auc_a=r.auc_a, auc_b=r.auc_b, z=r.z,
                             p_value=r.p_value, diff=r.diff, ci_low=r.ci_low, ci_high=r.ci_high))
        else:  # one case or one control: no variance, no test (pROC: NA)
            aa, ab = S.auc(y, test[a]), S.auc(y, test[b])
            rows.append(dict(model_a=a, model_b=b, auc_a=aa, auc_b=ab, z=np.nan, p_value=np.nan,
                             diff=aa - ab, ci_low=np.nan, ci_high=np.nan))
    df = pd.DataFrame(rows, columns=["model_a", "model_b", "auc_a", "auc_b", "z", "p_value", "diff",
                                     "ci_low", "ci_high"])
    ok = df.p_value.notna().to_numpy()
    df["p_holm"] = df["p_bh"] = np.nan
    if ok.any():
        df.loc[ok, "p_holm"] = S.holm(df.p_value[ok].to_numpy())
        df.loc[ok, "p_bh"] = S.benjamini_hochberg(df.p_value[ok].to_numpy())
    df["family"] = family
    return df


# ----------------------------------------------------------------------------- comparison families
#: the ``role`` of a family: adjusted and reported as pre-specified, adjusted within itself as
#: hypothesis-generating, or not adjusted at all (a model fitted on the test set)
ROLES = ("primary", "exploratory", "none")
#: the families every study may have, by name
RADIOMICS_FAMILY = "exploratory: CNNs vs radiomics baselines"
MIL_FAMILY = "exploratory: attention MIL vs slice vote"
OTHER_FAMILY = "exploratory: every other pair"
NONE_FAMILY = "none: a model fitted on the test set"


def parse_comparison(text: str) -> tuple[str, str]:
    """``"weighted_vote vs clinical"`` -> ``("weighted_vote", "clinical")``."""
    a, sep, b = str(text).partition(" vs ")
    if not sep or not a.strip() or not b.strip():
        raise ValueError(f"{text!r}: a comparison is written 'MODEL_ID vs MODEL_ID'")
    return a.strip(), b.strip()


def default_primary_comparisons(ms, *, radiomics: str | None) -> list[tuple[str, str]]:
    """The headline model against each base model it fuses, the clinical baseline and (when
    computed) the radiomics and clinical-radiomics baselines: the question the study asks."""
    head = ms.headline.model_id
    pairs = [(head, m.model_id) for m in ms.members if m.shown and m.model_id != head]
    pairs.append((head, "clinical"))
    if radiomics:
        pairs += [(head, radiomics), (head, "clinical_radiomics")]
    return pairs


def primary_comparisons(ms, chosen: tuple[str, ...] = (), *, radiomics: str | None = None) -> list[tuple[str, str]]:
    """The pre-specified primary family: ``chosen`` (``stats.primary_comparisons``, each
    ``"A vs B"`` in model ids) or :func:`default_primary_comparisons`.

    Raises:
        ValueError: a model id the study does not show, a model compared with itself, a pair
            named twice, or a model fitted on the test set (never part of a family).
    """
    pairs = [parse_comparison(c) for c in chosen] or default_primary_comparisons(ms, radiomics=radiomics)
    shown = {m.model_id for m in ms.shown}
    for a, b in pairs:
        for x in (a, b):
            if x not in shown:
                raise ValueError(f"stats.primary_comparisons: {x!r} is not a model of this study's "
                                 f"tables ({sorted(shown)})")
        if a == b:
            raise ValueError(f"stats.primary_comparisons: {a!r} compared with itself")
        if chosen and any(ms[x].test_fitted for x in (a, b)):
            raise ValueError(f"stats.primary_comparisons: {a} vs {b} involves a model fitted on the "
                             "test set; it cannot be part of a family")
    keys = [frozenset(p) for p in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("stats.primary_comparisons: a pair is named twice")
    return pairs


def comparison_families(ms, primary: list[tuple[str, str]], exploratory: list[tuple[str, list]]) -> pd.DataFrame:
    """Every pair of the shown models assigned to exactly one family.

    Args:
        ms: the study's models (:class:`~alnm_core.model_registry.ModelSet`).
        primary: the primary family's pairs (oriented: ``model_a`` first).
        exploratory: ``(family name, pairs)`` in order (names such as :data:`RADIOMICS_FAMILY`);
            a pair already placed stays where it was first placed.

    Returns:
        ``model_a, model_b, family, role``: the primary pairs, then each exploratory family,
        then ``exploratory: every other pair``; a pair with a model fitted on the test set is
        in no family (``role`` ``none``) unless the primary family names it (the headline
        itself fitted on the test set: ``ensemble.weights_from=test``).
    """
    rows, placed = [], set()

    def add(a, b, family, role):
        key = frozenset((a, b))
        if key not in placed:
            placed.add(key)
            rows.append(dict(model_a=a, model_b=b, family=family, role=role))

    for a, b in primary:
        add(a, b, "primary", "primary")
    shown = [m.model_id for m in ms.shown]
    for name, pairs in exploratory:
        for a, b in pairs:
            if a in shown and b in shown and not (ms[a].test_fitted or ms[b].test_fitted):
                add(a, b, name, "exploratory")
    for i, a in enumerate(shown):
        for b in shown[i + 1:]:
            if ms[a].test_fitted or ms[b].test_fitted:
                add(a, b, NONE_FAMILY, "none")
            else:
                add(a, b, OTHER_FAMILY, "exploratory")
    return pd.DataFrame(rows, columns=["model_a", "model_b", "family", "role"])


def delong_families(preds: pd.DataFrame, families: pd.DataFrame) -> pd.DataFrame:
    """Paired DeLong tests of every pair of :func:`comparison_families` on the test split, with
    Holm and Benjamini-Hochberg adjustment within each family (one ``p.adjust`` per family;
    R's ``p.adjust`` per family agrees); pairs in no family keep their raw p only."""
    t = delong_pairs(preds, list(zip(families.model_a, families.model_b)), "")
    t["family"], t["role"] = families.family.to_numpy(), families.role.to_numpy()
    t["p_holm"] = t["p_bh"] = np.nan
    inf = (t.role != "none") & t.p_value.notna()
    if inf.any():
        p, fam = t.p_value[inf].to_numpy(), t.family[inf].to_numpy()
        t.loc[inf, "p_holm"] = S.adjust_within_families(p, fam, method="holm")
        t.loc[inf, "p_bh"] = S.adjust_within_families(p, fam, method="bh")
    return t


def subgroup_auc(preds: pd.DataFrame, cohort: pd.DataFrame, models: dict[str, str],
                 by: str = "field_strength", *, ci_method: str = "logit_delong", n_boot: int = 2000,
                 seed: int = 0) -> pd.DataFrame:
    """Test-set AUC of each model within each subgroup (headline CI: DeLong or bootstrap, the
    exact binomial CI beside it for comparison), and pROC's unpaired DeLong test between the two
    largest subgroups (the patients differ).

    Returns:
        One row per model and subgroup: ``model, subgroup, n, n_pos, auc, ci_low, ci_high,
        ci_method, exact_low, exact_high, unpaired_p, note`` (``unpaired_p`` on each model's
        first row; a subgroup with fewer than 2 patients of a class gets no CI, named in
        ``note``).
    """
    test = preds[preds.split == "test"].merge(cohort[["patient_id", by]], on="patient_id")
    groups = test[by].value_counts().index.tolist()
    rows = []
    for col, name in models.items():
        for k, g in enumerate(groups):
            d = test[test[by] == g]
            row = {"model_id": col, "model": name, "subgroup": f"{by}={g}", "n": len(d), "n_pos": int(d.label.sum()),
                   "auc": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                   "ci_method": AUC_CI_NAMES[ci_method], "exact_low": np.nan, "exact_high": np.nan,
                   "unpaired_p": np.nan, "note": ""}
            counts = d.label.value_counts()
            if min(counts.get(0, 0), counts.get(1, 0)) < 2:
                row["note"] = "fewer than 2 patients of a class: no AUC CI"
                if d.label.nunique() == 2:
                    row["auc"] = S.auc(d.label, d[col])
            else:
                ci = S.auc_ci(d.label, d[col], method=ci_method, n_boot=n_boot, seed=seed)
                ex = S.auc_ci(d.label, d[col], method="exact")
                row.update(auc=ci.auc, ci_low=ci.low, ci_high=ci.high, exact_low=ex.low,
                           exact_high=ex.high)
            if k == 0 and len(groups) >= 2:
                a, b = test[test[by] == groups[0]], test[test[by] == groups[1]]
                try:
                    row["unpaired_p"] = S.delong_test_unpaired(a.label, a[col], b.label, b[col]).p_value
                except ValueError as exc:
                    row["note"] = (row["note"] + "; " if row["note"] else "") + f"unpaired test: {exc}"
            rows.append(row)
    return pd.DataFrame(rows)


#: manifest column -> (predictor name, words)
CLINICAL_PREDICTORS = {"age": ("age", "age"), "tumor_size_cm": ("size", "tumour size"),
                       "margin": ("irregular", "irregular margin"), "tic_type": ("tic_III", "TIC type III")}
ALL_COVARIATES = tuple(CLINICAL_PREDICTORS)


def clinical_features(cohort: pd.DataFrame, covariates=ALL_COVARIATES) -> pd.DataFrame:
    """The clinical predictors of ``covariates`` (``clinical.covariates``): age, tumour size,
    irregular margin, TIC type III."""
    make = {"age": lambda: cohort.age.to_numpy(), "tumor_size_cm": lambda: cohort.tumor_size_cm.to_numpy(),
            "margin": lambda: (cohort.margin == "irregular").astype(float).to_numpy(),
            "tic_type": lambda: (cohort.tic_type == "III").astype(float).to_numpy()}
    return pd.DataFrame({CLINICAL_PREDICTORS[c][0]: make[c]() for c in covariates})


def clinical_words(covariates=ALL_COVARIATES) -> str:
    """``age, tumour size, irregular margin, TIC type III`` for the covariates used."""
    return ", ".join(CLINICAL_PREDICTORS[c][1] for c in covariates)


def clinical_baseline(cohort: pd.DataFrame, splits: pd.DataFrame,
                      folds: pd.DataFrame | None = None, *, covariates=ALL_COVARIATES) -> pd.DataFrame:
    """Logistic regression on the clinical covariates (default: age, tumour size, margin and TIC
    type), fitted inside the development set (:func:`alnm_core.protocol.cross_fitted`);
    ``patient_id, split, label, prob`` for everyone."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = clinical_features(cohort, covariates).set_index(cohort.patient_id.to_numpy())
    y = cohort.set_index("patient_id").alnm

    def fit_predict(train_ids, predict_ids):
        m = make_pipeline(StandardScaler(), LogisticRegression(C=1.0))
        m.fit(X.loc[list(train_ids)], y.loc[list(train_ids)])
        return pd.Series(m.predict_proba(X.loc[list(predict_ids)])[:, 1], index=list(predict_ids))

    return cross_fitted(fit_predict, splits, folds)


def cv_summary(preds: pd.DataFrame, unit_predictions: dict[str, pd.DataFrame],
               weights: dict[str, float], models: dict[str, str], *,
               level: float = 0.95, folds: pd.DataFrame | None = None) -> pd.DataFrame:
    """K-fold summary per model: the pooled out-of-fold AUC (development patients; a patient's
    probability is the mean over repeats of its out-of-fold predictions, then one ROC curve)
    with its DeLong CI beside the test AUC with its DeLong CI, and the fold-to-fold spread
    (mean, SD, min, max) of the fold AUCs (each fold's held-out patients scored by that fold's
    model, every repeat) and, for a sequence, of its fold models' test AUCs. The pooled CI
    ignores model-to-model variability; the spread shows it (:mod:`alnm_core.stats.spread`).

    The fusion's fold AUCs use each fold's out-of-fold probabilities of every sequence, fused
    with the run's weights; a model without unit predictions (clinical, radiomics) gets its
    fold AUCs from the pooled out-of-fold predictions and ``folds`` when there is one repeat
    (then they are the fold models' own predictions). Returns one row per model.
    """
    rows = []
    dev, test = preds[preds.split == "dev"], preds[preds.split == "test"]
    for col, name in models.items():
        row = {"model_id": col, "model": name}
        for part, d in (("oof", dev), ("test", test)):
            ci = S.auc_ci(d.label, d[col], method="delong", level=level)
            row.update({f"auc_{part}": ci.auc, f"auc_{part}_low": ci.low, f"auc_{part}_high": ci.high})
        fold_aucs, test_aucs = [], []
        if col in unit_predictions:
            u = unit_predictions[col]
            u = u[u.repeat != -1]  # the fold models (not the final refit)
            for _, g in u.groupby(["repeat", "fold"]):
                for part, out in (("oof", fold_aucs), ("test", test_aucs)):
                    d = g[g.split == part]
                    if d.label.nunique() == 2:
                        out.append(S.auc(d.label, d.prob))
        elif col == "weighted_vote" and unit_predictions:
            oof = pd.concat([u[u.split == "oof"].assign(seq=s) for s, u in unit_predictions.items()])
            wide = oof.pivot_table(index=["repeat", "fold", "patient_id", "label"], columns="seq",
                                   values="prob").dropna().reset_index()
            w = np.array([weights[s] for s in unit_predictions])
            wide["fused"] = wide[list(unit_predictions)].to_numpy() @ w / w.sum()
            for _, g in wide.groupby(["repeat", "fold"]):
                if g.label.nunique() == 2:
                    fold_aucs.append(S.auc(g.label, g.fused))
        elif folds is not None and folds["repeat"].nunique() == 1:
            f = dev[["patient_id", "label", col]].merge(folds, on="patient_id")
            fold_aucs = [S.auc(g.label, g[col]) for _, g in f.groupby("fold") if g.label.nunique() == 2]
        for part, vals in (("fold", fold_aucs), ("unit_test", test_aucs)):
            sp = S.spread(vals)
            row.update({f"{part}_auc_mean": sp.mean, f"{part}_auc_sd": sp.sd, f"{part}_auc_min": sp.min,
                        f"{part}_auc_max": sp.max, f"{part}_n": sp.n})
        row["repeats_combined"] = ("mean over repeats of each patient's out-of-fold probability, then pooled"
                                   if folds is not None and folds["repeat"].nunique() > 1 else
                                   "one repeat: each patient's out-of-fold probability, pooled")
        rows.append(row)
    return pd.DataFrame(rows)


def calibration_table(test: pd.DataFrame, models: dict[str, str], *,
                      probabilities: str = "as predicted", notes: dict[str, str] | None = None) -> pd.DataFrame:
    """Brier score, calibration intercept and slope of each model on the test patients.

    A model whose calibration cannot be fitted (probabilities all equal, classes separated by the
    score, no recalibration map: ``notes``) gets NaN intercept and slope with the reason in
    ``note``. ``probabilities`` names what was scored (as predicted, or recalibrated).
    """
    rows = []
    for col, name in models.items():
        base = {"model_id": col, "model": name, "probabilities": probabilities}
        if notes and col in notes:
            rows.append({**base, "brier": np.nan, "intercept": np.nan, "slope": np.nan, "note": notes[col]})
            continue
        try:
            c = S.calibration_intercept_slope(test.label, test[col])
            rows.append({**base, "brier": c.brier, "intercept": c.intercept, "slope": c.slope, "note": ""})
        except ValueError as exc:
            rows.append({**base, "brier": S.brier_score(test.label, test[col]),
                         "intercept": np.nan, "slope": np.nan, "note": f"not estimable ({exc})"})
    return pd.DataFrame(rows)


def recalibrate(preds: pd.DataFrame, models: list[str], *, method: str, fit_split: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """The test rows with each model's probabilities recalibrated (``platt`` or ``isotonic``) by
    a map fitted on the development predictions of ``fit_split`` (validation, or out-of-fold);
    never on the test patients.

    Returns:
        ``(test rows, notes)``: the recalibrated columns, and for each model whose map could not
        be fitted (e.g. one class, or a constant score) the reason (its column is left as
        predicted).
    """
    dev, test = preds[preds.split == fit_split], preds[preds.split == "test"].copy()
    notes = {}
    for m in models:
        try:
            fit = S.fit_recalibration(dev.label, dev[m], method=method)
            test[m] = S.apply_recalibration(fit, test[m])
        except (ValueError, FloatingPointError) as exc:
            notes[m] = f"no {method} map: {exc}"
    return test, notes


def reliability_long(test: pd.DataFrame, models: dict[str, str]) -> pd.DataFrame:
    """Reliability bins (quantile bins: 5 below 100 patients, else 10) of each model, long form."""
    n_bins = 5 if len(test) < 100 else 10
    parts = [S.reliability_table(test.label, test[col], n_bins=n_bins).assign(model=name, model_id=col)
             for col, name in models.items()]
    return pd.concat(parts, ignore_index=True)


def decision_curves(test: pd.DataFrame, models: dict[str, str],
                    thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """Net benefit of each model at threshold probabilities 0.05..0.95, long form:
    ``threshold, net_benefit, treat_all, treat_none, model, model_id``."""
    t = np.arange(5, 96) / 100 if thresholds is None else thresholds
    parts = [S.net_benefit(test.label, test[col], t).rename(columns={"model": "net_benefit"})
             .assign(model=name, model_id=col) for col, name in models.items()]
    return pd.concat(parts, ignore_index=True)
