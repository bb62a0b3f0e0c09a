"""DICOM input as hospitals export it: classic and enhanced MR series, study folders, DICOM SEG.

* **Files.** A folder is searched recursively (hidden names skipped). A file without the
  ``DICM`` preamble is not DICOM (a mask, ``.json`` sidecar, ...): it is skipped and listed
  once in :attr:`Volume.warnings`. A file *with* the preamble that cannot be read is an error
  naming the file. DICOM objects without pixel data (``DICOMDIR``, SR, PR) and segmentations
  are not image series and are passed over.
* **Pixel data.** Native little-endian 8/16-bit monochrome is read straight from the buffer
  (about 40x faster than ``pixel_array``); every other transfer syntax goes through pydicom's
  decoders (the package installs pylibjpeg with its libjpeg and openjpeg back ends: JPEG
  baseline / extended / lossless, JPEG-LS, JPEG 2000; RLE and deflate are pydicom's own).
* **Classic and enhanced MR.** A classic series is one file per slice; an Enhanced MR or
  Legacy Converted Enhanced MR object holds every frame in one file, with geometry, b-value,
  temporal position and rescale in its shared and per-frame functional groups (for legacy
  converted objects, attributes without a functional group are read from the "unassigned
  converted attributes" sequences). Both become the same list of frames, grouped by b-value
  or temporal position and ordered along the slice normal.
* **Study folders.** A folder may hold several series. With one image series no rule is
  needed; otherwise a *series rule* picks them: a SeriesInstanceUID, or a regular expression
  searched (case-insensitive) in SeriesDescription. Several matching series are joined into
  one sequence when their geometry agrees (DCE phases or b-values exported as separate
  series); phases from separate series are numbered in acquisition order.
* **DICOM SEG masks** are read with highdicom and placed on the image's own slices by their
  plane positions; nothing is resampled.

No identifying attribute (:data:`~alnm_core.imaging.IDENTIFYING_TAGS`) is read into an object
or a message: only geometry, acquisition parameters, series descriptions, numbers and UIDs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pathlib import Path
from typing import Any

import numpy as np

from .dicom_attrs import (  # noqa: F401 (ENHANCED_KINDS re-exported)
    ENHANCED_KINDS, _Frame, _b_value, _fg, _frame_list, _groups, _is_enhanced, _meta, _shared_value, _temporal, _time_s, _vector,
)
from .dicom_header import DEFLATED, check_deflated, check_image_header, limit, transfer_syntax
from .inputs import refuse_special, walk_files
from .volume import ImageReadError, SeriesInfo, Volume

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
MR_STORAGE = ("1.2.840.10008.5.1.4.1.1.4", *ENHANCED_KINDS)
#: pixel data larger than this is read from the file only when a series is used, so a study
#: folder's other series never load their pixels
_DEFER_BYTES = 1 << 16
_NATIVE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99")
#: where several decoders are installed, the faster one (JPEG-LS: CharLS about 4x libjpeg)
_PREFERRED_DECODER = {"1.2.840.10008.1.2.4.80": "pyjpegls", "1.2.840.10008.1.2.4.81": "pyjpegls"}
_MAX_LISTED = 5


@dataclass
class _Series:
    """The files of one SeriesInstanceUID found in a folder."""

    uid: str
    items: list[tuple[Path, Any]]

    @property
    def first(self):
        return self.items[0][1]


# ----------------------------------------------------------------------------- files
def _has_preamble(path: Path) -> bool:
    """Whether ``path`` carries the DICOM Part 10 ``DICM`` marker at byte 128."""
    try:
        with open(path, "rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def is_dicom_file(path: str | Path) -> bool:
    """Whether ``path`` is a file with the DICOM preamble (cheap: reads 132 bytes)."""
    path = Path(path)
    return path.is_file() and _has_preamble(path)


def _list_files(folder: Path, max_files: int | None = None) -> list[Path]:
    """Every file below ``folder`` (sorted; names starting with a dot are left out).

    Raises:
        ImageReadError: a FIFO, device, socket or broken link below it, or more than
            ``max_files`` entries (:func:`alnm_core.inputs.walk_files`).
    """
    return walk_files(folder, max_files=max_files)


def _read_dataset(path: Path, max_voxels: int | None = None):
    """The dataset of a DICOM file (large pixel data deferred), or None if it is not DICOM.

    A file with the preamble is checked before its pixels are read: it must carry file meta
    information (a transfer syntax), and an image's header must declare a matrix whose pixel
    data it holds and at most ``max_voxels`` voxels (a deflated file is checked while it is
    inflated, so a small file that inflates to gigabytes is refused without inflating it).

    Raises:
        ImageReadError: naming the file: it has the DICOM preamble but cannot be read, or its
            header is refused.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        if transfer_syntax(path) == DEFLATED:
            check_deflated(path, max_voxels)
        ds = pydicom.dcmread(path, defer_size=_DEFER_BYTES)
    except InvalidDicomError as exc:
        if not _has_preamble(path):
            return None
        raise ImageReadError(f"{path}: not a readable DICOM file ({type(exc).__name__})") from exc
    except ImageReadError:
        raise
    except Exception as exc:  # pydicom raises many types on damaged files
        raise ImageReadError(f"{path}: not a readable DICOM file ({type(exc).__name__})") from exc
    meta = getattr(ds, "file_meta", None)
    if not meta or "TransferSyntaxUID" not in meta:
        raise ImageReadError(f"{path}: not a readable DICOM file (the DICOM preamble is followed "
                             "by no file meta information: damaged, or not DICOM)")
    if "PixelData" in ds and "SegmentSequence" not in ds:
        check_image_header(path, ds, max_voxels)
    return ds


