"""The points nomogram of a logistic model, with every axis's tick labels chosen to fit.

A predictor with a small coefficient has a short axis (a few points of 100): its tick labels are
thinned to what fits the axis's drawn width, measured with the renderer, and an axis too short
for two centred labels gets its two end values set outward (left end right-aligned, right end
left-aligned), so labels never run into each other.

Example:
    >>> import pandas as pd
    >>> pts = pd.DataFrame({"term": ["age"], "label": ["age (years)"], "x_low": [30.0], "x_high": [80.0],
    ...                     "points_low": [0.0], "points_high": [100.0], "points_per_unit": [2.0]})
    >>> pts.attrs.update(lp_at_zero=-2.0, points_per_lp=25.0)
    >>> fig = nomogram_figure(pts)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .legibility import agg_renderer, text_width_px

FONT = 7.5
#: pixels between two neighbouring tick labels
GAP_PX = 6.0
#: where the probability axis may put labels, most wanted first
PROB_PRIORITY = (0.5, 0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.05, 0.95, 0.4, 0.6, 0.02, 0.98, 0.01, 0.99)


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"


def _fits(xs_px: Sequence[float], labels: Sequence[str], renderer) -> bool:
    order = np.argsort(xs_px)
    prev_right = -np.inf
    for i in order:
        w = text_width_px(labels[i], FONT, renderer)
        if xs_px[i] - w / 2 < prev_right + GAP_PX:
            return False
        prev_right = xs_px[i] + w / 2
    return True


def axis_ticks(lo: float, hi: float, *, binary: bool, to_px, renderer) -> list[tuple[float, str, str]]:
    """Tick values, labels and alignments for one predictor axis over ``[lo, hi]``.

    Args:
        lo, hi: the development range of the predictor.
        binary: a 0/1 predictor (labels ``no`` / ``yes``).
        to_px: value -> horizontal pixel position of its tick.
        renderer: the figure's renderer, to measure the labels.

    Returns:
        ``(value, label, ha)`` triples, as many as fit without overlapping.
    """
    from matplotlib.ticker import MaxNLocator

    if binary:
        values, labels = [0.0, 1.0], ["no", "yes"]
    else:
        for nbins in (8, 6, 5, 4, 3, 2, 1):
            vals = MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
            span = hi - lo
            vals = [v for v in vals if lo - 1e-9 * span <= v <= hi + 1e-9 * span]
            if len(vals) >= 2 and _fits([to_px(v) for v in vals], [_fmt(v) for v in vals], renderer):
                return [(v, _fmt(v), "center") for v in vals]
        values, labels = [lo, hi], [_fmt(lo), _fmt(hi)]
    px = [to_px(v) for v in values]
    if _fits(px, labels, renderer):
        return [(v, lab, "center") for v, lab in zip(values, labels)]
    left = int(np.argmin(px))
    return [(v, lab, "right" if i == left else "left") for i, (v, lab) in enumerate(zip(values, labels))]


def nomogram_figure(points: pd.DataFrame, *, width_in: float = 7.0) -> Figure:
    """A points nomogram (logistic model): one axis per predictor over its development range,
    a total-points axis and the predicted probability under it.

    Args:
        points: :func:`alnm_core.radiomics_models.nomogram_points` (with its ``attrs``).
        width_in: figure width (an A4 text column by default).
    """
    n = len(points)
    rows = ["Points"] + list(points.label) + ["Total points", "P(ALNM)"]
    fig = Figure(figsize=(width_in, 0.5 * len(rows) + 0.3), layout="constrained")
    ax = fig.subplots()
    y = {name: -i for i, name in enumerate(rows)}
    ax.set_yticks(list(y.values()), rows, fontsize=8)
    ax.set_ylim(-len(rows) + 0.5, 0.75)
    ax.set_xlim(-6, 106)
    ax.set_xticks([])
    ax.grid(False)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    fig.draw_without_rendering()  # the layout fixes the axes' width: measure against it
    renderer = agg_renderer(fig)
    x0, x1 = ax.get_xlim()
    px_per_pt = ax.bbox.width / (x1 - x0)

    def axis_line(yv, ticks):
        at = [t for t, _, _ in ticks]
        ax.plot([min(at), max(at)], [yv, yv], color="black", lw=0.8)
        for t, lab, ha in ticks:
            ax.plot([t, t], [yv, yv + 0.12], color="black", lw=0.8)
            ax.text(t, yv + 0.18, lab, ha=ha, va="bottom", fontsize=FONT)

    axis_line(y["Points"], [(v, f"{v:.0f}", "center") for v in np.linspace(0, 100, 11)])
    for _, r in points.iterrows():
        lo, hi = float(r.x_low), float(r.x_high)
        binary = set(np.round([lo, hi], 6)) <= {0.0, 1.0}
        if binary:
            lo, hi = 0.0, 1.0
        to_pt = lambda v, r=r, lo=lo: r.points_low + (v - lo) * r.points_per_unit  # noqa: E731
        ticks = axis_ticks(lo, hi, binary=binary, to_px=lambda v: to_pt(v) * px_per_pt, renderer=renderer)
        ax.plot([to_pt(lo), to_pt(hi)], [y[r.label]] * 2, color="black", lw=0.8)  # the whole range
        axis_line(y[r.label], [(to_pt(v), lab, ha) for v, lab, ha in ticks])
    total_max = float(np.maximum(points.points_low, points.points_high).sum())
    scale = 100.0 / total_max if total_max > 0 else 1.0
    tt = axis_ticks(0.0, total_max, binary=False, to_px=lambda v: v * scale * px_per_pt, renderer=renderer)
    ax.plot([0, total_max * scale], [y["Total points"]] * 2, color="black", lw=0.8)
    axis_line(y["Total points"], [(v * scale, lab, ha) for v, lab, ha in tt])
    lp0, ppl = points.attrs["lp_at_zero"], points.attrs["points_per_lp"]
    lp_lo, lp_hi = lp0, lp0 + total_max / ppl
    chosen: list[tuple[float, str]] = []
    for p in PROB_PRIORITY:
        lp = np.log(p / (1 - p))
        if not lp_lo <= lp <= lp_hi:
            continue
        at = (lp - lp0) * ppl * scale
        trial = chosen + [(at, f"{p:g}")]
        if _fits([a * px_per_pt for a, _ in trial], [lab for _, lab in trial], renderer):
            chosen = trial
    if chosen:
        axis_line(y["P(ALNM)"], [(a, lab, "center") for a, lab in sorted(chosen)])
    else:
        ax.text(50, y["P(ALNM)"], "(every total gives a probability outside 0.01-0.99)", ha="center",
                va="center", fontsize=FONT)
    return fig
