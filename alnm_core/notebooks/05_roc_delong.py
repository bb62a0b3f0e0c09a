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
# the test labels are read, except the paper-literal fusion (flagged). Every number is in an
# artifact of the step `evaluate` (`artifacts/table3.csv`, `delong*.csv`, `calibration.csv`, ...),
# each row with the `model_id` of its model.

# %% tags=["remove-from-report"]
# %matplotlib inline
from IPython.display import display

from alnm_core import evaluation
from alnm_core import notebook as nbk
from alnm_core.report import escape as esc
from alnm_core.report import methods, plots, views
from alnm_core.run.steps_eval import main_models

# %% tags=["parameters", "remove-from-report"]
run_dir: str = "reports/notebook-smoke"  # run folder (relative to the repository, or absolute); made on the phantom if absent
profile: str = "smoke"  # profile used only when run_dir has no run.json yet (smoke, demo, paper)
interactive: bool = False  # show a threshold slider (JupyterLab only; reports stay static)

# %% tags=["remove-from-report"]
ctx = nbk.start(run_dir=run_dir, profile=profile, interactive=interactive)
res = ctx.load("evaluate")
models, t3, test = res.models, res.table3, res.test
labels = models.labels()

# %% [markdown]
# ## How the numbers were obtained

# %%
display(esc.md(methods.methods_paragraph(ctx.cfg, ctx.info, n_test=len(test), n_test_pos=int(test.label.sum()))))

# %% [markdown]
# ## Table 3
#
# One row per model, first at the paper's fixed threshold of 0.5, then at the threshold that
# maximises Youden's J on the development predictions, frozen and applied to the test patients.
# The AUC's headline CI is named in the column; the exact binomial CI that MedCalc and the paper
# print is shown beside it for comparison: it treats AUC × N as a binomial count, ignores how
# many patients have ALNM, and covers less than 95% on unbalanced cohorts.

# %%
view = views.flagged_table3(evaluation.format_table3(t3), t3, res.flags)
for src in t3.threshold_from.unique():
    display(esc.table(view[t3.threshold_from == src], wide=True, caption=f"Table 3 — threshold: {src} "
                      f"(test set, n = {len(test)}, {int(test.label.sum())} ALNM)"))
display(esc.md(evaluation.table3_footnote(t3, test.label)))
display(esc.md("**Flags.** † chance-level: the model's AUC on the development predictions has a 95% CI "
               "reaching 0.5; ‡ one class: at that threshold it calls at least 95% of the test patients "
               "one class.\n\n" + (views.flags_md(res.flags) or "No model is flagged.")))
display(esc.md("The paper's Table 3, for comparison (exact binomial CIs): T2WI AUC 0.908 (0.792–0.971), "
               "DWI 0.702 (0.556–0.823), DCE-MRI 0.572 (0.424–0.711), multiparametric 0.913 (0.799–0.974)."))
display(*views.phantom_section(ctx.cohort_dir, ctx.cfg.sequences))

# %% [markdown]
# ## Development vs test
#
# With k-fold cross-validation, every development patient has an out-of-fold prediction, so the
# development set gives a second estimate of each model's AUC beside the test set's, and the
# fold models show how much a model depends on which patients it was trained on.

# %%
if res.cv_summary is not None:
    display(esc.table(views.cv_view(res.cv_summary), caption=views.cv_caption(ctx.cfg)))
else:
    display(esc.md("Hold-out design (split.scheme=holdout): the validation patients chose the checkpoints "
                   "and thresholds; split.scheme=kfold gives an out-of-fold estimate."))

# %% [markdown]
# ## ROC curves (the paper's Figure 5)
#
# Then the same test predictions as points: each model's predicted probability for the patients
# with and without ALNM, with the threshold frozen on the development predictions (Youden) dashed.

# %%
main = models.labels([m for m in main_models(models) if models[m].kind != "radiomics"])
display(plots.roc_figure(views.roc_curves(test, main), "Test set"))
display(plots.probabilities_by_class(test, main, thresholds=views.frozen_thresholds(t3)))

# %% [markdown]
# ## DeLong tests
#
# As the paper, the multiparametric model is compared with each base model (paired DeLong test,
# Sun & Xu algorithm; identical to pROC's `roc.test`), and with the clinical baseline. The
# comparisons the study is about are declared before the run as the **primary family**
# (`stats.primary_comparisons`; by default the headline model against each model it fuses and
# against the clinical and radiomics baselines) and adjusted as one family: Holm's (family-wise
# error) and Benjamini–Hochberg's (false discovery rate) p-values stand beside the raw ones (the
# paper reported raw p-values). Every other pair is **exploratory**, adjusted within its own
# family only, and each pair belongs to exactly one family, so one comparison has one adjusted
# p-value everywhere. A model fitted on the test set (the paper-literal test weights) is in no
# family. `artifacts/delong.csv` holds every pair with its family.

# %%
display(*views.delong_section(res, ctx.cfg))

# %% [markdown]
# ## Radiomics baseline
#
# Does the CNN beat a radiomics model on the same patients? Hand-crafted IBSI-oriented features
# (pyradiomics: shape, first order, texture; 3D on the tumour mask) were computed from the same
# image and mask the CNN crops come from, and fed to penalised logistic models fitted inside the
# development set exactly as the CNNs were: one per sequence, one on every sequence together, and
# a clinical-radiomics model adding age, tumour size, margin and TIC type to the all-sequence
# model's rad-score. Each model is refitted on every development patient (never a test patient)
# for its coefficients (per SD of the feature) and the nomogram. The DeLong comparisons below
# form their own exploratory family (the fusion against these baselines is in the primary family).

# %%
display(*views.radiomics_section(res, ctx.cfg))

# %% [markdown]
# ## Calibration, decision curve, subgroups
#
# A model can rank patients well (high AUC) and still give probabilities that are too high or too
# low: Brier score, calibration intercept (ideal 0) and slope (ideal 1), and a reliability plot
# (test patients in quantile bins, exact 95% CIs). The CNNs are trained with balanced class
# weights, so their probabilities are not meant as risks: with `stats.recalibration` (default
# `platt`) each model's probabilities are recalibrated by a map fitted on the development
# predictions only (validation or out-of-fold; never the test set), and the table and plot show
# calibration before and after. The decision curve shows the net benefit of acting on each
# model's (recalibrated) prediction against treating every patient as node-positive or none. The
# paper pooled a 1.5T and a 3T scanner: test AUCs within each field strength and pROC's unpaired
# DeLong test between them are a check for a gross failure on one scanner, not evidence of
# equivalence.

# %%
display(esc.table(views.calibration_view(res.calibration), caption="Calibration on the test set"))
display(plots.reliability_figure(views.reliability_curves(res)))
display(plots.decision_curve_figure(views.decision_curves(res)))
display(esc.table(views.subgroups_view(res.subgroups)))

# %% tags=["remove-from-report"]
if interactive:
    from alnm_core.report.widgets import threshold_explorer
    threshold_explorer(*views.explorer_inputs(test, t3, models))

# %% [markdown]
# ## Reviewer checklist
#
# Where this report answers the items of TRIPOD+AI (prediction models) and CLAIM (AI in medical
# imaging) that a reviewer checks first.

# %%
display(esc.md(views.checklist_md(methods.checklist())))
display(esc.table(res.epv, caption="Events per candidate predictor (development set)"))
