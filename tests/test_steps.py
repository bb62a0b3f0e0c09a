"""The declared step graph: one place for the graph, keys from configuration and upstream only,
`alnm status` naming what changed, one writer per artifact, steps reading only what they declare,
and every configuration key changing what is computed (or explained)."""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alnm_core.config import ConfigError, StudyConfig, resolve_config
from alnm_core.run import registry as R
from alnm_core.run.graph import Graph, GraphError, Output, Step, StepError, config_values
from alnm_core.runfolder import record
from alnm_core.runfolder.paths import RunPaths
from conftest import link_copy, run_steps

REPO = Path(__file__).resolve().parent.parent
FLIP_BASE = ["train.epochs=1", "stats.bootstrap_n=100", "split.scheme=holdout",
             "train.selection=best_val_auc", "sequences=[T2WI]", "train.num_threads=1"]


def _leaves(cls=StudyConfig, prefix="") -> set[str]:
    out = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out |= _leaves(hints[f.name], prefix + f.name + ".")
        else:
            out.add(prefix + f.name)
    return out


# --------------------------------------------------------------------------- the graph itself
def test_every_configuration_key_is_read_by_a_step_or_explained():
    cfg = resolve_config("demo", overrides=["radiomics.enabled=true"]).to_dict()
    read = set()
    for s in R.STEPS:
        read |= set(config_values(cfg, s.config, s.ignore))
    unexplained = sorted(k for k in _leaves() if k not in read and k.split(".")[0] not in R.NOT_READ)
    assert not unexplained, f"declare these keys on the steps that read them: {unexplained}"


def test_one_writer_per_artifact_and_upstream_declared_first():
    cfg = resolve_config("smoke")
    g = Graph(R.STEPS, cfg)
    assert len(g.writers) == sum(len(i.outputs(cfg)) for i in g.instances)
    dup = R.STEPS + (Step(name="rogue", compute=lambda c: None, load=lambda c: None,
                          outputs=(Output(path="artifacts/table3.csv"),)),)
    with pytest.raises(GraphError, match="table3.csv has two writers: evaluate and rogue"):
        Graph(dup, cfg)
    early = (Step(name="late", compute=lambda c: None, load=lambda c: None, upstream=("prepare",)),) + R.STEPS
    with pytest.raises(GraphError, match="must be declared before it"):
        Graph(early, cfg)


def test_conditional_steps_and_instances_follow_the_configuration():
    names = [i.name for i in R.graph_for(resolve_config("smoke", overrides=["radiomics.enabled=false",
                                                                             "sequences=[DCE]"])).instances]
    assert names == ["prepare", "describe_cohort", "roi:DCE", "train_units", "train:DCE", "describe_model:DCE",
                     "fuse", "clinical", "evaluate", "crosscheck", "bundle"]


def test_the_architecture_doc_holds_the_generated_step_table():
    doc = (REPO / "docs" / "architecture.md").read_text()
    assert f"{R.BEGIN}\n{R.markdown_table()}\n{R.END}" in doc, (
        "docs/architecture.md is out of date: python -m alnm_core.run.registry docs/architecture.md")


# --------------------------------------------------------------------------- keys and status
def _recorded_run(tmp_path: Path, cohort: Path, cfg) -> RunPaths:
    """A run folder whose run.json records every step as run with ``cfg`` (keys only, no
    artifacts: enough to ask the graph what a changed key makes stale)."""
    from alnm_core.run.pipeline import start_record

    paths = RunPaths(tmp_path / "run")
    start_record(paths, cfg, cohort.resolve(), 12)
    r = R.runner_for(paths, cfg)
    for inst in r.graph.instances:
        record.finish_step(paths, inst.name, key=r.key(inst.name), outputs=[], seconds=0,
                           inputs=r.inputs(inst.name))
    return paths


def _stale(paths: RunPaths, cfg, cache: dict | None = None) -> dict[str, list[str]]:
    r = R.runner_for(paths, cfg)
    r.cache.update(cache or {})  # the cohort and its file signatures, read once per module
    return {s.name: s.reasons for s in r.status() if s.state == "stale"}


