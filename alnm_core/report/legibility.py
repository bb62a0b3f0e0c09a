"""Can a reader read this figure? A check of what matplotlib actually draws, and a legend placer.

:func:`check_figure` renders a figure with the Agg renderer, records every text, line and patch
as it is drawn (in drawing order, with its extent in pixels), and reports:

* ``text overlap``: two drawn texts (tick labels, titles, axis labels, annotations, legend
  entries, figure texts) whose boxes intersect (rotated texts as rotated rectangles);
* ``text outside figure``: a text cut by the figure's edge;
* ``line through text``: a data line or grid line crossing a text inside an axes, unless an opaque
  patch drawn after the line hides it there (grid lines under a bar do not strike the bar's label);
* ``legend covers data``: a legend inside its axes over data (line samples, markers, bars, boxes),
  naming a free corner when one exists;
* ``figure too wide`` / ``font too small``: wider than an A4 text column, or a font under 6 pt.

:func:`place_legend` puts a legend in the first corner that covers no data (measured the same
way), else outside the axes. Both work on any :class:`~matplotlib.figure.Figure`, so the figures
a notebook produces can be checked too.

Example:
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(figsize=(4, 3))
    >>> ax = fig.subplots()
    >>> _ = ax.plot([0, 1], [0, 1], label="rising")
    >>> _ = place_legend(ax)
    >>> check_figure(fig)
    []
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import Collection, LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.transforms import Bbox

#: an A4 page's text column (210 mm less 2 x ~20 mm margins) is about 6.7 in; a little slack
MAX_WIDTH_IN = 7.2
MIN_FONT_PT = 6.0
#: the corners :func:`place_legend` tries, in this order unless told otherwise
CORNERS = ("lower right", "upper left", "upper right", "lower left")
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Problem:
    """One legibility problem: its kind (see the module docstring) and what, where."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass
class Drawn:
    """What one render drew, in order: texts (with their pixel boxes), lines and patches."""

    texts: list[tuple[int, Text, Bbox]] = field(default_factory=list)
    lines: list[tuple[int, Line2D]] = field(default_factory=list)
    patches: list[tuple[int, Patch]] = field(default_factory=list)
    renderer: object = None


def agg_renderer(fig: Figure):
    """The figure's Agg renderer (an Agg canvas is attached to a figure built without pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    return canvas.get_renderer()


@contextmanager
def _recording(drawn: Drawn) -> Iterator[None]:
    orig = {Text: Text.draw, Line2D: Line2D.draw, Patch: Patch.draw}
    counter = iter(range(10**9))

    def text_draw(self, renderer):
        orig[Text](self, renderer)
        if self.get_visible() and self.get_text().strip() and np.all(np.isfinite(self.get_unitless_position())):
            drawn.texts.append((next(counter), self, _text_box(self, renderer)))

    def line_draw(self, renderer):
        orig[Line2D](self, renderer)
        if self.get_visible():
            drawn.lines.append((next(counter), self))

    def patch_draw(self, renderer):
        orig[Patch](self, renderer)
        if self.get_visible():
            drawn.patches.append((next(counter), self))

    with _LOCK:
        Text.draw, Line2D.draw, Patch.draw = text_draw, line_draw, patch_draw
        try:
            yield
        finally:
            Text.draw, Line2D.draw, Patch.draw = orig[Text], orig[Line2D], orig[Patch]


def render(fig: Figure) -> Drawn:
    """Draw ``fig`` once with Agg and return what was drawn (texts with pixel boxes, lines, patches)."""
    renderer = agg_renderer(fig)
    drawn = Drawn(renderer=renderer)
    with _recording(drawn):
        fig.canvas.draw()
    return drawn


def _text_box(t: Text, renderer) -> Bbox:
    box = t.get_window_extent(renderer)
    patch = t.get_bbox_patch()
    if patch is not None and patch.get_visible():
        box = Bbox.union([box, patch.get_window_extent(renderer)])
    return box


def _text_polygon(t: Text, box: Bbox, renderer) -> np.ndarray:
    """Corners of the text's (possibly rotated) rectangle in pixels."""
    angle = t.get_rotation() % 180
    c = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
    if angle in (0, 90) or t.get_bbox_patch() is not None:
        return np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
    rot = t.get_rotation()
    t.set_rotation(0)
    try:
        flat = t.get_window_extent(renderer)
    finally:
        t.set_rotation(rot)
    w, h = flat.width / 2, flat.height / 2
    a = np.deg2rad(rot)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
    return corners @ r.T + c