def _scan(files: list[Path], root: Path, max_voxels: int | None = None) -> tuple[list[_Series], list[str]]:
    """Group the image files by series; return the series and the non-DICOM files skipped."""
    series: dict[str, _Series] = {}
    skipped = []
    for f in files:
        ds = _read_dataset(f, max_voxels)
        if ds is None:
            skipped.append(f.relative_to(root).as_posix() if f != root else f.name)
            continue
        if "PixelData" not in ds:
            if str(ds.file_meta.get("MediaStorageSOPClassUID", "")) in MR_STORAGE:
                raise ImageReadError(f"{f}: MR image without pixel data (truncated or damaged file)")
            continue  # DICOMDIR, structured report, presentation state...
        if "SegmentSequence" in ds:
            continue  # a segmentation (DICOM SEG) saved beside the images
        uid = str(ds.get("SeriesInstanceUID", ""))
        series.setdefault(uid, _Series(uid, [])).items.append((f, ds))
    return sorted(series.values(), key=_series_number), skipped


def _series_number(s: _Series) -> tuple[int, str]:
    """Sort key listing series as a viewer does: by SeriesNumber, then description."""
    number = s.first.get("SeriesNumber")
    return (int(number) if number not in (None, "") else 0, str(s.first.get("SeriesDescription", "")))


def _skipped_note(skipped: list[str]) -> str:
    listed = ", ".join(skipped[:_MAX_LISTED])
    more = f" and {len(skipped) - _MAX_LISTED} more" if len(skipped) > _MAX_LISTED else ""
    return f"skipped {len(skipped)} non-DICOM file(s): {listed}{more}"


# ----------------------------------------------------------------------------- inventory
def _plane(iop) -> str:
    if iop is None:
        return "no orientation"
    iop = np.asarray(iop, float)
    normal = np.abs(np.cross(iop[:3], iop[3:]))
    axis = int(np.argmax(normal))
    return ("sagittal", "coronal", "axial")[axis] if normal[axis] > 0.9 else "oblique"


def _image_keys(s: _Series) -> list[tuple]:
    """(b-value, temporal position) of every image of a series; None where unreadable."""
    keys = []
    for _, d in s.items:
        enhanced = _is_enhanced(d)
        for i in range(int(d.get("NumberOfFrames", 1) or 1) if enhanced else 1):
            g = _groups(d, i) if enhanced else None
            try:
                keys.append((_b_value(d, g), _temporal(d, g)))
            except (TypeError, ValueError):
                keys.append((None, None))
    return keys


