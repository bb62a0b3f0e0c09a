"""Text generated from a run's configuration: the methods paragraph and the reviewer checklist.

The paragraph states how every number in the report was computed (split, crops, training,
fusion, tests, CI methods, thresholds), so a reviewer needs no code to check it.
"""
from __future__ import annotations

import pandas as pd

from ..config import StudyConfig
from ..runfolder import record
from .escape import Safe, md_text


def _test_size(cfg: StudyConfig) -> str:
    ts = cfg.split.test_size
    return f"{int(ts)} patients" if ts >= 1 else f"{ts:.0%} of the patients"


def design_sentence(cfg: StudyConfig) -> Safe:
    """How the development set is used, in one paragraph (hold-out or k-fold)."""
    sp = cfg.split
    test = f"the patients with {md_text(sp.test_where)}" if sp.test_where else _test_size(cfg)
    if sp.scheme == "kfold":
        val = (f" Each fold model chooses its checkpoint on a validation part ({sp.val_fraction:.0%}) "
               "of its own training patients." if cfg.train.selection == "best_val_auc" else
               " Each fold model keeps its last epoch (a fixed epoch count): no validation part is used.")
        return Safe(f"**Design: {sp.n_folds}-fold cross-validation** ({sp.repeats} repeat(s)). Test set: "
                    f"{test}. The development patients (`dev`) are split into {sp.n_folds} folds; one "
                    "model per fold trains on the other folds and predicts its own, so every "
                    "development patient gets an out-of-fold prediction from a model that never saw "
                    f"it.{val} Thresholds, ensemble weights and recalibration maps are fitted on the "
                    "out-of-fold predictions; then each model is refitted on every development "
                    "patient, and that final model (one model, as each out-of-fold prediction came "
                    "from one model, so the thresholds transport as chosen) scores the test set once.")
    return Safe(f"**Design: hold-out.** Test set: {test}. A validation part ({sp.val_fraction:.0%} of "
                "the development set, `val`) chooses checkpoints, thresholds and ensemble weights; "
                "the rest (`train`) fits the models. A fixed `split` column in `cohort.csv` (as the "
                "paper's 202 / 50 split) takes precedence when present.")


def table1_methods(cfg: StudyConfig) -> Safe:
    """How Table 1's numbers are obtained under this run's settings."""
    return Safe("Continuous variables: mean ± SD, compared by " + _continuous_words(cfg) +
                ". Categorical variables: n (%), compared by " + _categorical_words(cfg) + ".")


def _continuous_words(cfg: StudyConfig) -> str:
    s = cfg.stats
    return {"auto": f"Student's or Welch's t test (by Levene's test) when both groups passed the "
                    f"{'Shapiro–Wilk' if s.normality_test == 'shapiro' else 'Lilliefors-corrected Kolmogorov–Smirnov'} "
                    f"normality check at α = {s.alpha:g}, otherwise the Mann–Whitney U test",
            "welch+mannwhitney": "Welch's t test, with the Mann–Whitney U test reported beside it (no "
                                 "normality pretest chose the test)",
            "t": "Student's t test", "welch": "Welch's t test",
            "mannwhitney": "the Mann–Whitney U test"}[s.continuous_test]


def _categorical_words(cfg: StudyConfig) -> str:
    s = cfg.stats
    names = {"auto": "Pearson's chi-square test without continuity correction, or Fisher's exact test "
                     "when an expected count was below 5",
             "chi2": "Pearson's chi-square test without continuity correction", "fisher": "Fisher's exact test"}
    test_rule = s.categorical_test if s.categorical_test_test_set == "same" else s.categorical_test_test_set
    return (names[s.categorical_test] if test_rule == s.categorical_test else
            f"{names[s.categorical_test]} (all patients) and {names[test_rule]} (test set)")


