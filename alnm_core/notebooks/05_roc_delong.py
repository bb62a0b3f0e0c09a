# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (alnm)
#     language: python
#     name: alnm
# ---

# %% [markdown]
# # 5 · Evaluation: Table 3, ROC curves, DeLong tests and beyond
#
# Everything here is computed on the **test** patients, with models and thresholds frozen before
# the test labels are read, except the paper-literal fusion (flagged).

# %% tags=["remove-from-report"]
# %matplotlib inline
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from alnm_core import evaluation
from alnm_core import notebook as nbk
from alnm_core import stats as S
from alnm_core.phantom import designed_effects, phantom_settings
from alnm_core.report import methods, plots
from alnm_core.run import steps

_before = set(globals())

# %% tags=["parameters", "remove-from-report"]
run_dir = "../reports/notebook-smoke"  # str: run folder made by `alnm run`; created on the phantom if absent
profile = "smoke"  # str: profile used only when run_dir has no run.json yet (smoke, demo, paper)
interactive = False  # bool: show a threshold slider (JupyterLab only; reports stay static)

# %% tags=["remove-from-report"]
ctx = nbk.start(globals(), _before, {"run_dir": str, "profile": str, "interactive": bool})
cfg = ctx.cfg
res = ctx.run(steps.evaluate)  # computes what is missing (a pipeline run has it all)
names, preds = res.names, res.predictions
test = preds[preds.split == "test"]

# %% [markdown]
# ## How the numbers were obtained

# %%
display(Markdown(methods.methods_paragraph(cfg, ctx.info, n_test=len(test), n_test_pos=int(test.label.sum()))))

# %% [markdown]
# ## Table 3
#
# One row per model, first at the paper's fixed threshold of 0.5, then at the threshold that
# maximises Youden's J on the development predictions, frozen and applied to the test patients.
# The AUC's headline CI is the DeLong CI (as pROC; `stats.auc_ci=bootstrap` for the bootstrap);
# the exact binomial CI that MedCalc and the paper print is shown beside it for comparison: it
# treats AUC × N as a binomial count, ignores how many patients have ALNM, and covers less than
# 95% on unbalanced cohorts (simulated: 0.74 with 10 ALNM / 90 non-ALNM; DeLong 0.89).

# %%
t3 = res.table3
view = evaluation.format_table3(t3)
for src in t3.threshold_from.unique():
    display(Markdown(f"**Table 3 — threshold: {src}** (test set, n = {len(test)}, {int(test.label.sum())} ALNM)"))
    display(view[t3.threshold_from == src].drop(columns="Threshold" if src.startswith("fixed") else [])
            .style.format(precision=3).hide(axis="index"))
methods_used = "; ".join(sorted({f"{k.upper()}: {m}" for k in ("ppv", "npv")
                                 for m in t3[f"{k}_method"].unique()}))
display(Markdown(f"CIs: ACC, SEN, SPE Clopper–Pearson; {methods_used}; AUC: {t3.auc_ci_method.iloc[0]}."))
display(Markdown("The paper's Table 3, for comparison (exact binomial CIs): T2WI AUC 0.908 "
                 "(0.792–0.971), DWI 0.702 (0.556–0.823), DCE-MRI 0.572 (0.424–0.711), "
                 "multiparametric 0.913 (0.799–0.974)."))
phantom = phantom_settings(ctx.cohort_dir)
if phantom is not None:
    eff = designed_effects(phantom)
    display(Markdown(
        "**This cohort is the synthetic phantom.** The label's designed effect, in SDs of what it "
        "moves, is " + ", ".join(f"{s} {eff[s]:.1f}" for s in sorted(eff, key=eff.get, reverse=True)
                                 if s in cfg.sequences)
        + " (DWI: tumour ADC; T2WI: oedema thickness; DCE: rim enhancement). The ordering of the "
        "AUCs above also reflects resolution, crop content and tuning, and says nothing about "
        "real patients."))

