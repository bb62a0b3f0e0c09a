"""ipywidgets viewers for JupyterLab. Imported only when a notebook runs with
``interactive=True``; reports use the static figures from :mod:`alnm_core.plots`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def slice_viewer(cohort: pd.DataFrame, cohort_dir: str | Path, sequences: tuple[str, ...]):
    """Scroll the slices of any patient and sequence with the ROI outline overlaid."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    from ..cohort import series_rule
    from ..imaging import read_image, read_mask

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
            if mask[z_w.value].any():
                ax.contour(mask[z_w.value].astype(float), levels=[0.5], colors="r")
            ax.set_title(f"{pid_w.value} {seq_w.value} slice {z_w.value}/{arr.shape[0] - 1}")
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


def threshold_explorer(predictions: dict[str, pd.DataFrame]):
    """A slider over the threshold that updates a model's confusion matrix and metrics."""
    import ipywidgets as w
    from IPython.display import display

    from ..stats import diagnostic_metrics

    model_w = w.Dropdown(options=list(predictions), description="model")
    thr_w = w.FloatSlider(value=0.5, min=0.01, max=0.99, step=0.01, description="threshold")
    out = w.Output()

    def redraw(*_):
        d = predictions[model_w.value]
        pred = (d["prob"].to_numpy() >= thr_w.value).astype(int)
        m = diagnostic_metrics(d["label"].to_numpy(), pred)
        tab = pd.DataFrame({k: [f"{v.estimate:.3f} ({v.low:.3f}-{v.high:.3f})"] for k, v in m.items()
                            if k in ("acc", "sen", "spe", "ppv", "npv")})
        cm = pd.crosstab(pd.Series(d["label"].to_numpy(), name="truth"),
                         pd.Series(pred, name="predicted"))
        with out:
            out.clear_output(wait=True)
            display(cm, tab)

    model_w.observe(redraw, "value")
    thr_w.observe(redraw, "value")
    redraw()
    display(w.VBox([w.HBox([model_w, thr_w]), out]))
