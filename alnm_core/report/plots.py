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


def distributions_by_group(df: pd.DataFrame, columns: Sequence[tuple[str, str]], *,
                           group: str = "alnm") -> Figure:
    """Box + points of each continuous column by group (ALNM vs non-ALNM), n and mean ± SD
    in the axis labels: the distributions behind Table 1's tests."""
    import seaborn as sns

    fig = Figure(figsize=(4.2 * len(columns), 3.6), layout="constrained")
    axes = fig.subplots(1, len(columns), squeeze=False)[0]
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
    fig = Figure(figsize=(max(6.0, 1.1 * len(models) + 2), 3.8), layout="constrained")
    ax = fig.subplots()
    order = list(models.values())
    hue_order = [GROUP_NAMES[0], GROUP_NAMES[1]]
    sns.boxplot(data=long, x="model", y="prob", hue="truth", order=order, hue_order=hue_order,
                palette=_group_palette(), ax=ax, fliersize=0, boxprops={"alpha": 0.35}, width=0.7)
    sns.stripplot(data=long, x="model", y="prob", hue="truth", order=order, hue_order=hue_order,
                  palette=_group_palette(), ax=ax, dodge=True, size=3, alpha=0.8, legend=False)
    for i, name in enumerate(order):
        t = (thresholds or {}).get(name)
        if t is not None and np.isfinite(t):
            ax.hlines(t, i - 0.42, i + 0.42, color="black", lw=1.2, ls="--")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("")
    ax.set_ylabel("predicted probability (test set)")
    ax.tick_params(axis="x", labelrotation=20)
    for lab in ax.get_xticklabels():
        lab.set_horizontalalignment("right")
    ax.legend(title="", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Predicted probability by true class (dashed: frozen threshold)")
    return fig


def patient_flow(splits: pd.DataFrame) -> Figure:
    """Stacked bars: patients per split and label."""
    counts = splits.groupby(["split", "label"]).size().unstack(fill_value=0)
    order = [s for s in ("train", "val", "test") if s in counts.index]
    counts = counts.loc[order]
    fig = Figure(figsize=(5, 3), layout="constrained")
    ax = fig.subplots()
    bottom = np.zeros(len(order))
    for g in (1, 0):
        vals = counts.get(g, pd.Series(0, index=order)).to_numpy()
        ax.barh(order, vals, left=bottom, color=GROUP_COLORS[g], label=GROUP_NAMES[g])
        for i, v in enumerate(vals):
            if v:
                ax.text(bottom[i] + v / 2, i, str(v), ha="center", va="center", color="white",
                        fontsize=9)
        bottom += vals
    ax.invert_yaxis()
    ax.set_xlabel("patients")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Patient-level split", fontsize=10)
    return fig


def roi_qc_panel(views: Sequence) -> Figure:
    """One column per series: the slice with mask outline and crop box above, the crop below.

    Args:
        views: :class:`alnm_core.roi.QcView` objects (image, mask, box, crop, title, aspect).
    """
    n = len(views)
    fig = Figure(figsize=(3.3 * n, 6.2), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for i, v in enumerate(views):
        ax = axes[0, i]
        ax.imshow(v.image, cmap="gray", aspect=v.aspect)
        ax.contour(v.mask.astype(float), levels=[0.5], colors="#e74c3c", linewidths=0.8)
        r0, r1, c0, c1 = v.box
        ax.add_patch(_rect(c0 - 0.5, r0 - 0.5, c1 - c0, r1 - r0))
        ax.set_title(v.title.replace(" · ", "\n", 1), fontsize=8)
        ax.axis("off")
        axes[1, i].imshow(v.crop, cmap="gray", vmin=0, vmax=1)
        axes[1, i].set_title("crop, min-max to [0, 1]", fontsize=8)
        axes[1, i].axis("off")
    return fig


def _rect(x, y, w, h):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, fill=False, edgecolor="#f1c40f", linewidth=1.2)


def crop_gallery(crops: np.ndarray, titles: Sequence[str], *, ncols: int = 8,
                 heatmaps: np.ndarray | None = None, cell: tuple[float, float] = (1.4, 1.55)) -> Figure:
    """A grid of crops, optionally with heatmaps (in [0, 1]) overlaid."""
    n = len(crops)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig = Figure(figsize=(cell[0] * ncols, cell[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < n:
            ax.imshow(crops[k], cmap="gray", vmin=0, vmax=1)
            if heatmaps is not None:
                ax.imshow(heatmaps[k], cmap="jet", alpha=0.35, vmin=0, vmax=1)
            ax.set_title(titles[k], fontsize=7)
    return fig


def histograms_before_after(raw: Sequence[np.ndarray], normed: Sequence[np.ndarray],
                            labels: Sequence[str]) -> Figure:
    """Intensity histograms of crops before and after min-max normalisation."""
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    a0, a1 = fig.subplots(1, 2)
    for x, y, lab, c in zip(raw, normed, labels, MODEL_COLORS):
        a0.hist(np.ravel(x), bins=60, histtype="step", color=c, label=lab, density=True)
        a1.hist(np.ravel(y), bins=60, histtype="step", color=c, label=lab, density=True)
    a0.set_title("before (scanner units)", fontsize=10)
    a1.set_title("after min-max (eq. 1)", fontsize=10)
    a0.legend(fontsize=8, frameon=False)
    for a in (a0, a1):
        a.set_ylabel("density")
    return fig


def tic_curves(times_min: np.ndarray, curves: pd.DataFrame) -> Figure:
    """Relative enhancement curves (one line per patient) by TIC type."""
    types = sorted(curves["tic"].unique())
    fig = Figure(figsize=(4 * max(1, len(types)), 3.2), layout="constrained")
    axes = fig.subplots(1, max(1, len(types)), squeeze=False)[0]
    for ax, t in zip(axes, types):
        sub = curves[curves["tic"] == t]
        for _, row in sub.iterrows():
            ax.plot(times_min, row["curve"], color=GROUP_COLORS[int(row["alnm"])], alpha=0.35, lw=1)
        ax.set_title(f"TIC type {t} (n={len(sub)})", fontsize=10)
        ax.set_xlabel("minutes after contrast")
        ax.set_ylabel("relative enhancement")
    return fig


def learning_curves(history: pd.DataFrame) -> Figure:
    """Loss and AUC per epoch (train and validation)."""
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    a0, a1 = fig.subplots(1, 2)
    a0.plot(history["epoch"], history["train_loss"], label="train loss")
    if "val_loss" in history:
        a0.plot(history["epoch"], history["val_loss"], label="validation loss")
    a0.set_xlabel("epoch")
    a0.legend(frameon=False)
    a1.plot(history["epoch"], history["train_auc"], label="train AUC (patients)")
    a1.plot(history["epoch"], history["val_auc"], label="validation AUC (patients)")
    if "selected" in history and history["selected"].any():
        best = history.loc[history["selected"].astype(bool), "epoch"].iloc[0]
        a1.axvline(best, color="grey", ls="--", lw=1, label=f"kept: epoch {best}")
    a1.set_ylim(0, 1.02)
    a1.set_xlabel("epoch")
    a1.legend(frameon=False, fontsize=8)
    return fig


def learning_curves_units(histories: dict[str, pd.DataFrame]) -> Figure:
    """Loss and AUC per epoch of every training unit of a sequence, in one figure.

    Args:
        histories: unit id -> ``history.csv`` (``epoch, train_loss, train_auc, val_auc,
            selected``); a unit without validation (``val_auc`` all NaN) shows its training AUC.
    """
    if len(histories) == 1:
        return learning_curves(next(iter(histories.values())))
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    a0, a1 = fig.subplots(1, 2)
    for (uid, h), c in zip(histories.items(), MODEL_COLORS * 10):
        a0.plot(h["epoch"], h["train_loss"], color=c, lw=1.2, label=uid)
        has_val = "val_auc" in h and h["val_auc"].notna().any()
        a1.plot(h["epoch"], h["val_auc"] if has_val else h["train_auc"], color=c, lw=1.2,
                ls="-" if has_val else "--", label=uid)
        if "selected" in h and h["selected"].any():
            best = h.loc[h["selected"].astype(bool), "epoch"].iloc[0]
            a1.plot([best], [h.loc[h.epoch == best, "val_auc" if has_val else "train_auc"].iloc[0]],
                    "o", color=c, ms=4)
    a0.set_xlabel("epoch")
    a0.set_ylabel("training loss")
    a1.set_xlabel("epoch")
    a1.set_ylabel("AUC (patients): validation, or training when dashed")
    a1.set_ylim(0, 1.02)
    a1.legend(frameon=False, fontsize=7, ncol=2)
    return fig


def fold_spread_figure(unit_patients: pd.DataFrame, sequence: str) -> Figure:
    """AUC of each fold model on its held-out fold and on the test set (one dot per unit,
    coloured by repeat; bar: mean with SD)."""
    import seaborn as sns

    from ..stats import auc

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
    ax.set_xlabel("")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{sequence}: one dot per fold model (bar: mean ± SD)")
    return fig


def confusion_matrix_figure(tp: int, fp: int, fn: int, tn: int, title: str = "") -> Figure:
    fig = Figure(figsize=(2.6, 2.4), layout="constrained")
    ax = fig.subplots()
    m = np.array([[tn, fp], [fn, tp]])
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > m.max() / 2 else "black")
    ax.set_xticks([0, 1], ["pred non-ALNM", "pred ALNM"], fontsize=8)
    ax.set_yticks([0, 1], ["non-ALNM", "ALNM"], fontsize=8)
    ax.set_title(title, fontsize=9)
    return fig


def heatmap_gallery(crops: np.ndarray, heatmaps: np.ndarray, titles: Sequence[str],
                    *, ncols: int = 6) -> Figure:
    """Crops with Grad-CAM heatmaps overlaid."""
    return crop_gallery(crops, titles, ncols=ncols, heatmaps=heatmaps, cell=(1.7, 1.9))


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], title: str = "") -> Figure:
    """ROC curves: name -> (fpr, tpr, auc)."""
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.subplots()
    for (name, (fpr, tpr, a)), c in zip(curves.items(), MODEL_COLORS):
        ax.plot(fpr, tpr, color=c, lw=1.8, label=f"{name} (AUC {a:.3f})", drawstyle="steps-post")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return fig


def reliability_figure(tables: dict[str, pd.DataFrame]) -> Figure:
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.subplots()
    for (name, t), c in zip(tables.items(), MODEL_COLORS):
        ax.errorbar(t["mean_predicted"], t["observed"],
                    yerr=[t["observed"] - t["low"], t["high"] - t["observed"]],
                    marker="o", color=c, capsize=2, lw=1, label=name)
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=0.8)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed ALNM rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, frameon=False)
    return fig


