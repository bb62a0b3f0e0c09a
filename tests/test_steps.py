"""The step layer: each step alone, its artifacts and nothing else, reruns that do no work, and
every configuration key changing what is computed (or being refused)."""
from __future__ import annotations

import dataclasses
import json
import time
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alnm_core.config import ConfigError, StudyConfig, resolve_config
from alnm_core.run import record, steps
from alnm_core.run.paths import RunPaths
from conftest import link_copy

BASE = ["train.epochs=1", "stats.bootstrap_n=100", "split.scheme=holdout", "train.selection=best_val_auc"]


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def base_run(smoke_cohort, tmp_path_factory):
    """A run of every step on the smoke cohort (1 epoch), without notebooks."""
    cfg = resolve_config("smoke", overrides=BASE)
    paths = RunPaths(tmp_path_factory.mktemp("steps") / "base")
    steps.prepare(paths, cfg, smoke_cohort)
    steps.describe_cohort(paths, cfg)
    steps.evaluate(paths, cfg)
    return paths, cfg


def test_each_step_alone_writes_only_its_artifacts(smoke_cohort, tmp_path):
    cfg = resolve_config("smoke", overrides=BASE + ["sequences=[T2WI, DWI]"])
    paths = RunPaths(tmp_path / "run")
    expected = [
        (lambda: steps.prepare(paths, cfg, smoke_cohort), {"run.json", "artifacts/splits.csv"}),
        (lambda: steps.describe_cohort(paths, cfg), {"artifacts/table1.csv"}),
        (lambda: steps.extract_rois(paths, cfg, sequences=("T2WI",)), {"artifacts/roi/T2WI.npz"}),
        (lambda: steps.train_unit(paths, cfg, steps.Unit("T2WI")),
         {f"artifacts/models/T2WI/holdout/{f}" for f in
          ("checkpoint.pt", "history.csv", "predictions.csv", "roles.csv", "unit.json")}),
        (lambda: steps.train(paths, cfg, "T2WI"),
         {"artifacts/predictions/T2WI.csv", "artifacts/predictions/T2WI_slices.csv",
          "artifacts/predictions/T2WI_units.csv"}),
    ]
    for call, new in expected:
        before = _files(paths.root) if paths.root.exists() else {}
        call()
        after = _files(paths.root)
        written = {f for f in after if f not in before or after[f] != before[f]} - {"run.json"}
        assert written == new - {"run.json"}, (new, written)
    # the DWI step brings its own upstream (crops) up to date, then fuse and evaluate
    steps.fuse(paths, cfg)
    assert paths.predictions("ensemble").is_file() and paths.roi("DWI").is_file()
    assert not list(paths.artifacts.rglob("*.tmp*")) and not paths.lock.exists()


def test_a_rerun_with_nothing_changed_does_no_work(base_run):
    paths, cfg = base_run
    before = _files(paths.root)
    t0 = time.perf_counter()
    res = steps.evaluate(paths, cfg)
    seconds = time.perf_counter() - t0
    after = _files(paths.root)
    assert {f for f in after if after[f] != before.get(f)} <= {"run.json"}
    assert set(res.table3.model) >= {"T2WI", "DWI", "DCE", "Multiparametric MRI"}
    print(f"\nevaluate with every step up to date: {seconds:.2f} s")
    assert all(json.loads(paths.unit_record(s, "holdout").read_text())["epochs"] == 1
               for s in cfg.sequences)


# --------------------------------------------------------------------------- every option matters
def _all_keys(cls=StudyConfig, prefix="") -> set[str]:
    out = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out |= _all_keys(hints[f.name], prefix + f.name + ".")
        else:
            out.add(prefix + f.name)
    return out


def _roi(seq):
    return lambda p: np.load(p.roi(seq))["crops"]


def _pred(seq):
    return lambda p: pd.read_csv(p.predictions(seq)).prob.to_numpy()


def _csv(path_fn):
    return lambda p: pd.read_csv(path_fn(p)).to_csv(index=False)


def _unit(key):
    return lambda p: json.loads(p.unit_record("T2WI", "holdout").read_text())[key]


