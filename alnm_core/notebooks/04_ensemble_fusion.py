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
# beside it and labelled (optimistic when it uses the test set).
#
# Shown beside it: an equal-weight soft vote, a majority hard vote, and logistic stacking fitted on
# the development predictions.

# %% tags=["remove-from-report"]
# %matplotlib inline
import pandas as pd
from IPython.display import Markdown, display

from alnm_core import ensemble
from alnm_core import notebook as nbk
from alnm_core.run import steps
from alnm_core.stats import auc

_before = set(globals())

# %% tags=["parameters", "remove-from-report"]
run_dir = "../reports/notebook-smoke"  # str: run folder made by `alnm run`; created on the phantom if absent
profile = "smoke"  # str: profile used only when run_dir has no run.json yet (smoke, demo, paper)

# %% tags=["remove-from-report"]
ctx = nbk.start(globals(), _before, {"run_dir": str, "profile": str})
cfg = ctx.cfg
res = ctx.run(steps.fuse)  # trains and fuses what is missing (a pipeline run has it all)
fused, weights = res.ensemble, res.weights
fit_value, fit_name = steps.fit_split(cfg)
names = steps.model_names(cfg)
multi = len(cfg.sequences) > 1

# %%
if not multi:
    display(Markdown(f"**One sequence ({cfg.sequences[0]}): nothing to fuse.** The headline model is "
                     f"{cfg.sequences[0]}'s own; the sections below are left out."))
display(Markdown("## Weights"))
display(Markdown(
    f"Accuracy of each base model at the {cfg.stats.threshold:g} threshold on the {fit_name} and test "
    f"predictions, and the weights they give (shown normalised to sum to 1; the decision is unchanged "
    f"by scaling). The headline vote uses the **{'test (paper-literal, optimistic)' if cfg.ensemble.weights_from == 'test' else fit_name}** "
    f"weights (`ensemble.weights_from={cfg.ensemble.weights_from}`)."))
display(weights.round(3).style.format(precision=3).hide(axis="index"))
n_fused = len(fused)
display(Markdown(f"{n_fused} patients have a prediction from every model and are fused."))

# %% [markdown]
# ## A worked example
#
# The headline weighted vote for the first test patients, step by step: each model's probability
# hᵢ, the weighted sum H(x), the threshold Σwᵢ / 2 and the decision.

# %%
if multi:
    used = "acc_validation" if cfg.ensemble.weights_from == "validation" else "acc_test"
    w = weights.set_index("model")[used].to_dict()
    test = fused[fused.split == "test"].head(6)
    vote = ensemble.weighted_vote(test[list(cfg.sequences)], w)
    example = test[["patient_id", "label", *cfg.sequences]].assign(
        **{"H(x)": vote.H.round(3), "Σw/2": round(vote.threshold, 3), "decision": vote.decision})
    display(example.round(3).style.format(precision=3).hide(axis="index"))

# %% [markdown]
# ## Fused scores by method
#
# Patient-level AUC of every method on the development and test predictions (CIs and DeLong tests
# are in step 5).

# %%
rows = []
for c in steps.base_models(cfg) + [k for k in names if k in fused.columns and k not in cfg.sequences]:
    rows.append({"model": names.get(c, c),
                 **{f"AUC {s}": round(auc(fused[fused.split == v].label, fused[fused.split == v][c]), 3)
                    for s, v in ((fit_name, fit_value), ("test", "test"))}})
display(pd.DataFrame(rows).style.format(precision=3).hide(axis="index"))
print(f"saved {ctx.paths.predictions('ensemble').relative_to(ctx.run_dir)} and "
      f"{ctx.paths.ensemble_weights.relative_to(ctx.run_dir)}")
