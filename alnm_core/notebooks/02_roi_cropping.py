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
# # 2 · Tumour ROI crops
#
# **What an ROI is here.** The model never sees the whole breast. For each sequence it sees small
# square patches centred on the tumour, one per axial slice that contains tumour: the region of
# interest (ROI). In the paper two radiologists outlined each tumour and the patches were cut in
# MATLAB; here the cut is computed from the tumour mask that comes with each series.
#
# **Why a margin.** The paper's patches include the tissue around the tumour, and its discussion
# argues that peritumoral oedema on T2WI carries much of the signal. The margin is set in
# millimetres (`roi.margin_mm`), not pixels, so that it covers the same tissue on the 1.5T and 3T
# grids, whose pixels differ by a factor of two or more.
#
# **Why per slice.** Every tumour slice becomes one training example, which multiplies a small
# cohort's examples; slice predictions are averaged back to one probability per patient later,
# so that a patient, not a slice, is what gets evaluated.
#
# **Which image.** DWI: the configured b-value (default the highest, 800 at 1.5T and 1000 at 3T).
# DCE: the phase of peak relative enhancement of the tumour's time-intensity curve, as the paper.
# Each crop is min-max normalised to [0, 1] (the paper's eq. 1).

# %% tags=["remove-from-report"]
# %matplotlib inline
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from alnm_core import notebook as nbk
from alnm_core import roi
from alnm_core.report import plots
from alnm_core.run import steps

_before = set(globals())

# %% tags=["parameters", "remove-from-report"]
run_dir = "../reports/notebook-smoke"  # str: run folder made by `alnm run`; created on the phantom if absent
profile = "smoke"  # str: profile used only when run_dir has no run.json yet (smoke, demo, paper)
interactive = False  # bool: show the ipywidgets slice viewer (JupyterLab only; reports stay static)
n_qc_patients = 3  # int: patients shown in the QC gallery

# %% tags=["remove-from-report"]
ctx = nbk.start(globals(), _before, {"run_dir": str, "profile": str, "interactive": bool,
                                     "n_qc_patients": int})
cfg = ctx.cfg
prep = ctx.run(steps.prepare)
res = ctx.run(steps.extract_rois)  # writes artifacts/roi/<SEQ>.npz (or reads them back)
cohort, splits = prep.cohort, prep.splits

# %% [markdown]
# ## Extraction
#
# Settings of this run (from `run.json`):

# %%
r = cfg.roi
display(Markdown(
    f"- crop size **{r.size} x {r.size}** px, peritumoral margin **{r.margin_mm:g} mm**, "
    f"{'square box in mm (aspect kept)' if r.keep_aspect else 'box stretched to a square'}\n"
    f"- slices: **{r.slices}**{f' (k={r.central_k})' if r.slices == 'central' else ''}, "
    f"minimum tumour area {r.min_area_mm2:g} mm²\n"
    f"- DWI b-value: **{'highest in series' if r.dwi_b_value is None else r.dwi_b_value}**; "
    f"DCE phase: **{r.dce_phase}**; unusable patients: **{r.on_error}**"))
rows = []
part = splits.set_index("patient_id").split
for s, c in res.crops.items():
    n = c.per_patient.set_index("patient_id").n_crops
    where = part.reindex(n.index)
    rows.append(dict(sequence=s, patients=len(n), crops=int(n.sum()), per_patient_mean=round(n.mean(), 1),
                     per_patient_min=int(n.min()), per_patient_max=int(n.max()),
                     **{k: int(n[where == k].sum()) for k in ("train", "val", "dev", "test") if (part == k).any()},
                     crop_shape=str(c.crops.shape[1:]),
                     value_range=f"[{c.crops.min():.2f}, {c.crops.max():.2f}]"))
display(Markdown("Crops per sequence (saved to `artifacts/roi/<SEQ>.npz`):"))
display(pd.DataFrame(rows).set_index("sequence"))

# %% [markdown]
# ## Exclusions and warnings
#
# A patient whose series cannot be cropped (unreadable file, empty mask, a b-value or phase that is
# not in the series, a constant crop) stops the run by default; with `roi.on_error=exclude` it is
# listed here and in `run.json` instead, and left out of every model so that all sequences and the
# fusion see the same patients. Warnings flag masks that touch the edge of the volume.

