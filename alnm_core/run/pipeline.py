"""The pipeline: the study's steps in graph order, papermill for the narrative, the report.

``run_study`` takes a resolved :class:`~alnm_core.config.StudyConfig` and a run folder it owns
(:mod:`alnm_core.runfolder.lock`). It brings every step instance of the registry
(:mod:`alnm_core.run.registry`) up to date in graph order, and executes each notebook with
papermill, in a fresh kernel, as soon as every step it shows is up to date, while the steps after
it go on (at most :data:`NOTEBOOKS_AT_ONCE` kernels at a time); a notebook loads its steps'
results (it never recomputes them). A notebook whose source, parameters and step keys are
unchanged since its last successful execution is not executed again. Finally it assembles one
self-contained ``report.html`` and checks that every step and notebook ran and wrote its
artifacts; otherwise it fails naming what is missing, and the report says so.

The notebooks are the package's jupytext sources (``alnm_core/notebooks/*.py``), converted at
run time: there is no second copy to drift.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import nbformat

from ..config import ConfigError, StudyConfig
from ..report.html import Section, assemble_report
from ..runfolder import record
from ..runfolder.lock import PIPELINE_ENV
from ..runfolder.paths import RunPaths
from ..storage import StorageError
from .executor import for_config
from .graph import Runner
from .registry import notebook_jobs, runner_for

Progress = Callable[[str], None]
#: The kernel every notebook of the suite names and papermill starts. The pipeline resolves it to
#: the interpreter running the pipeline (never to another environment's "alnm" or "python3");
#: ``alnm lab`` registers the same name for JupyterLab (:mod:`alnm_core.lab`).
KERNEL_NAME = "alnm"
KERNEL_DISPLAY_NAME = "Python (alnm)"
#: Notebooks executed at the same time, beside the steps. A notebook only reads finished steps,
#: so its kernel (start-up, figures: one core) can run while the next steps compute; on the
#: 2-core machine the smoke study's notebooks then cost 40% less wall time (BENCHMARKS.md).
NOTEBOOKS_AT_ONCE = 2


class PipelineError(RuntimeError):
    """A step or notebook failed, or the run is incomplete; the message names what."""


def notebook_dir() -> Path:
    """Where the notebook sources are (package data: works from any install)."""
    return Path(str(resources.files("alnm_core") / "notebooks"))


def notebook_source(stem: str, nb_dir: Path | None = None) -> Path:
    """The jupytext source of a notebook; raises PipelineError if the package lacks it."""
    path = (nb_dir or notebook_dir()) / f"{stem}.py"
    if not path.is_file():
        raise PipelineError(f"notebook source {path} is missing: the installation is incomplete "
                            "(reinstall alnm)")
    return path


def load_notebook(path: Path) -> nbformat.NotebookNode:
    """A jupytext percent-format ``.py`` file as a notebook."""
    import jupytext

    nb = jupytext.read(path)
    # an executed notebook is not paired with the source: with the pairing kept, JupyterLab's
    # jupytext extension refuses to open it ("matches none of the export formats")
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY_NAME,
                                 "language": "python"}
    return nb


# ----------------------------------------------------------------------------- papermill
class _StreamToProgress(logging.Handler):
    """Forward notebook output lines starting with ``[alnm]`` to a progress callback."""

    def __init__(self, callback: Progress):
        super().__init__()
        self.callback = callback
        self.thread = threading.get_ident()  # two notebooks at once: each forwards its own lines

    def emit(self, record_: logging.LogRecord) -> None:
        if record_.thread != self.thread:
            return
        for line in str(record_.getMessage()).splitlines():
            if line.startswith("[alnm]"):
                self.callback(line[len("[alnm]"):].strip())


#: the kernels this process has started and not yet cleaned up (their managers)
_LIVE_KERNELS: set = set()


def stop_kernels() -> None:
    """Kill every notebook kernel this process started that is still running (an interrupted
    run: a kernel runs in its own session, so a terminal's Ctrl-C does not reach it; the thread
    executing its notebook then ends with a dead kernel)."""
    for km in list(_LIVE_KERNELS):
        proc = getattr(getattr(km, "provisioner", None), "process", None)
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGKILL)
            except OSError:
                pass


def _kernel_manager_class(log_path: Path):
    """A kernel manager whose kernels talk over Unix sockets (IPC), not plain TCP, and write
    their own diagnostics (stderr) to ``log_path`` rather than to the user's terminal."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    class ThisInterpreter(KernelSpecManager):
        """``alnm`` is always this interpreter, whatever kernels the machine has registered."""

        def get_kernel_spec(self, kernel_name):
            if kernel_name == KERNEL_NAME:
                return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                        "{connection_file}"],
                                  display_name=KERNEL_DISPLAY_NAME, language="python",
                                  metadata={"debugger": False})
            return super().get_kernel_spec(kernel_name)

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kw):
            self._ipc_dir = tempfile.mkdtemp(prefix="alnm-k-")
            kw.setdefault("kernel_spec_manager", ThisInterpreter())
            kw.setdefault("transport", "ipc")
            kw.setdefault("ip", os.path.join(self._ipc_dir, "k"))
            super().__init__(**kw)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            log_path.parent.mkdir(parents=True, exist_ok=True)
            # inline figures in the notebook whatever backend the calling process chose (the
            # kernel's own environment: never a change to this process's, which other
            # notebooks' kernels read at the same time)
            env = dict(kw.get("env") or os.environ)
            env.pop("MPLBACKEND", None)
            kw["env"] = env
            with open(log_path, "a") as log:
                kw.setdefault("stderr", log)
                out = await super()._async_launch_kernel(kernel_cmd, **kw)
            _LIVE_KERNELS.add(self)
            return out

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if not restart:
                _LIVE_KERNELS.discard(self)
                shutil.rmtree(self._ipc_dir, ignore_errors=True)

        cleanup_resources = _async_cleanup_resources

    return IPCKernelManager


