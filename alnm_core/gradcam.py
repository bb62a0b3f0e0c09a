"""Grad-CAM saliency for a sequence's network (captum's LayerGradCam on the last ResNet stage).

Example:
    >>> heat = gradcam(model, crops)          # doctest: +SKIP
    >>> heat.shape == crops.shape[:1] + crops.shape[2:]   # doctest: +SKIP
    True
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def gradcam(model: nn.Module, x: torch.Tensor, *, target: int = 1) -> np.ndarray:
    """Grad-CAM heatmaps in [0, 1].

    Args:
        model: the network from :func:`alnm_core.models.make_network` / ``load_network``.
        x: crops ``(n, 1, H, W)`` in [0, 1].
        target: class whose evidence is shown (1 = ALNM).

    Returns:
        ``(n, H, W)`` heatmaps, each scaled to [0, 1].
    """
    from captum.attr import LayerAttribution, LayerGradCam

    model.eval()
    layer = model[1].layer4
    cam = LayerGradCam(model, layer)
    with torch.enable_grad():
        attr = cam.attribute(x.requires_grad_(True), target=target, relu_attributions=True)
    up = LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    h = up.detach()[:, 0].cpu().numpy()
    mx = h.reshape(len(h), -1).max(axis=1)[:, None, None]
    return np.where(mx > 0, h / np.where(mx > 0, mx, 1), 0.0)
