"""The hyperparameter search (``tune.*``): Optuna trials scored on inner validation folds of
development patients only.

:func:`search` is the step's core. It splits the development patients it is given into
``tune.inner_folds`` stratified folds; every trial trains the model kind (``slice_vote``:
:func:`alnm_core.training.train_unit`; ``attention_mil``:
:func:`alnm_core.mil_training.train_mil_unit`) on k-1 folds and scores the held-out fold,
k times, and its score is the mean (``tune.metric`` on the patient predictions of the saved
model at the last epoch). Every trial uses the same folds and the same training seeds, so
trials differ only by their settings. A test patient among the development patients is a
:class:`LeakageError` before anything is trained, and only the development patients' crops are
handed to the trials.

* Sampler: the ``paper`` grid runs on Optuna's grid sampler (a seeded random order of the 12
  combinations); ranges run on TPE (seeded).
* Pruning (``tune.pruner``): each epoch of each inner fold reports the validation metric of the
  unit's history at step ``fold * epochs + epoch`` (the same fold and epoch are compared across
  trials); ``median`` prunes a trial below the median of the earlier trials at that step (after
  2 finished trials and the first epoch), ``successive_halving`` is Optuna's asynchronous
  successive halving (rungs at 1, 3, 9, ... steps). For ``slice_vote`` the history's
  ``val_loss`` is slice-level; its ``val_auc`` and every final score are patient-level.
* A trial whose training fails (e.g. the loss diverges at learning rate 1e-3) is recorded as
  ``fail`` with its message; the search goes on.
* ``executor="ray"`` runs the same trials as Ray tasks (:mod:`alnm_core.tune_ray`): the driver
  asks Optuna for each trial's settings and tells it the result, the workers report their
  per-epoch values to the same Optuna study through a journal file, so pruning works across
  workers. With one trial at a time (``run.cpus_per_task`` = all CPUs) the trials are those of
  the local path; with several at once, TPE proposes from fewer finished trials (the grid is
  the grid either way).

Nesting (``tune.nested``) is the caller's loop: :func:`search_plan` gives, per outer fold, the
development patients a search may use and the patients it must not see.

Example:
    >>> res = search(crops=crops, patients=dev, model_kind="attention_mil", cfg=cfg,
    ...              seed=42, forbidden_ids=test_ids)            # doctest: +SKIP
    >>> train_cfg, mil_cfg = apply_params(cfg.train, cfg.mil, res.best_params)  # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import math
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .config import MODEL_KINDS, StudyConfig, TuneConfig
from .roi import SequenceCrops
from .search_space import tune_space
from .tune_trial import (TrialJob, TuneError, apply_params, finished_trials, journal_storage,  # noqa: F401
                         make_pruner, make_sampler, run_trial, suggest)

from .protocol import LeakageError as _ProtocolLeakage  # noqa: E402

Progress = Callable[[str], None]


class LeakageError(_ProtocolLeakage):
    """A patient the search must not see (a test patient, or an outer fold's held-out
    patient) is among the patients given to it (a :class:`alnm_core.protocol.LeakageError`)."""


# ----------------------------------------------------------------------------- folds and scope
def inner_folds(patients: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """Stratified ``k`` folds of the development patients: ``patient_id, label, inner_fold``.

    Raises:
        TuneError: fewer than ``k`` patients of a class (each fold needs both classes).

    Example:
        >>> p = pd.DataFrame({"patient_id": list("abcdef"), "label": [0, 1, 0, 1, 0, 1]})
        >>> sorted(inner_folds(p, 3, seed=0).groupby("inner_fold").label.sum().tolist())
        [1, 1, 1]
    """
    from sklearn.model_selection import StratifiedKFold

    counts = patients.label.value_counts()
    small = {int(c): int(n) for c, n in counts.items() if n < k}
    if set(patients.label) != {0, 1} or small:
        raise TuneError(f"tune.inner_folds={k}: every inner fold needs patients of both classes, "
                        f"the development patients have {counts.to_dict()} per class; lower "
                        "tune.inner_folds")
    out = patients[["patient_id", "label"]].reset_index(drop=True).copy()
    out["inner_fold"] = -1
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed % 2**32)
    for f, (_, te) in enumerate(skf.split(np.zeros(len(out)), out.label.to_numpy())):
        out.loc[te, "inner_fold"] = f
    return out


@dataclass(frozen=True)
class SearchScope:
    """One search: which development patients it may use and which it must never see.

    Attributes:
        name: ``all`` (one search on every development patient) or ``r<repeat>-f<fold>``
            (``tune.nested``: the search inside that outer fold).
        patients: ``patient_id, label`` it may use.
        forbidden: the test patients, plus (nested) the outer fold's held-out patients.
    """

    name: str
    patients: pd.DataFrame
    forbidden: frozenset


def search_plan(splits: pd.DataFrame, folds: pd.DataFrame | None = None, *,
                nested: bool) -> list[SearchScope]:
    """The searches a study runs (per model kind and sequence).

    Args:
        splits: ``splits.csv`` (``patient_id, label, split``; ``test`` marks the test set).
        folds: ``folds.csv`` (``patient_id, repeat, fold``) for k-fold studies.
        nested: one search per outer fold (on its training patients), and one on all
            development patients for the final fit that scores the test set; without it, one
            search on all development patients serves every fit.

    Example:
        >>> s = pd.DataFrame({"patient_id": list("abcd"), "label": [0, 1, 0, 1],
        ...                   "split": ["dev", "dev", "dev", "test"]})
        >>> [(x.name, x.patients.patient_id.tolist(), sorted(x.forbidden)) for x in search_plan(s, nested=False)]
        [('all', ['a', 'b', 'c'], ['d'])]
    """
    test = frozenset(splits.loc[splits.split == "test", "patient_id"])
    dev = splits.loc[splits.split != "test", ["patient_id", "label"]].reset_index(drop=True)
    if not nested or folds is None:
        return [SearchScope("all", dev, test)]
    out = []
    for (rep, fold), g in folds.groupby(["repeat", "fold"], sort=True):
        held = frozenset(g.patient_id)
        out.append(SearchScope(f"r{rep}-f{fold}", dev[~dev.patient_id.isin(held)].reset_index(drop=True),
                               test | held))
    return out + [SearchScope("all", dev, test)]  # the final refit's settings


def subset_crops(crops: SequenceCrops, patient_ids: Iterable[str]) -> SequenceCrops:
    """The crops of ``patient_ids`` only (their own content key).

    Raises:
        TuneError: a patient without crops (named).
    """
    ids = [str(p) for p in patient_ids]
    have = set(np.asarray(crops.patient_id).astype(str))
    missing = sorted(set(ids) - have)
    if missing:
        raise TuneError(f"{crops.sequence}: no crops for development patient(s) {missing[:5]} "
                        "(excluded by the ROI step? leave them out of the search's patients)")
    keep = np.isin(np.asarray(crops.patient_id).astype(str), ids)
    key = hashlib.sha256((crops.key + "|" + ",".join(sorted(ids))).encode()).hexdigest()[:32]
    pp = crops.per_patient
    if "patient_id" in pp.columns:
        pp = pp[pp.patient_id.astype(str).isin(ids)].reset_index(drop=True)
    return SequenceCrops(crops.sequence, crops.crops[keep], crops.patient_id[keep],
                         crops.slice_index[keep], crops.bbox[keep], crops.area_mm2[keep],
                         crops.spacing[keep], crops.raw_range[keep], pp, [], key=key)


# ----------------------------------------------------------------------------- space and params
def search_space(tune: TuneConfig, model_kind: str) -> dict[str, tuple]:
    """The parameters searched for ``model_kind`` (``pooling`` for attention MIL only)."""
    space = tune_space(tune.space)
    if model_kind != "attention_mil":
        space.pop("pooling", None)
    return space


# ----------------------------------------------------------------------------- the study
@dataclass
class TuneResult:
    """What a search found.

    Attributes:
        model_kind: ``slice_vote`` or ``attention_mil``.
        best_params: the best complete trial's settings (apply with :func:`apply_params`).
        best_score: its score (``metric``).
        metric, direction: what was optimised (``maximize`` AUC, ``minimize`` loss).
        trials: one row per trial: ``trial``, ``param_<name>`` per parameter, ``score``
            (NaN unless complete), ``state`` (complete / pruned / fail), ``steps_reported``,
            ``last_value`` (the last per-epoch value reported), ``fold_scores``, ``seconds``,
            ``error``, ``n_patients``, ``patient_ids`` (``;``-joined: the development patients
            the trial trained and scored on).
        folds: ``patient_id, label, inner_fold``.
        sampler, pruner, executor: how it ran.
        seconds: wall time of the search.
        notes: what a reader must know (e.g. a grid capped by ``n_trials``).
    """

    model_kind: str
    best_params: dict
    best_score: float
    metric: str
    direction: str
    trials: pd.DataFrame
    folds: pd.DataFrame
    sampler: str
    pruner: str
    executor: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)  # Ray: ``start`` (Ray up), ``trials``, seconds


def _trials_frame(study, space: dict, folds: pd.DataFrame) -> pd.DataFrame:
    import optuna

    ids = ";".join(folds.patient_id.astype(str))
    rows = []
    for t in study.trials:
        state = {optuna.trial.TrialState.COMPLETE: "complete", optuna.trial.TrialState.PRUNED: "pruned",
                 optuna.trial.TrialState.FAIL: "fail"}.get(t.state, t.state.name.lower())
        steps = sorted(t.intermediate_values)
        row = {"trial": t.number}
        row.update({f"param_{k}": t.params.get(k) for k in space})
        row.update(score=t.value if state == "complete" else math.nan, state=state,
                   steps_reported=len(steps),
                   last_value=t.intermediate_values[steps[-1]] if steps else math.nan,
                   fold_scores=" ".join(map(str, t.user_attrs.get("fold_scores", []))),
                   seconds=round(float(t.user_attrs.get("seconds", math.nan)), 2),
                   error=t.user_attrs.get("error", ""), n_patients=len(folds), patient_ids=ids)
        rows.append(row)
    return pd.DataFrame(rows)


def search(*, crops: SequenceCrops, patients: pd.DataFrame, model_kind: str, cfg: StudyConfig,
           seed: int | None = None, progress: Progress | None = None,
           executor: str | None = None, forbidden_ids: Iterable[str] = (),
           storage_path: str | Path | None = None, study_name: str | None = None) -> TuneResult:
    """Search ``cfg.tune.space`` for ``model_kind`` on inner folds of ``patients``.

    Args:
        crops: the sequence's crops (any patients: only ``patients``' are used).
        patients: the development patients the search may use (``patient_id, label``).
        model_kind: ``slice_vote`` or ``attention_mil``.
        cfg: the study (``train``, ``mil``, ``tune``; ``run`` for Ray).
        seed: sampler, inner-fold and training seed (default ``tune.seed``, else ``cfg.seed``).
        progress: one line per trial.
        executor: ``local`` or ``ray`` (default ``run.executor``).
        forbidden_ids: patients that must not be among ``patients`` (the test set; nested:
            plus the outer fold's held-out patients).
        storage_path: an Optuna journal file (a search interrupted and started again with the
            same file keeps its finished trials); Ray needs one on a file system every node
            sees (default: a temporary file, enough for embedded Ray). One file per search and
            settings: a study found in it under ``study_name`` is continued as it is.
        study_name: the study's name in the storage (default ``<SEQ>-<model_kind>``; give
            nested searches sharing a file their scope, e.g. ``DWI-attention_mil-r0-f1``).

    Raises:
        LeakageError: a forbidden patient among ``patients``.
        TuneError: unknown model kind, too few patients for the inner folds, missing crops.
    """
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial comes from `progress`
    try:
        return _search(crops=crops, patients=patients, model_kind=model_kind, cfg=cfg, seed=seed,
                       progress=progress, executor=executor, forbidden_ids=forbidden_ids,
                       storage_path=storage_path, study_name=study_name)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _search(*, crops, patients, model_kind, cfg, seed, progress, executor, forbidden_ids,
            storage_path, study_name) -> TuneResult:
    import optuna

    say = progress or (lambda s: None)
    t0 = time.time()
    if model_kind not in MODEL_KINDS:
        raise TuneError(f"model_kind {model_kind!r} is not one of {list(MODEL_KINDS)}")
    tune = cfg.tune
    patients = patients[["patient_id", "label"]].astype({"patient_id": str}).reset_index(drop=True)
    leaked = sorted(set(patients.patient_id) & {str(p) for p in forbidden_ids})
    if leaked:
        raise LeakageError(f"tune ({crops.sequence}, {model_kind}): {len(leaked)} patient(s) the "
                           f"search must not see are among its development patients: {leaked[:5]}")
    if patients.patient_id.duplicated().any():
        raise TuneError(f"tune: patients listed twice: {sorted(patients.patient_id[patients.patient_id.duplicated()])[:5]}")
    seed = seed if seed is not None else (tune.seed if tune.seed is not None else cfg.seed)
    folds = inner_folds(patients, tune.inner_folds, seed)
    dev_crops = subset_crops(crops, folds.patient_id)
    space = search_space(tune, model_kind)
    grid = tune.space == "paper"
    epochs = max(space["epochs"]) if "epochs" in space else (tune.epochs or cfg.train.epochs)
    direction = "maximize" if tune.metric == "val_auc" else "minimize"
    executor = executor or cfg.run.executor
    notes = []
    n_trials = tune.n_trials
    if grid:
        size = int(np.prod([len(v) for v in space.values()]))
        if n_trials < size:
            notes.append(f"the paper grid has {size} combinations; tune.n_trials={n_trials} ran "
                         f"{n_trials} of them, drawn in a seeded random order")
    job = TrialJob(model_kind, {}, cfg.train, cfg.mil, folds, seed, epochs, tune.metric, dev_crops)
    say(f"tune {crops.sequence} {model_kind}: {n_trials} trials, {len(folds)} development patients "
        f"in {tune.inner_folds} inner folds, {epochs} epochs, {executor}")
    name = study_name or f"{crops.sequence}-{model_kind}"
    timings: dict = {}
    with tempfile.TemporaryDirectory(prefix="alnm-tune-") as tmp:
        if executor == "ray":
            from .tune_ray import run_trials_on_ray

            path = Path(storage_path) if storage_path else Path(tmp) / "study.journal"
            study = optuna.create_study(study_name=name, direction=direction,
                                        storage=journal_storage(path), load_if_exists=True,
                                        sampler=make_sampler(space, grid=grid, seed=seed),
                                        pruner=make_pruner(tune.pruner))
            crops_file = Path(tmp) / "dev_crops.npz"
            dev_crops.save(crops_file)
            timings = run_trials_on_ray(study, replace(job, crops=str(crops_file)), space, grid=grid,
                              n_trials=n_trials, storage_path=path, pruner=tune.pruner,
                              run=cfg.run, say=say)
        elif executor == "local":
            storage = journal_storage(storage_path) if storage_path else None
            study = optuna.create_study(study_name=name, direction=direction,
                                        storage=storage, load_if_exists=True,
                                        sampler=make_sampler(space, grid=grid, seed=seed),
                                        pruner=make_pruner(tune.pruner))
            _run_trials_locally(study, job, space, grid=grid, n_trials=n_trials, say=say)
        else:
            raise TuneError(f"executor must be local or ray, got {executor!r}")
        trials = _trials_frame(study, space, folds)  # read before a temporary journal goes
        done = trials[trials.state == "complete"]
        if done.empty:
            raise TuneError(f"tune ({crops.sequence}, {model_kind}): no trial finished "
                            f"({trials.state.value_counts().to_dict()}); first error: "
                            f"{next((e for e in trials.error if e), 'none')}")
        best = study.best_trial
    return TuneResult(model_kind, dict(best.params), float(best.value), tune.metric, direction,
                      trials, folds, "grid" if grid else "tpe", tune.pruner, executor,
                      time.time() - t0, notes, timings)


def _run_trials_locally(study, job: TrialJob, space: dict, *, grid: bool, n_trials: int,
                        say: Progress) -> None:
    """Ask / run / tell, one trial after the other, in this process."""
    import optuna

    from .training import TrainingError

    while finished_trials(study) < n_trials:
        trial = study.ask()
        params = suggest(trial, space, grid=grid)
        t0 = time.time()

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step}")

        try:
            out = run_trial(replace(job, params=params), report)
        except optuna.TrialPruned:
            trial.set_user_attr("seconds", time.time() - t0)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            say(f"trial {trial.number} {params}: pruned")
            continue
        except TrainingError as exc:
            trial.set_user_attr("seconds", time.time() - t0)
            trial.set_user_attr("error", str(exc))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            say(f"trial {trial.number} {params}: failed ({exc})")
            continue
        trial.set_user_attr("seconds", time.time() - t0)
        trial.set_user_attr("fold_scores", out["fold_scores"])
        study.tell(trial, out["score"])
        say(f"trial {trial.number} {params}: {job.metric} {out['score']:.4f}")
