"""The trained study as a checked model bundle, and applying it to new patients.

``RUN/model/`` holds what prediction needs and nothing else::

    bundle.json            format, versions, the resolved configuration (ROI, network, ensemble),
                           sequences, the CNN models by ``model_id`` with their training units,
                           the fusion's members and weights, frozen thresholds per ``model_id``,
                           a summary of the training cohort and of the validation (no patient id)
    weights/<model_id>/<unit>.pt  the selected weights of every training unit (state dicts)
    internal_test.csv      label and each model's score (columns: model ids) on the run's test
                           patients (no ids), for the unpaired DeLong test of another cohort
    MODEL_CARD.md          intended use and not, data, validation, metrics with CIs, calibration,
                           limitations
    checksums.sha256       SHA-256 of every other file (``sha256sum -c checksums.sha256`` reads it)

:func:`load_bundle` verifies the format version, every checksum and the presence of every file,
and refuses, naming the file, a bundle that was altered, truncated or is incomplete; weights load
with ``weights_only=True``. The checksums detect damage and edits, not a forger who rewrites them
too: keep a copy of ``checksums.sha256`` where the bundle cannot be changed if that matters.

:func:`predict` scores patients with the frozen study: the same crops as the run
(:func:`alnm_core.roi.extract_sequence`), per CNN model the mean probability of its units (the
fold models), fused by the frozen weighted vote; a patient who lacks a sequence is scored from
the members present with the weights renormalised, and the output says so.

Example:
    >>> b = load_bundle("reports/demo/model")                          # doctest: +SKIP
    >>> out = predict(b, cohort_df, cohort_dir)                         # doctest: +SKIP
    >>> out.patients[["patient_id", "fused", "decision"]]               # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import __version__
from .config import StudyConfig, config_from_dict
from .storage import atomic_write_text, sha256_file, write_csv

BUNDLE_FORMAT = 2
CHECKSUMS = "checksums.sha256"


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the file and what is wrong."""


# ----------------------------------------------------------------------------- writing
def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)  # the checkpoint is immutable once written: share its bytes
    except OSError:
        shutil.copy2(src, dst)