# %%
display(Markdown(f"**Excluded:** {len(res.exclusions)}" + ("" if res.exclusions else " (none)")))
if res.exclusions:
    display(pd.DataFrame(res.exclusions))
display(Markdown(f"**Warnings:** {len(res.warnings)}" + ("" if res.warnings else " (none)")))
if res.warnings:
    display(pd.DataFrame(res.warnings))

# %% [markdown]
# ## Quality control gallery
#
# For a few patients of each group: the slice with the largest tumour area in each sequence, with
# the mask outline (red) and the crop box after the margin (yellow), beside the crop the model sees.
# The three series of one patient are on different grids, as in a real examination.

# %%
qc_ids = (list(cohort[cohort.alnm == 1].patient_id[: (n_qc_patients + 1) // 2]) +
          list(cohort[cohort.alnm == 0].patient_id[: n_qc_patients // 2]))
for pid in qc_ids:
    row = cohort.set_index("patient_id").loc[pid].copy()
    row["patient_id"] = pid
    views = [roi.qc_view(row, ctx.cohort_dir, s, cfg.roi) for s in cfg.sequences]
    display(Markdown(f"**{pid}** — {'ALNM' if row.alnm else 'non-ALNM'}, {row.field_strength}, "
                     f"{row.tumor_size_cm} cm, {row.margin} margin"))
    display(plots.roi_qc_panel(views))

# %%
rng = np.random.default_rng(cfg.seed)
label = cohort.set_index("patient_id").alnm
for s, c in res.crops.items():
    ids = c.per_patient.patient_id.to_numpy()
    pick = rng.choice(ids, size=min(16, len(ids)), replace=False)
    idx = [int(np.flatnonzero(c.patient_id == p)[len(np.flatnonzero(c.patient_id == p)) // 2]) for p in pick]
    display(Markdown(f"**{s}**: central crop of 16 random patients (1 = ALNM)"))
    display(plots.crop_gallery(c.crops[idx], [f"{p} · {label[p]}" for p in pick], ncols=8))

# %% [markdown]
# ## Intensities before and after normalisation
#
# Scanner units differ between sequences, scanners and patients; min-max normalisation maps every
# crop to [0, 1], so the network sees contrast within the crop, not absolute signal.

# %%
raw, normed = [], []
for s, c in res.crops.items():
    k = slice(0, min(200, len(c.crops)))
    lo, hi = c.raw_range[k, 0][:, None, None], c.raw_range[k, 1][:, None, None]
    raw.append(c.crops[k] * (hi - lo) + lo)
    normed.append(c.crops[k])
display(plots.histograms_before_after(raw, normed, list(res.crops)))

# %% [markdown]
# ## DCE time-intensity curves and TIC type
#
# The relative enhancement of the tumour ROI, phase by phase, gives the phase used for the DCE crop
# (its peak) and the curve type: the delayed-phase signal compared with the early post-contrast
# peak (first two minutes) rises by more than 10% (type I, persistent), stays within ±10% (type II,
# plateau) or falls by more than 10% (type III, washout). The table compares this with `tic_type`
# in `cohort.csv`.

# %%
if "DCE" in res.crops:
    pp = res.crops["DCE"].per_patient.merge(cohort[["patient_id", "tic_type", "alnm"]], on="patient_id",
                                            suffixes=("_image", "_manifest"))
    t_s = pp.tic_times_s.iloc[0]
    times = np.array(t_s) / 60 if len(t_s) else np.arange(len(pp.tic_curve.iloc[0]))  # minutes (or phase index)
    display(plots.tic_curves(times, pp.rename(columns={"tic_type_manifest": "tic", "tic_curve": "curve"})))
    agree = pd.crosstab(pp.tic_type_image.rename("from the images"), pp.tic_type_manifest.rename("cohort.csv"))
    display(agree)
    display(Markdown(f"Agreement: **{(pp.tic_type_image == pp.tic_type_manifest).mean():.1%}** of "
                     f"{len(pp)} patients."))

# %% tags=["remove-from-report"]
if interactive:
    from alnm_core.report.widgets import slice_viewer
    slice_viewer(cohort, ctx.cohort_dir, cfg.sequences, roi_cfg=cfg.roi)
