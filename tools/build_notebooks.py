"""Source of the committed notebooks: `python tools/build_notebooks.py` rewrites notebooks/*.ipynb.

Notebooks are committed without outputs; tests/test_notebooks_source.py checks they match this
file, so the narrative and code are reviewed as plain Python here.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"

COMMON_IMPORTS = """%matplotlib inline
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown, display

from alnm_core import notebook as nbk
_before = set(globals())"""

PARAMS_COMMON = '''run_dir = "../reports/notebook-smoke"  # str: run folder made by `alnm run`; created on the phantom if absent
profile = "smoke"  # str: profile used only when run_dir has no run.json yet (smoke, demo, paper)'''


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, *tags: str):
    c = new_code_cell(text.strip("\n"))
    if tags:
        c.metadata["tags"] = list(tags)
    return c


def params(extra: str = ""):
    return code(PARAMS_COMMON + ("\n" + extra if extra else ""), "parameters", "remove-from-report")


NOTEBOOKS: dict[str, list] = {}

NOTEBOOKS["01_cohort_statistics.ipynb"] = [
    md("""
# 1 · The cohort and Table 1

This step describes who is in the study before any image is touched. It mirrors Table 1 of
Zhang et al. (2022): the clinical characteristics of all patients and of the test set, split
into the ALNM group (pN1a or worse) and the non-ALNM group (pN0), with a p-value for each
comparison. The paper's cohort had 252 women (98 ALNM, 154 non-ALNM) and a fixed test set of 50
(20 ALNM, 30 non-ALNM).

Reading guide: a characteristic that differs between the groups (in the paper, tumour size) is
a potential shortcut for an image model, since a larger tumour fills more of each crop.
"""),
    code(COMMON_IMPORTS, "remove-from-report"),
    params(),
    code("""
ctx = nbk.start(globals(), _before, {"run_dir": str, "profile": str})
cfg = ctx.cfg
print(f"run folder: {ctx.run_dir.name}  |  profile: {cfg.profile}  |  seed: {cfg.seed}")
""", "remove-from-report"),
    md("""
## Patients and the split

