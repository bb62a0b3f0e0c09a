"""ipywidgets viewers for JupyterLab. Imported only when a notebook runs with
``interactive=True``; reports use the static figures from :mod:`alnm_core.plots`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def slice_viewer(cohort: pd.DataFrame, cohort_dir: str | Path, sequences: tuple[str, ...],
                 roi_cfg=None):
    """Scroll the slices of any patient and sequence with the ROI outline overlaid and, given
    the run's ROI settings (``cfg.roi``), the crop box the CNN's crop is cut from."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from IPython.display import display

    from ..cohort import series_rule
    from ..imaging import read_image, read_mask
    from ..roi import bbox_2d, expand_box

    cohort_dir = Path(cohort_dir)
    cache: dict = {}

    def load(pid, seq):
        if (pid, seq) not in cache:
            row = cohort.set_index("patient_id").loc[pid]
            vol = read_image(cohort_dir / row[f"{seq}_image"], series=series_rule(row, seq))
            mask = read_mask(cohort_dir / row[f"{seq}_roi"], like=vol)
            arr = vol.array if vol.array.ndim == 3 else vol.array[-1 if vol.b_values else 2]
            cache[(pid, seq)] = (arr, mask, vol.spacing)
        return cache[(pid, seq)]

    pid_w = w.Dropdown(options=list(cohort.patient_id), description="patient")
    seq_w = w.ToggleButtons(options=list(sequences), description="sequence")
    z_w = w.IntSlider(0, 0, 1, description="slice")
    out = w.Output()

    def redraw(*_):
        arr, mask, sp = load(pid_w.value, seq_w.value)
        z_w.max = arr.shape[0] - 1
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(5, 5))
            ax.imshow(arr[z_w.value], cmap="gray", aspect=sp[1] / sp[2])
            m = mask[z_w.value]
            if m.any():
                ax.contour(m.astype(float), levels=[0.5], colors="r")
                if roi_cfg is not None:
                    r0, r1, c0, c1 = expand_box(bbox_2d(m), (sp[1], sp[2]), margin_mm=roi_cfg.margin_mm,
                                                keep_aspect=roi_cfg.keep_aspect)
                    ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False,
                                           edgecolor="#f2c12e", linewidth=1.5, linestyle="--"))
            ax.set_title(f"{pid_w.value} {seq_w.value} slice {z_w.value}/{arr.shape[0] - 1}"
                         + ("" if m.any() else " (no tumour)"))
            ax.axis("off")
            plt.show()

    def on_series(*_):
        arr, mask, _ = load(pid_w.value, seq_w.value)
        z_w.max = arr.shape[0] - 1
        z_w.value = int(np.argmax(mask.sum(axis=(1, 2))))
        redraw()

    pid_w.observe(on_series, "value")
    seq_w.observe(on_series, "value")
    z_w.observe(redraw, "value")
    on_series()
    display(w.VBox([w.HBox([pid_w, seq_w]), z_w, out]))


def threshold_explorer(predictions: dict[str, pd.DataFrame], frozen: dict[str, float] | None = None):
    """A threshold slider over each model's test predictions: the confusion matrix, accuracy,
    sensitivity, specificity, PPV and NPV (95% CIs as in Table 3) at the chosen threshold, and
    the predicted probabilities per class with the chosen and the frozen (Youden on the
    development predictions) thresholds marked.

    Args:
        predictions: model name -> frame with ``label`` (0/1) and ``prob``.
        frozen: model name -> its frozen threshold (drawn as a solid line; the slider starts there).
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import HTML, display

    from ..stats import diagnostic_metrics

    frozen = frozen or {}
    first = next(iter(predictions))
    model_w = w.Dropdown(options=list(predictions), description="model")
    thr_w = w.FloatSlider(value=round(float(frozen.get(first, 0.5)), 2), min=0.01, max=0.99, step=0.01,
                          description="threshold", continuous_update=False, readout_format=".2f")
    out = w.Output()

    def redraw(*_):
        d = predictions[model_w.value]
        y, p, t = d["label"].to_numpy().astype(int), d["prob"].to_numpy(float), thr_w.value
        pred = (p >= t).astype(int)
        m = diagnostic_metrics(y, pred)
        names = {"acc": "accuracy", "sen": "sensitivity", "spe": "specificity", "ppv": "PPV", "npv": "NPV"}
        tab = pd.DataFrame({"metric": list(names.values()),
                            "estimate (95% CI)": [f"{m[k].estimate:.3f} ({m[k].low:.3f}-{m[k].high:.3f})"
                                                  if np.isfinite(m[k].estimate) else "undefined (0 cases)"
                                                  for k in names]})
        cm = pd.DataFrame([[int(((y == 1) & (pred == 1)).sum()), int(((y == 1) & (pred == 0)).sum())],
                           [int(((y == 0) & (pred == 1)).sum()), int(((y == 0) & (pred == 0)).sum())]],
                          index=["ALNM (truth)", "no ALNM (truth)"],
                          columns=["predicted ALNM", "predicted no ALNM"])
        f = frozen.get(model_w.value)
        with out:
            out.clear_output(wait=True)
            head = f"<b>{model_w.value}</b> at threshold <b>{t:.2f}</b>"
            if f is not None:
                head += f" (frozen threshold {f:.3f})"
            # one output for the header and both tables: a page never shows the new threshold
            # beside the old (or a missing) confusion matrix while the output redraws
            display(HTML(f"<div class='alnm-threshold'>{head}</div>" + cm.to_html(classes="alnm-confusion")
                         + tab.to_html(index=False, classes="alnm-metrics")))
            fig, ax = plt.subplots(figsize=(6, 1.8))
            rng = np.random.default_rng(0)
            for lab, colour in ((0, "#4c72b0"), (1, "#dd8452")):
                sel = y == lab
                ax.scatter(p[sel], lab + rng.uniform(-0.15, 0.15, sel.sum()), s=14, color=colour)
            ax.axvline(t, color="k", linestyle="--", label=f"chosen {t:.2f}")
            if f is not None:
                ax.axvline(f, color="#c44e52", label=f"frozen {f:.3f}")
            ax.set(xlim=(0, 1), yticks=[0, 1], yticklabels=["no ALNM", "ALNM"], xlabel="predicted probability")
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
            fig.tight_layout()
            plt.show()

    model_w.observe(redraw, "value")
    thr_w.observe(redraw, "value")
    redraw()
    display(w.VBox([w.HBox([model_w, thr_w]), out]))
