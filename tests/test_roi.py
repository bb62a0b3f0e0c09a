from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alnm_core.config import RoiConfig
from alnm_core.imaging import Volume, read_image, read_mask, write_mask_nifti
from alnm_core.roi import (RoiError, SequenceCrops, bbox_2d, choose_slices, classify_tic, crop_resize,
                           expand_box, extract_patient, extract_sequence, minmax, relative_enhancement,
                           select_dce_phase)


def test_box_and_margin_in_mm_on_anisotropic_pixels():
    mask = np.zeros((60, 40), bool)
    mask[20:30, 10:16] = True                      # 10 rows x 6 cols
    assert bbox_2d(mask) == (20, 30, 10, 16)
    # rows 0.5 mm apart, columns 2 mm apart: a 4 mm margin is 8 rows but only 2 columns
    r0, r1, c0, c1 = expand_box((20, 30, 10, 16), (0.5, 2.0), margin_mm=4.0, keep_aspect=False)
    assert (r0, r1, c0, c1) == (12.0, 38.0, 8.0, 18.0)
    # in mm: height 26 * 0.5 = 13, width 10 * 2 = 20 -> square of 20 mm when keeping aspect
    r0, r1, c0, c1 = expand_box((20, 30, 10, 16), (0.5, 2.0), margin_mm=4.0, keep_aspect=True)
    assert (r1 - r0) * 0.5 == pytest.approx(20.0) and (c1 - c0) * 2.0 == pytest.approx(20.0)
    assert (r0 + r1) / 2 == pytest.approx(25.0) and (c0 + c1) / 2 == pytest.approx(13.0)


def test_crop_resize_samples_the_box():
    img = np.arange(100, dtype=float).reshape(10, 10)
    out = crop_resize(img, (2, 6, 3, 7), 4)       # exact 4x4 sub-block, no scaling
    np.testing.assert_allclose(out, img[2:6, 3:7])
    out = crop_resize(img, (-5, 5, 0, 10), 10)     # beyond the edge: edge values, no shrink
    assert out.shape == (10, 10)
    np.testing.assert_allclose(out[:5], np.repeat(img[:1], 5, axis=0))


def test_minmax_and_constant_crop():
    x = minmax(np.array([[2.0, 4.0], [6.0, 10.0]]))
    assert x.min() == 0 and x.max() == 1
    with pytest.raises(ValueError, match="constant-intensity"):
        minmax(np.full((3, 3), 7.0))


def test_slice_choice():
    areas = np.array([0, 2, 10, 30, 25, 5, 0.0])
    assert choose_slices(areas, min_area_mm2=4, mode="all", k=3) == [2, 3, 4, 5]
    assert choose_slices(areas, min_area_mm2=4, mode="largest", k=3) == [3]
    assert choose_slices(areas, min_area_mm2=4, mode="central", k=2) == [3, 4]
    assert choose_slices(areas, min_area_mm2=100, mode="all", k=3) == []


def test_dce_phase_and_tic_on_known_curves():
    geom = dict(spacing=(2.0, 1.0, 1.0))
    mask = np.zeros((3, 8, 8), bool)
    mask[1, 3:5, 3:5] = True
    for sig, tic, peak in (([100, 150, 190, 200, 205, 215, 230], "I", 6),
                           ([100, 180, 200, 201, 199, 198, 197], "II", 3),
                           ([100, 200, 210, 200, 190, 180, 170], "III", 2)):
        arr = np.stack([np.full((3, 8, 8), float(s)) for s in sig])
        vol = Volume(arr, phases=tuple(range(1, 8)), phase_times_s=tuple(60.0 * np.arange(7)), **geom)
        re = relative_enhancement(vol, mask)
        assert re[0] == 0
        assert select_dce_phase(re) == peak
        assert classify_tic(re, np.array(vol.phase_times_s)) == tic
    assert select_dce_phase(re, "4") == 4
    with pytest.raises(IndexError):
        select_dce_phase(re, "9")


def test_b_value_selection_on_phantom(tiny_cohort):
    df = pd.read_csv(tiny_cohort / "cohort.csv")
    row = df.iloc[0]
    high = 800 if row.field_strength == "1.5T" else 1000
    pc = extract_patient(row.patient_id, "DWI", tiny_cohort / row.DWI_image, tiny_cohort / row.DWI_roi, RoiConfig())
    assert pc.selected == f"b={high}"
    pc50 = extract_patient(row.patient_id, "DWI", tiny_cohort / row.DWI_image, tiny_cohort / row.DWI_roi,
                           RoiConfig(dwi_b_value=50.0))
    assert pc50.selected == "b=50"
    with pytest.raises(RoiError, match=f"patient {row.patient_id}, DWI: .*b-value 600 not in series"):
        extract_patient(row.patient_id, "DWI", tiny_cohort / row.DWI_image, tiny_cohort / row.DWI_roi,
                        RoiConfig(dwi_b_value=600.0))


