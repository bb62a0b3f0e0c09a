"""The study's steps: one function per step, shared by the pipeline, the CLI, the notebooks,
the tests and (for training units) workers on other machines.

Every step takes the run's :class:`~alnm_core.run.paths.RunPaths` and resolved
:class:`~alnm_core.config.StudyConfig` (plus a ``progress`` callback), writes its artifacts
atomically, and returns a named result. Each step first brings its upstream steps up to date
(a no-op when they are), computes the *key* of its inputs (configuration it reads, upstream
keys, the cohort's files), and skips its work when ``run.json`` records the same key and its
outputs exist — then it returns the result read back from those outputs. Every artifact has
exactly one writer (see :mod:`alnm_core.run.paths` and ``docs/architecture.md``).

========================  ============================================  ======================
step                      writes                                        key from
========================  ============================================  ======================
``prepare``               run.json (record), splits.csv                 cohort.csv, split, seed
``describe_cohort``       table1.csv                                    prepare, stats (Table 1)
``extract_rois``          roi/<SEQ>.npz, exclusions in run.json         prepare, roi, files
``train_unit``            models/<SEQ>/<unit>/*                         roi, roles, train, seed
``train``                 predictions/<SEQ>.csv, <SEQ>_slices.csv       its units
``fuse``                  predictions/ensemble.csv, ensemble_weights    train, ensemble, stats
``radiomics_features``    radiomics/<SEQ>.csv (features)                prepare, roi selection,
                                                                        radiomics, files
``radiomics``             predictions/radiomics.csv, radiomics_model    features, radiomics,
                                                                        seed, exclusions
``evaluate``              table3, delong, calibration, subgroups, ...   fuse, prepare, stats,
                                                                        radiomics
``bundle``                model/ (weights, bundle.json, model card)     evaluate
========================  ============================================  ======================

Example:
    >>> paths = RunPaths(Path("reports/demo"))                        # doctest: +SKIP
    >>> res = evaluate(paths, record.config(paths.root), progress=print)  # doctest: +SKIP
    >>> res.table3.columns[:3].tolist()                                # doctest: +SKIP
    ['model', 'threshold', 'threshold_from']
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from .. import ensemble as E
from .. import evaluation as EV
from ..cohort import load_cohort
from ..config import StatsConfig, StudyConfig
from ..roi import RoiError, SequenceCrops, extract_sequence
from ..splits import fold_table, make_splits, stratified_pick
from ..stats import build_table1
from ..storage import atomic_write_text, sha256_file, write_csv
from . import record
from .executor import LocalExecutor
from .paths import RunPaths

Progress = Callable[[str], None]

#: bumped when a step's computation changes, so that older results are recomputed
STEP_VERSION = {"prepare": 1, "describe_cohort": 2, "extract_rois": 1, "train_unit": 1,
                "train": 2, "fuse": 1, "radiomics_features": 1, "radiomics": 1, "evaluate": 4,
                "bundle": 1}


class StepError(RuntimeError):
    """A step cannot run; the message names the step and what is missing."""


def _quiet(_: str) -> None:
    pass


def make_key(*parts: object) -> str:
    """Short SHA-256 of the JSON form of ``parts`` (configuration sections, upstream keys)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _current(paths: RunPaths, name: str, key: str, outputs: Sequence[Path]) -> bool:
    state = record.step_state(paths, name)
    return bool(state) and state.get("key") == key and all(p.exists() for p in outputs)


def _finish(paths: RunPaths, name: str, key: str, outputs: Sequence[Path], t0: float,
            say: Progress, **extra: object) -> None:
    seconds = time.time() - t0
    record.finish_step(paths, name, key=key, outputs=list(outputs), seconds=seconds, **extra)
    say(f"{name}: done in {seconds:.1f} s")


# ============================================================================ prepare
class Prepared(NamedTuple):
    """The validated cohort and its patient-level split."""

    cohort: pd.DataFrame
    splits: pd.DataFrame
    cohort_dir: Path
    key: str


def prepare(paths: RunPaths, cfg: StudyConfig, cohort_dir: str | Path | None = None, *,
            progress: Progress | None = None) -> Prepared:
    """Validate the cohort, start (or refresh) ``run.json`` and write ``splits.csv``.

    Args:
        paths: the run folder.
        cfg: the resolved configuration.
        cohort_dir: the cohort folder; defaults to the one ``run.json`` records.

    Raises:
        CohortError: every problem of the cohort at once.
        SplitError: a split that cannot be made.
    """
    say = progress or _quiet
    if cohort_dir is None:
        cohort_dir = record.read(paths.root)["cohort"]
    cohort_dir = Path(cohort_dir).resolve()
    cohort = load_cohort(cohort_dir, cfg.sequences)
    key = make_key("prepare", STEP_VERSION["prepare"], sha256_file(cohort_dir / "cohort.csv"),
                   asdict(cfg.split), cfg.seed, cfg.sequences)
    paths.make()
    if not record.exists(paths.root) or record.read(paths.root).get("config") != cfg.to_dict():
        record.create(paths, cfg, cohort_dir=cohort_dir, n_patients=len(cohort))
    outputs = [paths.splits] + ([paths.folds] if cfg.split.scheme == "kfold" else [])
    if _current(paths, "prepare", key, outputs):
        return Prepared(cohort, pd.read_csv(paths.splits, dtype={"patient_id": str}), cohort_dir, key)
    t0 = time.time()
    s = cfg.split
    splits = make_splits(cohort, test_size=s.test_size, val_fraction=s.val_fraction,
                         n_folds=s.n_folds, seed=cfg.seed, use_manifest_split=s.use_manifest_split,
                         scheme=s.scheme, test_where=s.test_where)
    write_csv(splits, paths.splits, what="the patient-level split")
    if s.scheme == "kfold":
        write_csv(fold_table(splits, n_folds=s.n_folds, repeats=s.repeats, seed=cfg.seed),
                  paths.folds, what="the folds of every repeat")
    _finish(paths, "prepare", key, outputs, t0, say)
    return Prepared(cohort, splits, cohort_dir, key)


# ============================================================================ describe_cohort
class CohortResult(NamedTuple):
    """The cohort with its split, and Table 1."""

    cohort: pd.DataFrame
    splits: pd.DataFrame
    data: pd.DataFrame  # cohort + ``part`` (train/val/test) + ``fold``
    table1: pd.DataFrame  # both tables, ``population`` = All patients / Test set


