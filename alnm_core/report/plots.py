"""Figures. Every function returns a :class:`matplotlib.figure.Figure` built without pyplot,
so nothing here touches the backend (never ``matplotlib.use``); notebooks ``display`` them.

One theme for the whole report: :func:`use_theme` (seaborn's ``whitegrid`` style in the
``notebook`` context, the model palette below), applied by every notebook's first call
(:func:`alnm_core.notebook.start`). Distributions by group, predicted probabilities per class
and fold spreads are drawn with seaborn, which is the natural tool for them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .flow import SPLIT_NAMES, participant_flow
from .gallery import attention_gallery, heatmap_gallery
from .legibility import legend_outside, place_legend, settle_legends
from .legibility import wrap_to_width as _wrap
from .nomogram import nomogram_figure

__all__ = ["use_theme", "distributions_by_group", "probabilities_by_class", "patient_flow", "roi_qc_panel",
           "crop_gallery", "histograms_before_after", "tic_curves", "learning_curves", "learning_curves_units",
           "fold_spread_figure", "confusion_matrix_figure", "heatmap_gallery", "attention_gallery", "tune_figure", "roc_figure", "reliability_figure",
           "decision_curve_figure", "roc_panels", "coefficient_figure", "nomogram_figure", "participant_flow"]

#: widest figure: an A4 page's text column, so that 8 pt text prints at 8 pt
MAX_WIDTH_IN = 7.0
#: legend entries longer than this (inches at 8 pt) wrap, so a legend beside an axes leaves it room
LEGEND_IN = 2.4
GROUP_COLORS = {1: "#c0392b", 0: "#2e86c1"}
GROUP_NAMES = {1: "ALNM", 0: "Non-ALNM"}
MODEL_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
                "#666666"]


def use_theme() -> None:
    """Apply the report's theme (seaborn ``whitegrid``, ``notebook`` context, model palette)."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette=MODEL_COLORS,
                  rc={"figure.dpi": 100, "savefig.dpi": 100, "axes.titlesize": 10,
                      "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
                      "legend.fontsize": 8, "legend.frameon": False})


def _group_palette() -> dict[str, str]:
    return {GROUP_NAMES[g]: GROUP_COLORS[g] for g in (0, 1)}


