"""ROI extraction: mask -> per-slice bounding boxes -> crops -> resize -> min-max to [0, 1].

The paper (section "Image processing and base model building") drew a box around the tumour on
every axial slice, cut it out with the peritumoral area, resized it to 224 x 224 and min-max
normalised each crop (its eq. 1). This module does the same from a mask, and fixes what the paper
left to hand work:

* the peritumoral margin is given in millimetres, so it covers the same tissue on a 1.5T and a
  3T grid, and on anisotropic pixels;
* the box is cut and resized in one interpolation step in physical space, so a square box in mm
  stays square after resizing (``keep_aspect``), and a box reaching past the image edge is padded
  with the edge value instead of silently shrinking;
* DWI uses the configured b-value (default the highest), DCE the phase of peak relative
  enhancement of the ROI's time-intensity curve; the curve also gives the TIC type.

Example:
    >>> import numpy as np
    >>> m = np.zeros((1, 50, 50), bool); m[0, 20:30, 10:20] = True
    >>> expand_box((20, 30, 10, 20), (1.0, 2.0), margin_mm=4.0, keep_aspect=False)
    (16.0, 34.0, 8.0, 22.0)
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import ndimage

from .cohort import series_rule
from .config import RoiConfig
from .imaging import ImageReadError, Volume, read_image, read_mask
from .storage import atomic_path

CACHE_VERSION = 3  # 3: roi.slices=largest takes the central of equal-area slices


class RoiError(ValueError):
    """A patient / sequence whose ROI cannot be extracted; the message names both."""

    def __init__(self, patient_id: str, sequence: str, reason: str, file: str = ""):
        self.patient_id, self.sequence, self.reason, self.file = patient_id, sequence, reason, file
        where = f" ({file})" if file else ""
        super().__init__(f"patient {patient_id}, {sequence}: {reason}{where}")

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.patient_id, self.sequence, self.reason, self.file))


# ----------------------------------------------------------------------------- selection
def relative_enhancement(dce: Volume, mask: np.ndarray) -> np.ndarray:
    """Mean relative enhancement ``(S_k - S_0) / S_0`` of the ROI for each DCE phase."""
    if dce.array.ndim != 4:
        raise ImageReadError(f"{dce.path}: DCE series has a single phase; cannot build a TIC")
    s = np.array([float(dce.array[k][mask].mean()) for k in range(dce.array.shape[0])])
    if s[0] <= 0:
        raise ImageReadError(f"{dce.path}: pre-contrast ROI signal is {s[0]:.3g} (<= 0)")
    return (s - s[0]) / s[0]


def select_dce_phase(curve: np.ndarray, phase: str = "peak") -> int:
    """Index of the phase used: peak relative enhancement (post-contrast) or a fixed index."""
    if phase == "peak":
        return int(1 + np.argmax(curve[1:]))
    k = int(phase)
    if not 0 <= k < len(curve):
        raise IndexError(f"DCE phase {k} not in series (phases 0..{len(curve) - 1})")
    return k


def classify_tic(curve: np.ndarray, times_s: np.ndarray | None = None, *,
                 early_s: float = 120.0, tol: float = 0.10) -> str:
    """TIC type from the delayed-phase change relative to the early post-contrast peak.

    Early peak = highest signal within ``early_s`` seconds after contrast (first two
    post-contrast phases when times are unknown). Delayed change ``(S_last - S_peak) / S_peak``:
    above ``+tol`` -> ``I`` (persistent), within +-tol -> ``II`` (plateau), below -> ``III``
    (washout).
    """
    sig = 1.0 + np.asarray(curve, float)  # signal relative to pre-contrast
    if times_s is None:
        early = [1, 2]
    else:
        t = np.asarray(times_s, float)
        early = [k for k in range(1, len(sig)) if t[k] - t[0] <= early_s + 1e-6] or [1]
    peak = sig[early].max()
    change = (sig[-1] - peak) / peak
    return "I" if change > tol else ("III" if change < -tol else "II")


# ----------------------------------------------------------------------------- boxes
def bbox_2d(mask2d: np.ndarray) -> tuple[int, int, int, int]:
    """Half-open bounding box ``(r0, r1, c0, c1)`` of a 2D mask."""
    rows = np.flatnonzero(mask2d.any(axis=1))
    cols = np.flatnonzero(mask2d.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def expand_box(box: tuple[int, int, int, int], spacing_rc: tuple[float, float], *,
               margin_mm: float, keep_aspect: bool) -> tuple[float, float, float, float]:
    """Enlarge a pixel box by ``margin_mm`` on each side (and to a square in mm if asked).

    Returns float pixel coordinates ``(r0, r1, c0, c1)``, possibly beyond the image.
    """
    r0, r1, c0, c1 = (float(v) for v in box)
    sr, sc = spacing_rc
    r0, r1 = r0 - margin_mm / sr, r1 + margin_mm / sr
    c0, c1 = c0 - margin_mm / sc, c1 + margin_mm / sc
    if keep_aspect:
        h_mm, w_mm = (r1 - r0) * sr, (c1 - c0) * sc
        side = max(h_mm, w_mm)
        dr, dc = (side / sr - (r1 - r0)) / 2, (side / sc - (c1 - c0)) / 2
        r0, r1, c0, c1 = r0 - dr, r1 + dr, c0 - dc, c1 + dc
    return r0, r1, c0, c1


def crop_resize(image2d: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Sample ``box`` (float pixel coords, half-open) onto a ``size x size`` grid (bilinear).

    Pixel ``i`` of the output samples the box at the centre of the i-th of ``size`` equal cells;
    outside the image the nearest edge value is used.
    """
    r0, r1, c0, c1 = box
    rr = r0 + (np.arange(size) + 0.5) * (r1 - r0) / size - 0.5
    cc = c0 + (np.arange(size) + 0.5) * (c1 - c0) / size - 0.5
    R, C = np.meshgrid(rr, cc, indexing="ij")
    return ndimage.map_coordinates(image2d.astype(np.float32), [R, C], order=1, mode="nearest")


