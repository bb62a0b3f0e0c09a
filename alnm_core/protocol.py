"""The validation protocol: which patients each model of the study fits, selects on and predicts.

One splitter serves every model: the CNN training grid (one network per fold), the clinical
baseline and the radiomics models (cross-fitted). The test set is fixed first (``splits.csv``,
:mod:`alnm_core.splits`); inside the development set:

* hold-out (``split.scheme=holdout``): one fit per model on the ``train`` patients; the ``val``
  patients choose checkpoints, thresholds and ensemble weights; everyone is predicted;
* k-fold (``split.scheme=kfold``): for each repeat and fold, one fit on the other folds
  (minus a ``val`` part carved for checkpoint choice when ``train.selection=best_val_auc``),
  predicting its own fold (``oof``) and the test set; and one **final** fit on every
  development patient (the same ``val`` carving), which alone scores the test set. A
  development patient's probability is the mean over repeats of its out-of-fold predictions; a
  test patient's is the final model's (:func:`pool`).

Why a final refit: everything chosen on the development set (Youden thresholds, ensemble
weights, stacking, recalibration maps) is chosen on out-of-fold predictions, each made by one
model; the final model's test predictions are of the same kind (one model each), so those
choices transport to the test set as chosen. The mean of the k x r fold models, the
alternative, has a narrower spread than any one model's scores, so a threshold chosen on
single-model out-of-fold scores would not give the test set the operating point it was chosen
for (issue 23). The fold models still predict the test set, for the fold-to-fold spread of
their test AUCs.

Every role table is checked (:func:`check_roles`) and every pooled prediction again
(:func:`pool`): a patient predicted out of sample by a model that fitted or selected on it is a
:class:`LeakageError`, never a silent optimism.

Example:
    >>> import pandas as pd
    >>> splits = pd.DataFrame({"patient_id": list("abcdef"), "label": [1, 0, 1, 0, 1, 0],
    ...                        "split": ["train", "train", "val", "val", "test", "test"]})
    >>> roles(splits, Fold(), folds_table=None).role.tolist()
    ['train', 'train', 'val', 'val', 'test', 'test']
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from .splits import stratified_pick

#: roles a fit may learn from (``train``) or choose its checkpoint on (``val``)
SEEN = ("train", "val")
#: roles a fit predicts out of sample (``oof``: its held-out fold; ``test``)
HELD_OUT = ("oof", "test")


class LeakageError(RuntimeError):
    """A patient would be predicted by a model that saw it (a bug, never a user error)."""


@dataclass(frozen=True)
class Fold:
    """One fit of the protocol: the hold-out fit (``fold=None``), a repeat's fold, or the
    k-fold design's final fit on every development patient (``final=True``)."""

    repeat: int = 0
    fold: int | None = None
    final: bool = False

    @property
    def id(self) -> str:
        """``holdout``, ``r<repeat>-f<fold>`` or ``final`` (the unit folder's name)."""
        return "final" if self.final else "holdout" if self.fold is None else f"r{self.repeat}-f{self.fold}"

    @property
    def holdout(self) -> bool:
        return self.fold is None and not self.final

    def __str__(self) -> str:
        return self.id


def fits(*, scheme: str, n_folds: int, repeats: int) -> list[Fold]:
    """Every fit of the protocol, in the order they are run: one (hold-out), or one per repeat
    and fold and the final fit on every development patient (k-fold)."""
    if scheme == "holdout":
        return [Fold()]
    return [Fold(r, k) for r in range(repeats) for k in range(n_folds)] + [Fold(final=True)]


def scoring_test(units: Sequence) -> list:
    """Of a model's units (anything with ``.job.fold`` or ``.fold``), those whose predictions
    are the test set's: the final fit (k-fold), or the one hold-out fit."""
    def fold_of(u):
        return u.job.fold if hasattr(u, "job") else u.fold
    final = [u for u in units if fold_of(u).final]
    return final or list(units)


def fold_seed(seed: int, fold: Fold) -> int:
    """The seed of a fit: the run's seed (hold-out and final) or ``seed + 1000 * (repeat + 1) + fold``."""
    return seed if fold.fold is None else seed + 1000 * (fold.repeat + 1) + fold.fold


