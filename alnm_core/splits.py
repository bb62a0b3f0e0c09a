"""Patient-level stratified splits: a fixed test set, and a development set split into train /
validation (hold-out) or into k folds (k-fold, optionally repeated).

Splitting is by patient, never by slice, so no patient's crops can sit on both sides. The test
part follows a ``test_where`` rule (e.g. one scanner), else the cohort's ``split`` column when it
has one (the paper's fixed 202 / 50 split), else a stratified random draw.

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


def stratified_pick(ids: np.ndarray, labels: np.ndarray, n_pick: int, rng: np.random.Generator) -> set:
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
    scheme: str = "holdout",
    test_where: str = "",
) -> pd.DataFrame:
    """Assign every patient to the test set or the development set (train / val for the
    hold-out design, ``dev`` with a fold for k-fold).

    Args:
        df: with ``patient_id`` and ``alnm`` (0/1); optional ``split`` (train/test/empty) and
            any column ``test_where`` names.
        test_size: test patients as a count (>= 1) or a fraction (< 1).
        val_fraction: ``holdout``: share of the non-test patients used for validation.
        n_folds: ``kfold``: stratified folds over the development patients (column ``fold`` =
            the first repeat's; test = -1). ``holdout`` has no folds (``fold`` = -1).
        seed: random seed.
        use_manifest_split: honour a non-empty ``split`` column.
        scheme: ``holdout`` or ``kfold``.
        test_where: ``column=value``: the patients with that value are the test set.

    Returns:
        DataFrame ``patient_id, label, split, fold`` in the input's order; ``split`` is
        ``train``/``val``/``test`` (holdout) or ``dev``/``test`` (kfold).

    Raises:
        SplitError: a class with too few patients for the requested parts.
    """
    if df["patient_id"].duplicated().any():
        dup = df.loc[df["patient_id"].duplicated(), "patient_id"].tolist()
        raise SplitError(f"duplicated patient_id(s) {dup[:5]}: a patient must appear once")
    if scheme not in ("holdout", "kfold"):
        raise SplitError(f"scheme must be holdout or kfold, got {scheme!r}")
    ids = df["patient_id"].to_numpy(dtype=object)
    y = df["alnm"].to_numpy(dtype=int)
    if set(np.unique(y)) - {0, 1}:
        raise SplitError("labels must be 0/1")
    for c in (0, 1):
        if (y == c).sum() < 3:
            raise SplitError(f"only {(y == c).sum()} patient(s) with alnm={c}; need >= 3 per class "
                             "for train, validation and test")
    rng = np.random.default_rng(seed)
    test = _fixed_test(df, ids, test_where, use_manifest_split)
    if test is None:
        n_test = int(round(test_size * len(ids))) if test_size < 1 else int(test_size)
        if not 2 <= n_test <= len(ids) - 4:
            raise SplitError(f"test size {n_test} leaves too few patients (cohort of {len(ids)})")
        test = stratified_pick(ids, y, n_test, rng)
    rest_mask = np.array([i not in test for i in ids])
    fold = np.full(len(ids), -1)
    if scheme == "holdout":
        n_val = max(2, int(round(val_fraction * rest_mask.sum())))
        val = stratified_pick(ids[rest_mask], y[rest_mask], n_val, rng)
        split = np.where(~rest_mask, "test", np.where([i in val for i in ids], "val", "train"))
        parts = ("train", "val", "test")
    else:
        split = np.where(~rest_mask, "test", "dev")
        fold[rest_mask] = assign_folds(y[rest_mask], n_folds, rng)
        parts = ("dev", "test")
    for part in parts:
        labels = set(y[split == part].tolist())
        if labels != {0, 1}:
            raise SplitError(f"the {part} split has only class(es) {sorted(labels)}; "
                             "a larger cohort or another seed is needed")
    return pd.DataFrame({"patient_id": ids, "label": y, "split": split, "fold": fold})


def _fixed_test(df: pd.DataFrame, ids: np.ndarray, test_where: str,
                use_manifest_split: bool) -> set | None:
    """The test set a rule or the manifest fixes, or None (draw it)."""
    if test_where:
        col, value = test_where.split("=", 1)
        if col not in df.columns:
            raise SplitError(f"split.test_where={test_where!r}: cohort.csv has no column {col!r} "
                             f"(columns: {list(df.columns)})")
        hit = df[col].astype(str).str.strip() == value.strip()
        if not hit.any() or hit.all():
            raise SplitError(f"split.test_where={test_where!r} selects {int(hit.sum())} of "
                             f"{len(df)} patients; the test set and the development set both need "
                             f"patients (values of {col}: {sorted(df[col].astype(str).unique())[:10]})")
        return set(ids[hit.to_numpy()].tolist())
    if use_manifest_split and "split" in df.columns:
        col = df["split"].fillna("").astype(str).str.strip()
        if (col != "").any():
            if (col == "").any():
                missing = df.loc[col == "", "patient_id"].tolist()[:5]
                raise SplitError(f"cohort.csv split column is empty for {missing}...: fill it for all or none")
            return set(ids[col.to_numpy() == "test"].tolist())
    return None


def assign_folds(y: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified fold numbers 0..n_folds-1 for labels ``y``: each class is dealt round-robin in
    random order, the second class continuing where the first stopped, so fold sizes differ by
    at most one and each fold's share of ALNM by at most one patient.

    Raises:
        SplitError: a fold would lack a class (fewer patients of a class than folds).
    """
    y = np.asarray(y, int)
    for c in (0, 1):
        if (y == c).sum() < n_folds:
            raise SplitError(f"only {(y == c).sum()} development patient(s) with alnm={c} for "
                             f"{n_folds} folds: every fold needs both classes (fewer folds?)")
    fold = np.full(y.size, -1)
    offset = 0
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold[idx] = (offset + np.arange(idx.size)) % n_folds
        offset += idx.size
    return fold


def fold_table(splits: pd.DataFrame, *, n_folds: int, repeats: int, seed: int) -> pd.DataFrame:
    """Folds of the development patients for every repeat: ``patient_id, repeat, fold``.

    Repeat 0 is the ``fold`` column of ``splits``; repeat r > 0 draws new stratified folds from
    a generator seeded with ``(seed, r)``.
    """
    dev = splits[splits.split == "dev"]
    parts = [pd.DataFrame({"patient_id": dev.patient_id, "repeat": 0, "fold": dev.fold})]
    for r in range(1, repeats):
        rng = np.random.default_rng([seed, r])
        parts.append(pd.DataFrame({"patient_id": dev.patient_id, "repeat": r,
                                   "fold": assign_folds(dev.label.to_numpy(), n_folds, rng)}))
    return pd.concat(parts, ignore_index=True)


def check_no_leakage(splits: pd.DataFrame) -> None:
    """Raise SplitError if a patient appears in more than one split."""
    counts = splits.groupby("patient_id")["split"].nunique()
    leaked = counts[counts > 1].index.tolist()
    if leaked:
        raise SplitError(f"patients in more than one split: {leaked[:10]}")
