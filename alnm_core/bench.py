"""Benchmarks printed by ``alnm bench``: throughput figures, never asserted in tests.

Sections: ``phantom`` (generation time per patient), ``read`` (cohort reading per patient),
``delong`` (fast vs naive DeLong at n = 100,000), ``roi`` (crops per second, demo and paper
settings), ``radiomics`` (feature extraction per patient and sequence), ``train`` (training
crops/s vs the raw forward+backward loop, demo and paper model sizes, on this machine's device), ``coverage`` (simulated coverage of the CIs offered; not in
the default set: ``--only coverage``). Scale-out, not in the default set: ``ray`` (the smoke grid
on the local executor vs embedded Ray, start-up included), ``amp`` (ResNet50 224 x 224 batch 64,
fp32 vs bf16 + channels-last, crops/s and GPU memory) and ``pack`` (four trainings one at a time
vs packed on one GPU by Ray); ``tools/gpu_check.sh`` runs ``amp`` and ``pack`` on a GPU.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from .bench_mil import _row
from .config import DEFAULT_SEQUENCES


def bench_phantom(tmp: Path, quick: bool) -> list[dict]:
    from .config import resolve_config
    from .phantom import write_phantom

    cfg = resolve_config("demo").phantom
    n = 4 if quick else 12
    from dataclasses import replace

    rows = []
    for jobs in (1, None):
        t0 = time.perf_counter()
        write_phantom(tmp / f"ph{jobs}", replace(cfg, n_patients=n), jobs=jobs)
        dt = (time.perf_counter() - t0) / n
        rows.append(_row(f"phantom generation, demo scale, jobs={jobs or 'all cores'}", dt, "s/patient"))
    return rows


def bench_read(tmp: Path, quick: bool) -> list[dict]:
    import pandas as pd

    from .imaging import read_image, read_mask

    root = tmp / "ph1"
    df = pd.read_csv(root / "cohort.csv")
    t0 = time.perf_counter()
    files = 0
    for _, r in df.iterrows():
        for s in DEFAULT_SEQUENCES:
            v = read_image(root / r[f"{s}_image"])
            read_mask(root / r[f"{s}_roi"], like=v)
            files += v.meta.get("n_files", 1)
    dt = time.perf_counter() - t0
    return [_row("cohort reading (3 series + masks)", dt / len(df), "s/patient"),
            _row("DICOM files read", files / dt, "files/s")]


def bench_delong(quick: bool) -> list[dict]:
    from .stats import delong_test
    from .stats.delong import delong_naive

    rng = np.random.default_rng(0)
    n = 20_000 if quick else 100_000
    y = (rng.random(n) < 0.1).astype(int)
    a = rng.normal(y * 0.8, 1)
    b = 0.6 * a + rng.normal(y * 0.4, 0.8)
    delong_test(y, a, b)
    reps = 5
    t0 = time.perf_counter()
    for _ in range(reps):
        delong_test(y, a, b)
    fast = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    delong_naive(y, a, b)
    naive = time.perf_counter() - t0
    rows = [_row(f"delong_test, n={n:,}, 10% positive", fast * 1000, "ms", "Sun & Xu midranks"),
            _row("naive O(m x n) DeLong, same data", naive * 1000, "ms"),
            _row("speed-up (naive / fast)", naive / fast, "x")]
    if shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as d:
            np.savetxt(Path(d) / "x.csv", np.c_[y, a, b], delimiter=",", header="y,a,b", comments="")
            code = (f"suppressMessages(library(pROC)); d<-read.csv('{d}/x.csv');"
                    "r1<-roc(d$y,d$a,levels=c(0,1),direction='<',quiet=TRUE);"
                    "r2<-roc(d$y,d$b,levels=c(0,1),direction='<',quiet=TRUE);"
                    "t<-system.time(roc.test(r1,r2,method='delong'))[['elapsed']]; cat(t)")
            try:
                out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, timeout=300)
                rows.append(_row("pROC roc.test(method='delong'), same data", float(out.stdout) * 1000, "ms",
                                 "R, for reference"))
            except (ValueError, subprocess.SubprocessError):
                pass
    return rows


def bench_roi(tmp: Path, quick: bool) -> list[dict]:
    import pandas as pd

    from .config import RoiConfig
    from .roi import extract_sequence

    root = tmp / "ph1"
    df = pd.read_csv(root / "cohort.csv")
    rows = []
    for label, cfg in (("demo", RoiConfig(size=64)), ("paper", RoiConfig(size=224))):
        n_crops, dt = 0, 0.0
        for s in DEFAULT_SEQUENCES:
            t0 = time.perf_counter()
            c = extract_sequence(df, root, s, cfg, cache_dir=tmp / f"cache-{label}", jobs=1)
            dt += time.perf_counter() - t0
            n_crops += len(c.crops)
        rows.append(_row(f"ROI extraction incl. reading, {label} crop size", n_crops / dt, "crops/s",
                         "1 process, cold cache"))
    return rows


def bench_radiomics(tmp: Path, quick: bool) -> list[dict]:
    """Radiomics feature extraction per patient and sequence (reading and image selection
    included; 1 process, cold cache), with the demo profile's settings and with every class on
    the acquired grid."""
    import dataclasses

    import pandas as pd

    from .config import resolve_config
    from .radiomics_features import extract_sequence

    root = tmp / "ph1"
    df = pd.read_csv(root / "cohort.csv", dtype={"patient_id": str})
    cfg = resolve_config("demo")
    rows = []
    for label, rc in (("demo settings (7 classes, 2 mm)", cfg.radiomics),
                      ("no resampling", dataclasses.replace(cfg.radiomics, resample_mm=None))):
        for s in DEFAULT_SEQUENCES:
            t0 = time.perf_counter()
            extract_sequence(df, root, s, cfg.roi, rc, cache_dir=tmp / f"rad-{label[:4]}", jobs=1)
            dt = (time.perf_counter() - t0) / len(df)
            rows.append(_row(f"radiomics {s}, {label}", dt, "s/patient", "1 process, cold cache, reading included"))
    return rows


def bench_train(quick: bool) -> list[dict]:
    import pandas as pd
    import torch

    from .config import TrainConfig
    from .roi import SequenceCrops
    from .models import make_network
    from .training import UnitFiles, resolve_device, train_unit

    device = resolve_device("auto")
    rows = []
    settings = [("demo", "resnet18", 64, 32), ("paper", "resnet50", 224, 64 if device.type == "cuda" else 16)]
    for label, arch, size, bs in settings:
        n = bs * (4 if quick else 8) if device.type == "cpu" else bs * 40
        cfg = TrainConfig(arch=arch, epochs=2, batch_size=bs, augment=True, device="auto")
        # raw loop: the same model, batch and optimiser on random tensors already on the device
        model = make_network(cfg).to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        x = torch.rand(bs, 1, size, size, device=device)
        y = torch.randint(0, 2, (bs,), device=device)
        steps = n // bs

        def step():
            xb = x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = torch.nn.functional.cross_entropy(model(xb).float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        raw = steps * bs / (time.perf_counter() - t0)
        # our training loop on synthetic crops of the same size (train split = n crops)
        n_val = bs
        ids = [f"B{i}" for i in range(n + 2 * n_val)]
        crops = SequenceCrops("T2WI", np.random.default_rng(0).random((len(ids), size, size), dtype=np.float32),
                              np.array(ids), np.zeros(len(ids), int), np.zeros((len(ids), 4)),
                              np.ones(len(ids)), np.ones((len(ids), 3)), np.zeros((len(ids), 2)),
                              pd.DataFrame({"patient_id": ids}), [], key="bench")
        split = ["train"] * n + ["val"] * n_val + ["test"] * n_val
        splits = pd.DataFrame({"patient_id": ids, "label": np.arange(len(ids)) % 2, "split": split})
        with tempfile.TemporaryDirectory() as d:
            files = UnitFiles(Path(d) / "checkpoint.pt", Path(d) / "last.pt", Path(d) / "history.csv")
            res = train_unit(crops, splits, cfg, files, seed=0)
        # throughput of the second epoch's training part (first has warm-up)
        h = res.history
        ours = n / float(h.seconds.iloc[-1])
        rows.append(_row(f"raw fwd+bwd, {label}: {arch} {size}x{size} b{bs} ({device.type})", raw, "crops/s"))
        rows.append(_row(f"train_unit epoch, {label} (incl. validation pass)", ours, "crops/s"))
        rows.append(_row(f"ratio ours / raw, {label}", ours / raw, "", "target >= 0.9 (validation pass included)"))
    return rows


# ----------------------------------------------------------------------------- scale-out
def bench_ray(quick: bool) -> list[dict]:
    """The smoke grid (3 sequences x 2 folds; ``--quick``: one sequence) trained by the local
    executor and by embedded Ray, start-up included: Ray one unit at a time (the same work as
    local: its overhead) and as many at once as the CPUs allow."""
    import shutil as sh

    from .config import resolve_config
    from .phantom_cache import ensure_phantom
    from .run.executor import LocalExecutor, RayExecutor, ray_available
    from .run.pipeline import start_record
    from .run.registry import runner_for
    from .runfolder.paths import RunPaths

    if not ray_available():
        print("  (skipped: Ray is not installed; pip install 'alnm[ray]')")
        return []
    cfg = resolve_config("smoke", overrides=["sequences=[T2WI]"] if quick else [])
    cohort = ensure_phantom("smoke", cfg.phantom)
    with tempfile.TemporaryDirectory() as d:
        base = RunPaths(Path(d) / "base")
        start_record(base, cfg, Path(cohort).resolve(), cfg.phantom.n_patients)
        r = runner_for(base, cfg)
        r.run([f"roi:{s}" for s in cfg.sequences])
        from .run.steps_train import jobs

        n = len(jobs(r._call("train_units")))
        cpus = os.cpu_count() or 1
        walls: dict = {}
        # interleaved repetitions, best of each: a shared machine's load drifts
        for rep in range(1 if quick else 2):
            for label, ex in (("local", LocalExecutor()),
                              ("ray, one unit at a time", RayExecutor(cpus_per_task=cpus)),
                              (f"ray, {cpus} units at once", RayExecutor(cpus_per_task=1))):
                run = RunPaths(Path(d) / f"{rep}-{label.replace(' ', '_').replace(',', '')}")
                sh.copytree(base.root, run.root)
                t0 = time.perf_counter()
                runner_for(run, cfg, executor=ex).get("train_units")
                wall = time.perf_counter() - t0
                if label not in walls or wall < walls[label][0]:
                    walls[label] = (wall, dict(getattr(ex, "timings", {})))
                print(f"  ({label}, repetition {rep + 1}: {wall:.1f} s, load {os.getloadavg()[0]:.1f})",
                      flush=True)
    local = walls["local"][0]
    serial, timings = walls["ray, one unit at a time"]
    rows = [_row(f"smoke grid ({n} units), local executor", local, "s", "train step wall time")]
    for label, (wall, t) in walls.items():
        if label != "local":
            rows.append(_row(f"smoke grid, {label}", wall, "s", f"Ray start-up {t.get('start', 0):.1f} s incl."))
            rows.append(_row(f"ratio {label} / local", wall / local, "", "target <= 1.15"))
    rows.append(_row("Ray start-up (embedded, no dashboard)", timings.get("start", float("nan")), "s"))
    rows.append(_row("Ray overhead per unit (one at a time, start-up excluded)",
                     (serial - timings.get("start", 0) - local) / n, "s/unit",
                     "the difference of two noisy walls"))
    # the overhead alone: tasks that do nothing, one at a time (a worker is started once)
    ex = RayExecutor(cpus_per_task=cpus)
    k = 20
    t0 = time.perf_counter()
    ex.run(_noop_unit, list(range(k)))
    wall = time.perf_counter() - t0
    rows.append(_row(f"Ray, {k} no-op tasks one at a time, start-up excluded", ex.timings["grid"] / k,
                     "s/task", f"wall {wall:.1f} s incl. start-up {ex.timings['start']:.1f} s"))
    return rows


def _noop_unit(unit, progress=None):
    return unit


def _amp_step_rate(arch: str, size: int, bs: int, steps: int, device, fast: bool) -> tuple[float, float]:
    """Raw fwd+bwd crops/s and peak GPU memory (GiB; nan on CPU): fp32 or bf16 + channels-last."""
    import torch

    from .config import TrainConfig
    from .models import make_network

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = make_network(TrainConfig(arch=arch)).to(device)
    fmt = torch.channels_last if fast and cuda else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(bs, 1, size, size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 2, (bs,), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for _ in range(2):
        step()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    rate = steps * bs / (time.perf_counter() - t0)
    mem = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return rate, mem


def bench_amp(quick: bool) -> list[dict]:
    """The paper's model (ResNet50, 224 x 224, batch 64) forward+backward: fp32 vs bf16 autocast
    with channels-last (what training uses on CUDA), crops/s and peak GPU memory. On a CPU (or
    ``--quick``) a small stand-in (ResNet18, 64 x 64, batch 8) checks the path."""
    from .training import resolve_device

    device = resolve_device("auto")
    big = device.type == "cuda" and not quick
    arch, size, bs, steps = ("resnet50", 224, 64, 30) if big else ("resnet18", 32, 4, 1)
    rows = []
    rates = {}
    for fast, label in ((False, "fp32"), (True, "bf16 + channels-last")):
        rates[label], mem = _amp_step_rate(arch, size, bs, steps, device, fast)
        rows.append(_row(f"raw fwd+bwd {arch} {size}x{size} b{bs} {label} ({device.type})", rates[label], "crops/s"))
        rows.append(_row(f"peak GPU memory, {label}", mem, "GiB", "nan on CPU"))
    rows.append(_row("speed-up bf16 + channels-last / fp32", rates["bf16 + channels-last"] / rates["fp32"], "x"))
    return rows


def pack_unit(spec: dict, progress=None) -> dict:
    """One synthetic training unit (``training.train_unit`` on random crops): a packing task."""
    import pandas as pd
    import torch

    from .config import TrainConfig
    from .roi import SequenceCrops
    from .training import UnitFiles, train_unit

    n, size, bs = spec["n"], spec["size"], spec["batch"]
    ids = [f"B{i}" for i in range(n + 2 * bs)]
    crops = SequenceCrops("T2WI", np.random.default_rng(spec["seed"]).random((len(ids), size, size), dtype=np.float32),
                          np.array(ids), np.zeros(len(ids), int), np.zeros((len(ids), 4)),
                          np.ones(len(ids)), np.ones((len(ids), 3)), np.zeros((len(ids), 2)),
                          pd.DataFrame({"patient_id": ids}), [], key=f"pack{spec['seed']}")
    roles = pd.DataFrame({"patient_id": ids, "label": np.arange(len(ids)) % 2,
                          "role": ["train"] * n + ["val"] * bs + ["test"] * bs})
    cfg = TrainConfig(arch=spec["arch"], epochs=spec["epochs"], batch_size=bs, device="auto",
                      num_threads=spec.get("threads", 0))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as d:
        files = UnitFiles(Path(d) / "c.pt", Path(d) / "last.pt", Path(d) / "h.csv")
        res = train_unit(crops, roles, cfg, files, seed=spec["seed"])
    mem = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    return {"crops": n * spec["epochs"], "seconds": res.seconds, "device": res.device, "gib": mem}


def bench_pack(quick: bool) -> list[dict]:
    """Four trainings one at a time (local executor) vs packed by Ray on one GPU
    (``run.gpus_per_task=0.25``): wall time, aggregate training crops/s, GPU memory per unit.
    Without a GPU (or ``--quick``) small CPU units check the path."""
    import torch

    from .run.executor import LocalExecutor, RayExecutor, ray_available

    if not ray_available():
        print("  (skipped: Ray is not installed; pip install 'alnm[ray]')")
        return []
    gpu = torch.cuda.is_available() and not quick
    base = (dict(arch="resnet50", size=224, batch=64, n=64 * 24, epochs=3) if gpu
            else dict(arch="resnet18", size=16, batch=8, n=16, epochs=1, threads=1))
    specs = [{**base, "seed": i} for i in range(4)]
    rows = []
    res = {}
    for label, ex in (("one at a time", LocalExecutor()),
                      ("4 packed by Ray", RayExecutor(cpus_per_task=1,
                                                      gpus_per_task=0.25 if gpu else 0.0))):
        t0 = time.perf_counter()
        out = ex.run(pack_unit, specs)
        wall = time.perf_counter() - t0
        res[label] = sum(o["crops"] for o in out) / wall
        what = f"{base['arch']} {base['size']}x{base['size']} b{base['batch']} on {out[0]['device']}"
        rows.append(_row(f"4 trainings {label}, {what}", wall, "s",
                         "Ray start-up included" if "Ray" in label else ""))
        rows.append(_row(f"aggregate training throughput, {label}", res[label], "crops/s"))
        rows.append(_row(f"peak GPU memory per training, {label}", max(o["gib"] for o in out), "GiB",
                         "nan on CPU"))
    rows.append(_row("packing gain (packed / one at a time)", res["4 packed by Ray"] / res["one at a time"], "x"))
    return rows


def bench_coverage(quick: bool) -> list[dict]:
    """Simulated coverage of the 95% CIs offered (binormal AUC 0.8; PPV/NPV at n = 50); the full
    grid is the committed table of ``python -m alnm_core.stats.coverage``."""
    from .stats.coverage import auc_ci_coverage, predictive_value_coverage

    reps = 200 if quick else 2000
    rows = []
    for n_pos, n_neg in ((8, 42), (10, 90), (25, 25), (20, 30)):
        for method in ("delong", "logit_delong", "bootstrap", "bca", "exact"):
            r = max(100, reps // 4) if method in ("bootstrap", "bca") else reps
            cov = auc_ci_coverage(n_pos, n_neg, auc=0.8, method=method, reps=r, seed=1)
            rows.append(_row(f"AUC CI coverage, {method}, {n_pos} pos / {n_neg} neg", cov, "",
                             f"nominal 0.95, {r} replicates"))
    for method in ("exact", "logit"):
        ppv, npv = predictive_value_coverage(50, prevalence=0.4, sensitivity=0.75, specificity=0.9,
                                             method=method, reps=reps * 2, seed=1)
        rows.append(_row(f"PPV CI coverage, {method}, n=50, prevalence estimated", ppv, ""))
        rows.append(_row(f"NPV CI coverage, {method}, n=50, prevalence estimated", npv, ""))
    return rows


def run_benchmarks(only: list[str] | None = None, *, quick: bool = False, json_path: str | None = None) -> list[dict]:
    """Run the selected benchmark sections and print one line per figure."""
    sections = only or ["phantom", "read", "delong", "roi", "radiomics", "train"]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if any(s in sections for s in ("read", "roi", "radiomics")) and "phantom" not in sections:
            sections = ["phantom", *sections]
        for s in sections:
            print(f"[{s}]", flush=True)
            if s == "phantom":
                rows += bench_phantom(tmp, quick)
            elif s == "read":
                rows += bench_read(tmp, quick)
            elif s == "delong":
                rows += bench_delong(quick)
            elif s == "roi":
                rows += bench_roi(tmp, quick)
            elif s == "radiomics":
                rows += bench_radiomics(tmp, quick)
            elif s == "train":
                rows += bench_train(quick)
            elif s == "coverage":
                rows += bench_coverage(quick)
            elif s == "ray":
                rows += bench_ray(quick)
            elif s == "amp":
                rows += bench_amp(quick)
            elif s == "pack":
                rows += bench_pack(quick)
            elif s in ("mil", "tune"):  # attention MIL vs slice vote; Optuna and Ray per-trial overhead
                from .bench_mil import run_mil_benchmarks

                rows += run_mil_benchmarks([s], quick=quick)
            else:
                raise ValueError(f"unknown benchmark {s!r}")
    if json_path:
        Path(json_path).write_text(json.dumps(rows, indent=1))
    return rows
