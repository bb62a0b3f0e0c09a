"""Training one CNN (one sequence, one training unit): the loop, validation-only model
selection, resume, slice -> patient aggregation and predictions.

A *training unit* trains one network on the crops of one sequence. Which patients it trains
on, which it uses to choose its checkpoint and which it predicts is given by a ``roles`` table
(``patient_id, label, role``): role ``train`` (fitted), ``val`` (checkpoint choice; never
fitted) and any other role (predicted only, e.g. ``test`` or ``oof``). The step layer builds
that table from ``splits.csv`` (:mod:`alnm_core.run.steps`).

Design points:

* The unit's crops are tensors on the training device; batches are index slices and the
  augmentation (flips, transposition, gamma) runs on that device, so no data loader sits between
  the data and the GPU. On CUDA: bf16 autocast and channels-last.
* Model selection reads the ``val`` role only (best patient-level AUC, or the last epoch); the
  other roles are predicted once, after selection.
* The resume state is written after every epoch and keyed on what shapes the trajectory
  (:func:`alnm_core.models.trajectory_settings`, crops, roles, seed), not on ``epochs``: an
  interrupted unit resumes where it stopped, and a finished one whose resume state was kept
  continues when ``epochs`` is raised. Both end with the same predictions as an uninterrupted
  run. Once a unit has finished, the resume state is removed unless ``keep_resume_state``.

Example:
    >>> res = train_unit(crops, roles, cfg.train, files, seed=42)   # doctest: +SKIP
    >>> res.best_epoch                                               # doctest: +SKIP
    7
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from .aggregation import aggregate
from .config import TrainConfig
from .models import make_network, trajectory_settings
from .roi import SequenceCrops
from .stats import auc as _auc
from .storage import atomic_write_bytes, write_csv

CHECKPOINT_VERSION = 2
FIT_ROLES = ("train", "val")


class TrainingError(RuntimeError):
    """Training cannot go on; the message says what to change."""


class UnitFiles(NamedTuple):
    """Where a training unit writes (paths from :class:`alnm_core.run.paths.RunPaths`)."""

    checkpoint: Path
    resume_state: Path
    history: Path


# ----------------------------------------------------------------------------- device
def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("train.device=cuda but no CUDA device is visible; use train.device=auto")
    return torch.device(name)


def set_determinism(seed: int) -> None:
    """Seed Python, numpy and torch and ask torch for deterministic kernels."""
    import random

    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False


def _autocast(device: torch.device):
    """bf16 autocast on CUDA, nothing on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to_device_layout(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


# ----------------------------------------------------------------------------- data
@dataclass
class CropSet:
    """Crops of one role as device tensors plus their patient bookkeeping."""

    x: torch.Tensor  # (n, 1, H, W) float32 in [0, 1]
    y: torch.Tensor  # (n,) int64 (crop label = patient label)
    patient_id: np.ndarray
    slice_index: np.ndarray
    area_mm2: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])


