"""Patient-level stratified splits: train / validation / test, plus k folds.

Splitting is by patient, never by slice, so no patient's crops can sit on both sides. The test
part follows the cohort's ``split`` column when it has one (the paper's fixed 202 / 50 split),
else a stratified random draw; validation is carved, stratified, from the non-test patients.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"patient_id": [f"P{i}" for i in range(20)], "alnm": [0, 1] * 10})
    >>> s = make_splits(df, test_size=4, val_fraction=0.25, seed=0)
    >>> s.split.value_counts().to_dict()
    {'train': 12, 'test': 4, 'val': 4}
"""
from __future__ import annotations

import numpy as np
import pandas as pd


class SplitError(ValueError):
    """A split that cannot be made (too few patients of a class, bad assignment)."""


def _stratified_pick(ids: np.ndarray, labels: np.ndarray, n_pick: int, rng: np.random.Generator) -> set:
    """Pick ``n_pick`` ids keeping the label proportions (largest-remainder allocation)."""
    classes = np.unique(labels)
    want = {c: n_pick * np.mean(labels == c) for c in classes}
    alloc = {c: int(np.floor(w)) for c, w in want.items()}
    rest = n_pick - sum(alloc.values())
    for c in sorted(classes, key=lambda c: want[c] - alloc[c], reverse=True)[:rest]:
        alloc[c] += 1
    picked: set = set()
    for c in classes:
        pool = np.sort(ids[labels == c])
        k = min(alloc[c], len(pool))
        picked.update(rng.choice(pool, size=k, replace=False).tolist())
    return picked


def make_splits(
    df: pd.DataFrame,
    *,
    test_size: float = 0.2,
    val_fraction: float = 0.2,
    n_folds: int = 5,
    seed: int = 42,
    use_manifest_split: bool = True,
) -> pd.DataFrame:
    """Assign every patient to train, val or test, and a fold over train + val.

    Args:
        df: with ``patient_id`` and ``alnm`` (0/1); optional ``split`` (train/test/empty).
        test_size: test patients as a count (>= 1) or a fraction (< 1).
        val_fraction: share of the non-test patients used for validation.
        n_folds: stratified folds over the non-test patients (column ``fold``; test = -1).
        seed: random seed.
        use_manifest_split: honour a non-empty ``split`` column.

    Returns:
        DataFrame ``patient_id, label, split, fold`` in the input's order.

    Raises:
        SplitError: a class with too few patients for the requested parts.
    """
    if df["patient_id"].duplicated().any():
        dup = df.loc[df["patient_id"].duplicated(), "patient_id"].tolist()
        raise SplitError(f"duplicated patient_id(s) {dup[:5]}: a patient must appear once")
    ids = df["patient_id"].to_numpy(dtype=object)
    y = df["alnm"].to_numpy(dtype=int)
    if set(np.unique(y)) - {0, 1}:
        raise SplitError("labels must be 0/1")
    for c in (0, 1):
        if (y == c).sum() < 3:
            raise SplitError(f"only {(y == c).sum()} patient(s) with alnm={c}; need >= 3 per class "
                             "for train, validation and test")
    rng = np.random.default_rng(seed)
    fixed = None
    if use_manifest_split and "split" in df.columns:
        col = df["split"].fillna("").astype(str).str.strip()
        if (col != "").any():
            if (col == "").any():
                missing = df.loc[col == "", "patient_id"].tolist()[:5]
                raise SplitError(f"cohort.csv split column is empty for {missing}...: fill it for all or none")
            fixed = col.to_numpy()
    if fixed is not None:
        test = set(ids[fixed == "test"].tolist())
    else:
        n_test = int(round(test_size * len(ids))) if test_size < 1 else int(test_size)
        if not 2 <= n_test <= len(ids) - 4:
            raise SplitError(f"test size {n_test} leaves too few patients (cohort of {len(ids)})")
        test = _stratified_pick(ids, y, n_test, rng)
    rest_mask = np.array([i not in test for i in ids])
    n_val = max(2, int(round(val_fraction * rest_mask.sum())))
    val = _stratified_pick(ids[rest_mask], y[rest_mask], n_val, rng)
    split = np.where([i in test for i in ids], "test", np.where([i in val for i in ids], "val", "train"))
    for part in ("train", "val", "test"):
        labels = set(y[split == part].tolist())
        if labels != {0, 1}:
            raise SplitError(f"the {part} split has only class(es) {sorted(labels)}; "
                             "a larger cohort or another seed is needed")
    fold = np.full(len(ids), -1)
    for c in (0, 1):
        idx = np.flatnonzero(rest_mask & (y == c))
        idx = rng.permutation(idx)
        fold[idx] = np.arange(len(idx)) % n_folds
    return pd.DataFrame({"patient_id": ids, "label": y, "split": split, "fold": fold})


def check_no_leakage(splits: pd.DataFrame) -> None:
    """Raise SplitError if a patient appears in more than one split."""
    counts = splits.groupby("patient_id")["split"].nunique()
    leaked = counts[counts > 1].index.tolist()
    if leaked:
        raise SplitError(f"patients in more than one split: {leaked[:10]}")
