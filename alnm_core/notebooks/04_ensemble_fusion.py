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
# # 4 · Fusing the sequences
#
# The paper combines its three base models by weighted voting (its eq. 2–3): each model's weight
# comes from its accuracy, the weighted sum of the models' ALNM probabilities is
# H(x) = Σ wᵢ hᵢ(x), and a patient is called ALNM when H(x) reaches half the sum of the weights.
#
# **Which reading of eq. 2.** As printed, eq. 2 sets every weight to the *mean* accuracy
# (Σ ACCᵢ / 3), which would make all weights equal and the "weighted" vote a plain average. The
# text says each weight is computed from that model's accuracy, so this suite uses wᵢ = ACCᵢ. The
# decision "H(x) ≥ Σwᵢ / 2" is then the same as "weighted mean probability ≥ 0.5", and the
# weighted mean is the fused score used for ROC curves.
#
# **Whose accuracies.** The paper measured the accuracies on the test set, so the test labels
# helped build the model they then judged. Here `ensemble.weights_from` decides: `validation`
# (the default) takes them on the development predictions, `test` reproduces the paper. The
# headline vote uses the configured weights; the variant with the other weights is computed
# beside it and labelled (optimistic when it uses the test set). The members are the models
# `ensemble.members` names (by default each sequence's slice-vote CNN).
#
# Shown beside it: an equal-weight soft vote, a majority hard vote, and logistic stacking fitted on
# the development predictions.

# %% tags=["remove-from-report"]
# %matplotlib inline
from IPython.display import display

from alnm_core import notebook as nbk
from alnm_core.report import escape as esc
from alnm_core.report import views
from alnm_core.run.steps_eval import fit_split

# %% tags=["parameters", "remove-from-report"]
run_dir: str = "reports/notebook-smoke"  # run folder (relative to the repository, or absolute); made on the phantom if absent
profile: str = "smoke"  # profile used only when run_dir has no run.json yet (smoke, demo, paper)

# %% tags=["remove-from-report"]
ctx = nbk.start(run_dir=run_dir, profile=profile)
res = ctx.load("fuse")  # artifacts/predictions/ensemble.csv and ensemble_weights.csv (step fuse)
models, cfg = ctx.models, ctx.cfg
fit_value, fit_name = fit_split(cfg)
labels = models.labels()

# %%
if len(res.members) == 1:
    display(esc.md("**One model ({m}): nothing to fuse.** The headline model is that model; the "
                   "sections below show its weight only.", m=labels[res.members[0]]))
display(esc.md("## Weights"))
display(esc.md("Accuracy of each member at the {t:g} threshold on the {fit} and test predictions, and "
               "the weights they give (normalised to sum to 1; scaling does not change the decision). "
               "The headline vote uses the **{used}** weights (ensemble.weights_from={wf}).",
               t=cfg.stats.threshold, fit=fit_name, wf=cfg.ensemble.weights_from,
               used="test (paper-literal, optimistic)" if cfg.ensemble.weights_from == "test" else fit_name))
display(esc.table(res.weights.assign(model=res.weights.model.map(labels))))
display(esc.md(views.chance_members_md(res.weights, labels, cfg.ensemble.weight_rule)))
display(esc.md("{n} patients have a prediction from every member and are fused.", n=len(res.ensemble)))

# %% [markdown]
# ## A worked example
#
# The headline weighted vote for the first test patients, step by step: each model's probability
# hᵢ, the weighted sum H(x), the threshold Σwᵢ / 2 and the decision.

# %%
if len(res.members) > 1:
    display(esc.table(views.worked_example(res.ensemble, res.weights, res.members, cfg.ensemble.weights_from, labels)))

# %% [markdown]
# ## Fused scores by method
#
# Patient-level AUC of every method on the development and test predictions (CIs and DeLong tests
# are in step 5).

# %%
columns = [m.model_id for m in models if m.model_id in res.ensemble.columns and m.shown]
display(esc.table(views.auc_by_method(res.ensemble, columns, labels, (fit_value, fit_name))))
