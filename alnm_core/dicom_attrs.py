"""DICOM attributes of one image: geometry, b-value, temporal position and time, rescale,
read from a classic file or from a multi-frame (enhanced or legacy converted) file's functional
groups (:mod:`alnm_core.dicom` assembles them into volumes).

No identifying attribute is read: only geometry, acquisition parameters and times.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from .volume import ImageReadError

ENHANCED_KINDS = {"1.2.840.10008.5.1.4.1.1.4.1": "enhanced MR",
                  "1.2.840.10008.5.1.4.1.1.4.4": "legacy converted enhanced MR"}
_UNASSIGNED = ("UnassignedPerFrameConvertedAttributesSequence",
               "UnassignedSharedConvertedAttributesSequence")


@dataclass
class _Frame:
    """One 2D image: a classic file, or one frame of a multi-frame file."""

    file: Path
    ds: Any
    index: int  # frame index in its file (0 for a classic file)
    position: np.ndarray
    orientation: np.ndarray
    pixel_spacing: tuple[float, float]
    b: float | None
    temporal: int | None
    slope: float
    intercept: float

    @property
    def time_s(self) -> float:
        """Acquisition time in seconds (NaN if unknown); read only where phases need it."""
        return _time_s(self.ds, _groups(self.ds, self.index) if _is_enhanced(self.ds) else None)


def _fg(groups, macro: str, keyword: str):
    """``keyword`` inside functional group ``macro`` of the first group item that has it."""
    for g in groups:
        seq = g.get(macro) if g is not None else None
        if seq:
            v = seq[0].get(keyword)
            if v is not None and v != "":
                return v
    return None


def _converted(groups, keyword: str):
    """``keyword`` from a legacy converted object's unassigned converted attributes."""
    for macro in _UNASSIGNED:
        v = _fg(groups, macro, keyword)
        if v is not None:
            return v
    return None


