from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alnm_core.splits import SplitError, check_no_leakage, make_splits


def _cohort(n_pos=98, n_neg=154):
    return pd.DataFrame({"patient_id": [f"P{i:03d}" for i in range(n_pos + n_neg)],
                         "alnm": [1] * n_pos + [0] * n_neg})


def test_paper_sized_split_is_stratified_and_patient_level():
    s = make_splits(_cohort(), test_size=50, val_fraction=0.2, seed=1)
    assert (s.split == "test").sum() == 50
    test = s[s.split == "test"]
    assert abs(test.label.mean() - 98 / 252) < 0.03
    check_no_leakage(s)
    assert s.patient_id.is_unique
    assert set(s.loc[s.split != "test", "fold"]) == set(range(5))
    assert (s.loc[s.split == "test", "fold"] == -1).all()
    # same seed -> same split; another seed -> another
    assert make_splits(_cohort(), test_size=50, seed=1).equals(make_splits(_cohort(), test_size=50, seed=1))
    assert not make_splits(_cohort(), test_size=50, seed=2).equals(make_splits(_cohort(), test_size=50, seed=1))


def test_fixed_manifest_split_is_honoured():
    df = _cohort(20, 30)
    df["split"] = np.where(np.arange(50) % 5 == 0, "test", "train")
    s = make_splits(df, seed=0)
    assert (s.split == "test").to_numpy().tolist() == (df.split == "test").tolist()
    assert (s.split == "val").sum() > 0


def test_refusals():
    with pytest.raises(SplitError, match="only 2 patient"):
        make_splits(_cohort(2, 30))
    df = _cohort(10, 10)
    df.loc[3, "patient_id"] = df.loc[4, "patient_id"]
    with pytest.raises(SplitError, match="duplicated"):
        make_splits(df)
    leaked = pd.DataFrame({"patient_id": ["A", "A"], "split": ["train", "test"]})
    with pytest.raises(SplitError, match="more than one split"):
        check_no_leakage(leaked)