def _polygons_intersect(p: np.ndarray, q: np.ndarray, tol: float) -> bool:
    """Separating-axis test for two convex quadrilaterals, overlapping by more than ``tol`` px."""
    for poly in (p, q):
        for i in range(len(poly)):
            edge = poly[(i + 1) % len(poly)] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            norm = np.hypot(*axis)
            if norm == 0:
                continue
            axis = axis / norm
            a, b = p @ axis, q @ axis
            if a.max() - tol <= b.min() or b.max() - tol <= a.min():
                return False
    return True


def _describe(t: Text) -> str:
    s = " ".join(t.get_text().split())
    s = s if len(s) <= 40 else s[:37] + "..."
    where = ""
    ax = t.axes
    if ax is not None and ax.get_title():
        where = f" (axes '{ax.get_title()[:30]}')"
    return f"'{s}'{where}"


# ---------------------------------------------------------------------------------- data samples

def _densify(xy: np.ndarray, step: float = 3.0) -> np.ndarray:
    """Points every ``step`` pixels (at most) along a polyline in display coordinates."""
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    if len(xy) < 2:
        return xy
    seg = np.diff(xy, axis=0)
    n = np.maximum(1, np.ceil(np.hypot(seg[:, 0], seg[:, 1]) / step).astype(int))
    owner = np.repeat(np.arange(len(seg)), n)
    frac = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + 1) / np.repeat(n, n)
    return np.concatenate([xy[:1], xy[owner] + seg[owner] * frac[:, None]])


def _line_pixels(line: Line2D) -> np.ndarray:
    from matplotlib.cbook import STEP_LOOKUP_MAP

    x, y = (np.atleast_1d(np.asarray(v, float)) for v in line.get_data(orig=False))
    if len(x) == 0 or len(x) != len(y):
        return np.empty((0, 2))
    if line.get_drawstyle() in STEP_LOOKUP_MAP and line.get_drawstyle() != "default":
        x, y = STEP_LOOKUP_MAP[line.get_drawstyle()](x, y)
    xy = line.get_transform().transform(np.column_stack([x, y]))
    connected = line.get_linestyle() not in ("None", "none", "", " ") and line.get_linewidth() > 0
    pts = _densify(xy) if connected else xy[np.all(np.isfinite(xy), axis=1)]
    return _clip(pts, line)


def _clip(pts: np.ndarray, artist) -> np.ndarray:
    box = artist.get_clip_box() if artist.get_clip_on() else None
    if box is None or not len(pts):
        return pts
    keep = ((pts[:, 0] >= box.x0 - 0.5) & (pts[:, 0] <= box.x1 + 0.5)
            & (pts[:, 1] >= box.y0 - 0.5) & (pts[:, 1] <= box.y1 + 0.5))
    return pts[keep]