@pytest.fixture(scope="module")
def recorded(tiny_cohort, tmp_path_factory):
    """A run.json recording every step of the demo profile (radiomics on) as run, and the facts
    read from the cohort, shared by the key tests."""
    base = resolve_config("demo", overrides=["radiomics.enabled=true"])
    paths = _recorded_run(tmp_path_factory.mktemp("recorded"), tiny_cohort, base)
    r = R.runner_for(paths, base)
    r.status()
    return paths, base, dict(r.cache)


#: a value for each key that changes it under the demo profile with radiomics on
FLIP_VALUES = {
    "seed": 7, "sequences": ["T2WI", "DWI"], "split.scheme": "holdout", "split.test_size": 0.3,
    "split.val_fraction": 0.3, "split.n_folds": 3, "split.repeats": 2, "split.use_manifest_split": False,
    "split.test_where": "field_strength=3T", "roi.size": 32, "roi.margin_mm": 4.0, "roi.keep_aspect": False,
    "roi.min_area_mm2": 9.0, "roi.slices": "all", "roi.central_k": 2, "roi.dwi_b_value": 50.0,
    "roi.dce_phase": "2", "roi.on_error": "exclude", "roi.series_description": {"DWI": "diff"},
    "train.models": ["slice_vote"], "train.arch": "resnet34", "train.pretrained": True,
    "train.weights_path": "/w.pth", "train.in_channels": 1, "train.epochs": 3, "train.batch_size": 8,
    "train.lr": 0.01, "train.weight_decay": 0.1, "train.augment": False, "train.class_weighting": "none",
    "train.selection": "best_val_auc", "train.aggregation": "max", "train.device": "cpu",
    "train.num_threads": 1, "train.keep_resume_state": True, "train.checkpoint_dtype": "float32", "train.cpu_isa": "native",
    "ensemble.weights_from": "test", "ensemble.members": ["slice_vote_T2WI", "slice_vote_DWI"],
    "ensemble.weight_rule": "above_chance",
    "radiomics.enabled": False, "radiomics.feature_classes": ["shape"], "radiomics.bin_width": 5.0,
    "radiomics.resample_mm": None, "radiomics.normalize": False, "radiomics.penalty": "elasticnet",
    "radiomics.corr_threshold": 0.5, "radiomics.inner_folds": 3, "radiomics.on_error": "fail",
    "clinical.covariates": ["age", "tumor_size_cm"], "stats.alpha": 0.01,
    "input.allow_outside_cohort": True, "input.max_voxels": 10**7, "input.max_files": 500,
    "input.trusted_folders": ["/tmp"], "stats.categorical_test": "chi2", "stats.categorical_test_test_set": "fisher",
    "stats.continuous_test": "t", "stats.normality_test": "lilliefors", "stats.auc_ci": "bootstrap",
    "stats.ppv_npv_method": "logit", "stats.bootstrap_n": 500, "stats.threshold": 0.4,
    "stats.ordinal_test": "categorical", "stats.primary_comparisons": ["weighted_vote vs clinical"],
    "stats.recalibration": "isotonic",
    "mil.pooling": "mean", "mil.attention_hidden": 16, "mil.dropout": 0.5, "mil.max_slices": 4,
    "tune.enabled": True, "tune.space": "ranges", "tune.n_trials": 3, "tune.metric": "val_loss",
    "tune.nested": True, "tune.inner_folds": 2, "tune.pruner": "none", "tune.epochs": 1, "tune.seed": 3,
}


@pytest.mark.parametrize("key", sorted(k for k in _leaves() if k.split(".")[0] not in R.NOT_READ
                                       and k != "profile"))