def _groups(ds, index: int) -> tuple:
    """(per-frame item, shared item) of frame ``index`` of an enhanced object."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    per = ds.get("PerFrameFunctionalGroupsSequence")
    return (per[index] if per else None, shared[0] if shared else None)


def _is_enhanced(ds) -> bool:
    return "PerFrameFunctionalGroupsSequence" in ds


def _b_value(ds, groups) -> float | None:
    if groups is None:
        v = ds.get("DiffusionBValue")
    else:
        v = _fg(groups, "MRDiffusionSequence", "DiffusionBValue")
        v = _converted(groups, "DiffusionBValue") if v is None else v
    return None if v is None or v == "" else float(v)


def _temporal(ds, groups) -> int | None:
    if groups is None:
        v = ds.get("TemporalPositionIdentifier")
    else:
        v = _fg(groups, "FrameContentSequence", "TemporalPositionIndex")
        v = _converted(groups, "TemporalPositionIdentifier") if v is None else v
    return None if v is None or v == "" else int(v)


def _seconds(value) -> float:
    """DICOM TM (seconds since midnight) or DT (seconds since 2000-01-01); NaN if unusable."""
    if value is None or str(value).strip() == "":
        return float("nan")
    text = str(value).strip()
    if len(text) >= 14 and text[:8].isdigit():  # DT: YYYYMMDDHHMMSS[.F][+ZZZZ]
        try:
            day = datetime.strptime(text[:8], "%Y%m%d") - datetime(2000, 1, 1)
        except ValueError:
            return float("nan")
        return day.total_seconds() + _seconds(re.split(r"[+-]", text[8:])[0])
    try:
        hh, mm, ss = int(text[0:2]), int(text[2:4] or 0), float(text[4:] or 0)
    except ValueError:
        return float("nan")
    return hh * 3600 + mm * 60 + ss


def _time_s(ds, groups) -> float:
    if groups is None:
        return _seconds(ds.get("AcquisitionTime"))
    v = _fg(groups, "FrameContentSequence", "FrameAcquisitionDateTime")
    for keyword in ("AcquisitionDateTime", "AcquisitionTime"):
        v = _converted(groups, keyword) if v is None else v
    return _seconds(v)


def _vector(where: str, value, name: str, size: int) -> np.ndarray:
    """A numeric DICOM multi-value of ``size`` numbers, or an error naming the file."""
    if value is None:
        raise ImageReadError(f"{where}: missing {name}")
    try:
        arr = np.asarray(value, float)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (size,):
        raise ImageReadError(f"{where}: {name} should hold {size} numbers")
    if not np.all(np.isfinite(arr)):
        raise ImageReadError(f"{where}: {name} holds a value that is not a finite number "
                             f"({', '.join(str(v) for v in value)})")
    return arr


def _geometry(where: str, position, orientation, spacing, names: tuple[str, str, str]) -> tuple:
    """A frame's position, orientation and pixel spacing, each checked on its own header.

    Raises:
        ImageReadError: naming ``where`` and the attribute: missing, not numbers, not finite,
            a spacing that is not positive, an orientation that is not two unit vectors.
    """
    pos = _vector(where, position, names[0], 3)
    iop = _vector(where, orientation, names[1], 6)
    ps = _vector(where, spacing, names[2], 2)
    if np.any(ps <= 0):
        raise ImageReadError(f"{where}: {names[2]} {ps.tolist()} is not a positive size")
    norms = np.linalg.norm(iop.reshape(2, 3), axis=1)
    if np.any(np.abs(norms - 1) > 0.05):
        raise ImageReadError(f"{where}: {names[1]} {iop.tolist()} is not two unit vectors")
    return pos, iop, tuple(ps)


def _frame_list(f: Path, ds) -> list[_Frame]:
    """The frames of one file with their geometry, b-value, temporal position and rescale.

    Raises:
        ImageReadError: naming the file (and frame): missing or malformed attributes.
    """
    try:
        if not _is_enhanced(ds):
            return [_classic_frame(f, ds)]
        return [_enhanced_frame(f, ds, i) for i in range(_n_frames(f, ds))]
    except ImageReadError:
        raise
    except (TypeError, ValueError) as exc:  # b-value, temporal position or rescale not numeric
        raise ImageReadError(f"{f}: unusable acquisition attribute ({exc})") from exc


def _classic_frame(f: Path, ds) -> _Frame:
    where = str(f)
    return _Frame(
        f, ds, 0,
        *_geometry(where, ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient"),
                   ds.get("PixelSpacing"),
                   ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")),
        _b_value(ds, None), _temporal(ds, None),
        float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0))


def _n_frames(f: Path, ds) -> int:
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if len(ds.PerFrameFunctionalGroupsSequence) != n:
        raise ImageReadError(f"{f}: {len(ds.PerFrameFunctionalGroupsSequence)} per-frame functional "
                             f"groups for {n} frames")
    return n


def _enhanced_frame(f: Path, ds, i: int) -> _Frame:
    g = _groups(ds, i)
    where = f"{f}, frame {i + 1}"
    slope = _fg(g, "PixelValueTransformationSequence", "RescaleSlope")
    inter = _fg(g, "PixelValueTransformationSequence", "RescaleIntercept")
    return _Frame(
        f, ds, i,
        *_geometry(where, _fg(g, "PlanePositionSequence", "ImagePositionPatient"),
                   _fg(g, "PlaneOrientationSequence", "ImageOrientationPatient"),
                   _fg(g, "PixelMeasuresSequence", "PixelSpacing"),
                   ("ImagePositionPatient (PlanePositionSequence)",
                    "ImageOrientationPatient (PlaneOrientationSequence)",
                    "PixelSpacing (PixelMeasuresSequence)")),
        _b_value(ds, g), _temporal(ds, g),
        float(slope if slope is not None else ds.get("RescaleSlope", 1) or 1),
        float(inter if inter is not None else ds.get("RescaleIntercept", 0) or 0))


def _shared_value(ds, macro: str, keyword: str, top: str | None = None):
    """An acquisition attribute: top level, else the shared functional groups."""
    v = ds.get(top or keyword)
    if (v is None or v == "") and _is_enhanced(ds):
        g = _groups(ds, 0)
        v = _fg(g[1:], macro, keyword)
        v = _converted(g[1:], top or keyword) if v is None else v
    return v


def _float_or_none(v) -> float | None:
    try:
        return None if v is None or v == "" else float(v)
    except (TypeError, ValueError):
        return None


def _meta(ds, n_files: int, n_images: int, n_series: int) -> dict:
    return {
        "Modality": str(ds.get("Modality", "")),
        "SeriesDescription": str(ds.get("SeriesDescription", "")),
        "MagneticFieldStrength": _float_or_none(ds.get("MagneticFieldStrength")),
        "RepetitionTime": _float_or_none(
            _shared_value(ds, "MRTimingAndRelatedParametersSequence", "RepetitionTime")),
        "EchoTime": _float_or_none(
            _shared_value(ds, "MREchoSequence", "EffectiveEchoTime", top="EchoTime")),
        "FlipAngle": _float_or_none(
            _shared_value(ds, "MRTimingAndRelatedParametersSequence", "FlipAngle")),
        "SliceThickness": _float_or_none(
            _shared_value(ds, "PixelMeasuresSequence", "SliceThickness")),
        "n_files": n_files,
        "n_images": n_images,
        "n_series": n_series,
    }
