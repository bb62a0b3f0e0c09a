"""Fusion of the per-sequence models: the paper's weighted voting and alternatives.

The paper (eq. 2-3) weights each base model by its accuracy, sums ``H(x) = sum_i w_i h_i(x)``
over the models' probabilities ``h_i`` and calls a case positive when ``H(x)`` reaches half the
sum of the weights. Eq. 2 as printed, ``w_i = (sum_i ACC_i) / 3``, gives every model the same
weight (the mean accuracy); the text says the weight is computed "according to" each model's
accuracy, so we read it as ``w_i = ACC_i``. The decision rule then equals "weighted mean
probability >= 0.5", and that weighted mean is the ensemble's score for ROC analysis.

The paper took the accuracies on the *test* set, which lets the test labels shape the model that
is then evaluated on them. Our default takes them on the validation split; the paper-literal
variant is kept, labelled optimistic.

Example:
    >>> import pandas as pd
    >>> probs = pd.DataFrame({"T2WI": [0.9, 0.2], "DWI": [0.4, 0.6], "DCE": [0.3, 0.7]})
    >>> r = weighted_vote(probs, {"T2WI": 0.84, "DWI": 0.64, "DCE": 0.54})
    >>> r.decision.tolist()
    [1, 0]
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

#: method name -> human label used in tables and figures
METHODS = {
    "weighted_vote": "Multiparametric (weighted vote, validation weights)",
    "weighted_vote_test_weights": "Multiparametric (weighted vote, test weights: paper-literal, optimistic)",
    "soft_vote": "Equal-weight soft vote",
    "majority_vote": "Majority hard vote",
    "stacking": "Logistic stacking (fitted on validation)",
}


class VoteResult(NamedTuple):
    prob: np.ndarray  # H(x) / sum(w): the ensemble score in [0, 1]
    H: np.ndarray  # sum_i w_i h_i(x)
    threshold: float  # sum(w) / 2
    decision: np.ndarray  # 1 where H >= threshold
    weights: dict


def _check_probs(probs: pd.DataFrame) -> pd.DataFrame:
    if probs.empty or probs.shape[1] < 2:
        raise ValueError("fusion needs at least two models' probabilities")
    if probs.isna().any().any():
        bad = probs.columns[probs.isna().any()].tolist()
        raise ValueError(f"missing probabilities for models {bad}: every patient needs every model")
    if ((probs < 0) | (probs > 1)).any().any():
        raise ValueError("probabilities must lie in [0, 1]")
    return probs


def accuracies(probs: pd.DataFrame, labels, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy of each model (column) at ``threshold``."""
    y = np.asarray(labels).astype(int)
    if len(y) != len(probs):
        raise ValueError("labels and probabilities differ in length")
    return {c: float(((probs[c].to_numpy() >= threshold).astype(int) == y).mean()) for c in probs}


def weighted_vote(probs: pd.DataFrame, weights: dict[str, float]) -> VoteResult:
    """Paper eq. 3 with ``w_i`` = the given weights (accuracies).

    Args:
        probs: one column per base model, one row per patient.
        weights: model -> weight (>= 0, not all 0).
    """
    probs = _check_probs(probs)
    missing = set(probs.columns) - set(weights)
    if missing:
        raise ValueError(f"no weight for models {sorted(missing)}")
    w = np.array([float(weights[c]) for c in probs.columns])
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be >= 0 and not all 0, got {dict(zip(probs.columns, w))}")
    H = probs.to_numpy() @ w
    thr = w.sum() / 2
    return VoteResult(H / w.sum(), H, float(thr), (H >= thr - 1e-12).astype(int),
                      dict(zip(probs.columns, w.tolist())))


def soft_vote(probs: pd.DataFrame) -> np.ndarray:
    """Mean probability (equal weights)."""
    return _check_probs(probs).to_numpy().mean(axis=1)


def majority_vote(probs: pd.DataFrame, threshold: float = 0.5) -> np.ndarray:
    """Share of models voting positive at ``threshold`` (>= 0.5 means a majority)."""
    return (_check_probs(probs).to_numpy() >= threshold).mean(axis=1)


def fit_stacking(probs: pd.DataFrame, labels, *, C: float = 1.0):
    """Logistic regression on the models' logits, fitted on (validation) predictions."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels).astype(int)
    if len(set(y.tolist())) < 2:
        raise ValueError("stacking needs both classes in the fitting split")
    X = _logit(_check_probs(probs).to_numpy())
    return LogisticRegression(C=C).fit(X, y)


def _logit(p: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))


def fuse(predictions: dict[str, pd.DataFrame], *, threshold: float = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All fusion methods from per-sequence patient predictions.

    Args:
        predictions: sequence -> DataFrame ``patient_id, split, label, prob``.
        threshold: the base models' decision threshold (for accuracies and hard votes).

    Returns:
        ``(ensemble, weights)``: ``ensemble`` has ``patient_id, split, label`` and one
        probability column per method in :data:`METHODS`, for patients predicted by every model;
        ``weights`` has one row per base model: validation and test accuracy, both weight
        vectors (normalised to sum 1 for reading) and the stacking coefficient.
    """
    names = list(predictions)
    base = None
    for name, d in predictions.items():
        d = d[["patient_id", "split", "label", "prob"]].rename(columns={"prob": name})
        base = d if base is None else base.merge(d, on=["patient_id", "split", "label"], how="inner")
    assert base is not None
    probs = base[names]
    val, test = base.split == "val", base.split == "test"
    acc_val = accuracies(probs[val], base.label[val], threshold)
    acc_test = accuracies(probs[test], base.label[test], threshold)
    out = base[["patient_id", "split", "label"]].copy()
    vv = weighted_vote(probs, acc_val)
    vt = weighted_vote(probs, acc_test)
    out["weighted_vote"] = vv.prob
    out["weighted_vote_test_weights"] = vt.prob
    out["soft_vote"] = soft_vote(probs)
    out["majority_vote"] = majority_vote(probs, threshold)
    stack = fit_stacking(probs[val], base.label[val])
    out["stacking"] = stack.predict_proba(_logit(probs.to_numpy()))[:, 1]
    for n in names:
        out[n] = probs[n].to_numpy()
    sv, st = sum(acc_val.values()), sum(acc_test.values())
    weights = pd.DataFrame({
        "model": names,
        "acc_validation": [acc_val[n] for n in names],
        "acc_test": [acc_test[n] for n in names],
        "weight_validation": [acc_val[n] / sv if sv else np.nan for n in names],
        "weight_test_paper_literal": [acc_test[n] / st if st else np.nan for n in names],
        "stacking_coef": stack.coef_[0],
    })
    return out, weights