def _patch_pixels(patch: Patch, step: float = 4.0) -> np.ndarray:
    path = patch.get_transform().transform_path(patch.get_path())
    outline = [_densify(poly) for poly in path.to_polygons(closed_only=False) if len(poly)]
    pts = np.concatenate(outline) if outline else np.empty((0, 2))
    if patch.get_fill() and patch.get_facecolor()[3] > 0 and len(pts):
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        gx, gy = np.meshgrid(np.arange(x0, x1 + step, step), np.arange(y0, y1 + step, step))
        grid = np.column_stack([gx.ravel(), gy.ravel()])
        if len(grid) > 20000:
            grid = grid[:: len(grid) // 20000 + 1]
        inside = path.contains_points(grid)
        pts = np.concatenate([pts, grid[inside]])
    return _clip(pts, patch)


def _collection_pixels(c: Collection) -> np.ndarray:
    parts = []
    if isinstance(c, LineCollection):
        tr = c.get_transform()
        parts += [_densify(tr.transform(np.asarray(seg))) for seg in c.get_segments() if len(seg)]
    elif isinstance(c, PathCollection) or len(c.get_offsets()):
        offs = np.asarray(c.get_offsets(), float)
        if len(offs):
            parts.append(c.get_offset_transform().transform(offs))
    else:
        tr = c.get_transform()
        for p in c.get_paths():
            parts += [_densify(poly) for poly in tr.transform_path(p).to_polygons(closed_only=False)]
    pts = np.concatenate(parts) if parts else np.empty((0, 2))
    return _clip(pts[np.all(np.isfinite(pts), axis=1)], c)


def data_pixels(ax: Axes) -> np.ndarray:
    """Display coordinates of an axes' data: samples along its lines, markers, collections
    (scatter points, error bars, filled areas) and patches (bars, boxes), inside the axes."""
    parts = [_line_pixels(ln) for ln in ax.lines if ln.get_visible()]
    parts += [_collection_pixels(c) for c in ax.collections if c.get_visible()]
    parts += [_patch_pixels(p) for p in ax.patches if p.get_visible()]
    parts = [p for p in parts if len(p)]
    return np.concatenate(parts) if parts else np.empty((0, 2))


def _count_inside(pts: np.ndarray, box: Bbox, pad: float = 1.0) -> int:
    if not len(pts):
        return 0
    return int(((pts[:, 0] > box.x0 - pad) & (pts[:, 0] < box.x1 + pad)
                & (pts[:, 1] > box.y0 - pad) & (pts[:, 1] < box.y1 + pad)).sum())


def _corner_box(ax: Axes, legend: Legend, loc: str, renderer) -> Bbox:
    box = legend.get_window_extent(renderer)
    a = ax.get_window_extent(renderer)
    pad = legend.borderaxespad * renderer.points_to_pixels(legend._fontsize)
    w, h = box.width, box.height
    x0 = a.x0 + pad if "left" in loc else a.x1 - pad - w
    y0 = a.y0 + pad if "lower" in loc else a.y1 - pad - h
    return Bbox.from_bounds(x0, y0, w, h)


def _inside_axes(ax: Axes, box: Bbox, renderer) -> bool:
    a = ax.get_window_extent(renderer)
    return box.x0 < a.x1 - 1 and box.x1 > a.x0 + 1 and box.y0 < a.y1 - 1 and box.y1 > a.y0 + 1


def free_corners(ax: Axes, legend: Legend, renderer) -> list[str]:
    """The corners of ``ax`` where ``legend`` (at its current size) would cover no data."""
    pts = data_pixels(ax)
    return [c for c in CORNERS if _count_inside(pts, _corner_box(ax, legend, c, renderer)) == 0]


# ----------------------------------------------------------------------------------- the check

def check_figure(fig: Figure, *, max_width_in: float = MAX_WIDTH_IN, min_font_pt: float = MIN_FONT_PT,
                 legend_must_be_free: bool = True, tol_px: float = 0.5) -> list[Problem]:
    """Render ``fig`` and list what a reader would stumble on (see the module docstring).

    Args:
        fig: any matplotlib figure.
        max_width_in: widest figure accepted (an A4 text column); ``None`` to skip.
        min_font_pt: smallest font accepted.
        legend_must_be_free: flag a legend inside its axes that covers data even when no corner
            is free (it should then sit outside the axes); ``False`` flags it only when a free
            corner exists.
        tol_px: overlaps up to this many pixels are tolerated.

    Returns:
        The problems, empty when the figure reads well.
    """
    drawn = render(fig)
    r = drawn.renderer
    problems: list[Problem] = []
    if max_width_in is not None and fig.get_figwidth() > max_width_in + 1e-9:
        problems.append(Problem("figure too wide", f"{fig.get_figwidth():.2f} in > {max_width_in} in "
                                                   "(an A4 text column)"))
    texts = drawn.texts
    for _, t, _ in texts:
        if t.get_fontsize() < min_font_pt - 1e-9:
            problems.append(Problem("font too small", f"{_describe(t)} at {t.get_fontsize():.1f} pt"))
    fbox = fig.bbox
    for _, t, b in texts:
        if b.x0 < fbox.x0 - 1 or b.y0 < fbox.y0 - 1 or b.x1 > fbox.x1 + 1 or b.y1 > fbox.y1 + 1:
            problems.append(Problem("text outside figure", f"{_describe(t)} is cut by the figure's edge"))
    polys = [_text_polygon(t, b, r) for _, t, b in texts]
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            bi, bj = texts[i][2], texts[j][2]
            if bi.x1 <= bj.x0 or bj.x1 <= bi.x0 or bi.y1 <= bj.y0 or bj.y1 <= bi.y0:
                continue
            if _polygons_intersect(polys[i], polys[j], tol_px):
                problems.append(Problem("text overlap", f"{_describe(texts[i][1])} and {_describe(texts[j][1])}"))
    problems += _lines_through_text(fig, drawn)
    problems += _legends_over_data(fig, r, legend_must_be_free)
    return problems


def _gridlines(ax: Axes) -> set[int]:
    out = set()
    for axis in (ax.xaxis, ax.yaxis):
        for tick in list(axis.majorTicks) + list(axis.minorTicks):
            out.add(id(tick.gridline))
    return out


def _lines_through_text(fig: Figure, drawn: Drawn) -> list[Problem]:
    problems = []
    for ax in fig.get_axes():
        grid = _gridlines(ax)
        own = {id(ln) for ln in ax.lines} | grid
        lines = [(k, ln, _line_pixels(ln)) for k, ln in drawn.lines if id(ln) in own and ln.get_linewidth() > 0
                 and ln.get_linestyle() not in ("None", "none", "", " ")]
        if not lines:
            continue
        inner = [(k, t, b) for k, t, b in drawn.texts if t.axes is ax and t in ax.texts]
        patches = [(k, p.get_transform().transform_path(p.get_path())) for k, p in drawn.patches
                   if p.axes is ax and p.get_fill() and p.get_facecolor()[3] >= 0.9 and p is not ax.patch]
        for _, t, b in inner:
            # the glyphs, not the descent and leading around them
            box = Bbox.from_extents(b.x0 + 1, b.y0 + 0.2 * b.height, b.x1 - 1, b.y1 - 0.1 * b.height)
            for k, ln, pts in lines:
                if len(pts):
                    pts = pts[(pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1)]
                for kp, path in patches:
                    if kp > k and len(pts):  # an opaque patch drawn over the line hides it there
                        pts = pts[~path.contains_points(pts)]
                if len(pts):
                    what = "a grid line" if id(ln) in grid else f"line '{ln.get_label()}'"
                    problems.append(Problem("line through text", f"{what} crosses {_describe(t)}"))
                    break
    return problems


def _legends_over_data(fig: Figure, renderer, must_be_free: bool) -> list[Problem]:
    problems = []
    for ax in fig.get_axes():
        leg = ax.get_legend()
        if leg is None or not leg.get_visible():
            continue
        box = leg.get_window_extent(renderer)
        if not _inside_axes(ax, box, renderer):
            continue
        n = _count_inside(data_pixels(ax), box)
        if not n:
            continue
        free = free_corners(ax, leg, renderer)
        if free:
            problems.append(Problem("legend covers data", f"the legend of axes '{ax.get_title()[:30]}' "
                                    f"covers {n} data samples while the {free[0]} corner is free"))
        elif must_be_free:
            problems.append(Problem("legend covers data", f"the legend of axes '{ax.get_title()[:30]}' "
                                    f"covers {n} data samples and no corner is free: put it outside"))
    return problems


def assert_legible(fig: Figure, **kwargs) -> None:
    """Raise ``AssertionError`` listing every problem :func:`check_figure` finds."""
    problems = check_figure(fig, **kwargs)
    if problems:
        raise AssertionError("figure is not legible:\n  " + "\n  ".join(map(str, problems)))


# --------------------------------------------------------------------------------- the placer

def place_legend(ax: Axes, *, prefer: Sequence[str] = CORNERS, outside: str = "right",
                 redraw: bool = True, **kwargs) -> Legend:
    """Add ``ax``'s legend in the first corner of ``prefer`` where it covers no data, measured on
    the rendered figure; if every corner is taken, outside the axes (``outside``: ``right`` or
    ``below`` the axes, or ``figure right`` / ``figure below``: a figure legend at that edge,
    best for a single equal-aspect axes). Call it after everything is drawn on ``ax``;
    ``kwargs`` go to ``ax.legend``. ``redraw=False`` measures against the layout of the last draw
    (several legends of one figure: draw once, place each, then :func:`settle_legends`).

    Returns:
        The legend.
    """
    if outside not in ("right", "below", "figure right", "figure below"):
        raise ValueError(f"outside must be 'right', 'below', 'figure right' or 'figure below', got {outside!r}")
    fig = ax.get_figure(root=True)
    renderer = agg_renderer(fig)
    leg = ax.legend(loc=prefer[0], **kwargs)
    leg._alnm_placement = (tuple(prefer), outside, dict(kwargs))
    if redraw:
        fig.draw_without_rendering()
    pts = data_pixels(ax)
    for loc in prefer:
        leg.set_loc(loc)
        if _count_inside(pts, leg.get_window_extent(renderer), pad=2.0) == 0:
            return leg
    leg.remove()
    from matplotlib.transforms import ScaledTranslation

    if outside.startswith("figure"):
        # a figure legend: the constrained layout gives the axes what is left (robust with
        # equal-aspect axes, whose drawn box is smaller than their layout box)
        kwargs = dict(kwargs)
        handles = kwargs.pop("handles", None)
        labels = kwargs.pop("labels", None)
        if handles is None:
            handles, labels = ax.get_legend_handles_labels()
        elif labels is None:
            labels = [h.get_label() for h in handles]
        loc = "outside right upper" if outside == "figure right" else "outside lower center"
        if outside == "figure below":
            kwargs.setdefault("ncols", 2)
        return fig.legend(handles, labels, loc=loc, **kwargs)
    if outside == "right":
        anchor = ax.transAxes + ScaledTranslation(0.08, 0, fig.dpi_scale_trans)
        return ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), bbox_transform=anchor,
                         borderaxespad=0.0, **kwargs)
    # under the x label: its distance from the axes' bottom edge in inches stays put when the
    # layout shrinks the axes to make room
    a, tight = ax.get_window_extent(renderer), ax.get_tightbbox(renderer)
    drop = (a.y0 - tight.y0) / fig.dpi + 0.06
    anchor = ax.transAxes + ScaledTranslation(0, -drop, fig.dpi_scale_trans)
    kwargs = dict(kwargs)
    ncol = kwargs.pop("ncol", None) or kwargs.pop("ncols", None) or 1
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=anchor,
                     borderaxespad=0.0, ncols=ncol, **kwargs)


