"""Attention multiple-instance learning (MIL): a patient's slices of one sequence as one bag.

The paper's model (``slice_vote``) classifies every tumour slice and aggregates the slice
probabilities afterwards (:mod:`alnm_core.aggregation`). Here (``attention_mil``) a patient's
ROI crops of one sequence are one *bag*: every crop goes through the same 2D ResNet as the slice
model (:func:`alnm_core.models.build_model`, its classification layer removed; random or
ImageNet initialisation as ``train.pretrained`` says, never a download unless asked), the slice
embeddings are pooled into one patient embedding, and one linear layer gives the patient's
two-class logits (softmax, as the slice model). Pooling (``mil.pooling``):

* ``gated_attention`` (Ilse, Tomczak & Welling 2018, eq. 9):
  ``a_k = w^T (tanh(V h_k) * sigmoid(U h_k))``, weights ``softmax(a)`` over the bag;
* ``attention`` (ibid., eq. 8): ``a_k = w^T tanh(V h_k)``;
* ``mean`` and ``max``: element-wise over the slice embeddings.

Every pooling returns weights over the bag's slices that sum to 1: the attention; ``1/n`` for
``mean``; for ``max``, the share of embedding dimensions whose maximum a slice supplies (ties
split). These are the "which slices mattered" artifact.

Bags of different sizes are batched without padding the images: the crops of several patients
go through the backbone as one batch of 2D images, and only the embeddings are padded, with a
mask, for pooling (padded slices get weight 0 exactly).

Why not MONAI's ``MILModel`` (``monai.networks.nets.MILModel``, read at MONAI ``dev``,
``monai/networks/nets/milmodel.py``): its ``forward`` takes a dense ``[B, N, C, H, W]`` tensor
and has no mask, so a batch of patients with different slice counts must be padded with images
that then receive attention (or enter the mean / max), or be trained one patient per step; it
does not return the attention weights (they are computed inside ``calc_head`` and discarded),
which this artifact needs; it has no gated attention; its attention layer is fixed at 2048
hidden units; and its default backbone is a torchvision ResNet50 with ``pretrained=True``, which
downloads weights at run time. With our own backbone (``backbone=<nn.Module>``,
``backbone_num_features=512``) MONAI would contribute the ~15 lines of its pooling head and
nothing else, for a dependency (and its release cadence) the rest of alnm does not use. The
pooling here is that head, with the mask, the weights and the gated variant.

Example:
    >>> import torch
    >>> from alnm_core.config import MilConfig, TrainConfig
    >>> net = MilNetwork(TrainConfig(), MilConfig()).eval()
    >>> logits, w = net(torch.rand(5, 1, 32, 32), torch.tensor([3, 2]))
    >>> tuple(logits.shape), w.sum(dim=1).round().tolist()
    ((2, 2), [1.0, 1.0])
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .config import MilConfig, TrainConfig
from .models import InputAdapter, build_model

#: what a MIL checkpoint needs besides its weights to be rebuilt (``alnm predict``)
MIL_NETWORK_KEYS = ("arch", "in_channels", "pretrained", "weights_path")


# ----------------------------------------------------------------------------- pooling
def pad_bags(feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenated slice embeddings ``(sum n_b, D)`` -> padded ``(B, N_max, D)`` and a mask.

    Example:
        >>> h, m = pad_bags(torch.arange(6.).view(3, 2), torch.tensor([2, 1]))
        >>> m.tolist()
        [[True, True], [True, False]]
    """
    sizes = [int(n) for n in lengths.tolist()]
    if any(n < 1 for n in sizes) or sum(sizes) != feats.shape[0]:
        raise ValueError(f"bag sizes {sizes} do not add up to {feats.shape[0]} slices (or a bag is empty)")
    padded = nn.utils.rnn.pad_sequence(list(torch.split(feats, sizes)), batch_first=True)
    mask = torch.arange(padded.shape[1], device=feats.device)[None, :] < lengths.to(feats.device)[:, None]
    return padded, mask