def write_bundle(out: Path, *, cfg: StudyConfig, models: dict[str, dict],
                 units: dict[str, list[tuple[str, Path]]], weights: dict[str, float],
                 thresholds: dict[str, dict[str, float]], internal_test: pd.DataFrame,
                 cohort_summary: dict, validation: dict, model_card: str, run_name: str,
                 extra_files: dict[str, Path] | None = None) -> Path:
    """Write a bundle folder (replacing an older one) and its checksums; returns ``out``.

    Args:
        models: CNN model id -> ``{"family", "sequence", "label"}``.
        units: CNN model id -> ``[(unit id, checkpoint path), ...]``.
        weights: fusion member model id -> normalised weight of the headline vote.
        thresholds: model id -> ``{"fixed": t, "youden": t}`` (frozen).
        internal_test: ``label`` and one score column per model id, no patient ids.
        extra_files: name inside the bundle -> file to copy (e.g. settings a model needs).
    """
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for mid, lst in units.items():
        for uid, ckpt in lst:
            _link_or_copy(ckpt, tmp / "weights" / mid / f"{uid}.pt")
    for name, src in (extra_files or {}).items():
        _link_or_copy(src, tmp / name)
    write_csv(internal_test, tmp / "internal_test.csv", what="the internal test scores")
    meta = {
        "format": BUNDLE_FORMAT, "alnm_version": __version__, "run": run_name,
        "sequences": list(cfg.sequences),
        "config": {k: v for k, v in cfg.to_dict().items() if k != "run"},
        "models": {mid: {**info, "units": [u for u, _ in units[mid]]} for mid, info in models.items()},
        "headline": "weighted_vote",
        "ensemble": {"method": "weighted vote (paper eq. 2-3, w_i = ACC_i)",
                     "weights_from": cfg.ensemble.weights_from, "members": list(weights),
                     "weights": weights},
        "thresholds": thresholds, "training_cohort": cohort_summary, "validation": validation,
        "versions": _versions(),
    }
    atomic_write_text(tmp / "bundle.json", json.dumps(meta, indent=1), what="bundle.json")
    atomic_write_text(tmp / "MODEL_CARD.md", model_card, what="the model card")
    lines = [f"{sha256_file(f)}  {f.relative_to(tmp).as_posix()}"
             for f in sorted(tmp.rglob("*")) if f.is_file()]
    atomic_write_text(tmp / CHECKSUMS, "\n".join(lines) + "\n", what="the bundle checksums")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("torch", "torchvision", "numpy", "pydicom", "SimpleITK"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# ----------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class Bundle:
    """A verified bundle."""

    root: Path
    meta: dict
    cfg: StudyConfig

    @property
    def sequences(self) -> tuple[str, ...]:
        return tuple(self.meta["sequences"])

    @property
    def weights(self) -> dict[str, float]:
        """Fusion member model id -> weight of the headline vote."""
        return {k: float(v) for k, v in self.meta["ensemble"]["weights"].items()}

    @property
    def models(self) -> dict[str, dict]:
        """CNN model id -> ``{"family", "sequence", "label", "units"}``."""
        return self.meta["models"]

    def unit_weights(self, model_id: str) -> list[Path]:
        """The weight files of a CNN model's units (each fold model)."""
        return [self.root / "weights" / model_id / f"{u}.pt" for u in self.models[model_id]["units"]]

    def threshold(self, model: str = "weighted_vote", kind: str = "fixed") -> float | None:
        v = self.meta["thresholds"].get(model, {}).get(kind)
        return None if v is None else float(v)


def verify(root: Path) -> list[str]:
    """Every problem of a bundle folder (empty = intact): missing, altered or extra files."""
    root = Path(root)
    sums = root / CHECKSUMS
    if not sums.is_file():
        return [f"{sums}: missing (not a model bundle, or an incomplete copy)"]
    problems, listed = [], set()
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, _, rel = line.partition("  ")
        listed.add(rel)
        f = root / rel
        if not f.is_file():
            problems.append(f"{f}: missing")
        elif sha256_file(f) != digest:
            problems.append(f"{f}: altered or truncated (checksum differs from {CHECKSUMS})")
    extra = sorted(f.relative_to(root).as_posix() for f in root.rglob("*")
                   if f.is_file() and f.name != CHECKSUMS)
    for rel in extra:
        if rel not in listed:
            problems.append(f"{root / rel}: not part of the bundle (added after it was written)")
    return problems


def load_bundle(root: str | Path, *, sequences: tuple[str, ...] | None = None) -> Bundle:
    """Open and verify a bundle.

    Args:
        root: the bundle folder (``RUN/model``).
        sequences: the sequences the caller's data has; a bundle for other sequences is refused.

    Raises:
        BundleError: naming the file (missing, altered, truncated, wrong format or version,
            made for other sequences).
    """
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"{root}: model bundle folder not found (a run writes it to RUN/model)")
    problems = verify(root)
    if problems:
        raise BundleError("the model bundle cannot be used: " + "; ".join(problems[:5]))
    meta = json.loads((root / "bundle.json").read_text())
    if meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{root / 'bundle.json'}: bundle format {meta.get('format')!r}; this alnm "
                          f"({__version__}) reads format {BUNDLE_FORMAT}")
    if str(meta.get("alnm_version", "")).split(".")[0] != __version__.split(".")[0]:
        raise BundleError(f"{root / 'bundle.json'}: made by alnm {meta.get('alnm_version')}, this is "
                          f"{__version__} (another major version)")
    if sequences is not None and not set(sequences) & set(meta["sequences"]):
        raise BundleError(f"{root}: the bundle is for sequences {meta['sequences']}, the data has "
                          f"{list(sequences)}")
    return Bundle(root, meta, config_from_dict(meta["config"]))


# ----------------------------------------------------------------------------- predicting
@dataclass(frozen=True, kw_only=True)
class Prediction:
    """What :func:`predict` returns.

    Attributes:
        patients: one row per patient: ``patient_id`` (and ``alnm`` when the cohort has labels),
            each CNN model's probability by model id (NaN if its sequence is missing), the fused
            ``weighted_vote``, ``decision`` (at the frozen operating threshold,
            ``stats.threshold``), ``decision_youden`` (at the Youden threshold frozen on the
            development predictions; empty when none could be chosen), ``sequences_used``,
            ``note``.
        slices: per model, unit and slice: ``model_id, sequence, unit, patient_id, slice_index, prob``.
        crops: sequence -> the crops used (for Grad-CAM).
    """

    patients: pd.DataFrame
    slices: pd.DataFrame
    crops: dict