# key -> (overrides applied on top of BASE for the base *and* the flip, flipped value, step
# to run, observable) ; an observable is a function of the RunPaths whose value must change
FLIPS = {
    "seed": ([], "8", "prepare", _csv(lambda p: p.splits)),
    "sequences": ([], "[T2WI, DWI]", "fuse", _csv(lambda p: p.ensemble_weights)),
    "split.test_size": ([], "8", "prepare", _csv(lambda p: p.splits)),
    "split.val_fraction": ([], "0.4", "prepare", _csv(lambda p: p.splits)),
    "split.n_folds": (["split.scheme=kfold"], "3", "prepare", _csv(lambda p: p.splits)),
    "split.scheme": ([], "kfold", "prepare", _csv(lambda p: p.splits)),
    "split.repeats": (["split.scheme=kfold"], "2", "prepare", _csv(lambda p: p.folds)),
    "split.test_where": ([], "field_strength=3T", "prepare", _csv(lambda p: p.splits)),
    "roi.size": ([], "24", "roi", _roi("T2WI")),
    "roi.margin_mm": ([], "3.0", "roi", _roi("T2WI")),
    "roi.keep_aspect": ([], "false", "roi", _roi("T2WI")),
    "roi.min_area_mm2": ([], "15.0", "roi", _roi("T2WI")),
    "roi.slices": ([], "largest", "roi", _roi("T2WI")),
    "roi.central_k": (["roi.slices=central"], "1", "roi", _roi("T2WI")),
    "roi.dwi_b_value": ([], "50", "roi_dwi", _roi("DWI")),
    "roi.dce_phase": ([], "'2'", "roi_dce", _roi("DCE")),
    "train.arch": ([], "resnet34", "train", _pred("T2WI")),
    "train.in_channels": ([], "1", "train", _pred("T2WI")),
    "train.epochs": ([], "2", "train", _csv(lambda p: p.history("T2WI", "holdout"))),
    "train.batch_size": ([], "8", "train", _pred("T2WI")),
    "train.lr": ([], "0.01", "train", _pred("T2WI")),
    "train.weight_decay": ([], "0.1", "train", _pred("T2WI")),
    "train.augment": ([], "false", "train", _pred("T2WI")),
    "train.class_weighting": ([], "none", "train", _pred("T2WI")),
    "train.selection": ([], "last", "train", _unit("selection")),
    "train.aggregation": ([], "max", "train", _pred("T2WI")),
    "train.num_threads": ([], "1", "train", _unit("num_threads")),
    "train.keep_resume_state": ([], "true", "train", lambda p: p.resume_state("T2WI", "holdout").exists()),
    "train.checkpoint_dtype": ([], "float32", "train", lambda p: p.checkpoint("T2WI", "holdout").stat().st_size),
    "radiomics.enabled": ([], "false", "evaluate", _csv(lambda p: p.table3)),
    "radiomics.feature_classes": ([], "[shape, firstorder]", "radfeat", _csv(lambda p: p.radiomics_features("T2WI"))),
    # first order only: finer bins, or raw intensities (hundreds of grey levels), make texture slow
    "radiomics.bin_width": (["radiomics.feature_classes=[firstorder]"], "20.0", "radfeat", _csv(lambda p: p.radiomics_features("T2WI"))),
    "radiomics.resample_mm": ([], "null", "radfeat", _csv(lambda p: p.radiomics_features("T2WI"))),
    "radiomics.normalize": (["radiomics.feature_classes=[firstorder]"], "false", "radfeat", _csv(lambda p: p.radiomics_features("T2WI"))),
    "radiomics.penalty": ([], "elasticnet", "radiomics", _csv(lambda p: p.predictions("radiomics"))),
    "radiomics.corr_threshold": ([], "0.5", "radiomics", _csv(lambda p: p.radiomics_model)),
    "radiomics.inner_folds": ([], "2", "radiomics", _csv(lambda p: p.predictions("radiomics"))),
    "ensemble.weights_from": ([], "test", "fuse", lambda p: pd.read_csv(p.predictions("ensemble")).weighted_vote.to_numpy()),
    "stats.alpha": (["stats.alpha=0.0001"], "0.99", "table1", _csv(lambda p: p.table1)),
    "stats.categorical_test": ([], "chi2", "table1", _csv(lambda p: p.table1)),
    "stats.categorical_test_test_set": ([], "chi2", "table1", _csv(lambda p: p.table1)),
    "stats.auc_ci": ([], "bootstrap", "evaluate", _csv(lambda p: p.table3)),
    "stats.continuous_test": (["stats.continuous_test=mannwhitney"], "t", "table1", _csv(lambda p: p.table1)),
    "stats.normality_test": ([], "lilliefors", "table1", _csv(lambda p: p.table1)),
    "stats.ppv_npv_method": ([], "logit", "evaluate", _csv(lambda p: p.table3)),
    "stats.bootstrap_n": ([], "150", "evaluate", _csv(lambda p: p.table3)),
    "stats.threshold": ([], "0.3", "evaluate", _csv(lambda p: p.table3)),
}

#: keys checked elsewhere, each with the test that shows its effect
ELSEWHERE = {
    "profile": "a name only: recorded in run.json and the report header (test_pipeline)",
    "phantom.n_patients": "test_phantom_keys_change_the_phantom",
    "phantom.seed": "test_phantom_keys_change_the_phantom",
    "phantom.matrix_scale": "test_phantom_keys_change_the_phantom",
    "phantom.strength_t2wi": "test_phantom_keys_change_the_phantom",
    "phantom.strength_dwi": "test_phantom_keys_change_the_phantom",
    "phantom.strength_dce": "test_phantom_keys_change_the_phantom",
    "split.use_manifest_split": "test_manifest_split_key",
    "roi.on_error": "test_roi.py::test_bad_input_fails_or_is_listed (fail vs exclude)",
    "roi.series_description": "test_dicom.py (series rules choose the series of a study folder)",
    "train.pretrained": "test_training.py::test_model_builders_and_weights (refused offline)",
    "train.weights_path": "test_refused_keys (missing file) and test_training.py (weights load)",
    "train.device": "test_refused_keys (cuda without a GPU)",
    "radiomics.on_error": "test_radiomics.py::test_a_failing_patient_is_named_or_listed_and_results_are_cached",
    # run.*: where the units train, never what they compute (same predictions, test_ray.py)
    "run.executor": "test_ray.py::test_ray_grid_equals_local_and_survives_a_killed_worker (units "
                    "train in Ray workers: unit.json names another process)",
    "run.max_retries": "test_ray.py::test_ray_grid_equals_local_and_survives_a_killed_worker "
                       "(retried) and test_a_unit_that_fails_for_good_stops_the_run (0: not retried)",
    "run.ray_address": "test_ray.py::test_joining_a_cluster_packs_units_by_their_resources",
    "run.cpus_per_task": "test_ray.py::test_joining_a_cluster_packs_units_by_their_resources",
    "run.gpus_per_task": "test_ray.py::test_joining_a_cluster_packs_units_by_their_resources",
}

