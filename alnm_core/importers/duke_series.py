"""The Duke-Breast-Cancer-MRI DICOM tree, read without pixels: which series make the DCE.

TCIA's download (NBIA Data Retriever) is ``Duke-Breast-Cancer-MRI/Breast_MRI_001/<study>/
<series>/1-001.dcm``, where ``<study>`` and ``<series>`` are descriptive folder names such as
``01-01-1990-NA-MRI BREAST BILATERAL W  WO-93773`` and ``3.000000-ax dyn pre-93877`` (an older
"classic" layout names them by StudyInstanceUID and SeriesInstanceUID). Each DCE phase is its own
series: the pre-contrast (``ax dyn pre``) and three or four post-contrast series (``ax dyn 1st
pass`` .. ``ax dyn 4th pass``; on some scanners ``ax 3d dyn`` and ``Ph1/ax 3d dyn`` ..), beside a
T1 series. Only one or two headers per series folder are read (``stop_before_pixels``): the
series' description, number, time and geometry, and from the first and last file the direction
in which InstanceNumber runs along the slice normal (the annotation boxes count slices in that
order).

Example:
    >>> classify("ax dyn 2nd pass"), classify("Ph3/ax 3d dyn"), classify("ax 3d dyn")
    (('post', 2), ('post', 3), ('pre', 0))
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..boxes import Box
from . import ImporterError
from .duke_tables import PATIENT_ID, DukeBox

#: the header attributes read (never a name, birth date or other identifying attribute)
HEADER_TAGS = ["SeriesInstanceUID", "SeriesDescription", "SeriesNumber", "AcquisitionTime", "InstanceNumber",
               "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns",
               "NumberOfFrames", "MagneticFieldStrength", "Modality"]
_DYN = re.compile(r"\bdyn")
_DERIVED = re.compile(r"\b(sub|subtract\w*|mip|mpr|reformat\w*|cad)\b")
_PASS = re.compile(r"\b([1-9])(st|nd|rd|th) pass\b")
_PH = re.compile(r"\bph ?([1-9])")
_MAPPING_NAMES = {"pre": ("pre", 0), "t1": ("t1", 0)} | {f"post_{k}": ("post", k) for k in range(1, 10)}


def classify(description: str) -> tuple[str, int]:
    """``(kind, phase)`` of a series from its SeriesDescription: ``("pre", 0)``,
    ``("post", k)``, ``("t1", 0)`` or ``("other", 0)``.

    DCE series name ``dyn`` (``ax dyn pre``, ``ax 3d dyn``, ``ax dynamic``); a post-contrast one
    says which (``1st pass`` .. ``4th pass``, or ``Ph1`` .. ``Ph4``, also with the slash lost as in
    TCIA's folder names: ``Ph1ax 3d dyn``); a DCE name without a phase is the pre-contrast series.
    Derived series (subtraction, MIP, MPR, CAD) are ``other``. The patterns follow public Duke
    readers (docs/public-data.md).
    """
    d = " ".join(re.sub(r"[^a-z0-9]+", " ", str(description).lower()).split())
    if not _DYN.search(d):
        return ("t1", 0) if re.search(r"\bt1\b", d) else ("other", 0)
    if _DERIVED.search(d):
        return ("other", 0)
    m = _PASS.search(d) or _PH.search(d)
    if m:
        return ("post", int(m.group(1)))
    if re.search(r"\bpost\b", d):
        return ("other", 0)  # a post-contrast series that does not say which
    return ("pre", 0)


def mapping_kind(name: str) -> tuple[str, int]:
    """``(kind, phase)`` of the mapping spreadsheet's series name (``pre``, ``post_2``, ``T1``)."""
    return _MAPPING_NAMES.get(str(name).strip().lower(), ("other", 0))


# ----------------------------------------------------------------------------- the tree
def find_collection_root(path: str | Path) -> Path:
    """The folder holding the ``Breast_MRI_<n>`` patient folders: ``path`` itself, or its
    ``Duke-Breast-Cancer-MRI`` folder (also below a ``manifest-<n>`` folder).

    Raises:
        ImporterError: no such folder (what ``path`` holds is named).
    """
    path = Path(path)
    if not path.is_dir():
        raise ImporterError(f"{path}: DICOM download folder not found")
    candidates = [path, path / "Duke-Breast-Cancer-MRI"]
    candidates += sorted(p / "Duke-Breast-Cancer-MRI" for p in path.glob("manifest-*"))
    for c in candidates:
        if c.is_dir() and any(PATIENT_ID.match(e.name) and e.is_dir() for e in os.scandir(c)):
            return c
    shown = sorted(e.name for e in os.scandir(path))[:8]
    raise ImporterError(f"{path}: no Breast_MRI_<number> patient folders here or in "
                        f"Duke-Breast-Cancer-MRI/ (found {shown})")


def patient_folders(root: Path) -> dict[str, Path]:
    """``{patient_id: folder}`` of every ``Breast_MRI_<n>`` folder below the collection root."""
    return {e.name: Path(e.path) for e in os.scandir(root) if e.is_dir() and PATIENT_ID.match(e.name)}


def series_folders(patient_dir: Path) -> list[Path]:
    """The folders below a patient that hold files: ``<study>/<series>/`` (or ``<series>/``)."""
    out = []
    for study in sorted(os.scandir(patient_dir), key=lambda e: e.name):
        if not study.is_dir():
            continue
        subs = sorted((e for e in os.scandir(study.path) if e.is_dir()), key=lambda e: e.name)
        if subs:
            out += [Path(s.path) for s in subs]
        elif any(e.is_file() for e in os.scandir(study.path)):
            out.append(Path(study.path))
    return out


@dataclass(eq=False)  # one series is one object: compared by identity
class SeriesHeader:
    """What one or two headers of a series folder say (no pixel data read).

    Attributes:
        folder: the series folder.
        uid, description, number: SeriesInstanceUID, SeriesDescription, SeriesNumber.
        time_s: AcquisitionTime of the first file, seconds since midnight (NaN if absent).
        n_files: files in the folder (one slice each for classic MR).
        rows, columns, pixel_spacing, frames: geometry of the first file.
        field_strength: MagneticFieldStrength (T), if given.
        ascending: InstanceNumber grows along the slice normal (None until measured, or when
            the first and last file do not tell).
        kind, phase: :func:`classify` (or the mapping spreadsheet's name).
        error: why the folder could not be read (empty if it could).
    """

    folder: Path
    uid: str = ""
    description: str = ""
    number: int | None = None
    time_s: float = float("nan")
    n_files: int = 0
    rows: int = 0
    columns: int = 0
    pixel_spacing: tuple[float, float] | None = None
    frames: int = 1
    field_strength: float | None = None
    modality: str = ""
    ascending: bool | None = None
    kind: str = "other"
    phase: int = 0
    error: str = ""
    _files: tuple[str, ...] = ()
    _first: tuple | None = None  # (InstanceNumber, ImagePositionPatient, ImageOrientationPatient) of files[0]


def _seconds(tm) -> float:
    text = str(tm or "").strip()
    try:
        return int(text[0:2]) * 3600 + int(text[2:4] or 0) * 60 + float(text[4:] or 0)
    except ValueError:
        return float("nan")


def _header(path: Path):
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=HEADER_TAGS)


