"""Grad-CAM panels: each case's crop as the network sees it beside the same crop with its Grad-CAM
overlaid, one colour bar saying what the colours mean.

Example:
    >>> import numpy as np
    >>> crops, heat = np.zeros((2, 32, 32)), np.ones((2, 32, 32))
    >>> fig = heatmap_gallery(crops, heat, ["P1 y=1 p=0.80", "P2 y=0 p=0.10"])
    >>> len(fig.get_axes())  # two panels per case and the colour bar
    5
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from .legibility import wrap_to_width

#: what the colour scale of :func:`alnm_core.gradcam.gradcam` means (each map scaled to its maximum)
COLORBAR_LABEL = ("Grad-CAM: where the evidence for ALNM lies in the crop "
                  "(scaled per crop: 0 = none, 1 = the crop's strongest)")


def heatmap_gallery(crops: np.ndarray, heatmaps: np.ndarray, titles: Sequence[str], *, ncols: int = 6,
                    raw: bool = True, cmap: str = "jet", alpha: float = 0.4, panel_in: float = 1.5,
                    max_width_in: float = 7.0, colorbar_label: str = COLORBAR_LABEL) -> Figure:
    """Crops with Grad-CAM heatmaps overlaid, each beside its plain crop, with a colour bar.

    Args:
        crops: ``(n, H, W)`` crops in [0, 1] (the network's input).
        heatmaps: ``(n, H, W)`` heatmaps in [0, 1] (:func:`alnm_core.gradcam.gradcam`).
        titles: one per case (patient, truth, probability).
        ncols: cases per row at most; fewer when the row would be wider than ``max_width_in``.
        raw: show the plain crop beside the overlay (``False``: the overlay only).
        cmap, alpha: the heatmap's colour map and opacity over the crop.
        panel_in: width of one image panel in inches.
        max_width_in: widest figure (an A4 text column).
        colorbar_label: the colour bar's caption.

    Raises:
        ValueError: crops, heatmaps and titles differ in number or shape.
    """
    crops, heatmaps = np.asarray(crops, dtype=np.float32), np.asarray(heatmaps, dtype=np.float32)
    n = len(crops)
    if n == 0 or len(heatmaps) != n or len(titles) != n or crops.shape != heatmaps.shape:
        raise ValueError(f"heatmap_gallery: {n} crops {crops.shape[1:]}, {len(heatmaps)} heatmaps "
                         f"{heatmaps.shape[1:]} and {len(titles)} titles must match")
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    per_case = 2 if raw else 1
    case_in = panel_in * per_case + 0.15
    per_row = max(1, min(ncols, n, int(max_width_in // case_in)))
    nrows = int(np.ceil(n / per_row))
    width = case_in * per_row
    title_in = 0.5
    fig = Figure(figsize=(width, nrows * (panel_in + title_in) + 0.75), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[nrows * (panel_in + title_in), 0.75])
    cells = top.subfigures(nrows, per_row, squeeze=False)
    for k, sf in enumerate(cells.ravel()):
        if k >= n:
            continue
        axes = sf.subplots(1, per_case, squeeze=False)[0]
        if raw:
            axes[0].imshow(crops[k], cmap="gray", vmin=0, vmax=1)
            axes[0].set_title("crop", fontsize=7)
        axes[-1].imshow(crops[k], cmap="gray", vmin=0, vmax=1)
        axes[-1].imshow(heatmaps[k], cmap=cmap, alpha=alpha, vmin=0, vmax=1)
        axes[-1].set_title("Grad-CAM overlay", fontsize=7)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        sf.suptitle(titles[k], fontsize=8)
    cax = bottom.subplots(1, 3, width_ratios=[0.15, 0.7, 0.15])
    for ax in (cax[0], cax[2]):
        ax.remove()
    bar = bottom.colorbar(ScalarMappable(Normalize(0, 1), cmap=cmap), cax=cax[1], orientation="horizontal",
                          ticks=[0, 0.25, 0.5, 0.75, 1])
    bar.ax.tick_params(labelsize=7)
    bar.set_label(wrap_to_width(colorbar_label, 0.7 * width, 7), fontsize=7)
    return fig


def attention_gallery(rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], *, max_slices: int = 8,
                      panel_in: float = 0.85, max_width_in: float = 7.0) -> Figure:
    """Attention MIL: for each patient, its slices in order with the weight the model gave each
    (the bar under a slice; the heaviest slice framed): the slices a reader would look at first.

    Args:
        rows: per patient ``(title, crops (n, H, W), slice_index (n,), weight (n,))``.
        max_slices: slices shown per patient (the heaviest ones, in slice order).
    """
    n_cols = max(1, min(max_slices, max((len(r[1]) for r in rows), default=1)))
    n_cols = min(n_cols, int(max_width_in // panel_in))
    fig = Figure(figsize=(min(max_width_in, panel_in * n_cols + 0.2), (panel_in + 0.55) * max(1, len(rows))),
                 layout="constrained")
    grid = fig.add_gridspec(max(1, len(rows)), n_cols)
    for i, (title, crops, sidx, w) in enumerate(rows):
        keep = np.sort(np.argsort(-np.asarray(w))[:n_cols])
        top = int(np.argmax(w))
        for j in range(n_cols):
            ax = fig.add_subplot(grid[i, j])
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(keep):
                ax.axis("off")
                continue
            k = keep[j]
            ax.imshow(crops[k], cmap="gray", vmin=0, vmax=1)
            ax.set_xlabel(f"slice {int(sidx[k])}\nw = {w[k]:.2f}", fontsize=7)
            for side in ax.spines.values():
                side.set_color("#c0392b" if k == top else "#bbbbbb")
                side.set_linewidth(2.0 if k == top else 0.6)
            if j == 0:
                ax.set_title(wrap_to_width(title, panel_in * n_cols, fontsize=8), fontsize=8, loc="left")
    return fig
