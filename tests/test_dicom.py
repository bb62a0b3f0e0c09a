"""DICOM as archives export it: compressed transfer syntaxes, enhanced MR, study folders, SEG."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from alnm_core.imaging import ImageReadError, read_dicom_series, read_image

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "dicom"
LOSSLESS = ["implicit", "big-endian", "deflated", "rle", "jpeg-lossless-sv1", "jpeg-lossless",
            "jpeg-ls-lossless", "jpeg2000-lossless"]
#: lossy syntax -> largest absolute error seen on the fixture (12-bit data, 8-bit for baseline)
LOSSY = {"jpeg-baseline": 15, "jpeg-extended": 18, "jpeg-ls-near-lossless": 2, "jpeg2000": 16}


@pytest.mark.parametrize("name", LOSSLESS)
def test_lossless_transfer_syntaxes_read_exactly(name):
    """Committed 3-slice series (written by dcmtk / pydicom's encoders; see make_fixtures.py)."""
    ref = read_dicom_series(FIXTURES / "explicit")
    vol = read_dicom_series(FIXTURES / name)
    np.testing.assert_array_equal(vol.array, ref.array)
    assert (vol.spacing, vol.origin, vol.direction) == (ref.spacing, ref.origin, ref.direction)


@pytest.mark.parametrize("name, max_error", sorted(LOSSY.items()))
def test_lossy_transfer_syntaxes_read_within_their_loss(name, max_error):
    ref = read_dicom_series(FIXTURES / ("explicit-8bit" if name == "jpeg-baseline" else "explicit"))
    vol = read_dicom_series(FIXTURES / name)
    assert vol.array.shape == ref.array.shape
    assert np.abs(vol.array - ref.array).max() <= max_error
    assert np.corrcoef(vol.array.ravel(), ref.array.ravel())[0, 1] > 0.99


@pytest.mark.parametrize("name", ["MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm",
                                  "MR_small_bigendian.dcm"])
def test_pydicom_compressed_test_files(tmp_path, name):
    """pydicom's own MR test files in other transfer syntaxes equal its uncompressed one."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} not bundled")
    (tmp_path / "s").mkdir()
    shutil.copy(path, tmp_path / "s" / "a.dcm")
    ref = pydicom.dcmread(get_testdata_file("MR_small.dcm", download=False))
    vol = read_dicom_series(tmp_path / "s")
    np.testing.assert_array_equal(vol.array[0], ref.pixel_array.astype(np.float32))


DCMTK = {"jpeg-lossless-sv1": ["dcmcjpeg", "+e1"], "jpeg-ls": ["dcmcjpls", "+el"], "rle": ["dcmcrle"]}


@pytest.mark.parametrize("syntax", sorted(DCMTK))
def test_dcmtk_compressed_phantom_series(tiny_cohort, tmp_path, syntax):
    """A phantom DWI series (two b-values) compressed by dcmtk reads as the original."""
    tool = DCMTK[syntax][0]
    if shutil.which(tool) is None:
        pytest.skip(f"dcmtk's {tool} not installed")
    src = tiny_cohort / "P0001" / "DWI"
    dst = tmp_path / syntax
    dst.mkdir()
    for f in sorted(src.iterdir()):
        subprocess.run([*DCMTK[syntax], str(f), str(dst / f.name)], check=True)
    ref, vol = read_image(src), read_image(dst)
    np.testing.assert_array_equal(vol.array, ref.array)
    assert vol.b_values == ref.b_values and vol.spacing == ref.spacing


def test_undecodable_pixel_data_names_the_file(tmp_path):
    dst = tmp_path / "s"
    shutil.copytree(FIXTURES / "jpeg-lossless-sv1", dst)
    bad = sorted(dst.iterdir())[1]
    ds = pydicom.dcmread(bad)
    ds.PixelData = ds.PixelData[:40] + b"\x00" * 60 + ds.PixelData[100:]  # corrupt the JPEG stream
    ds.save_as(bad)
    with pytest.raises(ImageReadError, match=f"{bad.name}: pixel data cannot be decoded"):
        read_dicom_series(dst)