RUN = {
    "prepare": lambda p, c: steps.prepare(p, c),
    "table1": lambda p, c: steps.describe_cohort(p, c),
    "roi": lambda p, c: steps.extract_rois(p, c, sequences=("T2WI",)),
    "roi_dwi": lambda p, c: steps.extract_rois(p, c, sequences=("DWI",)),
    "roi_dce": lambda p, c: steps.extract_rois(p, c, sequences=("DCE",)),
    "train": lambda p, c: steps.train(p, c, "T2WI"),
    "fuse": lambda p, c: steps.fuse(p, c),
    "radfeat": lambda p, c: steps.extract_radiomics(p, c, sequences=("T2WI",)),
    "radiomics": lambda p, c: steps.radiomics(p, c),
    "evaluate": lambda p, c: steps.evaluate(p, c),
}


def test_every_key_is_covered():
    assert _all_keys() == set(FLIPS) | set(ELSEWHERE)


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("key", sorted(FLIPS))
def test_flipping_a_key_changes_what_is_computed(key, base_run, smoke_cohort, tmp_path):
    paths, base_cfg = base_run
    extra, value, step, observe = FLIPS[key]
    if extra:  # a base that makes the key matter, computed in its own copy
        ref = RunPaths(link_copy(paths.root, tmp_path / "ref"))
        ref_cfg = resolve_config("smoke", overrides=BASE + extra)
        record.update(ref, config=ref_cfg.to_dict())
        RUN[step](ref, ref_cfg)
    else:
        ref, ref_cfg = paths, base_cfg
    flip = RunPaths(link_copy(ref.root, tmp_path / "flip"))
    cfg = resolve_config("smoke", overrides=BASE + extra + [f"{key}={value}"])
    record.update(flip, config=cfg.to_dict())
    RUN[step](flip, cfg)
    assert not _same(observe(ref), observe(flip)), f"{key}={value} did not change the result"


def test_phantom_keys_change_the_phantom():
    from alnm_core.config import PhantomConfig
    from alnm_core.phantom import draw_patients, render_series

    base = PhantomConfig(n_patients=8, matrix_scale=0.2)
    p0 = draw_patients(base)[0]
    img0 = render_series(p0, "T2WI", base)[0]
    for k, v in (("n_patients", 9), ("seed", 3), ("matrix_scale", 0.25), ("strength_t2wi", 0.0),
                 ("strength_dwi", 0.0), ("strength_dce", 1.0)):
        cfg = dataclasses.replace(base, **{k: v})
        pats = draw_patients(cfg)
        changed = (len(pats) != 8 or pats != draw_patients(base)
                   or not np.array_equal(render_series(pats[0], "T2WI", cfg)[0], img0))
        assert changed, k


def test_manifest_split_key(cohort_copy):
    cohort = pd.read_csv(cohort_copy / "cohort.csv")
    cohort["split"] = ["test" if i % 4 == 0 else "train" for i in range(len(cohort))]
    cohort.to_csv(cohort_copy / "cohort.csv", index=False)
    from alnm_core.cohort import load_cohort
    from alnm_core.splits import make_splits

    df = load_cohort(cohort_copy)
    honoured = make_splits(df, test_size=2, use_manifest_split=True, seed=1)
    ignored = make_splits(df, test_size=2, use_manifest_split=False, seed=1)
    assert (honoured.split == "test").sum() == 3 and (ignored.split == "test").sum() == 2


def test_refused_keys(base_run, tmp_path):
    import torch

    from alnm_core.models import WeightsUnavailable
    from alnm_core.training import TrainingError

    paths, _ = base_run
    run = RunPaths(link_copy(paths.root, tmp_path / "r"))
    cfg = resolve_config("smoke", overrides=BASE + ["train.weights_path=/nonexistent/w.pth"])
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        steps.train(run, cfg, "T2WI")
    if not torch.cuda.is_available():
        cfg = resolve_config("smoke", overrides=BASE + ["train.device=cuda"])
        with pytest.raises(TrainingError, match="no CUDA device"):
            steps.train(run, cfg, "T2WI")
    with pytest.raises(ConfigError, match="not one of"):
        resolve_config("smoke", overrides=["ensemble.weights_from=oracle"])
