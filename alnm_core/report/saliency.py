"""Saliency figures for predictions made with a model bundle (``alnm predict``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..bundle import Bundle, Prediction


#: the PNGs' resolution: a 2.6-inch panel is about 390 pixels
DPI = 150
PANEL_IN = 2.6


def gradcam_png(crop: np.ndarray, heatmap: np.ndarray, title: str, path: Path) -> Path:
    """Write one case's Grad-CAM PNG: the crop beside the crop with its heatmap overlaid, and a
    colour bar saying what the colours mean (about 800 x 580 pixels)."""
    from .gallery import heatmap_gallery

    fig = heatmap_gallery(crop[None], heatmap[None], [title], ncols=1, panel_in=PANEL_IN)
    fig.savefig(path, dpi=DPI)
    return path


def gradcam_figures(bundle: Bundle, pred: Prediction, out_dir: Path) -> list[Path]:
    """One PNG per patient and sequence (:func:`gradcam_png`): the largest tumour slice's crop
    and its Grad-CAM from the sequence's first unit."""
    import torch

    from ..gradcam import gradcam
    from ..models import load_network

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    first = {}
    for mid, info in bundle.models.items():  # the first slice-vote model of each sequence
        if info.get("family", "slice_vote") == "slice_vote":
            first.setdefault(info["sequence"], mid)
    for seq, crops in pred.crops.items():
        if seq not in first:
            continue
        mid = first[seq]
        model = load_network(bundle.cfg.train, bundle.unit_weights(mid)[0])
        for pid in dict.fromkeys(crops.patient_id):
            rows = np.flatnonzero(crops.patient_id == pid)
            k = int(rows[np.argmax(crops.area_mm2[rows])])
            x = torch.from_numpy(crops.crops[[k]][:, None].astype(np.float32))
            p = float(pred.patients.set_index("patient_id").loc[pid, mid])
            heat = gradcam(model, x)[0]
            title = f"{pid} · {seq} model: P(ALNM) = {p:.2f}"
            written.append(gradcam_png(crops.crops[k], heat, title, out_dir / f"{pid}_{seq}_gradcam.png"))
    return written
