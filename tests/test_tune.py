"""The hyperparameter search (alnm_core.tune): the paper grid and the ranges, settings
validated, no test patient in any trial, a 2-trial search end to end for both model kinds,
pruning recorded, the best settings applied, and (slow) the same trials on Ray."""
from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from alnm_core.config import ConfigError, MilConfig, TrainConfig, resolve_config
from alnm_core.search_space import PAPER_GRID, tune_space
from alnm_core.tune import (LeakageError, TuneError, apply_params, inner_folds, search,
                            search_plan, search_space, subset_crops)

from test_mil import toy_bags

# the Ray instance the slow test starts and its driver share one token (as tests/test_ray.py)
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", os.urandom(16).hex())

pytest.importorskip("optuna")

#: tiny: 12 patients, 2-3 slices of 16 x 16, 2 inner folds, 2 epochs, one thread
BASE = ["train.models=[slice_vote,attention_mil]", "tune.enabled=true", "tune.n_trials=2",
        "tune.inner_folds=2", "train.epochs=2", "train.num_threads=1", "train.device=cpu",
        "train.batch_size=8"]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy():
    sc, roles, _ = toy_bags(n_pat=16, size=16, seed=0, lo=2, hi=4)
    dev = roles[roles.role != "test"][["patient_id", "label"]]
    test = roles.patient_id[roles.role == "test"].tolist()
    return sc, dev, test


def test_paper_grid_and_ranges():
    assert tune_space("paper") == {"lr": (1e-3, 1e-4, 1e-5, 1e-6), "batch_size": (16, 32, 64)}
    assert np.prod([len(v) for v in PAPER_GRID.values()]) == 12
    cfg = resolve_config("smoke", overrides=["tune.space=ranges", "train.models=[slice_vote,attention_mil]"])
    assert set(search_space(cfg.tune, "attention_mil")) == {"lr", "weight_decay", "batch_size", "pooling"}
    assert "pooling" not in search_space(cfg.tune, "slice_vote")
    own = resolve_config("smoke", overrides=["tune.space={lr: [1e-5, 1e-2], epochs: [2, 4]}"])
    assert tune_space(own.tune.space) == {"lr": (1e-5, 1e-2), "epochs": (2, 4)}
    d = resolve_config("demo")
    assert d.tune.enabled is False and d.tune.space == "paper"
    p = resolve_config("paper")  # the paper's grid, searched on development patients only
    assert p.tune.enabled and p.tune.space == "paper" and p.tune.n_trials == 12
    for bad, msg in [("tune.space=grid", "not 'paper'"), ("tune.space={lr: [1e-3, 1e-5]}", "low < high"),
                     ("tune.space={momentum: [1, 2]}", "unknown parameter"),
                     ("tune.space={batch_size: [16, 16]}", "without repeats"),
                     ("tune.space={epochs: [0, 3]}", "1 <= low"),
                     ("tune.space={pooling: [mean]}", "attention_mil only"),
                     ("tune.n_trials=13", "12 combinations"), ("tune.inner_folds=1", "inner_folds"),
                     ("tune.metric=accuracy", "not one of"), ("tune.pruner=hyperband", "not one of")]:
        with pytest.raises(ConfigError, match=msg):
            resolve_config("smoke", overrides=[bad])


def test_apply_params_and_numbers_written_as_text():
    t, m = apply_params(TrainConfig(), MilConfig(), {"lr": 1e-5, "batch_size": 16, "weight_decay": 1e-4,
                                                     "epochs": 3, "pooling": "max"})
    assert (t.lr, t.batch_size, t.weight_decay, t.epochs, m.pooling) == (1e-5, 16, 1e-4, 3, "max")
    with pytest.raises(TuneError, match="momentum"):
        apply_params(TrainConfig(), MilConfig(), {"momentum": 0.9})
    # YAML reads 1e-4 as text: the configuration takes it as the number it is
    assert resolve_config("smoke", overrides=["train.lr=1e-4"]).train.lr == 1e-4
    with pytest.raises(ConfigError, match="expected a number"):
        resolve_config("smoke", overrides=["train.lr=fast"])


