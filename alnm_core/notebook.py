"""Helpers the notebooks call first: parameter checks and the run context.

Each notebook's first code cell records the names that exist before its parameters cell; the
cell after the parameters calls :func:`start`, which fails loudly on any parameter papermill
injected that the notebook does not declare (papermill itself only warns), checks types, and
returns the run's context. Opened on its own in JupyterLab, a notebook whose ``run_dir`` has no
``run.json`` yet gets one made from the built-in phantom of the chosen profile.

Example (first cells of a notebook)::

    from alnm_core import notebook as nbk
    _before = set(globals())
    # parameters cell
    run_dir = "../reports/notebook-smoke"  # str: run folder
    profile = "smoke"  # str: profile used when run_dir has no run.json yet
    # next cell
    ctx = nbk.start(globals(), _before, {"run_dir": str, "profile": str})
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, StudyConfig, check_notebook_parameters, resolve_config
from .runinfo import RunPaths, read_run_json, run_config

REPO_ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    """Print a progress line; the CLI relays lines starting with ``[alnm]``."""
    print(f"[alnm] {message}", flush=True)


@dataclass(frozen=True)
class Context:
    """What a notebook needs about its run."""

    run_dir: Path
    paths: RunPaths
    cfg: StudyConfig
    info: dict
    params: dict

    @property
    def cohort_dir(self) -> Path:
        return Path(self.info["cohort"])


def phantom_dir(profile: str, data_dir: Path | None = None) -> Path:
    """Where the phantom of a profile is cached (``data/phantom-<profile>``)."""
    return (data_dir or REPO_ROOT / "data") / f"phantom-{profile}"


def ensure_phantom(cfg: StudyConfig, data_dir: Path | None = None, *, progress=None) -> Path:
    """Write the profile's phantom cohort unless the same settings are already on disk."""
    from .phantom import PHANTOM_VERSION, write_phantom

    out = phantom_dir(cfg.profile, data_dir)
    stamp = out / "PHANTOM.json"
    want = {**cfg.to_dict()["phantom"], "generator_version": PHANTOM_VERSION}
    if stamp.is_file() and json.loads(stamp.read_text()) == want and (out / "cohort.csv").is_file():
        return out
    if out.exists():
        shutil.rmtree(out)  # our own cache folder: rewrite it whole
    write_phantom(out, cfg.phantom, progress=progress)
    stamp.write_text(json.dumps(want, indent=1))
    return out


def start(namespace: dict[str, Any], before: set[str], spec: dict[str, type]) -> Context:
    """Validate the notebook's parameters and return its run context.

    Args:
        namespace: the notebook's ``globals()``.
        before: names that existed before the parameters cell.
        spec: declared parameter name -> type.

    Raises:
        ConfigError: an undeclared parameter was injected, or one has the wrong type.
    """
    new = {k: v for k, v in namespace.items()
           if k not in before and not k.startswith("_") and k not in ("In", "Out")}
    check_notebook_parameters(new, spec)
    missing = [k for k in spec if k not in new]
    if missing:
        raise ConfigError(f"parameters {missing} are not defined in the parameters cell")
    run_dir = Path(new["run_dir"])
    if not run_dir.is_absolute():
        run_dir = (Path.cwd() / run_dir).resolve()
    if not (run_dir / "run.json").is_file():
        from .pipeline import prepare_run

        profile = new.get("profile", "smoke")
        cfg = resolve_config(profile)
        log(f"{run_dir} has no run.json: preparing a {profile} run on the built-in phantom")
        cohort = ensure_phantom(cfg)
        prepare_run(cohort, cfg, run_dir)
    return Context(run_dir, RunPaths(run_dir), run_config(run_dir), read_run_json(run_dir), new)


def ensure_predictions(ctx: Context, sequences: tuple[str, ...] | None = None) -> None:
    """Make the per-sequence predictions a notebook needs when it is opened on its own.

    In a pipeline run they exist already and nothing happens. Otherwise the ROI crops and the
    training of each missing sequence run here, in this kernel, with the run's settings.
    """
    import pandas as pd

    from .cohort import load_cohort
    from .roi import SequenceCrops, extract_run
    from .training import train_sequence, write_predictions

    seqs = sequences or ctx.cfg.sequences
    missing = [s for s in seqs if not ctx.paths.predictions(s).is_file()]
    if not missing:
        return
    log(f"no predictions for {missing} in {ctx.run_dir.name}: running ROI extraction and training here")
    todo = tuple(s for s in missing if not ctx.paths.roi(s).is_file())
    if todo:
        extract_run(load_cohort(ctx.cohort_dir, ctx.cfg.sequences), ctx.cohort_dir, todo, ctx.cfg.roi,
                    ctx.paths, progress=log)
    splits = pd.read_csv(ctx.paths.splits)
    for s in missing:
        res = train_sequence(SequenceCrops.load(ctx.paths.roi(s)), splits, ctx.cfg.train,
                             ctx.paths.model_dir(s), seed=ctx.cfg.seed, progress=log)
        write_predictions(res, ctx.paths, s)


def ensure_ensemble(ctx: Context) -> None:
    """Make ``predictions/ensemble.csv`` (and what it needs) when a notebook runs on its own."""
    import pandas as pd

    from .ensemble import fuse

    if ctx.paths.predictions("ensemble").is_file():
        return
    ensure_predictions(ctx)
    log("no ensemble predictions: fusing the sequences here")
    fused, weights = fuse({s: pd.read_csv(ctx.paths.predictions(s)) for s in ctx.cfg.sequences},
                          threshold=ctx.cfg.stats.threshold)
    fused.to_csv(ctx.paths.predictions("ensemble"), index=False)
    weights.to_csv(ctx.paths.artifacts / "ensemble_weights.csv", index=False)
