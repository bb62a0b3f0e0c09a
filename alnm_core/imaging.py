"""Reading MRI series: DICOM series and study folders, NIfTI and NRRD files, and binary masks.

DICOM is read with pydicom by :mod:`alnm_core.dicom` (slices ordered by their position along the
slice normal, never by file name), because a DWI series holds several b-values and a DCE series
several phases in one folder, and SimpleITK's series reader would stack them as one volume; it
also reads enhanced (multi-frame) MR, study folders holding several series, compressed transfer
syntaxes and DICOM SEG masks. NIfTI / NRRD images and masks are read with SimpleITK. Arrays
are ``(z, y, x)`` (or ``(n, z, y, x)`` for DWI / DCE stacks); spacing is ``(z, y, x)`` in
millimetres, as for ``SimpleITK.GetArrayFromImage``.

No patient-identifying attribute (names, birth dates, accession numbers) is read into the
returned objects: only geometry, acquisition parameters and pseudonymous ids.

Example:
    >>> vol = read_image("cohort/P001/DWI")            # doctest: +SKIP
    >>> vol.b_values, vol.array.shape                    # doctest: +SKIP
    ((50.0, 800.0), (2, 9, 59, 38))
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .volume import IDENTIFYING_TAGS, ImageReadError, SeriesInfo, Volume

__all__ = ["IDENTIFYING_TAGS", "ImageReadError", "SeriesInfo", "Volume", "read_dicom_series",
           "read_image", "read_mask", "read_sitk_file", "write_mask_nifti"]


#: the SimpleITK image readers alnm uses, by file name ending (no other format is opened)
_IMAGE_IOS = ((".nii.gz", "NiftiImageIO"), (".nii", "NiftiImageIO"), (".nrrd", "NrrdImageIO"),
              (".nhdr", "NrrdImageIO"))


def _image_io(path: Path) -> str:
    name = path.name.lower()
    for end, io in _IMAGE_IOS:
        if name.endswith(end):
            return io
    raise ImageReadError(f"{path}: not a DICOM file or folder, nor a NIfTI (.nii, .nii.gz) or NRRD "
                         "(.nrrd, .nhdr) file")


def read_sitk_file(path: str | Path, *, max_voxels: int | None = None) -> Volume:
    """Read a NIfTI (``.nii``, ``.nii.gz``) or NRRD (``.nrrd``, ``.nhdr``) file via SimpleITK.

    Only SimpleITK's NIfTI and NRRD readers are used (chosen by the file name), the header is
    read first and an image declaring more than ``max_voxels`` voxels is refused before its
    pixels are read; a detached NRRD's data files must be regular files.

    Raises:
        ImageReadError: naming the file.
    """
    import SimpleITK as sitk

    from .dicom_header import limit
    from .inputs import nrrd_data_files, refuse_special

    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: file not found")
    refuse_special(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: is a folder holding no DICOM series, not a NIfTI / NRRD file")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO(_image_io(path))
    for data in nrrd_data_files(path):
        refuse_special(data)
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise ImageReadError(f"{path}: cannot be read as NIfTI/NRRD ({str(exc).splitlines()[0]})") from exc
    if reader.GetDimension() != 3:
        raise ImageReadError(f"{path}: expected a 3D image, got {reader.GetDimension()}D")
    size = tuple(int(v) for v in reader.GetSize())
    voxels = int(np.prod(size, dtype=object)) * max(1, int(reader.GetNumberOfComponents()))
    if voxels > limit(max_voxels):
        raise ImageReadError(f"{path}: declares {' x '.join(map(str, size))} = {voxels:,} voxels, more "
                             f"than the limit of {limit(max_voxels):,} (input.max_voxels); refused "
                             "before reading its pixels")
    try:
        img = reader.Execute()
    except RuntimeError as exc:
        raise ImageReadError(f"{path}: cannot be read as NIfTI/NRRD ({str(exc).splitlines()[0]})") from exc
    arr = sitk.GetArrayFromImage(img).astype(np.float32)
    sx, sy, sz = img.GetSpacing()
    return Volume(
        array=arr,
        spacing=(float(sz), float(sy), float(sx)),
        origin=tuple(float(v) for v in img.GetOrigin()),
        direction=tuple(float(v) for v in img.GetDirection()),
        path=str(path),
    )


def read_dicom_series(path: str | Path, *, require_axial: bool = True,
                      series: str | None = None, max_voxels: int | None = None,
                      max_files: int | None = None) -> Volume:
    """Read a DICOM series / study folder or file: :func:`alnm_core.dicom.read_dicom_series`."""
    from . import dicom

    return dicom.read_dicom_series(path, require_axial=require_axial, series=series,
                                   max_voxels=max_voxels, max_files=max_files)


def read_image(path: str | Path, *, require_axial: bool = True, series: str | None = None,
               max_voxels: int | None = None, max_files: int | None = None) -> Volume:
    """Read a DICOM series or study folder, a DICOM file, or a NIfTI / NRRD file.

    Args:
        path: what to read: a regular file or a folder (a FIFO, device or socket is refused
            without being opened).
        require_axial: refuse non-axial DICOM series.
        series: DICOM series rule (a SeriesInstanceUID or a SeriesDescription pattern), for
            folders holding several series; ignored for NIfTI / NRRD.
        max_voxels: the largest image read, checked from its header (default
            :data:`~alnm_core.config.DEFAULT_MAX_VOXELS`; ``input.max_voxels``).
        max_files: the most entries below a DICOM folder (``input.max_files``).
    """
    from .dicom import is_dicom_file
    from .inputs import refuse_special

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ImageReadError(f"{path}: not found")
    refuse_special(path)
    if path.is_dir() or is_dicom_file(path):
        return read_dicom_series(path, require_axial=require_axial, series=series,
                                 max_voxels=max_voxels, max_files=max_files)
    return read_sitk_file(path, max_voxels=max_voxels)


def read_mask(path: str | Path, *, like: Volume | None = None, atol_mm: float = 0.05,
              max_voxels: int | None = None) -> np.ndarray:
    """Read a binary tumour mask, optionally checking it matches an image's geometry.

    Args:
        path: NIfTI / NRRD mask file, a DICOM SEG file, a DICOM folder, or a bounding-box
            file (``.csv``, see :mod:`alnm_core.boxes`: boxes in ``like``'s voxels).
        like: the image the mask belongs to; shape, spacing and origin must agree (a DICOM
            SEG is placed on its slices and must reference its series; a box must lie inside).
        atol_mm: tolerance for spacing / origin agreement.
        max_voxels: the largest mask read, checked from its header (``input.max_voxels``).

    Returns:
        Boolean array ``(z, y, x)``.

    Raises:
        ImageReadError: unreadable, not binary, empty, or not in the image's geometry.
    """
    from .boxes import is_box_file, read_box_mask
    from .dicom import is_dicom_file, read_seg_mask
    from .inputs import refuse_special

    if not Path(path).exists() and not Path(path).is_symlink():
        raise ImageReadError(f"{path}: not found")
    refuse_special(path)
    if is_box_file(path):
        return read_box_mask(path, like)
    if is_dicom_file(path) and _is_seg(Path(path), max_voxels):
        mask = read_seg_mask(path, like)
        if not mask.any():
            raise ImageReadError(f"{path}: mask is empty (no tumour voxel)")
        return mask
    vol = read_image(path, require_axial=False, max_voxels=max_voxels)
    arr = vol.array
    vals = np.unique(arr)
    if not np.all(np.isin(vals, (0, 1))):
        raise ImageReadError(f"{path}: mask is not binary (values {vals[:5].tolist()}...)")
    mask = arr > 0
    if not mask.any():
        raise ImageReadError(f"{path}: mask is empty (no tumour voxel)")
    if like is not None:
        if mask.shape != like.shape3d:
            raise ImageReadError(
                f"{path}: mask shape {mask.shape} does not match its image {like.shape3d} "
                f"({like.path})"
            )
        if not np.allclose(vol.spacing, like.spacing, atol=atol_mm):
            raise ImageReadError(
                f"{path}: mask spacing {np.round(vol.spacing, 3).tolist()} does not match its "
                f"image {np.round(like.spacing, 3).tolist()}"
            )
        if not np.allclose(vol.origin, like.origin, atol=max(atol_mm, 0.5)):
            raise ImageReadError(
                f"{path}: mask origin {np.round(vol.origin, 2).tolist()} does not match its "
                f"image {np.round(like.origin, 2).tolist()}"
            )
    return mask


def _is_seg(path: Path, max_voxels: int | None = None) -> bool:
    """Whether a DICOM file is a segmentation; a SEG's header is checked against
    ``max_voxels`` before highdicom reads it."""
    import pydicom

    from .dicom import SEG_STORAGE
    from .dicom_header import DEFLATED, check_deflated, check_image_header, transfer_syntax

    try:
        if transfer_syntax(path) == DEFLATED:
            check_deflated(path, max_voxels)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except ImageReadError:
        raise
    except Exception as exc:  # pydicom raises many types on damaged files
        raise ImageReadError(f"{path}: not a readable DICOM file ({type(exc).__name__})") from exc
    if str(ds.get("SOPClassUID", "")) != SEG_STORAGE:
        return False
    check_image_header(path, ds, max_voxels)
    return True


def write_mask_nifti(mask: np.ndarray, like: Volume, path: str | Path) -> None:
    """Write a binary mask as NIfTI in the geometry of ``like`` (spacing, origin, direction)."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    z, y, x = like.spacing
    img.SetSpacing((float(x), float(y), float(z)))
    img.SetOrigin(tuple(float(v) for v in like.origin))
    img.SetDirection(tuple(float(v) for v in like.direction))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path), useCompression=True)