# %% [markdown]
# ## Development vs test
#
# With k-fold cross-validation, every development patient has an out-of-fold prediction, so the
# development set gives a second estimate of each model's AUC beside the test set's, and the
# fold models show how much a model depends on which patients it was trained on.

# %%
if res.cv_summary is not None:
    cv = res.cv_summary
    view_cv = cv.assign(**{
        "AUC out-of-fold (95% CI)": [f"{a:.3f} ({lo:.3f}-{hi:.3f})" for a, lo, hi in zip(cv.auc_oof, cv.auc_oof_low, cv.auc_oof_high)],
        "AUC test (95% CI)": [f"{a:.3f} ({lo:.3f}-{hi:.3f})" for a, lo, hi in zip(cv.auc_test, cv.auc_test_low, cv.auc_test_high)],
        "fold AUC mean ± SD (n)": [f"{m:.3f} ± {sd:.3f} ({n})" if n > 1 else "—" for m, sd, n in zip(cv.fold_auc_mean, cv.fold_auc_sd, cv.fold_n)],
        "fold models' test AUC mean ± SD": [f"{m:.3f} ± {sd:.3f}" if n > 1 else "—" for m, sd, n in zip(cv.unit_test_auc_mean, cv.unit_test_auc_sd, cv.unit_test_n)]})
    display(view_cv[["model", "AUC out-of-fold (95% CI)", "AUC test (95% CI)", "fold AUC mean ± SD (n)",
                     "fold models' test AUC mean ± SD"]].style.hide(axis="index"))
else:
    display(Markdown("Hold-out design (`split.scheme=holdout`): the validation patients chose the "
                     "checkpoints and thresholds; `split.scheme=kfold` gives an out-of-fold estimate."))

# %% [markdown]
# ## ROC curves (the paper's Figure 5)

# %%
curves = {}
for col in steps.base_models(cfg) + [steps.HEADLINE, "clinical"]:
    c = S.roc_curve(test.label, test[col])
    curves[names[col]] = (c.fpr[::-1], c.sensitivity[::-1], S.auc(test.label, test[col]))
display(plots.roc_figure(curves, "Test set"))

# %% [markdown]
# The same test predictions as points: each model's predicted probability for the patients with
# and without ALNM, with the threshold frozen on the development predictions (Youden) dashed.
# Overlap between the two boxes is what an AUC below 1 looks like.

# %%
_frozen = t3[~t3.threshold_from.str.startswith("fixed")].set_index("model").threshold.to_dict()
display(plots.probabilities_by_class(test, {c: names[c] for c in steps.base_models(cfg) + [steps.HEADLINE, "clinical"]
                                            if c in test.columns},
                                     thresholds=_frozen))

# %% [markdown]
# ## DeLong tests
#
# As the paper, the multiparametric model is compared with each base model (paired DeLong test,
# Sun & Xu algorithm; identical to pROC's `roc.test`), and with the clinical baseline. Because
# several comparisons are made, adjusted p-values stand beside the raw ones (the paper reported
# raw p-values): Holm's (family-wise error) and Benjamini–Hochberg's (false discovery rate). The
# family of this table is the comparisons it shows; `artifacts/delong.csv` holds every pair of
# models, adjusted over the family of all pairs (shown below).

# %%
versus = res.delong_fusion
display(Markdown(f"**Family: {names[steps.HEADLINE]} against each of {len(versus)} models** (test set)"))
display(versus.drop(columns="family").assign(model_a=versus.model_a.map(names), model_b=versus.model_b.map(names))
        .style.format(precision=3).hide(axis="index"))
allp = res.delong
display(Markdown(f"**Family: every pair of the {len(names)} models** ({len(allp)} tests, `delong.csv`); "
                 f"pairs with raw p < {cfg.stats.alpha:g}:"))
display(allp[allp.p_value < cfg.stats.alpha].assign(model_a=lambda d: d.model_a.map(names),
                                                    model_b=lambda d: d.model_b.map(names))
        [["model_a", "model_b", "auc_a", "auc_b", "z", "p_value", "p_holm", "p_bh"]]
        .style.format(precision=3).hide(axis="index"))