def test_a_changed_key_makes_exactly_its_steps_and_their_downstream_stale(key, recorded):
    """For every configuration key: the steps that declare it, and everything downstream of
    them, are stale (naming the key or the upstream step); nothing else is."""
    paths, base, cache = recorded
    data = base.to_dict()
    section, _, leaf = key.partition(".")
    if leaf:
        data[section][leaf] = FLIP_VALUES[key]
    else:
        data[key] = FLIP_VALUES[key]
    from alnm_core.config import config_from_dict

    cfg = config_from_dict(data)
    g = R.graph_for(cfg)
    before = {i.name for i in R.graph_for(base).instances}
    direct = {i.name for i in g.instances if i.name in before
              and key in config_values(cfg.to_dict(), i.step.config, i.step.ignore)}
    expected = set(direct)
    for d in direct:
        expected |= set(g.downstream(d))
    new = {i.name for i in g.instances if i.name not in before}  # never ran (e.g. a new model's step)
    for n in new:  # a step the key switched on (tune.enabled): what reads it must be redone
        expected |= set(g.downstream(n))
    old = R.graph_for(base)
    for gone in before - {i.name for i in g.instances}:  # a step the key switched off
        expected |= set(old.downstream(gone))
    expected = (expected - new) & {i.name for i in g.instances}
    stale = _stale(paths, cfg, cache)
    assert set(stale) == expected, key
    for d in direct & set(stale):
        if d in before:
            assert any(r.startswith(f"config {key}:") for r in stale[d]), (d, stale[d])


def test_status_after_flipping_train_epochs_names_the_key_and_nothing_upstream(tiny_cohort, tmp_path, capsys):
    from alnm_core.cli import main

    base = resolve_config("smoke")
    paths = _recorded_run(tmp_path, tiny_cohort, base)
    stale = _stale(paths, resolve_config("smoke", overrides=["train.epochs=5"]))
    assert stale["train_units"] == ["config train.epochs: 2 -> 5"]
    assert "upstream train_units changed" in stale["train:T2WI"]
    assert not {"prepare", "describe_cohort", "roi:T2WI", "radiomics_features:T2WI", "radiomics",
                "clinical"} & set(stale)
    assert {"fuse", "evaluate", "bundle", "crosscheck"} <= set(stale)
    # alnm status reads the run's own configuration: its artifacts are missing here
    assert main(["status", str(paths.root)]) == 0
    out = capsys.readouterr().out
    assert "missing (output artifacts/splits.csv is gone" in out
    assert main(["status", str(tmp_path / "nowhere")]) == 2


# --------------------------------------------------------------------------- running the steps
def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


@pytest.mark.slow
def test_each_step_reads_only_its_declared_upstream_and_writes_only_its_outputs(study, tmp_path):
    """Each step, in a run folder holding only its upstream steps' outputs (and their records),
    computes and writes exactly its declared artifacts. (A step reads an upstream result only
    through ``call.up``, which refuses an undeclared one: the step test below.)"""
    src, cfg = study(*FLIP_BASE[:-2], "sequences=[T2WI, DWI]")
    done = R.runner_for(src, cfg)
    info = record.read(src.root)
    for inst in done.graph.instances:
        run = RunPaths(tmp_path / inst.name.replace(":", "_"))
        (run.root / "artifacts").mkdir(parents=True)
        closure, todo = set(), list(inst.upstream)
        while todo:
            u = todo.pop()
            if u not in closure:
                closure.add(u)
                todo += list(done.graph[u].upstream)
        keep = {"run.json"}
        for u in closure:
            keep |= set(info["steps"][u]["outputs"])
        for rel in keep:
            s, d = src.root / rel, run.root / rel
            d.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree(s, d) if s.is_dir() else shutil.copy2(s, d))
        steps = {k: v for k, v in info["steps"].items() if k in closure}
        json_ = {**info, "steps": steps}
        run.run_json.write_text(json.dumps(json_))
        before = _files(run.root)
        R.runner_for(run, cfg).get(inst.name)
        after = _files(run.root)
        written = {f for f in after if after[f] != before.get(f)} - {"run.json"}
        declared = inst.outputs(cfg)
        assert written and all(any(w == d or (d.endswith("/") and w.startswith(d)) for d in declared)
                               for w in written), (inst.name, written, declared)


