"""The steps of patient-level attention MIL and of the hyperparameter search.

* ``tune`` (``tune.enabled``): for each CNN model, the search of :mod:`alnm_core.tune` on inner
  folds of the development patients only (nested: one search inside each outer fold); the
  trials, the inner folds and the chosen settings are artifacts, and ``train_units`` trains
  every unit with its model's (and, nested, its fold's) choice.
* ``train_mil:<SEQ>``: the attention-MIL model's patient predictions, pooled over its units as
  the slice vote's are (out-of-fold for the development patients, the final refit's for the test
  set), and its slice attention, taken the same way.
* ``mil_attention``: every MIL model's slice attention in one table
  (``artifacts/mil_attention.csv``: model_id, patient_id, sequence, slice, weight, split).
* ``describe_mil:<SEQ>``: per-split metrics and flags of the MIL model (section 3).
"""
from __future__ import annotations

import functools
import json
import shutil

import pandas as pd

from ..protocol import pool
from ..storage import write_csv
from .graph import StepCall
from .results import ModelPredictions, ModelSummary
from .steps_train import per_split_metrics, unit_columns

read = functools.partial(pd.read_csv, dtype={"patient_id": str})


# ----------------------------------------------------------------------------- tune
def compute_tune(call: StepCall) -> dict:
    from ..model_registry import study_models
    from ..tune import search, search_plan

    cfg = call.cfg
    prep = call.up("prepare")
    excluded = {e["patient_id"] for r in call.up_all("roi").values() for e in r.exclusions}
    splits = prep.splits[~prep.splits.patient_id.isin(excluded)]
    folds = None if prep.folds is None else prep.folds[~prep.folds.patient_id.isin(excluded)]
    # journals of this step's inputs only (an interrupted search continues; other settings start afresh)
    root = call.out("artifacts/tune/")
    key = call.session.key(call.name)
    if root.is_dir():
        for old in root.iterdir():
            if old.name != key:
                shutil.rmtree(old, ignore_errors=True)
    (root / key).mkdir(parents=True, exist_ok=True)
    trials, best, inner = [], [], []
    for m in study_models(cfg).cnns():
        crops = call.session.get(f"roi:{m.sequence}").crops
        for scope in search_plan(splits, folds, nested=cfg.tune.nested):
            name = f"{m.model_id}-{scope.name}"
            call.say(f"tune {name}: {cfg.tune.n_trials} trial(s) on {len(scope.patients)} development patients")
            res = search(crops=crops, patients=scope.patients, model_kind=m.family, cfg=cfg, progress=call.say,
                         forbidden_ids=scope.forbidden, storage_path=root / key / f"{name}.journal",
                         study_name=name)
            trials.append(res.trials.assign(model_id=m.model_id, sequence=m.sequence, scope=scope.name))
            inner.append(res.folds.assign(model_id=m.model_id, scope=scope.name))
            best.append({"model_id": m.model_id, "sequence": m.sequence, "scope": scope.name,
                         "metric": res.metric, "best_score": res.best_score,
                         "params": json.dumps(res.best_params, sort_keys=True), "sampler": res.sampler,
                         "pruner": res.pruner, "executor": res.executor, "seconds": round(res.seconds, 1),
                         "notes": "; ".join(res.notes)})
    write_csv(pd.concat(trials, ignore_index=True), call.out("artifacts/tune_trials.csv"), what="the search's trials")
    write_csv(pd.concat(inner, ignore_index=True), call.out("artifacts/tune_folds.csv"), what="the search's inner folds")
    write_csv(pd.DataFrame(best), call.out("artifacts/tune_best.csv"), what="the chosen settings")
    return {"searches": len(best), "nested": cfg.tune.nested}


class TuneOutcome:
    """What the search step left: ``trials``, ``folds`` (inner folds), ``best`` (per model and scope)."""

    def __init__(self, trials: pd.DataFrame, folds: pd.DataFrame, best: pd.DataFrame):
        self.trials, self.folds, self.best = trials, folds, best


def load_tune(call: StepCall) -> TuneOutcome:
    p = call.paths.root
    return TuneOutcome(pd.read_csv(p / "artifacts/tune_trials.csv"), read(p / "artifacts/tune_folds.csv"),
                       pd.read_csv(p / "artifacts/tune_best.csv", keep_default_na=False))


# ----------------------------------------------------------------------------- train_mil:<SEQ>
def _mid(call: StepCall) -> str:
    return f"attention_mil_{call.seq}"


