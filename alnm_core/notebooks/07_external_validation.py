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
import numpy as np
from IPython.display import Markdown, display

from alnm_core import evaluation
from alnm_core import notebook as nbk
from alnm_core import stats as S
from alnm_core.report import plots
from alnm_core.run import external

_before = set(globals())

# %% tags=["parameters", "remove-from-report"]
run_dir = "../reports/external"  # str: run folder made by `alnm evaluate`

# %% tags=["remove-from-report"]
ctx = nbk.start(globals(), _before, {"run_dir": str}, prepare_if_missing=False)
if "bundle" not in ctx.info:
    raise ValueError(f"{ctx.run_dir} is not an external validation: run `alnm evaluate` first")
res = ctx.run(external.evaluate_external)
preds, names = res.predictions, res.names
scored = preds.dropna(subset=["weighted_vote"])

# %% [markdown]
# ## The model and the cohort

# %%
b = res.bundle
tc = b["training_cohort"]
display(Markdown(
    f"- **Model**: run `{b['run']}` (alnm {b['alnm_version']}), sequences {', '.join(b['sequences'])}, "
    f"{sum(len(v) for v in b['units'].values())} network(s); weights "
    + ", ".join(f"{s} {w:.3f}" for s, w in b["ensemble"]["weights"].items())
    + f"\n- **Trained on** {tc['n_patients']} patients ({tc['prevalence']:.0%} ALNM; field strength "
    f"{tc['field_strength']})\n- **This cohort**: {len(preds)} patients, {int(preds.label.sum())} with ALNM "
    f"({preds.label.mean():.0%}); scored: {len(scored)}"))
partial = preds[preds.note.fillna("") != ""]
if len(partial):
    display(Markdown(f"**{len(partial)} patient(s) lack a sequence** and were scored from those present, "
                     "with the weights renormalised:"))
    display(partial[["patient_id", "sequences_used", "note"]].style.hide(axis="index"))

# %% [markdown]
# ## Table 3 on this cohort
#
# At the frozen operating threshold and at the Youden threshold frozen on the development
# predictions of the training run.

# %%
t3 = res.table3
view = evaluation.format_table3(t3)
for src in t3.threshold_from.unique():
    display(Markdown(f"**Threshold: {src}**"))
    display(view[t3.threshold_from == src].style.hide(axis="index"))

# %% [markdown]
# ## ROC curves

# %%
curves = {}
for col, name in names.items():
    d = scored.dropna(subset=[col])
    c = S.roc_curve(d.label, d[col])
    curves[name] = (c.fpr[::-1], c.sensitivity[::-1], S.auc(d.label, d[col]))
display(plots.roc_figure(curves, "External cohort"))

# %% [markdown]
# ## Against the internal test set
#
# pROC's unpaired DeLong test of each model's AUC here against its AUC on the training run's own
# test patients (different patients: a t statistic with Welch–Satterthwaite degrees of freedom).
# A drop is the first sign that the study does not transport.

# %%
display(res.delong_internal.style.format(precision=3, na_rep="").hide(axis="index"))

# %% [markdown]
# ## Calibration and decision curve
#
# Probabilities from another site are often shifted even when the ranking holds: the
# calibration intercept (ideal 0) and slope (ideal 1) say by how much.

# %%
display(res.calibration[["model", "brier", "intercept", "slope", "note"]]
        .style.format(precision=3, na_rep="—").hide(axis="index"))
display(plots.reliability_figure({m: g for m, g in res.reliability.groupby("model", sort=False)}))
display(plots.decision_curve_figure({m: g for m, g in res.decision_curve.groupby("model", sort=False)}))

# %% [markdown]
# ## Subgroups by field strength

# %%
if len(res.subgroups):
    sub = res.subgroups
    display(sub[["model", "subgroup", "n", "auc", "ci_low", "ci_high", "unpaired_p", "note"]]
            .style.format(precision=3, na_rep="").hide(axis="index"))
else:
    display(Markdown("The cohort has no `field_strength` column."))
print(f"cohort: {ctx.cohort_dir}; predictions: {ctx.paths.predictions('external').relative_to(ctx.run_dir)}")