def read_series(folder: Path) -> SeriesHeader:
    """Read the first header of a series folder (never its pixels)."""
    h = SeriesHeader(folder)
    try:
        files = sorted(e.name for e in os.scandir(folder) if e.is_file() and not e.name.startswith("."))
    except OSError as exc:
        h.error = f"folder cannot be listed ({exc})"
        return h
    h.n_files, h._files = len(files), tuple(files)
    if not files:
        h.error = "folder holds no file"
        return h
    try:
        ds = _header(folder / files[0])
    except Exception as exc:  # pydicom raises many types on damaged or non-DICOM files
        h.error = f"{files[0]} is not a readable DICOM file ({type(exc).__name__})"
        return h
    h.uid = str(ds.get("SeriesInstanceUID", ""))
    h.description = str(ds.get("SeriesDescription", ""))
    number = ds.get("SeriesNumber")
    h.number = int(number) if number not in (None, "") else None
    h.time_s = _seconds(ds.get("AcquisitionTime"))
    h.rows, h.columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    ps = ds.get("PixelSpacing")
    h.pixel_spacing = (float(ps[0]), float(ps[1])) if ps is not None and len(ps) == 2 else None
    h.frames = int(ds.get("NumberOfFrames", 1) or 1)
    fs = ds.get("MagneticFieldStrength")
    h.field_strength = float(fs) if fs not in (None, "") else None
    h.modality = str(ds.get("Modality", ""))
    h.kind, h.phase = classify(h.description) if h.modality in ("MR", "") else ("other", 0)
    h._first = _placement(ds)
    return h