class BagPool(nn.Module):
    """Pool a padded bag of embeddings ``(B, N, D)`` with its mask into ``(B, D)`` and weights
    ``(B, N)`` (each row sums to 1 over the bag's slices, 0 on padding)."""

    def __init__(self, dim: int, pooling: str, hidden: int = 128):
        super().__init__()
        self.pooling = pooling
        if pooling in ("attention", "gated_attention"):
            self.V = nn.Linear(dim, hidden)
            self.w = nn.Linear(hidden, 1)
            if pooling == "gated_attention":
                self.U = nn.Linear(dim, hidden)
        elif pooling not in ("mean", "max"):
            raise ValueError(f"pooling must be gated_attention, attention, mean or max, got {pooling!r}")

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = mask.to(h.dtype)
        if self.pooling == "mean":
            w = m / m.sum(dim=1, keepdim=True)
            return (w[..., None] * h).sum(dim=1), w
        if self.pooling == "max":
            hm = h.masked_fill(~mask[..., None], float("-inf"))
            z = hm.max(dim=1).values  # (B, D)
            top = (hm == z[:, None, :]).to(h.dtype)  # which slices hold each dimension's max
            w = (top / top.sum(dim=1, keepdim=True)).mean(dim=2)
            return z, w
        a = torch.tanh(self.V(h))
        if self.pooling == "gated_attention":
            a = a * torch.sigmoid(self.U(h))
        score = self.w(a).squeeze(-1).float().masked_fill(~mask, float("-inf"))
        w = torch.softmax(score, dim=1).to(h.dtype)
        return (w[..., None] * h).sum(dim=1), w


