"""The search's trials as Ray tasks (``tune`` with ``run.executor=ray``).

Why Optuna trials as Ray tasks and not Ray Tune with its ``OptunaSearch``: the local path is an
Optuna study (sampler + pruner in this process, no server, no Ray start); running the *same*
study's trials as tasks keeps the same sampler, the same pruner (pruning reads every worker's
per-epoch reports from the shared journal file, exactly as in-process), the same trial
function and the same trial table, so a cluster tunes what a laptop tunes. Ray Tune would put
its own trial runner, result folders (``~/ray_results``) and scheduler (ASHA instead of
Optuna's pruners) in between, and adds start-up on top of Ray's own (DESIGN: ``ray.init`` alone
is 9-10 s on 2 cores).

The driver asks Optuna for each trial's settings (so the sampler sees every finished trial when
it proposes the next), submits the trial as a task reserving ``run.cpus_per_task`` CPUs and
``run.gpus_per_task`` GPUs, and tells Optuna the result when the task returns. Workers open the
study from the journal file (``storage_path``: on a file system every node sees when joining a
cluster), report per-epoch values to it and ask it whether to prune. Crops travel as a file
path, not through the object store. Embedded Ray (no ``run.ray_address``) starts with explicit
``num_cpus``, no dashboard, a small object store and its own temporary folder, and is always
shut down (its processes ended by id) when the search ends, fails or is interrupted.
"""
from __future__ import annotations

import math
import os
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable

from .config import RunConfig


@contextmanager
def ray_session(run: RunConfig, *, num_cpus: float | None = None, say: Callable[[str], None] = print):
    """Ray for the length of a ``with`` block: joined (``run.ray_address``), reused when this
    process already runs it, or started embedded and always shut down after.

    Yields:
        seconds Ray took to start (0 when it was already up).
    """
    import ray

    if ray.is_initialized():
        yield 0.0
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kw = dict(log_to_driver=False, include_dashboard=False, logging_level="ERROR",
              configure_logging=True)
    t0 = time.time()
    temp_dir = None
    if run.ray_address:
        say(f"ray: joining the cluster at {run.ray_address}")
        ray.init(address=run.ray_address, **kw)
    else:
        os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
        temp_dir = tempfile.mkdtemp(prefix="alnm-tune-ray-", dir="/tmp")
        ray.init(num_cpus=num_cpus if num_cpus is not None else os.cpu_count(), num_gpus=None,
                 object_store_memory=100 * 2**20, _temp_dir=temp_dir,
                 _node_ip_address="127.0.0.1", **kw)
    try:
        yield time.time() - t0
    finally:
        ray.shutdown()
        if temp_dir:
            _reap(temp_dir)
            shutil.rmtree(temp_dir, ignore_errors=True)


def _reap(temp_dir: str) -> None:
    """End any process of this embedded Ray still running after ``ray.shutdown`` (by its id:
    the processes whose command line names this Ray's temporary folder)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - comes with Ray
        return
    me = {os.getpid(), os.getppid()}
    mine = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.info["pid"] not in me and any(temp_dir in a for a in (p.info["cmdline"] or [])):
                mine.append(p)
        except (psutil.Error, TypeError):
            continue
    for p in mine:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(mine, timeout=5)


def _trial_task(job, study_name: str, storage_path: str, trial_id: int, pruner: str, threads: int) -> dict:
    """What one Ray task runs: the trial, reporting to the shared study; never raises for a
    pruned or failed trial (the driver records those)."""
    import optuna
    import torch

    from .training import TrainingError
    from .tune_trial import journal_storage, make_pruner, run_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(max(1, threads))
    study = optuna.load_study(study_name=study_name, storage=journal_storage(storage_path),
                              pruner=make_pruner(pruner))
    trial = optuna.trial.Trial(study, trial_id)
    t0 = time.time()
    where = f"{socket.gethostname()} pid {os.getpid()}"

    def report(step: int, value: float) -> None:
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")

    try:
        out = run_trial(job, report)
    except optuna.TrialPruned:
        return {"state": "pruned", "seconds": time.time() - t0, "where": where}
    except TrainingError as exc:
        return {"state": "fail", "error": str(exc), "seconds": time.time() - t0, "where": where}
    return {"state": "complete", **out, "seconds": time.time() - t0, "where": where}


def run_trials_on_ray(study, job, space: dict, *, grid: bool, n_trials: int, storage_path: Path,
                      pruner: str, run: RunConfig, say: Callable[[str], None],
                      num_cpus: float | None = None) -> dict:
    """Run the study's remaining trials as Ray tasks, as many at once as the resources allow.

    Returns:
        timings: ``start`` (Ray up) and ``trials`` (first submit to last result), seconds.
    """
    import optuna
    import ray

    from .tune_trial import finished_trials, suggest

    timings = {}
    with ray_session(run, num_cpus=num_cpus, say=say) as start:
        timings["start"] = start
        res = ray.cluster_resources()
        slots = res.get("CPU", 1.0) / run.cpus_per_task
        if run.gpus_per_task > 0:
            slots = min(slots, res.get("GPU", 0.0) / run.gpus_per_task)
        slots = int(math.floor(slots + 1e-9))
        if slots < 1:
            raise RuntimeError(f"ray: no node can run a trial: each asks for {run.cpus_per_task:g} CPU "
                               f"and {run.gpus_per_task:g} GPU, the cluster has {res.get('CPU', 0):g} CPU "
                               f"and {res.get('GPU', 0):g} GPU")
        task = ray.remote(_trial_task).options(num_cpus=run.cpus_per_task, num_gpus=run.gpus_per_task,
                                               max_retries=run.max_retries, retry_exceptions=False)
        say(f"ray: trials as tasks, up to {slots} at once (Ray up in {start:.1f} s)")
        threads = max(1, int(run.cpus_per_task))
        running: dict = {}
        t0 = time.time()
        todo = n_trials - finished_trials(study)
        try:
            while todo > 0 or running:
                while todo > 0 and len(running) < slots:
                    trial = study.ask()
                    params = suggest(trial, space, grid=grid)
                    ref = task.remote(replace(job, params=params), study.study_name, str(storage_path),
                                      trial._trial_id, pruner, threads)
                    running[ref] = (trial, params)
                    todo -= 1
                ready, _ = ray.wait(list(running), num_returns=1)
                trial, params = running.pop(ready[0])
                out = ray.get(ready[0])
                trial.set_user_attr("seconds", out["seconds"])
                if out["state"] == "complete":
                    trial.set_user_attr("fold_scores", out["fold_scores"])
                    study.tell(trial, out["score"])
                    say(f"trial {trial.number} {params} on {out['where']}: {job.metric} {out['score']:.4f}")
                elif out["state"] == "pruned":
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    say(f"trial {trial.number} {params}: pruned")
                else:
                    trial.set_user_attr("error", out["error"])
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    say(f"trial {trial.number} {params}: failed ({out['error']})")
        finally:
            for ref in running:
                ray.cancel(ref, force=True)
        timings["trials"] = time.time() - t0
    return timings
