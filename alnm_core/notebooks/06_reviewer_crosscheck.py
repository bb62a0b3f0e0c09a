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
# counts, ACC, SEN, SPE, PPV, NPV and their CIs, AUC and its CI), each DeLong z and p, and the
# out-of-fold AUCs — re-derived from the run's artifacts alone (the cohort manifest, `splits.csv`
# and the patient-level predictions) with **independent code**: scipy's `ttest_ind`,
# `mannwhitneyu`, `chi2_contingency` and `fisher_exact`, scipy's `binomtest` for Clopper–Pearson
# intervals, scikit-learn's `roc_auc_score`, and a naive O(m·n) DeLong written from the 1988 paper
# (`alnm_core/crosscheck.py`, which uses none of the package's statistics). A reviewer runs
# this notebook on a run folder and either trusts the report or finds the row that differs.

# %% tags=["remove-from-report"]
import pandas as pd
from IPython.display import Markdown, display

from alnm_core import crosscheck as X
from alnm_core import notebook as nbk
from alnm_core.run import steps

_before = set(globals())

# %% tags=["parameters", "remove-from-report"]
run_dir = "../reports/notebook-smoke"  # str: run folder made by `alnm run` (its evaluation must have run)

# %% tags=["remove-from-report"]
ctx = nbk.start(globals(), _before, {"run_dir": str}, prepare_if_missing=False)
ctx.run(steps.evaluate)  # the numbers under review (a no-op when the run has evaluated)
check = X.crosscheck(ctx.run_dir)  # reads the artifacts only; writes nothing

# %%
display(Markdown(f"**{X.summary(check)}.**"))
shown = check.assign(check=check.ok.map({True: "✓", False: "✗"}).fillna("—"))
per_section = (shown.groupby("section", sort=False).check.value_counts().unstack(fill_value=0)
               .reindex(columns=["✓", "✗", "—"], fill_value=0))
display(per_section)

# %% [markdown]
# ## Rows that differ or were not re-derived
#
# A ✗ is a number the report shows that independent code does not reproduce (to 1e-6). A — is a
# number made with a method this check does not re-implement (a bootstrap or logit interval), or
# a test it does not cover; the `how` column says which.

# %%
odd = shown[shown.check != "✓"]
if odd.empty:
    display(Markdown("None: every headline number was re-derived and agrees."))
else:
    display(odd[["section", "item", "reported", "recomputed", "abs_diff", "check", "how"]]
            .style.format(precision=6, na_rep="").hide(axis="index"))

# %% [markdown]
# ## Every row

# %%
with pd.option_context("display.max_rows", None):
    display(shown[["section", "item", "reported", "recomputed", "abs_diff", "check", "how"]]
            .style.format(precision=6, na_rep="").hide(axis="index"))