def _placement(ds) -> tuple | None:
    """(InstanceNumber, position, orientation) of a header, None if one is missing or malformed."""
    try:
        return (int(ds.InstanceNumber), np.asarray(ds.ImagePositionPatient, float),
                np.asarray(ds.ImageOrientationPatient, float))
    except Exception:  # absent or not numeric
        return None


def measure_direction(h: SeriesHeader) -> None:
    """Set ``h.ascending`` from the first and last file: whether InstanceNumber grows along the
    slice normal (the order alnm's reader stacks slices in). Left None when it cannot tell."""
    if h.error or h.n_files < 2 or h.frames > 1 or h._first is None:
        return
    try:
        last = _placement(_header(h.folder / h._files[-1]))
    except Exception:  # not readable: direction unknown
        return
    if last is None or last[2].shape != (6,) or h._first[2].shape != (6,):
        return
    iop = h._first[2]
    normal = np.cross(iop[:3], iop[3:])
    da = float(last[0] - h._first[0])
    dz = float((last[1] - h._first[1]) @ normal)
    if da != 0 and abs(dz) > 1e-3:
        h.ascending = (da > 0) == (dz > 0)


# ----------------------------------------------------------------------------- the DCE
@dataclass(frozen=True)
class DceChoice:
    """The series that make a patient's DCE, in phase order (pre-contrast first)."""

    series: tuple[SeriesHeader, ...]
    study: Path
    rule: str

    @property
    def pre(self) -> SeriesHeader:
        return self.series[0]