def methods_paragraph(cfg: StudyConfig, info: dict, *, n_test: int, n_test_pos: int) -> Safe:
    """Markdown paragraphs describing the run's methods, from ``run.json`` (every value from
    outside escaped)."""
    r, t, s = cfg.roi, cfg.train, cfg.stats
    excl = record.exclusions(info)
    cat_names = {"auto": "Pearson's chi-square test without continuity correction, or Fisher's "
                         "exact test when an expected count was below 5",
                 "chi2": "Pearson's chi-square test without continuity correction",
                 "fisher": "Fisher's exact test"}
    test_rule = s.categorical_test if s.categorical_test_test_set == "same" else s.categorical_test_test_set
    cat = (cat_names[s.categorical_test] if test_rule == s.categorical_test else
           f"{cat_names[s.categorical_test]} (all patients) and {cat_names[test_rule]} (test set)")
    cont = {"auto": f"Student's or Welch's t test (by Levene's test) when both groups passed the "
                    f"{'Shapiro–Wilk' if s.normality_test == 'shapiro' else 'Lilliefors-corrected Kolmogorov–Smirnov'} "
                    f"normality check at α = {s.alpha:g}, otherwise the Mann–Whitney U test",
            "welch+mannwhitney": "Welch's t test (the Mann–Whitney U test reported beside it; no "
                                 "normality pretest chose the test)",
            "t": "Student's t test", "welch": "Welch's t test",
            "mannwhitney": "the Mann–Whitney U test"}[s.continuous_test]
    ordinal = ("the Cochran–Armitage test for trend across the ordered TIC types (I < II < III), "
               "with the nominal test beside it" if s.ordinal_test == "trend" else
               "the same test as the other categorical variables (TIC type treated as nominal)")
    ppv = ("logit intervals of Mercaldo et al. (2007), as MedCalc (Clopper–Pearson where the "
           "predictive value is 0 or 1); they treat the prevalence as known and under-cover when it "
           "is estimated from the same sample" if s.ppv_npv_method == "logit" else
           "Clopper–Pearson intervals (their coverage holds when the prevalence is estimated from "
           "the same sample)")
    boot = f"{s.bootstrap_n} replicates, seed {cfg.seed}"
    head_ci = {"logit_delong": "the logit-transformed DeLong 95% CI (DeLong's variance on the logit "
                               "scale, back-transformed; chosen by a committed coverage simulation, its "
                               "simulated coverage at this test set's size under Table 3)",
               "delong": "the DeLong 95% CI (as pROC)",
               "bootstrap": f"a stratified percentile bootstrap 95% CI ({boot})",
               "bca": f"a stratified BCa bootstrap 95% CI ({boot})"}[s.auc_ci]
    other_ci = ("the DeLong CI (as pROC) and a stratified percentile bootstrap CI "
                f"({boot})" if s.auc_ci not in ("delong", "bootstrap") else
                "the DeLong CI (as pROC)" if s.auc_ci != "delong" else f"a stratified percentile bootstrap CI ({boot})")
    fit_name = "validation" if cfg.split.scheme == "holdout" else "out-of-fold"
    primary = ("as given in stats.primary_comparisons: " + md_text(", ".join(s.primary_comparisons))
               if s.primary_comparisons else "the multiparametric model against each base model, the "
               "clinical baseline and the radiomics baselines")
    recal = ("before and after recalibration of each model's probabilities by a "
             f"{'logistic (Platt) map on the logit' if s.recalibration == 'platt' else 'isotonic map'} fitted on "
             f"the {fit_name} predictions and applied to the test set (Table 3 stays on the models' own "
             "probabilities)" if s.recalibration != "none" else "on the models' own probabilities (no recalibration)")
    dca = "" if s.recalibration == "none" else " on the recalibrated probabilities"
    weights = (f"{fit_name} accuracies" if cfg.ensemble.weights_from == "validation"
               else "test accuracies (the paper's choice; optimistic)")
    sp = cfg.split
    test_rule = (f"the patients with {md_text(sp.test_where)}" if sp.test_where else _test_size(cfg))
    if sp.scheme == "kfold":
        design = (f"a development set split into {sp.n_folds} patient-level stratified folds "
                  f"({sp.repeats} repeat(s) with new folds). For each sequence, one model per fold "
                  "was trained on the other folds and predicted its own fold, so that every "
                  "development patient has an out-of-fold prediction from a model that never saw "
                  "it (averaged over repeats); thresholds, ensemble weights, stacking and "
                  "recalibration were fitted on these. Each model was then refitted on every "
                  "development patient and this final model scored the test set: a threshold chosen "
                  "on one-model out-of-fold scores is applied to one-model test scores (the mean of "
                  "the fold models, the alternative, has a narrower spread, so its operating point "
                  "would not be the one chosen)")
        ckpt = ("the best patient-level AUC on a validation part "
                f"({sp.val_fraction:.0%}) of each fold model's training patients"
                if cfg.train.selection == "best_val_auc" else "taking the last epoch (a fixed epoch count)")
    else:
        design = (f"a development set from which {sp.val_fraction:.0%} were held out for validation "
                  "(checkpoints, thresholds, ensemble weights and stacking)")
        ckpt = ("the best patient-level validation AUC" if cfg.train.selection == "best_val_auc"
                else "taking the last epoch")
    return Safe(f"""
**Cohort and split.** {md_text(info.get('n_patients'))} patients (profile {md_text(cfg.profile)}, seed {cfg.seed}).
Patients were split once, by patient and stratified by ALNM status, into a test set
({test_rule}; here {n_test} patients, {n_test_pos} with ALNM; a fixed `split` column of
`cohort.csv` used when present) and {design}. Exclusions: {len(excl) or 'none'} (a patient
excluded in one sequence is left out of every model).

**Images.** For each sequence, every axial slice whose tumour area was at least
{r.min_area_mm2:g} mm² ({r.slices} slices) was cropped around the mask's bounding box enlarged by
{r.margin_mm:g} mm on each side{' and squared in millimetres' if r.keep_aspect else ''}, resampled to
{r.size} × {r.size} pixels by bilinear interpolation and min-max normalised to [0, 1]. DWI used
{'the highest b-value of each series' if r.dwi_b_value is None else f'b = {r.dwi_b_value:g} s/mm²'};
DCE used {'the phase of peak relative enhancement of the tumour ROI' if r.dce_phase == 'peak' else f'phase {r.dce_phase}'}.

**Models.** One torchvision {t.arch} per sequence ({'ImageNet-initialised' if t.pretrained or t.weights_path else 'randomly initialised'},
two-class softmax head), trained with Adam (learning rate {t.lr:g}, batch {t.batch_size},
{t.epochs} epochs{', inverse-frequency class weights' if t.class_weighting == 'balanced' else ''}{', flip/transpose/gamma augmentation' if t.augment else ''}).
The checkpoint was chosen by {ckpt};
slice probabilities were aggregated per patient by their {t.aggregation}. The multiparametric
model is the paper's weighted vote (eq. 2–3, read as wᵢ = ACCᵢ) with weights from the {weights},
positive when H(x) ≥ Σwᵢ/2.

**Statistics.** Table 1: mean ± SD and n (%); continuous variables by {cont}; categorical
variables by {cat}; the ordinal TIC type by {ordinal}. Table 3 (test set): accuracy, sensitivity and specificity with Clopper–Pearson
95% CIs; PPV and NPV with {ppv}; operating points at the fixed threshold {s.threshold:g} (paper) and
at the Youden-optimal threshold found on the development predictions and frozen. AUC as the
Mann–Whitney statistic (ties count ½) with {head_ci}; beside it {other_ci} and, for comparison
with MedCalc and the paper, the exact binomial CI on AUC × N, which ignores the split into
patients with and without ALNM and under-covers on unbalanced cohorts. ROC curves were compared
with the paired DeLong test (two-sided). The primary family of comparisons was fixed before the
run ({primary}); Holm-adjusted (family-wise) and Benjamini–Hochberg-adjusted (false discovery
rate) p-values over that family stand beside the raw ones. Every other pair of models is
exploratory, in one family each (CNNs against the radiomics baselines, attention MIL against
the slice vote, every other pair), adjusted within it; a model fitted on the test set is in no
family (`delong.csv` names each pair's family). Subgroups: AUC with the same CI, pROC's unpaired
DeLong test between field strengths. Calibration: Brier score, calibration intercept (logit
offset) and slope, {recal}; decision curves by net benefit{dca}.
Significance level {s.alpha:g}.
""".strip() + tuning_paragraph(cfg) + cohort_paragraph(cfg, info) + radiomics_paragraph(cfg, info))


