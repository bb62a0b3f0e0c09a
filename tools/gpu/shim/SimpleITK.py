"""A NIfTI-1-only stand-in for SimpleITK, for ``tools/gpu_check.sh`` on the GPU machine only.

The device image has no SimpleITK, and its wheel (~50 MB) does not fit beside Ray in what a
device call may carry (64 MiB). alnm uses SimpleITK for NIfTI masks only on the phantom path
(``imaging.write_mask_nifti`` / ``imaging.read_sitk_file``); this module implements exactly the
calls those make, for 3D ``.nii`` / ``.nii.gz``, with SimpleITK's conventions: arrays ``(z, y,
x)``, spacing / origin / direction in LPS as ``(x, y, z)``, stored in the NIfTI header in RAS
(qform and sform), as SimpleITK writes them. Never on the package's path:
``tools/gpu_check.sh`` puts it first on ``PYTHONPATH`` (its ``--dry-run`` too, so the tests
exercise it against the real SimpleITK's files).
"""
from __future__ import annotations

import gzip
import struct

import numpy as np

__version__ = "0-alnm-nifti-shim"
_DTYPES = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64, 256: np.int8,
           512: np.uint16, 768: np.uint32}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_LPS_RAS = np.diag([-1.0, -1.0, 1.0])


class Image:
    def __init__(self, array: np.ndarray):
        self._a = np.asarray(array)
        self._spacing = (1.0, 1.0, 1.0)
        self._origin = (0.0, 0.0, 0.0)
        self._direction = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    def GetDimension(self) -> int:
        return self._a.ndim

    def GetSpacing(self):
        return self._spacing

    def GetOrigin(self):
        return self._origin

    def GetDirection(self):
        return self._direction

    def SetSpacing(self, v):
        self._spacing = tuple(float(x) for x in v)

    def SetOrigin(self, v):
        self._origin = tuple(float(x) for x in v)

    def SetDirection(self, v):
        self._direction = tuple(float(x) for x in v)


def GetImageFromArray(arr) -> Image:
    return Image(np.array(arr))


def GetArrayFromImage(img: Image) -> np.ndarray:
    return img._a.copy()


def _affine(img: Image) -> np.ndarray:
    d = np.array(img._direction).reshape(3, 3) @ np.diag(img._spacing)
    m = np.eye(4)
    m[:3, :3] = _LPS_RAS @ d
    m[:3, 3] = _LPS_RAS @ np.array(img._origin)
    return m


def _quatern(rot: np.ndarray) -> tuple[float, float, float, float]:
    """NIfTI quaternion (b, c, d) and qfac of a rotation (columns: unit axes)."""
    r = rot.copy()
    qfac = 1.0
    if np.linalg.det(r) < 0:
        r[:, 2] *= -1
        qfac = -1.0
    a = 0.5 * np.sqrt(max(0.0, 1 + r[0, 0] + r[1, 1] + r[2, 2]))
    if a > 1e-6:
        b, c, d = (r[2, 1] - r[1, 2]) / (4 * a), (r[0, 2] - r[2, 0]) / (4 * a), (r[1, 0] - r[0, 1]) / (4 * a)
    else:  # 180 degrees
        b = 0.5 * np.sqrt(max(0.0, 1 + r[0, 0] - r[1, 1] - r[2, 2]))
        c, d = r[0, 1] / (4 * b or 1), r[0, 2] / (4 * b or 1)
    return float(b), float(c), float(d), qfac


