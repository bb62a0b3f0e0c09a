"""Bounding-box ROIs: the box file, its mask, and boxes going everywhere masks go."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alnm_core.boxes import (BOX_COLUMNS, Box, box_mask, convention_candidates, convention_scores, mask_box,
                             read_box_mask, read_boxes, write_boxes)
from alnm_core.cohort import patient_folder_manifest, read_manifest
from alnm_core.config import RadiomicsConfig, RoiConfig
from alnm_core.imaging import ImageReadError, Volume, read_image, read_mask
from alnm_core.roi import choose_slices, extract_patient, largest_slice, qc_view


def test_box_is_zero_based_half_open():
    b = Box(2, 5, 10, 14, 3, 4)
    assert b.shape == (3, 4, 1)
    m = box_mask([b], (6, 20, 20))
    assert m.sum() == 12 and m[2:5, 10:14, 3].all() and not m[5].any() and not m[:, 14].any()
    assert b.extent_mm((2.0, 0.5, 0.7)) == pytest.approx((6.0, 2.0, 0.7))
    for bad in ((3, 3, 0, 1, 0, 1), (-1, 2, 0, 1, 0, 1), (0, 2, 5, 4, 0, 1)):
        with pytest.raises(ValueError, match="0-based, half-open"):
            Box(*bad)


def test_box_file_round_trip_and_union(tmp_path):
    boxes = [Box(1, 3, 2, 4, 0, 2), Box(2, 4, 5, 6, 5, 7)]
    p = write_boxes(tmp_path / "DCE_roi.csv", boxes)
    assert p.read_text().splitlines()[0] == ",".join(BOX_COLUMNS)
    assert read_boxes(p) == boxes
    m = read_box_mask(p, Volume(np.zeros((5, 8, 8)), spacing=(1, 1, 1)))
    assert m.sum() == 2 * 2 * 2 + 2 * 1 * 2   # the union of both boxes
    assert mask_box(m) == Box(1, 4, 2, 6, 0, 7)


@pytest.mark.parametrize("text, match", [
    ("slice0,slice1,row0,row1\n1,2,3,4\n", r"lacks column\(s\) \['col0', 'col1'\]"),
    ("slice0,slice1,row0,row1,col0,col1\n1,2,3,4.5,0,1\n", "line 2: box values must be whole numbers"),
    ("slice0,slice1,row0,row1,col0,col1\n1,2,4,3,0,1\n", r"line 2: row0=4, row1=3"),
    ("slice0,slice1,row0,row1,col0,col1\n", "holds no box"),
    ("", "box file is empty"),
])
def test_bad_box_files_name_file_and_line(tmp_path, text, match):
    p = tmp_path / "roi.csv"
    p.write_text(text)
    with pytest.raises(ImageReadError, match=match) as err:
        read_boxes(p)
    assert str(p) in str(err.value)


def test_box_outside_its_image_is_an_error_not_clipped(tmp_path):
    p = write_boxes(tmp_path / "roi.csv", [Box(0, 2, 0, 4, 0, 9)])
    like = Volume(np.zeros((3, 8, 8)), spacing=(1, 1, 1), path="img")
    with pytest.raises(ImageReadError, match=r"columns 0\.\.8 \(0-based\) reaches outside its image of "
                                             r"3 slices x 8 rows x 8 columns"):
        read_mask(p, like=like)
    with pytest.raises(ImageReadError, match="only be read together with that image"):
        read_mask(p)


def test_min_area_zero_never_picks_an_empty_slice():
    assert choose_slices(np.array([0, 3, 0.0]), min_area_mm2=0.0, mode="all", k=1) == [1]


def test_largest_slice_of_a_box_is_its_central_slice():
    assert largest_slice(np.array([0, 5, 5, 5, 5, 5, 0.0])) == 3
    assert largest_slice(np.array([0, 5, 5, 5, 5, 0.0])) == 2
    assert largest_slice(np.array([1, 9, 3.0])) == 1      # masks: unchanged
    assert choose_slices(np.array([0, 4, 4, 4, 0.0]), min_area_mm2=1, mode="largest", k=1) == [2]


def test_convention_scores_find_the_enhancing_box():
    pre = np.full((20, 30, 40), 100.0)
    post = pre.copy()
    post[2:6, 5:9, 20:30] = 250.0                      # an enhancing lesion, near slice 0, wide
    box = Box(2, 6, 5, 9, 20, 30)
    s = convention_scores(pre, post, box)
    assert s["as imported"] == pytest.approx(1.5)
    assert s["slices reversed"] == pytest.approx(0.0) and s["rows/columns swapped"] == pytest.approx(0.0)
    assert max(s, key=s.get) == "as imported"
    assert set(convention_candidates(Box(0, 1, 0, 2, 0, 35), pre.shape)) == {"as imported", "slices reversed"}


@pytest.fixture
def box_patient(tiny_cohort, tmp_path):
    """A phantom patient's DCE with its mask replaced by the mask's 3D bounding box."""
    row = read_manifest(tiny_cohort).iloc[0]
    vol = read_image(tiny_cohort / row["DCE_image"])
    mask = read_mask(tiny_cohort / row["DCE_roi"], like=vol)
    box = mask_box(mask)
    path = write_boxes(tmp_path / "DCE_roi.csv", [box])
    return row, tiny_cohort / row["DCE_image"], path, box, mask


def test_crops_qc_and_radiomics_read_a_box(box_patient):
    row, image, roi, box, mask = box_patient
    cfg = RoiConfig(size=32, margin_mm=0.0, keep_aspect=False, slices="all", min_area_mm2=0.0)
    pc = extract_patient(row.patient_id, "DCE", image, roi, cfg)
    assert list(pc.slice_index) == list(range(box.slice0, box.slice1))       # every slice of the box
    np.testing.assert_allclose(pc.bbox, [[box.row0, box.row1, box.col0, box.col1]] * len(pc.crops))
    assert pc.selected.startswith("phase ") and pc.tic_type in ("I", "II", "III")
    view = qc_view(pd.Series({"patient_id": row.patient_id, "DCE_image": str(image), "DCE_roi": str(roi)}),
                   "/", "DCE", cfg)
    assert f"slice {box.slice0 + (box.shape[0] - 1) // 2} " in view.title   # the box's central slice
    assert view.box == (box.row0, box.row1, box.col0, box.col1)
    from alnm_core.radiomics_features import extract_patient as features

    f = features(row.patient_id, "DCE", image, roi, cfg, RadiomicsConfig(feature_classes=("firstorder",),
                                                                         resample_mm=None))
    assert f["firstorder_Mean"] > 0 and len(f) > 10


def test_patient_folder_with_a_box_file(box_patient, tmp_path):
    row, image, roi, box, _ = box_patient
    folder = tmp_path / "P1"
    import shutil

    shutil.copytree(image, folder / "DCE")
    shutil.copy(roi, folder / "DCE_roi.csv")
    df, root = patient_folder_manifest(folder, ("DCE",))
    assert df.loc[0, "DCE_roi"] == "P1/DCE_roi.csv" and root == tmp_path
    assert read_mask(root / df.loc[0, "DCE_roi"], like=read_image(root / df.loc[0, "DCE_image"])).sum() == \
        int(np.prod(box.shape))