@pytest.mark.slow
def test_a_step_writing_an_undeclared_artifact_fails_naming_it(study, tmp_path):
    src, cfg = study(*FLIP_BASE)
    run = RunPaths(link_copy(src.root, tmp_path / "r"))

    def sneaky(call):
        (call.paths.artifacts / "extra.csv").write_text("x\n")
        return call.out("artifacts/table1.csv").write_text("y\n")

    steps = tuple(dataclasses.replace(s, compute=sneaky) if s.name == "describe_cohort" else s for s in R.STEPS)
    record.forget_step(run, "describe_cohort")
    from alnm_core.run.graph import Runner

    with pytest.raises(StepError, match=r"describe_cohort wrote \['artifacts/extra.csv'\], which it does not declare"):
        Runner(run, cfg, steps).get("describe_cohort")


@pytest.mark.slow
def test_a_rerun_with_nothing_changed_does_no_work_and_keys_are_computed_once(study, tmp_path, monkeypatch):
    from alnm_core.run import steps_data

    paths, cfg = study(*FLIP_BASE)
    before = _files(paths.root)
    calls = []
    real_load = steps_data.load_cohort
    monkeypatch.setattr(steps_data, "load_cohort", lambda *a, **k: calls.append(a) or real_load(*a, **k))
    t0 = time.perf_counter()
    res = R.runner_for(paths, cfg).get("evaluate")
    seconds = time.perf_counter() - t0
    after = _files(paths.root)
    assert {f for f in after if after[f] != before.get(f)} == set()
    assert set(res.table3.model_id) >= {"weighted_vote", "clinical"} and len(calls) == 1
    print(f"\nevaluate with every step up to date: {seconds:.2f} s (cohort read once)")


def test_a_step_reading_an_undeclared_upstream_is_refused(tiny_cohort, tmp_path):
    cfg = resolve_config("smoke")
    paths = _recorded_run(tmp_path, tiny_cohort, cfg)
    r = R.runner_for(paths, cfg)
    with pytest.raises(StepError, match="describe_cohort reads fuse, which it does not declare"):
        r._call("describe_cohort").up("fuse")


# --------------------------------------------------------------------------- every option matters
def _roi(seq):
    return lambda p: np.load(p.roi(seq))["crops"]


def _pred(mid="slice_vote_T2WI"):
    return lambda p: pd.read_csv(p.predictions(mid)).prob.to_numpy()


def _csv(path_fn):
    return lambda p: pd.read_csv(path_fn(p)).to_csv(index=False)


def _unit(key):
    return lambda p: json.loads(p.unit_record("slice_vote_T2WI", "holdout").read_text())[key]


