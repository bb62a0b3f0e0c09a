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
and refuses, naming the file, a bundle that was altered, truncated or is incomplete. A bundle is
closed: every file it references (each unit's weights) and every entry of its checksum list is a
plain path inside the folder, covered by the list; links out of it, absolute paths and ``..`` are
refused naming the entry, even when the checksum file was recomputed. ``bundle.json`` is checked
for shape (names are plain path components, weights and thresholds numbers); its texts are
another site's and must be escaped by whatever shows them. Weights load with
``weights_only=True``; a pickle of other objects is refused naming the file. The checksums detect
damage and edits, not a forger who rewrites them too: keep a copy of ``checksums.sha256`` (or its
own SHA-256) where the bundle cannot be changed if that matters (``docs/security.md``).

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
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
import pandas as pd

from . import __version__
from .config import ConfigError, StudyConfig, config_from_dict
from .inputs import is_inside, kind
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


#: a sequence name or a unit id: one path component, printable, no separator
_NAME = re.compile(r"[^/\\\x00-\x1f\x7f]{1,64}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
#: the most files a bundle may hold (a k-fold study of 3 sequences x 5 folds x 10 repeats: 150)
_MAX_FILES = 10_000


def _checksum_list(root: Path, problems: list[str]) -> dict[str, str]:
    """``relative path -> digest`` from ``checksums.sha256``; each entry must be a plain
    relative path (no ``..``, not absolute, no backslash) whose file resolves inside ``root``."""
    sums = root / CHECKSUMS
    if not sums.is_file() or sums.is_symlink():
        problems.append(f"{sums}: missing (not a model bundle, or an incomplete copy)")
        return {}
    listed: dict[str, str] = {}
    try:
        lines = sums.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{sums}: cannot be read ({exc})")
        return {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        parts = PurePosixPath(rel).parts
        if not sep or not _DIGEST.fullmatch(digest) or not rel:
            problems.append(f"{sums}, line {n}: not '<sha256>  <path>'")
        elif rel.startswith("/") or "\\" in rel or ".." in parts or "." in parts or rel != PurePosixPath(rel).as_posix():
            problems.append(f"{sums}, line {n}: entry {rel!r} is not a plain path inside the bundle")
        elif not is_inside(root / rel, root):
            problems.append(f"{sums}, line {n}: entry {rel!r} resolves to {os.path.realpath(root / rel)}, "
                            "outside the bundle")
        else:
            listed[rel] = digest
    return listed


def verify(root: Path) -> list[str]:
    """Every problem of a bundle folder (empty = intact): missing, altered or extra files, and
    anything that reaches outside it.

    A bundle is closed: every entry of the checksum list is a plain relative path to a regular
    file inside the folder, no link below it leads outside it, and every file in it is listed.
    """
    root = Path(root)
    problems: list[str] = []
    listed = _checksum_list(root, problems)
    if not listed:
        return problems
    for rel, digest in listed.items():
        f = root / rel
        what = kind(f)
        if what == "missing":
            problems.append(f"{f}: missing")
        elif what != "file":
            problems.append(f"{f}: is {what}, not a regular file")
        elif sha256_file(f) != digest:
            problems.append(f"{f}: altered or truncated (checksum differs from {CHECKSUMS})")
    seen = 0
    for top, dirs, names in os.walk(root):
        seen += len(dirs) + len(names)
        if seen > _MAX_FILES:
            problems.append(f"{root}: holds more than {_MAX_FILES} files; not a model bundle")
            break
        for n in dirs + names:
            f = Path(top, n)
            rel = f.relative_to(root).as_posix()
            if os.path.islink(f) and not is_inside(f, root):
                problems.append(f"{f}: links to {os.path.realpath(f)}, outside the bundle")
            elif n in names and rel != CHECKSUMS and rel not in listed:
                problems.append(f"{f}: not part of the bundle (added after it was written)")
    return problems


def check_meta(meta, where: str) -> list[str]:
    """What is wrong with the shape of ``bundle.json`` (empty = usable); its values are another
    site's data and are checked before use: names are plain path components, weights and
    thresholds numbers, texts strings. Keys it does not know are left alone.
    """
    problems: list[str] = []

    def bad(key: str, what: str) -> None:
        problems.append(f"{where}: {key} {what}")

    if not isinstance(meta, dict):
        return [f"{where}: not a JSON object"]
    for key, typ in (("format", int), ("alnm_version", str), ("run", str), ("sequences", list),
                     ("config", dict), ("models", dict), ("ensemble", dict), ("thresholds", dict)):
        if not isinstance(meta.get(key), typ) or isinstance(meta.get(key), bool):
            bad(key, f"is missing or not {'a list' if typ is list else 'an object' if typ is dict else typ.__name__}")
    for key in ("training_cohort", "validation", "versions"):
        if key in meta and not isinstance(meta[key], dict):
            bad(key, "is not an object")
    if problems:
        return problems
    seqs = meta["sequences"]
    if not seqs or not all(isinstance(s, str) and _NAME.fullmatch(s) and s not in (".", "..") for s in seqs) \
            or len(set(seqs)) != len(seqs):
        bad("sequences", f"{seqs!r} are not distinct plain names")
        return problems
    models = meta["models"]
    if not models:
        bad("models", "is empty")
    for mid, info in models.items():
        if not (isinstance(mid, str) and _NAME.fullmatch(mid) and mid not in (".", "..")) or not isinstance(info, dict):
            bad(f"models.{mid!r}", "is not a plain model id with an object")
            continue
        if info.get("sequence") not in seqs:
            bad(f"models.{mid}.sequence", f"{info.get('sequence')!r} is not one of the sequences {seqs}")
        if not isinstance(info.get("family"), str) or not isinstance(info.get("label", ""), str):
            bad(f"models.{mid}", "has no family name (or a label that is not text)")
        ids = info.get("units")
        if not isinstance(ids, list) or not ids or not all(
                isinstance(u, str) and _NAME.fullmatch(u) and u not in (".", "..") for u in ids):
            bad(f"models.{mid}.units", f"{ids!r} is not a list of plain unit names")
    weights = meta["ensemble"].get("weights")
    if not isinstance(weights, dict) or not weights or not set(weights) <= set(models) or not all(
            _is_number(w) and np.isfinite(w) and w >= 0 for w in weights.values()):
        bad("ensemble.weights", "is not a finite weight >= 0 for each fused model of the bundle")
    for model, th in meta["thresholds"].items():
        if not isinstance(th, dict) or not all(v is None or (_is_number(v) and not np.isnan(v))
                                               for v in th.values()):
            bad(f"thresholds.{model}", "is not an object of numbers")
    if not _is_number(meta["thresholds"].get("weighted_vote", {}).get("fixed")
                      if isinstance(meta["thresholds"].get("weighted_vote"), dict) else None):
        bad("thresholds.weighted_vote.fixed", "is missing")
    return problems


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def load_bundle(root: str | Path, *, sequences: tuple[str, ...] | None = None) -> Bundle:
    """Open and verify a bundle.

    Everything read from a bundle is another site's data: every file it references must be
    inside it and covered by its checksum list (even one whose checksum file was recomputed),
    and ``bundle.json`` must have the expected shape; its texts (run name, field strengths,
    ...) are untrusted strings for whoever shows them.

    Args:
        root: the bundle folder (``RUN/model``).
        sequences: the sequences the caller's data has; a bundle for other sequences is refused.

    Raises:
        BundleError: naming the file or entry (missing, altered, truncated, outside the bundle,
            not listed, malformed, wrong format or version, made for other sequences).
    """
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"{root}: model bundle folder not found (a run writes it to RUN/model)")
    problems = verify(root)
    if problems:
        raise BundleError("the model bundle cannot be used: " + "; ".join(problems[:5]))
    where = root / "bundle.json"
    try:
        meta = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{where}: not readable JSON ({exc})") from None
    if isinstance(meta, dict) and meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{where}: bundle format {meta.get('format')!r}; this alnm "
                          f"({__version__}) reads format {BUNDLE_FORMAT}")
    problems = check_meta(meta, str(where))
    if problems:
        raise BundleError("the model bundle cannot be used: " + "; ".join(problems[:5]))
    if str(meta.get("alnm_version", "")).split(".")[0] != __version__.split(".")[0]:
        raise BundleError(f"{where}: made by alnm {meta.get('alnm_version')}, this is "
                          f"{__version__} (another major version)")
    if sequences is not None and not set(sequences) & set(meta["sequences"]):
        raise BundleError(f"{root}: the bundle is for sequences {meta['sequences']}, the data has "
                          f"{list(sequences)}")
    try:
        cfg = config_from_dict(meta["config"])
    except ConfigError as exc:
        raise BundleError(f"{where}: config: {exc}") from None
    if tuple(cfg.sequences) != tuple(meta["sequences"]):
        raise BundleError(f"{where}: config.sequences {list(cfg.sequences)} differ from sequences "
                          f"{meta['sequences']}")
    bundle = Bundle(root, meta, cfg)
    listed = set(_checksum_list(root, []))
    for mid in bundle.models:
        for path in bundle.unit_weights(mid):
            rel = path.relative_to(root).as_posix() if is_inside(path, root) else None
            if rel is None or rel not in listed:
                raise BundleError(f"{where}: unit {path.stem!r} of {mid} refers to {path}, which is not "
                                  f"a file of the bundle covered by {CHECKSUMS}")
    return bundle


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
        slices: per slice-vote model, unit and slice: ``model_id, sequence, unit, patient_id,
            slice_index, prob``.
        crops: sequence -> the crops used (for Grad-CAM).
        attention: per attention-MIL model, patient and slice: ``patient_id, slice_index,
            weight, model_id, sequence`` (the mean over the bundle's networks, one per model
            since the final refit; weights sum to 1 per patient).
    """

    patients: pd.DataFrame
    slices: pd.DataFrame
    crops: dict
    attention: pd.DataFrame


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
        BundleError: no patient has any of the bundle's sequences; a weights file that cannot
            be loaded (named; a pickle of other objects is never loaded).
        RoiError: a patient whose image or mask cannot be used (names patient, sequence, file).
    """
    import torch

    from .aggregation import aggregate
    from .models import CheckpointError, load_network
    from .roi import extract_sequence
    from .training import predict_probs

    say = progress or (lambda s: None)
    cohort_dir = Path(cohort_dir)
    cfg = bundle.cfg
    per_model, slices, crops_by, attention = {}, [], {}, []
    for mid, info in bundle.models.items():
        seq = info["sequence"]
        if seq not in crops_by:
            have = cohort[sequences_present(cohort, cohort_dir, seq)]
            if have.empty:
                continue
            say(f"{seq}: cropping {len(have)} patient(s)")
            crops_by[seq] = extract_sequence(have, cohort_dir, seq, cfg.roi, cache_dir=cache_dir)
        crops = crops_by[seq]
        if info["family"] == "attention_mil":
            per_model[mid], att = _predict_mil(bundle, mid, info, crops, device)
            attention.append(att.assign(model_id=mid, sequence=seq))
            say(f"{mid}: {len(info['units'])} model(s) applied")
            continue
        x = torch.from_numpy(np.ascontiguousarray(crops.crops, dtype=np.float32))[:, None]
        unit_probs = []
        for uid, wpath in zip(info["units"], bundle.unit_weights(mid)):
            try:
                model = load_network(cfg.train, wpath, device=device)
            except CheckpointError as exc:
                raise BundleError(f"unit {uid!r} of {mid}: {exc}") from None
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
    return Prediction(patients=out, slices=pd.concat(slices, ignore_index=True) if slices else pd.DataFrame(),
                      crops=crops_by,
                      attention=pd.concat(attention, ignore_index=True) if attention else pd.DataFrame())


def _predict_mil(bundle: Bundle, mid: str, info: dict, crops, device: str) -> tuple[pd.Series, pd.DataFrame]:
    """An attention-MIL model of the bundle on new crops: the mean probability of its fold
    models, and each slice's mean attention weight."""
    from .config import MilConfig, TrainConfig
    from .mil import average_over_models, load_mil_network, predict_mil
    from .models import CheckpointError

    pats, atts = [], []
    for uid, wpath in zip(info["units"], bundle.unit_weights(mid)):
        st = (info.get("settings") or {}).get(uid)
        if not isinstance(st, dict) or not isinstance(st.get("train"), dict) or not isinstance(st.get("mil"), dict):
            raise BundleError(f"{bundle.root / 'bundle.json'}: models.{mid}.settings.{uid} is missing or malformed")
        try:
            net = load_mil_network(TrainConfig(**{**st["train"]}), MilConfig(**st["mil"]), wpath, device=device)
        except (CheckpointError, TypeError) as exc:
            raise BundleError(f"unit {uid!r} of {mid}: {exc}") from None
        p, a = predict_mil(net, crops, device=device)
        pats.append(p)
        atts.append(a)
    p, a = average_over_models(pats, atts)
    return p.set_index("patient_id").prob, a
