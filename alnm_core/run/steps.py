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
``evaluate``              table3, delong, calibration, subgroups, ...   fuse, prepare, stats
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
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import pandas as pd

from .. import ensemble as E
from .. import evaluation as EV
from ..cohort import load_cohort
from ..config import StatsConfig, StudyConfig
from ..roi import RoiError, SequenceCrops, extract_sequence
from ..splits import make_splits
from ..stats import build_table1
from ..storage import atomic_write_text, sha256_file, write_csv
from . import record
from .executor import LocalExecutor
from .paths import RunPaths

Progress = Callable[[str], None]

#: bumped when a step's computation changes, so that older results are recomputed
STEP_VERSION = {"prepare": 1, "describe_cohort": 2, "extract_rois": 1, "train_unit": 1,
                "train": 1, "fuse": 1, "evaluate": 2}


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
    if _current(paths, "prepare", key, [paths.splits]):
        return Prepared(cohort, pd.read_csv(paths.splits), cohort_dir, key)
    t0 = time.time()
    splits = make_splits(cohort, test_size=cfg.split.test_size, val_fraction=cfg.split.val_fraction,
                         n_folds=cfg.split.n_folds, seed=cfg.seed,
                         use_manifest_split=cfg.split.use_manifest_split)
    write_csv(splits, paths.splits, what="the patient-level split")
    _finish(paths, "prepare", key, [paths.splits], t0, say)
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
    """Every training unit of the study, in the order they are run locally."""
    return [Unit(s) for s in (sequences or cfg.sequences)]


def unit_roles(splits: pd.DataFrame, unit: Unit) -> pd.DataFrame:
    """``patient_id, label, role`` of a unit: ``train`` (fitted), ``val`` (checkpoint choice),
    and the predicted roles."""
    return splits[["patient_id", "label", "split"]].rename(columns={"split": "role"})


def unit_seed(cfg: StudyConfig, unit: Unit) -> int:
    """The seed of a unit's training (the run's seed for the hold-out design)."""
    return cfg.seed


class UnitResult(NamedTuple):
    """What a training unit produced (read back from its folder when it was up to date)."""

    unit: Unit
    key: str
    history: pd.DataFrame
    slices: pd.DataFrame  # patient_id, split (role), label, slice_index, area_mm2, prob
    info: dict  # best_epoch, seconds, device, crops_per_s, resumed_from_epoch, ...
    skipped: bool


def _unit_key(paths: RunPaths, cfg: StudyConfig, unit: Unit, roles: pd.DataFrame) -> str:
    roi_state = record.step_state(paths, f"roi:{unit.sequence}")
    if not roi_state:
        raise StepError(f"train_unit {unit}: the {unit.sequence} crops are missing: run the ROI step first")
    return make_key("train_unit", STEP_VERSION["train_unit"], roi_state["key"], asdict(cfg.train),
                    unit_seed(cfg, unit), roles.to_csv(index=False),
                    sorted(excluded_patients(paths)))


def _load_unit(paths: RunPaths, unit: Unit, key: str) -> UnitResult | None:
    rec = paths.unit_record(unit.sequence, unit.id)
    files = [rec, paths.checkpoint(unit.sequence, unit.id), paths.history(unit.sequence, unit.id),
             paths.unit_predictions(unit.sequence, unit.id)]
    if not all(f.is_file() for f in files):
        return None
    info = json.loads(rec.read_text())
    if info.get("key") != key:
        return None
    return UnitResult(unit, key, pd.read_csv(files[2]), pd.read_csv(files[3], dtype={"patient_id": str}),
                      info, True)


def train_unit(paths: RunPaths, cfg: StudyConfig, unit: Unit, *,
               progress: Progress | None = None, stop_after_epoch: int | None = None) -> UnitResult:
    """Train one unit of the grid; writes ``models/<SEQ>/<unit>/`` only.

    This is the unit of work an executor distributes: it reads the crops and the split from the
    run folder and writes nothing outside its own folder, so that workers on other machines can
    run it on a shared file system. The driver records the results in ``run.json``.
    """
    say = progress or _quiet
    splits = pd.read_csv(paths.splits, dtype={"patient_id": str})
    roles = unit_roles(splits, unit)
    key = _unit_key(paths, cfg, unit, roles)
    loaded = _load_unit(paths, unit, key)
    if loaded is not None:
        return loaded
    from ..training import UnitFiles  # torch is imported only when something is trained
    from ..training import train_unit as fit_unit
    crops = SequenceCrops.load(paths.roi(unit.sequence))
    s, u = unit.sequence, unit.id
    files = UnitFiles(paths.checkpoint(s, u), paths.resume_state(s, u), paths.history(s, u))
    res = fit_unit(crops, roles, cfg.train, files, seed=unit_seed(cfg, unit),
                   excluded=excluded_patients(paths), progress=say,
                   stop_after_epoch=stop_after_epoch)
    write_csv(res.slices, paths.unit_predictions(s, u), what=f"the {unit} predictions")
    info = {"key": key, "unit": u, "sequence": s, "repeat": unit.repeat, "fold": unit.fold,
            "best_epoch": int(res.best_epoch), "epochs": cfg.train.epochs,
            "selection": cfg.train.selection,
            "seconds": round(res.seconds, 2), "device": res.device, "num_threads": res.threads,
            "train_crops_per_s": round(res.crops_per_s, 1), "resumed_from_epoch": res.resumed_from,
            "finished": record.now()}
    atomic_write_text(paths.unit_record(s, u), json.dumps(info, indent=1),
                      what=f"the record of {unit}")
    return UnitResult(unit, key, res.history, res.slices, info, False)