# key -> (extra overrides for the base and the flip, flipped value, step instance, observable)
FLIPS = {
    "seed": ([], "8", "prepare", _csv(lambda p: p.splits)),
    "sequences": (["sequences=[T2WI, DWI]"], "[T2WI, DCE]", "fuse", _csv(lambda p: p.ensemble_weights)),
    "split.test_size": ([], "8", "prepare", _csv(lambda p: p.splits)),
    "split.val_fraction": ([], "0.4", "prepare", _csv(lambda p: p.splits)),
    "split.n_folds": (["split.scheme=kfold"], "3", "prepare", _csv(lambda p: p.splits)),
    "split.scheme": ([], "kfold", "prepare", _csv(lambda p: p.splits)),
    "split.repeats": (["split.scheme=kfold"], "2", "prepare", _csv(lambda p: p.folds)),
    "split.test_where": ([], "field_strength=3T", "prepare", _csv(lambda p: p.splits)),
    "roi.size": ([], "24", "roi:T2WI", _roi("T2WI")),
    "roi.margin_mm": ([], "3.0", "roi:T2WI", _roi("T2WI")),
    "roi.keep_aspect": ([], "false", "roi:T2WI", _roi("T2WI")),
    "roi.min_area_mm2": ([], "15.0", "roi:T2WI", _roi("T2WI")),
    "roi.slices": ([], "largest", "roi:T2WI", _roi("T2WI")),
    "roi.central_k": (["roi.slices=central"], "1", "roi:T2WI", _roi("T2WI")),
    "roi.dwi_b_value": (["sequences=[DWI]"], "50", "roi:DWI", _roi("DWI")),
    "roi.dce_phase": (["sequences=[DCE]"], "'2'", "roi:DCE", _roi("DCE")),
    "train.arch": ([], "resnet34", "train:T2WI", _pred()),
    "train.in_channels": ([], "1", "train:T2WI", _pred()),
    "train.epochs": ([], "2", "train:T2WI", _csv(lambda p: p.history("slice_vote_T2WI", "holdout"))),
    "train.batch_size": ([], "8", "train:T2WI", _pred()),
    "train.lr": ([], "0.01", "train:T2WI", _pred()),
    "train.weight_decay": ([], "0.1", "train:T2WI", _pred()),
    "train.augment": ([], "false", "train:T2WI", _pred()),
    "train.class_weighting": ([], "none", "train:T2WI", _pred()),
    "train.selection": ([], "last", "train:T2WI", _unit("selection")),
    "train.aggregation": ([], "max", "train:T2WI", _pred()),
    "train.num_threads": ([], "2", "train:T2WI", _unit("num_threads")),
    "train.keep_resume_state": ([], "true", "train:T2WI",
                                lambda p: p.resume_state("slice_vote_T2WI", "holdout").exists()),
    "train.checkpoint_dtype": ([], "float32", "train:T2WI",
                               lambda p: p.checkpoint("slice_vote_T2WI", "holdout").stat().st_size),
    "radiomics.enabled": ([], "false", "evaluate", _csv(lambda p: p.table3)),
    "radiomics.feature_classes": ([], "[shape, firstorder]", "radiomics_features:T2WI",
                                  _csv(lambda p: p.radiomics_features("T2WI"))),
    # first order only: finer bins, or raw intensities (hundreds of grey levels), make texture slow
    "radiomics.bin_width": (["radiomics.feature_classes=[firstorder]"], "20.0", "radiomics_features:T2WI",
                            _csv(lambda p: p.radiomics_features("T2WI"))),
    "radiomics.resample_mm": ([], "null", "radiomics_features:T2WI", _csv(lambda p: p.radiomics_features("T2WI"))),
    "radiomics.normalize": (["radiomics.feature_classes=[firstorder]"], "false", "radiomics_features:T2WI",
                            _csv(lambda p: p.radiomics_features("T2WI"))),
    "radiomics.penalty": ([], "elasticnet", "radiomics", _csv(lambda p: p.predictions("radiomics"))),
    "radiomics.corr_threshold": ([], "0.5", "radiomics", _csv(lambda p: p.radiomics_model)),
    "radiomics.inner_folds": ([], "2", "radiomics", _csv(lambda p: p.predictions("radiomics"))),
    "ensemble.weights_from": (["sequences=[T2WI, DWI]"], "test", "fuse",
                              lambda p: pd.read_csv(p.predictions("ensemble")).weighted_vote.to_numpy()),
    "ensemble.members": (["sequences=[T2WI, DWI, DCE]"], "[slice_vote_T2WI, slice_vote_DCE]", "fuse",
                         _csv(lambda p: p.ensemble_weights)),
    "clinical.covariates": ([], "[age, margin]", "clinical", _csv(lambda p: p.predictions("clinical"))),
    # alpha and the normality test choose the test only under the pretest rule (continuous_test=auto)
    "stats.alpha": (["stats.alpha=0.0001", "stats.continuous_test=auto"], "0.99", "describe_cohort",
                    _csv(lambda p: p.table1)),
    "stats.categorical_test": ([], "chi2", "describe_cohort", _csv(lambda p: p.table1)),
    "stats.categorical_test_test_set": ([], "chi2", "describe_cohort", _csv(lambda p: p.table1)),
    "stats.auc_ci": ([], "bootstrap", "evaluate", _csv(lambda p: p.table3)),
    "stats.continuous_test": (["stats.continuous_test=mannwhitney"], "t", "describe_cohort", _csv(lambda p: p.table1)),
    "stats.normality_test": (["stats.continuous_test=auto"], "lilliefors", "describe_cohort",
                             _csv(lambda p: p.table1)),
    "stats.ordinal_test": ([], "categorical", "describe_cohort", _csv(lambda p: p.table1)),
    "stats.primary_comparisons": ([], "[weighted_vote vs clinical]", "evaluate", _csv(lambda p: p.delong)),
    "stats.recalibration": ([], "isotonic", "evaluate", _csv(lambda p: p.calibration)),
    "stats.ppv_npv_method": ([], "logit", "evaluate", _csv(lambda p: p.table3)),
    "stats.bootstrap_n": ([], "150", "evaluate", _csv(lambda p: p.table3)),
    "stats.threshold": ([], "0.3", "evaluate", _csv(lambda p: p.table3)),
}