# ----------------------------------------------------------------------------- network
class MilNetwork(nn.Module):
    """Input adapter + ResNet trunk (no classification layer) + bag pooling + two-class head.

    Args:
        cfg: ``train.*`` (arch, pretrained / weights_path, in_channels).
        mil: ``mil.*`` (pooling, attention_hidden, dropout).
    """

    def __init__(self, cfg: TrainConfig, mil: MilConfig):
        super().__init__()
        trunk = build_model(cfg.arch, pretrained=cfg.pretrained, weights_path=cfg.weights_path,
                            in_channels=cfg.in_channels)
        dim = trunk.fc.in_features
        trunk.fc = nn.Identity()
        self.adapter = InputAdapter(cfg.in_channels, cfg.pretrained or bool(cfg.weights_path))
        self.encoder = trunk
        self.pool = BagPool(dim, mil.pooling, mil.attention_hidden)
        self.dropout = nn.Dropout(mil.dropout)
        self.head = nn.Linear(dim, 2)
        self.dim = dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Crops ``(n, 1, H, W)`` in [0, 1] -> slice embeddings ``(n, D)``."""
        return self.encoder(self.adapter(x))

    def pool_bags(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slice embeddings of consecutive bags -> logits ``(B, 2)`` and weights ``(B, N_max)``."""
        h, mask = pad_bags(feats.float(), lengths)
        z, w = self.pool(h, mask)
        return self.head(self.dropout(z)), w

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Crops of ``len(lengths)`` bags, one bag after the other -> logits and weights."""
        return self.pool_bags(self.encode(x), lengths)


def make_mil_network(cfg: TrainConfig, mil: MilConfig) -> MilNetwork:
    """The trainable MIL network of one sequence (random or ImageNet-initialised trunk)."""
    return MilNetwork(cfg, mil)


def load_mil_network(cfg: TrainConfig, mil: MilConfig, path: str | Path,
                     device: str | torch.device = "cpu") -> MilNetwork:
    """The MIL network saved in ``checkpoint.pt`` (weights only), in eval mode.

    No ImageNet weights are loaded (the checkpoint holds every weight); the input adapter's
    standardisation follows ``cfg`` as in :func:`alnm_core.models.load_network`.
    """
    net = MilNetwork(replace(cfg, pretrained=False, weights_path=None), mil)
    net.adapter = InputAdapter(cfg.in_channels, cfg.pretrained or bool(cfg.weights_path))
    from .models import CheckpointError, load_state

    state = load_state(path, map_location=device)  # refuses anything but tensors, naming the file
    try:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: its tensors do not fit this attention-MIL network "
                              f"({str(exc).splitlines()[0]})") from None
    return net.to(device).eval()


def network_settings(cfg: TrainConfig, mil: MilConfig) -> dict:
    """What rebuilds a saved MIL network (for the bundle): the trunk keys of ``train`` and all
    of ``mil``."""
    return {"train": {k: getattr(cfg, k) for k in MIL_NETWORK_KEYS}, "mil": asdict(mil)}


# ----------------------------------------------------------------------------- bags
@dataclass
class Bags:
    """The patients of one role as bags: crop rows per patient, in slice order.

    Attributes:
        patient_id: ``(B,)`` patient of each bag (order of first appearance in the crops).
        label: ``(B,)`` patient label (0 / 1; -1 when unknown, e.g. for ``predict``).
        members: per bag, the rows of its crops in the crop array, sorted by slice index.
        slice_index: per bag, the slice index of each of those crops.
    """

    patient_id: np.ndarray
    label: np.ndarray
    members: list[np.ndarray]
    slice_index: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.members)

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(m) for m in self.members], dtype=np.int64)


def make_bags(patient_id: np.ndarray, slice_index: np.ndarray, label: np.ndarray | None = None) -> Bags:
    """Group crop rows into one bag per patient (patients in order of first appearance,
    slices ascending).

    Raises:
        ValueError: a patient whose crops carry different labels, or a slice index twice.

    Example:
        >>> b = make_bags(np.array(["a", "b", "a"]), np.array([5, 0, 4]))
        >>> b.patient_id.tolist(), [m.tolist() for m in b.members]
        (['a', 'b'], [[2, 0], [1]])
    """
    pid = np.asarray(patient_id).astype(str)
    sl = np.asarray(slice_index)
    lab = np.full(len(pid), -1, dtype=np.int64) if label is None else np.asarray(label, dtype=np.int64)
    ids, first = np.unique(pid, return_index=True)
    ids = ids[np.argsort(first)]
    members, slices, labels = [], [], []
    for p in ids:
        rows = np.flatnonzero(pid == p)
        rows = rows[np.argsort(sl[rows], kind="stable")]
        if len(np.unique(sl[rows])) != len(rows):
            raise ValueError(f"patient {p}: a slice index appears twice among its crops")
        if len(np.unique(lab[rows])) != 1:
            raise ValueError(f"patient {p}: its crops carry different labels")
        members.append(rows)
        slices.append(sl[rows])
        labels.append(int(lab[rows[0]]))
    return Bags(ids, np.array(labels, dtype=np.int64), members, slices)


def pack_batches(order: list[int], sizes: np.ndarray, max_crops: int) -> list[list[int]]:
    """Consecutive bags of ``order`` packed into batches of at most ``max_crops`` crops (a bag
    larger than that is a batch of its own); a last batch of a single crop joins the one before
    (batch norm needs two values per channel in training).

    Example:
        >>> pack_batches([0, 1, 2, 3], np.array([3, 2, 4, 1]), 5)
        [[0, 1], [2, 3]]
    """
    batches: list[list[int]] = []
    cur, n = [], 0
    for b in order:
        s = int(sizes[b])
        if cur and n + s > max_crops:
            batches.append(cur)
            cur, n = [], 0
        cur.append(b)
        n += s
    if cur:
        if n == 1 and batches:
            batches[-1].extend(cur)
        else:
            batches.append(cur)
    return batches


# ----------------------------------------------------------------------------- prediction
@torch.no_grad()
def predict_bags(model: MilNetwork, x: torch.Tensor, bags: Bags, *, chunk: int = 64,
                 device: torch.device | str = "cpu") -> tuple[np.ndarray, list[np.ndarray]]:
    """Class-1 probability and slice weights of every bag, with all of its slices (eval mode).

    The crops are encoded ``chunk`` at a time (each crop's embedding does not depend on the
    others in eval mode), then each bag is pooled over all of its slices.

    Returns:
        ``(prob (B,), weights)``: ``weights[b]`` in the order of ``bags.slice_index[b]``.
    """
    from .training import _autocast, _to_device_layout

    device = torch.device(device)
    model.eval()
    feats = []
    for i in range(0, x.shape[0], chunk):
        with _autocast(device):
            feats.append(model.encode(_to_device_layout(x[i:i + chunk].to(device), device)).float())
    feats = torch.cat(feats) if feats else torch.zeros(0, model.dim, device=device)
    probs, weights = [], []
    step = 256  # bags pooled at once (cheap: embeddings only)
    for j in range(0, len(bags), step):
        part = bags.members[j:j + step]
        idx = torch.from_numpy(np.concatenate(part)).to(feats.device)
        lengths = torch.tensor([len(m) for m in part])
        logits, w = model.pool_bags(feats[idx], lengths)
        probs.append(torch.softmax(logits.float(), dim=1)[:, 1].cpu())
        w = w.float().cpu().numpy()
        weights += [w[k, :len(m)].astype(np.float64) for k, m in enumerate(part)]
    prob = torch.cat(probs).numpy().astype(np.float64) if probs else np.zeros(0)
    return prob, weights


def attention_frame(bags: Bags, weights: list[np.ndarray], role: str | None = None) -> pd.DataFrame:
    """``patient_id, [split,] slice_index, weight``: one row per slice of every bag."""
    n = bags.sizes
    out = pd.DataFrame({"patient_id": np.repeat(bags.patient_id, n),
                        "slice_index": np.concatenate(bags.slice_index) if len(bags) else [],
                        "weight": np.concatenate(weights) if weights else []})
    if role is not None:
        out.insert(1, "split", role)
    return out


def predict_mil(model: MilNetwork, crops, *, patient_ids=None, device: str | torch.device = "cpu",
                chunk: int = 64) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A loaded MIL model on new crops (``alnm predict``): probability and slice attention.

    Args:
        model: from :func:`load_mil_network`.
        crops: a :class:`~alnm_core.roi.SequenceCrops` (all of its patients, or ``patient_ids``).
        patient_ids: the patients to predict (default: every patient in ``crops``).
        device: where to run.
        chunk: crops encoded at once.

    Returns:
        ``(patients, attention)``: ``patient_id, prob, n_slices`` and
        ``patient_id, slice_index, weight`` (weights sum to 1 per patient).

    Raises:
        ValueError: a requested patient without crops (named).
    """
    keep = np.ones(len(crops.patient_id), bool)
    if patient_ids is not None:
        want = [str(p) for p in patient_ids]
        missing = sorted(set(want) - set(np.asarray(crops.patient_id).astype(str)))
        if missing:
            raise ValueError(f"{crops.sequence}: no crops for patient(s) {missing[:5]}")
        keep = np.isin(np.asarray(crops.patient_id).astype(str), want)
    bags = make_bags(crops.patient_id[keep], crops.slice_index[keep])
    x = torch.from_numpy(np.ascontiguousarray(crops.crops[keep], dtype=np.float32))[:, None]
    prob, weights = predict_bags(model, x, bags, chunk=chunk, device=device)
    patients = pd.DataFrame({"patient_id": bags.patient_id, "prob": prob, "n_slices": bags.sizes})
    return patients, attention_frame(bags, weights)


