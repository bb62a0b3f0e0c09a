"""Benchmarks of attention MIL and of the search (sections ``mil`` and ``tune`` of
``alnm bench``): throughput figures printed, never asserted in tests.

* ``mil``: training throughput of attention MIL (patients/s and slices/s) beside the paper's
  slice model (crops/s and patients/s) on the same synthetic crops, demo and paper model sizes,
  on this machine's device; both per epoch including the validation pass.
* ``tune``: what the search costs beyond its trials: Optuna's ask / tell alone (in memory and on
  a journal file), the local search path per trial, and the Ray path (start-up, and per trial:
  a Ray task opening the shared study and reporting a fold's epochs, no training).

Example:
    >>> rows = bench_mil(quick=True)      # doctest: +SKIP
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd



def _row(name: str, value: float, unit: str, note: str = "") -> dict:
    """One benchmark result, printed as it comes (shared by every ``alnm bench`` section)."""
    print(f"  {name:<48} {value:>12.4g} {unit:<12} {note}", flush=True)
    return {"name": name, "value": value, "unit": unit, "note": note}


def _synthetic(n_pat: int, per: int, size: int, seed: int = 0):
    from .roi import SequenceCrops

    rng = np.random.default_rng(seed)
    ids = np.repeat([f"B{i:04d}" for i in range(n_pat)], per)
    n = len(ids)
    return SequenceCrops("T2WI", rng.random((n, size, size), dtype=np.float32), ids,
                         np.tile(np.arange(per), n_pat), np.zeros((n, 4)), np.ones(n),
                         np.ones((n, 3)), np.zeros((n, 2)),
                         pd.DataFrame({"patient_id": np.unique(ids)}), [], key=f"bench{n_pat}-{per}-{size}")


def bench_mil(quick: bool = False) -> list[dict]:
    """Attention MIL vs slice-vote training throughput (an epoch after the first, validation
    included; demo size: the faster of two interleaved runs)."""
    from .config import MilConfig, TrainConfig
    from .mil_training import train_mil_unit
    from .training import UnitFiles, resolve_device, train_unit

    device = resolve_device("auto")
    rows = []
    per = 5  # the demo's central five slices
    settings = [("demo", "resnet18", 48, 32), ("paper", "resnet50", 224, 64 if device.type == "cuda" else 16)]
    for label, arch, size, bs in settings:
        n_train = (8 if quick else 16) * (1 if device.type == "cpu" else 8) * (2 if label == "demo" else 1)
        n_val = max(4, n_train // 4)
        crops = _synthetic(n_train + n_val, per, size)
        ids = crops.per_patient.patient_id.tolist()
        roles = pd.DataFrame({"patient_id": ids, "label": np.arange(len(ids)) % 2,
                              "role": ["train"] * n_train + ["val"] * n_val})
        # interleaved repetitions, the fastest epoch after the first of each: a shared
        # machine's load drifts (the paper size once: minutes per epoch on a CPU)
        reps, epochs = (2, 3) if label == "demo" else (1, 2)
        cfg = TrainConfig(arch=arch, epochs=epochs, batch_size=bs, augment=True, device="auto",
                          num_threads=os.cpu_count() or 1)
        out: dict = {}
        for _ in range(reps):
            for kind in ("slice_vote", "attention_mil"):
                with tempfile.TemporaryDirectory() as d:
                    files = UnitFiles(Path(d) / "checkpoint.pt", Path(d) / "last.pt", Path(d) / "history.csv")
                    if kind == "slice_vote":
                        res = train_unit(crops, roles, cfg, files, seed=0, predict_roles=("val",))
                    else:
                        res = train_mil_unit(crops, roles, cfg, MilConfig(max_slices=0), files, seed=0,
                                             predict_roles=("val",))
                best = float(res.history.seconds.iloc[1:].min())
                out[kind] = min(out.get(kind, best), best)
        crops_sv = (n_train * per - (n_train * per) % bs) / out["slice_vote"]  # slice model drops a last partial batch
        rows.append(_row(f"slice_vote epoch, {label}: {arch} {size}x{size} b{bs} ({device.type})",
                         crops_sv, "crops/s", "validation pass included"))
        rows.append(_row(f"slice_vote epoch, {label}", n_train / out["slice_vote"], "patients/s",
                         f"{per} slices per patient"))
        rows.append(_row(f"attention_mil epoch, {label} (gated attention)", n_train * per / out["attention_mil"],
                         "slices/s", "validation pass included"))
        rows.append(_row(f"attention_mil epoch, {label}", n_train / out["attention_mil"], "patients/s"))
        rows.append(_row(f"ratio MIL slices/s / slice_vote crops/s, {label}",
                         n_train * per / out["attention_mil"] / crops_sv, "",
                         "per crop trained (the slice model drops a last partial batch)"))
    return rows


def _noop_trial_task(study_name: str, storage_path: str, trial_id: int, steps: int) -> float:
    """A Ray task doing a trial's bookkeeping only: open the shared study, report ``steps``
    values, ask whether to prune."""
    import optuna

    from .tune_trial import journal_storage, make_pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.time()
    study = optuna.load_study(study_name=study_name, storage=journal_storage(storage_path),
                              pruner=make_pruner("median"))
    trial = optuna.trial.Trial(study, trial_id)
    for s in range(1, steps + 1):
        trial.report(0.5, s)
        trial.should_prune()
    return time.time() - t0


def bench_tune(quick: bool = False) -> list[dict]:
    """Per-trial overhead of the search: Optuna alone, the local path, the Ray path."""
    import optuna
    import torch

    from .config import StudyConfig, TrainConfig, TuneConfig
    from .tune import search
    from .tune_trial import journal_storage, make_pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    k = 20 if quick else 100
    steps = 6  # a trial of 3 inner folds x 2 epochs reports 6 values
    with tempfile.TemporaryDirectory() as d:
        for label, storage in (("in memory", None), ("journal file", journal_storage(Path(d) / "a.journal"))):
            study = optuna.create_study(storage=storage, pruner=make_pruner("median"),
                                        sampler=optuna.samplers.TPESampler(seed=0))
            t0 = time.perf_counter()
            for _ in range(k):
                tr = study.ask()
                tr.suggest_float("lr", 1e-6, 1e-2, log=True)
                for s in range(1, steps + 1):
                    tr.report(0.5, s)
                    tr.should_prune()
                study.tell(tr, 0.5)
            rows.append(_row(f"Optuna ask + {steps} reports + tell, TPE, {label}",
                             (time.perf_counter() - t0) / k * 1000, "ms/trial", f"{k} trials"))
    # the local search path, end to end on a tiny problem: wall vs the trials' own time
    crops = _synthetic(12, 3, 16)
    pats = pd.DataFrame({"patient_id": crops.per_patient.patient_id, "label": np.arange(12) % 2})
    n = 2 if quick else 4
    cfg = StudyConfig(train=TrainConfig(epochs=1, batch_size=8, device="cpu", num_threads=1),
                      tune=TuneConfig(enabled=True, n_trials=n, inner_folds=2, space="paper"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        local = search(crops=crops, patients=pats, model_kind="slice_vote", cfg=cfg, seed=0)
        wall = time.perf_counter() - t0
        trial_s = float(local.trials.seconds.sum())
        rows.append(_row("local search, tiny trials (12 patients, 2 inner folds, 1 epoch)",
                         trial_s / n, "s/trial", "training time of a trial"))
        rows.append(_row("local search overhead beyond the trials", (wall - trial_s) / n, "s/trial",
                         "folds, crops subset, Optuna"))
        try:
            import ray  # noqa: F401
        except ImportError:
            print("  (Ray path skipped: Ray is not installed)")
            return rows
        from .tune_ray import ray_session

        ray_cfg = replace(cfg, run=replace(cfg.run, executor="ray", cpus_per_task=float(os.cpu_count() or 1)))
        t0 = time.perf_counter()
        on_ray = search(crops=crops, patients=pats, model_kind="slice_vote", cfg=ray_cfg, seed=0)
        wall_ray = time.perf_counter() - t0
        ray_trial_s = float(on_ray.trials.seconds.sum())
        rows.append(_row("Ray search, same trials one at a time, wall", wall_ray, "s",
                         f"local wall {wall:.1f} s; Ray start-up included"))
        start_s = on_ray.timings.get("start", float("nan"))
        rows.append(_row("Ray search overhead beyond the trials, start-up excluded",
                         (wall_ray - start_s - ray_trial_s) / n, "s/trial",
                         f"start-up {start_s:.1f} s once per search"))
        # the Ray path's bookkeeping alone: tasks that open the shared study and report
        with tempfile.TemporaryDirectory() as d, ray_session(ray_cfg.run, say=lambda s: None) as start:
            import ray

            path = str(Path(d) / "b.journal")
            study = optuna.create_study(study_name="bench", storage=journal_storage(path))
            task = ray.remote(_noop_trial_task).options(num_cpus=1)
            m = 10 if quick else 30
            ray.get(task.remote("bench", path, study.ask()._trial_id, steps))  # a worker up
            t0 = time.perf_counter()
            inside = []
            for _ in range(m):
                tr = study.ask()
                inside.append(ray.get(task.remote("bench", path, tr._trial_id, steps)))
                study.tell(tr, 0.5)
            per = (time.perf_counter() - t0) / m
        rows.append(_row("Ray start-up (embedded, no dashboard)", start, "s"))
        rows.append(_row(f"Ray trial bookkeeping: task + open study + {steps} reports + tell",
                         per * 1000, "ms/trial", f"of which in the task {np.mean(inside) * 1000:.0f} ms"))
    finally:
        torch.set_num_threads(threads)
    return rows


def run_mil_benchmarks(only: list[str] | None = None, *, quick: bool = False) -> list[dict]:
    """The ``mil`` and ``tune`` sections (``only`` picks some)."""
    rows: list[dict] = []
    for s in only or ["mil", "tune"]:
        print(f"[{s}]", flush=True)
        if s == "mil":
            rows += bench_mil(quick)
        elif s == "tune":
            rows += bench_tune(quick)
        else:
            raise ValueError(f"unknown benchmark {s!r}")
    return rows