def decision_curve_figure(curves: dict[str, pd.DataFrame]) -> Figure:
    """Net benefit curves: name -> ``threshold, net_benefit, treat_all, treat_none``."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    first = next(iter(curves.values()))
    for (name, d), c in zip(curves.items(), MODEL_COLORS):
        ax.plot(d["threshold"], d["net_benefit"], color=c, label=name)
    ax.plot(first["threshold"], first["treat_all"], color="black", lw=1, label="treat all")
    ax.plot(first["threshold"], first["treat_none"], color="grey", lw=1, ls="--", label="treat none")
    prev = first["treat_all"].iloc[0] + 0.0
    ax.set_ylim(min(-0.05, -0.1 * abs(prev)), max(0.05, first["treat_all"].max() * 1.15 + 0.02))
    ax.set_xlabel("threshold probability")
    ax.set_ylabel("net benefit")
    ax.legend(fontsize=8, frameon=False)
    return fig


def roc_panels(panels: dict[str, dict[str, tuple[np.ndarray, np.ndarray, float]]]) -> Figure:
    """Small multiples of ROC curves: panel title -> (name -> (fpr, tpr, auc))."""
    n = len(panels)
    fig = Figure(figsize=(3.6 * n, 3.9), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (title, curves) in zip(axes, panels.items()):
        for (name, (fpr, tpr, a)), c in zip(curves.items(), MODEL_COLORS):
            ax.plot(fpr, tpr, color=c, lw=1.6, label=f"{name} ({a:.3f})", drawstyle="steps-post")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax.set_aspect("equal")
        ax.set_xlabel("1 - specificity", fontsize=8)
        ax.set_ylabel("sensitivity", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.legend(loc="lower right", fontsize=7, frameon=False)
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


def nomogram_figure(points: pd.DataFrame) -> Figure:
    """A points nomogram (logistic model): one axis per predictor over its development range,
    a total-points axis and the predicted probability under it.

    Args:
        points: :func:`alnm_core.radiomics_models.nomogram_points` (with its ``attrs``).
    """
    n = len(points)
    fig = Figure(figsize=(8, 0.55 * (n + 3) + 0.6), layout="constrained")
    ax = fig.subplots()
    rows = ["Points"] + list(points.label) + ["Total points", "P(ALNM)"]
    y = {name: -i for i, name in enumerate(rows)}

    def axis_line(yv, ticks, labels):
        ax.plot([min(ticks), max(ticks)], [yv, yv], color="black", lw=0.8)
        for t, lab in zip(ticks, labels):
            ax.plot([t, t], [yv, yv + 0.12], color="black", lw=0.8)
            ax.text(t, yv + 0.18, lab, ha="center", va="bottom", fontsize=7)

    axis_line(y["Points"], np.linspace(0, 100, 11), [f"{v:.0f}" for v in np.linspace(0, 100, 11)])
    for _, r in points.iterrows():
        lo, hi = float(r.x_low), float(r.x_high)
        binary = set(np.round([lo, hi], 6)) <= {0.0, 1.0}
        xs = np.array([0.0, 1.0]) if binary else np.linspace(lo, hi, 5)
        pts = r.points_low + (xs - lo) * r.points_per_unit
        labels = ["no", "yes"] if binary else [f"{v:.3g}" for v in xs]
        axis_line(y[r.label], pts, labels)
    total_max = float(np.maximum(points.points_low, points.points_high).sum())
    tt = np.linspace(0, total_max, 9)
    scale = 100.0 / total_max if total_max > 0 else 1.0
    axis_line(y["Total points"], tt * scale, [f"{v:.0f}" for v in tt])
    lp = points.attrs["lp_at_zero"] + tt / points.attrs["points_per_lp"]
    probs = [p for p in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
             if lp.min() <= np.log(p / (1 - p)) <= lp.max()]
    if probs:
        at = [(np.log(p / (1 - p)) - points.attrs["lp_at_zero"]) * points.attrs["points_per_lp"] * scale
              for p in probs]
        axis_line(y["P(ALNM)"], at, [f"{p:g}" for p in probs])
    ax.set_yticks(list(y.values()), rows, fontsize=8)
    ax.set_ylim(-len(rows) + 0.4, 0.8)
    ax.set_xlim(-5, 105)
    ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    return fig