# %% [markdown]
# ## Radiomics baseline
#
# Does the CNN beat a radiomics model on the same patients? Hand-crafted IBSI-oriented features
# (pyradiomics: shape, first order, texture; 3D on the tumour mask) were computed from the same
# image and mask the CNN crops come from, and fed to penalised logistic models fitted inside the
# development set exactly as the CNNs were (out-of-fold predictions for thresholds, the fold
# models' mean for the test set): one per sequence, one on every sequence together, and a
# clinical-radiomics model adding age, tumour size, margin and TIC type to the all-sequence
# model's rad-score. The settings are in the methods paragraph above.

# %%
rad = res.radiomics
if rad is None:
    display(Markdown("Not computed in this run (`radiomics.enabled=false`; on in the `demo` and "
                     "`paper` profiles)."))
else:
    rad_cols = steps.radiomics_models(cfg)
    feat_info = pd.DataFrame([{"sequence": s_, "patients": len(f), "features": f.shape[1] - 1,
                               "s / patient (1 process)": rad.seconds_per_patient.get(s_, np.nan),
                               "not computed (imputed)": sum(e["sequence"] == s_ for e in rad.exclusions)}
                              for s_, f in rad.features.items()])
    display(Markdown("**Features per sequence**"))
    display(feat_info.style.format(precision=3).hide(axis="index"))
    if rad.exclusions:
        display(Markdown("Patients whose features could not be computed (their features are "
                         "imputed by each model's training medians; they keep their CNN and "
                         "clinical predictions):"))
        display(pd.DataFrame(rad.exclusions)[["patient_id", "sequence", "reason"]].style.hide(axis="index"))
    display(Markdown(f"**Table 3 rows of the baselines** (test set; the full Table 3 above holds them too)"))
    display(view[t3.model.isin([names[c] for c in rad_cols + ["clinical", steps.HEADLINE]])]
            .style.format(precision=3).hide(axis="index"))

# %% [markdown]
# ### Selected features and coefficients
#
# Each model refitted on every development patient (never a test patient) for display: the
# non-zero coefficients per standard deviation of the feature, and in brackets how many of the
# fold models (those that made the predictions) selected the same feature.

# %%
if rad is not None:
    coefs = rad.coefficients
    summary = (coefs[coefs.term == "(intercept)"].assign(model=lambda d: d.model.map(names))
               [["model", "n_features", "n_after_filter", "C", "l1_ratio"]]
               .assign(selected=[int(((coefs.model == m) & (coefs.term != "(intercept)")).sum())
                                 for m in coefs.model[coefs.term == "(intercept)"]])
               .rename(columns={"n_features": "features", "n_after_filter": "after the robustness filter",
                                "selected": "non-zero coefficients"}))
    display(summary.style.format(precision=3, na_rep="—").hide(axis="index"))
    display(plots.coefficient_figure(coefs[coefs.model == steps.radiomics_headline(cfg)],
                                     names[steps.radiomics_headline(cfg)]))

# %% [markdown]
# ### Nomogram of the clinical-radiomics model
#
# Points for each predictor over its range in the development set; the total points read off as
# the predicted probability of ALNM (the logistic model refitted on every development patient).

# %%
if rad is not None:
    from alnm_core.radiomics_models import nomogram_points

    pts = nomogram_points(rad.coefficients)
    cr = rad.coefficients[rad.coefficients.model == "clinical_radiomics"]
    display(cr[["term", "coef", "mean", "sd", "dev_min", "dev_max"]]
            .rename(columns={"coef": "coefficient per SD"}).style.format(precision=3, na_rep="—").hide(axis="index"))
    display(plots.nomogram_figure(pts))

# %% [markdown]
# ### ROC curves: CNNs beside the radiomics models, and DeLong tests
#
# The comparisons below form their own family (`delong_radiomics.csv`): the CNN fusion against
# the radiomics and clinical-radiomics models, the clinical-radiomics model against radiomics
# alone and against the clinical baseline, and each sequence's CNN against its radiomics model;
# Holm- and Benjamini–Hochberg-adjusted p-values stand beside the raw ones, as above.

