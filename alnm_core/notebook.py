"""What a notebook calls first: parameter checks and the run context.

Each notebook's first code cell records the names that exist before its parameters cell; the
cell after the parameters calls :func:`start`, which fails loudly on any parameter papermill
injected that the notebook does not declare (papermill itself only warns), checks types, and
returns the run's :class:`Context`. The notebook then runs its step with :meth:`Context.run`
(a no-op returning the saved result when the pipeline has run it) and narrates the result.

Opened on its own in JupyterLab, a notebook whose ``run_dir`` has no ``run.json`` yet prepares a
run on the built-in phantom of the chosen profile; its step then computes whatever upstream
result is missing, holding the run folder's lock while it does.

Example (first cells of a notebook)::

    from alnm_core import notebook as nbk
    _before = set(globals())
    # parameters cell
    run_dir = "../reports/notebook-smoke"  # str: run folder
    profile = "smoke"  # str: profile used when run_dir has no run.json yet
    # next cell
    ctx = nbk.start(globals(), _before, {"run_dir": str, "profile": str})
    res = ctx.run(steps.describe_cohort)
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .config import ConfigError, StudyConfig, check_notebook_parameters, resolve_config
from .run import record
from .run.lock import PIPELINE_ENV, RunLock
from .run.paths import RunPaths


def log(message: str) -> None:
    """Print a progress line; the CLI relays lines starting with ``[alnm]``."""
    print(f"[alnm] {message}", flush=True)


@dataclass(frozen=True)
class Context:
    """What a notebook needs about its run."""

    run_dir: Path
    paths: RunPaths
    cfg: StudyConfig
    params: dict

    @property
    def info(self) -> dict:
        """The run's ``run.json`` as it is now."""
        return record.read(self.run_dir)

    @property
    def cohort_dir(self) -> Path:
        return Path(self.info["cohort"])

    def _owned(self):
        inside = os.environ.get(PIPELINE_ENV) == str(self.run_dir)
        return nullcontext() if inside else RunLock(self.paths.lock, command="notebook")

    def run(self, step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``step(paths, cfg, *args, progress=log, **kwargs)`` and return its result.

        Inside a pipeline run the step is up to date and returns its saved result at once. A
        notebook opened on its own computes what is missing, holding the folder's lock.
        """
        with self._owned():
            return step(self.paths, self.cfg, *args, progress=log, **kwargs)


def start(namespace: dict[str, Any], before: set[str], spec: dict[str, type], *,
          prepare_if_missing: bool = True) -> Context:
    """Validate the notebook's parameters, apply the report's figure theme and return the run
    context.

    Args:
        namespace: the notebook's ``globals()``.
        before: names that existed before the parameters cell.
        spec: declared parameter name -> type.
        prepare_if_missing: prepare a phantom run when ``run_dir`` has no ``run.json``.

    Raises:
        ConfigError: an undeclared parameter was injected, or one has the wrong type.
        RunRecordMissing: no ``run.json`` and ``prepare_if_missing`` is false.
    """
    from .report.plots import use_theme

    use_theme()  # one look across the report's figures
    new = {k: v for k, v in namespace.items()
           if k not in before and not k.startswith("_") and k not in ("In", "Out")}
    check_notebook_parameters(new, spec)
    missing = [k for k in spec if k not in new]
    if missing:
        raise ConfigError(f"parameters {missing} are not defined in the parameters cell")
    run_dir = (Path.cwd() / Path(new["run_dir"]).expanduser()).resolve()
    paths = RunPaths(run_dir)
    if not record.exists(run_dir) and not prepare_if_missing:
        record.read(run_dir)  # raises RunRecordMissing with what to do
    if not record.exists(run_dir):
        from .phantom import ensure_phantom
        from .run.steps import prepare

        profile = new.get("profile", "smoke")
        cfg = resolve_config(profile)
        log(f"{run_dir} has no run.json: preparing a {profile} run on the built-in phantom")
        cohort = ensure_phantom(profile, cfg.phantom)
        with RunLock(paths.lock, command="notebook"):
            prepare(paths, cfg, cohort, progress=log)
    return Context(run_dir, paths, record.config(run_dir), new)
