"""The box QC gallery: each box drawn on its DCE images, to check the box convention by eye.

For a cohort whose ROIs are bounding boxes (``alnm import duke``), a reader checks that the box
sits on the enhancing tumour. Each panel pair shows, on the box's central slice, the phase the
crops use (peak enhancement in the box) and the subtraction image (that phase minus the
pre-contrast one), where the tumour is the brightest structure; the box (or a mask's outline) is
drawn on both. The title gives the mean relative enhancement in the box as imported and, for
comparison, with its slices counted from the other end: a box placed by the wrong convention
lands on fat or air and enhances little. Returns a Figure (no pyplot), as :mod:`plots` does.

Example:
    >>> views = box_views(cohort, cohort_dir, cfg.roi, n=12)    # doctest: +SKIP
    >>> fig = box_gallery(views)                                # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..boxes import convention_scores, is_box_file, read_boxes
from ..cohort import series_rule
from ..config import RoiConfig
from ..imaging import ImageReadError, read_image, read_mask
from ..roi import bbox_2d, largest_slice, relative_enhancement, select_dce_phase

BOX_COLOR = "#f1c40f"


@dataclass(frozen=True)
class BoxView:
    """What one gallery panel pair shows.

    Attributes:
        patient_id: the patient.
        peak: the selected phase on the ROI's central slice.
        subtraction: that phase minus the pre-contrast phase, same slice.
        outline: the ROI on that slice (a box, or a mask).
        is_box: whether the ROI is a box file.
        title: patient, phase, slice.
        aspect: row / column pixel spacing.
        scores: mean relative enhancement in the box per reading of the convention
            (:func:`alnm_core.boxes.convention_scores`; empty for masks).
    """

    patient_id: str
    peak: np.ndarray
    subtraction: np.ndarray
    outline: np.ndarray
    is_box: bool
    title: str
    aspect: float
    scores: dict = field(default_factory=dict)


def box_view(row: pd.Series, cohort_dir: str | Path, cfg: RoiConfig, *, sequence: str = "DCE") -> BoxView:
    """The gallery view of one patient (reads its DCE and ROI).

    Raises:
        ImageReadError: the series or ROI cannot be read, or the series has a single phase.
    """
    root = Path(cohort_dir)
    roi_path = root / row[f"{sequence}_roi"]
    vol = read_image(root / row[f"{sequence}_image"], series=series_rule(row, sequence, cfg.series_description))
    if vol.array.ndim != 4:
        raise ImageReadError(f"{vol.path}: a single phase; the box gallery needs the DCE phases")
    mask = read_mask(roi_path, like=vol)
    k = select_dce_phase(relative_enhancement(vol, mask), cfg.dce_phase)
    z = largest_slice(mask.sum(axis=(1, 2)))
    pre, peak = vol.array[0], vol.array[k]
    is_box = is_box_file(roi_path)
    scores = convention_scores(pre, peak, read_boxes(roi_path)[0]) if is_box else {}
    _, sr, sc = vol.spacing
    return BoxView(str(row["patient_id"]), peak[z], peak[z] - pre[z], mask[z], is_box,
                   f"{row['patient_id']} · phase {k} · slice {z + 1}/{mask.shape[0]}", sr / sc, scores)


def box_views(cohort: pd.DataFrame, cohort_dir: str | Path, cfg: RoiConfig, *, sequence: str = "DCE",
              n: int = 12, progress: Callable[[int, int], None] | None = None) -> tuple[list[BoxView], list[dict]]:
    """Views of ``n`` patients spread evenly over the cohort (all if fewer).

    Returns:
        ``(views, skipped)``: ``skipped`` lists ``patient_id, reason`` of those that could not
        be read (shown under the gallery, never dropped silently).
    """
    idx = np.linspace(0, len(cohort) - 1, min(n, len(cohort))).round().astype(int) if len(cohort) else []
    views, skipped = [], []
    for i, j in enumerate(idx, 1):
        row = cohort.iloc[int(j)]
        try:
            views.append(box_view(row, cohort_dir, cfg, sequence=sequence))
        except ImageReadError as exc:
            skipped.append({"patient_id": row["patient_id"], "reason": str(exc)})
        if progress:
            progress(i, len(idx))
    return views, skipped


def _draw(ax, img: np.ndarray, outline: np.ndarray, is_box: bool, aspect: float, *, cmap: str) -> None:
    lo, hi = np.percentile(img, [1, 99.5]) if img.size else (0, 1)
    ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1, aspect=aspect, interpolation="nearest")
    if outline.any():
        if is_box:
            from matplotlib.patches import Rectangle

            r0, r1, c0, c1 = bbox_2d(outline)
            ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, ec=BOX_COLOR, lw=1.2))
        else:
            ax.contour(outline.astype(float), levels=[0.5], colors=[BOX_COLOR], linewidths=1.0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def box_gallery(views: list[BoxView], *, ncols: int = 3) -> Figure:
    """Each view as a pair of panels (peak phase, subtraction) with the ROI drawn on both.

    The caption of a box reports the mean relative enhancement inside it as imported and with
    its slices reversed (``enh``): the imported box should enhance clearly more.
    """
    n = max(1, len(views))
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(3.2 * 2 * min(ncols, n), 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, 2 * min(ncols, n), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i, v in enumerate(views):
        a, b = axes[i // ncols, 2 * (i % ncols)], axes[i // ncols, 2 * (i % ncols) + 1]
        a.set_axis_on()
        b.set_axis_on()
        _draw(a, v.peak, v.outline, v.is_box, v.aspect, cmap="gray")
        _draw(b, v.subtraction, v.outline, v.is_box, v.aspect, cmap="magma")
        a.set_title(v.title, fontsize=8, loc="left")
        if v.scores:
            rev = v.scores.get("slices reversed", float("nan"))
            b.set_title(f"enh. {v.scores['as imported']:.2f} (reversed: {rev:.2f})", fontsize=8, loc="left")
        else:
            b.set_title("subtraction (mask)", fontsize=8, loc="left")
    if not views:
        axes[0, 0].text(0.5, 0.5, "no patient could be shown", ha="center", va="center")
    return fig