@pytest.mark.slow  # several seconds of training or phantom writing: the full suite
def test_crops_contain_the_tumour_on_the_phantom(tiny_cohort, tmp_path):
    df = pd.read_csv(tiny_cohort / "cohort.csv")
    cfg = RoiConfig(size=48, margin_mm=10.0)
    for seq in ("T2WI", "DWI", "DCE"):
        crops = extract_sequence(df, tiny_cohort, seq, cfg, cache_dir=tmp_path, jobs=1)
        assert crops.crops.shape[1:] == (48, 48)
        assert crops.crops.min() >= 0 and crops.crops.max() <= 1
        assert set(crops.patient_id) == set(df.patient_id)
        for _, row in df.iterrows():
            vol = read_image(tiny_cohort / row[f"{seq}_image"])
            mask = read_mask(tiny_cohort / row[f"{seq}_roi"], like=vol)
            for k in np.flatnonzero(crops.patient_id == row.patient_id):
                z = crops.slice_index[k]
                r0, r1, c0, c1 = crops.bbox[k]
                rr, cc = np.nonzero(mask[z])
                cy, cx = rr.mean(), cc.mean()
                assert r0 <= cy < r1 and c0 <= cx < c1, (row.patient_id, seq, z)
                # the whole tumour slice lies in the box and fills a sensible share of it
                assert r0 <= rr.min() and rr.max() < r1 and c0 <= cc.min() and cc.max() < c1
                box_px = (r1 - r0) * (c1 - c0)
                assert 0.01 < len(rr) / box_px < 0.8


def test_cache_is_reused_and_keyed_on_settings(tiny_cohort, tmp_path):
    df = pd.read_csv(tiny_cohort / "cohort.csv").head(3)
    a = extract_sequence(df, tiny_cohort, "T2WI", RoiConfig(size=32), cache_dir=tmp_path, jobs=1)
    files = list(tmp_path.glob("T2WI-*.npz"))
    assert len(files) == 1
    b = extract_sequence(df, tiny_cohort, "T2WI", RoiConfig(size=32), cache_dir=tmp_path, jobs=1)
    assert a.key == b.key
    np.testing.assert_allclose(a.crops, b.crops, atol=1e-3)   # float16 on disk
    c = extract_sequence(df, tiny_cohort, "T2WI", RoiConfig(size=32, margin_mm=2.0), cache_dir=tmp_path, jobs=1)
    assert c.key != a.key and len(list(tmp_path.glob("T2WI-*.npz"))) == 2
    out = tmp_path / "roi.npz"
    c.save(out)
    back = SequenceCrops.load(out)
    assert back.per_patient.patient_id.tolist() == c.per_patient.patient_id.tolist()


def test_bad_input_fails_or_is_listed(cohort_copy, tmp_path):
    df = pd.read_csv(cohort_copy / "cohort.csv")
    bad = df.iloc[1]
    vol = read_image(cohort_copy / bad.T2WI_image)
    write_mask_nifti(np.zeros(vol.shape3d, bool), vol, cohort_copy / bad.T2WI_roi)  # empty mask
    with pytest.raises(RoiError, match=f"patient {bad.patient_id}, T2WI: .*empty"):
        extract_sequence(df, cohort_copy, "T2WI", RoiConfig(size=32), cache_dir=tmp_path, jobs=1)
    got = extract_sequence(df, cohort_copy, "T2WI", RoiConfig(size=32, on_error="exclude"),
                           cache_dir=tmp_path, jobs=1)
    assert [e["patient_id"] for e in got.exclusions] == [bad.patient_id]
    assert "empty" in got.exclusions[0]["reason"]
    assert bad.patient_id not in set(got.patient_id)


def test_constant_and_nan_images_are_refused(tmp_path):
    mask = np.zeros((3, 20, 20), bool)
    mask[1, 8:12, 8:12] = True
    vol = Volume(np.full((3, 20, 20), 5.0, np.float32), spacing=(3.0, 1.0, 1.0))
    write_mask_nifti(mask, vol, tmp_path / "m.nii.gz")
    import SimpleITK as sitk

    for name, arr in (("const", np.full((3, 20, 20), 5.0, np.float32)),
                      ("nan", np.where(mask, np.nan, 1.0).astype(np.float32))):
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing((1.0, 1.0, 3.0))
        sitk.WriteImage(img, str(tmp_path / f"{name}.nrrd"))  # NRRD keeps NaN as written
    with pytest.raises(RoiError, match="patient X, T2WI: slice 1: constant-intensity"):
        extract_patient("X", "T2WI", tmp_path / "const.nrrd", tmp_path / "m.nii.gz", RoiConfig(margin_mm=0))
    with pytest.raises(RoiError, match="NaN"):
        extract_patient("Y", "T2WI", tmp_path / "nan.nrrd", tmp_path / "m.nii.gz", RoiConfig())
