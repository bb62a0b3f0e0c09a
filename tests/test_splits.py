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
    assert (s.fold == -1).all()  # the hold-out design has no folds
    k = make_splits(_cohort(), test_size=50, n_folds=5, seed=1, scheme="kfold")
    assert set(k.split) == {"dev", "test"} and (k.split == "test").equals(s.split == "test")
    dev = k[k.split == "dev"]
    assert set(dev.fold) == set(range(5)) and (k.loc[k.split == "test", "fold"] == -1).all()
    per_fold = dev.groupby("fold").label.agg(["size", "mean"])
    assert per_fold["size"].max() - per_fold["size"].min() <= 1       # balanced folds
    assert per_fold["mean"].max() - per_fold["mean"].min() < 0.06     # stratified
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


def test_repeated_folds_and_a_test_rule():
    from alnm_core.splits import fold_table

    df = _cohort(20, 30)
    df["field_strength"] = np.where(np.arange(50) % 3 == 0, "3T", "1.5T")
    s = make_splits(df, n_folds=3, seed=4, scheme="kfold", test_where="field_strength=3T")
    assert set(s.loc[s.split == "test", "patient_id"]) == set(df.loc[df.field_strength == "3T", "patient_id"])
    folds = fold_table(s, n_folds=3, repeats=2, seed=4)
    assert len(folds) == 2 * (s.split == "dev").sum()
    assert folds.groupby("repeat").patient_id.apply(lambda x: x.is_unique).all()
    r0, r1 = (folds[folds.repeat == r].set_index("patient_id").fold for r in (0, 1))
    assert not r0.equals(r1)  # another repeat, other folds
    with pytest.raises(SplitError, match="no column 'site'"):
        make_splits(df, scheme="kfold", test_where="site=B")
    with pytest.raises(SplitError, match="selects 0 of 50"):
        make_splits(df, scheme="kfold", test_where="field_strength=7T")
    with pytest.raises(SplitError, match="for 40 folds"):
        make_splits(df, scheme="kfold", n_folds=40)
