"""Executors run the grid of training units.

An executor is given the unit of work (a function of one unit, in practice
:func:`alnm_core.run.steps.train_unit` bound to a run's paths and configuration) and the units
of the grid. ``local`` (the default) runs them one after the other in this process. Every
executor returns the results in the grid's order, whatever order they finish in, and never
writes an artifact itself: the unit of work does, inside the unit's own folder.

Example:
    >>> results = LocalExecutor().run(lambda u: u * 2, [1, 2, 3])
    >>> results
    [2, 4, 6]
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ..config import StudyConfig


class LocalExecutor:
    """Run the units in this process, in order."""

    name = "local"

    def run(self, work: Callable[[Any], Any], units: Sequence, *,
            progress: Callable[[str], None] | None = None) -> list:
        say = progress or (lambda s: None)
        out = []
        for i, unit in enumerate(units, 1):
            res = work(unit)
            if len(units) > 1 and not getattr(res, "skipped", False):
                say(f"grid: {i}/{len(units)} units done ({unit} trained)")
            out.append(res)
        return out


def for_config(cfg: StudyConfig) -> LocalExecutor:
    """The executor the configuration asks for."""
    return LocalExecutor()
