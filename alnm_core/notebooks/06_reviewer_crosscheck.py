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
# # 6 · Reviewer's cross-check
#
# Every headline number of this report — each Table 1 p-value, each Table 3 cell (confusion
# counts, ACC, SEN, SPE, PPV, NPV and their CIs, AUC and its CI), each DeLong z and p, the
# per-split AUCs of section 3 and the out-of-fold AUCs — re-derived from the run's artifacts
# alone (the cohort manifest, `splits.csv` and the patient-level predictions) with **independent
# code**: scipy's `ttest_ind`, `mannwhitneyu`, `chi2_contingency` and `fisher_exact`, scipy's
# `binomtest` for Clopper–Pearson intervals, scikit-learn's `roc_auc_score`, and a naive O(m·n)
# DeLong written from the 1988 paper (`alnm_core/crosscheck.py`, which uses none of the package's
# statistics). A reviewer runs this notebook on a run folder and either trusts the report or
# finds the row that differs. The full table is `artifacts/crosscheck.csv`.

# %% tags=["remove-from-report"]
from IPython.display import display

from alnm_core import crosscheck as X
from alnm_core import notebook as nbk
from alnm_core.report import escape as esc

# %% tags=["parameters", "remove-from-report"]
run_dir: str = "reports/notebook-smoke"  # run folder made by `alnm run` (relative to the repository, or absolute)

# %% tags=["remove-from-report"]
ctx = nbk.start(run_dir=run_dir)
check = ctx.load("crosscheck")  # artifacts/crosscheck.csv (step crosscheck)
shown = check.assign(check=check.ok.map({True: "✓", False: "✗"}).fillna("—"))
columns = ["section", "item", "reported", "recomputed", "abs_diff", "check", "how"]

# %%
display(esc.md("**{s}.**", s=X.summary(check)))
per_section = (shown.groupby("section", sort=False).check.value_counts().unstack(fill_value=0)
               .reindex(columns=["✓", "✗", "—"], fill_value=0))
display(esc.table(per_section, index=True))

# %% [markdown]
# ## Rows that differ or were not re-derived
#
# A ✗ is a number the report shows that independent code does not reproduce (to 1e-6). A — is a
# number made with a method this check does not re-implement (a bootstrap or logit interval), or
# a test it does not cover; the `how` column says which.

# %%
odd = shown[shown.check != "✓"]
if odd.empty:
    display(esc.md("None: every headline number was re-derived and agrees."))
else:
    display(esc.table(odd[columns], precision=6, wide=True))

# %% [markdown]
# ## Every row
#
# On screen the whole table opens below; on paper it is left out (it is `artifacts/crosscheck.csv`).

# %%
display(esc.details(f"All {len(shown)} re-derived numbers (artifacts/crosscheck.csv)", shown[columns],
                    precision=6, wide=True))