def minmax(crop: np.ndarray) -> np.ndarray:
    """Paper eq. 1: ``(x - min) / (max - min)``; raises ValueError on a constant crop."""
    lo, hi = float(crop.min()), float(crop.max())
    if not hi > lo:
        raise ValueError(f"constant-intensity crop (min = max = {lo:.4g}); cannot normalise")
    return (crop - lo) / (hi - lo)


def largest_slice(areas_mm2: np.ndarray) -> int:
    """The slice of largest tumour area; of several with the same area (a box ROI has the same
    area on every slice) the central one, not the first."""
    ties = np.flatnonzero(areas_mm2 == np.max(areas_mm2))
    return int(ties[(len(ties) - 1) // 2])


def choose_slices(areas_mm2: np.ndarray, *, min_area_mm2: float, mode: str, k: int) -> list[int]:
    """Slice indices to crop: all with tumour area >= min (and > 0: ``min_area_mm2=0`` never
    picks a slice without tumour), the largest, or the central k."""
    idx = [int(i) for i in np.flatnonzero((areas_mm2 >= min_area_mm2) & (areas_mm2 > 0))]
    if not idx:
        return []
    if mode == "largest":
        return [largest_slice(areas_mm2)]
    if mode == "central":
        mid = (idx[0] + idx[-1]) / 2
        return sorted(sorted(idx, key=lambda i: (abs(i - mid), i))[:k])
    return idx


# ----------------------------------------------------------------------------- per patient
@dataclass
class PatientCrops:
    """Crops of one patient and sequence, plus what QC needs."""

    patient_id: str
    sequence: str
    crops: np.ndarray  # (n, size, size) float32 in [0, 1]
    slice_index: np.ndarray
    bbox: np.ndarray  # (n, 4) float pixel coords after margin
    area_mm2: np.ndarray
    spacing: tuple[float, float, float]
    raw_range: np.ndarray  # (n, 2) min / max before normalisation
    selected: str = ""  # e.g. "b=800" or "phase 3 (peak)"
    tic_curve: list[float] = field(default_factory=list)
    tic_times_s: list[float] = field(default_factory=list)
    tic_type: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SelectedImage:
    """The image a sequence contributes (a 3D volume) and what was selected to get it.

    Attributes:
        volume: the DWI b-value or DCE phase used, or the whole series when it is 3D.
        mask: the tumour mask in the volume's geometry.
        selected: what was selected, e.g. ``"b=800"`` or ``"phase 3 (peak enhancement)"``.
        tic_curve: (DCE) mean relative enhancement of the ROI per phase.
        tic_times_s: (DCE) time of each phase after the first, in seconds.
        tic_type: (DCE) ``I``, ``II`` or ``III``.
    """

    volume: Volume
    mask: np.ndarray
    selected: str = ""
    tic_curve: tuple[float, ...] = ()
    tic_times_s: tuple[float, ...] = ()
    tic_type: str = ""


def load_selected(patient_id: str, sequence: str, image_path: Path, mask_path: Path,
                  cfg: RoiConfig, series: str | None = None, limits: dict | None = None) -> SelectedImage:
    """Read a series and its mask and pick the image the study uses.

    ``series`` is the DICOM series rule for a study folder (see :func:`~alnm_core.cohort.series_rule`);
    ``limits`` the reading limits (``max_voxels``, ``max_files``: ``input.*``) checked from the
    headers before any pixel is decoded.

    Raises:
        RoiError: naming patient, sequence and (where known) the file.
    """
    lim = limits or {}
    try:
        vol = read_image(image_path, series=series, **lim)
        mask = read_mask(mask_path, like=vol, max_voxels=lim.get("max_voxels"))
    except ImageReadError as exc:
        raise RoiError(patient_id, sequence, str(exc)) from exc
    if vol.array.ndim != 4:
        return SelectedImage(vol, mask)
    if vol.b_values:
        try:
            vol3 = vol.select_b_value(cfg.dwi_b_value)
        except ImageReadError as exc:
            raise RoiError(patient_id, sequence, str(exc), str(image_path)) from exc
        b = cfg.dwi_b_value if cfg.dwi_b_value is not None else max(vol.b_values)
        return SelectedImage(vol3, mask, f"b={b:g}")
    try:
        re = relative_enhancement(vol, mask)
        k = select_dce_phase(re, cfg.dce_phase)
    except (ImageReadError, IndexError) as exc:
        raise RoiError(patient_id, sequence, str(exc), str(image_path)) from exc
    times = np.array(vol.phase_times_s) if vol.phase_times_s else None
    return SelectedImage(vol.select(k), mask,
                         f"phase {k}" + (" (peak enhancement)" if cfg.dce_phase == "peak" else ""),
                         tuple(float(v) for v in re),
                         tuple(float(t) for t in vol.phase_times_s) if vol.phase_times_s else (),
                         classify_tic(re, times))


def extract_patient(patient_id: str, sequence: str, image_path: Path, mask_path: Path,
                    cfg: RoiConfig, series: str | None = None, limits: dict | None = None) -> PatientCrops:
    """Read one series and its mask and return its crops (``series``: DICOM series rule).

    Raises:
        RoiError: naming patient, sequence and (where known) the file.
    """
    sel = load_selected(patient_id, sequence, image_path, mask_path, cfg, series, limits)
    vol3, mask = sel.volume, sel.mask
    img = vol3.array
    if not np.all(np.isfinite(img[mask.any(axis=(1, 2))])):
        raise RoiError(patient_id, sequence, "tumour slices contain NaN or infinite values",
                       str(image_path))
    warnings = []
    if mask[0].any() or mask[-1].any():
        warnings.append("mask touches the first or last slice: the tumour may extend beyond the series")
    if mask[:, 0, :].any() or mask[:, -1, :].any() or mask[:, :, 0].any() or mask[:, :, -1].any():
        warnings.append("mask touches the in-plane image edge: crops are padded with edge values")
    sz, sr, sc = vol3.spacing
    areas = mask.sum(axis=(1, 2)) * sr * sc
    slices = choose_slices(areas, min_area_mm2=cfg.min_area_mm2, mode=cfg.slices, k=cfg.central_k)
    if not slices:
        raise RoiError(patient_id, sequence,
                       f"no slice with a tumour area >= {cfg.min_area_mm2} mm^2", str(mask_path))
    crops, boxes, ranges = [], [], []
    for z in slices:
        box = expand_box(bbox_2d(mask[z]), (sr, sc), margin_mm=cfg.margin_mm,
                         keep_aspect=cfg.keep_aspect)
        raw = crop_resize(img[z], box, cfg.size)
        try:
            crops.append(minmax(raw))
        except ValueError as exc:
            raise RoiError(patient_id, sequence, f"slice {z}: {exc}", str(image_path)) from exc
        boxes.append(box)
        ranges.append((float(raw.min()), float(raw.max())))
    return PatientCrops(patient_id, sequence, np.stack(crops).astype(np.float32),
                        np.array(slices), np.array(boxes, float), areas[slices],
                        vol3.spacing, np.array(ranges), sel.selected, list(sel.tic_curve),
                        list(sel.tic_times_s), sel.tic_type, warnings)


# ----------------------------------------------------------------------------- cohort
def content_key(rows: pd.DataFrame, sequence: str, cohort_dir: Path, cfg: RoiConfig) -> str:
    """Hash of the inputs' bytes and the settings: same key = same crops."""
    return input_digest(rows, sequence, cohort_dir, {"v": CACHE_VERSION, "seq": sequence, "cfg": asdict(cfg)})


def input_digest(rows: pd.DataFrame, sequence: str, cohort_dir: Path, settings: dict) -> str:
    """Hash of ``settings`` (JSON) and of every image and mask byte of a sequence: the key of
    a content-keyed cache (crops here, radiomics features in :mod:`alnm_core.radiomics_features`)."""
    h = hashlib.sha256()
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for _, row in rows.sort_values("patient_id").iterrows():
        h.update(row["patient_id"].encode())
        rule = series_rule(row, sequence)  # which series of a study folder are read
        if rule:
            h.update(rule.encode())
        for col in (f"{sequence}_image", f"{sequence}_roi"):
            p = cohort_dir / row[col]
            files = sorted(p.rglob("*")) if p.is_dir() else [p]
            for f in files:
                if f.is_file():
                    h.update(f.name.encode())
                    h.update(f.read_bytes())
    return h.hexdigest()[:32]


def default_cache_dir() -> Path:
    return Path(os.environ.get("ALNM_CACHE", Path.home() / ".cache" / "alnm")) / "roi"


@dataclass
class SequenceCrops:
    """All crops of one sequence (what ``artifacts/roi/<SEQ>.npz`` holds)."""

    sequence: str
    crops: np.ndarray
    patient_id: np.ndarray
    slice_index: np.ndarray
    bbox: np.ndarray
    area_mm2: np.ndarray
    spacing: np.ndarray
    raw_range: np.ndarray
    per_patient: pd.DataFrame  # patient_id, n_crops, selected, tic_type, tic_curve, warnings
    exclusions: list[dict]
    key: str = ""

    def save(self, path: Path) -> None:
        """Write the crops as one compressed ``.npz`` (float16 pixels), atomically."""
        with atomic_path(path, what=f"the {self.sequence} crops") as tmp:
            self._save_to(tmp)

    def _save_to(self, tmp: Path) -> None:
        np.savez_compressed(
            tmp, crops=self.crops.astype(np.float16), patient_id=self.patient_id.astype(str),
            slice_index=self.slice_index, bbox=self.bbox, area_mm2=self.area_mm2,
            spacing=self.spacing, raw_range=self.raw_range, key=np.array(self.key),
            sequence=np.array(self.sequence),
            per_patient=np.array(self.per_patient.to_json(orient="records")),
            exclusions=np.array(json.dumps(self.exclusions)))

    @classmethod
    def load(cls, path: Path) -> "SequenceCrops":
        with np.load(path, allow_pickle=False) as z:
            return cls(str(z["sequence"]), z["crops"].astype(np.float32), z["patient_id"],
                       z["slice_index"], z["bbox"], z["area_mm2"], z["spacing"], z["raw_range"],
                       pd.read_json(__import__("io").StringIO(str(z["per_patient"])), orient="records",
                                    dtype={"patient_id": str}),
                       json.loads(str(z["exclusions"])), str(z["key"]))


def _extract_one(args):
    pid, seq, img, roi, cfg, series, limits = args
    try:
        return extract_patient(pid, seq, img, roi, cfg, series, limits)
    except RoiError as exc:
        return exc



def map_patients(fn: Callable, tasks: list, *, jobs: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> list:
    """``fn`` over the per-patient ``tasks``, in order: in ``jobs`` processes (default: the
    cores, never more than the tasks), in this process when that is one; ``progress(done, n)``
    after each patient. ``fn`` returns a :class:`RoiError` instead of raising it, so that one
    patient's failure is kept for :func:`keep_or_exclude`."""
    jobs = max(1, min(jobs or (os.cpu_count() or 1), len(tasks)))
    results = []
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for i, r in enumerate(pool.map(fn, tasks, chunksize=4), 1):
                results.append(r)
                if progress:
                    progress(i, len(tasks))
    else:
        for i, t in enumerate(tasks, 1):
            results.append(fn(t))
            if progress:
                progress(i, len(tasks))
    return results


def keep_or_exclude(results: list, on_error: str) -> tuple[list, list[dict]]:
    """Split per-patient results into the good ones and the listed exclusions (patient,
    sequence, reason, file); with ``on_error="fail"`` the first :class:`RoiError` is raised."""
    good, exclusions = [], []
    for r in results:
        if isinstance(r, RoiError):
            if on_error == "fail":
                raise r
            exclusions.append(dict(patient_id=r.patient_id, sequence=r.sequence, reason=r.reason,
                                   file=r.file))
        else:
            good.append(r)
    return good, exclusions


def extract_sequence(cohort: pd.DataFrame, cohort_dir: str | Path, sequence: str, cfg: RoiConfig,
                     *, cache_dir: Path | None = None, jobs: int | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     limits: dict | None = None) -> SequenceCrops:
    """Crops of every patient for one sequence, reusing a cached result with the same key
    (``limits``: ``max_voxels`` / ``max_files`` of ``input.*``; they refuse, never change, a crop).

    With ``cfg.on_error == "fail"`` the first unusable patient raises :class:`RoiError`;
    with ``"exclude"`` it is listed in ``exclusions`` and skipped.
    """
    cohort_dir = Path(cohort_dir)
    cache_dir = cache_dir or default_cache_dir()
    key = content_key(cohort, sequence, cohort_dir, cfg)
    cached = cache_dir / f"{sequence}-{key}.npz"
    if cached.is_file():
        try:
            return SequenceCrops.load(cached)
        except (OSError, ValueError, KeyError):
            cached.unlink(missing_ok=True)
    tasks = [(r.patient_id, sequence, cohort_dir / r[f"{sequence}_image"],
              cohort_dir / r[f"{sequence}_roi"], cfg, series_rule(r, sequence, cfg.series_description), limits)
             for _, r in cohort.iterrows()]
    results = map_patients(_extract_one, tasks, jobs=jobs, progress=progress)
    good, exclusions = keep_or_exclude(results, cfg.on_error)
    if not good:
        raise RoiError("(all)", sequence, "no patient could be cropped")
    out = SequenceCrops(
        sequence=sequence,
        # rounded to the float16 stored on disk, so a fresh and a cached result are identical
        crops=np.concatenate([g.crops for g in good]).astype(np.float16).astype(np.float32),
        patient_id=np.concatenate([[g.patient_id] * len(g.crops) for g in good]).astype(str),
        slice_index=np.concatenate([g.slice_index for g in good]),
        bbox=np.concatenate([g.bbox for g in good]),
        area_mm2=np.concatenate([g.area_mm2 for g in good]),
        spacing=np.concatenate([[g.spacing] * len(g.crops) for g in good]),
        raw_range=np.concatenate([g.raw_range for g in good]),
        per_patient=pd.DataFrame([dict(patient_id=g.patient_id, n_crops=len(g.crops),
                                       selected=g.selected, tic_type=g.tic_type,
                                       tic_curve=g.tic_curve, tic_times_s=g.tic_times_s,
                                       warnings="; ".join(g.warnings))
                                  for g in good]),
        exclusions=exclusions, key=key)
    try:
        out.save(cached)
    except OSError:
        pass  # a read-only cache is not an error
    return out


# ----------------------------------------------------------------------------- QC
@dataclass(frozen=True)
class QcView:
    """What the QC panel shows for one patient and sequence.

    Attributes:
        image: the largest tumour slice of the selected image.
        mask: the mask on that slice.
        box: the crop box after the margin, rounded to pixels ``(r0, r1, c0, c1)``.
        crop: the crop the model sees (min-max normalised).
        title: patient, sequence, selection, slice and pixel size.
        aspect: row / column pixel spacing (for display).
    """

    image: np.ndarray
    mask: np.ndarray
    box: tuple[int, int, int, int]
    crop: np.ndarray
    title: str
    aspect: float


def qc_view(row: pd.Series, cohort_dir: str | Path, sequence: str, cfg: RoiConfig,
            limits: dict | None = None) -> QcView:
    """The QC view of one patient / sequence (largest tumour slice, its central one for a box
    ROI; mask, crop box, crop)."""
    cohort_dir = Path(cohort_dir)
    pid = row["patient_id"]
    sel = load_selected(pid, sequence, cohort_dir / row[f"{sequence}_image"],
                        cohort_dir / row[f"{sequence}_roi"], cfg,
                        series_rule(row, sequence, cfg.series_description), limits)
    vol, mask = sel.volume, sel.mask
    _, sr, sc = vol.spacing
    z = largest_slice(mask.sum(axis=(1, 2)))
    box = expand_box(bbox_2d(mask[z]), (sr, sc), margin_mm=cfg.margin_mm, keep_aspect=cfg.keep_aspect)
    crop = minmax(crop_resize(vol.array[z], box, cfg.size))
    title = f"{pid} {sequence} {sel.selected} · slice {z} · {sr:.2f}x{sc:.2f} mm"
    return QcView(vol.array[z], mask[z], tuple(int(round(v)) for v in box), crop, title, sr / sc)