@dataclass
class NotebookRun:
    name: str
    output: Path
    seconds: float
    ok: bool
    error: str = ""
    skipped: bool = False


def execute_notebook(src: Path | nbformat.NotebookNode, out: Path, parameters: dict, *, cwd: Path,
                     progress: Progress | None = None) -> NotebookRun:
    """Run one notebook with papermill in a fresh kernel (IPC transport)."""
    import papermill as pm

    nb = load_notebook(src) if isinstance(src, Path) else src
    t0 = time.time()
    try:
        check_parameters(nb, out.name, parameters)
    except ConfigError as exc:  # refused before a kernel starts
        return NotebookRun(out.name, out, 0.0, False, f"{out.name}: ConfigError: {exc}")
    handler = None
    logger = logging.getLogger("papermill")
    if progress is not None:
        handler = _StreamToProgress(progress)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        pm.execute_notebook(nb, str(out), parameters=parameters, kernel_name=KERNEL_NAME,
                            cwd=str(cwd), progress_bar=False, log_output=progress is not None,
                            request_save_on_cell_execute=True,
                            kernel_manager_class=_kernel_manager_class(out.parent / "kernels.log"))
        return NotebookRun(out.name, out, time.time() - t0, True)
    except pm.PapermillExecutionError as exc:
        msg = (f"{out.name}: cell {exc.exec_count or exc.cell_index} failed with "
               f"{exc.ename}: {exc.evalue}")
        return NotebookRun(out.name, out, time.time() - t0, False, msg)
    except OSError as exc:  # the executed notebook could not be written (disk full, read-only)
        raise StorageError(out, "the executed notebook", exc) from exc
    except RuntimeError as exc:  # nbclient's DeadKernelError and friends: the kernel went away
        if type(exc).__name__ != "DeadKernelError":
            raise
        return NotebookRun(out.name, out, time.time() - t0, False,
                           f"{out.name}: the kernel died (out of memory, or killed); see "
                           f"{out.parent / 'kernels.log'}")
    finally:
        if handler is not None:
            logger.removeHandler(handler)
        log = out.parent / "kernels.log"
        if log.is_file() and log.stat().st_size == 0:  # nothing to say: leave no empty file
            log.unlink()