def _summary(s: _Series, keys: list[tuple] | None = None, selected: bool = False) -> SeriesInfo:
    """What a user needs to write a series rule; tolerant of series that cannot be read.

    Args:
        s: the series.
        keys: its images' (b-value, temporal position), if already known.
        selected: whether the volume is read from it.
    """
    ds = s.first
    keys = _image_keys(s) if keys is None else keys
    b_values = {k[0] for k in keys if k[0] is not None}
    phases = {k[1] for k in keys if k[1] is not None}
    iop = ds.get("ImageOrientationPatient")
    if iop is None and _is_enhanced(ds):
        iop = _fg(_groups(ds, 0), "PlaneOrientationSequence", "ImageOrientationPatient")
    number = ds.get("SeriesNumber")
    return SeriesInfo(
        uid=s.uid, number=int(number) if number not in (None, "") else None,
        description=str(ds.get("SeriesDescription", "")), n_files=len(s.items), n_images=len(keys),
        kind=ENHANCED_KINDS.get(str(ds.get("SOPClassUID", "")), str(ds.get("Modality", "")) or "image"),
        plane=_plane(iop), b_values=tuple(sorted(b_values)),
        n_phases=len(phases) if len(phases) > 1 else 0, selected=selected)


def _inventory(found: list[_Series]) -> str:
    return "; ".join(_summary(s).line() for s in found)


def _select_series(found: list[_Series], rule: str | None, where: Path) -> list[_Series]:
    """The series a rule picks: a SeriesInstanceUID, or a SeriesDescription pattern.

    Raises:
        ImageReadError: no rule while the folder holds several series, a rule matching none,
            or a pattern that is not a regular expression; each lists the series found.
    """
    if not rule:
        if len(found) == 1:
            return found
        raise ImageReadError(
            f"{where}: holds {len(found)} series; choose with a series rule (a SeriesInstanceUID or "
            f"a SeriesDescription pattern; in a cohort: column <SEQ>_series or roi.series_description): "
            f"{_inventory(found)}")
    rule = rule.strip()
    exact = [s for s in found if s.uid == rule]
    if exact:
        return exact
    try:
        pattern = re.compile(rule, re.IGNORECASE)
    except re.error as exc:
        raise ImageReadError(f"{where}: series rule {rule!r} is neither a SeriesInstanceUID of the "
                             f"folder nor a valid regular expression ({exc})") from exc
    matched = [s for s in found if pattern.search(str(s.first.get("SeriesDescription", "")))]
    if not matched:
        raise ImageReadError(f"{where}: no series matches rule {rule!r}; found: {_inventory(found)}")
    return matched


# ----------------------------------------------------------------------------- assembly
def _series_order(found: list[_Series]) -> list[_Series]:
    """Series in acquisition order (first acquisition time, then SeriesNumber)."""
    def key(s: _Series):
        times = [_time_s(ds, _groups(ds, 0) if _is_enhanced(ds) else None) for _, ds in s.items]
        t = np.nanmin(times) if not np.all(np.isnan(times)) else np.inf
        return (t, _series_number(s))
    return sorted(found, key=key)


def _group_keys(frames_by_series: list[list[_Frame]], where: Path) -> list[list[tuple]]:
    """The (b-value, phase) key of every frame; phases of joined series renumbered in order.

    Raises:
        ImageReadError: joined series repeat a b-value.
    """
    own = [[(f.b, f.temporal) for f in frames] for frames in frames_by_series]
    if len(own) == 1:
        return own
    owner: dict[tuple, int] = {}
    clash = None
    for i, keys in enumerate(own):
        for k in set(keys):
            if owner.setdefault(k, i) != i:
                clash = k
    if clash is None:
        return own
    if any(k[0] is not None for keys in own for k in keys):
        raise ImageReadError(f"{where}: the joined series repeat b-value {clash[0]:g}; "
                             "name one series per b-value with a narrower rule")
    order = sorted({(i, k[1] or 0) for i, keys in enumerate(own) for k in keys})
    number = {ik: n + 1 for n, ik in enumerate(order)}
    return [[(None, number[(i, k[1] or 0)]) for k in keys] for i, keys in enumerate(own)]


