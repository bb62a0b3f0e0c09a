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
from IPython.display import display

from alnm_core import notebook as nbk
from alnm_core.cohort import describe_cohort
from alnm_core.report import escape as esc
from alnm_core.report import methods, plots, views

# %% tags=["parameters", "remove-from-report"]
run_dir: str = "reports/notebook-smoke"  # run folder (relative to the repository, or absolute); made on the phantom if absent
profile: str = "smoke"  # profile used only when run_dir has no run.json yet (smoke, demo, paper)

# %% tags=["remove-from-report"]
ctx = nbk.start(run_dir=run_dir, profile=profile)
res = ctx.load("describe_cohort")  # artifacts/table1.csv, written by the step describe_cohort
prep, rois = ctx.load("prepare"), ctx.load_all("roi")

# %% [markdown]
# ## Patients and the split
#
# The split is made once per run, by patient and stratified by label, before any image is read:
# a test set that is never seen during training, model selection or threshold choice, and a
# development set. How the development set is used depends on the validation design:

# %%
display(esc.md(methods.design_sentence(ctx.cfg)), *views.outside_note(ctx.info))
display(esc.md("**{n} patients**, {pos} with ALNM ({pct:.1f}%). Patients per part of the split:",
               n=len(res.cohort), pos=int(res.cohort.alnm.sum()), pct=100 * res.cohort.alnm.mean()))
display(esc.table(res.flow, index=True))
display(plots.patient_flow(res.splits))
display(esc.md("By field strength (the paper pooled a 1.5T and a 3T scanner):"))
display(esc.table(describe_cohort(res.cohort), index=True))

# %% [markdown]
# ## Participant flow
#
# Every patient of the cohort, and where each one went: left out (with the reason, at import or
# because a series could not be cropped; section 2 lists them by patient) or analysed in the
# development or the test set, with the events (ALNM) in each (TRIPOD+AI item 20a). Beside it,
# the characteristics of the two partitions, and the missing data per variable with how they
# were handled.

# %%
display(views.participant_flow_figure(prep, rois, ctx.cohort_dir))
display(esc.table(views.partitions_view(res.partitions), caption="Characteristics by partition"))
display(esc.table(res.missing, caption="Missing data and their handling"))

# %% [markdown]
# ## Table 1
#
# How each number is obtained (the settings come from the run's configuration) is stated in the
# paragraph below; the test used is printed beside each p-value. The paper used the chi-square
# test for all patients (margin p = 0.079, TIC type p = 0.201) and Fisher's exact test for its
# test set (0.387, 0.243); the `paper` profile does the same.

# %%
display(esc.md(methods.table1_methods(ctx.cfg)))
t_all = res.table1[res.table1.population == "All patients"]
t_test = res.table1[res.table1.population == "Test set"]
display(esc.table(views.table1_view(t_all), caption="Table 1a. All patients"))
display(esc.table(views.table1_view(t_test), caption="Table 1b. Test set"))

# %% [markdown]
# ### Normality checks
#
# Shapiro–Wilk (SW) and Lilliefors-corrected Kolmogorov–Smirnov (K-S(L)) p-values per group. The
# K-S(L) p-value is R's (`nortest::lillie.test`: Dallal–Wilkinson's approximation, Stephens'
# above 0.1). SPSS reads it from a table that stops at 0.2 and prints ".200*" ("at least 0.2")
# above it: the two agree below 0.1 and on every decision at α = 0.05.

# %%
display(esc.table(views.normality_view(t_all)))

# %% [markdown]
# ## Distributions by group

# %%
display(plots.distributions_by_group(res.data, [("age", "age (years)"), ("tumor_size_cm", "tumour size (cm)")]))
