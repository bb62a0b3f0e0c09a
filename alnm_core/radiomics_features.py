"""Radiomics features: IBSI-oriented hand-crafted features of the tumour, per patient and
sequence, from the same image and mask the CNN crops come from.

The image is the one :func:`alnm_core.roi.load_selected` picks for the crops (T2WI as acquired,
DWI at the configured b-value, default the highest; DCE at the phase of peak relative
enhancement of the tumour ROI), so the radiomics and the CNN arms see the same voxels. Features
are computed in 3D on the whole mask by pyradiomics (the maintained ``pyradiomics-bhklab`` fork,
imported as ``radiomics``): optional z-score normalisation of the image (x 100), isotropic
resampling (B-spline image, nearest-neighbour mask), fixed-bin-width discretisation, then the
configured feature classes (``shape``, ``firstorder``, ``glcm``, ``glrlm``, ``glszm``, ``gldm``,
``ngtdm``). Results are cached by content, like the crops: the key hashes every image and mask
byte, the image selection, the extraction settings and the library version.

Example:
    >>> import numpy as np
    >>> from alnm_core.config import RadiomicsConfig
    >>> img = np.full((10, 20, 20), 5.0); mask = np.zeros(img.shape, bool); mask[2:8, 5:15, 5:15] = True
    >>> f = volume_features(img, mask, (1.0, 1.0, 1.0),
    ...                     RadiomicsConfig(feature_classes=("shape",), resample_mm=None, normalize=False))
    >>> f["shape_VoxelVolume"]
    600.0
"""
from __future__ import annotations

import functools
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .cohort import series_rule
from .config import RadiomicsConfig, RoiConfig
from .roi import RoiError, input_digest, keep_or_exclude, load_selected, map_patients
from .storage import atomic_path

CACHE_VERSION = 1


class RadiomicsError(RoiError):
    """A patient / sequence whose features cannot be computed; the message names both (the
    patient/sequence/file error of :class:`~alnm_core.roi.RoiError`, marked "radiomics")."""

    def __init__(self, patient_id: str, sequence: str, reason: str, file: str = ""):
        super().__init__(patient_id, sequence, f"radiomics: {reason}", file)
        self.reason = reason  # unprefixed: RoiError.__reduce__ rebuilds the same message


def library_version() -> str:
    """The radiomics library's version (part of the cache key)."""
    import radiomics

    return f"pyradiomics {radiomics.__version__}"


def _settings(cfg: RadiomicsConfig) -> tuple:
    return (tuple(cfg.feature_classes), cfg.bin_width, cfg.resample_mm, cfg.normalize)


@functools.lru_cache(maxsize=4)
def _extractor(settings: tuple):
    import radiomics
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    radiomics.setVerbosity(logging.ERROR)
    classes, bin_width, resample_mm, normalize = settings
    ex = RadiomicsFeatureExtractor(
        binWidth=bin_width, resampledPixelSpacing=None if resample_mm is None else [resample_mm] * 3,
        interpolator="sitkBSpline", normalize=normalize, normalizeScale=100, label=1,
        force2D=False, additionalInfo=False,
        # a small tumour on a coarse DWI grid can be one row of voxels: computed, not refused
        minimumROIDimensions=1)
    ex.disableAllFeatures()
    for c in classes:
        ex.enableFeatureClassByName(c)
    return ex


def extractor(cfg: RadiomicsConfig):
    """A configured :class:`radiomics.featureextractor.RadiomicsFeatureExtractor` (one per
    process and settings)."""
    return _extractor(_settings(cfg))


def _sitk(array: np.ndarray, spacing_zyx, dtype) -> "object":
    import SimpleITK as sitk

    im = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=dtype))
    im.SetSpacing(tuple(float(v) for v in spacing_zyx[::-1]))  # SimpleITK: (x, y, z)
    return im


def volume_features(image: np.ndarray, mask: np.ndarray, spacing_zyx, cfg: RadiomicsConfig) -> dict[str, float]:
    """Features of one 3D image ``(z, y, x)`` inside a binary mask; names ``<class>_<feature>``.

    Raises:
        ValueError: the library refused the image or mask (e.g. a mask that vanishes after
            resampling), or a feature is not finite.
    """
    res = extractor(cfg).execute(_sitk(image, spacing_zyx, np.float32),
                                 _sitk(mask.astype(np.uint8), spacing_zyx, np.uint8))
    out = {k.removeprefix("original_"): float(v) for k, v in res.items()
           if k.startswith("original_")}
    bad = sorted(k for k, v in out.items() if not np.isfinite(v))
    if bad:
        raise ValueError(f"non-finite feature(s) {bad[:4]}")
    return out