def test_inner_folds_and_the_search_plan():
    p = pd.DataFrame({"patient_id": [f"p{i}" for i in range(12)], "label": [0, 1] * 6})
    f = inner_folds(p, 3, seed=1)
    assert (f.groupby("inner_fold").label.agg(["sum", "count"]).to_numpy() == [[2, 4]] * 3).all()
    assert f.equals(inner_folds(p, 3, seed=1)) and not f.equals(inner_folds(p, 3, seed=2))
    with pytest.raises(TuneError, match="lower tune.inner_folds"):
        inner_folds(p.iloc[:5], 3, seed=0)
    splits = p.assign(split=["test"] * 4 + ["dev"] * 8)
    folds = pd.DataFrame({"patient_id": p.patient_id[4:], "repeat": 0, "fold": [0, 1] * 4})
    (one,) = search_plan(splits, folds, nested=False)
    assert one.name == "all" and set(one.patients.patient_id) == set(p.patient_id[4:])
    nested = search_plan(splits, folds, nested=True)
    assert [s.name for s in nested] == ["r0-f0", "r0-f1", "all"]  # "all": the final refit's search
    assert nested[-1].forbidden == frozenset(p.patient_id[:4])
    for s, (_, g) in zip(nested, folds.groupby("fold")):
        assert not set(s.patients.patient_id) & s.forbidden
        assert set(g.patient_id) <= s.forbidden and set(p.patient_id[:4]) <= s.forbidden


def test_the_search_refuses_test_patients_before_training(toy):
    sc, dev, test = toy
    cfg = resolve_config("smoke", overrides=BASE)
    leaky = pd.concat([dev, pd.DataFrame({"patient_id": [test[0]], "label": [1]})])
    with pytest.raises(LeakageError, match=test[0]):
        search(crops=sc, patients=leaky, model_kind="slice_vote", cfg=cfg, forbidden_ids=test)
    with pytest.raises(TuneError, match="no crops for development patient"):
        subset_crops(sc, ["nobody"])
    with pytest.raises(TuneError, match="model_kind"):
        search(crops=sc, patients=dev, model_kind="cnn", cfg=cfg, forbidden_ids=test)
    only = subset_crops(sc, dev.patient_id)
    assert set(only.patient_id) == set(dev.patient_id) and only.key != sc.key


@pytest.mark.parametrize("kind", ["slice_vote", "attention_mil"])
def test_two_trial_search_end_to_end(toy, kind):
    sc, dev, test = toy
    cfg = resolve_config("smoke", overrides=BASE)
    lines = []
    res = search(crops=sc, patients=dev, model_kind=kind, cfg=cfg, forbidden_ids=test,
                 progress=lines.append)
    t = res.trials
    assert len(t) == 2 and set(t.state) == {"complete"} and t.score.between(0, 1).all()
    assert {"param_lr", "param_batch_size", "seconds", "steps_reported", "patient_ids"} <= set(t.columns)
    assert t.steps_reported.tolist() == [4, 4]  # 2 inner folds x 2 epochs, every epoch reported
    # every trial used the development patients, and no test patient
    for ids in t.patient_ids:
        assert set(ids.split(";")) == set(dev.patient_id) and not set(ids.split(";")) & set(test)
    assert set(res.folds.patient_id) == set(dev.patient_id)
    # two distinct points of the paper grid; the best is the best complete trial
    pts = set(zip(t.param_lr, t.param_batch_size))
    assert len(pts) == 2 and all(lr in PAPER_GRID["lr"] and b in PAPER_GRID["batch_size"] for lr, b in pts)
    best = t.loc[t.score.idxmax()]
    assert res.best_params == {"lr": best.param_lr, "batch_size": best.param_batch_size}
    assert res.sampler == "grid" and res.direction == "maximize" and any("12 combinations" in n for n in res.notes)
    assert any(line.startswith("trial 1") for line in lines)
    train, mil = apply_params(cfg.train, cfg.mil, res.best_params)
    assert train.lr == best.param_lr and train.batch_size == best.param_batch_size