def split_crops(crops: SequenceCrops, roles: pd.DataFrame, device: torch.device,
                excluded: set[str] = frozenset()) -> dict[str, CropSet]:
    """Group crops by the patients' roles (``train``, ``val``, then every predicted role).

    Args:
        crops: the sequence's crops.
        roles: ``patient_id, label`` and ``role`` (or ``split``, as in ``splits.csv``).
        device: where the tensors live.
        excluded: patients left out (listed exclusions).

    Raises:
        TrainingError: a patient without a role, a role without crops, or a fitted role
            (``train``/``val``) with crops of one class only.
    """
    col = "role" if "role" in roles.columns else "split"
    lab = roles.set_index("patient_id")
    keep = ~np.isin(crops.patient_id, list(excluded))
    missing = sorted(set(crops.patient_id[keep]) - set(lab.index))
    if missing:
        raise TrainingError(f"{crops.sequence}: crops of patients without a role: {missing[:5]} — "
                            "rerun the ROI step for this run")
    present = np.isin(crops.patient_id, lab.index) & keep
    part = np.full(len(crops.patient_id), "", dtype=object)
    label = np.zeros(len(crops.patient_id), dtype=np.int64)
    part[present] = lab.loc[crops.patient_id[present], col].to_numpy()
    label[present] = lab.loc[crops.patient_id[present], "label"].to_numpy().astype(np.int64)
    roles_present = set(lab[col])
    if "train" not in roles_present:
        raise TrainingError(f"{crops.sequence}: no patient has the train role")
    order = [r for r in FIT_ROLES if r in roles_present] + [r for r in dict.fromkeys(lab[col])
                                                            if r not in FIT_ROLES]
    out = {}
    for name in order:
        sel = (part == name) & present
        if not sel.any():
            raise TrainingError(f"{crops.sequence}: the {name} split has no crops")
        classes = set(label[sel].tolist())
        if name in FIT_ROLES and classes != {0, 1}:
            raise TrainingError(f"{crops.sequence}: the {name} split holds only class {classes}; "
                                "both classes are needed (larger cohort, or another split.seed)")
        x = torch.from_numpy(np.ascontiguousarray(crops.crops[sel], dtype=np.float32))[:, None]
        out[name] = CropSet(x.to(device), torch.from_numpy(label[sel]).to(device),
                            crops.patient_id[sel], crops.slice_index[sel], crops.area_mm2[sel])
    return out


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flips, transposition and a small gamma jitter, per sample, on device."""
    n = x.shape[0]
    dev = x.device
    r = torch.rand((n, 4), generator=gen, device="cpu").to(dev)
    x = torch.where((r[:, 0] < 0.5)[:, None, None, None], x.flip(-1), x)
    x = torch.where((r[:, 1] < 0.5)[:, None, None, None], x.flip(-2), x)
    if x.shape[-1] == x.shape[-2]:
        x = torch.where((r[:, 2] < 0.5)[:, None, None, None], x.transpose(-1, -2), x)
    gamma = (0.85 + 0.3 * r[:, 3])[:, None, None, None]
    return x.clamp(0, 1) ** gamma


# ----------------------------------------------------------------------------- prediction
@torch.no_grad()
def predict_probs(model: nn.Module, x: torch.Tensor, batch: int, device: torch.device) -> np.ndarray:
    """Softmax probability of class 1 for each crop (eval mode)."""
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch):
        with _autocast(device):
            logits = model(_to_device_layout(x[i:i + batch], device))
        out.append(torch.softmax(logits.float(), dim=1)[:, 1].cpu())
    return torch.cat(out).numpy().astype(np.float64)


def _slice_frame(cs: CropSet, role: str, prob: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": cs.patient_id, "split": role,
                         "label": cs.y.cpu().numpy(), "slice_index": cs.slice_index,
                         "area_mm2": cs.area_mm2, "prob": prob})


def _patient_auc(frame: pd.DataFrame, how: str) -> float:
    p = aggregate(frame, how)
    if p.label.nunique() < 2:
        return float("nan")
    return _auc(p.label.to_numpy(), p.prob.to_numpy())


# ----------------------------------------------------------------------------- resume
def trajectory_key(cfg: TrainConfig, crops: SequenceCrops, roles: pd.DataFrame, seed: int) -> str:
    """What a resume state must match to be continued: trajectory settings, crops, roles, seed."""
    h = hashlib.sha256()
    h.update(json.dumps({"cfg": trajectory_settings(cfg), "seed": seed, "v": CHECKPOINT_VERSION},
                        sort_keys=True).encode())
    h.update(crops.key.encode())
    h.update(roles.to_csv(index=False).encode())
    return h.hexdigest()[:24]


@dataclass
class _Fit:
    """Everything that changes while a unit trains (and is saved in the resume state)."""

    model: nn.Module
    opt: torch.optim.Optimizer
    loss_fn: nn.Module
    gen: torch.Generator
    history: list[dict] = field(default_factory=list)
    best_state: dict | None = None
    best_auc: float = -math.inf
    best_epoch: int = 0
    epoch: int = 0  # last finished epoch


def _new_fit(cfg: TrainConfig, y_train: torch.Tensor, device: torch.device, seed: int) -> _Fit:
    model = make_network(cfg).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    weight = None
    if cfg.class_weighting == "balanced":
        counts = torch.bincount(y_train, minlength=2).float()
        weight = (counts.sum() / (2 * counts)).to(device)
    return _Fit(model, opt, nn.CrossEntropyLoss(weight=weight), torch.Generator().manual_seed(seed))


def stored_weights(state: dict, dtype: str) -> dict:
    """The selected weights as saved: floating tensors in ``dtype`` (``float16`` or ``float32``)."""
    if dtype == "float32":
        return state
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def save_torch(obj, path: Path, *, what: str) -> None:
    """``torch.save`` to memory, then an atomic write: a full disk is a named StorageError
    (torch's own writer reports it as a bare RuntimeError)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue(), what=what)


def _save_resume(fit: _Fit, key: str, path: Path) -> None:
    state = {"key": key, "epoch": fit.epoch, "model": fit.model.state_dict(),
             "opt": fit.opt.state_dict(), "gen": fit.gen.get_state(),
             "torch_rng": torch.get_rng_state(), "history": fit.history,
             "best_auc": fit.best_auc, "best_epoch": fit.best_epoch, "best_state": fit.best_state}
    save_torch(state, path, what="the resume state (last.pt)")


def _try_resume(fit: _Fit, key: str, path: Path, device: torch.device,
                say: Callable[[str], None]) -> None:
    if not path.is_file():
        return
    ck = torch.load(path, map_location=device, weights_only=True)
    if ck.get("key") != key:
        say(f"{path.name} belongs to other settings or data: starting afresh")
        return
    fit.model.load_state_dict(ck["model"])
    fit.opt.load_state_dict(ck["opt"])
    fit.gen.set_state(ck["gen"])
    torch.set_rng_state(ck["torch_rng"])
    fit.history, fit.best_auc, fit.best_epoch = ck["history"], ck["best_auc"], ck["best_epoch"]
    fit.best_state, fit.epoch = ck["best_state"], ck["epoch"]
    say(f"resuming after epoch {fit.epoch} ({path.name})")


# ----------------------------------------------------------------------------- loop
def _train_epoch(fit: _Fit, data: CropSet, cfg: TrainConfig, device: torch.device, bs: int,
                 epoch: int, sequence: str) -> tuple[float, pd.DataFrame]:
    """One pass over the training crops; returns the mean loss and the predictions seen."""
    fit.model.train()
    n = len(data)
    perm = torch.randperm(n, generator=fit.gen).to(device)
    losses, seen_prob, seen_idx = [], [], []
    try:
        for i in range(0, n - (n % bs if n > bs else 0), bs):
            idx = perm[i:i + bs]
            xb = augment(data.x[idx], fit.gen) if cfg.augment else data.x[idx]
            with _autocast(device):
                logits = fit.model(_to_device_layout(xb, device))
                loss = fit.loss_fn(logits.float(), data.y[idx])
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"{sequence}: loss became {loss.item()} at epoch {epoch}; lower "
                    f"train.lr (now {cfg.lr:g}) or check the crops for constant images")
            fit.opt.zero_grad(set_to_none=True)
            loss.backward()
            fit.opt.step()
            losses.append(loss.item())
            seen_prob.append(torch.softmax(logits.detach().float(), 1)[:, 1].cpu())
            seen_idx.append(idx.cpu())
    except torch.cuda.OutOfMemoryError as exc:  # pragma: no cover - needs a GPU
        raise TrainingError(f"{sequence}: out of GPU memory at batch size {bs}; lower "
                            "train.batch_size or roi.size") from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise TrainingError(f"{sequence}: out of memory at batch size {bs}; lower "
                                "train.batch_size or roi.size") from exc
        raise
    frame = _slice_frame(data, "train", np.zeros(n))
    frame = frame.iloc[torch.cat(seen_idx).numpy()].assign(prob=torch.cat(seen_prob).numpy())
    return float(np.mean(losses)), frame


