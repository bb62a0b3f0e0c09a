"""Multiple comparisons: Holm's step-down and Benjamini-Hochberg's step-up adjusted p-values,
as R's ``p.adjust(p, "holm")`` and ``p.adjust(p, "BH")``.

Holm controls the family-wise error rate (the chance of any false positive in the family);
Benjamini-Hochberg the false discovery rate (the expected share of false positives among the
rejected). Which tests form a family is the caller's choice and is printed beside the adjusted
p-values in every table.

Example:
    >>> [round(float(v), 3) for v in holm([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]
    >>> [round(float(v), 3) for v in benjamini_hochberg([0.01, 0.04, 0.03])]
    [0.03, 0.04, 0.04]
"""
from __future__ import annotations

import numpy as np


def _check(p) -> np.ndarray:
    p = np.asarray(p, float)
    if p.ndim != 1:
        raise ValueError(f"p-values must be 1-dimensional, got shape {p.shape}")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must be finite and in [0, 1]")
    return p


def holm(p) -> np.ndarray:
    """Holm step-down adjusted p-values (R ``p.adjust(p, "holm")``)."""
    p = _check(p)
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def benjamini_hochberg(p) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (R ``p.adjust(p, "BH")``)."""
    p = _check(p)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")[::-1]  # largest first
    adj = np.empty(m)
    running = 1.0
    for k, i in enumerate(order):
        rank = m - k  # 1-based rank of p[i] among the sorted p-values
        running = min(running, p[i] * m / rank)
        adj[i] = min(1.0, running)
    return adj


def adjust_within_families(p, families, *, method: str = "holm") -> np.ndarray:
    """Adjust p-values within each family separately (one ``p.adjust`` per family).

    Args:
        p: raw p-values.
        families: the family label of each p-value (e.g. ``"primary"`` for the pre-specified
            comparisons, another label for each exploratory family); rows of one family need
            not be adjacent.
        method: ``holm`` or ``bh``.

    Returns:
        Adjusted p-values in the input order.

    Example:
        >>> [round(float(v), 3) for v in adjust_within_families([0.01, 0.2, 0.04, 0.03],
        ...                                              ["primary", "other", "primary", "other"])]
        [0.02, 0.2, 0.04, 0.06]
    """
    p = _check(p)
    fam = np.asarray(families, dtype=object)
    if fam.shape != p.shape:
        raise ValueError(f"{fam.size} family labels for {p.size} p-values")
    if method not in ("holm", "bh"):
        raise ValueError(f"method must be 'holm' or 'bh', got {method!r}")
    fn = holm if method == "holm" else benjamini_hochberg
    out = np.empty(p.size)
    for f in dict.fromkeys(fam.tolist()):
        sel = np.array([x == f for x in fam.tolist()])
        out[sel] = fn(p[sel])
    return out
