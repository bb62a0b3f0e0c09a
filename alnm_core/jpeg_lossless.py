"""A JPEG Lossless encoder (ITU T.81 process 14, first-order prediction, selection value 1).

JPEG Lossless SV1 (transfer syntax 1.2.840.10008.1.2.4.70) is the most common lossless
compression in PACS exports, yet no pydicom encoder plugin writes it (pydicom encodes RLE,
JPEG-LS and JPEG 2000 only). The phantom uses this encoder so ``alnm phantom --transfer-syntax
jpeg-lossless`` writes it without dcmtk at run time.

The entropy coder uses one fixed Huffman table: every difference category 0-16 gets a 5-bit
code. That costs some compression against an optimised table (the phantom's 12-bit pixel data
shrinks to about 70%) and keeps the encoder short and vectorised; any decoder reads it (tested
against libjpeg and dcmtk).

Example:
    >>> import numpy as np
    >>> data = encode(np.arange(12, dtype=np.uint16).reshape(3, 4), precision=12)
    >>> data[:2], data[-2:]
    (b'\\xff\\xd8', b'\\xff\\xd9')
"""
from __future__ import annotations

import numpy as np

_CODE_BITS = 5  # fixed code length for each of the 17 difference categories


def _marker(code: int, payload: bytes) -> bytes:
    return bytes([0xFF, code]) + (len(payload) + 2).to_bytes(2, "big") + payload


def _headers(rows: int, cols: int, precision: int) -> bytes:
    bits = bytes([0] * (_CODE_BITS - 1) + [17] + [0] * (16 - _CODE_BITS))
    dht = _marker(0xC4, bytes([0x00]) + bits + bytes(range(17)))
    sof3 = _marker(0xC3, bytes([precision]) + rows.to_bytes(2, "big") + cols.to_bytes(2, "big")
                   + bytes([1, 1, 0x11, 0]))
    sos = _marker(0xDA, bytes([1, 1, 0x00, 1, 0, 0]))  # one component, table 0, Ss = predictor 1
    return b"\xff\xd8" + dht + sof3 + sos


def _differences(image: np.ndarray, precision: int) -> np.ndarray:
    """Prediction differences (T.81 H.1.2): left neighbour; first column from above; modulo 2^16."""
    x = image.astype(np.int64)
    pred = np.empty_like(x)
    pred[0, 0] = 1 << (precision - 1)
    pred[0, 1:] = x[0, :-1]
    pred[1:, 0] = x[:-1, 0]
    pred[1:, 1:] = x[1:, :-1]
    d = (x - pred) % 65536
    return np.where(d >= 32768, d - 65536, d).ravel()


def _pack(values: np.ndarray, lengths: np.ndarray) -> bytes:
    """Concatenate variable-length codes (MSB first), pad with 1-bits, stuff 0x00 after 0xFF.

    Each code (at most 21 bits) starts inside byte ``start // 8`` and spans at most 4 bytes;
    codes never share a bit, so the bytes are sums of their parts (``bincount``).
    """
    starts = np.cumsum(lengths) - lengths
    total = int(lengths.sum())
    n_bytes = -(-total // 8)
    first = starts // 8
    aligned = values.astype(np.uint64) << (32 - lengths - starts % 8).astype(np.uint64)
    data = np.zeros(n_bytes + 4)
    for k in range(4):
        part = (aligned >> np.uint64(24 - 8 * k)) & np.uint64(0xFF)
        data += np.bincount(first + k, weights=part.astype(float), minlength=n_bytes + 4)
    data = data[:n_bytes].astype(np.uint8)
    if total % 8:
        data[-1] |= (1 << (8 - total % 8)) - 1
    return np.insert(data, np.flatnonzero(data == 0xFF) + 1, 0).tobytes()


def encode(image: np.ndarray, precision: int) -> bytes:
    """Encode a 2D image of unsigned integers as a JPEG Lossless SV1 bit stream.

    Args:
        image: ``(rows, cols)`` array with values in ``[0, 2**precision)``.
        precision: sample precision in bits (2-16), e.g. DICOM BitsStored.

    Raises:
        ValueError: not 2D, or values outside the precision.
    """
    if image.ndim != 2:
        raise ValueError(f"expected a 2D image, got shape {image.shape}")
    if not 2 <= precision <= 16:
        raise ValueError(f"precision {precision} not in 2..16")
    if image.size and (image.min() < 0 or image.max() >= 1 << precision):
        raise ValueError(f"values outside [0, 2**{precision})")
    d = _differences(image, precision)
    mag = np.abs(d)
    ssss = np.zeros(d.shape, np.int64)
    for k in range(16):
        ssss += (mag >> k) > 0
    ssss[d == -32768] = 16  # category 16 has no additional bits
    extra_len = np.where(ssss < 16, ssss, 0)
    extra = np.where(d < 0, d - 1, d) & ((1 << extra_len) - 1)
    values = (ssss << extra_len) | extra
    body = _pack(values, _CODE_BITS + extra_len)
    return _headers(*image.shape, precision) + body + b"\xff\xd9"