def _group_legend(ax, **kwargs):
    """A legend of the two outcome groups (colour patches), placed where it covers no data."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=GROUP_COLORS[g], lw=2, label=GROUP_NAMES[g]) for g in (1, 0)]
    return place_legend(ax, handles=handles, **kwargs)


def distributions_by_group(df: pd.DataFrame, columns: Sequence[tuple[str, str]], *,
                           group: str = "alnm") -> Figure:
    """Box + points of each continuous column by group (ALNM vs non-ALNM), n and mean ± SD
    in the axis labels: the distributions behind Table 1's tests (two panels per row)."""
    import seaborn as sns

    ncols = min(2, len(columns))
    nrows = int(np.ceil(len(columns) / ncols))
    fig = Figure(figsize=(3.4 * ncols, 3.3 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    d = df.assign(_group=df[group].map(GROUP_NAMES))
    order = [GROUP_NAMES[0], GROUP_NAMES[1]]
    for ax, (col, label) in zip(axes, columns):
        sns.boxplot(data=d, x="_group", y=col, hue="_group", order=order, palette=_group_palette(),
                    ax=ax, width=0.5, fliersize=0, boxprops={"alpha": 0.35}, legend=False)
        sns.stripplot(data=d, x="_group", y=col, hue="_group", order=order, palette=_group_palette(),
                      ax=ax, size=3.5, jitter=0.18, alpha=0.8, legend=False)
        ticks = []
        for g in (0, 1):
            x = df.loc[df[group] == g, col]
            ticks.append(f"{GROUP_NAMES[g]}\nn={len(x)}, {x.mean():.1f} ± {x.std(ddof=1):.1f}")
        ax.set_xticks([0, 1], ticks)
        ax.set_xlabel("")
        ax.set_ylabel(label)
    for ax in axes[len(columns):]:
        ax.remove()
    return fig


def probabilities_by_class(frame: pd.DataFrame, models: dict[str, str], *,
                           thresholds: dict[str, float] | None = None) -> Figure:
    """Predicted probability per model and true class (box + points), the frozen threshold of
    each model as a tick mark: where the models separate the classes and where they do not.

    Args:
        frame: one row per patient with ``label`` and one probability column per model.
        models: column -> display name.
        thresholds: display name -> frozen threshold (optional).
    """
    import seaborn as sns

    long = (frame.melt(id_vars="label", value_vars=list(models), var_name="model", value_name="prob")
            .assign(model=lambda t: t.model.map(models), truth=lambda t: t.label.map(GROUP_NAMES)))
    fig = Figure(figsize=(MAX_WIDTH_IN, 4.0), layout="constrained")
    ax = fig.subplots()
    order = list(models.values())
    hue_order = [GROUP_NAMES[0], GROUP_NAMES[1]]
    sns.boxplot(data=long, x="model", y="prob", hue="truth", order=order, hue_order=hue_order,
                palette=_group_palette(), ax=ax, fliersize=0, boxprops={"alpha": 0.35}, width=0.7,
                legend=False)
    sns.stripplot(data=long, x="model", y="prob", hue="truth", order=order, hue_order=hue_order,
                  palette=_group_palette(), ax=ax, dodge=True, size=3, alpha=0.8, legend=False)
    for i, name in enumerate(order):
        t = (thresholds or {}).get(name)
        if t is not None and np.isfinite(t):
            ax.hlines(t, i - 0.42, i + 0.42, color="black", lw=1.2, ls="--")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("")
    ax.set_ylabel("predicted probability (test set)")
    per_model_in = 5.6 / max(len(order), 1)
    ax.set_xticks(range(len(order)), [_wrap(n, per_model_in * 0.95, 8) for n in order])
    ax.set_title("Predicted probability by true class (dashed: frozen threshold)")
    _group_legend(ax, outside="right")
    return fig


def patient_flow(splits: pd.DataFrame, *, title: str = "Patients per partition") -> Figure:
    """Stacked bars: patients per partition (``split``) and outcome (``label``), for either
    design: ``train``/``val``/``test`` (hold-out) or ``dev``/``test`` (k-fold inside the
    development set); any other partition name is drawn after them, never dropped. Each bar's
    label gives its patients and events (ALNM, %).

    Args:
        splits: ``artifacts/splits.csv``: ``patient_id, label, split`` (and ``fold``).
        title: the axes title.

    Raises:
        ValueError: a column is missing or ``label`` is not 0/1.
    """
    missing = {"split", "label"} - set(splits.columns)
    if missing:
        raise ValueError(f"splits.csv: column(s) {sorted(missing)} missing (has {list(splits.columns)})")
    bad = splits.loc[~splits.label.isin([0, 1])]
    if len(bad):
        who = bad.patient_id.iloc[0] if "patient_id" in bad else bad.index[0]
        raise ValueError(f"splits.csv: label must be 0/1; patient {who} has {bad.label.iloc[0]!r}")
    counts = splits.groupby(["split", "label"]).size().unstack(fill_value=0).reindex(columns=[0, 1], fill_value=0)
    order = [s for s in SPLIT_NAMES if s in counts.index] + sorted(set(counts.index) - set(SPLIT_NAMES))
    counts = counts.loc[order]
    names = []
    for s in order:
        name = SPLIT_NAMES.get(s, s)
        if s == "dev" and "fold" in splits:
            k = splits.loc[(splits.split == "dev") & (splits.fold >= 0), "fold"].nunique()
            name += f" ({k}-fold)" if k > 1 else ""
        n, e = int(counts.loc[s].sum()), int(counts.loc[s, 1])
        names.append(f"{name}\n{n} patients, {e} ALNM ({100 * e / n:.0f}%)")
    fig = Figure(figsize=(6.0, 0.55 * len(order) + 1.4), layout="constrained")
    ax = fig.subplots()
    bottom = np.zeros(len(order))
    bars = []
    for g in (1, 0):
        vals = counts[g].to_numpy()
        ax.barh(range(len(order)), vals, left=bottom, color=GROUP_COLORS[g], label=GROUP_NAMES[g], height=0.6)
        bars.append((bottom.copy(), vals))
        bottom += vals
    ax.set_yticks(range(len(order)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, bottom.max() * 1.02)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("patients")
    ax.set_title(title)
    fig.draw_without_rendering()
    px_per_patient = ax.bbox.width / (bottom.max() * 1.02)
    from .legibility import agg_renderer, text_width_px

    renderer = agg_renderer(fig)
    for left, vals in bars:
        for i, v in enumerate(vals):
            if v and v * px_per_patient >= text_width_px(str(v), 8, renderer) + 6:
                ax.text(left[i] + v / 2, i, str(v), ha="center", va="center", color="white", fontsize=8)
    place_legend(ax, prefer=("lower right", "upper right"), outside="right")
    return fig


def roi_qc_panel(views: Sequence) -> Figure:
    """One column per series: the slice with mask outline and crop box above, the crop below.

    Args:
        views: :class:`alnm_core.roi.QcView` objects (image, mask, box, crop, title, aspect).
    """
    n = len(views)
    col_in = min(2.3, MAX_WIDTH_IN / max(n, 1))
    fig = Figure(figsize=(col_in * n, 2 * col_in + 1.2), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for i, v in enumerate(views):
        ax = axes[0, i]
        ax.imshow(v.image, cmap="gray", aspect=v.aspect)
        ax.contour(v.mask.astype(float), levels=[0.5], colors="#e74c3c", linewidths=0.8)
        r0, r1, c0, c1 = v.box
        ax.add_patch(_rect(c0 - 0.5, r0 - 0.5, c1 - c0, r1 - r0))
        ax.set_title(_wrap(v.title.replace(" · ", "\n", 1), col_in * 0.95, 7), fontsize=7)
        ax.axis("off")
        axes[1, i].imshow(v.crop, cmap="gray", vmin=0, vmax=1)
        axes[1, i].set_title("crop, min-max to [0, 1]", fontsize=7)
        axes[1, i].axis("off")
    return fig


def _rect(x, y, w, h):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, fill=False, edgecolor="#f1c40f", linewidth=1.2)


def crop_gallery(crops: np.ndarray, titles: Sequence[str], *, ncols: int = 8,
                 heatmaps: np.ndarray | None = None, cell: tuple[float, float] = (1.4, 1.55)) -> Figure:
    """A grid of crops, optionally with heatmaps (in [0, 1]) overlaid.

    ``ncols`` crops per row, narrowed to fit an A4 text column (cells of at least 0.85 in; fewer
    columns when that does not fit).
    """
    n = len(crops)
    ncols = max(1, min(ncols, n, int(MAX_WIDTH_IN // 0.85)))
    w = min(cell[0], MAX_WIDTH_IN / ncols)
    h = cell[1] * w / cell[0]
    nrows = max(1, int(np.ceil(n / ncols)))
    fig = Figure(figsize=(w * ncols, h * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < n:
            ax.imshow(crops[k], cmap="gray", vmin=0, vmax=1)
            if heatmaps is not None:
                ax.imshow(heatmaps[k], cmap="jet", alpha=0.35, vmin=0, vmax=1)
            ax.set_title(_wrap(titles[k], w * 0.95, 7), fontsize=7)
    return fig


def histograms_before_after(raw: Sequence[np.ndarray], normed: Sequence[np.ndarray],
                            labels: Sequence[str]) -> Figure:
    """Intensity histograms of crops before and after min-max normalisation."""
    fig = Figure(figsize=(MAX_WIDTH_IN, 2.9), layout="constrained")
    a0, a1 = fig.subplots(1, 2)
    for x, y, lab, c in zip(raw, normed, labels, MODEL_COLORS):
        a0.hist(np.ravel(x), bins=60, histtype="step", color=c, label=lab, density=True)
        a1.hist(np.ravel(y), bins=60, histtype="step", color=c, label=lab, density=True)
    a0.set_title("before (scanner units)")
    a1.set_title("after min-max (eq. 1)")
    a0.set_xlabel("signal intensity")
    a1.set_xlabel("normalised intensity")
    for a in (a0, a1):
        a.set_ylabel("density")
        a.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    place_legend(a0, prefer=("upper right", "upper left", "lower right"), outside="right")
    return fig


def tic_curves(times_min: np.ndarray | None, curves: pd.DataFrame) -> Figure:
    """Relative enhancement curves (one line per patient, coloured by ALNM) by TIC type; each
    curve on its own patient's phase times (column ``times``, minutes) when given, else on
    ``times_min`` (patients may have different numbers of phases)."""
    types = sorted(curves["tic"].unique())
    n = max(1, len(types))
    fig = Figure(figsize=(min(MAX_WIDTH_IN, 2.6 * n + 0.4), 2.9), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
    for ax, t in zip(axes, types):
        sub = curves[curves["tic"] == t]
        for _, row in sub.iterrows():
            t_row = row["times"] if "times" in sub.columns else times_min
            ax.plot(t_row, row["curve"], color=GROUP_COLORS[int(row["alnm"])], alpha=0.35, lw=1)
        ax.set_title(f"TIC type {t} (n={len(sub)})")
        ax.set_xlabel("minutes after contrast")
    axes[0].set_ylabel("relative enhancement")
    _group_legend(axes[-1], prefer=("lower right", "upper right", "lower left", "upper left"), outside="right")
    return fig


def learning_curves(history: pd.DataFrame) -> Figure:
    """Loss and AUC per epoch (train and validation)."""
    fig = Figure(figsize=(MAX_WIDTH_IN, 2.9), layout="constrained")
    a0, a1 = fig.subplots(1, 2)
    a0.plot(history["epoch"], history["train_loss"], label="train loss")
    if "val_loss" in history:
        a0.plot(history["epoch"], history["val_loss"], label="validation loss")
    a0.set_xlabel("epoch")
    a0.set_ylabel("loss")
    a1.plot(history["epoch"], history["train_auc"], label="train AUC (patients)")
    a1.plot(history["epoch"], history["val_auc"], label="validation AUC (patients)")
    if "selected" in history and history["selected"].any():
        best = history.loc[history["selected"].astype(bool), "epoch"].iloc[0]
        a1.axvline(best, color="grey", ls="--", lw=1, label=f"kept: epoch {best}")
    a1.set_ylim(0, 1.02)
    a1.set_xlabel("epoch")
    a1.set_ylabel("AUC")
    fig.draw_without_rendering()
    place_legend(a0, outside="below", redraw=False)
    place_legend(a1, outside="below", redraw=False)
    settle_legends(fig)
    return fig


def learning_curves_units(histories: dict[str, pd.DataFrame]) -> Figure:
    """Loss and AUC per epoch of every training unit of a sequence, in one figure.

    Args:
        histories: unit id -> ``history.csv`` (``epoch, train_loss, train_auc, val_auc,
            selected``); a unit without validation (``val_auc`` all NaN) shows its training AUC.
    """
    if len(histories) == 1:
        return learning_curves(next(iter(histories.values())))
    fig = Figure(figsize=(MAX_WIDTH_IN, 3.2), layout="constrained")
    a0, a1 = fig.subplots(1, 2)
    any_dashed = False
    for (uid, h), c in zip(histories.items(), MODEL_COLORS * 10):
        a0.plot(h["epoch"], h["train_loss"], color=c, lw=1.2, label=uid)
        has_val = "val_auc" in h and h["val_auc"].notna().any()
        any_dashed |= not has_val
        a1.plot(h["epoch"], h["val_auc"] if has_val else h["train_auc"], color=c, lw=1.2,
                ls="-" if has_val else "--", label=uid)
        if "selected" in h and h["selected"].any():
            best = h.loc[h["selected"].astype(bool), "epoch"].iloc[0]
            a1.plot([best], [h.loc[h.epoch == best, "val_auc" if has_val else "train_auc"].iloc[0]],
                    "o", color=c, ms=4)
    a0.set_xlabel("epoch")
    a0.set_ylabel("training loss")
    a1.set_xlabel("epoch")
    a1.set_ylabel("AUC (patients)")
    a1.set_title(_wrap("validation AUC" + (" (dashed: training AUC, no validation part)" if any_dashed else "")
                       + "; dot: kept epoch", 3.0, 8), fontsize=8)
    a0.set_title("training loss per unit", fontsize=8)
    a1.set_ylim(0, 1.02)
    fig.legend(*a0.get_legend_handles_labels(), loc="outside lower center",
               ncols=min(len(histories), 5), fontsize=7)
    return fig


def fold_spread_figure(unit_patients: pd.DataFrame, sequence: str) -> Figure:
    """AUC of each fold model on its held-out fold and on the test set (one dot per unit,
    coloured by repeat; bar: mean with SD), and the final model's test AUC (the model refitted
    on every development patient that scores the test set: ``repeat = -1``), a diamond."""
    import seaborn as sns

    from ..stats import auc

    final = unit_patients[(unit_patients.repeat == -1) & (unit_patients.split == "test")]
    unit_patients = unit_patients[unit_patients.repeat != -1]
    rows = []
    for (rep, fold), g in unit_patients.groupby(["repeat", "fold"]):
        for part, name in (("oof", "held-out fold"), ("test", "test set")):
            d = g[g.split == part]
            if d.label.nunique() == 2:
                rows.append({"part": name, "AUC": auc(d.label, d.prob), "repeat": f"repeat {rep}"})
    fig = Figure(figsize=(5, 3), layout="constrained")
    ax = fig.subplots()
    if rows:
        t = pd.DataFrame(rows)
        order = [p for p in ("held-out fold", "test set") if p in set(t.part)]
        sns.pointplot(data=t, x="part", y="AUC", order=order, errorbar="sd", color="black",
                      linestyle="none", marker="_", markersize=14, capsize=0.1,
                      err_kws={"linewidth": 1.2}, ax=ax)
        sns.stripplot(data=t, x="part", y="AUC", order=order, hue="repeat", ax=ax, size=6,
                      jitter=0.12, legend=t.repeat.nunique() > 1)
        if final.label.nunique() == 2 and "test set" in order:
            ax.plot([order.index("test set") + 0.3], [auc(final.label, final.prob)], "D", color="#c0392b",
                    ms=7, label="final model (scores the test set)")
    ax.set_xlabel("")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{sequence}: one dot per fold model (bar: mean ± SD)")
    if ax.get_legend() is not None or ax.get_legend_handles_labels()[0]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        place_legend(ax, prefer=("lower right", "lower left", "upper right", "upper left"), outside="right")
    return fig


def confusion_matrix_figure(tp: int, fp: int, fn: int, tn: int, title: str = "") -> Figure:
    """The 2 x 2 table as a shaded grid: rows the truth, columns the prediction; no grid line
    crosses the counts."""
    fig = Figure(figsize=(2.8, 2.5), layout="constrained")
    ax = fig.subplots()
    m = np.array([[tn, fp], [fn, tp]])
    ax.imshow(m, cmap="Blues", vmin=0, vmax=max(int(m.max()), 1))
    ax.grid(False)
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=10,
                color="white" if v > m.max() / 2 else "black")
    ax.set_xticks([0, 1], ["non-ALNM", "ALNM"], fontsize=8)
    ax.set_yticks([0, 1], ["non-ALNM", "ALNM"], fontsize=8)
    ax.set_xlabel("predicted", fontsize=8)
    ax.set_ylabel("true", fontsize=8)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=9)
    return fig


def _roc_axes(ax, curves, *, lw: float, label_fmt: str) -> None:
    for (name, (fpr, tpr, a)), c in zip(curves.items(), MODEL_COLORS * 4):
        ax.plot(fpr, tpr, color=c, lw=lw, label=_wrap(label_fmt.format(name=name, auc=a), LEGEND_IN, 8),
                drawstyle="steps-post")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], title: str = "") -> Figure:
    """ROC curves: name -> (fpr, tpr, auc). The legend sits in the lower right corner when no
    curve passes there (else another free corner, else beside the axes)."""
    fig = Figure(figsize=(4.6, 4.6), layout="constrained")
    ax = fig.subplots()
    _roc_axes(ax, curves, lw=1.8, label_fmt="{name} (AUC\u00a0{auc:.3f})")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title(title)
    if legend_outside(ax, place_legend(ax, prefer=("lower right", "upper left"), outside="figure right")):
        fig.set_size_inches(MAX_WIDTH_IN, 4.2)
    settle_legends(fig)
    return fig


def reliability_figure(tables: dict[str, pd.DataFrame]) -> Figure:
    """Reliability (calibration) plot: name -> ``mean_predicted, observed, low, high`` per bin."""
    fig = Figure(figsize=(4.6, 4.6), layout="constrained")
    ax = fig.subplots()
    for (name, t), c in zip(tables.items(), MODEL_COLORS * 4):
        ax.errorbar(t["mean_predicted"], t["observed"],
                    yerr=[t["observed"] - t["low"], t["high"] - t["observed"]],
                    marker="o", color=c, capsize=2, lw=1, label=_wrap(name, LEGEND_IN, 8))
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=0.8)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed ALNM rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    if legend_outside(ax, place_legend(ax, prefer=("upper left", "lower right"), outside="figure right")):
        fig.set_size_inches(MAX_WIDTH_IN, 4.2)
    settle_legends(fig)
    return fig


def decision_curve_figure(curves: dict[str, pd.DataFrame]) -> Figure:
    """Net benefit curves: name -> ``threshold, net_benefit, treat_all, treat_none``."""
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    first = next(iter(curves.values()))
    for (name, d), c in zip(curves.items(), MODEL_COLORS * 4):
        ax.plot(d["threshold"], d["net_benefit"], color=c, label=_wrap(name, LEGEND_IN, 8))
    ax.plot(first["threshold"], first["treat_all"], color="black", lw=1, label="treat all")
    ax.plot(first["threshold"], first["treat_none"], color="grey", lw=1, ls="--", label="treat none")
    prev = first["treat_all"].iloc[0] + 0.0
    ax.set_ylim(min(-0.05, -0.1 * abs(prev)), max(0.05, first["treat_all"].max() * 1.15 + 0.02))
    ax.set_xlabel("threshold probability")
    ax.set_ylabel("net benefit")
    if legend_outside(ax, place_legend(ax, prefer=("upper right", "lower left"), outside="figure right")):
        fig.set_size_inches(MAX_WIDTH_IN, 3.8)
    settle_legends(fig)
    return fig


def roc_panels(panels: dict[str, dict[str, tuple[np.ndarray, np.ndarray, float]]]) -> Figure:
    """Small multiples of ROC curves: panel title -> (name -> (fpr, tpr, auc)); two panels per
    row, each legend in a free corner or under its panel."""
    n = len(panels)
    ncols = min(2, n)
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(3.5 * ncols, 4.3 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (title, curves) in zip(axes, panels.items()):
        _roc_axes(ax, curves, lw=1.6, label_fmt="{name} ({auc:.3f})")
        ax.set_xlabel("1 - specificity", fontsize=8)
        ax.set_ylabel("sensitivity", fontsize=8)
        ax.set_title(title, fontsize=9)
    for ax in axes[n:]:
        ax.remove()
    fig.draw_without_rendering()
    for ax in axes[:n]:
        place_legend(ax, prefer=("lower right",), outside="below", fontsize=7, ncols=1, redraw=False)
    settle_legends(fig)
    return fig


def coefficient_figure(coefs: pd.DataFrame, title: str = "") -> Figure:
    """Horizontal bars of a model's non-zero coefficients (per standardised unit), labelled with
    how many fold models selected each feature: ``term, coef, selected_in, n_fits``."""
    c = coefs[coefs.term != "(intercept)"].sort_values("coef")
    fig = Figure(figsize=(6.5, 0.32 * max(len(c), 3) + 1.0), layout="constrained")
    ax = fig.subplots()
    ax.barh(range(len(c)), c.coef, color=[GROUP_COLORS[1] if v > 0 else GROUP_COLORS[0] for v in c.coef])
    ax.set_yticks(range(len(c)), [f"{t}  ({int(s)}/{int(n)})" if np.isfinite(s) else t
                                  for t, s, n in zip(c.term, c.selected_in, c.n_fits)], fontsize=7)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("coefficient per SD (log-odds of ALNM)")
    ax.set_title(title, fontsize=9)
    return fig


def tune_figure(trials: pd.DataFrame, title: str = "", *, lower_is_better: bool = False) -> Figure:
    """A search at a glance: each trial's score in order (pruned and failed trials marked; one
    line per search when nested searches ran, one per outer fold), the best score dashed, and
    how strongly each searched setting goes with the score (|Spearman rho| over the complete
    trials: a rough importance, not a causal one). ``lower_is_better`` for ``val_loss``."""
    from scipy.stats import spearmanr

    fig = Figure(figsize=(MAX_WIDTH_IN, 2.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    done = trials[trials.state == "complete"]
    scopes = list(dict.fromkeys(done["scope"])) if "scope" in done and done["scope"].nunique() > 1 else [None]
    for i, sc in enumerate(scopes):
        d = done if sc is None else done[done["scope"] == sc]
        ax1.plot(d.trial, d.score, "o-", color="#2c3e50", ms=4, alpha=1.0 if sc is None else 0.5,
                 label="complete" + ("" if sc is None else " (one line per outer fold)") if i == 0 else None)
    other = trials[trials.state != "complete"]
    if len(other):
        ax1.plot(other.trial, other.last_value, "x", color="#c0392b", label="pruned / failed (last value)")
    if done.score.notna().any():
        best = done.score.min() if lower_is_better else done.score.max()
        ax1.axhline(best, color="#7f8c8d", lw=0.8, ls="--")
    ax1.set_xlabel("trial")
    ax1.set_ylabel("inner-validation " + ("loss" if lower_is_better else "score"))
    ax1.set_title(title or "search", fontsize=9, loc="left")
    place_legend(ax1)
    params = [c for c in trials.columns if c.startswith("param_")]
    imp = {}
    for c in params:
        x = pd.to_numeric(done[c], errors="coerce")
        if x.nunique() > 1 and done.score.nunique() > 1:
            imp[c[6:]] = abs(spearmanr(x, done.score).statistic)
        else:
            imp[c[6:]] = 0.0
    names = list(imp)
    ax2.barh(names, [imp[n] for n in names], color="#4a6fa5")
    ax2.set_xlim(0, 1)
    ax2.set_xlabel("|Spearman ρ| with the score")
    ax2.invert_yaxis()
    return fig