def sequences_present(cohort: pd.DataFrame, cohort_dir: Path, seq: str) -> pd.Series:
    """Which patients have the sequence's image and mask (columns filled)."""
    cols = [f"{seq}_image", f"{seq}_roi"]
    if not all(c in cohort.columns for c in cols):
        return pd.Series(False, index=cohort.index)
    filled = cohort[cols].fillna("").astype(str).apply(lambda c: c.str.strip() != "").all(axis=1)
    return filled


def predict(bundle: Bundle, cohort: pd.DataFrame, cohort_dir: str | Path, *,
            cache_dir: Path | None = None, progress: Callable[[str], None] | None = None,
            device: str = "cpu") -> Prediction:
    """Score patients with the frozen study (nothing is refit).

    Args:
        cohort: manifest rows (``patient_id`` and ``<SEQ>_image`` / ``<SEQ>_roi`` for the
            sequences present; a patient may lack some).
        cohort_dir: the folder the manifest's paths are relative to.

    Raises:
        BundleError: no patient has any of the bundle's sequences.
        RoiError: a patient whose image or mask cannot be used (names patient, sequence, file).
    """
    import torch

    from .aggregation import aggregate
    from .models import load_network
    from .roi import extract_sequence
    from .training import predict_probs

    say = progress or (lambda s: None)
    cohort_dir = Path(cohort_dir)
    cfg = bundle.cfg
    per_model, slices, crops_by = {}, [], {}
    for mid, info in bundle.models.items():
        seq = info["sequence"]
        if seq not in crops_by:
            have = cohort[sequences_present(cohort, cohort_dir, seq)]
            if have.empty:
                continue
            say(f"{seq}: cropping {len(have)} patient(s)")
            crops_by[seq] = extract_sequence(have, cohort_dir, seq, cfg.roi, cache_dir=cache_dir)
        crops = crops_by[seq]
        x = torch.from_numpy(np.ascontiguousarray(crops.crops, dtype=np.float32))[:, None]
        unit_probs = []
        for uid, wpath in zip(info["units"], bundle.unit_weights(mid)):
            model = load_network(cfg.train, wpath, device=device)
            prob = predict_probs(model, x, 64, torch.device(device))
            sl = pd.DataFrame({"patient_id": crops.patient_id, "split": "predict", "label": -1,
                               "slice_index": crops.slice_index, "area_mm2": crops.area_mm2,
                               "prob": prob})
            slices.append(sl.assign(model_id=mid, sequence=seq, unit=uid)
                          [["model_id", "sequence", "unit", "patient_id", "slice_index", "prob"]])
            unit_probs.append(aggregate(sl, cfg.train.aggregation).set_index("patient_id").prob)
        per_model[mid] = pd.concat(unit_probs, axis=1).mean(axis=1)
        say(f"{mid}: {len(info['units'])} model(s) applied")
    if not per_model:
        raise BundleError(f"no patient has any of the bundle's sequences {list(bundle.sequences)}")
    out = pd.DataFrame({"patient_id": cohort.patient_id.astype(str).to_numpy()})
    if "alnm" in cohort.columns:
        out["alnm"] = pd.to_numeric(cohort["alnm"], errors="coerce").to_numpy()
    for mid in bundle.models:
        out[mid] = out.patient_id.map(per_model.get(mid, pd.Series(dtype=float)))
    w = bundle.weights
    seq_of = {m: bundle.models[m]["sequence"] for m in w}
    fused, used, notes = [], [], []
    for _, row in out.iterrows():
        have = [m for m in w if np.isfinite(row[m])]
        missing = [m for m in w if m not in have]
        total = sum(w[m] for m in have)
        fused.append(sum(w[m] * row[m] for m in have) / total if have and total > 0 else np.nan)
        used.append(",".join(seq_of[m] for m in have))
        notes.append("" if not missing else
                     f"{', '.join(seq_of[m] for m in missing)} missing: fused from "
                     f"{', '.join(seq_of[m] for m in have) or 'nothing'} with the weights renormalised")
    out["weighted_vote"] = fused
    out["decision"] = (out.weighted_vote >= bundle.threshold("weighted_vote", "fixed")).astype(int)
    youden = bundle.threshold("weighted_vote", "youden")
    out["decision_youden"] = (out.weighted_vote >= youden).astype(int) if youden is not None else np.nan
    out["sequences_used"] = used
    out["note"] = notes
    return Prediction(patients=out, slices=pd.concat(slices, ignore_index=True), crops=crops_by)
