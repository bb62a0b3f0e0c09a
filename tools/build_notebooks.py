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