# ============================================================================ train (a sequence)
class SequenceResult(NamedTuple):
    """A sequence's models and predictions."""

    sequence: str
    units: list[UnitResult]
    patients: pd.DataFrame  # predictions/<SEQ>.csv
    slices: pd.DataFrame  # predictions/<SEQ>_slices.csv


def _collect(cfg: StudyConfig, results: list[UnitResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patient and slice predictions of a sequence from its units."""
    from ..aggregation import aggregate

    slices = results[0].slices
    return aggregate(slices, cfg.train.aggregation), slices


def train(paths: RunPaths, cfg: StudyConfig, sequence: str, *, progress: Progress | None = None,
          executor=None) -> SequenceResult:
    """Train every unit of a sequence and write its predictions."""
    return train_all(paths, cfg, sequences=(sequence,), progress=progress, executor=executor)[sequence]


def train_all(paths: RunPaths, cfg: StudyConfig, *, sequences: Sequence[str] | None = None,
              progress: Progress | None = None, executor=None) -> dict[str, SequenceResult]:
    """Train the grid of the given sequences (all by default) and write their predictions.

    Args:
        executor: runs the units (:mod:`alnm_core.run.executor`); in process by default.
    """
    say = progress or _quiet
    seqs = tuple(sequences or cfg.sequences)
    extract_rois(paths, cfg, sequences=seqs, progress=say)
    units = grid(cfg, seqs)
    work = functools.partial(train_unit, paths, cfg, progress=say)
    results = (executor or LocalExecutor()).run(work, units, progress=say)
    out = {}
    for seq in seqs:
        mine = [r for r in results if r.unit.sequence == seq]
        name = f"train:{seq}"
        key = make_key("train", STEP_VERSION["train"], [r.key for r in mine], cfg.train.aggregation)
        outputs = [paths.predictions(seq), paths.slice_predictions(seq)]
        if _current(paths, name, key, outputs):
            out[seq] = SequenceResult(seq, mine, pd.read_csv(outputs[0], dtype={"patient_id": str}),
                                      pd.read_csv(outputs[1], dtype={"patient_id": str}))
            continue
        t0 = time.time()
        patients, slices = _collect(cfg, mine)
        write_csv(slices, outputs[1], what=f"the {seq} slice predictions")
        write_csv(patients, outputs[0], what=f"the {seq} predictions")
        record.update(paths, training={seq: {r.unit.id: {k: v for k, v in r.info.items() if k != "key"}
                                             for r in mine}})
        _finish(paths, name, key, outputs, t0, say)
        out[seq] = SequenceResult(seq, mine, pd.read_csv(outputs[0], dtype={"patient_id": str}),
                                  pd.read_csv(outputs[1], dtype={"patient_id": str}))
    return out


# ============================================================================ fuse
def fit_split(cfg: StudyConfig) -> tuple[str, str]:
    """``(split value, name)`` of the development predictions that thresholds, ensemble weights
    and stacking are fitted on."""
    return "val", "validation"


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
    if len(cfg.sequences) < 2:
        raise StepError("fuse: fusion needs at least two sequences")
    res = E.fuse({s: trained[s].patients for s in cfg.sequences}, fit_split=split_value,
                 weights_from=cfg.ensemble.weights_from, threshold=cfg.stats.threshold)
    write_csv(res.ensemble, outputs[0], what="the fused predictions")
    write_csv(res.weights, outputs[1], what="the ensemble weights")
    record.update(paths, ensemble={"weights_from": cfg.ensemble.weights_from,
                                   "weights": res.weights.set_index("model").weight_used.round(4).to_dict()})
    _finish(paths, "fuse", key, outputs, t0, say)
    return E.FusionResult(pd.read_csv(outputs[0], dtype={"patient_id": str}), pd.read_csv(outputs[1]))


# ============================================================================ evaluate
HEADLINE = "weighted_vote"


def model_names(cfg: StudyConfig) -> dict[str, str]:
    """Prediction column -> display name, in table order."""
    _, fit_name = fit_split(cfg)
    labels = E.method_labels(cfg.ensemble.weights_from, fit_name)
    alt = "weighted_vote_test_weights" if cfg.ensemble.weights_from == "validation" else "weighted_vote_fit_weights"
    names = {s: s for s in cfg.sequences}
    names[HEADLINE] = "Multiparametric MRI"
    for k in (alt, "soft_vote", "majority_vote", "stacking"):
        names[k] = labels[k]
    names["clinical"] = "Clinical baseline (logistic: age, size, margin, TIC)"
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


def _evaluation_outputs(paths: RunPaths) -> dict[str, Path]:
    a = paths.artifacts
    return {"clinical": paths.predictions("clinical"), "table3": paths.table3, "delong": paths.delong,
            "delong_fusion": paths.delong_fusion, "calibration": paths.calibration,
            "reliability": a / "reliability.csv", "decision_curve": a / "decision_curve.csv",
            "subgroups": paths.subgroups}


def _read_evaluation(cfg: StudyConfig, fused: pd.DataFrame, files: dict[str, Path]) -> EvaluationResult:
    clin = pd.read_csv(files["clinical"], dtype={"patient_id": str})
    preds = fused.merge(clin[["patient_id", "prob"]].rename(columns={"prob": "clinical"}), on="patient_id")
    t = {k: pd.read_csv(v) for k, v in files.items() if k != "clinical"}
    return EvaluationResult(preds, model_names(cfg), t["table3"], t["delong"], t["delong_fusion"],
                            t["calibration"], t["reliability"], t["decision_curve"], t["subgroups"])


def evaluate(paths: RunPaths, cfg: StudyConfig, *, progress: Progress | None = None,
             executor=None) -> EvaluationResult:
    """Table 3, DeLong tests, calibration, decision curves, subgroups and the clinical baseline,
    all on the test patients with thresholds frozen on the development predictions."""
    say = progress or _quiet
    fused = fuse(paths, cfg, progress=say, executor=executor).ensemble
    prep = prepare(paths, cfg, progress=say)
    split_value, fit_name = fit_split(cfg)
    files = _evaluation_outputs(paths)
    key = make_key("evaluate", STEP_VERSION["evaluate"], record.step_state(paths, "fuse")["key"],
                   prep.key, asdict(cfg.stats), cfg.ensemble.weights_from, split_value)
    if _current(paths, "evaluate", key, list(files.values())):
        return _read_evaluation(cfg, fused, files)
    t0 = time.time()
    names = model_names(cfg)
    clin = EV.clinical_baseline(prep.cohort, prep.splits)
    write_csv(clin, files["clinical"], what="the clinical baseline's predictions")
    preds = fused.merge(clin[["patient_id", "prob"]].rename(columns={"prob": "clinical"}), on="patient_id")
    test = preds[preds.split == "test"]
    s = cfg.stats
    t3 = EV.build_table3(preds, names, threshold=s.threshold, ppv_npv_method=s.ppv_npv_method,
                         auc_ci_method=s.auc_ci, n_boot=s.bootstrap_n, seed=cfg.seed,
                         fit_split=split_value, fit_name=fit_name)
    write_csv(t3, files["table3"], what="Table 3")
    from ..stats import delong_matrix

    dm = delong_matrix(test.label.to_numpy(), {c: test[c].to_numpy() for c in names})
    write_csv(dm, files["delong"], what="the DeLong tests")
    versus = EV.delong_against(preds, HEADLINE, list(cfg.sequences) + ["clinical"])
    write_csv(versus, files["delong_fusion"], what="the DeLong tests of the fusion")
    shown = {c: names[c] for c in list(cfg.sequences) + [HEADLINE, "clinical"]}
    write_csv(EV.calibration_table(test, shown), files["calibration"], what="the calibration table")
    write_csv(EV.reliability_long(test, shown), files["reliability"], what="the reliability bins")
    write_csv(EV.decision_curves(test, {c: names[c] for c in (HEADLINE, cfg.sequences[0], "clinical")}),
              files["decision_curve"], what="the decision curves")
    sub = EV.subgroup_auc(preds, prep.cohort, {c: names[c] for c in list(cfg.sequences) + [HEADLINE]},
                          ci_method=s.auc_ci, n_boot=s.bootstrap_n, seed=cfg.seed)
    write_csv(sub, files["subgroups"], what="the subgroup table")
    _finish(paths, "evaluate", key, list(files.values()), t0, say)
    return _read_evaluation(cfg, fused, files)


#: the steps in pipeline order (the notebooks narrate them in this order)
ORDER = ("prepare", "describe_cohort", "extract_rois", "train", "fuse", "evaluate")

__all__ = ["CohortResult", "EvaluationResult", "Prepared", "RoiResult", "SequenceResult",
           "StepError", "Unit", "UnitResult", "describe_cohort", "evaluate", "excluded_patients",
           "extract_rois", "fit_split", "fuse", "grid", "make_key", "model_names", "prepare",
           "table1_pair", "train", "train_all", "train_unit", "unit_roles", "unit_seed", "RoiError"]