def tuning_paragraph(cfg: StudyConfig) -> str:
    """How the CNNs' hyperparameters were chosen, and what that means for the estimates."""
    models = ", ".join(cfg.train.models)
    mil = ("" if "attention_mil" not in cfg.train.models else
           f" Attention MIL ({cfg.mil.pooling.replace('_', ' ')} pooling, {cfg.mil.attention_hidden} hidden "
           f"units) pools a patient's slice embeddings from the same backbone into one probability.")
    if not cfg.tune.enabled:
        return (f"\n\n**Hyperparameters.** Fixed by the configuration (models: {md_text(models)}), not "
                f"searched (tune.enabled=false).{mil}")
    t = cfg.tune
    where = (f"inside each outer fold, on its training patients only, so the out-of-fold estimates stay "
             f"honest" if t.nested else "once on every development patient: the out-of-fold estimates are "
             "therefore optimistic by the selection (tune.nested=true avoids it); the test set is untouched")
    space = "the paper's grid (learning rate 1e-3 to 1e-6 × batch 16 / 32 / 64)" if t.space == "paper" else \
        f"the ranges {md_text(t.space)}"
    return (f"\n\n**Hyperparameters.** For each CNN model ({md_text(models)}), {space} was searched with "
            f"Optuna ({t.n_trials} trials, {t.pruner} pruning), each trial scored by its {t.metric} on "
            f"{t.inner_folds} inner folds of development patients, {where}. The chosen settings per model "
            f"are in section 3 and tune_best.csv, every trial in tune_trials.csv.{mil}")


