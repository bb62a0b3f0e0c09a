"""The pipeline: the study's steps in order, papermill for the narrative, the report.

``run_study`` takes a resolved :class:`~alnm_core.config.StudyConfig` and a run folder it owns
(:mod:`alnm_core.run.lock`). For each stage it runs the step (:mod:`alnm_core.run.steps`,
skipped when its inputs are unchanged) and then executes the stage's notebook(s) with papermill,
each in a fresh kernel; a notebook calls the same step, finds it up to date, and narrates,
tabulates and plots its result. A notebook whose source, parameters and step keys are unchanged
since its last successful execution is not executed again. Finally it assembles one
self-contained ``report.html`` and checks that every configured step and notebook ran and wrote
its artifacts; otherwise it fails naming what is missing, and the report says so.

The notebooks are the package's jupytext sources (``alnm_core/notebooks/*.py``), converted at
run time: there is no second copy to drift.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import nbformat

from ..config import StudyConfig
from ..report.html import Section, assemble_report
from ..storage import StorageError
from . import record, steps
from .executor import for_config
from .lock import PIPELINE_ENV
from .paths import RunPaths

Progress = Callable[[str], None]
#: The kernel every notebook of the suite names and papermill starts. The pipeline resolves it to
#: the interpreter running the pipeline (never to another environment's "alnm" or "python3");
#: ``alnm lab`` registers the same name for JupyterLab (:mod:`alnm_core.lab`).
KERNEL_NAME = "alnm"
KERNEL_DISPLAY_NAME = "Python (alnm)"


@dataclass(frozen=True)
class NotebookSpec:
    """A notebook of the suite and the section it becomes in the report."""

    stem: str  # file name without .py
    number: str  # section number, the same as the notebook's heading
    title: str
    #: steps whose results the notebook shows ("{seq}" = its sequence, "*" = every sequence)
    depends: tuple[str, ...]
    per_sequence: bool = False
    needs_figures: bool = True

    def step_names(self, cfg: StudyConfig, params: dict) -> list[str]:
        out = []
        for d in self.depends:
            if "*" in d:
                out += [d.replace("*", s) for s in cfg.sequences]
            else:
                out.append(d.format(seq=params.get("sequence", "")))
        return out


NOTEBOOKS = (
    NotebookSpec("01_cohort_statistics", "1", "Cohort and Table 1", ("prepare", "describe_cohort")),
    NotebookSpec("02_roi_cropping", "2", "ROI extraction and quality control", ("prepare", "roi:*")),
    NotebookSpec("03_train_sequence", "3", "Per-sequence CNN", ("prepare", "roi:{seq}", "train:{seq}"),
                 per_sequence=True),
    NotebookSpec("04_ensemble_fusion", "4", "Ensemble fusion", ("train:*", "fuse"),
                 needs_figures=False),
    NotebookSpec("05_roc_delong", "5", "Evaluation: Table 3, ROC, DeLong", ("prepare", "fuse", "evaluate",
                                                                          "radiomics_features:*", "radiomics")),
    NotebookSpec("06_reviewer_crosscheck", "6", "Reviewer's cross-check",
                 ("prepare", "describe_cohort", "fuse", "radiomics", "evaluate"), needs_figures=False),
)


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

    def emit(self, record_: logging.LogRecord) -> None:
        for line in str(record_.getMessage()).splitlines():
            if line.startswith("[alnm]"):
                self.callback(line[len("[alnm]"):].strip())


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
            with open(log_path, "a") as log:
                kw.setdefault("stderr", log)
                return await super()._async_launch_kernel(kernel_cmd, **kw)

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if not restart:
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
    handler = None
    logger = logging.getLogger("papermill")
    if progress is not None:
        handler = _StreamToProgress(progress)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    env_backend = os.environ.pop("MPLBACKEND", None)  # keep inline figures in notebooks
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
        if env_backend is not None:
            os.environ["MPLBACKEND"] = env_backend
        if handler is not None:
            logger.removeHandler(handler)


def check_figures(nb_path: Path) -> bool:
    """True if an executed notebook holds at least one ``image/png`` output."""
    nb = nbformat.read(nb_path, as_version=4)
    return any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))


# ----------------------------------------------------------------------------- stages
def notebook_jobs(cfg: StudyConfig) -> list[tuple[NotebookSpec, str, dict]]:
    """``(spec, output file name, parameters)`` of every notebook a run executes, in order."""
    jobs = []
    for spec in NOTEBOOKS:
        if spec.per_sequence:
            jobs += [(spec, f"{spec.stem}_{s}.ipynb", {"sequence": s}) for s in cfg.sequences]
        else:
            jobs.append((spec, f"{spec.stem}.ipynb", {}))
    return jobs


def expected_steps(cfg: StudyConfig) -> list[str]:
    """Names of the steps a complete run records in ``run.json``."""
    rad = ([f"radiomics_features:{s}" for s in cfg.sequences] + ["radiomics"]
           if cfg.radiomics.enabled else [])
    return (["prepare", "describe_cohort"] + [f"roi:{s}" for s in cfg.sequences]
            + [f"train:{s}" for s in cfg.sequences] + ["fuse"] + rad + ["evaluate", "bundle"])


def _section(spec: NotebookSpec, params: dict) -> tuple[str, str]:
    if spec.per_sequence:
        return spec.number, f"{spec.title}: {params['sequence']}"
    return spec.number, spec.title


def _notebook_key(src: Path, params: dict, step_names: list[str], info: dict) -> str:
    """Source, parameters and the keys of the steps the notebook shows: unchanged = same page."""
    steps_ = info.get("steps", {})
    h = hashlib.sha256(src.read_bytes())
    shown = {k: v for k, v in params.items() if k != "run_dir"}  # a copied run folder stays current
    h.update(json.dumps({"params": shown, "steps": {n: steps_.get(n, {}).get("key") for n in step_names}},
                        sort_keys=True).encode())
    return h.hexdigest()[:24]


class _Runner:
    """Runs the stages of one study in a run folder it owns."""

    def __init__(self, paths: RunPaths, cfg: StudyConfig, progress: Progress, nb_dir: Path | None):
        self.paths, self.cfg, self.say, self.nb_dir = paths, cfg, progress, nb_dir
        self.sections: list[Section] = []
        self.executor = for_config(cfg, run_dir=paths.root)

    def notebooks(self, stem: str) -> None:
        for spec, out_name, params in notebook_jobs(self.cfg):
            if spec.stem != stem:
                continue
            src = notebook_source(spec.stem, self.nb_dir)
            out = self.paths.notebooks / out_name
            full = {"run_dir": str(self.paths.root.resolve()), **params}
            key = _notebook_key(src, full, spec.step_names(self.cfg, params), record.read(self.paths.root))
            state = record.read(self.paths.root).get("notebooks", {}).get(out_name, {})
            number, title = _section(spec, params)
            if state.get("key") == key and state.get("status") == "ok" and out.is_file():
                self.say(f"notebook {out_name}: up to date")
                self.sections.append(Section(number, title, out))
                continue
            self.say(f"notebook {out_name}")
            res = execute_notebook(src, out, full, cwd=self.paths.notebooks, progress=self.say)
            if out.is_file():
                self.sections.append(Section(number, title, out))
            if res.ok and spec.needs_figures and not check_figures(out):
                res.ok, res.error = False, (f"{out_name} holds no figure (is MPLBACKEND=Agg set, or "
                                            "does a library call matplotlib.use?)")
            record.update(self.paths, notebooks={out_name: {
                "key": key, "status": "ok" if res.ok else "failed", "error": res.error,
                "seconds": round(res.seconds, 2), "finished": record.now()}})
            self.say(f"{out_name}: {'done' if res.ok else 'FAILED'} in {res.seconds:.1f} s")
            if not res.ok:
                raise PipelineError(res.error)

    def stage(self, name: str, fn: Callable[[], object]) -> None:
        self.say(f"step {name}")
        try:
            fn()
        except PipelineError:
            raise
        except Exception as exc:  # every step error becomes one message naming the step
            raise PipelineError(f"step {name} failed: {type(exc).__name__}: {exc}") from exc

    def run(self) -> None:
        p, c, say = self.paths, self.cfg, self.say
        self.stage("describe_cohort", lambda: steps.describe_cohort(p, c, progress=say))
        self.notebooks("01_cohort_statistics")
        self.stage("extract_rois", lambda: steps.extract_rois(p, c, progress=say))
        self.notebooks("02_roi_cropping")
        self.stage("train", lambda: steps.train_all(p, c, progress=say, executor=self.executor))
        self.notebooks("03_train_sequence")
        self.stage("fuse", lambda: steps.fuse(p, c, progress=say, executor=self.executor))
        self.notebooks("04_ensemble_fusion")
        if c.radiomics.enabled:
            self.stage("radiomics", lambda: steps.radiomics(p, c, progress=say))
        self.stage("evaluate", lambda: steps.evaluate(p, c, progress=say, executor=self.executor))
        self.notebooks("05_roc_delong")
        self.notebooks("06_reviewer_crosscheck")
        self.stage("bundle", lambda: steps.bundle(p, c, progress=say, executor=self.executor))

    def missing(self) -> list[str]:
        """What a complete run has and this one lacks (steps, their outputs, notebooks)."""
        info = record.read(self.paths.root)
        out = []
        for name in expected_steps(self.cfg):
            st = info.get("steps", {}).get(name)
            if not st:
                out.append(f"step {name} did not run")
                continue
            out += [f"{name} output {o} is missing" for o in st.get("outputs", [])
                    if not (self.paths.root / o).exists()]
        for _spec, out_name, _ in notebook_jobs(self.cfg):
            if info.get("notebooks", {}).get(out_name, {}).get("status") != "ok":
                out.append(f"notebook {out_name} did not run")
        return out


def run_study(cohort_dir: str | Path, cfg: StudyConfig, run_dir: str | Path, *,
              progress: Progress | None = None, notebook_dir: Path | None = None) -> Path:
    """Run the whole study into ``run_dir`` and write ``report.html``.

    The caller owns ``run_dir`` (see :func:`alnm_core.run.lock.RunLock`; the CLI takes it).

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
        return _run_study(paths, Path(cohort_dir), cfg, say, notebook_dir, t0)


@contextmanager
def kernels_inside(paths: RunPaths):
    """Tell the kernels this process starts that they run inside its ownership of the run
    folder: their steps do not take the lock the caller holds."""
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
    say("step prepare (cohort check, splits)")
    steps.prepare(paths, cfg, cohort_dir, progress=say)  # input errors propagate as they are
    record.update(paths, status="running")
    runner = _Runner(paths, cfg, say, notebook_dir)
    problem = ""
    try:
        runner.run()
    except PipelineError as exc:
        problem = str(exc)
    missing = [] if problem else runner.missing()
    if missing:
        problem = "incomplete run: " + "; ".join(missing)
    status = "ok" if not problem else ("incomplete" if missing else "failed")
    record.update(paths, status=status, timings_s={"total": round(time.time() - t0, 2)})
    say("assembling report.html")
    assemble_report(paths, runner.sections, problem=problem)
    if problem:
        raise PipelineError(f"{problem} (report: {paths.report})")
    return paths.report