def check_figures(nb_path: Path) -> bool:
    """True if an executed notebook holds at least one ``image/png`` output."""
    nb = nbformat.read(nb_path, as_version=4)
    return any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))


# ----------------------------------------------------------------------------- parameters
def notebook_parameters(nb: nbformat.NotebookNode) -> dict[str, str]:
    """``name -> type name`` of a notebook's parameters cell (``name: type = literal  # help``)."""
    import ast

    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return {}
    out = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = ast.unparse(node.annotation)
    return out


def check_parameters(nb: nbformat.NotebookNode, name: str, parameters: dict) -> None:
    """Refuse a parameter the notebook does not declare, or one of the wrong type, before any
    kernel starts (papermill itself only warns).

    Raises:
        ConfigError: naming the notebook and every bad parameter.
    """
    declared = notebook_parameters(nb)
    types = {"str": str, "int": int, "bool": bool, "float": (int, float)}
    problems = []
    for k, v in parameters.items():
        if k not in declared:
            problems.append(f"unknown parameter {k!r} (known: {sorted(declared)})")
        elif declared[k] in types and (not isinstance(v, types[declared[k]]) or
                                       (declared[k] != "bool" and isinstance(v, bool))):
            problems.append(f"parameter {k!r}={v!r} should be {declared[k]}")
    if problems:
        raise ConfigError(f"{name}: " + "; ".join(problems))


# ----------------------------------------------------------------------------- the run
def _notebook_key(src: Path, params: dict, instances: list[str], runner: Runner) -> str:
    """Source, parameters and the keys of the steps the notebook shows: unchanged = same page."""
    h = hashlib.sha256(src.read_bytes())
    shown = {k: v for k, v in params.items() if k != "run_dir"}  # a copied run folder stays current
    h.update(json.dumps({"params": shown, "steps": {n: runner.key(n) for n in instances}},
                        sort_keys=True).encode())
    return h.hexdigest()[:24]