#: keys checked elsewhere, each with the test that shows its effect
ELSEWHERE = {
    "profile": "a name only: recorded in run.json and the report header (test_pipeline)",
    "split.use_manifest_split": "test_manifest_split_key",
    "roi.on_error": "test_roi.py::test_bad_input_fails_or_is_listed (fail vs exclude)",
    "roi.series_description": "test_dicom.py (series rules choose the series of a study folder)",
    "train.models": "test_mil.py (a MIL model per sequence beside the slice vote)",
    "train.pretrained": "test_training.py::test_model_builders_and_weights (refused offline)",
    "train.weights_path": "test_refused_keys (missing file) and test_training.py (weights load)",
    "train.device": "test_refused_keys (cuda without a GPU)",
    "train.cpu_isa": "test_training.py::test_the_pinned_instruction_set_reproduces_the_golden_predictions",
    "ensemble.weight_rule": "test_ensemble.py::test_the_above_chance_rule_gives_a_chance_level_member_no_weight",
    "input.allow_outside_cohort": "test_security.py (paths outside the cohort refused, or read when allowed)",
    "input.max_voxels": "test_security.py (a declared image larger than the limit is refused from its header)",
    "input.max_files": "test_security.py (a folder walk stops at the limit)",
    "input.trusted_folders": "test_security.py::test_a_trusted_folder_lets_its_paths_through_and_no_other",
    "radiomics.on_error": "test_radiomics.py::test_a_failing_patient_is_named_or_listed_and_results_are_cached",
    **{f"mil.{k}": "test_mil.py::test_every_mil_key_changes_the_result"
       for k in ("pooling", "attention_hidden", "dropout", "max_slices")},
    **{f"tune.{k}": "test_tune.py::test_every_tune_key_changes_the_search (enabled, nested: search_plan)"
       for k in ("enabled", "space", "n_trials", "metric", "nested", "inner_folds", "pruner", "epochs", "seed")},
}


def test_every_key_changes_what_is_computed_or_is_tested_elsewhere():
    keys = {k for k in _leaves() if k.split(".")[0] not in R.NOT_READ}
    assert keys == set(FLIPS) | set(ELSEWHERE)


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and np.array_equal(a, b)
    return a == b


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(FLIPS))
def test_flipping_a_key_changes_what_is_computed(key, study, tmp_path):
    extra, value, step, observe = FLIPS[key]
    ref, _ = study(*FLIP_BASE, *extra)
    flip = RunPaths(link_copy(ref.root, tmp_path / "flip"))
    cfg = resolve_config("smoke", overrides=FLIP_BASE + extra + [f"{key}={value}"])
    run_steps(flip, cfg, [step])
    assert not _same(observe(ref), observe(flip)), f"{key}={value} did not change the result"


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


@pytest.mark.slow
def test_refused_keys(study, tmp_path):
    import torch

    from alnm_core.models import WeightsUnavailable
    from alnm_core.training import TrainingError

    src, _ = study(*FLIP_BASE)
    run = RunPaths(link_copy(src.root, tmp_path / "r"))
    cfg = resolve_config("smoke", overrides=FLIP_BASE + ["train.weights_path=/nonexistent/w.pth"])
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        run_steps(run, cfg, ["train:T2WI"])
    if not torch.cuda.is_available():
        cfg = resolve_config("smoke", overrides=FLIP_BASE + ["train.device=cuda"])
        with pytest.raises(TrainingError, match="no CUDA device"):
            run_steps(run, cfg, ["train:T2WI"])
    with pytest.raises(ConfigError, match="not one of"):
        resolve_config("smoke", overrides=["ensemble.weights_from=oracle"])
    with pytest.raises(ConfigError, match="ensemble.members"):
        resolve_config("smoke", overrides=["ensemble.members=[attention_mil]"])