def roles(splits: pd.DataFrame, fold: Fold, *, folds_table: pd.DataFrame | None,
          selection: str = "last", val_fraction: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """``patient_id, label, role`` of one fit.

    Hold-out: the roles are the split (``train``, ``val``, ``test``). K-fold: the development
    patients of ``fold`` in its repeat are ``oof``, the other development patients ``train``,
    with a stratified ``val`` part carved from them when ``selection="best_val_auc"``; the
    final fit trains on every development patient (the same carving).

    Raises:
        LeakageError: a patient both fitted and predicted out of sample.
        ValueError: a k-fold fit without the folds table.
    """
    if fold.holdout:
        out = splits[["patient_id", "label", "split"]].rename(columns={"split": "role"})
        check_roles(out, fold)
        return out
    if fold.final:
        out = splits[["patient_id", "label"]].copy()
        out["role"] = np.where(splits.split == "test", "test", "train")
        return _carve_val(out, fold, selection, val_fraction, seed)
    if folds_table is None:
        raise ValueError(f"{fold}: k-fold fits need the folds table (folds.csv)")
    in_test = sorted(set(folds_table.patient_id) & set(splits.patient_id[splits.split == "test"]))
    if in_test:
        raise LeakageError(f"{fold}: test patients in the folds table would be fitted: {in_test[:5]}")
    f = folds_table[folds_table["repeat"] == fold.repeat].set_index("patient_id")["fold"]
    out = splits[["patient_id", "label"]].copy()
    k = out.patient_id.map(f)
    lost = sorted(out.patient_id[(splits.split != "test").to_numpy() & k.isna().to_numpy()])
    if lost:
        raise ValueError(f"{fold}: development patients without a fold in folds.csv: {lost[:5]}")
    out["role"] = np.where(splits.split == "test", "test", np.where(k == fold.fold, "oof", "train"))
    return _carve_val(out, fold, selection, val_fraction, seed)


def _carve_val(out: pd.DataFrame, fold: Fold, selection: str, val_fraction: float, seed: int) -> pd.DataFrame:
    """A stratified ``val`` part of the training patients for checkpoint choice (best_val_auc)."""
    if selection == "best_val_auc":
        tr = out[out.role == "train"]
        n_val = max(2, int(round(val_fraction * len(tr))))
        rng = np.random.default_rng([seed, fold.repeat, 1000 if fold.final else fold.fold, 7])
        val = stratified_pick(tr.patient_id.to_numpy(dtype=object), tr.label.to_numpy(), n_val, rng)
        out.loc[out.patient_id.isin(val), "role"] = "val"
    check_roles(out, fold)
    return out


def check_roles(table: pd.DataFrame, what: object) -> None:
    """Assert that no patient a fit predicts out of sample is fitted or selected on.

    Raises:
        LeakageError: naming the patients.
    """
    seen = set(table.loc[table.role.isin(SEEN), "patient_id"])
    held = set(table.loc[table.role.isin(HELD_OUT), "patient_id"])
    both = sorted(seen & held)
    if both or table.patient_id.duplicated().any():
        raise LeakageError(f"{what}: patients both fitted and predicted out of sample: {both[:5]}")


def pool(results: Sequence[tuple[Fold, pd.DataFrame, pd.DataFrame]], splits: pd.DataFrame, *,
         excluded: Iterable[str] = (), what: str = "") -> pd.DataFrame:
    """Patient-level predictions of a model from its fits.

    Args:
        results: per fit ``(fold, roles, predictions)``; predictions hold ``patient_id``,
            ``split`` (the role it was predicted in), ``prob`` and any other per-patient column
            (the first value per patient is kept, e.g. ``n_slices``).
        splits: the run's split (``patient_id, label, split``).
        excluded: patients left out of every model (ROI exclusions).

    Returns:
        Hold-out: the one fit's predictions. K-fold: ``patient_id, split (dev/test), label,
        prob`` (+ kept columns) in the order of ``splits``: a development patient's mean
        out-of-fold probability over repeats, a test patient's the final fit's (the mean over
        every fit when there is no final fit).

    Raises:
        LeakageError: an out-of-sample prediction from a fit that saw the patient, or a
            development patient without exactly one out-of-fold prediction per repeat.
    """
    for fold, role_table, pred in results:
        seen = set(role_table.loc[role_table.role.isin(SEEN), "patient_id"])
        leaked = sorted(set(pred.loc[pred.split.isin(HELD_OUT), "patient_id"]) & seen)
        if leaked:
            raise LeakageError(f"{what} {fold}: predicted patients it was fitted on: {leaked[:5]}")
    if len(results) == 1 and results[0][0].holdout:
        return results[0][2].reset_index(drop=True)
    finals = [i for i, (f, _, _) in enumerate(results) if f.final]
    if len(finals) > 1:
        raise LeakageError(f"{what}: {len(finals)} final fits")
    long = pd.concat([p.assign(repeat=f.repeat, fold=f.fold, final=f.final) for f, _, p in results], ignore_index=True)
    if finals:  # the final fit alone scores the test set; the fold fits only their own folds
        long = long[long.final == (long.split == "test")]
    long = long.drop(columns="final")
    dev = set(splits.loc[splits.split == "dev", "patient_id"]) - set(excluded)
    oof = long[long.split == "oof"]
    for rep, g in oof.groupby("repeat"):
        counts = g.patient_id.value_counts()
        if set(counts.index) != dev or (counts != 1).any():
            bad = sorted((dev - set(counts.index)) | set(counts.index[counts != 1]))
            raise LeakageError(f"{what}, repeat {rep}: development patients without exactly one "
                               f"out-of-fold prediction: {bad[:5]}")
    keep = [c for c in long.columns if c not in ("patient_id", "split", "label", "prob", "repeat", "fold")]
    lab = splits.set_index("patient_id").label
    parts = []
    for part, frame in (("dev", oof), ("test", long[long.split == "test"])):
        g = frame.groupby("patient_id", sort=False)
        mean = g.prob.mean()
        parts.append(pd.DataFrame({"patient_id": mean.index, "split": part,
                                   "label": lab.reindex(mean.index).to_numpy(), "prob": mean.to_numpy(),
                                   **{c: g[c].first().reindex(mean.index).to_numpy() for c in keep}}))
    order = {p: i for i, p in enumerate(splits.patient_id)}
    out = pd.concat(parts, ignore_index=True)
    return out.iloc[np.argsort([order[p] for p in out.patient_id])].reset_index(drop=True)


def cross_fitted(fit_predict: Callable[[pd.Index, pd.Index], pd.Series], splits: pd.DataFrame,
                 folds_table: pd.DataFrame | None) -> pd.DataFrame:
    """Predictions of a model that needs no checkpoint choice (the clinical baseline, the
    radiomics models), fitted by the same protocol as the CNNs.

    ``fit_predict(train_ids, predict_ids) -> Series of probabilities indexed by patient_id``.
    Hold-out: fitted on the ``train`` patients, predicting everyone. K-fold: one fit per repeat
    and fold on the other development patients, predicting the fold, and the final fit on every
    development patient, predicting the test set; pooled by :func:`pool`.

    Returns:
        ``patient_id, split, label, prob`` in the order of ``splits``.
    """
    ids = splits.patient_id
    if folds_table is None:
        r = roles(splits, Fold(), folds_table=None)
        prob = fit_predict(pd.Index(ids[r.role == "train"]), pd.Index(ids))
        return splits[["patient_id", "split", "label"]].assign(prob=prob.reindex(ids).to_numpy())
    grid = sorted({(int(a), int(b)) for a, b in zip(folds_table["repeat"], folds_table["fold"])})
    results = []
    for rep, k in grid:
        fold = Fold(rep, k)
        r = roles(splits, fold, folds_table=folds_table)
        held = pd.Index(r.patient_id[r.role.isin(HELD_OUT)])
        p = fit_predict(pd.Index(r.patient_id[r.role.isin(SEEN)]), held)
        pred = r[r.role.isin(HELD_OUT)][["patient_id", "role"]].rename(columns={"role": "split"})
        results.append((fold, r, pred.assign(prob=p.reindex(pred.patient_id).to_numpy())))
    final = Fold(final=True)  # every development patient of the folds table: the test set's model
    r = roles(splits[splits.patient_id.isin(set(folds_table.patient_id)) | (splits.split == "test")],
              final, folds_table=folds_table)
    held = pd.Index(r.patient_id[r.role == "test"])
    p = fit_predict(pd.Index(r.patient_id[r.role.isin(SEEN)]), held)
    results.append((final, r, pd.DataFrame({"patient_id": held, "split": "test",
                                            "prob": p.reindex(held).to_numpy()})))
    pooled = pool(results, splits[splits.patient_id.isin(set(folds_table.patient_id)) | (splits.split == "test")],
                  what="cross-fitted model").set_index("patient_id")
    return splits[["patient_id", "split", "label"]].assign(prob=pooled.prob.reindex(ids).to_numpy())
