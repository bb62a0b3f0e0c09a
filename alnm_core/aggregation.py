"""Slice predictions -> one probability per patient (``train.aggregation``).

The paper trains on every tumour slice and evaluates patients; how a patient's slice
probabilities become one number is a choice the paper leaves open: their mean (default), their
maximum, or the slice with the largest tumour area. Pure pandas (no torch), so readers of saved
predictions need not import the training stack.
"""
from __future__ import annotations

import pandas as pd


def aggregate(slices: pd.DataFrame, how: str = "mean") -> pd.DataFrame:
    """Slice probabilities -> one per patient.

    Args:
        slices: ``patient_id, split, label, prob`` (+ ``area_mm2`` for ``largest``).
        how: ``mean`` of the slices, ``max``, or the slice with the ``largest`` tumour area.

    Returns:
        ``patient_id, split, label, prob, n_slices`` (one row per patient, input order).

    Example:
        >>> s = pd.DataFrame({"patient_id": ["a", "a", "b"], "split": "test", "label": [1, 1, 0],
        ...                   "prob": [0.2, 0.6, 0.3]})
        >>> aggregate(s).prob.round(2).tolist()
        [0.4, 0.3]
    """
    if how not in ("mean", "max", "largest"):
        raise ValueError(f"aggregation must be mean, max or largest, got {how!r}")
    g = slices.groupby("patient_id", sort=False)
    if how == "largest":
        idx = g["area_mm2"].idxmax()
        prob = slices.loc[idx.to_numpy()].set_index("patient_id")["prob"]
    else:
        prob = g["prob"].agg(how)
    first = g[["split", "label"]].first()
    out = first.assign(prob=prob, n_slices=g.size()).reset_index()
    return out[["patient_id", "split", "label", "prob", "n_slices"]]
