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
# # 7 · External validation
#
# A study trained elsewhere (its model bundle) applied, frozen, to another cohort: the same ROI
# settings and crops, the same fold models, the same ensemble weights and the same thresholds.
# Nothing is refit on these patients, so every number below estimates how the study transports
# to them: a new scanner, site or period. `alnm evaluate --model RUN/model --cohort OTHER`
# writes this report.

# %% tags=["remove-from-report"]
# %matplotlib inline
import pandas as pd
from IPython.display import display

from alnm_core import evaluation
from alnm_core import notebook as nbk
from alnm_core.report import escape as esc
from alnm_core.report import plots, views

# %% tags=["parameters", "remove-from-report"]
run_dir: str = "reports/external"  # run folder made by `alnm evaluate` (relative to the repository, or absolute)

# %% tags=["remove-from-report"]
ctx = nbk.start(run_dir=run_dir)
res = ctx.load("evaluate_external")  # artifacts of the step evaluate_external
preds, names, b = res.predictions, res.names, res.bundle
scored = preds.dropna(subset=["weighted_vote"])

# %% [markdown]
# ## The model and the cohort
#
# The model's description comes from its bundle (`bundle.json`): it is shown as text, never as
# markup.

# %%
tc = b["training_cohort"]
about = pd.DataFrame([
    ("model", f"run {b['run']} (alnm {b['alnm_version']}), sequences {', '.join(b['sequences'])}, "
              f"{sum(len(m['units']) for m in b['models'].values())} network(s)"),
    ("fusion weights", ", ".join(f"{names.get(m, m)} {w:.3f}" for m, w in b["ensemble"]["weights"].items())),
    ("trained on", f"{tc['n_patients']} patients ({tc['prevalence']:.0%} ALNM); field strength "
                   + ", ".join(f"{k}: {v}" for k, v in tc["field_strength"].items())),
    ("training seed", f"{b['config']['seed']} (of the training run; it plays no part in scoring)"),
    ("this cohort", f"{len(preds)} patients, {int(preds.label.sum())} with ALNM ({preds.label.mean():.0%}); "
                    f"scored: {len(scored)}"),
], columns=["", "value"])
display(esc.table(about))
partial = preds[preds.note.fillna("") != ""]
if len(partial):
    display(esc.md("**{n} patient(s) lack a sequence** and were scored from those present, with the "
                   "weights renormalised:", n=len(partial)))
    display(esc.table(partial[["patient_id", "sequences_used", "note"]]))

# %% [markdown]
# ## Table 3 on this cohort
#
# At the frozen operating threshold and at the Youden threshold frozen on the development
# predictions of the training run.

# %%
t3 = res.table3
view = evaluation.format_table3(t3)
for src in t3.threshold_from.unique():
    display(esc.table(view[t3.threshold_from == src], wide=True, caption=f"Threshold: {src}"))
display(esc.md(evaluation.table3_footnote(t3, scored.label)))  # the headline model's patients

# %% [markdown]
# ## ROC curves

# %%
display(plots.roc_figure(views.roc_curves(scored, names), "External cohort"))

# %% [markdown]
# ## Against the internal test set
#
# pROC's unpaired DeLong test of each model's AUC here against its AUC on the training run's own
# test patients (different patients: a t statistic with Welch–Satterthwaite degrees of freedom).
# A drop is the first sign that the study does not transport.

# %%
dl = res.delong_internal
display(esc.table(dl.drop(columns=["model_id"]).assign(p_value=[esc.fmt_p(p) for p in dl.p_value])))

# %% [markdown]
# ## Calibration and decision curve
#
# Probabilities from another site are often shifted even when the ranking holds: the
# calibration intercept (ideal 0) and slope (ideal 1) say by how much.

# %%
display(esc.table(views.calibration_view(res.calibration)))
display(plots.reliability_figure({m: g for m, g in res.reliability.groupby("model", sort=False)}))
display(plots.decision_curve_figure({m: g for m, g in res.decision_curve.groupby("model", sort=False)}))

# %% [markdown]
# ## Subgroups by field strength

# %%
if len(res.subgroups):
    display(esc.table(views.subgroups_view(res.subgroups)))
else:
    display(esc.md("The cohort has no field_strength column."))
