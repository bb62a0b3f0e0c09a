"""One search trial, shared by the local path (:mod:`alnm_core.tune`) and Ray workers
(:mod:`alnm_core.tune_ray`): drawing its settings, applying them, training and scoring it on the
inner folds, and the Optuna objects both paths build alike (sampler, pruner, journal storage).

Example:
    >>> t, m = apply_params(TrainConfig(), MilConfig(), {"lr": 1e-4, "pooling": "mean"})
    >>> t.lr, m.pooling
    (0.0001, 'mean')
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .config import MilConfig, TrainConfig
from .roi import SequenceCrops


class TuneError(ValueError):
    """The search cannot run with what it was given; the message says what to change."""


def suggest(trial, space: dict[str, tuple], *, grid: bool) -> dict[str, Any]:
    """Draw a trial's settings from ``space`` (``grid``: every parameter categorical)."""
    out: dict[str, Any] = {}
    for name, values in space.items():
        if grid or name in ("batch_size", "pooling"):
            out[name] = trial.suggest_categorical(name, list(values))
        elif name == "epochs":
            out[name] = trial.suggest_int(name, int(values[0]), int(values[1]))
        else:  # lr, weight_decay: log-uniform
            out[name] = trial.suggest_float(name, float(values[0]), float(values[1]), log=True)
    return out


def apply_params(train: TrainConfig, mil: MilConfig, params: dict[str, Any]) -> tuple[TrainConfig, MilConfig]:
    """``train`` and ``mil`` with a search's chosen settings.

    Raises:
        TuneError: a parameter that is not a tuned one.
    """
    unknown = sorted(set(params) - {"lr", "weight_decay", "batch_size", "epochs", "pooling"})
    if unknown:
        raise TuneError(f"unknown tuned parameter(s) {unknown}")
    tkw = {k: params[k] for k in ("lr", "weight_decay", "batch_size", "epochs") if k in params}
    for k in ("batch_size", "epochs"):
        if k in tkw:
            tkw[k] = int(tkw[k])
    for k in ("lr", "weight_decay"):
        if k in tkw:
            tkw[k] = float(tkw[k])
    train = replace(train, **tkw)
    if "pooling" in params:
        mil = replace(mil, pooling=str(params["pooling"]))
    return train, mil


@dataclass(frozen=True)
class TrialJob:
    """Everything one trial needs (picklable: it travels to Ray workers).

    ``crops`` is the development patients' crops, or the path of their ``.npz`` (Ray).
    """

    model_kind: str
    params: dict
    train: TrainConfig
    mil: MilConfig
    folds: pd.DataFrame  # patient_id, label, inner_fold
    seed: int
    epochs: int
    metric: str
    crops: Any


def _crops_of(job: TrialJob) -> SequenceCrops:
    return job.crops if isinstance(job.crops, SequenceCrops) else SequenceCrops.load(Path(job.crops))


def _patient_metric(metric: str, label: np.ndarray, prob: np.ndarray) -> float:
    from .stats import auc

    if metric == "val_auc":
        return float(auc(label, prob))
    p = np.clip(prob, 1e-7, 1 - 1e-7)
    return float(-np.mean(label * np.log(p) + (1 - label) * np.log(1 - p)))


def run_trial(job: TrialJob, report: Callable[[int, float], None]) -> dict:
    """Train and score one trial on every inner fold.

    ``report(step, value)`` is called after every epoch (it raises to prune the trial).

    Returns:
        ``score`` (mean over folds), ``fold_scores``.

    Raises:
        TrainingError: the training failed (recorded as a failed trial by the caller).
    """
    from .aggregation import aggregate
    from .mil_training import train_mil_unit
    from .training import UnitFiles, train_unit

    crops = _crops_of(job)
    train, mil = apply_params(job.train, job.mil, job.params)
    train = replace(train, epochs=int(job.params.get("epochs", job.epochs)), selection="last",
                    keep_resume_state=False)
    stride = job.epochs  # steps per fold: the same fold and epoch compare across trials
    column = "val_auc" if job.metric == "val_auc" else "val_loss"
    scores = []
    for f in sorted(job.folds.inner_fold.unique()):
        roles = job.folds.assign(role=np.where(job.folds.inner_fold == f, "val", "train"))
        roles = roles[["patient_id", "label", "role"]]

        def on_epoch(row: dict, f: int = int(f)) -> None:
            report(f * stride + int(row["epoch"]), float(row[column]))

        with tempfile.TemporaryDirectory(prefix="alnm-trial-") as d:
            files = UnitFiles(Path(d) / "checkpoint.pt", Path(d) / "last.pt", Path(d) / "history.csv")
            seed = job.seed + 101 * (int(f) + 1)
            if job.model_kind == "attention_mil":
                res = train_mil_unit(crops, roles, train, mil, files, seed=seed,
                                     predict_roles=("val",), on_epoch=on_epoch,
                                     write_resume_state=False)
                pat = res.patients
            else:
                res = train_unit(crops, roles, train, files, seed=seed, predict_roles=("val",),
                                 on_epoch=on_epoch, write_resume_state=False)
                pat = aggregate(res.slices, train.aggregation)
        scores.append(_patient_metric(job.metric, pat.label.to_numpy(), pat.prob.to_numpy()))
    return {"score": float(np.mean(scores)), "fold_scores": [round(s, 6) for s in scores]}



def make_sampler(space: dict, *, grid: bool, seed: int):
    import optuna

    if grid:
        return optuna.samplers.GridSampler({k: list(v) for k, v in space.items()}, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(name: str):
    """``tune.pruner`` -> an Optuna pruner (see the module docstring)."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def journal_storage(path: str | Path):
    """An Optuna journal file storage (shared by the driver and Ray workers)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def finished_trials(study) -> int:
    import optuna

    return sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                           optuna.trial.TrialState.FAIL) for t in study.trials)
