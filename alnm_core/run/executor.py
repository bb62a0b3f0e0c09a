"""Executors run the grid of training units.

An executor is given the unit of work, ``work(unit, *, progress) -> result`` (in practice
:func:`alnm_core.run.steps_train.run_job` bound to a run's paths and configuration), and the units
of the grid that still need training (the step layer skips finished ones before it calls an
executor, so they cost no round trip). Every executor returns the results in the grid's order,
whatever order they finish in, and never writes an artifact itself: the unit of work does,
inside the unit's own folder, and the driver records the results.

* ``local`` (the default, ``run.executor=local``) runs the units one after the other in this
  process.
* ``ray`` (``run.executor=ray``, ``pip install 'alnm[ray]'``) submits each unit as a Ray task
  reserving ``run.cpus_per_task`` CPUs and ``run.gpus_per_task`` GPUs (fractions pack units on
  one GPU). Without ``run.ray_address`` Ray starts embedded on this machine for the grid and is
  shut down after it (no Ray process outlives the run); with ``auto`` or ``HOST:PORT`` it joins
  a running cluster. Workers on other machines read the crops from, and write their unit's
  folder into, the run folder at the same path: the run folder must be on a file system every
  node mounts at that path. A unit whose worker dies is started again (``run.max_retries``)
  and resumes from its resume state (``last.pt``); a unit that fails for good stops the grid
  with a :class:`GridError` naming the unit and the worker's error.

Example:
    >>> LocalExecutor().run(lambda u, progress: u * 2, [1, 2, 3])
    [2, 4, 6]
"""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import socket
import tempfile
import time
from typing import Any, Callable, Sequence

from ..config import ConfigError, StudyConfig

Progress = Callable[[str], None]

#: what to do when ``run.executor=ray`` and Ray is not installed
RAY_INSTALL_HINT = ("run.executor=ray needs Ray, which is not installed: pip install 'alnm[ray]' "
                    "(in a checkout: make install, or pip install -e '.[ray]'); or use "
                    "run.executor=local")


class ExecutorUnavailable(ConfigError):
    """The configured executor cannot be used here (Ray missing); the message says what to do."""


class GridError(RuntimeError):
    """A unit of the grid failed for good: the message names the unit and the worker's error."""

    def __init__(self, message: str, unit: Any = None):
        super().__init__(message)
        self.unit = unit


def describe_unit(unit: Any) -> str:
    """``slice_vote_T2WI r0-f1 (model ..., sequence T2WI, repeat 0, fold 1)`` for a training
    unit (its ``describe()``), ``str`` otherwise."""
    describe = getattr(unit, "describe", None)
    return describe() if callable(describe) else str(unit)


class _Tally:
    """Counts and the time-left estimate shown while a grid runs."""

    def __init__(self, n: int, slots: float):
        self.n, self.slots, self.t0 = n, max(1.0, slots), time.time()
        self.done = self.failed = 0
        self.seconds: list[float] = []

    def line(self, running: int, last: str = "") -> str:
        left = self.n - self.done - self.failed
        if self.seconds and left:
            eta = math.ceil(left / self.slots) * (sum(self.seconds) / len(self.seconds))
            when = f"~{eta:.0f} s left"
        else:
            when = "time left unknown" if left else f"{time.time() - self.t0:.0f} s"
        head = f"{last}; " if last else ""
        return (f"grid: {head}{self.done}/{self.n} done, {running} running, "
                f"{left - running} queued, {self.failed} failed, {when}")


class LocalExecutor:
    """Run the units in this process, in order."""

    name = "local"

    def run(self, work: Callable[..., Any], units: Sequence, *,
            progress: Progress | None = None) -> list:
        say = progress or (lambda s: None)
        tally = _Tally(len(units), 1)
        out = []
        for unit in units:
            t0 = time.time()
            try:
                res = work(unit, progress=say)
            except Exception:
                tally.failed += 1
                if len(units) > 1:
                    say(tally.line(0, f"{unit} FAILED"))
                raise
            tally.done += 1
            tally.seconds.append(time.time() - t0)
            if len(units) > 1:
                say(tally.line(0 if tally.done == len(units) else 1, f"{unit} trained"))
            out.append(res)
        return out


