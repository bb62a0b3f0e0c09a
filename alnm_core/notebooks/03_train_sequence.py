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
# # 3 · A sequence's CNN
#
# This notebook shows the base model of one sequence (parameter `sequence`); the pipeline renders
# it once per sequence.
#
# **What the model sees.** Each input is one tumour crop from step 2: a grayscale patch in [0, 1],
# repeated to three channels so that ImageNet filters can be used when asked for. The label of
# every crop is its patient's label. After training, the slice probabilities of a patient are
# aggregated into one probability (`train.aggregation`), and it is the patient that is evaluated.
#
# **What the paper chose.** A ResNet50 per sequence, 224 x 224 crops, Adam with learning rate
# 5e-5, batch size 64, 300 epochs, and a softmax threshold of 0.5, found by trying batch sizes of
# 16, 32 and 64 and learning rates between 1e-3 and 1e-6. It does not say how the checkpoint was
# chosen, whether data were augmented or how the 78 / 124 class imbalance was handled; this run's
# answers are in the table below, and every one is a configuration key.
#
# **No peeking.** Every model chooses its checkpoint without the test patients. With k-fold
# cross-validation, one model per fold trains on the other folds and predicts its own fold: every
# development patient gets a prediction from a model that never saw it. The test patients are
# predicted once, after the models are frozen, by every fold model together (mean probability).

# %% tags=["remove-from-report"]
# %matplotlib inline
import pandas as pd
from IPython.display import display

from alnm_core import notebook as nbk
from alnm_core.report import escape as esc
from alnm_core.report import plots, views

# %% tags=["parameters", "remove-from-report"]
run_dir: str = "reports/notebook-smoke"  # run folder (relative to the repository, or absolute); made on the phantom if absent
profile: str = "smoke"  # profile used only when run_dir has no run.json yet (smoke, demo, paper)
sequence: str = "T2WI"  # which sequence to show (one of the run's sequences)

# %% tags=["remove-from-report"]
ctx = nbk.start(run_dir=run_dir, profile=profile, sequence=sequence)
models = ctx.cfg.train.models
result = ctx.load("train" if "slice_vote" in models else "train_mil", sequence)  # predictions/<model_id>*.csv
summary = ctx.load("describe_model" if "slice_vote" in models else "describe_mil", sequence)  # per-split, Grad-CAM
crops = ctx.load("roi", sequence).crops
device = result.units[0].info["device"]

# %% [markdown]
# ## Settings

# %%
display(esc.md("## {seq}: settings and crops", seq=sequence))
display(esc.table(views.training_settings(ctx.cfg, crops.crops.shape, device)))

# %% [markdown]
# ## Training
#
# One row per training unit (a network: with k-fold, one per fold and repeat). The training AUC is
# computed from the predictions made while training (with augmentation, weights changing within
# the epoch); the validation AUC from a separate pass in evaluation mode. Both are patient-level.

# %%
display(esc.table(views.units_table(result.units), precision=1))
display(plots.learning_curves_units({u.job.id: u.history for u in result.units}))

# %% [markdown]
# ## Patient-level results
#
# AUC with the DeLong 95% CI (as pROC) and, for comparison with the paper, the exact binomial CI
# (MedCalc); accuracy, sensitivity and specificity at the operating threshold with
# Clopper–Pearson CIs (`artifacts/per_split/slice_vote_<SEQ>.csv`). With k-fold, `dev` rows are the
# out-of-fold predictions (each development patient predicted by the fold model that did not see
# it, averaged over repeats).

# %%
display(esc.table(views.per_split_view(summary.per_split)))
if flags := views.flags_md(summary.flags):
    display(esc.md("**Flagged** (the report's Table 3 marks the same):\n\n" + flags))
if ctx.cfg.split.scheme == "kfold":
    display(esc.md("**Spread over the fold models**: each fold model's AUC on the fold it did not "
                   "see, and on the test set."))
    display(plots.fold_spread_figure(result.unit_patients, sequence))
for _, r in summary.per_split[summary.per_split.split != "train"].iterrows():
    display(plots.confusion_matrix_figure(int(r.tp), int(r.fp), int(r.fn), int(r.tn),
                                          f"{sequence} · {r.split} · threshold {r.threshold:g}"))

# %% [markdown]
# ## Where the model looks (Grad-CAM)
#
# Grad-CAM weighs the last residual stage's feature maps by the gradient of the ALNM score and
# shows where in the crop the evidence for ALNM lies (warm colours). One crop per test patient
# (its largest tumour slice), the raw crop beside its map: correctly classified patients first,
# then misclassified ones; the maps are those of the first training unit. With the phantom, a
# T2WI model that has learnt the intended signal looks at the oedema rim around the tumour.

# %%
g = summary.gradcam if "slice_vote" in models else {"table": pd.DataFrame({"correct": []})}
for correct, words in ((True, "Correctly"), (False, "Wrongly")):
    k = (g["table"].correct == correct).to_numpy()
    display(esc.md("**{w} classified** test patients{none}", w=words, none="" if k.any() else ": none"))
    if k.any():
        display(plots.heatmap_gallery(g["crops"][k], g["heatmaps"][k], views.gradcam_titles(g["table"][k]),
                                      ncols=max(int(k.sum()), 2)))

# %% [markdown]
# ## Attention MIL: the patient as a bag of slices
#
# With `train.models` including `attention_mil`, a second model sees all of a patient's tumour
# slices of this sequence at once: every crop goes through the same ResNet backbone, and a
# (gated) attention layer weighs the slices into one patient embedding and one probability
# (Ilse et al. 2018). Its weights say which slices the model looked at: below, for the test
# patients with the highest and lowest probability, each slice with its weight (the heaviest
# framed in red), the slices a radiologist would look at first. Every number is in
# `artifacts/mil_attention.csv` and `artifacts/per_split/attention_mil_<SEQ>.csv`.

# %%
if "attention_mil" in models:
    mil = ctx.load("describe_mil", sequence)
    display(esc.table(views.per_split_view(mil.per_split), caption="Attention MIL: patient-level results"))
    display(plots.attention_gallery(views.attention_rows(crops, mil.gradcam["attention"],
                                                         ctx.load("train_mil", sequence).patients)))
else:
    display(esc.md("Not trained in this run (train.models={m}).", m=", ".join(models)))

# %% [markdown]
# ## How the hyperparameters were chosen
#
# With `tune.enabled`, the learning rate, weight decay, batch size, epochs (and, for MIL, the
# pooling) were searched on inner folds of the development patients only (never a test patient;
# with `tune.nested` inside each outer fold, so the out-of-fold estimates stay honest; without it
# they are optimistic by the selection). Otherwise they are the profile's fixed settings above.

# %%
if ctx.cfg.tune.enabled:
    tune = ctx.load("tune")
    for m in [f"{k}_{sequence}" for k in models]:
        display(esc.table(views.tune_view(tune.best, m), caption=f"{m}: the chosen settings"))
        display(plots.tune_figure(tune.trials[tune.trials.model_id == m], m,
                                  lower_is_better=ctx.cfg.tune.metric == "val_loss"))