def cohort_paragraph(cfg: StudyConfig, info: dict) -> str:
    """What the cohort's own ``cohort.json`` says of its label, its unrecorded covariates and its
    ROIs (a public collection imported by ``alnm import``), every value escaped; empty without
    one."""
    from ..cohort import read_cohort_info

    try:
        ci = read_cohort_info(info.get("cohort", ""))
    except Exception:  # an unreadable cohort.json is the cohort check's to report
        return ""
    if not ci:
        return ""
    out = []
    label = ci.get("label") or {}
    if label:
        kind = ("pathological" if label.get("pathological") else
                "not pathological: it differs from the paper's pN")
        out.append(f"**Label.** {md_text(label.get('source', 'as given by the cohort'))} ({kind}): "
                   f"{md_text(label.get('definition', ''))}. {md_text(label.get('caveat', ''))}")
    if ci.get("not_recorded"):
        out.append("**Not recorded in this cohort:** " + ", ".join(md_text(c) for c in ci["not_recorded"])
                   + " (left out of Table 1's tests and of the clinical models: clinical.covariates = "
                   + ", ".join(md_text(c) for c in cfg.clinical.covariates) + ").")
    col = ci.get("collection") or {}
    if col:
        out.append(f"**Source.** {md_text(col.get('name', ''))} ({md_text(col.get('publisher', ''))}, doi "
                   f"{md_text(col.get('doi', ''))}, {md_text(col.get('license', ''))}), imported by "
                   f"{md_text(ci.get('importer', ''))}.")
    for seq, r in (ci.get("roi") or {}).items():
        if isinstance(r, dict) and r.get("box"):
            out.append(f"**ROIs ({md_text(seq)}).** {int(r.get('box', 0))} patient(s) have the published "
                       f"tumour bounding box as ROI and {int(r.get('mask', 0))} an expert mask; a box is "
                       "not a segmentation, so the crops hold tissue around the tumour and radiomics "
                       f"shape features are not used. Convention: {md_text(r.get('box_convention', ''))}")
    return ("\n\n" + "\n\n".join(out)) if out else ""


