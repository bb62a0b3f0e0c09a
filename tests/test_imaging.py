from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file

from alnm_core.imaging import ImageReadError, read_dicom_series, read_image, read_mask, write_mask_nifti


def _bundled(name: str):
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} not bundled")
    return path


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm"])
def test_reads_real_dicom_written_by_others(tmp_path, name):
    """pydicom's own MR test files (not written by this project) read as a 1-slice series."""
    folder = tmp_path / "series"
    folder.mkdir()
    shutil.copy(_bundled(name), folder / "a.dcm")
    vol = read_dicom_series(folder)
    ref = pydicom.dcmread(_bundled("MR_small.dcm"))
    assert vol.array.shape == (1, 64, 64)
    np.testing.assert_array_equal(vol.array[0], ref.pixel_array.astype(np.float32))
    assert vol.spacing[1:] == tuple(float(v) for v in ref.PixelSpacing)
    assert vol.origin == pytest.approx(tuple(float(v) for v in ref.ImagePositionPatient))


def test_truncated_real_dicom_names_the_file(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    shutil.copy(_bundled("MR_truncated.dcm"), folder / "bad.dcm")
    with pytest.raises(ImageReadError, match="bad.dcm"):
        read_dicom_series(folder)


def test_slices_sorted_by_position_not_file_name(tiny_cohort, tmp_path):
    src = tiny_cohort / "P0001" / "T2WI"
    ref = read_dicom_series(src)
    files = sorted(src.iterdir())
    dst = tmp_path / "shuffled"
    dst.mkdir()
    rng = np.random.default_rng(0)
    for i, f in zip(rng.permutation(len(files)), files):  # names no longer follow position
        shutil.copy(f, dst / f"x{i:03d}.dcm")
    vol = read_dicom_series(dst)
    np.testing.assert_array_equal(vol.array, ref.array)
    assert vol.spacing == pytest.approx(ref.spacing)


def test_dwi_b_values_and_dce_phases_exposed(tiny_cohort):
    import pandas as pd

    row = pd.read_csv(tiny_cohort / "cohort.csv").iloc[0]
    dwi = read_image(tiny_cohort / row.DWI_image)
    expected = (50.0, 800.0) if row.field_strength == "1.5T" else (50.0, 1000.0)
    assert dwi.b_values == expected
    assert dwi.array.ndim == 4 and dwi.array.shape[0] == 2
    assert dwi.select_b_value().array.shape == dwi.shape3d
    # the high b-value image is darker than the low one (diffusion attenuation)
    assert dwi.array[1].mean() < dwi.array[0].mean()
    with pytest.raises(ImageReadError, match="b-value 600 not in series"):
        dwi.select_b_value(600)
    dce = read_image(tiny_cohort / row.DCE_image)
    assert dce.phases == (1, 2, 3, 4, 5, 6, 7)
    assert dce.phase_times_s == pytest.approx((0, 60, 120, 180, 240, 300, 360))
    assert dce.meta["MagneticFieldStrength"] in (1.5, 3.0)


def test_nifti_and_nrrd_roundtrip(tmp_path, tiny_cohort):
    vol = read_image(tiny_cohort / "P0002" / "T2WI")
    for ext in (".nii.gz", ".nrrd"):
        img = sitk.GetImageFromArray(vol.array)
        img.SetSpacing(tuple(reversed(vol.spacing)))
        img.SetOrigin(vol.origin)
        sitk.WriteImage(img, str(tmp_path / f"t2{ext}"))
        back = read_image(tmp_path / f"t2{ext}")
        np.testing.assert_allclose(back.array, vol.array)
        assert back.spacing == pytest.approx(vol.spacing)


def test_non_axial_series_is_refused(tiny_cohort, tmp_path):
    dst = tmp_path / "sag"
    shutil.copytree(tiny_cohort / "P0001" / "T2WI", dst)
    for f in dst.iterdir():
        ds = pydicom.dcmread(f)
        ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # sagittal
        ds.save_as(f)
    with pytest.raises(ImageReadError, match="not axial"):
        read_dicom_series(dst)


def test_mask_checks(tiny_cohort, tmp_path):
    vol = read_image(tiny_cohort / "P0001" / "T2WI")
    mask = read_mask(tiny_cohort / "P0001" / "T2WI_roi.nii.gz", like=vol)
    assert mask.dtype == bool and mask.any() and mask.shape == vol.shape3d
    write_mask_nifti(np.zeros(vol.shape3d, bool), vol, tmp_path / "empty.nii.gz")
    with pytest.raises(ImageReadError, match="empty"):
        read_mask(tmp_path / "empty.nii.gz", like=vol)
    other = read_image(tiny_cohort / "P0001" / "DWI").select(0)
    with pytest.raises(ImageReadError, match="does not match its image"):
        read_mask(tiny_cohort / "P0001" / "DWI_roi.nii.gz", like=vol)
    img = sitk.GetImageFromArray((mask * 3).astype(np.uint8))
    sitk.WriteImage(img, str(tmp_path / "nb.nii.gz"))
    with pytest.raises(ImageReadError, match="not binary"):
        read_mask(tmp_path / "nb.nii.gz")
    assert other.array.ndim == 3


def test_nifti_beyond_the_voxel_limit_is_refused_from_its_header(tmp_path):
    """SimpleITK reads the header first; the pixels of a refused file are never read."""
    img = sitk.Image(64, 64, 10, sitk.sitkUInt8)
    sitk.WriteImage(img, str(tmp_path / "m.nii.gz"))
    with pytest.raises(ImageReadError, match=r"m.nii.gz: declares 64 x 64 x 10 = 40,960 voxels, more than "
                                             r"the limit of 40,000 \(input.max_voxels\)"):
        read_image(tmp_path / "m.nii.gz", max_voxels=40_000)
    with pytest.raises(ImageReadError, match="m.nii.gz: declares 64 x 64 x 10"):
        read_mask(tmp_path / "m.nii.gz", max_voxels=40_000)
    assert read_image(tmp_path / "m.nii.gz", max_voxels=40_960).array.shape == (10, 64, 64)


def test_only_nifti_and_nrrd_readers_are_used(tmp_path):
    """SimpleITK would open any of its formats (MetaImage's .mhd names a data file anywhere)."""
    img = sitk.Image(8, 8, 4, sitk.sitkUInt8)
    sitk.WriteImage(img, str(tmp_path / "m.mha"))
    with pytest.raises(ImageReadError, match=r"m.mha: not a DICOM file or folder, nor a NIfTI \(.nii, "
                                             r".nii.gz\) or NRRD \(.nrrd, .nhdr\) file"):
        read_image(tmp_path / "m.mha")
    (tmp_path / "fake.nii.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ImageReadError, match="fake.nii.gz: cannot be read as NIfTI/NRRD"):
        read_image(tmp_path / "fake.nii.gz")


def test_special_files_are_refused_by_the_readers(tmp_path):
    """The readers refuse a FIFO, a device or a detached NRRD whose data is one, unopened."""
    import os

    os.mkfifo(tmp_path / "pipe.nii.gz")
    for fn in (read_image, read_mask):
        with pytest.raises(ImageReadError, match="pipe.nii.gz: is a named pipe"):
            fn(tmp_path / "pipe.nii.gz")
    with pytest.raises(ImageReadError, match="/dev/zero: is a character device"):
        read_image("/dev/zero")
    (tmp_path / "m.nhdr").write_text("NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\n"
                                     "encoding: raw\ndata file: pipe.nii.gz\n\n")
    with pytest.raises(ImageReadError, match="pipe.nii.gz: is a named pipe"):
        read_image(tmp_path / "m.nhdr")
