"""Training one attention-MIL unit (one sequence, one training unit): the contract of
:func:`alnm_core.training.train_unit`, with patients as bags (:mod:`alnm_core.mil`).

Same roles (``train`` fitted, ``val`` checkpoint choice and never fitted, any other role
predicted only), same seeded determinism, same resume state after every epoch (an interrupted
unit resumes where it stopped and ends with the same predictions as an uninterrupted one), same
float16 checkpoint from which every prediction is made, crops resident on the training device
and augmented there. What differs:

* one optimisation sample is a patient: per epoch the training bags are shuffled, each bag
  larger than ``mil.max_slices`` keeps a fresh random subset of its slices, and whole bags are
  packed into a step until the next would pass ``train.batch_size`` crops;
* ``train.class_weighting=balanced`` weights the loss by inverse class frequency of patients;
* the unit returns patient probabilities directly (no slice aggregation) and the slice weights
  of every predicted patient, computed over all of its slices.

Example:
    >>> res = train_mil_unit(crops, roles, cfg.train, cfg.mil, files, seed=42)  # doctest: +SKIP
    >>> res.attention.groupby("patient_id").weight.sum().round(6).unique()      # doctest: +SKIP
    array([1.])
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from .config import MilConfig, TrainConfig
from .mil import Bags, MilNetwork, attention_frame, make_bags, pack_batches, predict_bags
from .models import trajectory_settings
from .roi import SequenceCrops
from .stats import auc as _auc
from .storage import write_csv
from .training import (CHECKPOINT_VERSION, CropSet, TrainingError, UnitFiles, _autocast,
                       _to_device_layout, augment, resolve_device, save_torch, set_determinism,
                       split_crops, stored_weights)

MODEL_KIND = "attention_mil"


@dataclass
class RoleBags:
    """One role's crops (on the device) and its bags."""

    crops: CropSet
    bags: Bags


def role_bags(crops: SequenceCrops, roles: pd.DataFrame, device: torch.device,
              excluded: set[str] = frozenset()) -> dict[str, RoleBags]:
    """The roles' crops (:func:`alnm_core.training.split_crops`: same checks, same errors)
    grouped into one bag per patient."""
    out = {}
    for role, cs in split_crops(crops, roles, device, excluded).items():
        out[role] = RoleBags(cs, make_bags(cs.patient_id, cs.slice_index, cs.y.cpu().numpy()))
    return out


def mil_trajectory_key(cfg: TrainConfig, mil: MilConfig, crops: SequenceCrops,
                       roles: pd.DataFrame, seed: int) -> str:
    """What a MIL resume state must match: trajectory settings, ``mil.*``, crops, roles, seed."""
    h = hashlib.sha256()
    h.update(json.dumps({"kind": MODEL_KIND, "cfg": trajectory_settings(cfg), "mil": asdict(mil),
                         "seed": seed, "v": CHECKPOINT_VERSION}, sort_keys=True).encode())
    h.update(crops.key.encode())
    h.update(roles.to_csv(index=False).encode())
    return h.hexdigest()[:24]


@dataclass
class _MilFit:
    model: MilNetwork
    opt: torch.optim.Optimizer
    loss_fn: nn.Module
    gen: torch.Generator
    history: list[dict] = field(default_factory=list)
    best_state: dict | None = None
    best_auc: float = -math.inf
    best_epoch: int = 0
    epoch: int = 0


def _new_fit(cfg: TrainConfig, mil: MilConfig, labels: np.ndarray, device: torch.device,
             seed: int) -> _MilFit:
    model = MilNetwork(cfg, mil).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    weight = None
    if cfg.class_weighting == "balanced":
        counts = torch.bincount(torch.from_numpy(labels), minlength=2).float()
        weight = (counts.sum() / (2 * counts)).to(device)
    return _MilFit(model, opt, nn.CrossEntropyLoss(weight=weight), torch.Generator().manual_seed(seed))


def _save_resume(fit: _MilFit, key: str, path: Path) -> None:
    state = {"key": key, "epoch": fit.epoch, "model": fit.model.state_dict(),
             "opt": fit.opt.state_dict(), "gen": fit.gen.get_state(),
             "torch_rng": torch.get_rng_state(), "history": fit.history,
             "best_auc": fit.best_auc, "best_epoch": fit.best_epoch, "best_state": fit.best_state}
    save_torch(state, path, what="the resume state (last.pt)")