def _validate(fit: _Fit, data: CropSet, cfg: TrainConfig, device: torch.device,
              bs: int) -> tuple[float, float]:
    """Patient-level validation AUC and slice-level validation loss."""
    prob = predict_probs(fit.model, data.x, max(bs, 64), device)
    y = data.y.cpu().numpy()
    loss = float(nn.functional.binary_cross_entropy(
        torch.tensor(np.clip(prob, 1e-7, 1 - 1e-7)), torch.tensor(y, dtype=torch.float64)))
    return _patient_auc(_slice_frame(data, "val", prob), cfg.aggregation), loss


@dataclass
class TrainResult:
    """What one training unit produced."""

    history: pd.DataFrame
    slices: pd.DataFrame  # patient_id, split (role), label, slice_index, area_mm2, prob
    patients: pd.DataFrame  # patient_id, split (role), label, prob, n_slices
    best_epoch: int
    seconds: float
    device: str
    crops_per_s: float
    resumed_from: int = 0
    threads: int = 0
    cpu_isa: dict | None = None


def train_unit(
    crops: SequenceCrops,
    roles: pd.DataFrame,
    cfg: TrainConfig,
    files: UnitFiles,
    *,
    seed: int,
    excluded: set[str] = frozenset(),
    progress: Callable[[str], None] | None = None,
    stop_after_epoch: int | None = None,
    predict_roles: tuple[str, ...] | None = None,
    after_epoch: Callable[[int], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    write_resume_state: bool = True,
) -> TrainResult:
    """Train one network, select on ``val``, predict every role.

    Writes ``files.checkpoint`` (selected weights), ``files.history`` and, while training,
    ``files.resume_state``. Returns predictions at slice and patient level; the caller writes
    them.

    Args:
        crops: the sequence's crops (``artifacts/roi/<SEQ>.npz``).
        roles: ``patient_id, label, role`` (``split`` accepted for ``role``).
        cfg: training settings.
        files: where to write.
        seed: unit seed (same seed + same device -> same predictions).
        excluded: patients to leave out (listed exclusions).
        progress: called with one line per epoch.
        stop_after_epoch: stop (as if interrupted) after this epoch; for resume tests.
        predict_roles: roles predicted after training (default: every role).
        after_epoch: called with the epoch number once its resume state is saved (a
            caller's own bookkeeping; the Ray tests inject worker faults through it).
        on_epoch: called with the epoch's history row (``epoch, train_loss, train_auc,
            val_loss, val_auc, seconds``) once its resume state is saved; an exception it
            raises (e.g. a pruned search trial, :mod:`alnm_core.tune`) stops the unit.
        write_resume_state: False: neither read nor write ``files.resume_state`` (a unit that
            is never resumed, e.g. a search trial: saves writing the model and optimiser state
            every epoch).

    Raises:
        TrainingError: a role with one class, NaN loss, out of memory — with what to change.
    """
    say = progress or (lambda s: None)
    if cfg.selection == "best_val_auc" and "val" not in set(roles.get("role", roles.get("split"))):
        raise TrainingError(f"{crops.sequence}: train.selection=best_val_auc needs validation "
                            "patients (role val); none were given")
    from .numerics import pin_cpu_isa

    isa = pin_cpu_isa(cfg.cpu_isa)  # before the first convolution of a fresh process
    device = resolve_device(cfg.device)
    if device.type == "cpu" and cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    set_determinism(seed)
    data = split_crops(crops, roles, device, excluded)
    fit = _new_fit(cfg, data["train"].y, device, seed)
    key = trajectory_key(cfg, crops, roles, seed)
    if write_resume_state:
        _try_resume(fit, key, files.resume_state, device, say)
    resumed_from = fit.epoch
    bs = min(cfg.batch_size, len(data["train"]))
    t_start, trained = time.time(), 0
    for epoch in range(fit.epoch + 1, cfg.epochs + 1):
        t0 = time.time()
        train_loss, seen = _train_epoch(fit, data["train"], cfg, device, bs, epoch, crops.sequence)
        trained += len(seen)
        va_auc, va_loss = (_validate(fit, data["val"], cfg, device, bs) if "val" in data
                           else (float("nan"), float("nan")))
        secs = time.time() - t0
        row = dict(epoch=epoch, train_loss=train_loss, train_auc=_patient_auc(seen, cfg.aggregation),
                   val_loss=va_loss, val_auc=va_auc, seconds=round(secs, 3))
        fit.history.append(row)
        if va_auc > fit.best_auc + 1e-12 if cfg.selection == "best_val_auc" else True:
            fit.best_auc, fit.best_epoch = va_auc, epoch
            fit.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in fit.model.state_dict().items()})
        fit.epoch = epoch
        left = (cfg.epochs - epoch) * np.mean([h["seconds"] for h in fit.history[-3:]])
        val = f"val AUC {va_auc:.3f}, " if "val" in data else ""
        say(f"{crops.sequence} epoch {epoch}/{cfg.epochs}: loss {train_loss:.3f}, "
            f"{val}{secs:.1f} s, ~{left:.0f} s left")
        if write_resume_state:
            _save_resume(fit, key, files.resume_state)
        if after_epoch is not None:
            after_epoch(epoch)
        if on_epoch is not None:
            on_epoch(dict(row))
        if stop_after_epoch is not None and stop_after_epoch <= epoch < cfg.epochs:
            raise KeyboardInterrupt(f"stopped after epoch {epoch} (stop_after_epoch)")
    seconds = time.time() - t_start
    if fit.best_state is None:
        raise TrainingError(f"{crops.sequence}: no epoch was trained (train.epochs={cfg.epochs})")
    kept = stored_weights(fit.best_state, cfg.checkpoint_dtype)
    # predict with exactly what is saved (float16 weights are rounded first)
    fit.model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in kept.items()})
    save_torch(kept, files.checkpoint, what="the selected weights (checkpoint.pt)")
    hist = pd.DataFrame(fit.history)
    hist["selected"] = hist["epoch"] == fit.best_epoch
    write_csv(hist, files.history, what="the training history")
    slices = pd.concat([_slice_frame(cs, role, predict_probs(fit.model, cs.x, max(bs, 64), device))
                        for role, cs in data.items()
                        if predict_roles is None or role in predict_roles], ignore_index=True)
    if not cfg.keep_resume_state:
        files.resume_state.unlink(missing_ok=True)
    rate = trained / seconds if seconds > 0 and trained else float("nan")
    return TrainResult(hist, slices, aggregate(slices, cfg.aggregation), fit.best_epoch, seconds,
                       str(device), rate, resumed_from=resumed_from, threads=torch.get_num_threads(),
                       cpu_isa=isa)
