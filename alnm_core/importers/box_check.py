"""Checking a collection's box convention against its images.

Public readers of the Duke boxes disagree on the convention (0- or 1-based, slices in file order
or along the patient axis). A tumour enhances: on the first post-contrast phase the box placed
by the right reading holds far more enhancement than the same box with its slices counted from
the other end, or with rows and columns swapped. :func:`check_boxes` measures this on a few
patients of an imported cohort (``alnm import duke --check-boxes N``).

Example:
    >>> df = check_boxes("cohorts/duke", n=20)          # doctest: +SKIP
    >>> (df.best == "as imported").mean()               # doctest: +SKIP
    0.95
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..boxes import convention_scores, is_box_file, read_boxes
from ..cohort import read_manifest, series_rule
from ..imaging import ImageReadError, read_image


def check_boxes(cohort_dir: str | Path, *, n: int = 20, sequence: str = "DCE",
                progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Mean relative enhancement (first post-contrast phase against the pre-contrast one) in each
    patient's box as imported and under the other readings of the convention.

    Reads ``n`` patients with box ROIs, evenly spread over the manifest (all if fewer).

    Returns:
        One row per patient: ``patient_id``, a column per reading (``as imported``, ``slices
        reversed``, ``rows/columns swapped``, ``both``; NaN where that box would not fit),
        ``best`` (the reading with the most enhancement) and ``error`` (an image that could not
        be read).
    """
    root = Path(cohort_dir)
    df = read_manifest(root)
    df = df[df[f"{sequence}_roi"].map(is_box_file)]
    if len(df) > n:
        df = df.iloc[np.linspace(0, len(df) - 1, n).round().astype(int)]
    rows = []
    for i, (_, r) in enumerate(df.iterrows(), 1):
        out = {"patient_id": r.patient_id}
        try:
            vol = read_image(root / r[f"{sequence}_image"], series=series_rule(r, sequence))
            if vol.array.ndim != 4:
                raise ImageReadError(f"{vol.path}: a single phase; nothing to compare")
            box = read_boxes(root / r[f"{sequence}_roi"])[0]
            out |= convention_scores(vol.array[0], vol.array[1], box)
        except ImageReadError as exc:
            out["error"] = str(exc)
        rows.append(out)
        if progress:
            progress(f"box check: {i}/{len(df)} patients read")
    res = pd.DataFrame(rows)
    readings = [c for c in ("as imported", "slices reversed", "rows/columns swapped", "both") if c in res]
    for c in readings + ["error"]:
        if c not in res:
            res[c] = np.nan if c != "error" else ""
    res["error"] = res["error"].fillna("")

    def best(row) -> str:
        vals = {c: row[c] for c in readings if pd.notna(row[c])}
        return max(vals, key=vals.get) if vals else ""

    res["best"] = res.apply(best, axis=1) if len(res) else pd.Series(dtype=str)
    return res[["patient_id", *readings, "best", "error"]]
