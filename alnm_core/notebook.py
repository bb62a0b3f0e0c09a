"""What a notebook calls first: its run, checked parameters, and the results of finished steps.

A notebook's parameters cell holds typed literals (``run_dir: str = "reports/demo"  # help``);
the next cell passes them to :func:`start`::

    ctx = nbk.start(run_dir=run_dir, profile=profile)
    res = ctx.load("describe_cohort")

:func:`start` checks every parameter against the annotated parameters cell (an unknown one, a
missing one or one of the wrong type is a :class:`~alnm_core.config.ConfigError`; the pipeline
refuses them before a kernel starts too, since papermill itself only warns), applies the
report's figure theme and returns the run's :class:`Context`. :meth:`Context.load` returns a
step's result: in a pipeline run every step is finished and is read from its artifacts; opened
on its own in JupyterLab, a notebook computes what is missing (holding the run folder's lock),
and a ``run_dir`` without ``run.json`` is prepared on the built-in phantom of ``profile``.

``run_dir`` is resolved against the repository (a checkout) or the working directory (an
installed package), never against the folder the notebook file lies in, and never inside the
package: JupyterLab follows the ``notebooks`` link into ``alnm_core/notebooks``.
"""
from __future__ import annotations

import os
import sys
import types
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ConfigError, StudyConfig, resolve_config
from .runfolder import record
from .runfolder.lock import PIPELINE_ENV, RunLock
from .runfolder.paths import RunPaths

_PACKAGE = Path(__file__).resolve().parent
#: names IPython puts into a notebook's namespace
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def log(message: str) -> None:
    """Print a progress line; the CLI relays lines starting with ``[alnm]``."""
    print(f"[alnm] {message}", flush=True)


def project_root() -> Path:
    """Where a relative ``run_dir`` starts: the repository of a checkout, else the working
    directory."""
    repo = _PACKAGE.parent
    if (repo / "pyproject.toml").is_file() and (repo / "alnm_core").is_dir():
        return repo
    return Path.cwd()


def resolve_run_dir(value: str) -> Path:
    """``run_dir`` as a path: absolute as given, relative to :func:`project_root` otherwise.

    Raises:
        ConfigError: the folder would lie inside the installed package.
    """
    p = Path(value).expanduser()
    path = (p if p.is_absolute() else project_root() / p).resolve()
    if path == _PACKAGE or _PACKAGE in path.parents:
        raise ConfigError(f"run_dir {value!r} resolves to {path}, inside the alnm package: give a "
                          "path relative to the repository (e.g. reports/demo) or an absolute one")
    return path


@dataclass(frozen=True, kw_only=True)
class Context:
    """What a notebook needs about its run."""

    run_dir: Path
    paths: RunPaths
    cfg: StudyConfig
    params: dict
    _runner: Any = field(repr=False)

    @property
    def info(self) -> dict:
        """The run's ``run.json`` as it is now."""
        return record.read(self.run_dir)

    @property
    def cohort_dir(self) -> Path:
        return Path(self.info["cohort"])

    @property
    def models(self):
        """The study's models (:class:`~alnm_core.model_registry.ModelSet`)."""
        from .model_registry import study_models

        return study_models(self.cfg)

    def _owned(self):
        inside = os.environ.get(PIPELINE_ENV) == str(self.run_dir)
        return nullcontext() if inside else RunLock(self.paths.lock, command="notebook")

    def load(self, step: str, sequence: str | None = None) -> Any:
        """The result of a step (``"evaluate"``; ``"roi", sequence="T2WI"``).

        Inside a pipeline run the step is finished and is read back at once. A notebook opened
        on its own computes what is missing, holding the folder's lock.
        """
        name = f"{step}:{sequence}" if sequence else step
        with self._owned():
            return self._runner.get(name)

    def load_all(self, step: str) -> dict[str, Any]:
        """``{sequence: result}`` of a per-sequence step, for every sequence of the run."""
        return {s: self.load(step, s) for s in self.cfg.sequences
                if f"{step}:{s}" in self._runner.graph.by_name}


def _declared(namespace: dict) -> dict[str, Any]:
    return dict(namespace.get("__annotations__", {}))


def _check(params: dict, namespace: dict) -> None:
    declared = _declared(namespace)
    problems = []
    injected = [k for k, v in namespace.items()
                if not k.startswith("_") and k not in declared and k not in _IPYTHON_NAMES
                and not isinstance(v, (types.ModuleType, type)) and not callable(v)]
    problems += [f"unknown parameter {k!r} (known: {sorted(declared)})" for k in injected]
    problems += [f"unknown parameter {k!r} (known: {sorted(declared)})" for k in params if k not in declared]
    problems += [f"parameter {k!r} is declared but not passed to nbk.start" for k in declared if k not in params]
    for k, v in params.items():
        t = declared.get(k)
        if isinstance(t, type) and (not isinstance(v, t) or (t is not bool and isinstance(v, bool))):
            if not (t is float and isinstance(v, int)):
                problems.append(f"parameter {k!r}={v!r} should be {t.__name__}")
    if problems:
        raise ConfigError("; ".join(problems))


def start(**params: Any) -> Context:
    """Check the notebook's parameters, apply the report's figure theme, return the run context.

    Args:
        **params: every parameter of the notebook's parameters cell, by name.

    Raises:
        ConfigError: an undeclared parameter (injected or passed), a declared one not passed, or
            one of the wrong type; a ``run_dir`` inside the package.
        RunRecordMissing: no ``run.json`` and the notebook has no ``profile`` to prepare one.
    """
    from .report.plots import use_theme
    from .run.executor import for_config
    from .run.registry import runner_for

    caller = sys._getframe(1).f_globals
    _check(params, caller)
    use_theme()  # one look across the report's figures
    run_dir = resolve_run_dir(params["run_dir"])
    paths = RunPaths(run_dir)
    if not record.exists(run_dir):
        if "profile" not in params:
            record.read(run_dir)  # raises RunRecordMissing with what to do
        from .phantom_cache import ensure_phantom
        from .run.pipeline import start_record

        profile = params["profile"]
        cfg = resolve_config(profile)
        log(f"{run_dir} has no run.json: preparing a {profile} run on the built-in phantom")
        cohort = ensure_phantom(profile, cfg.phantom)
        with RunLock(paths.lock, command="notebook"):
            from .cohort import load_cohort

            start_record(paths, cfg, Path(cohort).resolve(), len(load_cohort(cohort, cfg.sequences)))
    cfg = record.config(run_dir)
    inside = os.environ.get(PIPELINE_ENV) == str(run_dir)
    kw = dict(progress=log, trust_record=inside, executor=None if inside else for_config(cfg, run_dir=run_dir))
    if record.read(run_dir).get("kind") == "external validation":
        from .run.external import runner as external_runner

        runner = external_runner(paths, cfg, **kw)
    else:
        runner = runner_for(paths, cfg, **kw)
    return Context(run_dir=run_dir, paths=paths, cfg=cfg, params=params, _runner=runner)
