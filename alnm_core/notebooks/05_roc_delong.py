# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
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

# %%
t3 = res.table3
view = evaluation.format_table3(t3)
for src in t3.threshold_from.unique():
    display(Markdown(f"**Table 3 — threshold: {src}** (test set, n = {len(test)}, {int(test.label.sum())} ALNM)"))
    display(view[t3.threshold_from == src].drop(columns="Threshold" if src.startswith("fixed") else [])
            .style.format(precision=3).hide(axis="index"))
display(Markdown("The paper's Table 3, for comparison: T2WI AUC 0.908 (0.792–0.971), DWI 0.702 "
                 "(0.556–0.823), DCE-MRI 0.572 (0.424–0.711), multiparametric 0.913 (0.799–0.974)."))

# %% [markdown]
# ## ROC curves (the paper's Figure 5)

# %%
curves = {}
for col in list(cfg.sequences) + [steps.HEADLINE, "clinical"]:
    c = S.roc_curve(test.label, test[col])
    curves[names[col]] = (c.fpr[::-1], c.sensitivity[::-1], S.auc(test.label, test[col]))
display(plots.roc_figure(curves, "Test set"))

# %% [markdown]
# ## DeLong tests
#
# As the paper, the multiparametric model is compared with each base model (paired DeLong test,
# Sun & Xu algorithm; identical to pROC's `roc.test`). Because several comparisons are made, Holm
# adjusted p-values are shown beside the raw ones; the paper reported raw p-values. All pairs are
# saved to `artifacts/delong.csv`.

# %%
versus = res.delong_fusion
display(versus.assign(model_a=versus.model_a.map(names), model_b=versus.model_b.map(names)).round(4)
        .style.format(precision=3).hide(axis="index"))
print(f"saved {ctx.paths.delong.relative_to(ctx.run_dir)} ({len(res.delong)} pairs) and "
      f"{ctx.paths.table3.relative_to(ctx.run_dir)}")

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
shown = [names[steps.HEADLINE], cfg.sequences[0], names["clinical"]]
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
# field strength (exact CIs) and pROC's unpaired DeLong test between the two subgroups. The
# subgroups are small: read these as a check for a gross failure on one scanner, not as evidence
# of equivalence.

# %%
display(res.subgroups.style.format(precision=3).hide(axis="index"))

# %% tags=["remove-from-report"]
if interactive:
    from alnm_core.report.widgets import threshold_explorer
    threshold_explorer({names[c]: test[["label"]].assign(prob=test[c]) for c in names})

# %% [markdown]
# ## Reviewer checklist
#
# Where this report answers the items of TRIPOD+AI (prediction models) and CLAIM (AI in medical
# imaging) that a reviewer checks first.

# %%
display(methods.checklist().style.format(precision=3).hide(axis="index"))
