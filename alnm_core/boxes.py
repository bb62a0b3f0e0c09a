"""Bounding-box ROIs: a tumour box standing in for a mask, for data sets that have only boxes.

A box ROI is a small CSV file that ``<SEQ>_roi`` names instead of a mask (any ROI path ending
in ``.csv``). Each row is one box in the image's own voxel grid, **0-based and half-open**, in
the array order every alnm reader returns (``(z, y, x)``: slices ordered along the slice normal,
rows and columns as stored in the image)::

    slice0,slice1,row0,row1,col0,col1
    41,52,233,270,301,345

covers slices 41..51, rows 233..269 and columns 301..344. Several rows are united (e.g. one box
per slice, as the paper drew them, or multifocal tumours). The box becomes a binary mask on the
image it belongs to (:func:`read_box_mask`), so every step that reads masks (crops, QC views,
radiomics, ``alnm predict``, ``alnm validate``) reads boxes too; a box that does not lie inside
its image is an error naming the file, the box and the image's shape, never clipped silently.

A box is not a tumour outline: crops are the same (the paper cropped a box around the tumour),
but the DCE time-intensity curve is averaged over the whole box, and shape radiomics describe
the box. Public collections give boxes in their own conventions (1-based, inclusive, slices
counted in file order); converting them is the importer's job (see
:func:`alnm_core.importers.duke.duke_box`).

Example:
    >>> b = Box(1, 3, 2, 4, 0, 2)
    >>> box_mask([b], (4, 5, 5)).sum()
    8
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .volume import ImageReadError, Volume

#: the columns of a box file, in this order
BOX_COLUMNS = ("slice0", "slice1", "row0", "row1", "col0", "col1")


@dataclass(frozen=True)
class Box:
    """A 3D box in voxel indices, 0-based, half-open: slices ``slice0 .. slice1 - 1`` etc."""

    slice0: int
    slice1: int
    row0: int
    row1: int
    col0: int
    col1: int

    def __post_init__(self):
        for a, b in (("slice0", "slice1"), ("row0", "row1"), ("col0", "col1")):
            lo, hi = getattr(self, a), getattr(self, b)
            if not (isinstance(lo, (int, np.integer)) and isinstance(hi, (int, np.integer))):
                raise ValueError(f"{a}/{b} must be whole numbers, got {lo!r}, {hi!r}")
            if lo < 0 or hi <= lo:
                raise ValueError(f"{a}={lo}, {b}={hi}: need 0 <= {a} < {b} (0-based, half-open)")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Size in voxels ``(slices, rows, columns)``."""
        return (self.slice1 - self.slice0, self.row1 - self.row0, self.col1 - self.col0)

    def fits(self, shape: tuple[int, int, int]) -> bool:
        """Whether the box lies inside an image of ``shape`` ``(z, y, x)``."""
        return self.slice1 <= shape[0] and self.row1 <= shape[1] and self.col1 <= shape[2]

    def extent_mm(self, spacing: tuple[float, float, float]) -> tuple[float, float, float]:
        """Size in millimetres along ``(z, y, x)`` for a voxel ``spacing`` ``(z, y, x)``."""
        return tuple(float(n * s) for n, s in zip(self.shape, spacing))  # type: ignore[return-value]

    def as_row(self) -> list[int]:
        return [int(getattr(self, c)) for c in BOX_COLUMNS]


def is_box_file(path: str | Path) -> bool:
    """Whether an ROI path names a box file (it ends in ``.csv``)."""
    return Path(path).suffix.lower() == ".csv"


def write_boxes(path: str | Path, boxes: list[Box]) -> Path:
    """Write a box file (header :data:`BOX_COLUMNS`, one row per box)."""
    if not boxes:
        raise ValueError("a box file holds at least one box")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(BOX_COLUMNS)
        for b in boxes:
            w.writerow(b.as_row())
    return path


