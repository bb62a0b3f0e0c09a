"""torchvision ResNet builders with a two-class head and optional ImageNet weights.

Pretrained weights come only from places the user controls: a local ``.pth`` file
(``train.weights_path``), torchvision's cache (``$TORCH_HOME/hub/checkpoints``), or a download
where the network allows. Tests and the demo use random initialisation and never touch the
network. When weights cannot be had, :class:`WeightsUnavailable` says exactly what to do.

The network a sequence's model trains is :func:`make_network`: an :class:`InputAdapter` (the
grayscale crop in [0, 1] repeated to the channels the ResNet expects and standardised) followed
by the ResNet. :func:`load_network` rebuilds it from a saved checkpoint, weights only.

Example:
    >>> m = build_model("resnet18")
    >>> m.fc.out_features
    2
"""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

from .config import TrainConfig

ARCHS = ("resnet18", "resnet34", "resnet50")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsUnavailable(RuntimeError):
    """ImageNet weights were asked for but are neither on disk nor downloadable."""


class CheckpointError(ValueError):
    """A weights file that cannot be loaded; the message names the file and why, never how to
    load it unsafely."""


def load_state(path: str | Path, *, map_location: str = "cpu") -> dict:
    """A state dict (tensors only) from ``path``, loaded with ``weights_only=True``.

    A pickle holding other Python objects is refused (loading it could run its code), and so is
    a file that is not a PyTorch checkpoint; the error names the file. PyTorch's own message
    suggests ``weights_only=False``, which would run such code: it is not passed on.

    Raises:
        CheckpointError: naming the file.
    """
    import pickle

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found (or not a regular file)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        why = ("it holds Python objects other than tensors, which alnm never loads (loading them "
               "could run code)" if "unsupported global" in str(exc).lower() else
               "not a state dict of tensors alnm can load (a pickle of other objects, a damaged "
               "file or another kind of file; such a file is never loaded, since loading it could "
               "run code)")
        raise CheckpointError(f"{path}: refused: {why}") from None
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, KeyError, IndexError) as exc:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (damaged, truncated or another kind "
                              f"of file: {type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CheckpointError(f"{path}: not a state dict of named tensors")
    return state


def _weights_enum(arch: str):
    import torchvision.models as tvm

    return {"resnet18": tvm.ResNet18_Weights.IMAGENET1K_V1,
            "resnet34": tvm.ResNet34_Weights.IMAGENET1K_V1,
            "resnet50": tvm.ResNet50_Weights.IMAGENET1K_V2}[arch]


def cached_weights_path(arch: str) -> Path:
    """Where torchvision keeps (or would keep) the ImageNet checkpoint of ``arch``."""
    url = _weights_enum(arch).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def imagenet_state_dict(arch: str, weights_path: str | Path | None = None) -> dict:
    """ImageNet state dict from a local file, torchvision's cache, or a download.

    Raises:
        WeightsUnavailable: with the file name, the URL and the two ways to provide it.
    """
    if weights_path:
        p = Path(weights_path)
        if not p.is_file():
            raise WeightsUnavailable(f"train.weights_path={p} does not exist")
        return load_state(p)
    cached = cached_weights_path(arch)
    if cached.is_file():
        return load_state(cached)
    w = _weights_enum(arch)
    try:
        return w.get_state_dict(progress=False)
    except Exception as exc:  # URLError, SSL, timeouts...: all mean "not reachable"
        raise WeightsUnavailable(
            f"ImageNet weights for {arch} are not on this machine and could not be downloaded "
            f"({type(exc).__name__}). Either copy {w.url.rsplit('/', 1)[-1]} (from {w.url}) to "
            f"{cached}, or set train.weights_path=/path/to/that/file, or train from scratch "
            "with train.pretrained=false."
        ) from exc


def build_model(arch: str = "resnet18", *, pretrained: bool = False,
                weights_path: str | Path | None = None, in_channels: int = 3,
                num_classes: int = 2) -> nn.Module:
    """A torchvision ResNet with a ``num_classes`` head.

    Args:
        arch: ``resnet18``, ``resnet34`` or ``resnet50`` (the paper's).
        pretrained: start from ImageNet weights (see :func:`imagenet_state_dict`).
        weights_path: local ImageNet checkpoint (implies ``pretrained``).
        in_channels: 3 (grayscale crop repeated, so ImageNet filters apply) or 1 (first
            convolution's ImageNet filters summed over colour).
        num_classes: output classes (2: non-ALNM, ALNM, read through softmax as the paper).
    """
    import torchvision.models as tvm

    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    if in_channels not in (1, 3):
        raise ValueError("in_channels must be 1 or 3")
    model = getattr(tvm, arch)(weights=None)
    if pretrained or weights_path:
        model.load_state_dict(imagenet_state_dict(arch, weights_path))
    if in_channels == 1:
        old = model.conv1
        new = nn.Conv2d(1, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
        with torch.no_grad():
            new.weight.copy_(old.weight.sum(dim=1, keepdim=True))
        model.conv1 = new
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


class InputAdapter(nn.Module):
    """Grayscale [0, 1] crop -> the network's input (repeat to 3 channels, standardise)."""

    def __init__(self, in_channels: int, pretrained: bool):
        super().__init__()
        self.in_channels = in_channels
        if pretrained and in_channels == 3:
            mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        else:
            mean, std = torch.full((in_channels,), 0.5), torch.full((in_channels,), 0.25)
        self.register_buffer("mean", mean.view(1, -1, 1, 1))
        self.register_buffer("std", std.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std


def make_network(cfg: TrainConfig) -> nn.Module:
    """The trainable network of one sequence: input adapter + ResNet (random or ImageNet init)."""
    return nn.Sequential(InputAdapter(cfg.in_channels, cfg.pretrained or bool(cfg.weights_path)),
                         build_model(cfg.arch, pretrained=cfg.pretrained,
                                     weights_path=cfg.weights_path, in_channels=cfg.in_channels))


def load_network(cfg: TrainConfig, path: str | Path, device: str = "cpu") -> nn.Module:
    """The network saved in ``checkpoint.pt`` (weights only, ``weights_only=True``), in eval mode.

    The input adapter's standardisation follows ``cfg``'s initialisation (ImageNet statistics
    when it was ImageNet-initialised); no ImageNet weights are loaded, the checkpoint has them all.

    Raises:
        CheckpointError: naming the file: not a checkpoint, a pickle of other objects, or
            tensors of another network.
    """
    shell = replace(cfg, pretrained=False, weights_path=None)
    model = nn.Sequential(InputAdapter(cfg.in_channels, cfg.pretrained or bool(cfg.weights_path)),
                          build_model(shell.arch, in_channels=shell.in_channels))
    state = load_state(path, map_location=device)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: its tensors do not fit a {cfg.arch} network with "
                              f"{cfg.in_channels} input channel(s) ({str(exc).splitlines()[0]})") from None
    return model.eval()


def trajectory_settings(cfg: TrainConfig) -> dict:
    """The training settings that shape the sequence of weights, epoch by epoch.

    ``epochs`` is left out (more epochs continue the same trajectory), and so are settings that
    change where or how fast it runs, or what is kept of it, but not the trajectory (``device``,
    ``num_threads``, ``keep_resume_state``, ``checkpoint_dtype``), and ``models`` (which model
    kinds are trained does not change how one of them trains).
    """
    d = asdict(cfg)
    for k in ("epochs", "device", "num_threads", "keep_resume_state", "checkpoint_dtype", "models"):
        d.pop(k)
    return d
