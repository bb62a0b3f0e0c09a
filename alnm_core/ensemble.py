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

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: method column -> human label used in tables and figures (``weighted_vote`` is the headline:
#: its weights come from the split ``ensemble.weights_from`` names; see :func:`method_labels`)
METHODS = {
    "weighted_vote": "Multiparametric (weighted vote)",
    "weighted_vote_test_weights": "Multiparametric (weighted vote, test weights: paper-literal, optimistic)",
    "weighted_vote_fit_weights": "Multiparametric (weighted vote, development weights)",
    "soft_vote": "Equal-weight soft vote",
    "majority_vote": "Majority hard vote",
    "stacking": "Logistic stacking",
}


def method_labels(weights_from: str, fit_name: str = "validation") -> dict[str, str]:
    """Labels of the fusion columns for a run whose headline weights come from ``weights_from``.

    Args:
        weights_from: ``validation`` (the development predictions: validation split or out-of-
            fold) or ``test`` (the paper's literal choice).
        fit_name: how the development predictions are called in this run (``validation`` or
            ``out-of-fold``).
    """
    head = (f"{fit_name} weights" if weights_from == "validation"
            else "test weights: paper-literal, optimistic")
    return {
        "weighted_vote": f"Multiparametric (weighted vote, {head})",
        "weighted_vote_test_weights": METHODS["weighted_vote_test_weights"],
        "weighted_vote_fit_weights": f"Multiparametric (weighted vote, {fit_name} weights)",
        "soft_vote": METHODS["soft_vote"],
        "majority_vote": METHODS["majority_vote"],
        "stacking": f"Logistic stacking (fitted on {fit_name} predictions)",
    }


@dataclass(frozen=True, kw_only=True)
class VoteResult:
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
    return VoteResult(prob=H / w.sum(), H=H, threshold=float(thr), decision=(H >= thr - 1e-12).astype(int),
                      weights=dict(zip(probs.columns, w.tolist())))


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


def cross_fitted_stacking(probs: pd.DataFrame, labels, *, n_splits: int = 5, seed: int = 0,
                          C: float = 1.0) -> np.ndarray:
    """Stacking predictions for the patients it is fitted on, each from a stacker fitted on the
    other patients only (stratified ``n_splits`` folds, fewer when a class has fewer patients):
    what its Youden threshold and its development AUC are computed on, so that neither reuses
    a patient's own outcome.

    Raises:
        ValueError: fewer than 2 patients in a class.
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels).astype(int)
    k = min(n_splits, int(np.bincount(y, minlength=2).min()))
    if k < 2:
        raise ValueError("cross-fitted stacking needs at least 2 patients of each class")
    out = np.empty(len(y))
    for tr, held in StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        out[held] = fit_stacking(probs.iloc[tr], y[tr], C=C).predict_proba(
            _logit(probs.iloc[held].to_numpy()))[:, 1]
    return out


def _logit(p: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))


@dataclass(frozen=True, kw_only=True)
class FusionResult:
    """The fused predictions and what built them.

    Attributes:
        ensemble: ``patient_id, split, label``, each base model's probability and one column per
            fusion method (``weighted_vote`` is the headline; the variant with the other weights
            sits beside it: ``weighted_vote_test_weights`` or ``weighted_vote_fit_weights``).
        weights: per base model: development and test accuracy, both weight vectors
            (normalised to sum 1 for reading), the weights used by the headline vote, and the
            stacking coefficient.
    """

    ensemble: pd.DataFrame
    weights: pd.DataFrame


def _single(base: pd.DataFrame, name: str, fit: pd.Series, test: pd.Series, threshold: float,
            weights_from: str) -> FusionResult:
    out = base[["patient_id", "split", "label"]].copy()
    out["weighted_vote"] = base[name].to_numpy()
    out[name] = base[name].to_numpy()
    acc = {k: accuracies(base[[name]][m], base.label[m], threshold)[name] for k, m in (("fit", fit), ("test", test))}
    weights = pd.DataFrame({"model": [name], "acc_validation": [acc["fit"]], "acc_test": [acc["test"]],
                            "weight_validation": [1.0], "weight_test_paper_literal": [1.0],
                            "weight_above_chance": [1.0], "weight_used": [1.0], "weights_from": weights_from,
                            "weight_rule": "one model", "stacking_coef": [np.nan]}
                           ).merge(chance_level(base[[name]][fit], base.label[fit]), on="model")
    return FusionResult(ensemble=out, weights=weights)


def chance_level(probs: pd.DataFrame, labels) -> pd.DataFrame:
    """Each member's AUC on the fitting predictions with its DeLong 95% CI, and whether that CI
    reaches 0.5 (``chance_level``: the model is not shown to be better than chance)."""
    from .stats import auc_ci

    rows = []
    for c in probs.columns:
        try:
            ci = auc_ci(labels, probs[c], method="delong")
            rows.append({"model": c, "auc_fit": ci.auc, "auc_fit_low": ci.low, "auc_fit_high": ci.high,
                         "chance_level": bool(ci.low <= 0.5)})
        except ValueError:  # fewer than two patients of a class: nothing shown either way
            rows.append({"model": c, "auc_fit": np.nan, "auc_fit_low": np.nan, "auc_fit_high": np.nan,
                         "chance_level": True})
    return pd.DataFrame(rows)


def above_chance_weights(acc: dict[str, float], chance: pd.DataFrame) -> dict[str, float]:
    """Accuracy weights with the chance-level members set to 0 (unchanged if all are)."""
    flag = chance.set_index("model").chance_level
    out = {m: (0.0 if flag[m] else a) for m, a in acc.items()}
    return out if sum(out.values()) > 0 else dict(acc)


def fuse(predictions: dict[str, pd.DataFrame], *, fit_split: str = "val",
         weights_from: str = "validation", threshold: float = 0.5,
         weight_rule: str = "accuracy") -> FusionResult:
    """All fusion methods from per-sequence patient predictions.

    Args:
        predictions: sequence -> DataFrame ``patient_id, split, label, prob``.
        fit_split: the ``split`` value of the development predictions that weights and stacking
            are fitted on (``val``; ``dev`` for out-of-fold predictions).
        weights_from: ``validation`` (weights from accuracies on ``fit_split``) or ``test`` (the
            paper's: accuracies on the test split) for the headline ``weighted_vote``.
        threshold: the base models' decision threshold (for accuracies and hard votes).
        weight_rule: ``accuracy`` (the paper) or ``above_chance`` (chance-level members, by the
            DeLong CI of their AUC on ``fit_split``, get weight 0; see :func:`chance_level`).

    Returns:
        :class:`FusionResult`; fused rows are the patients predicted by every model. With one
        model there is nothing to fuse: ``weighted_vote`` is that model (weight 1) and the
        alternatives are left out.

    Raises:
        ValueError: unknown ``weights_from``, or a split without both classes.
    """
    if weights_from not in ("validation", "test"):
        raise ValueError(f"weights_from must be 'validation' or 'test', got {weights_from!r}")
    names = list(predictions)
    base = None
    for name, d in predictions.items():
        d = d[["patient_id", "split", "label", "prob"]].rename(columns={"prob": name})
        base = d if base is None else base.merge(d, on=["patient_id", "split", "label"], how="inner")
    assert base is not None
    probs = base[names]
    fit, test = base.split == fit_split, base.split == "test"
    if not fit.any():
        raise ValueError(f"no {fit_split!r} predictions to fit the fusion on")
    if len(names) == 1:  # one sequence: nothing to fuse; the headline is that model
        return _single(base, names[0], fit, test, threshold, weights_from)
    acc_fit = accuracies(probs[fit], base.label[fit], threshold)
    acc_test = accuracies(probs[test], base.label[test], threshold)
    chance = chance_level(probs[fit], base.label[fit])
    if weight_rule not in ("accuracy", "above_chance"):
        raise ValueError(f"weight_rule must be 'accuracy' or 'above_chance', got {weight_rule!r}")
    guarded = above_chance_weights(acc_fit, chance)
    fit_w = guarded if weight_rule == "above_chance" else acc_fit
    used, other = (fit_w, acc_test) if weights_from == "validation" else (acc_test, fit_w)
    out = base[["patient_id", "split", "label"]].copy()
    out["weighted_vote"] = weighted_vote(probs, used).prob
    alt = "weighted_vote_test_weights" if weights_from == "validation" else "weighted_vote_fit_weights"
    out[alt] = weighted_vote(probs, other).prob
    out["soft_vote"] = soft_vote(probs)
    out["majority_vote"] = majority_vote(probs, threshold)
    stack = fit_stacking(probs[fit], base.label[fit])
    out["stacking"] = stack.predict_proba(_logit(probs.to_numpy()))[:, 1]
    # the fitting patients' own predictions are cross-fitted: the threshold chosen on them
    # (Youden) and their AUC never reuse the stacker's fit to their outcomes
    out.loc[fit.to_numpy(), "stacking"] = cross_fitted_stacking(probs[fit], base.label[fit])
    for n in names:
        out[n] = probs[n].to_numpy()
    sf, st, su, sg = (sum(acc_fit.values()), sum(acc_test.values()), sum(used.values()),
                      sum(guarded.values()))
    weights = pd.DataFrame({
        "model": names,
        "acc_validation": [acc_fit[n] for n in names],
        "acc_test": [acc_test[n] for n in names],
        "weight_validation": [acc_fit[n] / sf if sf else np.nan for n in names],
        "weight_test_paper_literal": [acc_test[n] / st if st else np.nan for n in names],
        "weight_above_chance": [guarded[n] / sg if sg else np.nan for n in names],
        "weight_used": [used[n] / su if su else np.nan for n in names],
        "weights_from": weights_from,
        "weight_rule": weight_rule,
        "stacking_coef": stack.coef_[0],
    }).merge(chance, on="model")
    return FusionResult(ensemble=out, weights=weights)
