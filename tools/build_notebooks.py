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
    sty = (view.style.hide(axis="index").set_caption(caption)
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
display(t_all.loc[t_all.normality != "", ["characteristic", "normality"]].style.hide(axis="index"))
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
    times = np.arange(len(pp.tic_curve.iloc[0]))  # minutes: one phase per minute in the phantom
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