def settle_legends(fig: Figure, *, rounds: int = 3) -> None:
    """Re-place the legends :func:`place_legend` put inside their axes that cover data now that
    the figure's layout has moved (placing one legend outside shrinks its neighbours), until none
    does (at most ``rounds`` times), and leave the layout settled (a figure resized after its
    layout was computed needs a pass). Call it once after the last :func:`place_legend`."""
    renderer = agg_renderer(fig)
    for _ in range(rounds):
        fig.draw_without_rendering()
        moved = False
        for ax in fig.get_axes():
            leg = ax.get_legend()
            spec = getattr(leg, "_alnm_placement", None)
            if spec is None or not _inside_axes(ax, leg.get_window_extent(renderer), renderer):
                continue
            if _count_inside(data_pixels(ax), leg.get_window_extent(renderer), pad=2.0):
                leg.remove()
                place_legend(ax, prefer=spec[0], outside=spec[1], **spec[2])
                moved = True
        if not moved:
            return


def legend_outside(ax: Axes, legend: Legend | None = None) -> bool:
    """Whether ``legend`` (default: the axes' legend) lies outside the axes, as rendered now."""
    legend = legend if legend is not None else ax.get_legend()
    if legend is None:
        return False
    if legend.axes is None:  # a figure legend
        return True
    renderer = agg_renderer(ax.get_figure(root=True))
    return not _inside_axes(ax, legend.get_window_extent(renderer), renderer)