class _Runner:
    """Runs one study in a run folder it owns: steps in graph order, notebooks as soon as the
    steps they show are up to date (in worker threads, beside the steps that follow)."""

    def __init__(self, paths: RunPaths, cfg: StudyConfig, progress: Progress, nb_dir: Path | None,
                 cohort_dir: Path):
        self.paths, self.cfg, self.say, self.nb_dir = paths, cfg, progress, nb_dir
        self.steps = runner_for(paths, cfg, cohort_dir=cohort_dir, progress=progress,
                                executor=for_config(cfg, run_dir=paths.root))
        self.jobs = notebook_jobs(cfg)
        self.done: set[str] = set()
        self.sections: dict[str, Section] = {}
        self.started: dict[str, Future | None] = {}  # None: up to date, nothing to execute

    def notebook(self, nb, seq: str | None, out_name: str, pool: ThreadPoolExecutor | None = None) -> None:
        """Execute one notebook (in ``pool`` when given) unless it is up to date."""
        src = notebook_source(nb.stem, self.nb_dir)
        out = self.paths.notebooks / out_name
        params = {"run_dir": str(self.paths.root.resolve()), **({"sequence": seq} if seq else {})}
        key = _notebook_key(src, params, nb.instances(self.steps.graph, seq), self.steps)
        state = record.read(self.paths.root).get("notebooks", {}).get(out_name, {})
        section = Section(nb.number, nb.title_for(seq), out)
        if state.get("key") == key and state.get("status") == "ok" and out.is_file():
            self.say(f"notebook {out_name}: up to date")
            self.sections[out_name] = section
            self.started[out_name] = None
            return
        self.say(f"notebook {out_name}")
        args = (nb, src, out, params, key, section)
        self.started[out_name] = pool.submit(self._execute, *args) if pool else None
        if pool is None:
            self._execute(*args)

    def _execute(self, nb, src: Path, out: Path, params: dict, key: str, section: Section) -> None:
        """Execute a notebook, record it, and raise PipelineError if it failed (any thread)."""
        res = execute_notebook(src, out, params, cwd=self.paths.notebooks, progress=self.say)
        if out.is_file():
            self.sections[out.name] = section
        if res.ok and nb.needs_figures and not check_figures(out):
            res.ok, res.error = False, (f"{out.name} holds no figure (is MPLBACKEND=Agg set, or does a "
                                        "library call matplotlib.use?)")
        record.finish_notebook(self.paths, out.name, key=key, status="ok" if res.ok else "failed",
                               error=res.error, seconds=res.seconds)
        self.say(f"{out.name}: {'done' if res.ok else 'FAILED'} in {res.seconds:.1f} s")
        if not res.ok:
            raise PipelineError(res.error)

    def _raise_failed(self, *, wait: bool) -> None:
        """Raise the first failed notebook's error, in notebook order (waiting for each when
        ``wait``)."""
        for fut in self.started.values():
            if fut is not None and (wait or fut.done()):
                fut.result()

    def run(self) -> None:
        graph = self.steps.graph
        pool = ThreadPoolExecutor(max_workers=NOTEBOOKS_AT_ONCE, thread_name_prefix="alnm-notebook")
        try:
            for inst in graph.instances:
                self._raise_failed(wait=False)  # a failed notebook stops the run at the next step
                try:
                    self.steps.get(inst.name)
                except PipelineError:
                    raise
                except Exception as exc:  # every step error becomes one message naming the step
                    raise PipelineError(f"step {inst.name} failed: {type(exc).__name__}: {exc}") from exc
                self.done.add(inst.name)
                for nb, seq, out_name in self.jobs:
                    if out_name not in self.started and set(nb.instances(graph, seq)) <= self.done:
                        self.notebook(nb, seq, out_name, pool)
            self._raise_failed(wait=True)
        except BaseException as exc:
            if isinstance(exc, Exception):
                raise
            # Ctrl-C: no kernel outlives the run. While the notebook threads end, a further
            # SIGINT (a second Ctrl-C, or jupyter_client interrupting a kernel on its way down)
            # must not cut the clean-up short
            quiet = threading.current_thread() is threading.main_thread()
            before = signal.signal(signal.SIGINT, signal.SIG_IGN) if quiet else None
            try:
                stop_kernels()
                pool.shutdown(wait=True, cancel_futures=True)
            finally:
                if quiet:
                    signal.signal(signal.SIGINT, before)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # the report shows every notebook that ran

    def ordered_sections(self) -> list[Section]:
        return [self.sections[o] for _, _, o in self.jobs if o in self.sections]

    def missing(self) -> list[str]:
        """What a complete run has and this one lacks (steps, their outputs, notebooks)."""
        info = record.read(self.paths.root)
        out = []
        for inst in self.steps.graph.instances:
            st = info.get("steps", {}).get(inst.name)
            if not st:
                out.append(f"step {inst.name} did not run")
                continue
            out += [f"{inst.name} output {o} is missing" for o in st.get("outputs", [])
                    if not (self.paths.root / o).exists()]
        for _nb, _seq, out_name in self.jobs:
            if info.get("notebooks", {}).get(out_name, {}).get("status") != "ok":
                out.append(f"notebook {out_name} did not run")
        return out


def start_record(paths: RunPaths, cfg: StudyConfig, cohort_dir: Path, n_patients: int) -> None:
    """Start (or refresh the provenance of) the run's ``run.json``."""
    paths.make()
    if not record.exists(paths.root) or record.read(paths.root).get("config") != cfg.to_dict():
        record.create(paths, cfg, cohort_dir=cohort_dir, n_patients=n_patients)