def extract_patient(patient_id: str, sequence: str, image_path: Path, mask_path: Path,
                    roi_cfg: RoiConfig, cfg: RadiomicsConfig, series: str | None = None,
                    limits: dict | None = None) -> dict[str, float]:
    """The features of one patient and sequence, from the image the crops use.

    Raises:
        RadiomicsError: naming patient, sequence and (where known) the file.
    """
    try:
        sel = load_selected(patient_id, sequence, image_path, mask_path, roi_cfg, series, limits)
    except RoiError as exc:
        raise RadiomicsError(patient_id, sequence, exc.reason, exc.file) from exc
    img, mask = sel.volume.array, sel.mask
    if not mask.any():
        raise RadiomicsError(patient_id, sequence, "empty tumour mask", str(mask_path))
    if not np.all(np.isfinite(img[mask])):
        raise RadiomicsError(patient_id, sequence, "tumour voxels contain NaN or infinite values",
                             str(image_path))
    try:
        return volume_features(img, mask, sel.volume.spacing, cfg)
    except Exception as exc:  # the library's own errors (ValueError, RuntimeError, sitk errors)
        raise RadiomicsError(patient_id, sequence, f"{type(exc).__name__}: {exc}", str(image_path)) from exc


def content_key(rows: pd.DataFrame, sequence: str, cohort_dir: Path, roi_cfg: RoiConfig,
                cfg: RadiomicsConfig) -> str:
    """Hash of the inputs' bytes, the image selection and the extraction settings."""
    settings = {"v": CACHE_VERSION, "seq": sequence, "lib": library_version(),
                "select": [roi_cfg.dwi_b_value, roi_cfg.dce_phase, roi_cfg.series_description],
                "cfg": {k: v for k, v in asdict(cfg).items()
                        if k in ("feature_classes", "bin_width", "resample_mm", "normalize")}}
    return input_digest(rows, sequence, cohort_dir, settings)[:32]


def default_cache_dir() -> Path:
    return Path(os.environ.get("ALNM_CACHE", Path.home() / ".cache" / "alnm")) / "radiomics"


@dataclass
class SequenceFeatures:
    """The features of one sequence: what ``artifacts/radiomics/<SEQ>.csv`` holds.

    Attributes:
        features: ``patient_id`` and one column per feature (patients that failed are absent).
        exclusions: ``patient_id, sequence, reason, file`` of each patient that failed.
        seconds_per_patient: extraction time (reading included) per patient, one process.
    """

    sequence: str
    features: pd.DataFrame
    exclusions: list[dict]
    key: str = ""
    seconds_per_patient: float = float("nan")

    def to_json(self) -> str:
        return json.dumps({"sequence": self.sequence, "key": self.key, "exclusions": self.exclusions,
                           "seconds_per_patient": self.seconds_per_patient,
                           "features": self.features.to_dict(orient="split", index=False)})

    @classmethod
    def from_json(cls, text: str) -> "SequenceFeatures":
        d = json.loads(text)
        f = d["features"]
        df = pd.DataFrame(f["data"], columns=f["columns"])
        df["patient_id"] = df["patient_id"].astype(str)
        return cls(d["sequence"], df, d["exclusions"], d["key"], d["seconds_per_patient"])


def _extract_one(args):
    pid, seq, img, roi, roi_cfg, cfg, series, limits = args
    t0 = time.process_time()
    try:
        return pid, extract_patient(pid, seq, img, roi, roi_cfg, cfg, series, limits), time.process_time() - t0
    except RadiomicsError as exc:
        return pid, exc, time.process_time() - t0


def extract_sequence(cohort: pd.DataFrame, cohort_dir: str | Path, sequence: str, roi_cfg: RoiConfig,
                     cfg: RadiomicsConfig, *, cache_dir: Path | None = None, jobs: int | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     limits: dict | None = None) -> SequenceFeatures:
    """Features of every patient for one sequence, reusing a cached result with the same key.

    A patient that fails stops the extraction with :class:`RadiomicsError` when
    ``cfg.on_error == "fail"``; with ``"exclude"`` it is listed in ``exclusions`` (its
    features are then imputed by the training patients' medians in each model).
    """
    cohort_dir = Path(cohort_dir)
    cache_dir = cache_dir or default_cache_dir()
    key = content_key(cohort, sequence, cohort_dir, roi_cfg, cfg)
    cached = cache_dir / f"{sequence}-{key}.json"
    if cached.is_file():
        try:
            return SequenceFeatures.from_json(cached.read_text())
        except (OSError, ValueError, KeyError):
            cached.unlink(missing_ok=True)
    tasks = [(r.patient_id, sequence, cohort_dir / r[f"{sequence}_image"], cohort_dir / r[f"{sequence}_roi"],
              roi_cfg, cfg, series_rule(r, sequence, roi_cfg.series_description), limits)
             for _, r in cohort.iterrows()]
    results = map_patients(_extract_one, tasks, jobs=jobs, progress=progress)
    good, exclusions = keep_or_exclude([r if isinstance(r, RoiError) else (pid, r) for pid, r, _ in results],
                                       cfg.on_error)
    rows = [{"patient_id": str(pid), **r} for pid, r in good]
    if not rows:
        raise RadiomicsError("(all)", sequence, "no patient's features could be computed")
    out = SequenceFeatures(sequence, pd.DataFrame(rows), exclusions, key,
                           float(np.mean([t for *_, t in results])))
    out = SequenceFeatures.from_json(out.to_json())  # exactly what the cache gives back
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached, what=f"the {sequence} radiomics cache") as tmp:
            tmp.write_text(out.to_json())
    except OSError:
        pass  # a read-only cache is not an error
    return out