def wrap_to_width(text: str, width_in: float, fontsize: float) -> str:
    """``text`` wrapped to lines that fit about ``width_in`` inches at ``fontsize`` points (each
    line of a multi-line text on its own; an average glyph is taken as 0.56 em)."""
    import textwrap

    chars = max(8, int(width_in * 72 / (0.56 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def text_width_px(s: str, fontsize: float, renderer) -> float:
    """Width in pixels of the one-line text ``s`` at ``fontsize`` points (the report's font)."""
    from matplotlib.font_manager import FontProperties

    w, _, _ = renderer.get_text_width_height_descent(s, FontProperties(size=fontsize), ismath=False)
    return float(w)


class FigureLegibilityWarning(UserWarning):
    """A figure was shown or saved with legibility problems (see :func:`install_check`)."""


def _figure_name(fig: Figure) -> str:
    titles = [ax.get_title() for ax in fig.get_axes() if ax.get_title()]
    sup = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    return sup or (titles[0] if titles else f"a {fig.get_figwidth():.1f} x {fig.get_figheight():.1f} in figure")


def install_check(on_problems=None, **check_kwargs):
    """Check every figure as it is printed (IPython's ``display``, ``savefig``): from then on each
    figure is first checked with :func:`check_figure`, and ``on_problems(fig, problems)`` is called
    when it has any (default: a :class:`FigureLegibilityWarning` naming the figure and its
    problems, which lands in the notebook's output). Use it in a notebook kernel or a test to
    check every figure the notebooks produce.

    Returns:
        A function that uninstalls the check.

    Example:
        >>> seen = []
        >>> undo = install_check(lambda fig, problems: seen.append(problems))
        >>> fig = Figure(figsize=(9, 2))
        >>> import io; fig.savefig(io.BytesIO(), format="png")
        >>> undo(); [p.kind for p in seen[0]]
        ['figure too wide']
    """
    import warnings

    from matplotlib.backend_bases import FigureCanvasBase

    def warn(fig, problems):
        warnings.warn(f"figure '{_figure_name(fig)}' is hard to read:\n  " + "\n  ".join(map(str, problems)),
                      FigureLegibilityWarning, stacklevel=3)

    report = on_problems or warn
    original = FigureCanvasBase.print_figure

    def print_figure(self, *args, **kwargs):
        fig = self.figure
        if not getattr(fig, "_alnm_checked", False):
            fig._alnm_checked = True
            problems = check_figure(fig, **check_kwargs)
            if problems:
                report(fig, problems)
        return original(self, *args, **kwargs)

    FigureCanvasBase.print_figure = print_figure

    def uninstall():
        FigureCanvasBase.print_figure = original

    return uninstall