class Refusal(Exception):
    """Why a patient's DCE cannot be assembled: ``code`` and ``reason``."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def choose_dce(headers: list[SeriesHeader], *, need_direction: bool = True) -> DceChoice:
    """The DCE of one patient: the pre-contrast and post-contrast series, checked.

    Checks (each failure is a :class:`Refusal` with a code): one pre-contrast series, at least
    one post-contrast series, one series per phase, all in one study folder, acquisition order
    (AcquisitionTime, then SeriesNumber, as alnm's DICOM reader orders joined series) equal to
    the phase order, one geometry (matrix, pixel spacing, number of slices), descriptions that
    no other series of the study shares (the manifest's series rule selects by description), and
    (``need_direction``, for boxes) the InstanceNumber direction of every phase known and equal.
    """
    found = "; ".join(f"{h.description or h.folder.name!r} ({h.kind})" for h in headers) or "none"
    dce = [h for h in headers if not h.error and h.kind in ("pre", "post")]
    pre = [h for h in dce if h.kind == "pre"]
    posts = sorted((h for h in dce if h.kind == "post"), key=lambda h: h.phase)
    if not pre:
        unread = [f"{h.folder.name}: {h.error}" for h in headers if h.error]
        raise Refusal("no_pre", f"no pre-contrast DCE series recognised (series: {found})"
                      + (f"; unreadable: {unread}" if unread else ""))
    if len(pre) > 1:
        raise Refusal("ambiguous_series", f"{len(pre)} series look pre-contrast: "
                                          f"{[h.description for h in pre]}")
    phases = [h.phase for h in posts]
    if not posts:
        raise Refusal("no_post", f"no post-contrast DCE series recognised (series: {found})")
    if len(set(phases)) != len(phases):
        raise Refusal("ambiguous_series", f"two series for one post-contrast phase: "
                                          f"{[(h.description, h.phase) for h in posts]}")
    chosen = [pre[0], *posts]
    if len({h.folder.parent for h in chosen}) > 1:
        raise Refusal("several_studies", "the DCE series lie in different study folders: "
                                         f"{sorted({h.folder.parent.name for h in chosen})}")
    by_time = sorted(chosen, key=lambda h: (h.time_s if not math.isnan(h.time_s) else math.inf,
                                            h.number or 0, h.description))
    if by_time != chosen:
        raise Refusal("phase_order", "acquisition order (AcquisitionTime, then SeriesNumber) "
                                     f"{[h.description for h in by_time]} differs from the phase order "
                                     f"{[h.description for h in chosen]}")
    geometry = {(h.rows, h.columns, h.n_files, h.pixel_spacing, h.frames) for h in chosen}
    if len(geometry) > 1:
        raise Refusal("phase_geometry", "the phases differ in matrix, pixel spacing or number of files: "
                                        f"{[(h.description, h.rows, h.columns, h.n_files) for h in chosen]}")
    names = {h.description.casefold() for h in chosen}
    clash = [h.description for h in headers if h not in chosen and h.description.casefold() in names]
    if clash or len(names) != len(chosen):
        raise Refusal("ambiguous_series", f"another series of the study shares a DCE description "
                                          f"({clash or [h.description for h in chosen]}); a series rule "
                                          "by description cannot tell them apart")
    if need_direction:
        for h in chosen:
            measure_direction(h)
        dirs = {h.ascending for h in chosen}
        if None in dirs or len(dirs) > 1:
            raise Refusal("slice_order", "cannot tell in which direction InstanceNumber runs along the "
                                         f"slices ({[(h.description, h.ascending) for h in chosen]}); "
                                         "the box's slices cannot be placed")
    rule = "^(?:" + "|".join(re.escape(h.description) for h in chosen) + ")$"
    return DceChoice(tuple(chosen), chosen[0].folder.parent, rule)


def duke_box(b: DukeBox, shape: tuple[int, int, int], *, ascending: bool) -> Box:
    """A Duke annotation box as a :class:`~alnm_core.boxes.Box` in alnm's voxel order.

    Duke's boxes are 1-based and inclusive; rows and columns are the image's, slices count in
    InstanceNumber order (TCIA's file names ``1-001.dcm`` ..). alnm stacks slices along the
    slice normal, so where InstanceNumber runs the other way (``ascending`` False) the slice
    range is counted from the other end.

    Raises:
        ValueError: the box reaches outside an image of ``shape`` ``(slices, rows, columns)``.
    """
    nz, ny, nx = shape
    if b.end_row > ny or b.end_column > nx or b.end_slice > nz:
        raise ValueError(f"box rows {b.start_row}-{b.end_row}, columns {b.start_column}-{b.end_column}, "
                         f"slices {b.start_slice}-{b.end_slice} (1-based) reach outside the image "
                         f"({ny} rows, {nx} columns, {nz} slices)")
    if ascending:
        s0, s1 = b.start_slice - 1, b.end_slice
    else:
        s0, s1 = nz - b.end_slice, nz - b.start_slice + 1
    return Box(s0, s1, b.start_row - 1, b.end_row, b.start_column - 1, b.end_column)
