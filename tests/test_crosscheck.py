"""The reviewer's cross-check (alnm_core.crosscheck, notebook 06): independent code re-derives
every headline number of a run; a changed number is caught and named."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from alnm_core import crosscheck as X
from alnm_core.stats import delong_test


def test_naive_delong_agrees_with_the_fast_routine():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 80)
    a = y + rng.normal(0, 1.0, 80)
    b = np.round(y + rng.normal(0, 1.4, 80), 1)  # ties
    z, p = X._delong_pair(y, a, b)
    fast = delong_test(y, a, b)
    assert z == pytest.approx(fast.z, abs=1e-10) and p == pytest.approx(fast.p_value, abs=1e-10)


@pytest.mark.slow
def test_every_number_of_a_run_is_re_derived(smoke_run):
    check = X.crosscheck(smoke_run.root)
    assert set(check.section) >= {"Table 1", "Table 3", "DeLong (every pair)", "DeLong families",
                                  "Cross-validation", "Per-sequence CNN"}
    # the run's own cross-check artifact (notebook 6) says the same
    art = pd.read_csv(smoke_run.artifacts / "crosscheck.csv")
    assert len(art) == len(check) and (art.ok == True).sum() == (check.ok == True).sum()  # noqa: E712
    assert (check.ok == False).sum() == 0, check[check.ok == False].to_string()  # noqa: E712
    assert (check.ok == True).sum() > 200  # noqa: E712
    # every Table 3 row contributes its AUC, and every DeLong pair its p
    t3 = pd.read_csv(smoke_run.table3)
    assert (check[check.section == "Table 3"].item.str.endswith(" AUC")).sum() == len(t3)
    assert check.item.str.contains(" p$").sum() >= len(pd.read_csv(smoke_run.delong))


@pytest.mark.slow
def test_a_changed_number_is_caught_and_named(smoke_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run.root, run, ignore=shutil.ignore_patterns("models", "roi", "notebooks", "model"))
    d = pd.read_csv(run / "artifacts" / "delong.csv")
    d.loc[0, "p_value"] += 0.01
    d.to_csv(run / "artifacts" / "delong.csv", index=False)
    t1 = pd.read_csv(run / "artifacts" / "table1.csv", keep_default_na=False)
    i = t1.index[t1.characteristic.str.startswith("Age")][0]  # all patients: a t or U test
    t1["p_value"] = t1.p_value.astype(object)
    t1.loc[i, "p_value"] = str(float(t1.loc[i, "p_value"]) / 2)
    t1.to_csv(run / "artifacts" / "table1.csv", index=False)
    check = X.crosscheck(run)
    bad = check[check.ok == False]  # noqa: E712
    # the two changed numbers, and (when the pair's Holm / BH value is not capped at 1) the
    # adjusted p of the same pair re-derived from the changed p: nothing else
    assert bad.item.iloc[0].startswith("All patients: Age")
    assert f"{d.label_a[0]} vs {d.label_b[0]} p" in set(bad.item)
    assert 2 <= len(bad) <= 4 and set(bad.section) <= {"Table 1", "DeLong (every pair)", "DeLong families"}, bad
    assert "differ" in X.summary(check)