def describe_cohort(paths: RunPaths, cfg: StudyConfig, *,
                    progress: Progress | None = None) -> CohortResult:
    """Table 1 of all patients and of the test set; writes ``table1.csv``."""
    say = progress or _quiet
    prep = prepare(paths, cfg, progress=say)
    data = prep.cohort.merge(prep.splits[["patient_id", "split", "fold"]]
                             .rename(columns={"split": "part"}), on="patient_id")
    s = cfg.stats
    key = make_key("describe_cohort", STEP_VERSION["describe_cohort"], prep.key,
                   [s.categorical_test, s.categorical_test_test_set, s.continuous_test,
                    s.normality_test, s.alpha])
    if _current(paths, "describe_cohort", key, [paths.table1]):
        return CohortResult(prep.cohort, prep.splits, data, pd.read_csv(paths.table1, keep_default_na=False))
    t0 = time.time()
    t_all, t_test = table1_pair(data, data[data.part == "test"], s)
    table1 = pd.concat([t_all.assign(population="All patients"), t_test.assign(population="Test set")],
                       ignore_index=True)
    write_csv(table1, paths.table1, what="Table 1")
    _finish(paths, "describe_cohort", key, [paths.table1], t0, say)
    return CohortResult(prep.cohort, prep.splits, data, pd.read_csv(paths.table1, keep_default_na=False))