@pytest.mark.slow
def test_same_seed_same_trials_and_a_resumed_study(toy, tmp_path):
    sc, dev, test = toy
    cfg = resolve_config("smoke", overrides=BASE + ["tune.n_trials=1"])
    a = search(crops=sc, patients=dev, model_kind="attention_mil", cfg=cfg, forbidden_ids=test,
               storage_path=tmp_path / "s.journal")
    # the same journal, one more trial asked for: the finished one is kept, one is added
    more = replace(cfg, tune=replace(cfg.tune, n_trials=2))
    b = search(crops=sc, patients=dev, model_kind="attention_mil", cfg=more, forbidden_ids=test,
               storage_path=tmp_path / "s.journal")
    assert len(b.trials) == 2
    pd.testing.assert_series_equal(a.trials.score, b.trials.score.iloc[:1])
    c = search(crops=sc, patients=dev, model_kind="attention_mil", cfg=more, forbidden_ids=test)
    pd.testing.assert_frame_equal(b.trials.drop(columns="seconds"), c.trials.drop(columns="seconds"))


@pytest.mark.slow
@pytest.mark.parametrize("pruner", ["median", "successive_halving"])
def test_pruning_is_recorded(toy, pruner):
    """Four trials on TPE (seeded): the last is worse than the earlier ones after its first
    epoch and is stopped there, by either pruner."""
    sc, dev, test = toy
    cfg = resolve_config("smoke", overrides=BASE + [
        "tune.space={lr: [1e-9, 1e-2]}", f"tune.pruner={pruner}", "tune.n_trials=4", "tune.seed=4"])
    res = search(crops=sc, patients=dev, model_kind="attention_mil", cfg=cfg, forbidden_ids=test)
    t = res.trials
    assert res.sampler == "tpe"
    pruned = t[t.state == "pruned"]
    assert len(pruned) >= 1, t
    assert pruned.score.isna().all() and (pruned.steps_reported < 4).all()
    assert pruned.last_value.notna().all()
    assert (t[t.state == "complete"].steps_reported == 4).all()


@pytest.mark.slow
def test_the_same_trials_on_ray(toy):
    pytest.importorskip("ray")
    import psutil

    sc, dev, test = toy
    cfg = resolve_config("smoke", overrides=BASE + ["run.cpus_per_task=1"])
    local = search(crops=sc, patients=dev, model_kind="slice_vote", cfg=cfg, forbidden_ids=test)
    before = {p.pid for p in psutil.process_iter()}
    lines = []
    on_ray = search(crops=sc, patients=dev, model_kind="slice_vote", cfg=cfg, forbidden_ids=test,
                    executor="ray", progress=lines.append)
    assert on_ray.executor == "ray" and any("pid" in line for line in lines)
    cols = ["trial", "param_lr", "param_batch_size", "state", "steps_reported", "patient_ids"]
    pd.testing.assert_frame_equal(local.trials[cols], on_ray.trials[cols])
    np.testing.assert_allclose(local.trials.score, on_ray.trials.score, atol=1e-9)
    import ray

    assert not ray.is_initialized()
    left = [p for p in psutil.process_iter(["pid", "cmdline"]) if p.info["pid"] not in before
            and any("alnm-tune-ray-" in a for a in (p.info["cmdline"] or []))]
    assert not left


@pytest.mark.slow
def test_every_tune_key_changes_the_search(toy):
    """Each key search() reads changes what it does (``enabled`` and ``nested`` are read by
    the step: search_plan above)."""
    sc, dev, test = toy
    one = BASE + ["tune.n_trials=1", "tune.pruner=none"]

    def run(*extra):
        return search(crops=sc, patients=dev, model_kind="attention_mil",
                      cfg=resolve_config("smoke", overrides=one + list(extra)), forbidden_ids=test)

    base = run()
    assert run("tune.metric=val_loss").direction == "minimize"
    assert run("tune.epochs=1").trials.steps_reported.item() == 2
    assert not run("tune.inner_folds=3").folds.equals(base.folds)
    assert not run("tune.seed=99").folds.equals(base.folds)
    assert run("tune.space={lr: [1e-4, 1e-3], pooling: [mean]}").trials.param_pooling.item() == "mean"
    assert len(run("tune.n_trials=2").trials) == 2
    from alnm_core.tune import make_pruner

    assert {type(make_pruner(p)).__name__ for p in ("median", "successive_halving", "none")} == {
        "MedianPruner", "SuccessiveHalvingPruner", "NopPruner"}