def run_study(cohort_dir: str | Path, cfg: StudyConfig, run_dir: str | Path, *,
              progress: Progress | None = None, notebook_dir: Path | None = None) -> Path:
    """Run the whole study into ``run_dir`` and write ``report.html``.

    The caller owns ``run_dir`` (see :class:`alnm_core.runfolder.lock.RunLock`; the CLI takes it).

    Returns:
        Path of ``report.html``.

    Raises:
        CohortError, SplitError: the cohort cannot be used (nothing is run).
        PipelineError: a step or notebook failed, or the run is incomplete (the report is still
            written, and says so).
    """
    say = progress or (lambda s: None)
    t0 = time.time()
    paths = RunPaths(Path(run_dir).resolve())
    with kernels_inside(paths):
        return _run_study(paths, Path(cohort_dir).resolve(), cfg, say, notebook_dir, t0)


@contextmanager
def kernels_inside(paths: RunPaths):
    """Tell the kernels this process starts that they run inside its ownership of the run
    folder: they read the finished steps and take no lock."""
    before = os.environ.get(PIPELINE_ENV)
    os.environ[PIPELINE_ENV] = str(paths.root)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PIPELINE_ENV, None)
        else:
            os.environ[PIPELINE_ENV] = before


def _run_study(paths: RunPaths, cohort_dir: Path, cfg: StudyConfig, say: Progress,
               notebook_dir: Path | None, t0: float) -> Path:
    from ..cohort import load_cohort
    from ..model_registry import study_models
    from .steps_eval import comparison_families

    try:  # the pre-specified comparisons name models of this study: refused before any work
        comparison_families(cfg, study_models(cfg))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    cohort = load_cohort(cohort_dir, cfg.sequences, inputs=cfg.input)  # input errors propagate as they are
    start_record(paths, cfg, cohort_dir, len(cohort))
    runner = _Runner(paths, cfg, say, notebook_dir, cohort_dir)
    runner.steps.cache["cohort"] = cohort
    say("step prepare (cohort check, splits)")
    runner.steps.get("prepare")  # split errors propagate as they are
    record.set_status(paths, "running")
    problem = ""
    try:
        runner.run()
    except PipelineError as exc:
        problem = str(exc)
    missing = [] if problem else runner.missing()
    if missing:
        problem = "incomplete run: " + "; ".join(missing)
    status = "ok" if not problem else ("incomplete" if missing else "failed")
    record.set_status(paths, status, total_seconds=time.time() - t0)
    say("assembling report.html")
    assemble_report(paths, runner.ordered_sections(), problem=problem)
    if problem:
        raise PipelineError(f"{problem} (report: {paths.report})")
    return paths.report


def status(paths: RunPaths, cfg: StudyConfig | None = None) -> tuple[list, list[tuple[str, str]]]:
    """``alnm status``: per step instance (up to date / stale with why / missing), and per
    notebook (up to date / stale / missing), for the run's configuration or ``cfg``."""
    cfg = cfg or record.config(paths.root)
    r = runner_for(paths, cfg)
    steps = r.status()
    info = record.read(paths.root)
    nbs = []
    for nb, seq, out_name in notebook_jobs(cfg):
        st = info.get("notebooks", {}).get(out_name, {})
        src = notebook_source(nb.stem)
        params = {"run_dir": str(paths.root.resolve()), **({"sequence": seq} if seq else {})}
        key = _notebook_key(src, params, nb.instances(r.graph, seq), r)
        if not st or st.get("status") != "ok" or not (paths.notebooks / out_name).is_file():
            nbs.append((out_name, "missing"))
        else:
            nbs.append((out_name, "up to date" if st.get("key") == key else "stale"))
    return steps, nbs