# %%
if rad is not None:
    def _curve(col):
        c = S.roc_curve(test.label, test[col])
        return c.fpr[::-1], c.sensitivity[::-1], S.auc(test.label, test[col])

    panels = {"Multiparametric": {names[c]: _curve(c) for c in
                                  [steps.HEADLINE, steps.radiomics_headline(cfg), "clinical_radiomics", "clinical"]}}
    if len(cfg.sequences) > 1:
        panels.update({s_: {f"CNN {s_}": _curve(s_), f"radiomics {s_}": _curve(f"radiomics_{s_}")}
                       for s_ in cfg.sequences})
    display(plots.roc_panels(panels))
    dr = res.delong_radiomics
    display(Markdown(f"**Family: {dr.family.iloc[0]}** ({len(dr)} tests, test set)"))
    display(dr.drop(columns="family").assign(model_a=dr.model_a.map(names), model_b=dr.model_b.map(names))
            .style.format(precision=3).hide(axis="index"))

# %% [markdown]
# ## Calibration
#
# A model can rank patients well (high AUC) and still give probabilities that are too high or too
# low. Reliability plot (test patients in quantile bins, with exact 95% CIs), Brier score, and the
# calibration intercept (ideal 0) and slope (ideal 1) from logistic recalibration.

# %%
cal = res.calibration
display(cal[["model", "brier", "intercept", "slope", "note"]].rename(columns={"brier": "Brier"})
        .style.format(precision=3, na_rep="—").hide(axis="index"))
shown = [names[c] for c in [steps.HEADLINE] + steps.base_models(cfg)[:1] + ["clinical"]]
rel = {m: g for m, g in res.reliability.groupby("model", sort=False) if m in shown}
display(plots.reliability_figure(rel))

# %% [markdown]
# ## Decision curve
#
# Net benefit of acting on each model's prediction at each threshold probability, against treating
# every patient as node-positive (treat all) or none (treat none).

# %%
display(plots.decision_curve_figure({m: g for m, g in res.decision_curve.groupby("model", sort=False)}))

# %% [markdown]
# ## Subgroups by field strength
#
# The paper pooled a 1.5T and a 3T scanner and named this as a limitation. Test AUCs within each
# field strength with the headline CI (the exact binomial CI beside it for comparison) and pROC's
# unpaired DeLong test between the two subgroups. The subgroups are small: read these as a check
# for a gross failure on one scanner, not as evidence of equivalence.

# %%
sub = res.subgroups.copy()
sub["AUC (95% CI)"] = [f"{a:.3f} ({lo:.3f}-{hi:.3f})" if np.isfinite(lo) else (f"{a:.3f}" if np.isfinite(a) else "—")
                       for a, lo, hi in zip(sub.auc, sub.ci_low, sub.ci_high)]
sub["exact CI (MedCalc)"] = [f"{lo:.3f}-{hi:.3f}" if np.isfinite(lo) else "—"
                             for lo, hi in zip(sub.exact_low, sub.exact_high)]
display(sub[["model", "subgroup", "n", "n_pos", "AUC (95% CI)", "exact CI (MedCalc)", "unpaired_p", "note"]]
        .style.format(precision=3, na_rep="").hide(axis="index"))

# %% tags=["remove-from-report"]
if interactive:
    from alnm_core.report.widgets import threshold_explorer
    youden = t3[~t3.threshold_from.str.startswith("fixed")].set_index("model").threshold
    order = [steps.HEADLINE] + [c for c in names if c != steps.HEADLINE]  # the headline first
    threshold_explorer({names[c]: test[["label"]].assign(prob=test[c]) for c in order},
                       frozen={n: float(youden[n]) for n in names.values() if n in youden.index})

# %% [markdown]
# ## Reviewer checklist
#
# Where this report answers the items of TRIPOD+AI (prediction models) and CLAIM (AI in medical
# imaging) that a reviewer checks first.

# %%
display(methods.checklist().style.format(precision=3).hide(axis="index"))
