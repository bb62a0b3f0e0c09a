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
import pandas as pd
from IPython.display import display

from alnm_core import notebook as nbk
from alnm_core import roi
from alnm_core.report import escape as esc
from alnm_core.report import plots, views

# %% tags=["parameters", "remove-from-report"]
run_dir: str = "reports/notebook-smoke"  # run folder (relative to the repository, or absolute); made on the phantom if absent
profile: str = "smoke"  # profile used only when run_dir has no run.json yet (smoke, demo, paper)
interactive: bool = False  # show the ipywidgets slice viewer (JupyterLab only; reports stay static)
n_qc_patients: int = 3  # patients shown in the QC gallery

# %% tags=["remove-from-report"]
ctx = nbk.start(run_dir=run_dir, profile=profile, interactive=interactive, n_qc_patients=n_qc_patients)
prep = ctx.load("prepare")
rois = ctx.load_all("roi")  # artifacts/roi/<SEQ>.npz, written by the steps roi:<SEQ>

# %% [markdown]
# ## Extraction
#
# Settings of this run, and the crops per sequence and part of the split (saved to
# `artifacts/roi/<SEQ>.npz`):

# %%
display(esc.table(pd.DataFrame(views.roi_settings(ctx.cfg), columns=["setting", "value"])))
display(esc.table(views.crops_table(rois, prep.splits), index=True))

# %% [markdown]
# ## Exclusions and warnings
#
# A patient whose series cannot be cropped (unreadable file, empty mask, a b-value or phase that is
# not in the series, a constant crop) stops the run by default; with `roi.on_error=exclude` it is
# listed here and in `run.json` instead, and left out of every model so that all sequences and the
# fusion see the same patients. Warnings flag masks that touch the edge of the volume.

# %%
exclusions = [e for r in rois.values() for e in r.exclusions]
warnings = [w for r in rois.values() for w in r.warnings]
display(esc.md("**Excluded:** {n}{none}", n=len(exclusions), none="" if exclusions else " (none)"))
if exclusions:
    display(esc.table(pd.DataFrame(exclusions)))
display(esc.md("**Warnings:** {n}{none}", n=len(warnings), none="" if warnings else " (none)"))
if warnings:
    display(esc.table(pd.DataFrame(warnings)))

# %% [markdown]
# ## Quality control gallery
#
# For a few patients of each group: the slice with the largest tumour area in each sequence, with
# the mask outline (red) and the crop box after the margin (yellow), beside the crop the model sees.
# The three series of one patient are on different grids, as in a real examination.

# %%
rows = prep.cohort.set_index("patient_id", drop=False)
for pid in views.qc_patients(prep.cohort, n_qc_patients, excluded={e["patient_id"] for e in exclusions}):
    row = rows.loc[pid]
    display(esc.md("**{pid}** — {group}, {fs}, {size} cm, {margin} margin", pid=pid, fs=row.field_strength,
                   group="ALNM" if row.alnm else "non-ALNM", size=row.tumor_size_cm, margin=row.margin))
    display(plots.roi_qc_panel([roi.qc_view(row, ctx.cohort_dir, s, ctx.cfg.roi) for s in rois]))

# %%
for s, r in rois.items():
    crops, titles = views.central_crops(r.crops, prep.cohort, ctx.cfg.seed)
    display(esc.md("**{s}**: central crop of {k} random patients (1 = ALNM)", s=s, k=len(titles)))
    display(plots.crop_gallery(crops, titles, ncols=8))

# %% [markdown]
# ## Intensities before and after normalisation
#
# Scanner units differ between sequences, scanners and patients; min-max normalisation maps every
# crop to [0, 1], so the network sees contrast within the crop, not absolute signal.

# %%
display(plots.histograms_before_after(*views.intensities(rois), list(rois)))

# %% [markdown]
# ## DCE time-intensity curves and TIC type
#
# The relative enhancement of the tumour ROI, phase by phase, gives the phase used for the DCE crop
# (its peak) and the curve type: the delayed-phase signal compared with the early post-contrast
# peak (first two minutes) rises by more than 10% (type I, persistent), stays within ±10% (type II,
# plateau) or falls by more than 10% (type III, washout). The table compares this with `tic_type`
# in `cohort.csv` (when the cohort records it). Where the ROIs are boxes (a public collection's
# tumour boxes), the gallery after it shows each box on the peak-phase slice and on the
# subtraction image, to check that the box sits on the enhancing tumour.

# %%
if "DCE" in rois:
    curves, agree, share = views.tic_agreement(rois["DCE"].crops, prep.cohort)
    display(plots.tic_curves(None, curves))
    if agree is not None:
        display(esc.table(agree, index=True))
        display(esc.md("Agreement: **{share:.1%}** of {n} patients.", share=share, n=len(curves)))
display(*views.box_gallery(prep.cohort, ctx.cohort_dir, ctx.cfg))

# %% tags=["remove-from-report"]
if interactive:
    from alnm_core.report.widgets import slice_viewer
    slice_viewer(prep.cohort, ctx.cohort_dir, ctx.cfg.sequences, roi_cfg=ctx.cfg.roi)
