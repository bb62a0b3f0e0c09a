"""The training steps: the grid of training units, each CNN's pooled predictions, and what the
report shows of a sequence's CNN (per-split metrics, Grad-CAM).

A **training unit** (:class:`TrainJob`) is one network: a CNN model (``slice_vote_T2WI``) and
one fit of the validation protocol (:mod:`alnm_core.protocol`). :func:`run_job` is the unit of
work an executor distributes: it reads the crops from the run folder and writes only the unit's
own folder (``artifacts/models/<model_id>/<unit>/``), so that workers on other machines can run
it on a shared file system; the driver records the results.
"""
from __future__ import annotations

import functools
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field


import numpy as np
import pandas as pd

from ..config import MilConfig, StudyConfig, TrainConfig
from ..model_registry import study_models
from ..protocol import Fold, fits, fold_seed, pool, roles, scoring_test
from ..runfolder import record
from ..runfolder.paths import RunPaths
from ..storage import atomic_write_text, write_csv
from .graph import StepCall, make_key
from .results import GridResult, ModelPredictions, ModelSummary, UnitResult

#: bumped when a unit's computation changes (its folder is then retrained)
UNIT_VERSION = 2


@dataclass(frozen=True, kw_only=True)
class TrainJob:
    """One training unit: a CNN model and one fit of the protocol, with everything it needs."""

    model_id: str
    family: str
    sequence: str
    fold: Fold
    seed: int
    key: str
    train: TrainConfig  # the unit's settings (the search's choice when ``tune.enabled``)
    mil: MilConfig
    excluded: tuple[str, ...] = ()
    roles: pd.DataFrame = field(compare=False, repr=False, default=None)

    @property
    def id(self) -> str:
        return self.fold.id

    def __str__(self) -> str:
        return f"{self.model_id} {self.fold.id}"

    def describe(self) -> str:
        if self.fold.final:
            return f"{self} (model {self.model_id}, sequence {self.sequence}, final fit on every development patient)"
        fold = "none: hold-out" if self.fold.fold is None else self.fold.fold
        return f"{self} (model {self.model_id}, sequence {self.sequence}, repeat {self.fold.repeat}, fold {fold})"


def tuned(call: StepCall, model_id: str, fold: Fold) -> tuple[TrainConfig, MilConfig]:
    """The settings a unit trains with: the configuration's, or the search's choice for its
    model (``tune.enabled``; nested: its outer fold's search, else the one on every development
    patient)."""
    cfg = call.cfg
    if not call.has("tune"):
        return cfg.train, cfg.mil
    from ..tune_trial import apply_params

    scope = fold.id if cfg.tune.nested and not fold.holdout and not fold.final else "all"
    best = call.up("tune").best
    row = best[(best.model_id == model_id) & (best.scope == scope)]
    if row.empty:
        raise RuntimeError(f"the search chose no settings for {model_id} ({scope}): see tune_trials.csv")
    return apply_params(cfg.train, cfg.mil, json.loads(row.params.iloc[0]))


def jobs(call: StepCall) -> list[TrainJob]:
    """Every training unit of the study's CNN models, in grid order."""
    cfg = call.cfg
    prep = call.up("prepare")
    excluded = tuple(sorted({e["patient_id"] for r in call.up_all("roi").values() for e in r.exclusions}))
    out = []
    for m in study_models(cfg).cnns():
        roi_key = call.session.key(f"roi:{m.sequence}")
        for fold in fits(scheme=cfg.split.scheme, n_folds=cfg.split.n_folds, repeats=cfg.split.repeats):
            train, mil = tuned(call, m.model_id, fold)
            r = roles(prep.splits, fold, folds_table=prep.folds, selection=train.selection,
                      val_fraction=cfg.split.val_fraction, seed=cfg.seed)
            seed = fold_seed(cfg.seed, fold)
            train_cfg = {k: v for k, v in asdict(train).items() if k != "models"}
            family_cfg = asdict(mil) if m.family == "attention_mil" else None
            key = make_key("train_unit", UNIT_VERSION, m.family, roi_key, train_cfg, family_cfg, seed,
                           r.to_csv(index=False), list(excluded))
            out.append(TrainJob(model_id=m.model_id, family=m.family, sequence=m.sequence, fold=fold,
                                seed=seed, key=key, train=train, mil=mil, excluded=excluded, roles=r))
    return out