def _try_resume(fit: _MilFit, key: str, path: Path, device: torch.device,
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


def _draw_members(bags: Bags, max_slices: int, gen: torch.Generator) -> list[np.ndarray]:
    """Each bag's crop rows for this epoch: all, or a fresh random ``max_slices`` of them (in
    slice order)."""
    out = []
    for m in bags.members:
        if max_slices and len(m) > max_slices:
            pick = torch.randperm(len(m), generator=gen)[:max_slices].sort().values.numpy()
            m = m[pick]
        out.append(m)
    return out


def _oom(sequence: str, bs: int) -> TrainingError:
    return TrainingError(f"{sequence}: out of memory at {bs} crops per step; lower "
                         "train.batch_size, mil.max_slices or roi.size")


def _train_epoch(fit: _MilFit, data: RoleBags, cfg: TrainConfig, mil: MilConfig,
                 device: torch.device, epoch: int, sequence: str) -> tuple[float, float, int, int]:
    """One pass over the training bags: mean loss, patient-level AUC of what was seen, bags and
    crops trained on."""
    fit.model.train()
    bags, x, y = data.bags, data.crops.x, torch.from_numpy(data.bags.label).to(device)
    order = torch.randperm(len(bags), generator=fit.gen).tolist()
    members = _draw_members(bags, mil.max_slices, fit.gen)
    sizes = np.array([len(m) for m in members])
    losses, seen_p, seen_y, n_crops = [], [], [], 0
    try:
        for batch in pack_batches(order, sizes, cfg.batch_size):
            idx = torch.from_numpy(np.concatenate([members[b] for b in batch])).to(device)
            xb = augment(x[idx], fit.gen) if cfg.augment else x[idx]
            lengths = torch.from_numpy(sizes[batch])
            yb = y[torch.tensor(batch, device=device)]
            with _autocast(device):
                logits, _ = fit.model(_to_device_layout(xb, device), lengths)
                loss = fit.loss_fn(logits.float(), yb)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"{sequence}: loss became {loss.item()} at epoch {epoch}; lower "
                    f"train.lr (now {cfg.lr:g}) or check the crops for constant images")
            fit.opt.zero_grad(set_to_none=True)
            loss.backward()
            fit.opt.step()
            losses.append(loss.item())
            seen_p.append(torch.softmax(logits.detach().float(), 1)[:, 1].cpu().numpy())
            seen_y.append(yb.cpu().numpy())
            n_crops += int(idx.numel())
    except torch.cuda.OutOfMemoryError as exc:  # pragma: no cover - needs a GPU
        raise _oom(sequence, cfg.batch_size) from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise _oom(sequence, cfg.batch_size) from exc
        raise
    yy, pp = np.concatenate(seen_y), np.concatenate(seen_p)
    tr_auc = _auc(yy, pp) if len(set(yy.tolist())) == 2 else float("nan")
    return float(np.mean(losses)), tr_auc, len(bags), n_crops