def read_boxes(path: str | Path) -> list[Box]:
    """The boxes of a box file.

    Raises:
        ImageReadError: naming the file (and line): missing, no header, missing columns,
            values that are not whole numbers, empty or reversed ranges, no box.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: box file not found")
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ImageReadError(f"{path}: box file cannot be read ({exc})") from exc
    if not rows:
        raise ImageReadError(f"{path}: box file is empty (expected the header {','.join(BOX_COLUMNS)})")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in BOX_COLUMNS if c not in header]
    if missing:
        raise ImageReadError(f"{path}: box file lacks column(s) {missing}; its header is {header} "
                             f"(expected {','.join(BOX_COLUMNS)}: 0-based, half-open voxel indices)")
    idx = [header.index(c) for c in BOX_COLUMNS]
    boxes = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(v.strip() for v in row):
            continue
        try:
            values = [int(row[i].strip()) for i in idx]
        except (ValueError, IndexError) as exc:
            raise ImageReadError(f"{path}, line {line}: box values must be whole numbers "
                                 f"({row})") from exc
        try:
            boxes.append(Box(*values))
        except ValueError as exc:
            raise ImageReadError(f"{path}, line {line}: {exc}") from exc
    if not boxes:
        raise ImageReadError(f"{path}: box file holds no box")
    return boxes


def box_mask(boxes: list[Box], shape: tuple[int, int, int], *, where: str = "") -> np.ndarray:
    """The union of ``boxes`` as a boolean ``(z, y, x)`` mask of ``shape``.

    Raises:
        ImageReadError: a box reaching outside the image (its voxels and the image's shape are
            named: a wrong slice or row/column convention shows up here).
    """
    mask = np.zeros(shape, bool)
    for b in boxes:
        if not b.fits(shape):
            raise ImageReadError(
                f"{where + ': ' if where else ''}box slices {b.slice0}..{b.slice1 - 1}, rows "
                f"{b.row0}..{b.row1 - 1}, columns {b.col0}..{b.col1 - 1} (0-based) reaches outside "
                f"its image of {shape[0]} slices x {shape[1]} rows x {shape[2]} columns")
        mask[b.slice0:b.slice1, b.row0:b.row1, b.col0:b.col1] = True
    return mask


def read_box_mask(path: str | Path, like: Volume | None) -> np.ndarray:
    """A box file as a boolean mask on the grid of its image ``like``.

    Raises:
        ImageReadError: no image to place the box on, an unreadable box file, or a box outside
            the image.
    """
    if like is None:
        raise ImageReadError(f"{path}: a box ROI is given in its image's voxels; it can only be "
                             "read together with that image")
    return box_mask(read_boxes(path), like.shape3d, where=f"{path} on {like.path or 'its image'}")


def mask_box(mask: np.ndarray) -> Box:
    """The smallest box holding every voxel of a 3D mask (e.g. to turn a mask into a box file)."""
    if not mask.any():
        raise ValueError("empty mask has no box")
    ranges = []
    for ax in range(3):
        other = tuple(a for a in range(3) if a != ax)
        idx = np.flatnonzero(mask.any(axis=other))
        ranges += [int(idx[0]), int(idx[-1]) + 1]
    return Box(*ranges)


# ----------------------------------------------------------------------------- convention check
def mean_enhancement(pre: np.ndarray, post: np.ndarray, box: Box) -> float:
    """Mean relative enhancement ``(post - pre) / pre`` inside a box (pre-contrast voxels at or
    below 1 % of the image's 99th percentile are left out: air has no meaningful ratio)."""
    sl = (slice(box.slice0, box.slice1), slice(box.row0, box.row1), slice(box.col0, box.col1))
    a, b = pre[sl].astype(float), post[sl].astype(float)
    floor = 0.01 * float(np.percentile(pre, 99)) if pre.size else 0.0
    ok = a > max(floor, 0.0)
    if not ok.any():
        return float("nan")
    return float(np.mean((b[ok] - a[ok]) / a[ok]))


def convention_candidates(box: Box, shape: tuple[int, int, int]) -> dict[str, Box]:
    """The box as imported and as the other readings of a collection's convention would place
    it: slices counted from the other end, rows and columns swapped, and both (those that fit)."""
    nz = shape[0]
    flipped = Box(nz - box.slice1, nz - box.slice0, box.row0, box.row1, box.col0, box.col1)
    swapped = Box(box.slice0, box.slice1, box.col0, box.col1, box.row0, box.row1)
    both = Box(flipped.slice0, flipped.slice1, box.col0, box.col1, box.row0, box.row1)
    out = {"as imported": box, "slices reversed": flipped, "rows/columns swapped": swapped,
           "both": both}
    return {k: b for k, b in out.items() if b.fits(shape)}


def convention_scores(pre: np.ndarray, post: np.ndarray, box: Box) -> dict[str, float]:
    """Mean relative enhancement in each of :func:`convention_candidates`: with the right
    convention the box holds the enhancing tumour, so ``as imported`` should score highest."""
    return {k: mean_enhancement(pre, post, b) for k, b in convention_candidates(box, pre.shape).items()}