def finished(paths: RunPaths, job: TrainJob) -> UnitResult | None:
    """The unit read back from its folder when it finished with the same key (cheap: no torch)."""
    m, u = job.model_id, job.id
    files = [paths.unit_record(m, u), paths.checkpoint(m, u), paths.history(m, u),
             paths.unit_predictions(m, u), paths.unit_roles(m, u)]
    if not all(f.is_file() for f in files):
        return None
    info = json.loads(files[0].read_text())
    if info.get("key") != job.key:
        return None
    read = functools.partial(pd.read_csv, dtype={"patient_id": str})
    return UnitResult(job=job, key=job.key, history=pd.read_csv(files[2]), predictions=read(files[3]),
                      info=info, skipped=True, roles=read(files[4]))


def run_job(paths: RunPaths, cfg: StudyConfig, job: TrainJob, *, progress=None,
            stop_after_epoch: int | None = None) -> UnitResult:
    """Train one unit; writes ``models/<model_id>/<unit>/`` only (the unit of work of an executor)."""
    say = progress or (lambda s: None)
    done = finished(paths, job)
    if done is not None:
        return done
    from ..roi import SequenceCrops
    from ..training import UnitFiles

    m, u = job.model_id, job.id
    crops = SequenceCrops.load(paths.roi(job.sequence))
    files = UnitFiles(paths.checkpoint(m, u), paths.resume_state(m, u), paths.history(m, u))
    # k-fold units predict their held-out fold and the test set only; the final unit the test set
    predict = None if job.fold.holdout else ("test",) if job.fold.final else ("oof", "test")
    t0 = time.time()
    extra: dict = {}
    if job.family == "slice_vote":
        from ..training import train_unit

        res = train_unit(crops, job.roles, job.train, files, seed=job.seed, excluded=set(job.excluded),
                         progress=say, stop_after_epoch=stop_after_epoch, predict_roles=predict)
        preds = res.slices
        extra = {"train_crops_per_s": round(res.crops_per_s, 1), "cpu_isa": res.cpu_isa}
    elif job.family == "attention_mil":
        from ..mil import network_settings
        from ..mil_training import train_mil_unit
        from ..numerics import pin_cpu_isa

        isa = pin_cpu_isa(job.train.cpu_isa)
        res = train_mil_unit(crops, job.roles, job.train, job.mil, files, seed=job.seed,
                             excluded=set(job.excluded), progress=say, stop_after_epoch=stop_after_epoch,
                             predict_roles=predict)
        preds = res.patients
        write_csv(res.attention, paths.unit_dir(m, u) / "attention.csv", what=f"the {job} slice attention")
        extra = {"patients_per_s": round(res.patients_per_s, 2), "slices_per_s": round(res.slices_per_s, 1),
                 "train_crops_per_s": round(res.slices_per_s, 1), "cpu_isa": isa,
                 "settings": network_settings(job.train, job.mil)}
    else:  # pragma: no cover - a family registered without a trainer
        raise ValueError(f"{job}: no trainer for the model family {job.family!r}")
    write_csv(job.roles, paths.unit_roles(m, u), what=f"the roles of {job}")
    write_csv(preds, paths.unit_predictions(m, u), what=f"the {job} predictions")
    info = {"key": job.key, "unit": u, "model_id": m, "sequence": job.sequence, "repeat": job.fold.repeat,
            "fold": "final" if job.fold.final else job.fold.fold, "best_epoch": int(res.best_epoch), "epochs": job.train.epochs,
            "selection": job.train.selection, "seed": job.seed,
            "tuned": {k: getattr(job.train, k) for k in ("lr", "weight_decay", "batch_size", "epochs")}
            | ({"pooling": job.mil.pooling} if job.family == "attention_mil" else {}),
            "n_roles": {k: int(v) for k, v in job.roles.role.value_counts().items()},
            "seconds": round(res.seconds, 2), "device": res.device, "num_threads": res.threads,
            **extra, "resumed_from_epoch": res.resumed_from,
            "host": socket.gethostname(), "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0)), "finished": record.now()}
    atomic_write_text(paths.unit_record(m, u), json.dumps(info, indent=1), what=f"the record of {job}")
    return UnitResult(job=job, key=job.key, history=res.history, predictions=preds, info=info,
                      skipped=False, roles=job.roles)


# ----------------------------------------------------------------------------- train_units
def compute_train_units(call: StepCall) -> dict:
    from .executor import LocalExecutor

    grid = jobs(call)
    done = {i: finished(call.paths, j) for i, j in enumerate(grid)}
    todo = [j for i, j in enumerate(grid) if done[i] is None]
    call.out("artifacts/models/").mkdir(parents=True, exist_ok=True)
    if todo:
        work = functools.partial(run_job, call.paths, call.cfg)
        ran = iter((call.session.executor or LocalExecutor()).run(work, todo, progress=call.say))
        for i in range(len(grid)):
            if done[i] is None:
                done[i] = next(ran)
    return {"units": {str(r.job): {k: v for k, v in r.info.items() if k != "key"} for r in done.values()},
            "trained": [str(j) for j in todo]}


def load_train_units(call: StepCall) -> GridResult:
    units: dict[str, list[UnitResult]] = {}
    for j in jobs(call):
        r = finished(call.paths, j)
        if r is None:
            raise RuntimeError(f"training unit {j} is not finished (its folder lacks a file or holds "
                               "another key): run the study again")
        units.setdefault(j.model_id, []).append(r)
    return GridResult(units=units)


# ----------------------------------------------------------------------------- train:<SEQ>
def model_id_of(call: StepCall, family: str = "slice_vote") -> str:
    return f"{family}_{call.seq}"


def unit_columns(fold: Fold) -> dict:
    """``repeat`` and ``fold`` of a unit's rows in the ``*_units.csv`` tables: the repeat and
    fold, ``-1`` for the hold-out fold, ``repeat = fold = -1`` for the final fit."""
    if fold.final:
        return {"repeat": -1, "fold": -1}
    return {"repeat": fold.repeat, "fold": -1 if fold.fold is None else fold.fold}


def _pooled(call: StepCall, model_id: str, units: list[UnitResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    from ..aggregation import aggregate

    how = call.cfg.train.aggregation
    per_unit = []
    for r in units:
        f = r.job.fold
        pat = aggregate(r.predictions, how).assign(**unit_columns(f))
        per_unit.append((f, r.roles, pat))
    excluded = {e["patient_id"] for r in call.up_all("roi").values() for e in r.exclusions}
    patients = pool([(f, ro, p.drop(columns=["repeat", "fold"])) for f, ro, p in per_unit],
                    call.up("prepare").splits, excluded=excluded, what=model_id)
    return patients, pd.concat([p for _, _, p in per_unit], ignore_index=True)


def compute_train(call: StepCall) -> None:
    mid = model_id_of(call)
    units = call.up("train_units").units[mid]
    patients, unit_patients = _pooled(call, mid, units)
    slices = pd.concat([r.predictions.assign(**unit_columns(r.job.fold)) for r in units], ignore_index=True)
    write_csv(slices, call.out("artifacts/predictions/slice_vote_{seq}_slices.csv"),
              what=f"the {mid} slice predictions")
    write_csv(unit_patients, call.out("artifacts/predictions/slice_vote_{seq}_units.csv"),
              what=f"the {mid} predictions of each unit")
    write_csv(patients, call.out("artifacts/predictions/slice_vote_{seq}.csv"), what=f"the {mid} predictions")


def load_train(call: StepCall) -> ModelPredictions:
    mid = model_id_of(call)
    read = functools.partial(pd.read_csv, dtype={"patient_id": str})
    p = call.paths
    return ModelPredictions(model_id=mid, sequence=call.seq, units=call.up("train_units").units[mid],
                            patients=read(p.predictions(mid)), slices=read(p.slice_predictions(mid)),
                            unit_patients=read(p.unit_patient_predictions(mid)))


# ----------------------------------------------------------------------------- describe_model:<SEQ>
def per_split_metrics(patients: pd.DataFrame, *, threshold: float) -> pd.DataFrame:
    """AUC (DeLong CI as pROC, exact binomial CI as MedCalc) and ACC / SEN / SPE at ``threshold``
    (Clopper-Pearson) with the confusion counts, per split that has both classes."""
    from ..stats import auc_ci, confusion_counts, diagnostic_metrics

    rows = []
    for split_name in ("train", "val", "dev", "test"):
        p = patients[patients.split == split_name]
        if p.label.nunique() < 2:
            continue
        dl, ex = auc_ci(p.label, p.prob, method="delong"), auc_ci(p.label, p.prob, method="exact")
        pred = (p.prob >= threshold).astype(int)
        m = diagnostic_metrics(p.label, pred)
        tp, fp, fn, tn = confusion_counts(p.label, pred)
        row = {"split": split_name, "patients": len(p), "n_pos": int(p.label.sum()), "threshold": threshold,
               "auc": dl.auc, "auc_delong_low": dl.low, "auc_delong_high": dl.high,
               "auc_exact_low": ex.low, "auc_exact_high": ex.high, "tp": tp, "fp": fp, "fn": fn, "tn": tn}
        for k in ("acc", "sen", "spe"):
            row[k], row[f"{k}_low"], row[f"{k}_high"] = m[k][:3]
        rows.append(row)
    return pd.DataFrame(rows)


def gradcam_panels(call: StepCall, mid: str, patients: pd.DataFrame, *, n: int = 6) -> dict:
    """Grad-CAM of the first unit's network on one crop (the largest tumour slice) of up to
    ``n`` correctly and ``n`` wrongly classified test patients, at the operating threshold."""
    import torch

    from ..gradcam import gradcam
    from ..models import load_network

    crops = call.up("roi").crops
    unit = scoring_test(call.up("train_units").units[mid])[0]  # the model that scored the test set
    model = load_network(call.cfg.train, call.paths.checkpoint(mid, unit.job.id))
    test = patients[patients.split == "test"].copy()
    test["correct"] = (test.prob >= call.cfg.stats.threshold).astype(int) == test.label
    picked = []
    for correct in (True, False):
        c = test[test.correct == correct].sort_values("prob", ascending=False)
        picked.append(pd.concat([c[c.label == 1].head(n // 2), c[c.label == 0].head(n - n // 2)]))
    table = pd.concat(picked, ignore_index=True)
    idx = []
    for pid in table.patient_id:
        rows = np.flatnonzero(crops.patient_id == pid)
        idx.append(int(rows[np.argmax(crops.area_mm2[rows])]))
    table["slice_index"] = [int(crops.slice_index[i]) for i in idx]
    if not idx:
        return {"crops": np.zeros((0, 1, 1)), "heatmaps": np.zeros((0, 1, 1)), "table": table}
    x = torch.from_numpy(crops.crops[idx][:, None].astype(np.float32))
    return {"crops": crops.crops[idx], "heatmaps": gradcam(model, x), "table": table,
            "unit": unit.job.id}


def compute_describe_model(call: StepCall) -> None:
    from .. import evaluation as EV
    from ..model_registry import study_models

    mid = model_id_of(call)
    patients = call.up("train").patients
    per_split = per_split_metrics(patients, threshold=call.cfg.stats.threshold)
    write_csv(per_split, call.out("artifacts/per_split/slice_vote_{seq}.csv"), what=f"the {mid} per-split metrics")
    fit_value, fit_name = ("val", "validation") if call.cfg.split.scheme == "holdout" else ("dev", "out-of-fold")
    label = study_models(call.cfg).label(mid)
    test = per_split[per_split.split == "test"].assign(model_id=mid, model=label,
                                                       threshold_from=f"fixed {call.cfg.stats.threshold:g}")
    flags = EV.model_flags(patients.rename(columns={"prob": mid}), test, {mid: label},
                           fit_split=fit_value, fit_name=fit_name)
    write_csv(flags, call.out("artifacts/per_split/slice_vote_{seq}_flags.csv"), what=f"the {mid} flags")
    g = gradcam_panels(call, mid, patients)
    target = call.out("artifacts/gradcam/slice_vote_{seq}.npz")
    from ..storage import atomic_path

    with atomic_path(target, what=f"the {mid} Grad-CAM maps") as tmp:
        np.savez_compressed(tmp, crops=g["crops"].astype(np.float16), heatmaps=g["heatmaps"].astype(np.float16),
                            table=np.array(g["table"].to_json(orient="records")),
                            unit=np.array(g.get("unit", "")))


def load_describe_model(call: StepCall) -> ModelSummary:
    import io

    mid = model_id_of(call)
    with np.load(call.paths.gradcam(mid), allow_pickle=False) as z:
        g = {"crops": z["crops"].astype(np.float32), "heatmaps": z["heatmaps"].astype(np.float32),
             "table": pd.read_json(io.StringIO(str(z["table"])), orient="records", dtype={"patient_id": str}),
             "unit": str(z["unit"])}
    flags = pd.read_csv(call.paths.root / f"artifacts/per_split/{mid}_flags.csv")
    return ModelSummary(model_id=mid, per_split=pd.read_csv(call.paths.model_summary(mid)), flags=flags, gradcam=g)
