"""The participant-flow diagram (TRIPOD+AI item 20a / CONSORT-like): the cohort, the patients
excluded at each step with the reasons, those kept but flagged (e.g. radiomics features imputed),
and the partitions analysed with their events.

:func:`participant_flow` draws plain counts; :func:`flow_from_run` derives them from a run's
``splits.csv`` and the exclusions recorded in ``run.json``.

Example:
    >>> fig = participant_flow(120, [("ROI extraction", "DWI: mask is empty", 2)],
    ...                        {"development (5-fold)": (94, 33), "test": (24, 8)})
"""
from __future__ import annotations

import re
from typing import Mapping, NamedTuple, Sequence

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from .legibility import agg_renderer, wrap_to_width

FONT = 8
MAX_REASONS = 6
PAD_IN = 0.45 * FONT / 72  # the boxes' padding (boxstyle pad, in font sizes)  # reasons listed per step; the rest are summed into one line
_BOX = dict(boxstyle="round,pad=0.45", fc="white", ec="#34495e", lw=0.9)
_EXCL = dict(boxstyle="round,pad=0.45", fc="#fdf2f2", ec="#c0392b", lw=0.9)
_NOTE = dict(boxstyle="round,pad=0.45", fc="#fbfbfb", ec="#7f8c8d", lw=0.9, ls="--")
_ARROW = dict(arrowstyle="-|>", color="#34495e", lw=0.9, shrinkA=0, shrinkB=0)


#: display names of the partitions in ``splits.csv``, in drawing order
SPLIT_NAMES = {"train": "training", "val": "validation", "dev": "development", "test": "test"}


class FlowCounts(NamedTuple):
    """What :func:`participant_flow` draws (its arguments)."""

    n_cohort: int
    exclusions: list[tuple[str, str, int]]
    groups: dict[str, tuple[int, int]]
    notes: list[tuple[str, str, int]]


def _check(n_cohort, exclusions, groups, notes) -> None:
    if n_cohort < 0 or any(n < 0 for *_, n in exclusions) or any(n < 0 for *_, n in notes):
        raise ValueError("participant_flow: counts must be >= 0")
    for name, (n, e) in groups.items():
        if not 0 <= e <= n:
            raise ValueError(f"participant_flow: group {name!r} has {e} events of {n} patients")
    left = n_cohort - sum(n for *_, n in exclusions)
    total = sum(n for n, _ in groups.values())
    if left != total:
        raise ValueError(f"participant_flow: {n_cohort} patients less {n_cohort - left} excluded leaves "
                         f"{left}, but the groups hold {total}: every patient must be in a group or "
                         "an exclusion")