def compute_train_mil(call: StepCall) -> None:
    from ..mil import attention_artifact, average_over_models

    mid = _mid(call)
    units = call.up("train_units").units[mid]
    excluded = {e["patient_id"] for r in call.up_all("roi").values() for e in r.exclusions}
    per_unit = [(r.job.fold, r.roles, r.predictions) for r in units]
    patients = pool(per_unit, call.up("prepare").splits, excluded=excluded, what=mid)
    unit_patients = pd.concat([p.assign(**unit_columns(f)) for f, _, p in per_unit], ignore_index=True)
    att = [read(call.paths.unit_dir(mid, r.job.id) / "attention.csv") for r in units]
    parts = []
    for role, part in (("oof", "dev"), ("test", "test"), ("train", "train"), ("val", "val")):
        ps = [p[p.split == role].drop(columns=["split"]) for _, _, p in per_unit]
        at = [a[a.split == role].drop(columns=["split"]) for a in att]
        keep = [i for i, p in enumerate(ps) if len(p)]
        if role == "test":  # the final fit alone scores the test set (k-fold)
            keep = [i for i in keep if per_unit[i][0].final] or keep
        if not keep:
            continue
        if role == "oof":  # each patient in one unit per repeat: the mean over repeats
            _, pooled = _by_patient([at[i] for i in keep])
        else:  # every unit predicts these patients: the mean over the units
            _, pooled = average_over_models([ps[i] for i in keep], [at[i] for i in keep])
        parts.append(attention_artifact(pooled.assign(split=part), sequence=call.seq, model_id=mid))
    write_csv(unit_patients, call.out("artifacts/predictions/attention_mil_{seq}_units.csv"),
              what=f"the {mid} predictions of each unit")
    write_csv(pd.concat(parts, ignore_index=True), call.out("artifacts/predictions/attention_mil_{seq}_attention.csv"),
              what=f"the {mid} slice attention")
    write_csv(patients, call.out("artifacts/predictions/attention_mil_{seq}.csv"), what=f"the {mid} predictions")


def _by_patient(attention: list[pd.DataFrame]) -> tuple[None, pd.DataFrame]:
    """Out-of-fold attention: each patient is in one unit per repeat; the mean over repeats."""
    alla = pd.concat(attention, ignore_index=True)
    return None, alla.groupby(["patient_id", "slice_index"], sort=False).weight.mean().reset_index()


def load_train_mil(call: StepCall) -> ModelPredictions:
    mid = _mid(call)
    p = call.paths
    return ModelPredictions(model_id=mid, sequence=call.seq, units=call.up("train_units").units[mid],
                            patients=read(p.predictions(mid)), slices=None,
                            unit_patients=read(p.unit_patient_predictions(mid)))


def attention_of(call: StepCall) -> pd.DataFrame:
    return read(call.paths.root / f"artifacts/predictions/attention_mil_{call.seq}_attention.csv")


# ----------------------------------------------------------------------------- mil_attention
def compute_mil_attention(call: StepCall) -> None:
    frames = [read(call.paths.root / f"artifacts/predictions/attention_mil_{seq}_attention.csv")
              for seq in call.up_all("train_mil")]
    write_csv(pd.concat(frames, ignore_index=True), call.out("artifacts/mil_attention.csv"),
              what="the MIL models' slice attention")


def load_mil_attention(call: StepCall) -> pd.DataFrame:
    return read(call.paths.root / "artifacts/mil_attention.csv")


# ----------------------------------------------------------------------------- describe_mil:<SEQ>
def compute_describe_mil(call: StepCall) -> None:
    from .. import evaluation as EV
    from ..model_registry import study_models

    mid = _mid(call)
    patients = call.up("train_mil").patients
    per_split = per_split_metrics(patients, threshold=call.cfg.stats.threshold)
    write_csv(per_split, call.out("artifacts/per_split/attention_mil_{seq}.csv"), what=f"the {mid} per-split metrics")
    fit_value, fit_name = ("val", "validation") if call.cfg.split.scheme == "holdout" else ("dev", "out-of-fold")
    label = study_models(call.cfg).label(mid)
    test = per_split[per_split.split == "test"].assign(model_id=mid, model=label,
                                                       threshold_from=f"fixed {call.cfg.stats.threshold:g}")
    write_csv(EV.model_flags(patients.rename(columns={"prob": mid}), test, {mid: label},
                             fit_split=fit_value, fit_name=fit_name),
              call.out("artifacts/per_split/attention_mil_{seq}_flags.csv"), what=f"the {mid} flags")


def load_describe_mil(call: StepCall) -> ModelSummary:
    mid = _mid(call)
    root = call.paths.root
    return ModelSummary(model_id=mid, per_split=pd.read_csv(root / f"artifacts/per_split/{mid}.csv"),
                        flags=pd.read_csv(root / f"artifacts/per_split/{mid}_flags.csv"),
                        gradcam={"attention": attention_of(call)})
