"""A DICOM file's header checked before its pixels are read: the limits of what alnm decodes.

A file may declare any matrix: 1.75 MB of deflated zeros can declare 30000 x 30000 pixels and
inflate to 1.8 GB, a slice may say Rows = 0 or 65535. :func:`check_image_header` refuses, naming
the file, a header that declares no pixels, more voxels than ``input.max_voxels``, or (for
uncompressed data) more bytes than the file holds; :func:`check_deflated` does the same for a
deflated file while inflating it as a stream, and stops a file that inflates beyond what its
header declares. pydicom itself would inflate the whole data set before anything can be checked.

Example:
    >>> import pydicom
    >>> ds = pydicom.Dataset()
    >>> ds.Rows, ds.Columns = 30000, 30000
    >>> try:
    ...     check_image_header("big.dcm", ds, max_voxels=10**8)
    ... except ImageReadError as exc:
    ...     print(str(exc)[:60])
    big.dcm: declares 30000 x 30000 pixels x 1 frame(s) = 900,00
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from .config import DEFAULT_MAX_VOXELS
from .volume import ImageReadError

#: uncompressed transfer syntaxes (implicit / explicit little endian, deflated, big endian)
UNCOMPRESSED = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99",
                "1.2.840.10008.1.2.2")
DEFLATED = "1.2.840.10008.1.2.1.99"
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
#: a deflated file's header (everything before its pixel data) may inflate to this much
_MAX_HEADER_BYTES = 64 << 20


def limit(max_voxels: int | None) -> int:
    """``max_voxels``, or the default limit when None."""
    return DEFAULT_MAX_VOXELS if max_voxels is None else int(max_voxels)


def check_image_header(path: str | Path, ds, max_voxels: int | None = None, *,
                       pixel_length: int | None = None, transfer_syntax: str | None = None) -> int:
    """Refuse, naming the file, an image header that cannot be right or is too large, before
    its pixels are read: Rows or Columns below 1, more than ``max_voxels`` declared voxels
    (Rows x Columns x frames), or (uncompressed) pixel data shorter than the matrix declares.

    Args:
        path: the file (for the message).
        ds: its dataset (pixel data deferred or absent).
        max_voxels: the limit (default :data:`~alnm_core.config.DEFAULT_MAX_VOXELS`).
        pixel_length: bytes of pixel data, where ``ds`` does not hold it (a deflated file).
        transfer_syntax: where ``ds`` has no file meta.

    Returns:
        The bytes the declared pixels take uncompressed.

    Raises:
        ImageReadError: naming ``path`` and the attribute.
    """
    most = limit(max_voxels)
    try:
        rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.get("BitsAllocated", 0) or 0)
    except (TypeError, ValueError) as exc:
        raise ImageReadError(f"{path}: Rows, Columns, NumberOfFrames or BitsAllocated is not a "
                             f"number ({exc})") from exc
    if rows < 1 or cols < 1:
        raise ImageReadError(f"{path}: declares a matrix of {rows} x {cols} pixels (Rows x Columns)")
    if frames < 1:
        raise ImageReadError(f"{path}: declares {frames} frames (NumberOfFrames)")
    voxels = rows * cols * frames * samples
    if voxels > most:
        raise ImageReadError(
            f"{path}: declares {rows} x {cols} pixels x {frames} frame(s) = {voxels:,} voxels, more "
            f"than the limit of {most:,} (input.max_voxels); refused before reading its pixels")
    need = voxels * max(bits, 8) // 8
    tsuid = transfer_syntax or str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
    if tsuid in UNCOMPRESSED and bits in (8, 16, 32):
        length = _pixel_length(ds) if pixel_length is None else pixel_length
        if length == 0xFFFFFFFF:
            length = None
        if length is not None and length < need:
            raise ImageReadError(
                f"{path}: pixel data holds {length:,} bytes, its header declares {rows} x {cols} "
                f"pixels x {frames} frame(s) at {bits} bits = {need:,} bytes (Rows, Columns, "
                "NumberOfFrames or BitsAllocated is wrong, or the file is truncated)")
    return need


def _pixel_length(ds) -> int | None:
    """Bytes of PixelData as stored (None for an undefined length: encapsulated)."""
    elem = ds.get_item("PixelData", keep_deferred=True)
    length = getattr(elem, "length", None)
    if length is None:
        value = getattr(elem, "value", None)
        length = len(value) if isinstance(value, (bytes, bytearray)) else None
    return None if length in (None, 0xFFFFFFFF) else int(length)


# ----------------------------------------------------------------------------- deflated files
def _meta_group(fh) -> tuple[dict[int, bytes], int]:
    """The file meta group (tag -> raw value) of an open Part 10 file, and where it ends."""
    fh.seek(132)
    values = {}
    while True:
        start = fh.tell()
        head = fh.read(8)
        if len(head) < 8:
            return values, start
        group, elem = struct.unpack("<HH", head[:4])
        if group != 2:
            return values, start
        vr = head[4:6]
        if vr in _LONG_VRS:
            more = fh.read(4)
            if len(more) < 4:
                return values, start
            length = struct.unpack("<I", more)[0]
        else:
            length = struct.unpack("<H", head[6:8])[0]
        if length > 1 << 16:
            return values, start  # not a plausible meta group: leave it to pydicom
        values[(group << 16) | elem] = fh.read(length)


def transfer_syntax(path: str | Path) -> str:
    """The TransferSyntaxUID of a Part 10 file ('' if none or not Part 10), read without pydicom."""
    try:
        with open(path, "rb") as fh:
            if fh.read(132)[128:132] != b"DICM":
                return ""
            values, _ = _meta_group(fh)
    except OSError:
        return ""
    return values.get(0x00020010, b"").rstrip(b"\x00 ").decode("ascii", "replace")


class _Inflating:
    """A deflated data set as a read-only stream, inflated as far as it is read (pydicom's
    reader inflates the whole data set at once)."""

    def __init__(self, fh, path: Path):
        self._fh, self._path = fh, path
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._buf = bytearray()
        self._pos = 0
        self._done = False
        self.name = str(path)

    def _more(self) -> bytes:
        """The next inflated bytes; b"" at the end of the data."""
        while not self._done:
            data = self._inflater.unconsumed_tail or self._fh.read(1 << 16)
            try:
                if not data:
                    self._done = True
                    return self._inflater.flush()
                out = self._inflater.decompress(data, 1 << 20)
            except zlib.error as exc:
                raise ImageReadError(f"{self._path}: deflated data cannot be inflated ({exc})") from exc
            if self._inflater.eof:
                self._done = True
            if out:
                return out
        return b""

    def _fill(self, end: int) -> None:
        while len(self._buf) < end:
            if len(self._buf) > _MAX_HEADER_BYTES:
                raise ImageReadError(f"{self._path}: the header of this deflated file inflates to more "
                                     f"than {_MAX_HEADER_BYTES >> 20} MB; refused")
            out = self._more()
            if not out:
                return
            self._buf += out

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            raise ImageReadError(f"{self._path}: unexpected whole-file read of a deflated data set")
        self._fill(self._pos + n)
        out = bytes(self._buf[self._pos:self._pos + n])
        self._pos += len(out)
        return out

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else self._pos + offset if whence == 1 else None
        if self._pos is None:
            raise io.UnsupportedOperation("seek from the end of a deflated stream")
        return self._pos

    def rest(self, allowed: int) -> None:
        """Inflate what follows, without keeping it; refuse beyond ``allowed`` bytes in all."""
        total = len(self._buf)
        del self._buf[:]
        while out := self._more():
            total += len(out)
            if total > allowed:
                raise ImageReadError(f"{self._path}: inflates to more than its header declares "
                                     f"({allowed:,} bytes); refused")


def check_deflated(path: str | Path, max_voxels: int | None = None) -> None:
    """Refuse a deflated file's header (:func:`check_image_header`) before its pixel data is
    inflated, and stop once the file inflates beyond what that header declares (a deflate
    bomb): it is inflated as a stream, never holding more than its header.

    Raises:
        ImageReadError: naming the file.
    """
    from pydicom.filereader import read_dataset

    pixel = {}

    def at_pixels(tag, vr, length) -> bool:
        if tag == 0x7FE00010:
            pixel["length"] = length
            return True
        return False

    with open(path, "rb") as fh:
        _, start = _meta_group(fh)
        fh.seek(start)
        stream = _Inflating(fh, path)
        try:
            header = read_dataset(stream, is_implicit_VR=False, is_little_endian=True,
                                  stop_when=at_pixels)
        except ImageReadError:
            raise
        except Exception as exc:  # pydicom raises many types on damaged data
            raise ImageReadError(f"{path}: not a readable DICOM file ({type(exc).__name__})") from exc
        if "length" not in pixel:
            return  # no pixel data: pydicom reads what there is
        need = check_image_header(path, header, max_voxels, pixel_length=pixel["length"],
                                  transfer_syntax=DEFLATED)
        stream.rest(stream.tell() + 12 + need + (1 << 20))