def _steps(items: Sequence[tuple[str, str, int]]) -> list[tuple[str, list[tuple[str, int]]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for step, reason, n in items:
        out.setdefault(step, []).append((reason, int(n)))
    return list(out.items())


def _step_text(head: str, reasons: list[tuple[str, int]], width_in: float) -> str:
    reasons = sorted(reasons, key=lambda r: -r[1])
    shown, rest = reasons[:MAX_REASONS], reasons[MAX_REASONS:]
    if rest:
        shown.append((f"{len(rest)} other reasons", sum(n for _, n in rest)))
    lines = [wrap_to_width(head, width_in, FONT)]
    for reason, n in shown:
        if not reason and not n:  # a step that excluded nobody: its head says n = 0
            continue
        lines.append(wrap_to_width(f"• {reason} (n = {n})", width_in, FONT).replace("\n", "\n   "))
    return "\n".join(lines)


def _note_text(step: str, items: list[tuple[str, int]], width_in: float) -> str:
    return _step_text(f"{step[:1].upper()}{step[1:]}: kept, n = {sum(n for _, n in items)}", items, width_in)


def participant_flow(n_cohort: int, exclusions: Sequence[tuple[str, str, int]],
                     groups: Mapping[str, tuple[int, int]], *, notes: Sequence[tuple[str, str, int]] = (),
                     title: str = "Participant flow", cohort_label: str = "Patients in the cohort",
                     width_in: float = 7.0) -> Figure:
    """A participant-flow diagram: cohort -> exclusions per step (with reasons) -> the groups.

    Args:
        n_cohort: patients in the cohort manifest.
        exclusions: ``(step, reason, n)``: patients excluded at ``step`` for ``reason``; each
            patient counted once (steps drawn in their order of first appearance);
            ``(step, "", 0)`` draws a step that excluded nobody.
        groups: partition name -> ``(patients, events)`` (events: ALNM), e.g. development and
            test.
        notes: ``(step, what, n)``: patients kept but flagged at a step (e.g. radiomics features
            imputed), drawn as dashed boxes beside the step's remaining count.
        title: the figure title.
        cohort_label: the first box's caption.
        width_in: figure width (an A4 text column by default).

    Raises:
        ValueError: counts are negative, events exceed patients, or the cohort less the
            exclusions is not the sum of the groups (no patient may vanish from the diagram).
    """
    exclusions, notes = list(exclusions), list(notes)
    _check(n_cohort, exclusions, groups, notes)
    fig = Figure(figsize=(width_in, 8))  # height set once the boxes are measured
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    renderer = agg_renderer(fig)
    trunk_x, side_x = 0.3 * width_in, 0.52 * width_in
    trunk_w, side_w = 0.36 * width_in, width_in - side_x - 0.25

    def box(s, style, **kw):
        return ax.text(0, 0, s, fontsize=FONT, bbox=style, va="top", **kw)

    def size(t):  # inches, box included
        t.update_bbox_position_size(renderer)
        b = Bbox.union([t.get_bbox_patch().get_window_extent(renderer), t.get_window_extent(renderer)])
        return b.width / fig.dpi, b.height / fig.dpi

    # layout in inches from the top (y negative downwards), measured box by box
    y = -0.15
    head = ax.text(width_in / 2, y, title, ha="center", va="top", fontsize=10, weight="bold")
    y -= 0.45
    placed = []  # (text, x, y)
    links = []   # (x0, y0, x1, y1)
    cohort = box(wrap_to_width(f"{cohort_label}\nn = {n_cohort}", trunk_w, FONT), _BOX, ha="center",
                 ma="center")
    _, h = size(cohort)
    placed.append((cohort, trunk_x, y - PAD_IN))
    bottom = trunk_bottom = y - h
    left = n_cohort
    step_notes = dict(_steps(notes))
    for step, reasons in _steps(exclusions):
        n_out = sum(n for _, n in reasons)
        left -= n_out
        ex = box(_step_text(f"Excluded at {step}: n = {n_out}", reasons, side_w - 0.2), _EXCL, ha="left")
        _, eh = size(ex)
        y_ex = bottom - 0.3
        placed.append((ex, side_x, y_ex - PAD_IN))
        links.append((trunk_x, y_ex - eh / 2, side_x - PAD_IN, y_ex - eh / 2))
        kept = box(f"n = {left}\nafter {step}", _BOX, ha="center", ma="center")
        kw, kh = size(kept)
        y_kept = y_ex - eh - 0.3
        links.append((trunk_x, bottom, trunk_x, y_kept))
        placed.append((kept, trunk_x, y_kept - PAD_IN))
        bottom = trunk_bottom = y_kept - kh
        if step in step_notes:
            nt = box(_note_text(step, step_notes.pop(step), side_w - 0.2), _NOTE, ha="left")
            _, nh = size(nt)
            placed.append((nt, side_x, y_kept - PAD_IN))
            links.append((trunk_x + kw / 2, y_kept - kh / 2, side_x - PAD_IN, y_kept - kh / 2))
            bottom = min(bottom, y_kept - nh)
    for step, items in step_notes.items():  # notes at steps that excluded nobody
        nt = box(_note_text(step, items, side_w - 0.2), _NOTE, ha="left")
        _, nh = size(nt)
        y_nt = bottom - 0.3
        placed.append((nt, side_x, y_nt - PAD_IN))
        links.append((trunk_x, y_nt - nh / 2, side_x - PAD_IN, y_nt - nh / 2))
        bottom = y_nt - nh
    # the groups, side by side under a bar
    names = list(groups)
    col = width_in / max(len(names), 1)
    y_bar = bottom - 0.3
    y_grp = y_bar - 0.3
    g_bottom = y_grp
    xs = [col * (i + 0.5) for i in range(len(names))] if len(names) > 1 else [trunk_x]
    for name, x in zip(names, xs):
        n, e = groups[name]
        pct = f" ({100 * e / n:.0f}%)" if n else ""
        g = box(wrap_to_width(f"{name}\nn = {n}\nALNM: {e}{pct}\nnon-ALNM: {n - e}", col - 0.45, FONT), _BOX,
                ha="center", ma="center")
        _, gh = size(g)
        placed.append((g, x, y_grp - PAD_IN))
        g_bottom = min(g_bottom, y_grp - gh)
        links.append((x, y_bar, x, y_grp))
    height = -g_bottom + 0.25
    fig.set_size_inches(width_in, height)
    ax.set_xlim(0, width_in)
    ax.set_ylim(-height, 0)
    for t, x, yy in placed:
        t.set_position((x, yy))
    ax.plot([trunk_x, trunk_x], [trunk_bottom, y_bar], color=_ARROW["color"], lw=_ARROW["lw"])
    ax.plot([min(xs + [trunk_x]), max(xs + [trunk_x])], [y_bar, y_bar], color=_ARROW["color"], lw=_ARROW["lw"])
    for x0, y0, x1, y1 in links:
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=_ARROW)
    head.set_position((width_in / 2, -0.12))
    return fig


_PATHLIKE = re.compile(r"\S*[/\\]\S*")


def reason_category(reason: str) -> str:
    """A reason without file paths (which may carry names), numbers or per-file detail, so that
    patients excluded for the same cause are counted together: ``"slice 12: mask is empty"`` ->
    ``"slice N: mask is empty"``."""
    s = _PATHLIKE.sub("", str(reason))
    s = re.sub(r"\d+(\.\d+)?", "N", s)
    s = re.sub(r"\s+", " ", s).strip(" :;,-")
    return (s[:77] + "...") if len(s) > 80 else (s or "unreadable input")


def flow_from_run(splits: pd.DataFrame, exclusions: Sequence[Mapping], *,
                  radiomics_exclusions: Sequence[Mapping] = (), step: str = "ROI extraction",
                  split_names: Mapping[str, str] | None = None) -> FlowCounts:
    """The flow counts of a run: ``splits.csv`` and the exclusions of ``run.json``.

    Args:
        splits: ``patient_id, label, split`` (and ``fold``) of every patient in the cohort.
        exclusions: ``run.json``'s ``exclusions`` (``patient_id, sequence, reason``): those
            patients leave every model; one patient excluded in several sequences counts once,
            under the first. None: the step is drawn with n = 0.
        radiomics_exclusions: ``run.json``'s ``radiomics_exclusions``: kept, features imputed.
        step: the name of the exclusion step.
        split_names: partition -> display name (default: training, validation, development
            (k-fold), test, as :func:`alnm_core.report.plots.patient_flow`).
    """
    names = dict(SPLIT_NAMES, **(split_names or {}))
    seen: dict[str, str] = {}
    for e in exclusions:
        seen.setdefault(str(e["patient_id"]), f"{e.get('sequence', '')}: {reason_category(e.get('reason', ''))}"
                        .lstrip(": "))
    ids = set(splits.patient_id.astype(str))
    n_cohort = len(ids | set(seen))
    ex = pd.Series(seen, dtype=object).value_counts(sort=False) if seen else pd.Series(dtype=int)
    kept = splits[~splits.patient_id.astype(str).isin(seen)]
    groups = {}
    order = [s for s in names if s in set(kept.split)] + sorted(set(kept.split) - set(names))
    for s in order:
        g = kept[kept.split == s]
        name = names.get(s, s)
        if s == "dev" and "fold" in g and g.fold.nunique() > 1 and not split_names:
            name += f" ({g.fold[g.fold >= 0].nunique()}-fold)"
        groups[name] = (len(g), int(g.label.sum()))
    rad: dict[str, str] = {}
    for e in radiomics_exclusions:
        if str(e["patient_id"]) not in seen:
            rad.setdefault(str(e["patient_id"]), f"{e.get('sequence', '')}: {reason_category(e.get('reason', ''))}"
                           .lstrip(": ") + " (imputed)")
    notes = pd.Series(rad, dtype=object).value_counts(sort=False) if rad else pd.Series(dtype=int)
    return FlowCounts(n_cohort, [(step, str(r), int(n)) for r, n in ex.items()] or [(step, "", 0)], groups,
                      [("radiomics features", str(r), int(n)) for r, n in notes.items()])


__all__ = ["FlowCounts", "participant_flow", "flow_from_run", "reason_category"]
