"""Fault injection for the Ray tests, loaded by the Python processes of a test cluster only.

The tests start their Ray cluster with this folder first on ``PYTHONPATH`` and
``ALNM_FAULTS=<file>``. Python imports ``sitecustomize`` at start-up, so every Ray worker wraps
``alnm_core.training.train_unit``: after each epoch it reads the fault file (JSON: ``unit``, e.g.
``"slice_vote_T2WI r0-f1"``, ``after_epoch``, and optionally ``once`` = a marker path) and, when
the unit matches, kills its own process with SIGKILL, as a crashed or preempted worker would.
With ``once`` it happens one time (the marker is created first); without, after every matching
epoch (a unit that fails for good). The package itself carries no test hook: ``train_unit``'s
public ``after_epoch`` callback is all this uses.
"""
import os

if os.environ.get("ALNM_FAULTS"):
    import functools
    import json
    import signal
    from pathlib import Path

    import alnm_core.training as _training

    _original = _training.train_unit

    @functools.wraps(_original)
    def _train_unit(crops, roles, cfg, files, **kw):
        unit = f"{files.checkpoint.parent.parent.name} {files.checkpoint.parent.name}"

        def hook(epoch: int) -> None:
            try:
                spec = json.loads(Path(os.environ["ALNM_FAULTS"]).read_text())
            except (OSError, ValueError):
                return
            if spec.get("unit") != unit or epoch < int(spec.get("after_epoch", 1)):
                return
            once = spec.get("once")
            if once:
                if epoch != int(spec["after_epoch"]) or Path(once).exists():
                    return
                Path(once).write_text(f"killed {unit} after epoch {epoch} (pid {os.getpid()})\n")
            os.kill(os.getpid(), signal.SIGKILL)

        return _original(crops, roles, cfg, files, after_epoch=hook, **kw)

    _training.train_unit = _train_unit
