"""Tables and figure inputs the notebooks show, built from step results (no new numbers).

Every function here rearranges or formats what a step computed and wrote as an artifact; a
notebook calls one, then displays the result through :mod:`alnm_core.report.escape` (tables,
Markdown) or as a figure. Keeping this out of the notebooks keeps them short enough to teach
from, and puts every line a reviewer might question where tests can reach it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .escape import fmt_number, fmt_p

SPLITS = ("train", "val", "dev", "test")


# ----------------------------------------------------------------------------- section 1
def _p_column(values) -> list[str]:
    return [fmt_p(p) if str(p).strip() not in ("", "nan") else "" for p in values]


def _second_test(out: pd.DataFrame, t: pd.DataFrame) -> pd.DataFrame:
    """The fixed rules' second test beside the first (Mann–Whitney beside Welch, the nominal
    test beside the trend test), where the table has one."""
    if "test_alt" in t and (t.test_alt.fillna("").astype(str) != "").any():
        out["P (second test)"] = _p_column(t.p_alt.fillna(""))
        out["Second test"] = t.test_alt.fillna("").to_numpy()
    return out


def table1_view(t: pd.DataFrame) -> pd.DataFrame:
    """Table 1 as printed: characteristic, level, total, ALNM, non-ALNM, P (journal style), test,
    and the second test of the fixed rules where there is one."""
    return _second_test(pd.DataFrame({"Characteristic": t.characteristic, "": t.level, "Total": t.total,
                                      "ALNM": t.group1, "Non-ALNM": t.group0, "P": _p_column(t.p),
                                      "Test": t.test}), t)


def outside_note(info: dict) -> list:
    """A line saying how many image and mask paths were read from outside the cohort folder,
    and by whose leave (the ``prepare`` step's record); nothing when every path was inside."""
    from . import escape as esc

    r = info.get("steps", {}).get("prepare", {}).get("read_outside_cohort")
    if not r:
        return []
    how = ("input.allow_outside_cohort" if r.get("allow_outside_cohort") else
           "input.trusted_folders: " + ", ".join(r.get("trusted_folders", [])))
    return [esc.md("**{n} image and mask path(s) were read from outside the cohort folder**, as the "
                   "user allowed ({how}).", n=r["paths"], how=how)]


def normality_view(t: pd.DataFrame) -> pd.DataFrame:
    return t.loc[t.normality != "", ["characteristic", "normality"]].rename(
        columns={"characteristic": "Characteristic", "normality": "Normality checks (p per group)"})


# ----------------------------------------------------------------------------- section 2
def roi_settings(cfg) -> list[tuple[str, str]]:
    """The crop settings of a run, as (setting, value) pairs."""
    r = cfg.roi
    return [("crop size", f"{r.size} x {r.size} px"),
            ("peritumoral margin", f"{r.margin_mm:g} mm ({'square box in mm' if r.keep_aspect else 'box stretched to a square'})"),
            ("slices", f"{r.slices}" + (f" (k = {r.central_k})" if r.slices == "central" else "")
             + f", minimum tumour area {r.min_area_mm2:g} mm²"),
            ("DWI b-value", "highest in the series" if r.dwi_b_value is None else f"{r.dwi_b_value:g}"),
            ("DCE phase", r.dce_phase), ("unusable patients", r.on_error)]


def crops_summary(crops, splits: pd.DataFrame | None = None) -> dict:
    """Patients and crops of a sequence, overall and (given the split) per split."""
    n = crops.per_patient.set_index("patient_id").n_crops
    out = {"patients": int(len(n)), "crops": int(n.sum()), "per_patient_mean": round(float(n.mean()), 1),
           "per_patient_min": int(n.min()), "per_patient_max": int(n.max())}
    if splits is not None:
        part = splits.set_index("patient_id").split.reindex(n.index)
        out.update({f"{k} (crops / patients)": f"{int(n[part == k].sum())} / {int((part == k).sum())}"
                    for k in SPLITS if (part == k).any()})
    out.update({"crop shape": f"{crops.crops.shape[1]} x {crops.crops.shape[2]}",
                "value range": f"[{crops.crops.min():.2f}, {crops.crops.max():.2f}]"})
    return out


def crops_table(rois: dict, splits: pd.DataFrame) -> pd.DataFrame:
    """Patients and crops per sequence and split (``rois``: sequence -> RoiResult)."""
    return pd.DataFrame({s: crops_summary(r.crops, splits) for s, r in rois.items()}).T


def qc_patients(cohort: pd.DataFrame, n: int, excluded=()) -> list[str]:
    """The first patients of each group for the QC gallery (ALNM first), among those cropped
    (a patient excluded at ROI extraction cannot be drawn: it is listed above instead)."""
    kept = cohort[~cohort.patient_id.isin(set(excluded))]
    return (list(kept[kept.alnm == 1].patient_id[: (n + 1) // 2]) +
            list(kept[kept.alnm == 0].patient_id[: n // 2]))


def central_crops(crops, cohort: pd.DataFrame, seed: int, k: int = 16) -> tuple[np.ndarray, list[str]]:
    """The central crop of ``k`` random patients, with "patient · label" titles."""
    rng = np.random.default_rng(seed)
    label = cohort.set_index("patient_id").alnm
    ids = crops.per_patient.patient_id.to_numpy()
    pick = rng.choice(ids, size=min(k, len(ids)), replace=False)
    idx = []
    for p in pick:
        rows = np.flatnonzero(crops.patient_id == p)
        idx.append(int(rows[len(rows) // 2]))
    return crops.crops[idx], [f"{p} · {label[p]}" for p in pick]


def intensities(rois: dict, limit: int = 200) -> tuple[list, list]:
    """Raw (rescaled back) and normalised intensities of the first crops of each sequence."""
    raw, normed = [], []
    for r in rois.values():
        c = r.crops
        k = slice(0, min(limit, len(c.crops)))
        lo, hi = c.raw_range[k, 0][:, None, None], c.raw_range[k, 1][:, None, None]
        raw.append(c.crops[k] * (hi - lo) + lo)
        normed.append(c.crops[k])
    return raw, normed


def tic_agreement(dce_crops, cohort: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None, float | None]:
    """Each patient's DCE curve on its own phase times (minutes; the phase index when the
    series has no times), grouped by the manifest's TIC type; the image-vs-manifest cross-table
    and the agreement. A cohort that does not record the TIC type (every value empty) gets its
    curves grouped by the type read from the images, and no cross-table (None)."""
    pp = dce_crops.per_patient.merge(cohort[["patient_id", "tic_type", "alnm"]], on="patient_id",
                                     suffixes=("_image", "_manifest"))
    pp["times"] = [np.array(t, float) / 60 if len(t) else np.arange(len(c), dtype=float)
                   for t, c in zip(pp.tic_times_s, pp.tic_curve)]
    recorded = pp.tic_type_manifest.astype(str).str.strip().ne("").any()
    curves = pp.rename(columns={"tic_type_manifest" if recorded else "tic_type_image": "tic", "tic_curve": "curve"})
    if not recorded:
        return curves, None, None
    agree = pd.crosstab(pp.tic_type_image.rename("from the images"), pp.tic_type_manifest.rename("cohort.csv"))
    return curves, agree, float((pp.tic_type_image == pp.tic_type_manifest).mean())


# ----------------------------------------------------------------------------- section 3
def training_settings(cfg, crops_shape: tuple[int, ...], device: str) -> pd.DataFrame:
    """This run's training settings beside the paper's."""
    t = cfg.train
    rows = [
        ("architecture", t.arch, "ResNet50"),
        ("input", f"{crops_shape[1]} x {crops_shape[2]} crops, {t.in_channels} channel(s)", "224 x 224"),
        ("initialisation", "ImageNet" if (t.pretrained or t.weights_path) else "random", "not stated"),
        ("optimiser", f"Adam, lr {t.lr:g}, weight decay {t.weight_decay:g}", "Adam, lr 5e-5"),
        ("batch size / epochs", f"{t.batch_size} / {t.epochs}", "64 / 300"),
        ("augmentation", "flips, transposition, gamma 0.85-1.15" if t.augment else "none", "not stated"),
        ("class imbalance", "loss weighted by inverse class frequency" if t.class_weighting == "balanced"
         else "none", "not stated"),
        ("validation", f"{cfg.split.n_folds}-fold cross-validation x {cfg.split.repeats} (one model per fold; "
                       "then one refitted on every development patient scores the test set)"
         if cfg.split.scheme == "kfold" else f"hold-out validation part ({cfg.split.val_fraction:.0%})", "not stated"),
        ("checkpoint", "best AUC on the model's validation patients" if t.selection == "best_val_auc"
         else "last epoch (a fixed epoch count)", "not stated"),
        ("slice -> patient", t.aggregation, "not stated"),
        ("device", device, "GPU"),
    ]
    return pd.DataFrame(rows, columns=["setting", "this run", "the paper"])


def units_table(units: list) -> pd.DataFrame:
    """One row per training unit: patients fitted / validated / predicted, epochs, time."""
    return pd.DataFrame([{"unit": u.job.id, "patients fitted": u.info["n_roles"].get("train", 0),
                          "validation": u.info["n_roles"].get("val", 0),
                          "predicted out of fold": u.info["n_roles"].get("oof", 0),
                          "epochs": len(u.history), "kept epoch": u.info["best_epoch"],
                          "seconds": round(u.info["seconds"]), "device": u.info["device"],
                          "crops/s": u.info["train_crops_per_s"],
                          "resumed after epoch": u.info["resumed_from_epoch"] or ""} for u in units])


def per_split_view(t: pd.DataFrame) -> pd.DataFrame:
    """Per-split AUC with its CIs and ACC / SEN / SPE with Clopper-Pearson CIs."""
    def ci(k):
        return [f"{fmt_number(e)} ({fmt_number(lo)}-{fmt_number(hi)})"
                for e, lo, hi in zip(t[k], t[f"{k}_low"], t[f"{k}_high"])]

    return pd.DataFrame({"split": [s + (" (out-of-fold)" if s == "dev" else "") for s in t.split],
                         "patients (ALNM)": [f"{n} ({k})" for n, k in zip(t.patients, t.n_pos)],
                         "AUC": [fmt_number(a) for a in t.auc],
                         "DeLong CI": [f"{fmt_number(a)}-{fmt_number(b)}" for a, b in zip(t.auc_delong_low, t.auc_delong_high)],
                         "exact CI (MedCalc)": [f"{fmt_number(a)}-{fmt_number(b)}" for a, b in zip(t.auc_exact_low, t.auc_exact_high)],
                         "ACC": ci("acc"), "SEN": ci("sen"), "SPE": ci("spe")})


def gradcam_titles(table: pd.DataFrame) -> list[str]:
    return [f"{p} y={int(y)} p={q:.2f}" for p, y, q in zip(table.patient_id, table.label, table.prob)]


# ----------------------------------------------------------------------------- section 4
def worked_example(fused: pd.DataFrame, weights: pd.DataFrame, members: list[str], weights_from: str,
                   labels: dict[str, str], n: int = 6) -> pd.DataFrame:
    """The headline vote for the first test patients, step by step (paper eq. 2-3)."""
    from ..ensemble import weighted_vote

    used = "acc_validation" if weights_from == "validation" else "acc_test"
    w = weights.set_index("model")[used].to_dict()
    test = fused[fused.split == "test"].head(n)
    vote = weighted_vote(test[members], w)
    out = test[["patient_id", "label", *members]].rename(columns=labels)
    return out.assign(**{"H(x)": np.round(vote.H, 3), "Σw/2": round(vote.threshold, 3), "decision": vote.decision})


def auc_by_method(fused: pd.DataFrame, columns: list[str], labels: dict[str, str], fit: tuple[str, str]) -> pd.DataFrame:
    """Patient-level AUC of every fusion method and member, development and test."""
    from ..stats import auc

    value, name = fit
    rows = []
    for c in columns:
        rows.append({"model": labels.get(c, c),
                     **{f"AUC {s}": auc(fused[fused.split == v].label, fused[fused.split == v][c])
                        for s, v in ((name, value), ("test", "test"))}})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- section 5
def roc_curves(test: pd.DataFrame, models: dict[str, str]) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """``label -> (fpr, tpr, auc)`` on the test patients, for ``models`` (model id -> label)."""
    from ..stats import auc, roc_curve

    out = {}
    for col, name in models.items():
        d = test.dropna(subset=[col])
        c = roc_curve(d.label, d[col])
        out[name] = (c.fpr[::-1], c.sensitivity[::-1], auc(d.label, d[col]))
    return out


def delong_view(t: pd.DataFrame) -> pd.DataFrame:
    """A DeLong family as printed: labels, AUCs, z, p, Holm and BH adjusted (journal style)."""
    out = pd.DataFrame({"model A": t.get("label_a", t.model_a), "model B": t.get("label_b", t.model_b),
                        "AUC A": t.auc_a, "AUC B": t.auc_b, "difference (95% CI)":
                        [f"{fmt_number(d)} ({fmt_number(lo)} to {fmt_number(hi)})"
                         for d, lo, hi in zip(t["diff"], t.ci_low, t.ci_high)] if "diff" in t else "",
                        "z": t.z, "p": [fmt_p(p) for p in t.p_value]})
    for col, name in (("p_holm", "p (Holm)"), ("p_bh", "p (BH)")):
        if col in t:
            out[name] = [fmt_p(p) for p in t[col]]
    return out


def cv_view(cv: pd.DataFrame) -> pd.DataFrame:
    """Pooled out-of-fold vs test AUC per model, and beside them the fold-to-fold spread."""
    def ci(a, lo, hi):
        return [f"{fmt_number(x)} ({fmt_number(y)}-{fmt_number(z)})" for x, y, z in zip(a, lo, hi)]

    def spread(prefix):
        cols = [cv.get(f"{prefix}_auc_{k}", pd.Series(np.nan, index=cv.index)) for k in ("mean", "sd", "min", "max")]
        return [f"{fmt_number(m)} ± {fmt_number(sd)} ({fmt_number(lo)}–{fmt_number(hi)}), {int(n)}" if n > 1 else "—"
                for m, sd, lo, hi, n in zip(*cols, cv[f"{prefix}_n"])]

    return pd.DataFrame({
        "model": cv.model,
        "AUC out-of-fold, pooled (95% CI)": ci(cv.auc_oof, cv.auc_oof_low, cv.auc_oof_high),
        "fold AUC: mean ± SD (range), folds": spread("fold"),
        "AUC test (95% CI)": ci(cv.auc_test, cv.auc_test_low, cv.auc_test_high),
        "fold models' test AUC: mean ± SD (range), models": spread("unit_test")})


def cv_caption(cfg) -> str:
    """How the out-of-fold table was obtained (repeats, pooling, what the CI ignores)."""
    r = cfg.split.repeats
    how = (f"each development patient's out-of-fold probabilities were averaged over the {r} repeats, then "
           "pooled into one ROC curve" if r > 1 else "each development patient's out-of-fold probability "
           "(one repeat) was pooled into one ROC curve")
    return (f"Cross-validation ({cfg.split.n_folds} folds): {how}; its DeLong CI treats the pooled predictions "
            "as one model's and ignores fold-to-fold model variability, shown beside it as the spread of the "
            "per-fold AUCs (not a CI: folds share training patients)")


def subgroups_view(sub: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "model": sub.model, "subgroup": sub.subgroup, "n": sub.n, "ALNM": sub.get("n_pos", ""),
        "AUC (95% CI)": [f"{fmt_number(a)} ({fmt_number(lo)}-{fmt_number(hi)})" if np.isfinite(lo) else fmt_number(a)
                         for a, lo, hi in zip(sub.auc, sub.ci_low, sub.ci_high)],
        "exact CI (MedCalc)": [f"{fmt_number(lo)}-{fmt_number(hi)}" if np.isfinite(lo) else "—"
                               for lo, hi in zip(sub.get("exact_low", sub.ci_low), sub.get("exact_high", sub.ci_high))],
        "unpaired p": [fmt_p(p) if np.isfinite(p) else "" for p in sub.unpaired_p],
        "note": sub.note.fillna("")})


def calibration_view(cal: pd.DataFrame) -> pd.DataFrame:
    """Brier, intercept and slope per model, as predicted and (when computed) recalibrated,
    the two rows of a model together."""
    probs = cal.get("probabilities", pd.Series("as predicted", index=cal.index))
    order = np.argsort(pd.Categorical(cal.model_id, categories=list(dict.fromkeys(cal.model_id))).codes, kind="stable")
    out = pd.DataFrame({"model": cal.model, "probabilities": probs, "Brier": cal.brier, "intercept": cal.intercept,
                        "slope": cal.slope, "note": cal.note.fillna("")})
    return out.iloc[order].reset_index(drop=True)


def decision_curves(res) -> dict[str, pd.DataFrame]:
    """The decision curves by model, named with the probabilities they were drawn on."""
    d = res.decision_curve
    probs = d.get("probabilities", pd.Series("as predicted", index=d.index))
    return {(m if p == "as predicted" else f"{m}, {p}"): g
            for (m, p), g in d.assign(probabilities=probs).groupby(["model", "probabilities"], sort=False)}


def radiomics_features_view(rad) -> pd.DataFrame:
    return pd.DataFrame([{"sequence": s, "patients": len(f), "features": f.shape[1] - 1,
                          "s / patient (1 process)": rad.seconds_per_patient.get(s, np.nan),
                          "not computed (imputed)": sum(e["sequence"] == s for e in rad.exclusions)}
                         for s, f in rad.features.items()])


def radiomics_models_view(coefs: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    head = coefs[coefs.term == "(intercept)"]
    return pd.DataFrame({"model": head.model.map(labels), "features": head.n_features,
                         "after the robustness filter": head.n_after_filter, "C": head.C,
                         "L1 ratio": head.l1_ratio,
                         "non-zero coefficients": [int(((coefs.model == m) & (coefs.term != "(intercept)")).sum())
                                                   for m in head.model]})


def frozen_thresholds(t3: pd.DataFrame) -> dict[str, float]:
    """``label -> Youden threshold`` frozen on the development predictions."""
    y = t3[t3.threshold_from.str.startswith("Youden")]
    return dict(zip(y.model, y.threshold.astype(float)))


def thresholds_by_id(t3: pd.DataFrame) -> dict[str, float]:
    y = t3[t3.threshold_from.str.startswith("Youden")]
    return dict(zip(y.model_id, y.threshold.astype(float)))


def explorer_inputs(test: pd.DataFrame, t3: pd.DataFrame, models) -> tuple[dict, dict]:
    """The threshold explorer's predictions (label -> label/prob frame) and frozen thresholds,
    the headline first."""
    head = models.headline.model_id
    order = [head] + [m.model_id for m in models.shown if m.model_id != head]
    frozen = thresholds_by_id(t3)
    preds = {models.label(c): test[["label"]].assign(prob=test[c]) for c in order}
    return preds, {models.label(c): frozen[c] for c in order if c in frozen}


def phantom_note(effects: dict[str, float], sequences: Any) -> str:
    return ", ".join(f"{s} {effects[s]:.1f}" for s in sorted(effects, key=effects.get, reverse=True) if s in sequences)


def phantom_section(cohort_dir, sequences) -> list:
    """On the synthetic phantom, what the AUCs can and cannot say (nothing on a real cohort)."""
    from ..phantom import designed_effects, phantom_settings
    from . import escape as esc

    if (phantom := phantom_settings(cohort_dir)) is None:
        return []
    return [esc.md("**This cohort is the synthetic phantom.** The label's designed effect, in SDs of what "
                   "it moves, is {eff} (DWI: tumour ADC; T2WI: oedema thickness; DCE: rim enhancement). "
                   "The ordering of the AUCs above also reflects resolution, crop content and tuning, "
                   "and says nothing about real patients.",
                   eff=phantom_note(designed_effects(phantom), sequences))]


def reliability_curves(res) -> dict[str, pd.DataFrame]:
    """Reliability bins of the headline, the first shown member and the clinical baseline."""
    m = res.models
    ids = [m.headline.model_id] + [x.model_id for x in m.members if x.shown][:1] + ["clinical"]
    r = res.reliability
    probs = r.get("probabilities", pd.Series("as predicted", index=r.index))
    raw = r[(probs == "as predicted") & r.model_id.isin(ids)]
    out = {k: g for k, g in raw.groupby("model", sort=False)}
    head = r[(probs != "as predicted") & (r.model_id == m.headline.model_id)]  # the headline, recalibrated
    if len(head):
        out[f"{m.label(m.headline.model_id)} (recalibrated)"] = head
    return out


def radiomics_section(res, cfg) -> list:
    """What section 5 shows of the radiomics baselines: features, the models refitted on the
    development set, the headline model's coefficients, the nomogram, ROC curves beside the CNNs
    and the DeLong family (or a line saying they were not computed)."""
    from ..radiomics_models import nomogram_points
    from ..model_registry import radiomics_headline
    from . import escape as esc
    from . import plots

    rad = res.radiomics
    if rad is None:
        return [esc.md("Not computed in this run (radiomics.enabled=false; on in the demo and paper profiles).")]
    models, labels, test = res.models, res.models.labels(), res.test
    head = radiomics_headline(cfg)
    out = [esc.table(radiomics_features_view(rad), caption="Features per sequence")]
    if rad.exclusions:
        out.append(esc.table(pd.DataFrame(rad.exclusions),
                             caption="Features not computed (imputed by each model's training medians)"))
    out += [esc.table(radiomics_models_view(rad.coefficients, labels), caption="Models refitted on the development set"),
            plots.coefficient_figure(rad.coefficients[rad.coefficients.model == head], labels[head]),
            plots.nomogram_figure(nomogram_points(rad.coefficients))]
    panels = {"Multiparametric": roc_curves(test, models.labels([models.headline.model_id, head,
                                                                  "clinical_radiomics", "clinical"]))}
    if len(cfg.sequences) > 1:
        panels.update({m.sequence: roc_curves(test, {m.model_id: f"CNN {m.sequence}",
                                                     f"radiomics_{m.sequence}": f"radiomics {m.sequence}"})
                       for m in models.cnns("slice_vote")})
    from ..evaluation import RADIOMICS_FAMILY

    fam = res.family(name=RADIOMICS_FAMILY)
    out += [plots.roc_panels(panels),
            esc.table(delong_view(fam), caption=f"Exploratory family: CNNs vs radiomics baselines ({len(fam)} tests, "
                                                "test set; the fusion against them is in the primary family)")]
    return out


def delong_section(res, cfg) -> list:
    """Section 5's DeLong tests: the pre-specified primary family in full, the attention-MIL
    family, the remaining pairs with a raw p below ``stats.alpha``, and the pairs with a model
    fitted on the test set (in no family, unadjusted)."""
    from ..evaluation import MIL_FAMILY, OTHER_FAMILY
    from . import escape as esc

    d = res.delong
    primary = res.family("primary")
    how = ("as chosen (stats.primary_comparisons)" if cfg.stats.primary_comparisons else
           "by default: the headline model against each model it fuses and the clinical and radiomics baselines")
    out = [esc.table(delong_view(primary), caption=f"Primary family ({len(primary)} tests, pre-specified {how}; "
                                                   "Holm and BH over these tests only; test set)")]
    mil = res.family(name=MIL_FAMILY)
    if len(mil):
        out.append(esc.table(delong_view(mil), caption=f"Exploratory family: attention MIL against the slice "
                                                       f"vote, per sequence ({len(mil)} tests)"))
    rest = d[d.family == OTHER_FAMILY]
    sig = rest[rest.p_value < cfg.stats.alpha]
    out.append(esc.table(delong_view(sig), caption=f"Exploratory family: every other pair ({len(rest)} tests, "
                                                   f"adjusted among themselves): the pairs with raw p < {cfg.stats.alpha:g}"))
    none = d[d.role == "none"]
    if len(none):
        out.append(esc.md("{n} pair(s) involve a model fitted on the test set (the paper-literal test weights): "
                          "in no family, not adjusted, listed in delong.csv only.", n=len(none)))
    return out


def box_gallery(cohort: pd.DataFrame, cohort_dir, cfg, n: int = 12) -> list:
    """The box QC gallery when a sequence's ROIs are boxes (empty list otherwise): box outlines
    on the peak-phase and subtraction images, and the patients that could not be shown."""
    from ..boxes import is_box_file
    from . import boxes as bx
    from . import escape as esc

    seq = next((s for s in cfg.sequences if f"{s}_roi" in cohort.columns
                and cohort[f"{s}_roi"].map(is_box_file).any()), None)
    if seq is None:
        return []
    views_, skipped = bx.box_views(cohort, cohort_dir, cfg.roi, sequence=seq, n=n)
    out = [esc.md("**Box outlines** ({seq}): the tumour box on the peak-phase slice and on the "
                  "subtraction image, with the enhancement inside it.", seq=seq), bx.box_gallery(views_)]
    if skipped:
        out.append(esc.table(pd.DataFrame(skipped), caption="Patients not shown"))
    return out


def participant_flow_figure(prep, rois: dict, cohort_dir):
    """The participant flow of a run: the cohort as imported (patients left out by an importer,
    its ``excluded.csv``), the ROI exclusions, and the development / test partitions with events."""
    from pathlib import Path

    from . import plots
    from .flow import flow_from_run, reason_category

    fc = flow_from_run(prep.splits, [e for r in rois.values() for e in r.exclusions])
    excluded = Path(cohort_dir) / "excluded.csv"
    imported = []
    if excluded.is_file():
        ex = pd.read_csv(excluded, dtype=str, keep_default_na=False)
        if len(ex) and "reason" in ex:
            counts = ex.reason.map(reason_category).value_counts(sort=False)
            imported = [("import", str(r), int(n)) for r, n in counts.items()]
    n = fc.n_cohort + sum(k for *_, k in imported)
    return plots.participant_flow(n, imported + fc.exclusions, fc.groups, notes=fc.notes)


def partitions_view(t: pd.DataFrame) -> pd.DataFrame:
    """Characteristics of the development and test patients (Table 1's layout)."""
    return _second_test(pd.DataFrame({"Characteristic": t.characteristic, "": t.level, "Total": t.total,
                                      "Development": t.group0, "Test": t.group1, "P": _p_column(t.p),
                                      "Test used": t.test}), t)


def flagged_table3(view: pd.DataFrame, t3: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """Table 3 as printed with a ``Flag`` column: † chance-level, ‡ one class (see the flags)."""
    marks = {"chance-level": "†", "one class": "‡"}
    out = view.copy()
    per = {}
    for _, f in flags.iterrows():
        if f.flag == "one class" and not str(f.detail).endswith(")"):
            continue
        per.setdefault(f.model_id, set()).add((f.flag, str(f.detail)))
    col = []
    for mid, src in zip(t3.model_id, t3.threshold_from):
        fl = per.get(mid, set())
        m = "".join(sorted({marks[k] for k, d in fl if k == "chance-level" or f"at {src} " in d}))
        col.append(m)
    out.insert(1, "Flag", col)
    return out


def flags_md(flags: pd.DataFrame, model_id: str | None = None) -> str:
    """The flags (of one model, or all) as a Markdown list of escaped text ('' when none)."""
    from .escape import md_text

    f = flags if model_id is None else flags[flags.model_id == model_id]
    if f.empty:
        return ""
    marks = {"chance-level": "†", "one class": "‡"}
    return "\n".join(f"- {marks.get(r.flag, '')} **{md_text(r.model)}**: {md_text(r.flag)} — {md_text(r.detail)}"
                      for r in f.itertuples())


def chance_members_md(weights: pd.DataFrame, labels: dict[str, str], rule: str) -> str:
    """What the fusion does about members not shown to beat chance (their development AUC's CI
    reaches 0.5): their weight under the paper's rule and under ``above_chance``."""
    from .escape import md_text

    if "chance_level" not in weights or not weights.chance_level.any():
        return ("No member is flagged: each one's development AUC has a 95% CI above 0.5.")
    lines = []
    for r in weights[weights.chance_level].itertuples():
        lines.append(f"- **{md_text(labels.get(r.model, r.model))}**: development AUC {fmt_number(r.auc_fit)} "
                     f"(95% CI {fmt_number(r.auc_fit_low)}-{fmt_number(r.auc_fit_high)}) reaches 0.5. Weight "
                     f"under the paper's accuracy rule {fmt_number(r.weight_validation)}; under "
                     f"ensemble.weight_rule=above_chance {fmt_number(r.weight_above_chance)}.")
    used = ("the above-chance rule: these members get no weight" if rule == "above_chance"
            else "the paper's rule (ensemble.weight_rule=accuracy): these members keep their accuracy weight")
    return "**Chance-level members** (flagged †). This run uses " + used + ".\n\n" + "\n".join(lines)


def checklist_md(rows: pd.DataFrame) -> str:
    """The TRIPOD+AI / CLAIM checklist as a Markdown table whose sections link to their anchors."""
    import re

    def link(where: str) -> str:
        return re.sub(r"Section (\d)", lambda m: f"[Section {m.group(1)}](#sec-{m.group(1)})", where)

    out = ["| item | what a reviewer checks | where in this report |", "| --- | --- | --- |"]
    out += [f"| {r.item} | {r['what a reviewer checks']} | {link(r['where in this report'])} |" for _, r in rows.iterrows()]
    return "\n".join(out)


def attention_rows(crops, attention: pd.DataFrame, patients: pd.DataFrame, *, n: int = 4) -> list:
    """The MIL attention figure's rows: the test patients with the highest and lowest predicted
    probability, each with its slices' crops and weights."""
    test = patients[patients.split == "test"].sort_values("prob", ascending=False)
    pick = pd.concat([test.head((n + 1) // 2), test.tail(n // 2)]).drop_duplicates("patient_id")
    att = attention[attention.split == "test"]
    rows = []
    for r in pick.itertuples():
        a = att[att.patient_id == r.patient_id].sort_values("slice")
        idx = [int(np.flatnonzero((crops.patient_id == r.patient_id) & (crops.slice_index == s))[0])
               for s in a.slice]
        rows.append((f"{r.patient_id} y={int(r.label)} p={r.prob:.2f}", crops.crops[idx], a.slice.to_numpy(),
                     a.weight.to_numpy()))
    return rows


def tune_view(best: pd.DataFrame, model_id: str) -> pd.DataFrame:
    """The settings a search chose for a model, per scope (all, or each outer fold)."""
    import json

    b = best[best.model_id == model_id]
    return pd.DataFrame([{"scope": r.scope, **json.loads(r.params), f"best {r.metric}": r.best_score,
                          "sampler": r.sampler, "pruner": r.pruner, "executor": r.executor, "notes": r.notes}
                         for r in b.itertuples()])
