"""What ``tune.space`` may search: the paper's grid, the default ranges, and the check of a
user's mapping (pure: no Optuna and no other alnm module here; :mod:`alnm_core.tune` turns a space into
trials, :mod:`alnm_core.config` checks ``tune.space`` with it).

Example:
    >>> tune_space("paper")["batch_size"]
    (16, 32, 64)
"""
from __future__ import annotations


class SpaceError(ValueError):
    """A ``tune.space`` that cannot be searched (the configuration reports it as a ConfigError)."""


#: how attention MIL pools a patient's slice embeddings (``mil.pooling``)
MIL_POOLINGS = ("gated_attention", "attention", "mean", "max")
#: the hyperparameters ``tune.space`` may search
TUNE_PARAMS = ("lr", "weight_decay", "batch_size", "epochs", "pooling")
#: the paper's grid (Zhang et al. 2022: learning rate x batch size, chosen on validation data)
PAPER_GRID = {"lr": (1e-3, 1e-4, 1e-5, 1e-6), "batch_size": (16, 32, 64)}
#: ``tune.space=ranges``: what the search draws from (log-uniform ``lr`` and ``weight_decay``,
#: batch size and pooling as choices; ``pooling`` applies to attention MIL only)
DEFAULT_RANGES = {"lr": (1e-6, 1e-2), "weight_decay": (1e-7, 1e-3), "batch_size": (16, 32, 64),
                  "pooling": MIL_POOLINGS}


def tune_space(space: str | dict) -> dict[str, tuple]:
    """``tune.space`` as a checked mapping ``param -> values`` (numbers as numbers).

    ``paper`` is :data:`PAPER_GRID`, ``ranges`` :data:`DEFAULT_RANGES`; a mapping is checked
    key by key (see :class:`~alnm_core.config.TuneConfig`).

    Raises:
        SpaceError: naming the key and what it must be.

    Example:
        >>> tune_space({"lr": ["1e-5", 1e-3], "batch_size": [16, 32]})
        {'lr': (1e-05, 0.001), 'batch_size': (16, 32)}
    """
    if isinstance(space, str):
        if space == "paper":
            return dict(PAPER_GRID)
        if space == "ranges":
            return dict(DEFAULT_RANGES)
        raise SpaceError(f"tune.space: {space!r} is not 'paper', 'ranges' or a mapping")
    if not space:
        raise SpaceError("tune.space: an empty mapping searches nothing")
    out: dict[str, tuple] = {}
    for key, values in space.items():
        where = f"tune.space.{key}"
        if key not in TUNE_PARAMS:
            raise SpaceError(f"{where}: unknown parameter; choose from {list(TUNE_PARAMS)}")
        values = tuple(values)
        if key == "pooling":
            bad = [v for v in values if v not in MIL_POOLINGS]
            if not values or bad or len(set(values)) != len(values):
                raise SpaceError(f"{where}: {list(values)}; choices without repeats from "
                                  f"{list(MIL_POOLINGS)}")
            out[key] = values
            continue
        try:
            nums = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            raise SpaceError(f"{where}: {list(values)} are not all numbers") from None
        if key in ("lr", "weight_decay"):
            if len(nums) != 2 or not 0 < nums[0] < nums[1]:
                raise SpaceError(f"{where}: [low, high] with 0 < low < high (log-uniform), "
                                  f"got {list(values)}")
            out[key] = nums
        elif key == "epochs":
            if (len(nums) != 2 or not all(v.is_integer() for v in nums)
                    or not 1 <= nums[0] <= nums[1]):
                raise SpaceError(f"{where}: [low, high] whole numbers with 1 <= low <= high, "
                                  f"got {list(values)}")
            out[key] = tuple(int(v) for v in nums)
        else:  # batch_size
            if (not nums or not all(v.is_integer() and v >= 1 for v in nums)
                    or len(set(nums)) != len(nums)):
                raise SpaceError(f"{where}: choices without repeats, whole numbers >= 1, "
                                  f"got {list(values)}")
            out[key] = tuple(int(v) for v in nums)
    return out
