"""Argument checks shared by the statistics functions (clear ValueErrors, never a silent NaN)."""
from __future__ import annotations

import numpy as np


def check_labels(y_true, *, name: str = "y_true", min_per_class: int = 1) -> np.ndarray:
    """Return ``y_true`` as an int array of 0/1, or raise ValueError saying what is wrong."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {y.shape}")
    if y.size == 0:
        raise ValueError(f"{name} is empty")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if y.dtype.kind == "b":
        y = y.astype(int)
    bad = set(np.unique(y).tolist()) - {0, 1}
    if bad:
        raise ValueError(f"{name} must hold only 0 and 1 (1 = positive); found {sorted(bad)[:5]}")
    y = y.astype(int)
    for c in (0, 1):
        k = int((y == c).sum())
        if k < min_per_class:
            what = "positive (1)" if c else "negative (0)"
            if k == 0:
                raise ValueError(f"{name} has no {what} case: AUC and DeLong need both classes")
            raise ValueError(f"{name} has {k} {what} case(s); at least {min_per_class} are needed")
    return y


def check_scores(score, n: int, *, name: str = "score") -> np.ndarray:
    """Return ``score`` as a finite float array of length ``n``, or raise ValueError."""
    s = np.asarray(score, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {s.shape}")
    if s.shape[0] != n:
        raise ValueError(f"{name} has {s.shape[0]} values but y_true has {n}: lengths differ")
    if not np.all(np.isfinite(s)):
        k = int((~np.isfinite(s)).sum())
        raise ValueError(f"{name} contains {k} NaN or infinite value(s)")
    return s


def check_level(level: float) -> float:
    """Confidence level in (0, 1)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(level)


def check_alternative(alternative: str) -> str:
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    return alternative