def radiomics_paragraph(cfg: StudyConfig, info: dict) -> str:
    """The radiomics baselines' methods (empty unless ``radiomics.enabled``)."""
    rc, r = cfg.radiomics, cfg.roi
    if not rc.enabled:
        return ""
    n_excl = len(record.radiomics_exclusions(info))
    fit = ("inside each fold's training patients (out-of-fold predictions for the development "
           "set; refitted on every development patient for the test set), exactly as the CNNs"
           if cfg.split.scheme == "kfold" else "on the training patients, as the CNNs")
    penalty = ("an L1 (lasso) penalty (liblinear)" if rc.penalty == "l1" else
               "an elastic-net penalty (saga; L1 ratio 0.2, 0.5 or 0.8 chosen with the strength)")
    classes = ", ".join(rc.feature_classes)
    dwi = "the highest b-value" if r.dwi_b_value is None else f"b = {r.dwi_b_value:g} s/mm²"
    dce = "the phase of peak relative enhancement" if r.dce_phase == "peak" else f"phase {r.dce_phase}"
    return f"""

**Radiomics baselines.** From the same image and tumour mask the CNN crops come from (T2WI as
acquired, DWI at {dwi}, DCE at {dce}), IBSI-oriented features were computed in 3D on the whole
mask with pyradiomics (the maintained `pyradiomics-bhklab` fork): {('images z-score normalised on all voxels and scaled by 100, ' if rc.normalize else 'stored intensities, ')}{f'resampled to {rc.resample_mm:g} mm isotropic voxels (B-spline image, nearest-neighbour mask), ' if rc.resample_mm else 'on the acquired grid, '}grey levels discretised with a fixed bin width of {rc.bin_width:g}; feature classes {classes}.
Patients whose features could not be computed: {n_excl or 'none'}{' (imputed by the training medians)' if n_excl else ''}.
Models were fitted {fit}: median imputation, a robustness filter (near-constant features dropped;
of each pair with |Spearman r| > {rc.corr_threshold:g} on the training patients, the later one),
standardisation, and logistic regression with {penalty} whose strength was chosen by
{rc.inner_folds}-fold stratified inner cross-validation on AUC. One model per sequence, one on
every sequence's features together, and a clinical-radiomics model: logistic regression on age,
the clinical covariates and the rad-score (the all-sequence model's linear
predictor; for its own training patients from an inner cross-fit). Coefficients and the nomogram
are from each model refitted on every development patient. The CNN fusion was compared with the
baselines by the paired DeLong test in its own family (Holm and Benjamini–Hochberg).
"""


CHECKLIST = [
    ("TRIPOD+AI 5a / CLAIM 7", "Source of data, eligibility", "Section 1 (cohort, Table 1); cohort.csv contract in README"),
    ("TRIPOD+AI 6a / CLAIM 9", "Outcome definition (pN1a or worse vs pN0)", "Section 1 introduction; the alnm column of cohort.csv"),
    ("TRIPOD+AI 7a / CLAIM 12-14", "Predictors / image preprocessing", "Section 2 (ROI crops, QC gallery, normalisation)"),
    ("TRIPOD+AI 8 / CLAIM 21", "Sample size, class balance", "Section 1 (patients per split); Section 3 (crops per split)"),
    ("TRIPOD+AI 9 / CLAIM 20", "Missing data, exclusions", "Section 2 (exclusions and warnings); provenance footer"),
    ("TRIPOD+AI 10a / CLAIM 22-24", "Model type, building, hyper-parameters", "Section 3 (settings table, learning curves)"),
    ("TRIPOD+AI 10b / CLAIM 25-27", "Data partitions, no leakage (patient-level split)", "Section 1 (split); Section 3 (validation-only selection)"),
    ("TRIPOD+AI 10c / CLAIM 28", "Ensembling", "Section 4 (weights, worked example)"),
    ("TRIPOD+AI 10a / CLAIM 22", "Comparison with reference models (clinical, radiomics)", "Section 5 (clinical baseline; radiomics baseline, nomogram, DeLong family)"),
    ("TRIPOD+AI 10d / CLAIM 29-31", "Performance measures with uncertainty", "Section 5 (Table 3, CIs, methods paragraph)"),
    ("TRIPOD+AI 10e", "Calibration and clinical utility", "Section 5 (calibration, decision curve)"),
    ("TRIPOD+AI 12 / CLAIM 32", "Subgroups (scanner / field strength)", "Section 5 (subgroups by field strength)"),
    ("CLAIM 33", "Explainability (saliency)", "Section 3 (Grad-CAM gallery)"),
    ("TRIPOD+AI 18 / CLAIM 41", "Code, software versions, reproducibility", "Provenance footer (git commit, versions, seed, run.json)"),
    ("Statistical review", "Every headline number re-derived by independent code", "Section 6 (reviewer's cross-check: Table 1 p, Table 3 cells, AUC CIs, DeLong)"),
]


def checklist() -> pd.DataFrame:
    """TRIPOD+AI / CLAIM items mapped to the report's sections."""
    return pd.DataFrame(CHECKLIST, columns=["item", "what a reviewer checks", "where in this report"])