def _score(data: RoleBags, prob: np.ndarray) -> tuple[float, float]:
    """Patient-level AUC and cross-entropy of ``prob`` against the bags' labels."""
    y = data.bags.label
    p = np.clip(prob, 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return (_auc(y, prob) if len(set(y.tolist())) == 2 else float("nan")), loss


@dataclass
class MilResult:
    """What one MIL training unit produced."""

    history: pd.DataFrame
    patients: pd.DataFrame  # patient_id, split (role), label, prob, n_slices
    attention: pd.DataFrame  # patient_id, split (role), slice_index, weight
    best_epoch: int
    seconds: float
    device: str
    patients_per_s: float
    slices_per_s: float
    resumed_from: int = 0
    threads: int = 0


def train_mil_unit(
    crops: SequenceCrops,
    roles: pd.DataFrame,
    cfg: TrainConfig,
    mil: MilConfig,
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
) -> MilResult:
    """Train one attention-MIL network, select on ``val``, predict the predicted roles.

    Writes ``files.checkpoint`` (selected weights, ``train.checkpoint_dtype``),
    ``files.history`` and, while training, ``files.resume_state``. Returns patient predictions
    and slice weights; the caller writes them.

    Args:
        crops: the sequence's crops (``artifacts/roi/<SEQ>.npz``).
        roles: ``patient_id, label, role`` (``split`` accepted for ``role``).
        cfg: ``train.*`` (backbone, optimisation, selection, device).
        mil: ``mil.*`` (pooling, attention size, dropout, slices per training bag).
        files: where to write.
        seed: unit seed (same seed + same device -> same predictions).
        excluded: patients to leave out (listed exclusions).
        progress: called with one line per epoch.
        stop_after_epoch: stop (as if interrupted) after this epoch; for resume tests.
        predict_roles: roles predicted after training (default: every role; ``()``: none).
        after_epoch: called with the epoch number once its resume state is saved.
        on_epoch: called with the epoch's history row (``epoch, train_loss, train_auc,
            val_loss, val_auc, seconds``) once its resume state is saved; an exception it
            raises (e.g. a pruned search trial) stops the unit.
        write_resume_state: False: neither read nor write ``files.resume_state`` (a unit that
            is never resumed, e.g. a search trial: saves writing the model and optimiser state
            every epoch).

    Raises:
        TrainingError: a role with one class, NaN loss, out of memory - with what to change.
    """
    say = progress or (lambda s: None)
    if cfg.selection == "best_val_auc" and "val" not in set(roles.get("role", roles.get("split"))):
        raise TrainingError(f"{crops.sequence}: train.selection=best_val_auc needs validation "
                            "patients (role val); none were given")
    device = resolve_device(cfg.device)
    if device.type == "cpu" and cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    set_determinism(seed)
    data = role_bags(crops, roles, device, excluded)
    fit = _new_fit(cfg, mil, data["train"].bags.label, device, seed)
    key = mil_trajectory_key(cfg, mil, crops, roles, seed)
    if write_resume_state:
        _try_resume(fit, key, files.resume_state, device, say)
    resumed_from = fit.epoch
    chunk = max(cfg.batch_size, 64)
    t_train, n_bags, n_crops = 0.0, 0, 0
    t_start = time.time()
    for epoch in range(fit.epoch + 1, cfg.epochs + 1):
        t0 = time.time()
        tr_loss, tr_auc, b, c = _train_epoch(fit, data["train"], cfg, mil, device, epoch, crops.sequence)
        t_train += time.time() - t0
        n_bags, n_crops = n_bags + b, n_crops + c
        if "val" in data:
            va_auc, va_loss = _score(data["val"], predict_bags(fit.model, data["val"].crops.x,
                                                               data["val"].bags, chunk=chunk,
                                                               device=device)[0])
        else:
            va_auc, va_loss = float("nan"), float("nan")
        secs = time.time() - t0
        row = dict(epoch=epoch, train_loss=tr_loss, train_auc=tr_auc, val_loss=va_loss,
                   val_auc=va_auc, seconds=round(secs, 3))
        fit.history.append(row)
        if va_auc > fit.best_auc + 1e-12 if cfg.selection == "best_val_auc" else True:
            fit.best_auc, fit.best_epoch = va_auc, epoch
            fit.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in fit.model.state_dict().items()})
        fit.epoch = epoch
        left = (cfg.epochs - epoch) * np.mean([h["seconds"] for h in fit.history[-3:]])
        val = f"val AUC {va_auc:.3f}, " if "val" in data else ""
        say(f"{crops.sequence} MIL epoch {epoch}/{cfg.epochs}: loss {tr_loss:.3f}, "
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
    patients, attention = [], []
    for role, rb in data.items():
        if predict_roles is not None and role not in predict_roles:
            continue
        prob, weights = predict_bags(fit.model, rb.crops.x, rb.bags, chunk=chunk, device=device)
        patients.append(pd.DataFrame({"patient_id": rb.bags.patient_id, "split": role,
                                      "label": rb.bags.label, "prob": prob,
                                      "n_slices": rb.bags.sizes}))
        attention.append(attention_frame(rb.bags, weights, role))
    cols_p = ["patient_id", "split", "label", "prob", "n_slices"]
    cols_a = ["patient_id", "split", "slice_index", "weight"]
    if not cfg.keep_resume_state:
        files.resume_state.unlink(missing_ok=True)
    return MilResult(hist,
                     pd.concat(patients, ignore_index=True) if patients else pd.DataFrame(columns=cols_p),
                     pd.concat(attention, ignore_index=True) if attention else pd.DataFrame(columns=cols_a),
                     fit.best_epoch, seconds, str(device),
                     n_bags / t_train if t_train > 0 and n_bags else float("nan"),
                     n_crops / t_train if t_train > 0 and n_crops else float("nan"),
                     resumed_from=resumed_from, threads=torch.get_num_threads())
