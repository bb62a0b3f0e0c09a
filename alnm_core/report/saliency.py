"""Saliency figures for predictions made with a model bundle (``alnm predict``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..bundle import Bundle, Prediction


def gradcam_figures(bundle: Bundle, pred: Prediction, out_dir: Path) -> list[Path]:
    """One PNG per patient and sequence: the largest tumour slice's crop with the Grad-CAM of the
    sequence's first unit overlaid."""
    import torch

    from ..gradcam import gradcam
    from ..models import load_network
    from .plots import heatmap_gallery

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    first = {}
    for mid, info in bundle.models.items():  # the first CNN model of each sequence
        first.setdefault(info["sequence"], mid)
    for seq, crops in pred.crops.items():
        mid = first[seq]
        model = load_network(bundle.cfg.train, bundle.unit_weights(mid)[0])
        for pid in dict.fromkeys(crops.patient_id):
            rows = np.flatnonzero(crops.patient_id == pid)
            k = int(rows[np.argmax(crops.area_mm2[rows])])
            x = torch.from_numpy(crops.crops[[k]][:, None].astype(np.float32))
            p = float(pred.patients.set_index("patient_id").loc[pid, mid])
            fig = heatmap_gallery(crops.crops[[k]], gradcam(model, x), [f"{pid} {seq} p={p:.2f}"], ncols=1)
            path = out_dir / f"{pid}_{seq}_gradcam.png"
            fig.savefig(path, dpi=110)
            written.append(path)
    return written