def table1_pair(all_patients: pd.DataFrame, test_set: pd.DataFrame,
                s: StatsConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 of all patients and of the test set, each with its own categorical test rule
    (``stats.categorical_test`` and ``stats.categorical_test_test_set``)."""
    kw = dict(continuous_method=s.continuous_test, normality_test=s.normality_test, alpha=s.alpha)
    test_rule = s.categorical_test if s.categorical_test_test_set == "same" else s.categorical_test_test_set
    return (build_table1(all_patients, categorical_method=s.categorical_test, **kw),
            build_table1(test_set, categorical_method=test_rule, **kw))


# ============================================================================ extract_rois
class RoiResult(NamedTuple):
    """The crops of each sequence, and the patients that could not be cropped."""

    crops: dict[str, SequenceCrops]
    exclusions: list[dict]  # patient_id, sequence, reason, file
    warnings: list[dict]  # patient_id, sequence, warning


def _files_signature(cohort: pd.DataFrame, cohort_dir: Path, seq: str) -> list:
    """(name, size, mtime) of every image and mask file of a sequence: cheap change detection
    between runs (the cross-run cache in :mod:`alnm_core.roi` keys on the bytes)."""
    sig = []
    for _, row in cohort.sort_values("patient_id").iterrows():
        for col in (f"{seq}_image", f"{seq}_roi"):
            p = cohort_dir / row[col]
            files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
            sig.append([row["patient_id"], col] + [[f.name, f.stat().st_size, f.stat().st_mtime_ns]
                                                   for f in files])
    return sig


def _roi_key(prep: Prepared, cfg: StudyConfig, seq: str) -> str:
    return make_key("extract_rois", STEP_VERSION["extract_rois"], seq, asdict(cfg.roi),
                    sha256_file(prep.cohort_dir / "cohort.csv"),
                    _files_signature(prep.cohort, prep.cohort_dir, seq))


def extract_rois(paths: RunPaths, cfg: StudyConfig, *, sequences: Sequence[str] | None = None,
                 progress: Progress | None = None) -> RoiResult:
    """Crop every patient of each sequence; writes ``roi/<SEQ>.npz``.

    Patients that cannot be cropped stop the step (``roi.on_error=fail``, the error names the
    patient and the file) or are listed in ``run.json`` as exclusions (``exclude``).
    """
    say = progress or _quiet
    prep = prepare(paths, cfg, progress=say)
    out: dict[str, SequenceCrops] = {}
    for seq in sequences or cfg.sequences:
        name = f"roi:{seq}"
        key = _roi_key(prep, cfg, seq)
        if _current(paths, name, key, [paths.roi(seq)]):
            out[seq] = SequenceCrops.load(paths.roi(seq))
            continue
        t0 = time.time()

        def prog(i: int, n: int, seq: str = seq) -> None:
            if i == n or i % max(1, n // 4) == 0:
                say(f"ROI {seq}: {i}/{n} patients")

        crops = extract_sequence(prep.cohort, prep.cohort_dir, seq, cfg.roi, progress=prog)
        crops.save(paths.roi(seq))
        out[seq] = crops
        _finish(paths, name, key, [paths.roi(seq)], t0, say, content_key=crops.key)
    exclusions = [e for c in out.values() for e in c.exclusions]
    warnings = [dict(patient_id=p, sequence=s, warning=w) for s, c in out.items()
                for p, ws in zip(c.per_patient.patient_id, c.per_patient.warnings) if ws
                for w in ws.split("; ")]
    info = record.read(paths.root)
    done = set(out)
    keep_ex = [e for e in info.get("exclusions", []) if e.get("sequence") not in done]
    keep_w = [w for w in info.get("roi_warnings", []) if w.get("sequence") not in done]
    record.update(paths, exclusions=keep_ex + exclusions, roi_warnings=keep_w + warnings)
    return RoiResult(out, exclusions, warnings)


def excluded_patients(paths: RunPaths) -> set[str]:
    """Patients excluded in any sequence (left out of every model, so all see the same cohort)."""
    return {e["patient_id"] for e in record.read(paths.root).get("exclusions", [])}


# ============================================================================ training units
@dataclass(frozen=True)
class Unit:
    """One training of the grid: a sequence, and which of the development patients it fits."""

    sequence: str
    repeat: int = 0
    fold: int | None = None  # None: the hold-out design (train / val / test)

    @property
    def id(self) -> str:
        return "holdout" if self.fold is None else f"r{self.repeat}-f{self.fold}"

    def __str__(self) -> str:
        return f"{self.sequence} {self.id}"


def grid(cfg: StudyConfig, sequences: Sequence[str] | None = None) -> list[Unit]:
    """Every training unit of the study, in the order they are run locally: one per sequence
    (hold-out), or one per sequence, repeat and fold (k-fold)."""
    seqs = sequences or cfg.sequences
    if cfg.split.scheme == "holdout":
        return [Unit(s) for s in seqs]
    return [Unit(s, r, k) for s in seqs for r in range(cfg.split.repeats)
            for k in range(cfg.split.n_folds)]


class LeakageError(StepError):
    """A patient would be predicted by a model that saw it (a bug, never a user error)."""


def unit_roles(splits: pd.DataFrame, unit: Unit, cfg: StudyConfig,
               folds: pd.DataFrame | None = None) -> pd.DataFrame:
    """``patient_id, label, role`` of a unit: ``train`` (fitted), ``val`` (checkpoint choice),
    and the predicted roles (``test``; ``oof`` = the unit's held-out fold).

    Hold-out: the roles are the split. K-fold: the development patients of fold ``unit.fold``
    in repeat ``unit.repeat`` are ``oof``; the other development patients are ``train``, with a
    stratified ``val`` part carved from them when ``train.selection=best_val_auc``.
    """
    if unit.fold is None:
        return splits[["patient_id", "label", "split"]].rename(columns={"split": "role"})
    if folds is None:
        raise StepError(f"{unit}: k-fold units need the folds table (folds.csv)")
    fold = folds[folds["repeat"] == unit.repeat].set_index("patient_id")["fold"]
    roles = splits[["patient_id", "label"]].copy()
    f = roles.patient_id.map(fold)
    roles["role"] = np.where(splits.split == "test", "test", np.where(f == unit.fold, "oof", "train"))
    if cfg.train.selection == "best_val_auc":
        tr = roles[roles.role == "train"]
        n_val = max(2, int(round(cfg.split.val_fraction * len(tr))))
        rng = np.random.default_rng([cfg.seed, unit.repeat, unit.fold, 7])
        val = stratified_pick(tr.patient_id.to_numpy(dtype=object), tr.label.to_numpy(), n_val, rng)
        roles.loc[roles.patient_id.isin(val), "role"] = "val"
    check_roles(roles, unit)
    return roles


def check_roles(roles: pd.DataFrame, unit: Unit) -> None:
    """Assert that no patient the unit predicts out of fold is fitted or used for selection.

    Raises:
        LeakageError: naming the patients.
    """
    seen = set(roles.loc[roles.role.isin(["train", "val"]), "patient_id"])
    held = set(roles.loc[roles.role.isin(["oof", "test"]), "patient_id"])
    both = sorted(seen & held)
    if both or roles.patient_id.duplicated().any():
        raise LeakageError(f"{unit}: patients both fitted and predicted out of sample: {both[:5]}")


def unit_seed(cfg: StudyConfig, unit: Unit) -> int:
    """The seed of a unit's training: the run's seed for the hold-out design, and
    ``seed + 1000 * (repeat + 1) + fold`` for k-fold units."""
    if unit.fold is None:
        return cfg.seed
    return cfg.seed + 1000 * (unit.repeat + 1) + unit.fold


class UnitResult(NamedTuple):
    """What a training unit produced (read back from its folder when it was up to date)."""

    unit: Unit
    key: str
    history: pd.DataFrame
    slices: pd.DataFrame  # patient_id, split (role), label, slice_index, area_mm2, prob
    info: dict  # best_epoch, seconds, device, crops_per_s, resumed_from_epoch, ...
    skipped: bool
    roles: pd.DataFrame  # patient_id, label, role: what the unit fitted, selected on, predicted


def _unit_key(paths: RunPaths, cfg: StudyConfig, unit: Unit, roles: pd.DataFrame) -> str:
    roi_state = record.step_state(paths, f"roi:{unit.sequence}")
    if not roi_state:
        raise StepError(f"train_unit {unit}: the {unit.sequence} crops are missing: run the ROI step first")
    return make_key("train_unit", STEP_VERSION["train_unit"], roi_state["key"], asdict(cfg.train),
                    unit_seed(cfg, unit), roles.to_csv(index=False),
                    sorted(excluded_patients(paths)))


def _load_unit(paths: RunPaths, unit: Unit, key: str) -> UnitResult | None:
    s, u = unit.sequence, unit.id
    files = [paths.unit_record(s, u), paths.checkpoint(s, u), paths.history(s, u),
             paths.unit_predictions(s, u), paths.unit_roles(s, u)]
    if not all(f.is_file() for f in files):
        return None
    info = json.loads(files[0].read_text())
    if info.get("key") != key:
        return None
    read = functools.partial(pd.read_csv, dtype={"patient_id": str})
    return UnitResult(unit, key, pd.read_csv(files[2]), read(files[3]), info, True, read(files[4]))


def _read_splits(paths: RunPaths) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    splits = pd.read_csv(paths.splits, dtype={"patient_id": str})
    folds = pd.read_csv(paths.folds, dtype={"patient_id": str}) if paths.folds.is_file() else None
    return splits, folds


def finished_unit(paths: RunPaths, cfg: StudyConfig, unit: Unit) -> UnitResult | None:
    """The unit's result read back from its folder when it is finished with the same key, else
    None (cheap: no torch; the step layer skips such units before it calls an executor)."""
    splits, folds = _read_splits(paths)
    roles = unit_roles(splits, unit, cfg, folds)
    return _load_unit(paths, unit, _unit_key(paths, cfg, unit, roles))


#: Test hook, for the fault-tolerance tests only (tests/test_ray.py): ``"<SEQ> <unit id> <epoch>
#: [<marker file>]"`` makes the process training that unit kill itself with SIGKILL right after
#: it saved the resume state of that epoch, as a crashed or preempted worker would; with a marker
#: file only once (the file is created first), without one after every later epoch too (a unit
#: that fails for good). Never set in normal use.
KILL_HOOK_ENV = "ALNM_TEST_KILL"


def _kill_hook(unit: Unit) -> Callable[[int], None] | None:
    spec = os.environ.get(KILL_HOOK_ENV, "").split()
    if len(spec) < 3 or [spec[0], spec[1]] != [unit.sequence, unit.id]:
        return None
    at, marker = int(spec[2]), (Path(spec[3]) if len(spec) > 3 else None)

    def hook(epoch: int) -> None:
        if epoch < at or (marker is not None and (epoch != at or marker.exists())):
            return
        if marker is not None:
            marker.write_text(f"killed {unit} after epoch {epoch} (pid {os.getpid()})\n")
        os.kill(os.getpid(), signal.SIGKILL)

    return hook


def train_unit(paths: RunPaths, cfg: StudyConfig, unit: Unit, *,
               progress: Progress | None = None, stop_after_epoch: int | None = None) -> UnitResult:
    """Train one unit of the grid; writes ``models/<SEQ>/<unit>/`` only.

    This is the unit of work an executor distributes: it reads the crops and the split from the
    run folder and writes nothing outside its own folder, so that workers on other machines can
    run it on a shared file system. The driver records the results in ``run.json``.
    """
    say = progress or _quiet
    loaded = finished_unit(paths, cfg, unit)
    if loaded is not None:
        return loaded
    splits, folds = _read_splits(paths)
    roles = unit_roles(splits, unit, cfg, folds)
    key = _unit_key(paths, cfg, unit, roles)
    from ..training import UnitFiles  # torch is imported only when something is trained
    from ..training import train_unit as fit_unit

    crops = SequenceCrops.load(paths.roi(unit.sequence))
    s, u = unit.sequence, unit.id
    files = UnitFiles(paths.checkpoint(s, u), paths.resume_state(s, u), paths.history(s, u))
    excluded = excluded_patients(paths)
    # k-fold units predict their held-out fold and the test set only
    predict = None if unit.fold is None else ("oof", "test")
    t0 = time.time()
    res = fit_unit(crops, roles, cfg.train, files, seed=unit_seed(cfg, unit), excluded=excluded,
                   progress=say, stop_after_epoch=stop_after_epoch, predict_roles=predict,
                   after_epoch=_kill_hook(unit))
    write_csv(roles, paths.unit_roles(s, u), what=f"the roles of {unit}")
    write_csv(res.slices, paths.unit_predictions(s, u), what=f"the {unit} predictions")
    info = {"key": key, "unit": u, "sequence": s, "repeat": unit.repeat, "fold": unit.fold,
            "best_epoch": int(res.best_epoch), "epochs": cfg.train.epochs,
            "selection": cfg.train.selection, "seed": unit_seed(cfg, unit),
            "n_roles": {k: int(v) for k, v in roles.role.value_counts().items()},
            "seconds": round(res.seconds, 2), "device": res.device, "num_threads": res.threads,
            "train_crops_per_s": round(res.crops_per_s, 1), "resumed_from_epoch": res.resumed_from,
            "host": socket.gethostname(), "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0)),
            "finished": record.now()}
    atomic_write_text(paths.unit_record(s, u), json.dumps(info, indent=1),
                      what=f"the record of {unit}")
    return UnitResult(unit, key, res.history, res.slices, info, False, roles)


# ============================================================================ train (a sequence)
class SequenceResult(NamedTuple):
    """A sequence's models and predictions."""

    sequence: str
    units: list[UnitResult]
    patients: pd.DataFrame  # predictions/<SEQ>.csv
    slices: pd.DataFrame  # predictions/<SEQ>_slices.csv
    unit_patients: pd.DataFrame  # predictions/<SEQ>_units.csv


def _collect(cfg: StudyConfig, results: list[UnitResult], splits: pd.DataFrame,
             excluded: set[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Patient, slice and per-unit predictions of a sequence from its units.

    Hold-out: the one unit's predictions. K-fold: a development patient's probability is the
    mean over repeats of its out-of-fold prediction (``split = dev``); a test patient's is the
    mean over every fold model (``split = test``).

    Raises:
        LeakageError: an out-of-fold prediction from a unit that fitted or selected on the
            patient, or a development patient without exactly one out-of-fold prediction per
            repeat.
    """
    from ..aggregation import aggregate

    how = cfg.train.aggregation
    slices, units = [], []
    for r in results:
        sl = r.slices.assign(repeat=r.unit.repeat, fold=-1 if r.unit.fold is None else r.unit.fold)
        slices.append(sl)
        pat = aggregate(r.slices, how).assign(repeat=sl["repeat"].iloc[0], fold=sl["fold"].iloc[0])
        seen = set(r.roles.loc[r.roles.role.isin(["train", "val"]), "patient_id"])
        leaked = sorted(set(pat.loc[pat.split.isin(["oof", "test"]), "patient_id"]) & seen)
        if leaked:
            raise LeakageError(f"{r.unit}: predicted patients it was fitted on: {leaked[:5]}")
        units.append(pat)
    slices_df, units_df = pd.concat(slices, ignore_index=True), pd.concat(units, ignore_index=True)
    if results[0].unit.fold is None:
        return aggregate(results[0].slices, how), slices_df, units_df
    dev = set(splits.loc[splits.split == "dev", "patient_id"]) - excluded
    oof = units_df[units_df.split == "oof"]
    for rep, g in oof.groupby("repeat"):
        counts = g.patient_id.value_counts()
        if set(counts.index) != dev or (counts != 1).any():
            bad = sorted((dev - set(counts.index)) | set(counts.index[counts != 1]))
            raise LeakageError(f"{results[0].unit.sequence}, repeat {rep}: development patients "
                               f"without exactly one out-of-fold prediction: {bad[:5]}")
    lab = splits.set_index("patient_id").label
    rows = []
    for part, frame in (("dev", oof), ("test", units_df[units_df.split == "test"])):
        g = frame.groupby("patient_id", sort=False)
        rows.append(pd.DataFrame({"patient_id": g.prob.mean().index, "split": part,
                                  "label": lab.reindex(g.prob.mean().index).to_numpy(),
                                  "prob": g.prob.mean().to_numpy(),
                                  "n_slices": g.n_slices.first().to_numpy()}))
    order = {p: i for i, p in enumerate(splits.patient_id)}
    patients = pd.concat(rows, ignore_index=True)
    patients = patients.iloc[np.argsort([order[p] for p in patients.patient_id])].reset_index(drop=True)
    return patients, slices_df, units_df


def train(paths: RunPaths, cfg: StudyConfig, sequence: str, *, progress: Progress | None = None,
          executor=None) -> SequenceResult:
    """Train every unit of a sequence and write its predictions."""
    return train_all(paths, cfg, sequences=(sequence,), progress=progress, executor=executor)[sequence]


def train_all(paths: RunPaths, cfg: StudyConfig, *, sequences: Sequence[str] | None = None,
              progress: Progress | None = None, executor=None) -> dict[str, SequenceResult]:
    """Train the grid of the given sequences (all by default) and write their predictions.

    Args:
        executor: runs the units that are not finished (:mod:`alnm_core.run.executor`); in
            process by default, or on Ray (``run.executor=ray``, see the pipeline).
    """
    say = progress or _quiet
    seqs = tuple(sequences or cfg.sequences)
    extract_rois(paths, cfg, sequences=seqs, progress=say)
    units = grid(cfg, seqs)
    # finished units are read back here: they cost an executor no task
    finished = {u: finished_unit(paths, cfg, u) for u in units}
    todo = [u for u in units if finished[u] is None]
    work = functools.partial(train_unit, paths, cfg)
    ran = iter((executor or LocalExecutor()).run(work, todo, progress=say) if todo else [])
    results = [finished[u] if finished[u] is not None else next(ran) for u in units]
    splits, _ = _read_splits(paths)
    read = functools.partial(pd.read_csv, dtype={"patient_id": str})
    out = {}
    for seq in seqs:
        mine = [r for r in results if r.unit.sequence == seq]
        name = f"train:{seq}"
        key = make_key("train", STEP_VERSION["train"], [r.key for r in mine], cfg.train.aggregation)
        outputs = [paths.predictions(seq), paths.slice_predictions(seq), paths.unit_patient_predictions(seq)]
        if not _current(paths, name, key, outputs):
            t0 = time.time()
            patients, slices, unit_patients = _collect(cfg, mine, splits, excluded_patients(paths))
            write_csv(slices, outputs[1], what=f"the {seq} slice predictions")
            write_csv(unit_patients, outputs[2], what=f"the {seq} predictions of each unit")
            write_csv(patients, outputs[0], what=f"the {seq} predictions")
            record.update(paths, training={seq: {r.unit.id: {k: v for k, v in r.info.items() if k != "key"}
                                                 for r in mine}})
            _finish(paths, name, key, outputs, t0, say)
        out[seq] = SequenceResult(seq, mine, *(read(o) for o in outputs))
    return out


# ============================================================================ fuse
def fit_split(cfg: StudyConfig) -> tuple[str, str]:
    """``(split value, name)`` of the development predictions that thresholds, ensemble weights
    and stacking are fitted on: the validation patients (hold-out) or every development patient's
    out-of-fold prediction (k-fold)."""
    return ("val", "validation") if cfg.split.scheme == "holdout" else ("dev", "out-of-fold")


def fuse(paths: RunPaths, cfg: StudyConfig, *, progress: Progress | None = None,
         executor=None) -> E.FusionResult:
    """Fuse the sequences (weighted vote and alternatives); writes ``predictions/ensemble.csv``
    and ``ensemble_weights.csv``."""
    say = progress or _quiet
    trained = train_all(paths, cfg, progress=say, executor=executor)
    split_value, _ = fit_split(cfg)
    key = make_key("fuse", STEP_VERSION["fuse"],
                   [record.step_state(paths, f"train:{s}")["key"] for s in cfg.sequences],
                   asdict(cfg.ensemble), cfg.stats.threshold, split_value)
    outputs = [paths.predictions("ensemble"), paths.ensemble_weights]
    if _current(paths, "fuse", key, outputs):
        return E.FusionResult(pd.read_csv(outputs[0], dtype={"patient_id": str}), pd.read_csv(outputs[1]))
    t0 = time.time()
    res = E.fuse({s: trained[s].patients for s in cfg.sequences}, fit_split=split_value,
                 weights_from=cfg.ensemble.weights_from, threshold=cfg.stats.threshold)
    write_csv(res.ensemble, outputs[0], what="the fused predictions")
    write_csv(res.weights, outputs[1], what="the ensemble weights")
    record.update(paths, ensemble={"weights_from": cfg.ensemble.weights_from,
                                   "weights": res.weights.set_index("model").weight_used.round(4).to_dict()})
    _finish(paths, "fuse", key, outputs, t0, say)
    return E.FusionResult(pd.read_csv(outputs[0], dtype={"patient_id": str}), pd.read_csv(outputs[1]))


# ============================================================================ radiomics
class RadiomicsResult(NamedTuple):
    """The radiomics and clinical-radiomics baselines (``radiomics.enabled``)."""

    features: dict[str, pd.DataFrame]  # radiomics/<SEQ>.csv
    exclusions: list[dict]  # patient_id, sequence, reason, file: features not computed (imputed)
    predictions: pd.DataFrame  # predictions/radiomics.csv: patient_id, split, label, one column per model
    coefficients: pd.DataFrame  # radiomics_model.csv
    seconds_per_patient: dict[str, float]  # extraction time per patient, per sequence (1 process)


def _radiomics_feature_key(prep: Prepared, cfg: StudyConfig, seq: str) -> str:
    r = cfg.radiomics
    return make_key("radiomics_features", STEP_VERSION["radiomics_features"], seq,
                    [r.feature_classes, r.bin_width, r.resample_mm, r.normalize, r.on_error],
                    [cfg.roi.dwi_b_value, cfg.roi.dce_phase, cfg.roi.series_description],
                    sha256_file(prep.cohort_dir / "cohort.csv"),
                    _files_signature(prep.cohort, prep.cohort_dir, seq))


def extract_radiomics(paths: RunPaths, cfg: StudyConfig, *, sequences: Sequence[str] | None = None,
                      progress: Progress | None = None) -> dict[str, pd.DataFrame]:
    """Radiomics features of every patient of each sequence, from the image and mask the crops
    use; writes ``radiomics/<SEQ>.csv`` (step ``radiomics_features:<SEQ>``).

    A patient whose features cannot be computed is listed (``radiomics_exclusions`` in
    ``run.json``; ``radiomics.on_error=exclude``) or stops the step naming patient, sequence
    and file (``fail``).
    """
    from ..radiomics_features import extract_sequence

    say = progress or _quiet
    prep = prepare(paths, cfg, progress=say)
    out: dict[str, pd.DataFrame] = {}
    excl: dict[str, list] = {}
    for seq in sequences or cfg.sequences:
        name = f"radiomics_features:{seq}"
        key = _radiomics_feature_key(prep, cfg, seq)
        target = paths.radiomics_features(seq)
        if _current(paths, name, key, [target]):
            out[seq] = pd.read_csv(target, dtype={"patient_id": str})
            continue
        t0 = time.time()

        def prog(i: int, n: int, seq: str = seq) -> None:
            if i == n or i % max(1, n // 4) == 0:
                say(f"radiomics {seq}: {i}/{n} patients")

        feats = extract_sequence(prep.cohort, prep.cohort_dir, seq, cfg.roi, cfg.radiomics, progress=prog)
        write_csv(feats.features, target, what=f"the {seq} radiomics features")
        out[seq] = pd.read_csv(target, dtype={"patient_id": str})
        excl[seq] = feats.exclusions
        _finish(paths, name, key, [target], t0, say, content_key=feats.key, exclusions=feats.exclusions,
                seconds_per_patient=round(feats.seconds_per_patient, 4),
                n_features=int(feats.features.shape[1] - 1))
    if excl:
        info = record.read(paths.root)
        keep = [e for e in info.get("radiomics_exclusions", []) if e.get("sequence") not in excl]
        record.update(paths, radiomics_exclusions=keep + [e for v in excl.values() for e in v])
    return out


def radiomics(paths: RunPaths, cfg: StudyConfig, *, progress: Progress | None = None) -> RadiomicsResult:
    """The radiomics models (one per sequence, all sequences together) and the clinical-radiomics
    model, fitted inside the development set like the CNNs (out-of-fold and test predictions;
    :mod:`alnm_core.radiomics_models`); writes ``predictions/radiomics.csv`` and
    ``radiomics_model.csv``.

    Patients excluded from the CNNs (ROI exclusions recorded in ``run.json``) are left out here
    too, so every model of Table 3 sees the same patients.

    Raises:
        StepError: ``radiomics.enabled`` is false.
    """
    from ..radiomics_models import fit_radiomics_models

    if not cfg.radiomics.enabled:
        raise StepError("radiomics: radiomics.enabled is false (set radiomics.enabled=true)")
    say = progress or _quiet
    prep = prepare(paths, cfg, progress=say)
    feats = extract_radiomics(paths, cfg, progress=say)
    excluded = sorted(excluded_patients(paths))
    r = cfg.radiomics
    key = make_key("radiomics", STEP_VERSION["radiomics"], prep.key,
                   [record.step_state(paths, f"radiomics_features:{s}")["key"] for s in cfg.sequences],
                   [r.penalty, r.corr_threshold, r.inner_folds], cfg.seed, excluded)
    outputs = [paths.predictions("radiomics"), paths.radiomics_model]
    info = record.read(paths.root)
    seconds = {s: info["steps"][f"radiomics_features:{s}"].get("seconds_per_patient", float("nan"))
               for s in cfg.sequences}
    exclusions = info.get("radiomics_exclusions", [])
    if not _current(paths, "radiomics", key, outputs):
        t0 = time.time()
        splits, folds = _read_splits(paths)
        splits = splits[~splits.patient_id.isin(excluded)].reset_index(drop=True)
        if folds is not None:
            folds = folds[~folds.patient_id.isin(excluded)].reset_index(drop=True)
        say("radiomics: fitting the models")
        preds, coefs = fit_radiomics_models(feats, prep.cohort, splits, folds, r, seed=cfg.seed)
        write_csv(preds, outputs[0], what="the radiomics models' predictions")
        write_csv(coefs, outputs[1], what="the radiomics models' coefficients")
        _finish(paths, "radiomics", key, outputs, t0, say)
    read = functools.partial(pd.read_csv, dtype={"patient_id": str})
    return RadiomicsResult(feats, exclusions, read(outputs[0]), read(outputs[1]), seconds)


def radiomics_models(cfg: StudyConfig) -> list[str]:
    """Prediction columns of the radiomics baselines (empty unless ``radiomics.enabled``)."""
    if not cfg.radiomics.enabled:
        return []
    seqs = list(cfg.sequences)
    return [f"radiomics_{s}" for s in seqs] + (["radiomics_all"] if len(seqs) > 1 else []) + ["clinical_radiomics"]


def radiomics_headline(cfg: StudyConfig) -> str:
    """The radiomics model on every sequence (the one sequence's model in a one-sequence study)."""
    return "radiomics_all" if len(cfg.sequences) > 1 else f"radiomics_{cfg.sequences[0]}"


def radiomics_comparisons(cfg: StudyConfig) -> list[tuple[str, str]]:
    """The family of DeLong comparisons of ``delong_radiomics.csv``: the CNN fusion against the
    radiomics and clinical-radiomics models, the clinical-radiomics model against radiomics alone
    and against the clinical baseline, and each sequence's CNN against its own radiomics model."""
    rad = radiomics_headline(cfg)
    pairs = [(HEADLINE, rad), (HEADLINE, "clinical_radiomics"), ("clinical_radiomics", rad),
             ("clinical_radiomics", "clinical")]
    if len(cfg.sequences) > 1:
        pairs += [(s, f"radiomics_{s}") for s in cfg.sequences]
    return pairs


# ============================================================================ evaluate
HEADLINE = "weighted_vote"


def model_names(cfg: StudyConfig) -> dict[str, str]:
    """Prediction column -> display name, in table order."""
    _, fit_name = fit_split(cfg)
    names = {s: s for s in cfg.sequences}
    if len(cfg.sequences) == 1:
        names[HEADLINE] = f"{cfg.sequences[0]} (one sequence: no fusion)"
    else:
        labels = E.method_labels(cfg.ensemble.weights_from, fit_name)
        alt = ("weighted_vote_test_weights" if cfg.ensemble.weights_from == "validation"
               else "weighted_vote_fit_weights")
        names[HEADLINE] = "Multiparametric MRI"
        for k in (alt, "soft_vote", "majority_vote", "stacking"):
            names[k] = labels[k]
    names["clinical"] = "Clinical baseline (logistic: age, size, margin, TIC)"
    for c in radiomics_models(cfg):
        names[c] = {"radiomics_all": "Radiomics: all sequences",
                    "clinical_radiomics": "Clinical-radiomics (nomogram)"}.get(c, f"Radiomics: {c[10:]}")
    return names


class EvaluationResult(NamedTuple):
    """Everything Table 3, the ROC section, DeLong tests, calibration and subgroups show."""

    predictions: pd.DataFrame  # ensemble.csv + clinical, all splits
    names: dict[str, str]
    table3: pd.DataFrame
    delong: pd.DataFrame  # every pair of models (test set)
    delong_fusion: pd.DataFrame  # the fusion against each base model and the clinical baseline
    calibration: pd.DataFrame
    reliability: pd.DataFrame
    decision_curve: pd.DataFrame
    subgroups: pd.DataFrame
    cv_summary: pd.DataFrame | None  # k-fold only
    delong_radiomics: pd.DataFrame | None = None  # radiomics.enabled: CNNs vs radiomics baselines
    radiomics: RadiomicsResult | None = None  # radiomics.enabled


def _evaluation_outputs(paths: RunPaths, cfg: StudyConfig) -> dict[str, Path]:
    a = paths.artifacts
    out = {"clinical": paths.predictions("clinical"), "table3": paths.table3, "delong": paths.delong,
           "delong_fusion": paths.delong_fusion, "calibration": paths.calibration,
           "reliability": a / "reliability.csv", "decision_curve": a / "decision_curve.csv",
           "subgroups": paths.subgroups}
    if cfg.split.scheme == "kfold":
        out["cv_summary"] = paths.cv_summary
    if cfg.radiomics.enabled:
        out["delong_radiomics"] = paths.delong_radiomics
    return out


def _with_baselines(fused: pd.DataFrame, clin: pd.DataFrame, rad: RadiomicsResult | None) -> pd.DataFrame:
    preds = fused.merge(clin[["patient_id", "prob"]].rename(columns={"prob": "clinical"}), on="patient_id")
    if rad is not None:
        preds = preds.merge(rad.predictions.drop(columns=["split", "label"]), on="patient_id")
    return preds


def _read_evaluation(cfg: StudyConfig, fused: pd.DataFrame, files: dict[str, Path],
                     rad: RadiomicsResult | None) -> EvaluationResult:
    clin = pd.read_csv(files["clinical"], dtype={"patient_id": str})
    preds = _with_baselines(fused, clin, rad)
    t = {k: pd.read_csv(v) for k, v in files.items() if k != "clinical"}
    return EvaluationResult(preds, model_names(cfg), t["table3"], t["delong"], t["delong_fusion"],
                            t["calibration"], t["reliability"], t["decision_curve"], t["subgroups"],
                            t.get("cv_summary"), t.get("delong_radiomics"), rad)


def base_models(cfg: StudyConfig) -> list[str]:
    """The sequences' own columns shown beside the headline (none with one sequence: the
    headline is that sequence)."""
    return list(cfg.sequences) if len(cfg.sequences) > 1 else []


def table_models(cfg: StudyConfig, names: dict[str, str]) -> dict[str, str]:
    """The models of Table 3 and the DeLong matrix, in order."""
    return {c: n for c, n in names.items() if c not in cfg.sequences or len(cfg.sequences) > 1}


def evaluate(paths: RunPaths, cfg: StudyConfig, *, progress: Progress | None = None,
             executor=None) -> EvaluationResult:
    """Table 3, DeLong tests, calibration, decision curves, subgroups and the clinical baseline,
    all on the test patients with thresholds frozen on the development predictions; with
    k-fold, the out-of-fold estimate beside the test estimate and the spread over folds."""
    say = progress or _quiet
    fused = fuse(paths, cfg, progress=say, executor=executor).ensemble
    prep = prepare(paths, cfg, progress=say)
    rad = radiomics(paths, cfg, progress=say) if cfg.radiomics.enabled else None
    split_value, fit_name = fit_split(cfg)
    files = _evaluation_outputs(paths, cfg)
    key = make_key("evaluate", STEP_VERSION["evaluate"], record.step_state(paths, "fuse")["key"],
                   prep.key, asdict(cfg.stats), cfg.ensemble.weights_from, split_value,
                   record.step_state(paths, "radiomics")["key"] if rad is not None else None)
    if _current(paths, "evaluate", key, list(files.values())):
        return _read_evaluation(cfg, fused, files, rad)
    t0 = time.time()
    names = model_names(cfg)
    shown_cols = table_models(cfg, names)
    _, folds = _read_splits(paths)
    clin = EV.clinical_baseline(prep.cohort, prep.splits, folds)
    write_csv(clin, files["clinical"], what="the clinical baseline's predictions")
    preds = _with_baselines(fused, clin, rad)
    test = preds[preds.split == "test"]
    s = cfg.stats
    t3 = EV.build_table3(preds, shown_cols, threshold=s.threshold, ppv_npv_method=s.ppv_npv_method,
                         auc_ci_method=s.auc_ci, n_boot=s.bootstrap_n, seed=cfg.seed,
                         fit_split=split_value, fit_name=fit_name)
    write_csv(t3, files["table3"], what="Table 3")
    from ..stats import delong_matrix

    dm = delong_matrix(test.label.to_numpy(), {c: test[c].to_numpy() for c in shown_cols})
    write_csv(dm, files["delong"], what="the DeLong tests")
    versus = EV.delong_against(preds, HEADLINE, base_models(cfg) + ["clinical"])
    write_csv(versus, files["delong_fusion"], what="the DeLong tests of the fusion")
    if rad is not None:
        write_csv(EV.delong_pairs(preds, radiomics_comparisons(cfg), "CNNs vs radiomics baselines"),
                  files["delong_radiomics"], what="the DeLong tests of the radiomics baselines")
    rad_main = [radiomics_headline(cfg), "clinical_radiomics"] if rad is not None else []
    main = {c: names[c] for c in base_models(cfg) + [HEADLINE, "clinical"] + rad_main}
    write_csv(EV.calibration_table(test, main), files["calibration"], what="the calibration table")
    write_csv(EV.reliability_long(test, main), files["reliability"], what="the reliability bins")
    dca = [HEADLINE] + base_models(cfg)[:1] + ["clinical"]
    write_csv(EV.decision_curves(test, {c: names[c] for c in dca}), files["decision_curve"],
              what="the decision curves")
    sub = EV.subgroup_auc(preds, prep.cohort, {c: names[c] for c in base_models(cfg) + [HEADLINE]},
                          ci_method=s.auc_ci, n_boot=s.bootstrap_n, seed=cfg.seed)
    write_csv(sub, files["subgroups"], what="the subgroup table")
    if "cv_summary" in files:
        units = {q: pd.read_csv(paths.unit_patient_predictions(q), dtype={"patient_id": str})
                 for q in cfg.sequences}
        w = pd.read_csv(paths.ensemble_weights).set_index("model").weight_used.to_dict()
        cv = EV.cv_summary(preds, units if len(cfg.sequences) > 1 else {}, w, main)
        write_csv(cv, files["cv_summary"], what="the cross-validation summary")
    _finish(paths, "evaluate", key, list(files.values()), t0, say)
    return _read_evaluation(cfg, fused, files, rad)


# ============================================================================ bundle
def _model_card(cfg: StudyConfig, info: dict, summary: dict, validation: dict,
                phantom: bool) -> str:
    rows = "\n".join(f"| {m['model']} | {m['threshold_from']} | {m['auc']:.3f} ({m['auc_low']:.3f}-"
                     f"{m['auc_high']:.3f}) | {m['sen']:.3f} | {m['spe']:.3f} | {m['ppv']:.3f} | {m['npv']:.3f} |"
                     for m in validation["test"])
    cal = "\n".join(f"| {c['model']} | {c['brier']:.3f} | {c['intercept']:.3f} | {c['slope']:.3f} |"
                    for c in validation["calibration"])
    oof = "".join(f"\n- {m['model']}: out-of-fold AUC {m['auc_oof']:.3f} ({m['auc_oof_low']:.3f}-"
                  f"{m['auc_oof_high']:.3f})" + (f"; fold AUCs {m['fold_auc_mean']:.3f} ± "
                                                 f"{m['fold_auc_sd']:.3f} over {m['fold_n']} folds"
                                                 if m["fold_n"] else "")
                  for m in validation.get("cv", []))
    design = (f"patient-level stratified {cfg.split.n_folds}-fold cross-validation "
              f"({cfg.split.repeats} repeat(s)); each sequence's test probability is the mean of "
              "its fold models" if cfg.split.scheme == "kfold" else
              f"a validation part ({cfg.split.val_fraction:.0%} of the development set) chose each "
              "model's checkpoint")
    warn = ("\n\n**Trained on the synthetic phantom.** These weights learnt a designed signal in "
            "synthetic images; they have no clinical meaning and must not be applied to patients.\n"
            if phantom else "")
    return f"""# Model card — ALNM prediction from multiparametric breast MRI

Run `{info.get('run_name')}`, created {info.get('created')}, alnm {__import__('alnm_core').__version__},
git commit `{info.get('git_commit')}`. Sequences: {', '.join(cfg.sequences)}; fusion: the paper's
weighted vote with weights from the {'test (paper-literal, optimistic)' if cfg.ensemble.weights_from == 'test' else fit_split(cfg)[1]}
accuracies.{warn}

## Intended use
Research on predicting axillary lymph node metastasis (pN1a or worse vs pN0) in invasive breast
cancer from preoperative axial T2WI, DWI and DCE-MRI with a tumour mask per series, reproducing
Zhang et al., Front. Oncol. 2022. Output: a probability per sequence and fused, and a decision at
frozen thresholds.

## Not intended for
Clinical decisions about an individual patient; patients unlike the training cohort (other
scanners, protocols, field strengths, populations, or after neoadjuvant therapy) without an
external validation (`alnm evaluate`); images without a reviewed tumour mask.

## Data
{summary['n_patients']} patients ({summary['n_alnm']} with ALNM, {summary['prevalence']:.1%}); development
set {summary['n_development']}, test set {summary['n_test']}. Field strength: {summary['field_strength']}.
Age {summary['age_mean']:.1f} ± {summary['age_sd']:.1f} years; tumour size {summary['size_mean']:.2f} ±
{summary['size_sd']:.2f} cm. Crops: {cfg.roi.size} × {cfg.roi.size} px, {cfg.roi.margin_mm:g} mm margin,
min-max normalised; DWI b = {'highest' if cfg.roi.dwi_b_value is None else cfg.roi.dwi_b_value};
DCE phase {cfg.roi.dce_phase}.

## How it was validated
The test set was fixed before training and used once. Inside the development set, {design}.
Thresholds, ensemble weights and stacking were fitted on the development predictions and frozen.{oof}

## Test-set performance (95% CIs: {validation['ci_method']})
| model | threshold | AUC | SEN | SPE | PPV | NPV |
| --- | --- | --- | --- | --- | --- | --- |
{rows}

## Calibration (test set)
| model | Brier | intercept | slope |
| --- | --- | --- | --- |
{cal}

## Limitations
Small samples give wide CIs; probabilities may be miscalibrated on another cohort (check the
calibration there); the model sees 2D crops around a given mask and inherits the mask's quality;
no prospective or external validation unless one was run with `alnm evaluate`.
"""


def bundle(paths: RunPaths, cfg: StudyConfig, *, progress: Progress | None = None,
           executor=None) -> Path:
    """Write the trained study as a model bundle (``RUN/model/``, :mod:`alnm_core.bundle`)."""
    from ..bundle import CHECKSUMS, write_bundle
    from ..phantom import phantom_settings

    say = progress or _quiet
    ev = evaluate(paths, cfg, progress=say, executor=executor)
    prep = prepare(paths, cfg, progress=say)
    key = make_key("bundle", STEP_VERSION["bundle"], record.step_state(paths, "evaluate")["key"])
    outputs = [paths.bundle / CHECKSUMS]
    if _current(paths, "bundle", key, outputs):
        return paths.bundle
    t0 = time.time()
    names = ev.names
    label = {v: k for k, v in names.items()}
    t3 = ev.table3
    youden = {label[m]: float(g.threshold.iloc[0]) for m, g in t3[t3.threshold_from.str.startswith("Youden")]
              .groupby("model")}
    models = list(cfg.sequences) + [HEADLINE]
    thresholds = {c: {"fixed": cfg.stats.threshold, **({"youden": youden[c]} if c in youden else {})}
                  for c in models}
    test = ev.predictions[ev.predictions.split == "test"]
    c = prep.cohort
    summary = {"n_patients": int(len(c)), "n_alnm": int(c.alnm.sum()), "prevalence": float(c.alnm.mean()),
               "n_development": int((prep.splits.split != "test").sum()), "n_test": int(len(test)),
               "field_strength": c.field_strength.value_counts().to_dict(),
               "age_mean": float(c.age.mean()), "age_sd": float(c.age.std()),
               "size_mean": float(c.tumor_size_cm.mean()), "size_sd": float(c.tumor_size_cm.std())}
    shown = {names[m] for m in base_models(cfg) + [HEADLINE]}
    cols = ["model", "threshold", "threshold_from", "auc", "auc_low", "auc_high", "acc", "sen", "spe", "ppv", "npv"]
    validation = {"scheme": cfg.split.scheme, "ci_method": str(t3.auc_ci_method.iloc[0]),
                  "test": t3[t3.model.isin(shown)][cols].to_dict("records"),
                  "calibration": ev.calibration[ev.calibration.model.isin(shown)]
                  [["model", "brier", "intercept", "slope"]].to_dict("records"),
                  "cv": [] if ev.cv_summary is None else
                  ev.cv_summary[ev.cv_summary.model.isin(shown)].to_dict("records")}
    units = {s: [(u.id, paths.checkpoint(s, u.id)) for u in grid(cfg, (s,))] for s in cfg.sequences}
    weights = pd.read_csv(paths.ensemble_weights).set_index("model").weight_used.astype(float).to_dict()
    card = _model_card(cfg, record.read(paths.root), summary, validation,
                       phantom_settings(prep.cohort_dir) is not None)
    write_bundle(paths.bundle, cfg=cfg, units=units, weights=weights, thresholds=thresholds,
                 internal_test=test[["label"] + models].reset_index(drop=True),
                 cohort_summary=summary, validation=validation, model_card=card,
                 run_name=paths.root.name)
    _finish(paths, "bundle", key, outputs, t0, say)
    return paths.bundle


#: the steps in pipeline order (the notebooks narrate them in this order)
ORDER = ("prepare", "describe_cohort", "extract_rois", "train", "fuse", "radiomics", "evaluate", "bundle")

__all__ = ["extract_radiomics", "radiomics", "radiomics_models", "radiomics_headline",
           "radiomics_comparisons", "RadiomicsResult", "bundle", "base_models", "table_models", "LeakageError", "check_roles", "CohortResult", "EvaluationResult", "Prepared", "RoiResult", "SequenceResult",
           "StepError", "Unit", "UnitResult", "describe_cohort", "evaluate", "excluded_patients",
           "extract_rois", "finished_unit", "fit_split", "fuse", "grid", "make_key", "model_names", "prepare",
           "table1_pair", "train", "train_all", "train_unit", "unit_roles", "unit_seed", "RoiError"]