# ----------------------------------------------------------------------------- Ray
def _worker_say(line: str) -> None:
    """A unit's progress inside a Ray worker: its own log (``log_to_driver`` is off)."""
    print(line, flush=True)


def _run_unit(work: Callable[..., Any], unit: Any, run_dir: str | None) -> tuple[Any, str, float]:
    """What one Ray task runs: the unit of work, plus where and how long it ran."""
    if run_dir is not None and not os.path.isfile(os.path.join(run_dir, "run.json")):
        raise FileNotFoundError(
            f"this worker ({socket.gethostname()}) does not see the run folder {run_dir}: with "
            "run.ray_address, the run folder must be on a file system every node mounts at the "
            "same path")
    t0 = time.time()
    res = work(unit, progress=_worker_say)
    return res, f"{socket.gethostname()} pid {os.getpid()}", time.time() - t0


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


class RayExecutor:
    """Run each unit as a Ray task (embedded Ray on this machine, or a cluster).

    Args:
        address: empty for embedded Ray; ``auto`` or ``HOST:PORT`` to join a cluster.
        cpus_per_task, gpus_per_task: resources reserved per unit (fractions allowed).
        max_retries: restarts of a unit whose worker died (it resumes from ``last.pt``).
        run_dir: the run folder, checked by every worker (it must see it at this path).
        num_cpus, num_gpus: resources of embedded Ray (default: this machine's CPUs, Ray's
            GPU detection); ignored when joining a cluster. Tests declare logical GPUs here.
        progress_every: seconds between progress lines while nothing finishes.
    """

    name = "ray"

    def __init__(self, address: str = "", *, cpus_per_task: float = 1.0, gpus_per_task: float = 0.0,
                 max_retries: int = 2, run_dir: str | os.PathLike | None = None,
                 num_cpus: float | None = None, num_gpus: float | None = None,
                 progress_every: float = 15.0, env: dict[str, str] | None = None):
        if not ray_available():
            raise ExecutorUnavailable(RAY_INSTALL_HINT)
        self.address, self.cpus, self.gpus = address, cpus_per_task, gpus_per_task
        self.max_retries, self.num_cpus, self.num_gpus = max_retries, num_cpus, num_gpus
        self.run_dir = None if run_dir is None else os.fspath(run_dir)
        self.progress_every = progress_every
        self.env = dict(env or {})
        self.temp_dir: str | None = None
        #: seconds of the last grid: ``start`` (Ray up), ``grid`` (first submit to last result)
        self.timings: dict[str, float] = {}

    # -- Ray's lifetime: embedded for one grid, or a connection to a cluster
    def _start(self, say: Progress) -> bool:
        """Start or join Ray; returns whether this call did (and so must shut it down)."""
        import ray

        if ray.is_initialized():
            return False
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        kw: dict[str, Any] = dict(log_to_driver=False, include_dashboard=False,
                                  logging_level="ERROR", configure_logging=True)
        if self.address:
            say(f"ray: joining the cluster at {self.address}")
            ray.init(address=self.address, **kw)
            return True
        # embedded: lean start-up on a small machine (no dashboard, small object store: results
        # are a few MB of predictions), no memory monitor killing workers of a busy laptop
        os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
        self.temp_dir = tempfile.mkdtemp(prefix="alnm-ray-", dir="/tmp")
        ray.init(num_cpus=self.num_cpus if self.num_cpus is not None else os.cpu_count(),
                 num_gpus=self.num_gpus, object_store_memory=100 * 2**20,
                 _temp_dir=self.temp_dir, _node_ip_address="127.0.0.1", **kw)
        return True

    def _stop(self, started: bool, keep_logs: bool) -> None:
        import ray

        if not started:
            return
        ray.shutdown()
        if self.temp_dir:
            _reap(self.temp_dir)
            if not keep_logs:
                shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _slots(self) -> float:
        import ray

        res = ray.cluster_resources()
        slots = res.get("CPU", 1.0) / self.cpus
        if self.gpus > 0:
            slots = min(slots, res.get("GPU", 0.0) / self.gpus)
        return math.floor(slots + 1e-9)

    def run(self, work: Callable[..., Any], units: Sequence, *,
            progress: Progress | None = None) -> list:
        say = progress or (lambda s: None)
        if not units:
            return []
        import ray

        t0 = time.time()
        started = self._start(say)
        failed = True
        try:
            self.timings["start"] = time.time() - t0
            slots = self._slots()
            if slots < 1:
                res = ray.cluster_resources()
                raise GridError(
                    f"ray: no node can run a unit: each asks for {self.cpus:g} CPU and "
                    f"{self.gpus:g} GPU, the cluster has {res.get('CPU', 0):g} CPU and "
                    f"{res.get('GPU', 0):g} GPU (lower run.cpus_per_task / run.gpus_per_task)")
            say(f"ray: {len(units)} units, {self.cpus:g} CPU + {self.gpus:g} GPU each, up to "
                f"{slots:g} at once (Ray up in {self.timings['start']:.1f} s)")
            opts = dict(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.max_retries,
                        retry_exceptions=False)
            if self.env and self.address:  # the pinned instruction set, for a joined cluster (embedded workers inherit it)
                opts["runtime_env"] = {"env_vars": dict(self.env)}
            task = ray.remote(_run_unit).options(**opts)
            work_ref = ray.put(work)
            refs = {task.remote(work_ref, u, self.run_dir): i for i, u in enumerate(units)}
            out = self._collect(refs, units, slots, say)
            failed = False
            self.timings["grid"] = time.time() - t0 - self.timings["start"]
            return out
        finally:
            self._stop(started, keep_logs=failed)

    def _collect(self, refs: dict, units: Sequence, slots: float, say: Progress) -> list:
        import ray

        tally = _Tally(len(units), slots)
        out: list = [None] * len(units)
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=self.progress_every)
                if not ready:
                    say(tally.line(min(len(pending), int(slots))))
                    continue
                i = refs[ready[0]]
                try:
                    res, where, secs = ray.get(ready[0])
                except Exception as exc:  # RayTaskError, WorkerCrashedError, ... : stop the grid
                    tally.failed += 1
                    say(tally.line(0, f"{units[i]} FAILED"))
                    raise GridError(self._failure(units[i], exc), units[i]) from None
                out[i] = res
                tally.done += 1
                tally.seconds.append(secs)
                info = getattr(res, "info", None)
                resumed = info.get("resumed_from_epoch") if isinstance(info, dict) else 0
                note = f" (resumed after epoch {resumed})" if resumed else ""
                say(tally.line(min(len(pending), int(slots)),
                               f"{units[i]} trained on {where} in {secs:.1f} s{note}"))
        finally:
            for ref in pending:  # a failure or Ctrl-C: nothing keeps running for this grid
                ray.cancel(ref, force=True)
        return out

    def _failure(self, unit: Any, exc: BaseException) -> str:
        import ray

        cause = getattr(exc, "cause", None)
        if isinstance(exc, ray.exceptions.RayTaskError) and cause is not None:
            err = f"{type(cause).__name__}: {cause}"
        elif isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                              ray.exceptions.OutOfMemoryError)):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            err = (f"its worker died {self.max_retries + 1} time(s), run.max_retries="
                   f"{self.max_retries} ({type(exc).__name__}: {first})")
        else:
            lines = [s for s in str(exc).strip().splitlines() if s.strip()]
            err = f"{type(exc).__name__}: {lines[-1] if lines else ''}"
        logs = (f"; worker logs: {self.temp_dir}/session_latest/logs" if self.temp_dir else "")
        return f"training unit {describe_unit(unit)} failed on a Ray worker: {err}{logs}"


def _reap(temp_dir: str) -> None:
    """After ``ray.shutdown``: end any process of this embedded Ray still running (by its id;
    they are the ones whose command line names this run's Ray folder)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with Ray and Jupyter
        return
    mine, me = [], {os.getpid(), os.getppid()}
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


def for_config(cfg: StudyConfig, run_dir: str | os.PathLike | None = None) -> LocalExecutor | RayExecutor:
    """The executor ``run.*`` asks for.

    Raises:
        ExecutorUnavailable: ``run.executor=ray`` without Ray installed (a ConfigError: the CLI
            prints it and exits with code 2).
    """
    r = cfg.run
    if r.executor == "ray":
        from ..numerics import env_for

        return RayExecutor(r.ray_address, cpus_per_task=r.cpus_per_task, gpus_per_task=r.gpus_per_task,
                           max_retries=r.max_retries, run_dir=run_dir, env=env_for(cfg.train.cpu_isa))
    return LocalExecutor()
