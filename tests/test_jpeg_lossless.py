from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from libjpeg import decode

from alnm_core.jpeg_lossless import encode


def _images():
    rng = np.random.default_rng(0)
    for precision, shape in ((12, (37, 53)), (16, (20, 9)), (8, (5, 7)), (2, (3, 3)), (16, (1, 1))):
        top = (1 << precision) - 1
        yield precision, rng.integers(0, top + 1, shape)
        yield precision, np.add.outer(np.arange(shape[0]), 3 * np.arange(shape[1])) % (top + 1)
        yield precision, np.full(shape, top)
        yield precision, np.where(rng.random(shape) < 0.5, 0, top)  # largest differences


@pytest.mark.parametrize("precision, image", list(_images()))
def test_libjpeg_decodes_exactly_what_was_encoded(precision, image):
    image = image.astype(np.uint16)
    np.testing.assert_array_equal(decode(encode(image, precision)), image)


def test_difference_categories_at_the_modulo_edge():
    image = np.array([[0, 32768, 0, 65535, 1, 32769, 65535, 0]], np.uint16)  # |diff| = 32768: category 16
    np.testing.assert_array_equal(decode(encode(image, 16)), image)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="2D"):
        encode(np.zeros((2, 2, 2), np.uint16), 12)
    with pytest.raises(ValueError, match="outside"):
        encode(np.full((2, 2), 4096, np.uint16), 12)


@pytest.mark.skipif(shutil.which("dcmdjpeg") is None, reason="dcmtk's dcmdjpeg not installed")
def test_dcmtk_decodes_the_phantom_form(tiny_cohort, tmp_path):
    """dcmtk (the IJG-based decoder most PACS tools share) reads our JPEG Lossless SV1 files."""
    from alnm_core.phantom import _to_jpeg_lossless

    src = sorted((tiny_cohort / "P0001" / "T2WI").iterdir())[:2]
    for f in src:
        shutil.copy(f, tmp_path / f.name)
    _to_jpeg_lossless(tmp_path)
    for f in src:
        subprocess.run(["dcmdjpeg", str(tmp_path / f.name), str(tmp_path / "plain.dcm")], check=True)
        np.testing.assert_array_equal(pydicom.dcmread(tmp_path / "plain.dcm").pixel_array,
                                      pydicom.dcmread(f).pixel_array)
