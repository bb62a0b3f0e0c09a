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
# # 1 · The cohort and Table 1
#
# This step describes who is in the study before any image is touched. It mirrors Table 1 of
# Zhang et al. (2022): the clinical characteristics of all patients and of the test set, split
# into the ALNM group (pN1a or worse) and the non-ALNM group (pN0), with a p-value for each
# comparison. The paper's cohort had 252 women (98 ALNM, 154 non-ALNM) and a fixed test set of 50
# (20 ALNM, 30 non-ALNM).
#
# Reading guide: a characteristic that differs between the groups (in the paper, tumour size) is
# a potential shortcut for an image model, since a larger tumour fills more of each crop.

# %% tags=["remove-from-report"]
# %matplotlib inline
import pandas as pd
from IPython.display import HTML, Markdown, display

from alnm_core import notebook as nbk
from alnm_core.cohort import describe_cohort
from alnm_core.report import plots
from alnm_core.run import steps

_before = set(globals())

# %% tags=["parameters", "remove-from-report"]
run_dir = "../reports/notebook-smoke"  # str: run folder made by `alnm run`; created on the phantom if absent
profile = "smoke"  # str: profile used only when run_dir has no run.json yet (smoke, demo, paper)

# %% tags=["remove-from-report"]
ctx = nbk.start(globals(), _before, {"run_dir": str, "profile": str})
cfg = ctx.cfg
res = ctx.run(steps.describe_cohort)  # writes artifacts/table1.csv (or reads it back)
print(f"run folder: {ctx.run_dir.name}  |  profile: {cfg.profile}  |  seed: {cfg.seed}")

# %% [markdown]
# ## Patients and the split
#
# The split is made once per run, by patient, stratified by label: a test set that is never seen
# during training or model selection, and a validation part carved from the remaining patients
# for checkpoint choice and ensemble weights. A fixed `split` column in `cohort.csv` (as the
# paper's 202 / 50 split) takes precedence when present.

# %%
cohort, splits = res.cohort, res.splits
flow = (splits.groupby(["split", "label"]).size().unstack(fill_value=0)
        .rename(columns={0: "non-ALNM", 1: "ALNM"})
        .reindex([s for s in ("train", "val", "dev", "test") if s in set(splits.split)]))
flow["total"] = flow.sum(axis=1)
display(Markdown(f"**{len(cohort)} patients**, {int(cohort.alnm.sum())} with ALNM "
                 f"({100 * cohort.alnm.mean():.1f}%). Patients per split:"))
display(flow)
display(plots.patient_flow(splits))
display(Markdown("By field strength (the paper pooled a 1.5T and a 3T scanner):"))
display(describe_cohort(cohort))

# %% [markdown]
# ## Table 1
#
# How each number is obtained (settings come from the run's configuration):
#
# * continuous variables are shown as mean ± SD; normality is checked in each group with the
#   Shapiro–Wilk test and with the Kolmogorov–Smirnov test with Lilliefors correction (the check
#   the paper names); when both groups look normal, Student's t (equal variances by Levene's test)
#   or Welch's t is used, otherwise the Mann–Whitney U test;
# * categorical variables are shown as n (%); the Pearson chi-square test *without* continuity
#   correction is used (SPSS's "Pearson Chi-Square" row), or Fisher's exact test when an expected
#   count is below 5 (rule `stats.categorical_test`, and `stats.categorical_test_test_set` for the
#   test-set table).
#
# The test used is printed beside each p-value, with the normality check that chose it. The
# paper used the chi-square test for all patients (margin p = 0.079, TIC type p = 0.201) and
# Fisher's exact test for its test set (0.387, 0.243); the `paper` profile does the same.

# %%
def show(t: pd.DataFrame, caption: str) -> None:
    view = t[["characteristic", "level", "total", "group1", "group0", "p", "test"]].rename(columns={
        "characteristic": "Characteristic", "level": "", "total": "Total", "group1": "ALNM",
        "group0": "Non-ALNM", "p": "P", "test": "Test"})
    sty = (view.style.format(precision=3).hide(axis="index").set_caption(caption)
           .set_table_styles([{"selector": "caption", "props": "font-weight:bold;text-align:left"}]))
    display(HTML(sty.to_html()))


t_all = res.table1[res.table1.population == "All patients"]
t_test = res.table1[res.table1.population == "Test set"]
show(t_all, "Table 1a. All patients")
show(t_test, "Table 1b. Test set")
print(f"saved {ctx.paths.table1.relative_to(ctx.run_dir)}")

# %% [markdown]
# ### Normality checks
#
# Shapiro–Wilk (SW) and Lilliefors-corrected Kolmogorov–Smirnov (K-S(L)) p-values per group; a
# p-value below the significance level sends the comparison to the Mann–Whitney U test. The
# K-S(L) p-value is R's (`nortest::lillie.test`: Dallal–Wilkinson's approximation, Stephens'
# above 0.1). SPSS reads it from a table that stops at 0.2 and prints ".200*" ("at least 0.2")
# above it: the two agree below 0.1 and on every decision at α = 0.05.

# %%
display(t_all.loc[t_all.normality != "", ["characteristic", "normality"]]
        .style.format(precision=3).hide(axis="index"))

# %% [markdown]
# ## Distributions by group

# %%
display(plots.distributions_by_group(res.data, [("age", "age (years)"),
                                                ("tumor_size_cm", "tumour size (cm)")]))