def WriteImage(img: Image, path: str, useCompression: bool = False) -> None:  # noqa: N802,N803
    a = img._a
    if a.ndim != 3:
        raise RuntimeError("shim: only 3D images")
    if a.dtype not in _CODES:
        a = a.astype(np.float32)
    z, y, x = a.shape
    aff = _affine(img)
    rot = aff[:3, :3] / np.array(img._spacing)
    b, c, d, qfac = _quatern(rot)
    hdr = bytearray(352)
    struct.pack_into("<i", hdr, 0, 348)
    struct.pack_into("<8h", hdr, 40, 3, x, y, z, 1, 1, 1, 1)
    struct.pack_into("<hh", hdr, 70, _CODES[a.dtype], a.dtype.itemsize * 8)
    struct.pack_into("<8f", hdr, 76, qfac, *img._spacing, 0, 0, 0, 0)
    struct.pack_into("<f", hdr, 108, 352.0)
    struct.pack_into("<ff", hdr, 112, 1.0, 0.0)  # scl_slope, scl_inter
    struct.pack_into("<B", hdr, 123, 10 | 8)  # xyzt_units: mm, s
    struct.pack_into("<hh", hdr, 252, 1, 1)  # qform_code, sform_code: scanner
    struct.pack_into("<6f", hdr, 256, b, c, d, *aff[:3, 3])
    struct.pack_into("<12f", hdr, 280, *aff[0], *aff[1], *aff[2])
    hdr[344:348] = b"n+1\0"
    data = bytes(hdr) + np.ascontiguousarray(a).tobytes(order="C")
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(data)


def ReadImage(path: str) -> Image:  # noqa: N802
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise RuntimeError(f"shim: cannot read {path}: {exc}") from exc
    if len(raw) < 352 or struct.unpack_from("<i", raw, 0)[0] != 348:
        raise RuntimeError(f"shim: {path} is not NIfTI-1 (only NIfTI-1 is supported here)")
    dim = struct.unpack_from("<8h", raw, 40)
    if dim[0] != 3:
        raise RuntimeError(f"shim: {path}: {dim[0]}D; only 3D")
    code = struct.unpack_from("<h", raw, 70)[0]
    pix = struct.unpack_from("<8f", raw, 76)
    off = int(struct.unpack_from("<f", raw, 108)[0])
    x, y, z = dim[1:4]
    a = np.frombuffer(raw, dtype=np.dtype(_DTYPES[code]).newbyteorder("<"), count=x * y * z,
                      offset=off).reshape(z, y, x)
    srow = np.array(struct.unpack_from("<12f", raw, 280), dtype=np.float64).reshape(3, 4)
    spacing = tuple(float(v) for v in pix[1:4])
    img = Image(a.copy())
    img.SetSpacing(spacing)
    rot = _LPS_RAS @ srow[:, :3] / np.array(spacing)
    img.SetDirection(tuple(rot.reshape(-1)))
    img.SetOrigin(tuple(_LPS_RAS @ srow[:, 3]))
    return img


class ImageFileReader:
    """SimpleITK's reader as alnm_core.imaging uses it: the NIfTI-1 header first (size and
    components, for the voxel limit before any pixel is decoded), then the image."""

    def __init__(self):
        self._path = ""
        self._dim: tuple = ()

    def SetFileName(self, path: str) -> None:  # noqa: N802
        self._path = str(path)

    def SetImageIO(self, name: str) -> None:  # noqa: N802 (NIfTI only here)
        if name and "nifti" not in name.lower():
            raise RuntimeError(f"shim: {self._path}: only NIfTI-1 is supported here, not {name}")

    def ReadImageInformation(self) -> None:  # noqa: N802
        opener = gzip.open if self._path.endswith(".gz") else open
        try:
            with opener(self._path, "rb") as fh:
                head = fh.read(352)
        except OSError as exc:
            raise RuntimeError(f"shim: cannot read {self._path}: {exc}") from exc
        if len(head) < 352 or struct.unpack_from("<i", head, 0)[0] != 348:
            raise RuntimeError(f"shim: {self._path} is not NIfTI-1 (only NIfTI-1 is supported here)")
        self._dim = struct.unpack_from("<8h", head, 40)

    def GetDimension(self) -> int:  # noqa: N802
        return int(self._dim[0])

    def GetSize(self) -> tuple:  # noqa: N802
        return tuple(int(v) for v in self._dim[1:1 + self._dim[0]])

    def GetNumberOfComponents(self) -> int:  # noqa: N802
        return 1

    def Execute(self) -> Image:  # noqa: N802
        return ReadImage(self._path)