def average_over_models(patients: list[pd.DataFrame],
                        attention: list[pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Several models' predictions of the same patients averaged (the test set scored by the
    fold models together, as for the slice model; ``alnm predict`` with a k-fold bundle): the
    mean probability, and per slice the mean weight (each model's weights sum to 1 over the
    patient's slices, so their mean does too).

    Raises:
        ValueError: the models saw different slices of a patient (named).

    Example:
        >>> p = [pd.DataFrame({"patient_id": ["a"], "prob": [p], "n_slices": [2]}) for p in (0.2, 0.6)]
        >>> a = [pd.DataFrame({"patient_id": ["a", "a"], "slice_index": [3, 4], "weight": w})
        ...      for w in ([0.5, 0.5], [0.9, 0.1])]
        >>> pats, att = average_over_models(p, a)
        >>> round(pats.prob.item(), 3), att.weight.round(3).tolist()
        (0.4, [0.7, 0.3])
    """
    keys = [c for c in ("patient_id", "split") if all(c in f.columns for f in patients)]
    allp = pd.concat(patients, ignore_index=True)
    g = allp.groupby(keys, sort=False)
    out_p = g.agg(prob=("prob", "mean"), n_slices=("n_slices", "first")).reset_index()
    if "label" in allp.columns:
        out_p.insert(len(keys), "label", g["label"].first().to_numpy())
    akeys = [c for c in ("patient_id", "split") if all(c in f.columns for f in attention)]
    alla = pd.concat(attention, ignore_index=True)
    per = alla.groupby(akeys + ["slice_index"], sort=False).weight.agg(["mean", "size"]).reset_index()
    bad = sorted(set(per.loc[per["size"] != len(attention), "patient_id"]))
    if bad:
        raise ValueError(f"the models weighed different slices of patient(s) {bad[:5]}")
    return out_p, per.drop(columns="size").rename(columns={"mean": "weight"})


def attention_artifact(attention: pd.DataFrame, *, sequence: str,
                       model_id: str | None = None) -> pd.DataFrame:
    """Rows of ``artifacts/mil_attention.csv``: ``model_id, patient_id, sequence, slice, weight``
    (plus ``split`` when the frame has it), from a unit's or an average's attention frame."""
    out = pd.DataFrame({"model_id": model_id or f"attention_mil_{sequence}",
                        "patient_id": attention.patient_id.to_numpy(), "sequence": sequence,
                        "slice": attention.slice_index.to_numpy().astype(int),
                        "weight": attention.weight.to_numpy()})
    if "split" in attention.columns:
        out["split"] = attention.split.to_numpy()
    return out