The split is made once per run, by patient, stratified by label: a test set that is never seen
during training or model selection, and a validation part carved from the remaining patients
for checkpoint choice and ensemble weights. A fixed `split` column in `cohort.csv` (as the
paper's 202 / 50 split) takes precedence when present.
"""),
    code("""
from alnm_core.cohort import load_cohort, describe_cohort
from alnm_core import plots

cohort = load_cohort(ctx.cohort_dir, cfg.sequences)
splits = pd.read_csv(ctx.paths.splits)
data = cohort.merge(splits[["patient_id", "split", "fold"]].rename(columns={"split": "part"}), on="patient_id")
flow = (splits.groupby(["split", "label"]).size().unstack(fill_value=0)
        .rename(columns={0: "non-ALNM", 1: "ALNM"}).reindex(["train", "val", "test"]))
flow["total"] = flow.sum(axis=1)
display(Markdown(f"**{len(cohort)} patients**, {int(cohort.alnm.sum())} with ALNM "
                 f"({100 * cohort.alnm.mean():.1f}%). Patients per split:"))
display(flow)
display(plots.patient_flow(splits))
display(Markdown("By field strength (the paper pooled a 1.5T and a 3T scanner):"))
display(describe_cohort(cohort))
"""),
    md("""
## Table 1

How each number is obtained (settings come from the run's configuration):

* continuous variables are shown as mean ± SD; normality is checked in each group with the
  Shapiro–Wilk test and with the Kolmogorov–Smirnov test with Lilliefors correction (the check
  the paper names); when both groups look normal, Student's t (equal variances by Levene's test)
  or Welch's t is used, otherwise the Mann–Whitney U test;
* categorical variables are shown as n (%); the Pearson chi-square test *without* continuity
  correction is used (SPSS's "Pearson Chi-Square" row), or Fisher's exact test when an expected
  count is below 5 (rule `stats.categorical_test`).

The test used is printed beside each p-value. The paper's test-set p-values for margin (0.387)
and TIC type (0.243) are those of Fisher's exact test; set `stats.categorical_test=fisher` to
use it throughout.
"""),
    code("""
from alnm_core.stats import build_table1

kw = dict(categorical_method=cfg.stats.categorical_test, continuous_method=cfg.stats.continuous_test,
          normality_test=cfg.stats.normality_test, alpha=cfg.stats.alpha)
t_all = build_table1(data, **kw)
t_test = build_table1(data[data.part == "test"], **kw)
table1 = pd.concat([t_all.assign(population="All patients"), t_test.assign(population="Test set")],
                   ignore_index=True)
table1.to_csv(ctx.paths.table1, index=False)

def show(t, caption):
    view = t[["characteristic", "level", "total", "group1", "group0", "p", "test"]].rename(columns={
        "characteristic": "Characteristic", "level": "", "total": "Total", "group1": "ALNM",
        "group0": "Non-ALNM", "p": "P", "test": "Test"})
    sty = (view.style.format(precision=3).hide(axis="index").set_caption(caption)
           .set_table_styles([{"selector": "caption", "props": "font-weight:bold;text-align:left"}]))
    display(HTML(sty.to_html()))

show(t_all, "Table 1a. All patients")
show(t_test, "Table 1b. Test set")
print(f"saved {ctx.paths.table1.relative_to(ctx.run_dir)}")
"""),
    md("""
### Normality checks

Shapiro–Wilk (SW) and Lilliefors-corrected Kolmogorov–Smirnov (K-S(L)) p-values per group; a
p-value below the significance level sends the comparison to the Mann–Whitney U test. The
Lilliefors p-value is read from tables that stop at 0.2 (SPSS prints ".200*" there).
"""),
    code("""
display(t_all.loc[t_all.normality != "", ["characteristic", "normality"]].style.format(precision=3).hide(axis="index"))
"""),
    md("""
## Distributions by group
"""),
    code("""
display(plots.distributions_by_group(data, [("age", "age (years)"), ("tumor_size_cm", "tumour size (cm)")]))
"""),
]

NOTEBOOKS["02_roi_cropping.ipynb"] = [
    md("""
# 2 · Tumour ROI crops

**What an ROI is here.** The model never sees the whole breast. For each sequence it sees small
square patches centred on the tumour, one per axial slice that contains tumour: the region of
interest (ROI). In the paper two radiologists outlined each tumour and the patches were cut in
MATLAB; here the cut is computed from the tumour mask that comes with each series.

**Why a margin.** The paper's patches include the tissue around the tumour, and its discussion
argues that peritumoral oedema on T2WI carries much of the signal. The margin is set in
millimetres (`roi.margin_mm`), not pixels, so that it covers the same tissue on the 1.5T and 3T
grids, whose pixels differ by a factor of two or more.

**Why per slice.** Every tumour slice becomes one training example, which multiplies a small
cohort's examples; slice predictions are averaged back to one probability per patient later,
so that a patient, not a slice, is what gets evaluated.

**Which image.** DWI: the configured b-value (default the highest, 800 at 1.5T and 1000 at 3T).
DCE: the phase of peak relative enhancement of the tumour's time-intensity curve, as the paper.
Each crop is min-max normalised to [0, 1] (the paper's eq. 1).
"""),
    code(COMMON_IMPORTS, "remove-from-report"),
    params("""interactive = False  # bool: show the ipywidgets slice viewer (JupyterLab only; reports stay static)
n_qc_patients = 3  # int: patients shown in the QC gallery"""),
    code("""
ctx = nbk.start(globals(), _before, {"run_dir": str, "profile": str, "interactive": bool, "n_qc_patients": int})
cfg = ctx.cfg
from alnm_core import plots, roi
from alnm_core.cohort import load_cohort
from alnm_core.runinfo import update_run_json

cohort = load_cohort(ctx.cohort_dir, cfg.sequences)
splits = pd.read_csv(ctx.paths.splits)
""", "remove-from-report"),
    md("""
## Extraction

Settings of this run (from `run.json`):
"""),
    code("""
r = cfg.roi
display(Markdown(
    f"- crop size **{r.size} x {r.size}** px, peritumoral margin **{r.margin_mm:g} mm**, "
    f"{'square box in mm (aspect kept)' if r.keep_aspect else 'box stretched to a square'}\\n"
    f"- slices: **{r.slices}**{f' (k={r.central_k})' if r.slices == 'central' else ''}, "
    f"minimum tumour area {r.min_area_mm2:g} mm²\\n"
    f"- DWI b-value: **{'highest in series' if r.dwi_b_value is None else r.dwi_b_value}**; "
    f"DCE phase: **{r.dce_phase}**; unusable patients: **{r.on_error}**"))
crops = roi.extract_run(cohort, ctx.cohort_dir, cfg.sequences, r, ctx.paths, progress=nbk.log)
exclusions = [e for c in crops.values() for e in c.exclusions]
warnings = [dict(patient_id=p, sequence=s, warning=w) for s, c in crops.items()
            for p, ws in zip(c.per_patient.patient_id, c.per_patient.warnings) if ws for w in ws.split("; ")]
update_run_json(ctx.run_dir, exclusions=exclusions, roi_warnings=warnings,
                roi_keys={s: c.key for s, c in crops.items()})
rows = []
for s, c in crops.items():
    n = c.per_patient.set_index("patient_id").n_crops
    part = splits.set_index("patient_id").split.reindex(n.index)
    rows.append(dict(sequence=s, patients=len(n), crops=int(n.sum()), per_patient_mean=round(n.mean(), 1),
                     per_patient_min=int(n.min()), per_patient_max=int(n.max()),
                     train=int(n[part == "train"].sum()), val=int(n[part == "val"].sum()),
                     test=int(n[part == "test"].sum()), crop_shape=str(c.crops.shape[1:]),
                     value_range=f"[{c.crops.min():.2f}, {c.crops.max():.2f}]"))
display(Markdown("Crops per sequence (saved to `artifacts/roi/<SEQ>.npz`):"))
display(pd.DataFrame(rows).set_index("sequence"))
"""),
    md("""
## Exclusions and warnings

A patient whose series cannot be cropped (unreadable file, empty mask, a b-value or phase that is
not in the series, a constant crop) stops the run by default; with `roi.on_error=exclude` it is
listed here and in `run.json` instead. Warnings flag masks that touch the edge of the volume.
"""),
    code("""
display(Markdown(f"**Excluded:** {len(exclusions)}" + ("" if exclusions else " (none)")))
if exclusions:
    display(pd.DataFrame(exclusions))
display(Markdown(f"**Warnings:** {len(warnings)}" + ("" if warnings else " (none)")))
if warnings:
    display(pd.DataFrame(warnings))
"""),
    md("""
## Quality control gallery

For a few patients of each group: the slice with the largest tumour area in each sequence, with
the mask outline (red) and the crop box after the margin (yellow), beside the crop the model sees.
The three series of one patient are on different grids, as in a real examination.
"""),
    code("""
qc_ids = (list(cohort[cohort.alnm == 1].patient_id[: (n_qc_patients + 1) // 2]) +
          list(cohort[cohort.alnm == 0].patient_id[: n_qc_patients // 2]))
for pid in qc_ids:
    row = cohort.set_index("patient_id").loc[pid].copy()
    row["patient_id"] = pid
    views = [roi.qc_views(row, ctx.cohort_dir, s, cfg.roi) for s in cfg.sequences]
    display(Markdown(f"**{pid}** — {'ALNM' if row.alnm else 'non-ALNM'}, {row.field_strength}, "
                     f"{row.tumor_size_cm} cm, {row.margin} margin"))
    display(plots.roi_qc_panel([v[0] for v in views], [v[1] for v in views], [v[2] for v in views],
                               [v[3] for v in views], [v[4] for v in views], [v[5] for v in views]))
"""),
    code("""
rng = np.random.default_rng(cfg.seed)
for s, c in crops.items():
    ids = c.per_patient.patient_id.to_numpy()
    pick = rng.choice(ids, size=min(16, len(ids)), replace=False)
    idx = [int(np.flatnonzero(c.patient_id == p)[len(np.flatnonzero(c.patient_id == p)) // 2]) for p in pick]
    label = cohort.set_index("patient_id").alnm
    display(Markdown(f"**{s}**: central crop of 16 random patients (1 = ALNM)"))
    display(plots.crop_gallery(c.crops[idx], [f"{p} · {label[p]}" for p in pick], ncols=8))
"""),
    md("""
## Intensities before and after normalisation

Scanner units differ between sequences, scanners and patients; min-max normalisation maps every
crop to [0, 1], so the network sees contrast within the crop, not absolute signal.
"""),
    code("""
raw, normed = [], []
for s, c in crops.items():
    k = slice(0, min(200, len(c.crops)))
    lo, hi = c.raw_range[k, 0][:, None, None], c.raw_range[k, 1][:, None, None]
    raw.append(c.crops[k] * (hi - lo) + lo)
    normed.append(c.crops[k])
display(plots.histograms_before_after(raw, normed, list(crops)))
"""),
    md("""
## DCE time-intensity curves and TIC type

The relative enhancement of the tumour ROI, phase by phase, gives the phase used for the DCE crop
(its peak) and the curve type: the delayed-phase signal compared with the early post-contrast
peak (first two minutes) rises by more than 10% (type I, persistent), stays within ±10% (type II,
plateau) or falls by more than 10% (type III, washout). The table compares this with `tic_type`
in `cohort.csv`.
"""),
    code("""
if "DCE" in crops:
    pp = crops["DCE"].per_patient.merge(cohort[["patient_id", "tic_type", "alnm"]], on="patient_id",
                                        suffixes=("_image", "_manifest"))
    t_s = pp.tic_times_s.iloc[0]
    times = np.array(t_s) / 60 if len(t_s) else np.arange(len(pp.tic_curve.iloc[0]))  # minutes (or phase index)
    display(plots.tic_curves(times, pp.rename(columns={"tic_type_manifest": "tic", "tic_curve": "curve"})))
    agree = pd.crosstab(pp.tic_type_image.rename("from the images"), pp.tic_type_manifest.rename("cohort.csv"))
    display(agree)
    display(Markdown(f"Agreement: **{(pp.tic_type_image == pp.tic_type_manifest).mean():.1%}** of "
                     f"{len(pp)} patients."))
"""),
    code("""
if interactive:
    from alnm_core.widgets import slice_viewer
    slice_viewer(cohort, ctx.cohort_dir, cfg.sequences)
""", "remove-from-report"),
]

NOTEBOOKS["03_train_sequence.ipynb"] = [
    md("""
# 3 · One sequence's CNN

This notebook trains the base model of one sequence (parameter `sequence`); the pipeline runs it
once per sequence, each in a fresh kernel.

**What the model sees.** Each input is one tumour crop from step 2: a grayscale patch in [0, 1],
repeated to three channels so that ImageNet filters can be used when asked for. The label of
every crop is its patient's label. After training, the slice probabilities of a patient are
averaged into one probability (`train.aggregation`), and it is the patient that is evaluated.

**What the paper chose.** A ResNet50 per sequence, 224 x 224 crops, Adam with learning rate
5e-5, batch size 64, 300 epochs, and a softmax threshold of 0.5, found by trying batch sizes of
16, 32 and 64 and learning rates between 1e-3 and 1e-6. It does not say how the checkpoint was
chosen, whether data were augmented or how the 78 / 124 class imbalance was handled; this run's
answers are in the table below, and every one is a configuration key.

**No peeking.** The checkpoint is chosen on the validation patients only. The test patients are
predicted once, after the model is frozen.
"""),
    code(COMMON_IMPORTS, "remove-from-report"),
    params("""sequence = "T2WI"  # str: which sequence to train (one of the run's sequences)
n_gradcam = 6  # int: test patients per row of the Grad-CAM gallery"""),
    code("""
ctx = nbk.start(globals(), _before, {"run_dir": str, "profile": str, "sequence": str, "n_gradcam": int})
cfg = ctx.cfg
if sequence not in cfg.sequences:
    raise ValueError(f"sequence={sequence!r} is not one of this run's sequences {list(cfg.sequences)}")
from alnm_core import plots, roi, training
from alnm_core.runinfo import update_run_json
from alnm_core.stats import auc_ci, diagnostic_metrics, confusion_counts

splits = pd.read_csv(ctx.paths.splits)
if not ctx.paths.roi(sequence).is_file():  # opened on its own: make the crops first
    from alnm_core.cohort import load_cohort
    nbk.log(f"no crops for {sequence} yet: running the ROI step")
    roi.extract_run(load_cohort(ctx.cohort_dir, cfg.sequences), ctx.cohort_dir, (sequence,), cfg.roi, ctx.paths)
crops = roi.SequenceCrops.load(ctx.paths.roi(sequence))
excluded = {e["patient_id"] for e in ctx.info.get("exclusions", [])}
""", "remove-from-report"),
    code("""
t = cfg.train
device = training.resolve_device(t.device)
settings = pd.DataFrame([
    ("architecture", t.arch, "paper: ResNet50"),
    ("input", f"{crops.crops.shape[1]} x {crops.crops.shape[2]} crops, {t.in_channels} channel(s)", "paper: 224 x 224"),
    ("initialisation", "ImageNet" if (t.pretrained or t.weights_path) else "random", "paper: not stated"),
    ("optimiser", f"Adam, lr {t.lr:g}, weight decay {t.weight_decay:g}", "paper: Adam, lr 5e-5"),
    ("batch size / epochs", f"{t.batch_size} / {t.epochs}", "paper: 64 / 300"),
    ("augmentation", "flips, transposition, gamma 0.85-1.15" if t.augment else "none", "paper: not stated"),
    ("class imbalance", "loss weighted by inverse class frequency" if t.class_weighting == "balanced" else "none", "paper: not stated"),
    ("checkpoint", "best validation AUC" if t.selection == "best_val_auc" else "last epoch", "paper: not stated"),
    ("slice -> patient", t.aggregation, "paper: not stated"),
    ("device", f"{device.type}" + (" (bf16 autocast, channels-last)" if device.type == "cuda" else ""), "paper: GPU"),
], columns=["setting", "this run", "paper"])
display(Markdown(f"## {sequence}: settings"))
display(settings.style.format(precision=3).hide(axis="index"))
n = crops.per_patient.set_index("patient_id").n_crops
part = splits.set_index("patient_id").split
display(Markdown(f"{len(crops.crops)} crops of {len(n)} patients: " + ", ".join(
    f"{s} {int(n[part.reindex(n.index) == s].sum())} crops / {int((part.reindex(n.index) == s).sum())} patients"
    for s in ("train", "val", "test"))))
"""),
    md("""
## Training
"""),
    code("""
result = training.train_sequence(crops, splits, t, ctx.paths.model_dir(sequence), seed=cfg.seed,
                                 excluded=excluded, progress=nbk.log)
training.write_predictions(result, ctx.paths, sequence)
update_run_json(ctx.run_dir, training={sequence: dict(
    best_epoch=int(result.best_epoch), seconds=round(result.seconds, 1), device=result.device,
    train_crops_per_s=round(result.crops_per_s, 1), resumed_from_epoch=result.resumed_from)})
display(Markdown(f"Trained {len(result.history)} epochs in {result.seconds:.0f} s on **{result.device}** "
                 f"({result.crops_per_s:.0f} training crops/s); kept epoch **{result.best_epoch}**."))
display(plots.learning_curves(result.history))
"""),
    md("""
The training AUC is computed from the predictions made while training (with augmentation, weights
changing within the epoch); the validation AUC from a separate pass in evaluation mode. Both are
patient-level.

## Patient-level results

AUC with the exact binomial 95% CI (as the paper, MedCalc) and the DeLong CI; accuracy,
sensitivity and specificity at the paper's threshold of 0.5 with Clopper–Pearson CIs.
"""),
    code("""
rows = []
for split_name in ("train", "val", "test"):
    p = result.patients[result.patients.split == split_name]
    if p.label.nunique() < 2:
        continue
    ex, dl = auc_ci(p.label, p.prob, method="exact"), auc_ci(p.label, p.prob, method="delong")
    m = diagnostic_metrics(p.label, (p.prob >= cfg.stats.threshold).astype(int))
    rows.append({"split": split_name, "patients": len(p), "AUC": f"{ex.auc:.3f}",
                 "exact CI": f"{ex.low:.3f}-{ex.high:.3f}", "DeLong CI": f"{dl.low:.3f}-{dl.high:.3f}",
                 **{k.upper(): f"{m[k].estimate:.3f} ({m[k].low:.3f}-{m[k].high:.3f})" for k in ("acc", "sen", "spe")}})
summary = pd.DataFrame(rows)
display(summary.style.format(precision=3).hide(axis="index"))
"""),
    code("""
figs = []
for split_name in ("val", "test"):
    p = result.patients[result.patients.split == split_name]
    tp, fp, fn, tn = confusion_counts(p.label, (p.prob >= cfg.stats.threshold).astype(int))
    display(Markdown(f"Confusion matrix at 0.5, **{split_name}** patients"))
    display(plots.confusion_matrix_figure(tp, fp, fn, tn, f"{sequence} · {split_name}"))
"""),
    md("""
## Where the model looks (Grad-CAM)

Grad-CAM weighs the last residual stage's feature maps by the gradient of the ALNM score and
shows where in the crop the evidence for ALNM lies (warm colours). One crop per test patient
(its largest tumour slice): correctly classified patients first, then misclassified ones. With
the phantom, a T2WI model that has learnt the intended signal looks at the oedema rim around the
tumour.
"""),
    code("""
model = training.load_checkpoint(t, ctx.paths.model_dir(sequence) / "checkpoint.pt")
test_p = result.patients[result.patients.split == "test"].copy()
test_p["pred"] = (test_p.prob >= cfg.stats.threshold).astype(int)
test_p["correct"] = test_p.pred == test_p.label
sl = result.slices[result.slices.split == "test"]
for correct in (True, False):
    chosen = test_p[test_p.correct == correct].sort_values("prob", ascending=False)
    chosen = pd.concat([chosen[chosen.label == 1].head(n_gradcam // 2), chosen[chosen.label == 0].head(n_gradcam - n_gradcam // 2)])
    if chosen.empty:
        display(Markdown(f"No {'correctly' if correct else 'wrongly'} classified test patients."))
        continue
    idx = []
    for pid in chosen.patient_id:
        rows_ = np.flatnonzero(crops.patient_id == pid)
        idx.append(int(rows_[np.argmax(crops.area_mm2[rows_])]))
    import torch
    x = torch.from_numpy(crops.crops[idx][:, None].astype(np.float32))
    heat = training.gradcam(model, x)
    titles = [f"{pid} y={int(y)} p={p:.2f}" for pid, y, p in zip(chosen.patient_id, chosen.label, chosen.prob)]
    display(Markdown(f"**{'Correctly' if correct else 'Wrongly'} classified** test patients"))
    display(plots.heatmap_gallery(crops.crops[idx], heat, titles, ncols=max(len(idx), 2)))
"""),
    md("""
## Files written

`artifacts/models/<SEQ>/checkpoint.pt` (selected weights), `last.pt` (resume state),
`history.csv`; `artifacts/predictions/<SEQ>.csv` (patient level) and `<SEQ>_slices.csv`.
"""),
]

NOTEBOOKS["04_ensemble_fusion.ipynb"] = [
    md("""
# 4 · Fusing the three sequences

The paper combines its three base models by weighted voting (its eq. 2–3): each model's weight
comes from its accuracy, the weighted sum of the models' ALNM probabilities is
H(x) = Σ wᵢ hᵢ(x), and a patient is called ALNM when H(x) reaches half the sum of the weights.

**Which reading of eq. 2.** As printed, eq. 2 sets every weight to the *mean* accuracy
(Σ ACCᵢ / 3), which would make all weights equal and the "weighted" vote a plain average. The
text says each weight is computed from that model's accuracy, so this suite uses wᵢ = ACCᵢ. The
decision "H(x) ≥ Σwᵢ / 2" is then the same as "weighted mean probability ≥ 0.5", and the
weighted mean is the fused score used for ROC curves.

**Whose accuracies.** The paper measured the accuracies on the test set, so the test labels
helped build the model they then judged. Here the default takes them on the validation split
(`ensemble.weights_from`). The paper-literal variant is computed as well and is labelled
optimistic wherever it appears.

Shown beside it: an equal-weight soft vote, a majority hard vote, and logistic stacking fitted on
the validation predictions.
"""),
    code(COMMON_IMPORTS, "remove-from-report"),
    params(),
    code("""
ctx = nbk.start(globals(), _before, {"run_dir": str, "profile": str})
cfg = ctx.cfg
from alnm_core import ensemble
from alnm_core.runinfo import update_run_json

nbk.ensure_predictions(ctx)  # opened on its own: train what is missing (a pipeline run has it all)
preds = {s: pd.read_csv(ctx.paths.predictions(s)) for s in cfg.sequences}
""", "remove-from-report"),
    code("""
fused, weights = ensemble.fuse(preds, threshold=cfg.stats.threshold)
fused.to_csv(ctx.paths.predictions("ensemble"), index=False)
weights.to_csv(ctx.paths.artifacts / "ensemble_weights.csv", index=False)
n_dropped = {s: len(set(p.patient_id) - set(fused.patient_id)) for s, p in preds.items()}
update_run_json(ctx.run_dir, ensemble=dict(weights_from=cfg.ensemble.weights_from,
                                           weights=weights.set_index("model").weight_validation.round(4).to_dict()))
display(Markdown("## Weights"))
display(Markdown("Accuracy of each base model at the 0.5 threshold, and the weights they give "
                 "(shown normalised to sum to 1; the decision is unchanged by scaling):"))
display(weights.round(3).style.format(precision=3).hide(axis="index"))
if any(n_dropped.values()):
    display(Markdown(f"Patients without a prediction from every model (not fused): {n_dropped}"))
"""),
    md("""
## A worked example

The weighted vote for the first test patients, step by step: each model's probability hᵢ, the
weighted sum H(x), the threshold Σwᵢ / 2 and the decision.
"""),
    code("""
w = weights.set_index("model").acc_validation.to_dict()
test = fused[fused.split == "test"].head(6)
vote = ensemble.weighted_vote(test[list(cfg.sequences)], w)
example = test[["patient_id", "label", *cfg.sequences]].assign(
    **{"H(x)": vote.H.round(3), "Σw/2": round(vote.threshold, 3), "decision": vote.decision})
display(example.round(3).style.format(precision=3).hide(axis="index"))
"""),
    md("""
## Fused scores by method

Patient-level AUC of every method on validation and test (exact CIs and DeLong tests are in
step 5). `weighted_vote_test_weights` is the paper-literal variant: optimistic by construction.
"""),
    code("""
from alnm_core.stats import auc
cols = list(cfg.sequences) + list(ensemble.METHODS)
rows = []
for c in cols:
    rows.append({"model": ensemble.METHODS.get(c, c),
                 **{f"AUC {s}": round(auc(fused[fused.split == s].label, fused[fused.split == s][c]), 3)
                    for s in ("val", "test")}})
display(pd.DataFrame(rows).style.format(precision=3).hide(axis="index"))
print(f"saved {ctx.paths.predictions('ensemble').relative_to(ctx.run_dir)} and artifacts/ensemble_weights.csv")
"""),
]

NOTEBOOKS["05_roc_delong.ipynb"] = [
    md("""
# 5 · Evaluation: Table 3, ROC curves, DeLong tests and beyond

Everything here is computed on the **test** patients, with models and thresholds frozen before
the test labels are read, except the paper-literal fusion (flagged).
"""),
    code(COMMON_IMPORTS, "remove-from-report"),
    params("""interactive = False  # bool: show a threshold slider (JupyterLab only; reports stay static)"""),
    code("""
ctx = nbk.start(globals(), _before, {"run_dir": str, "profile": str, "interactive": bool})
cfg = ctx.cfg
from alnm_core import ensemble, evaluation, methods, plots
from alnm_core import stats as S
from alnm_core.cohort import load_cohort

nbk.ensure_ensemble(ctx)  # opened on its own: make what is missing (a pipeline run has it all)
fused = pd.read_csv(ctx.paths.predictions("ensemble"))
cohort = load_cohort(ctx.cohort_dir, cfg.sequences)
splits = pd.read_csv(ctx.paths.splits)
clin = evaluation.clinical_baseline(cohort, splits).rename(columns={"prob": "clinical"})
preds = fused.merge(clin[["patient_id", "clinical"]], on="patient_id")
names = {**{s: s for s in cfg.sequences},
         "weighted_vote": "Multiparametric MRI", **{k: v for k, v in ensemble.METHODS.items() if k != "weighted_vote"},
         "clinical": "Clinical baseline (logistic: age, size, margin, TIC)"}
test = preds[preds.split == "test"]
""", "remove-from-report"),
    md("""
## How the numbers were obtained
"""),
    code("""
display(Markdown(methods.methods_paragraph(cfg, ctx.info, n_test=len(test), n_test_pos=int(test.label.sum()))))
"""),
    md("""
## Table 3

One row per model, first at the paper's fixed threshold of 0.5, then at the threshold that
maximises Youden's J on the validation patients, frozen and applied to the test patients.
"""),
    code("""
t3 = evaluation.build_table3(preds, names, threshold=cfg.stats.threshold,
                             ppv_npv_method=cfg.stats.ppv_npv_method, n_boot=cfg.stats.bootstrap_n, seed=cfg.seed)
t3.to_csv(ctx.paths.table3, index=False)
view = evaluation.format_table3(t3)
for src in t3.threshold_from.unique():
    display(Markdown(f"**Table 3 — threshold: {src}** (test set, n = {len(test)}, {int(test.label.sum())} ALNM)"))
    display(view[t3.threshold_from == src].drop(columns="Threshold" if src.startswith("fixed") else []).style.format(precision=3).hide(axis="index"))
display(Markdown("The paper's Table 3, for comparison: T2WI AUC 0.908 (0.792–0.971), DWI 0.702 "
                 "(0.556–0.823), DCE-MRI 0.572 (0.424–0.711), multiparametric 0.913 (0.799–0.974)."))
"""),
    md("""
## ROC curves (the paper's Figure 5)
"""),
    code("""
curves = {}
for col in list(cfg.sequences) + ["weighted_vote", "clinical"]:
    c = S.roc_curve(test.label, test[col])
    curves[names[col]] = (c.fpr[::-1], c.sensitivity[::-1], S.auc(test.label, test[col]))
display(plots.roc_figure(curves, "Test set"))
"""),
    md("""
## DeLong tests

As the paper, the multiparametric model is compared with each base model (paired DeLong test,
Sun & Xu algorithm; identical to pROC's `roc.test`). Because several comparisons are made, Holm
adjusted p-values are shown beside the raw ones; the paper reported raw p-values. All pairs are
saved to `artifacts/delong.csv`.
"""),
    code("""
versus = evaluation.delong_against(preds, "weighted_vote", list(cfg.sequences) + ["clinical"])
versus_view = versus.assign(model_a=versus.model_a.map(names), model_b=versus.model_b.map(names)).round(4)
display(versus_view.style.format(precision=3).hide(axis="index"))
dm = S.delong_matrix(test.label.to_numpy(), {c: test[c].to_numpy() for c in names})
dm.to_csv(ctx.paths.delong, index=False)
print(f"saved {ctx.paths.delong.relative_to(ctx.run_dir)} ({len(dm)} pairs) and {ctx.paths.table3.relative_to(ctx.run_dir)}")
"""),
    md("""
## Calibration

A model can rank patients well (high AUC) and still give probabilities that are too high or too
low. Reliability plot (test patients in quantile bins, with exact 95% CIs), Brier score, and the
calibration intercept (ideal 0) and slope (ideal 1) from logistic recalibration.
"""),
    code("""
cal_rows, rel = [], {}
n_bins = 5 if len(test) < 100 else 10
for col in list(cfg.sequences) + ["weighted_vote", "clinical"]:
    try:
        c = S.calibration_intercept_slope(test.label, test[col])
        cal_rows.append({"model": names[col], "Brier": round(c.brier, 3), "intercept": round(c.intercept, 3),
                         "slope": round(c.slope, 3)})
    except ValueError as exc:
        cal_rows.append({"model": names[col], "Brier": round(S.brier_score(test.label, test[col]), 3),
                         "intercept": f"not estimable ({exc})", "slope": ""})
    rel[names[col]] = S.reliability_table(test.label, test[col], n_bins=n_bins)
display(pd.DataFrame(cal_rows).style.format(precision=3).hide(axis="index"))
display(plots.reliability_figure({k: v for k, v in rel.items() if k in (names["weighted_vote"], "T2WI", names["clinical"])}))
"""),
    md("""
## Decision curve

Net benefit of acting on each model's prediction at each threshold probability, against treating
every patient as node-positive (treat all) or none (treat none).
"""),
    code("""
dca = {names[c]: S.net_benefit(test.label, test[c], np.arange(5, 96) / 100)
       for c in ["weighted_vote", "T2WI", "clinical"] if c in test}
display(plots.decision_curve_figure(dca))
"""),
    md("""
## Subgroups by field strength

The paper pooled a 1.5T and a 3T scanner and named this as a limitation. Test AUCs within each
field strength (exact CIs) and pROC's unpaired DeLong test between the two subgroups. The
subgroups are small: read these as a check for a gross failure on one scanner, not as evidence
of equivalence.
"""),
    code("""
sub = evaluation.subgroup_auc(preds, cohort, {c: names[c] for c in list(cfg.sequences) + ["weighted_vote"]})
display(sub.style.format(precision=3).hide(axis="index"))
"""),
    code("""
if interactive:
    from alnm_core.widgets import threshold_explorer
    threshold_explorer({names[c]: test[["label"]].assign(prob=test[c]) for c in names})
""", "remove-from-report"),
    md("""
## Reviewer checklist

Where this report answers the items of TRIPOD+AI (prediction models) and CLAIM (AI in medical
imaging) that a reviewer checks first.
"""),
    code("""
display(methods.checklist().style.format(precision=3).hide(axis="index"))
"""),
]


def build() -> dict[str, nbformat.NotebookNode]:
    out = {}
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        for i, c in enumerate(nb.cells):
            c["id"] = f"{name[:2]}-{i:02d}"
        out[name] = nb
    return out


def main() -> int:
    for name, nb in build().items():
        nbformat.write(nb, NB_DIR / name)
        print(f"wrote notebooks/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