def _frame_pixels(frames: list[_Frame]) -> np.ndarray:
    """Rescaled pixels of ``frames`` as float32 ``(n, rows, cols)``, decoding each file once."""
    cache: dict[int, np.ndarray] = {}
    out = []
    for fr in frames:
        key = id(fr.ds)
        if key not in cache:
            try:
                cache[key] = _pixels(fr.ds)
            except Exception as exc:  # pydicom raises many types for bad pixel data
                raise ImageReadError(f"{fr.file}: pixel data cannot be decoded ({exc})") from exc
        out.append(cache[key][fr.index] * fr.slope + fr.intercept)
    return np.stack(out)


def _pixels(ds) -> np.ndarray:
    """All frames of a dataset as float32 ``(n, rows, cols)``: a direct view of the buffer for
    native little-endian 8/16-bit monochrome, pydicom's decoders for everything else."""
    tsuid = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
    bits = int(ds.get("BitsAllocated", 0))
    rows, cols = int(ds.Rows), int(ds.Columns)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples != 1:
        raise ValueError(f"colour image (SamplesPerPixel {samples}); MR series are greyscale")
    if tsuid in _NATIVE and bits in (8, 16):
        dtype = {(8, 0): np.uint8, (8, 1): np.int8, (16, 0): np.uint16, (16, 1): np.int16}[
            (bits, int(ds.get("PixelRepresentation", 0)))]
        buf = ds.PixelData
        need = n * rows * cols * (bits // 8)
        if len(buf) < need:
            raise ValueError(f"pixel data holds {len(buf)} bytes, expected {need}")
        arr = np.frombuffer(buf, dtype=dtype, count=n * rows * cols).reshape(n, rows, cols)
        stored = int(ds.get("BitsStored", bits))
        if stored < bits and dtype in (np.uint8, np.uint16):
            arr = arr & ((1 << stored) - 1)
        return arr.astype(np.float32)
    return _decode(ds, tsuid).reshape(n, rows, cols).astype(np.float32)


def _decode(ds, tsuid: str) -> np.ndarray:
    """Decompressed pixels through pydicom's decoders, the faster plugin where there is a choice."""
    from pydicom.pixels import get_decoder

    plugin = _PREFERRED_DECODER.get(tsuid)
    if plugin and plugin in get_decoder(tsuid).available_plugins:
        ds.pixel_array_options(decoding_plugin=plugin)
    return ds.pixel_array


def _odd_one(values: list[tuple], close) -> int | None:
    """Index of the first value that differs from the most common one (None if all agree)."""
    groups: list[list[int]] = []
    for i, v in enumerate(values):
        for g in groups:
            if close(values[g[0]], v):
                g.append(i)
                break
        else:
            groups.append([i])
    if len(groups) == 1:
        return None
    common = max(groups, key=len)
    return min(i for g in groups if g is not common for i in g)


def _check_consistent(frames: list[_Frame]) -> None:
    """Every frame has the series' orientation, matrix and pixel spacing; the one that differs
    from the most common value is named (not its neighbour)."""
    bad = _odd_one([tuple(fr.orientation) for fr in frames],
                   lambda a, b: np.all(np.abs(np.subtract(a, b)) <= 1e-4))
    if bad is not None:
        raise ImageReadError(f"{frames[bad].file}: orientation differs from the rest of the series")
    bad = _odd_one([fr.pixel_spacing for fr in frames],
                   lambda a, b: np.all(np.isclose(a, b, rtol=1e-4, atol=1e-4)))
    if bad is not None:
        fr = frames[bad]
        raise ImageReadError(f"{fr.file}: pixel spacing {list(fr.pixel_spacing)} differs from the series")
    files = list({id(fr.ds): fr for fr in frames}.values())
    bad = _odd_one([(int(fr.ds.Rows), int(fr.ds.Columns)) for fr in files], lambda a, b: a == b)
    if bad is not None:
        fr = files[bad]
        raise ImageReadError(f"{fr.file}: matrix {fr.ds.Rows}x{fr.ds.Columns} differs from the series")


def _assemble(frames: list[_Frame], keys: list[tuple], where: Path, require_axial: bool):
    """Stack frames into ``(n, z, y, x)`` by (b-value, phase) and position along the normal.

    Returns:
        ``(stacks, keys_sorted, positions, first_frame, group_times, normal)``.
    """
    iop = frames[0].orientation
    normal = np.cross(iop[:3], iop[3:])
    if require_axial and abs(normal[2]) < 0.9:
        raise ImageReadError(
            f"{where}: series is not axial (slice normal {np.round(normal, 2).tolist()}); "
            "the study uses axial T2WI, DWI and DCE")
    _check_consistent(frames)
    along = np.array([fr.position for fr in frames]) @ normal
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    order_keys = sorted(groups, key=lambda k: (k[0] if k[0] is not None else -1, k[1] or 0))
    stacks, times, positions0, first = [], [], None, frames[0]
    for key in order_keys:
        idx = np.array(groups[key])
        idx = idx[np.argsort(along[idx], kind="stable")]
        pos = along[idx]
        if len(pos) > 1 and np.any(np.diff(pos) < 1e-3):
            dup = frames[int(idx[int(np.argmin(np.diff(pos)))])]
            frame = f" (frame {dup.index + 1})" if _is_enhanced(dup.ds) else ""
            raise ImageReadError(f"{dup.file}{frame}: two slices at the same position in {where}")
        if positions0 is None:
            positions0, first = pos, frames[int(idx[0])]
        elif len(pos) != len(positions0) or not np.allclose(pos, positions0, atol=1e-2):
            raise ImageReadError(f"{where}: b-values/phases do not share slice positions (group {key})")
        ordered = [frames[int(i)] for i in idx]
        stacks.append(_frame_pixels(ordered))
        times.append(ordered[0].time_s)
    return stacks, order_keys, positions0, first, times, normal


def _volume(selected: list[_Series], found: list[_Series], where: Path, require_axial: bool,
            warnings: tuple[str, ...], max_voxels: int | None = None) -> Volume:
    """Read the selected series (one, or several to be joined) into a Volume."""
    selected = _series_order(selected) if len(selected) > 1 else selected
    frames_by_series = [[fr for f, ds in s.items for fr in _frame_list(f, ds)] for s in selected]
    keys = _group_keys(frames_by_series, where)
    frames = [fr for frs in frames_by_series for fr in frs]
    voxels = sum(int(fr.ds.Rows) * int(fr.ds.Columns) for fr in frames)
    if voxels > limit(max_voxels):
        raise ImageReadError(f"{where}: the series holds {len(frames)} images, {voxels:,} voxels in all, "
                             f"more than the limit of {limit(max_voxels):,} (input.max_voxels); "
                             "refused before reading its pixels")
    flat_keys = [k for ks in keys for k in ks]
    stacks, order_keys, positions0, first, times, normal = _assemble(frames, flat_keys, where, require_axial)
    ds0 = frames[0].ds
    dz = float(np.median(np.diff(positions0))) if len(positions0) > 1 else float(
        _shared_value(ds0, "PixelMeasuresSequence", "SpacingBetweenSlices")
        or _shared_value(ds0, "PixelMeasuresSequence", "SliceThickness") or 1.0)
    if len(positions0) > 2 and np.ptp(np.diff(positions0)) > 0.01 * max(dz, 1e-6) + 1e-3:
        raise ImageReadError(f"{where}: slices are not evenly spaced")
    iop = frames[0].orientation
    direction = (iop[0], iop[3], normal[0], iop[1], iop[4], normal[1], iop[2], iop[5], normal[2])
    has_b = order_keys[0][0] is not None
    b_vals = tuple(k[0] for k in order_keys) if has_b else None
    dynamic = not has_b and order_keys[0][1] is not None and len(order_keys) > 1
    phases = tuple(k[1] for k in order_keys) if dynamic else None
    array = np.stack(stacks) if len(stacks) > 1 or b_vals else stacks[0]
    phase_times = None
    if phases is not None and not np.any(np.isnan(times)):
        phase_times = tuple(float(t - times[0]) for t in times)
    own_keys = {s.uid: [(fr.b, fr.temporal) for fr in frs] for s, frs in zip(selected, frames_by_series)}
    return Volume(
        array=array.astype(np.float32, copy=False),
        spacing=(abs(dz), first.pixel_spacing[0], first.pixel_spacing[1]),
        origin=tuple(float(v) for v in first.position),
        direction=tuple(float(v) for v in direction),
        b_values=b_vals,
        phases=phases,
        phase_times_s=phase_times,
        meta=_meta(ds0, sum(len(s.items) for s in selected), len(frames), len(selected)),
        path=str(where),
        series=tuple(_summary(s, own_keys.get(s.uid), s.uid in own_keys) for s in found),
        frame_of_reference_uid=str(ds0.get("FrameOfReferenceUID", "")),
        warnings=warnings,
    )


def read_dicom_series(path: str | Path, *, require_axial: bool = True, series: str | None = None,
                      max_voxels: int | None = None, max_files: int | None = None) -> Volume:
    """Read DICOM into a :class:`Volume`; several b-values or phases become a leading axis.

    Args:
        path: a series folder, a study folder (series in subfolders or side by side), or one
            (enhanced, multi-frame) DICOM file.
        require_axial: refuse series whose slice normal is not head-foot (paper: axial).
        series: series rule: a SeriesInstanceUID, or a regular expression searched
            (case-insensitive) in SeriesDescription; several matching series are joined.
            Needed only when the folder holds more than one image series.
        max_voxels: the largest image read (default
            :data:`~alnm_core.config.DEFAULT_MAX_VOXELS`, ``input.max_voxels``), checked on
            every file's header and on the series before any pixel is decoded.
        max_files: the most entries below a folder (``input.max_files``).

    Raises:
        ImageReadError: naming the file or folder: nothing readable, a damaged DICOM file, a
            FIFO, device or socket, a header declaring an impossible or too large image,
            an ambiguous or unmatched rule (listing the series found), inconsistent geometry,
            non-axial orientation, undecodable pixel data.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        refuse_special(path)
    if path.is_dir():
        files = _list_files(path, max_files)
        if not files:
            raise ImageReadError(f"{path}: folder holds no DICOM files")
    elif path.is_file():
        files = [path]
    else:
        raise ImageReadError(f"{path}: DICOM series folder not found")
    found, skipped = _scan(files, path, max_voxels)
    note = _skipped_note(skipped) if skipped else ""
    if not found:
        raise ImageReadError(f"{path}: no DICOM file with pixel data" + (f" ({note})" if note else ""))
    selected = _select_series(found, series, path)
    try:
        return _volume(selected, found, path, require_axial, (f"{path}: {note}",) if note else (),
                       max_voxels)
    except ImageReadError as exc:
        context = [f"rule {series!r} joins {len(selected)} series: {_inventory(selected)}"] if len(selected) > 1 else []
        context += [note] if note else []
        if not context:
            raise
        raise ImageReadError("; ".join([str(exc), *context])) from exc


# ----------------------------------------------------------------------------- SEG masks
def read_seg_mask(path: str | Path, like: Volume | None) -> np.ndarray:
    """A DICOM SEG as a boolean ``(z, y, x)`` mask on the slices of ``like``, not resampled.

    The SEG must reference ``like``'s series (or share its frame of reference when it names no
    series), hold one segment, and have every frame on one of the image's slices with the
    image's orientation, pixel spacing and matrix.

    Raises:
        ImageReadError: naming the file: unreadable, another series, several segments,
            frames off the image's grid.
    """
    path = Path(path)
    if like is None or not like.series:
        raise ImageReadError(f"{path}: a DICOM SEG mask can only be placed on a DICOM image series")
    seg = _read_seg(path)
    _check_seg_reference(seg, path, like)
    numbers = list(seg.get_segment_numbers())
    if len(numbers) != 1:
        labels = [seg.get_segment_description(n).segment_label for n in numbers]
        raise ImageReadError(f"{path}: SEG holds {len(numbers)} segments {labels}; "
                             "one tumour segment per file is expected")
    return _place_frames(seg, path, like)


def _read_seg(path: Path):
    import highdicom as hd

    try:
        return hd.seg.segread(path)
    except Exception as exc:  # highdicom / pydicom raise many types on a damaged object
        raise ImageReadError(f"{path}: not a readable DICOM SEG ({type(exc).__name__}: {exc})") from exc


def _check_seg_reference(seg, path: Path, like: Volume) -> None:
    image_uids = [s.uid for s in like.series if s.selected]
    referenced = sorted({str(r.SeriesInstanceUID) for r in seg.get("ReferencedSeriesSequence", [])}
                        | {str(u[1]) for u in seg.get_source_image_uids()})
    if referenced and not set(referenced) & set(image_uids):
        raise ImageReadError(f"{path}: SEG references series {', '.join(referenced)}, image is series "
                             f"{', '.join(image_uids)} ({like.path})")
    seg_for = str(seg.get("FrameOfReferenceUID", ""))
    if not referenced and seg_for != like.frame_of_reference_uid:
        raise ImageReadError(f"{path}: SEG names no source series and its frame of reference differs "
                             f"from the image's ({like.path})")


def _place_frames(seg, path: Path, like: Volume) -> np.ndarray:
    """Put every SEG frame on the image slice at its plane position (0.1 voxel tolerance)."""
    nz, ny, nx = like.shape3d
    if (int(seg.Rows), int(seg.Columns)) != (ny, nx):
        raise ImageReadError(f"{path}: SEG matrix {seg.Rows}x{seg.Columns} differs from its image "
                             f"{ny}x{nx} ({like.path})")
    axes = np.asarray(like.direction, float).reshape(3, 3)  # columns: x, y, z axes
    spacing_xyz = np.array(like.spacing[::-1], float)
    pixels = seg.pixel_array.reshape(-1, ny, nx)
    fractional = str(seg.get("SegmentationType", "")) == "FRACTIONAL"
    threshold = float(seg.get("MaximumFractionalValue", 1)) / 2 if fractional else 0
    mask = np.zeros((nz, ny, nx), bool)
    for i in range(pixels.shape[0]):
        g = _groups(seg, i)
        ipp = _vector(f"{path}, frame {i + 1}", _fg(g, "PlanePositionSequence", "ImagePositionPatient"),
                      "ImagePositionPatient (PlanePositionSequence)", 3)
        iop = _fg(g, "PlaneOrientationSequence", "ImageOrientationPatient")
        ps = _fg(g, "PixelMeasuresSequence", "PixelSpacing")
        if iop is not None and not np.allclose(np.asarray(iop, float), [*axes[:, 0], *axes[:, 1]], atol=1e-3):
            raise ImageReadError(f"{path}: SEG frame {i + 1} orientation differs from its image ({like.path})")
        if ps is not None and not np.allclose([float(v) for v in ps], like.spacing[1:], rtol=1e-3, atol=1e-3):
            raise ImageReadError(f"{path}: SEG pixel spacing {[float(v) for v in ps]} differs from its "
                                 f"image {list(like.spacing[1:])} ({like.path})")
        idx = axes.T @ (ipp - np.asarray(like.origin)) / spacing_xyz
        z = int(round(idx[2]))
        if np.any(np.abs(idx - [0, 0, z]) > 0.1) or not 0 <= z < nz:
            raise ImageReadError(f"{path}: SEG frame {i + 1} at {np.round(ipp, 2).tolist()} "
                                 f"is not on a slice of its image ({like.path})")
        mask[z] |= pixels[i] > threshold
    return mask
