"""`alnm import duke` on a replica of the Duke-Breast-Cancer-MRI download (never the download)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alnm_core.boxes import Box, read_boxes
from alnm_core.cli import main
from alnm_core.cohort import load_cohort, read_cohort_info, validate_cohort
from alnm_core.config import InputConfig
from alnm_core.importers import ImporterError
from alnm_core.importers.box_check import check_boxes
from alnm_core.importers.duke import import_duke
from alnm_core.importers.duke_replica import write_duke_replica
from alnm_core.importers.duke_series import (HEADER_TAGS, Refusal, SeriesHeader, choose_dce, classify, duke_box,
                                             measure_direction, read_series)
from alnm_core.importers.duke_tables import (DukeBox, age_from_birth_days, field_strength_label, label_from_n_stage,
                                             read_clinical, read_duke_boxes, read_mapping)
from alnm_core.volume import IDENTIFYING_TAGS


# ----------------------------------------------------------------------------- pure rules
@pytest.mark.parametrize("value, label, code", [
    (0, 0, ""), (1, 1, ""), (2, 1, ""), (3, 1, ""), ("2", 1, ""), (0.0, 0, ""),
    (-1, None, "nx"), ("-1", None, "nx"),
    (None, None, "no_n_stage"), ("NC", None, "no_n_stage"), ("", None, "no_n_stage"), (float("nan"), None, "no_n_stage"),
    (4, None, "bad_n_stage"), (1.5, None, "bad_n_stage"), ("N1", None, "bad_n_stage"),
])
def test_label_from_clinical_n_stage(value, label, code):
    got = label_from_n_stage(value)
    assert (got.value, got.code) == (label, code)


def test_age_and_field_strength():
    assert age_from_birth_days(-18262.5) == (50.0, "")
    assert age_from_birth_days(-15000)[0] == 41.1
    assert age_from_birth_days(12000)[0] is None and "not negative" in age_from_birth_days(12000)[1]
    assert age_from_birth_days("NC") == (None, "age not recorded (Date of Birth (Days) is empty)")
    assert [field_strength_label(v) for v in (1.5, 3, "3.0", "NC", None)] == ["1.5T", "3T", "3T", "", ""]


@pytest.mark.parametrize("desc, kind", [
    ("ax dyn pre", ("pre", 0)), ("ax dyn 1st pass", ("post", 1)), ("ax dyn 2nd pass", ("post", 2)),
    ("ax dyn 3rd pass", ("post", 3)), ("ax dyn 4th pass", ("post", 4)), ("AX DYN 1ST PASS", ("post", 1)),
    ("ax 3d dyn", ("pre", 0)), ("ax 3d dyn MP", ("pre", 0)), ("ax dynamic", ("pre", 0)),
    ("Ph1/ax 3d dyn", ("post", 1)), ("Ph3ax 3d dyn", ("post", 3)), ("Ph4/ax 3d dyn MP", ("post", 4)),
    ("ax t1", ("t1", 0)), ("ax t1 tse c", ("t1", 0)), ("AX VIBRANT MPH 1", ("other", 0)),
    ("ax dyn sub 1st pass", ("other", 0)), ("ax dyn post", ("other", 0)), ("Segmentation", ("other", 0)),
])
def test_series_names(desc, kind):
    assert classify(desc) == kind


def test_duke_box_convention():
    """1-based inclusive rows / columns / slices; slices in InstanceNumber order."""
    b = DukeBox(start_row=10, end_row=12, start_column=1, end_column=4, start_slice=3, end_slice=5)
    assert duke_box(b, (10, 20, 30), ascending=True) == Box(2, 5, 9, 12, 0, 4)
    # InstanceNumber 1 is the last slice along the normal: instance k is slice 10 - k
    assert duke_box(b, (10, 20, 30), ascending=False) == Box(5, 8, 9, 12, 0, 4)
    with pytest.raises(ValueError, match=r"reach outside the image \(20 rows, 30 columns, 4 slices\)"):
        duke_box(b, (4, 20, 30), ascending=True)


def _h(desc, number, t, **kw):
    h = SeriesHeader(Path(f"/p/study/{number}-{desc}"), uid=f"u{number}", description=desc, number=number,
                     time_s=t, n_files=10, rows=8, columns=8, pixel_spacing=(1.0, 1.0), ascending=True)
    h.kind, h.phase = classify(desc)
    for k, v in kw.items():
        setattr(h, k, v)
    return h


@pytest.mark.parametrize("headers, code", [
    ([_h("ax t1", 1, 0), _h("ax dyn 1st pass", 3, 60)], "no_pre"),
    ([_h("ax dyn pre", 2, 0)], "no_post"),
    ([_h("ax dyn pre", 2, 0), _h("ax dyn 2nd pass", 3, 60), _h("ax dyn 1st pass", 4, 120)], "phase_order"),
    ([_h("ax dyn pre", 2, 0), _h("ax dyn 1st pass", 3, 60, rows=16)], "phase_geometry"),
    ([_h("ax dyn pre", 2, 0), _h("ax dyn 1st pass", 3, 60), _h("ax dyn 1st pass", 4, 60)], "ambiguous_series"),
    ([_h("ax dyn pre", 2, 0), _h("ax dyn pre", 9, 300, kind="t1"), _h("ax dyn 1st pass", 3, 60)], "ambiguous_series"),
    ([_h("ax dyn pre", 2, 0), _h("ax dyn 1st pass", 3, 60, ascending=False)], "slice_order"),
])
def test_dce_refusals(headers, code, monkeypatch):
    monkeypatch.setattr("alnm_core.importers.duke_series.measure_direction", lambda h: None)
    with pytest.raises(Refusal) as r:
        choose_dce(headers)
    assert r.value.code == code


def test_dce_rule_and_order_by_time_then_number(monkeypatch):
    monkeypatch.setattr("alnm_core.importers.duke_series.measure_direction", lambda h: None)
    nan = float("nan")
    got = choose_dce([_h("ax t1", 1, 0), _h("ax dyn 1st pass", 4, nan), _h("ax dyn pre", 3, nan)])
    assert [h.description for h in got.series] == ["ax dyn pre", "ax dyn 1st pass"]
    assert got.rule == r"^(?:ax\ dyn\ pre|ax\ dyn\ 1st\ pass)$"


def test_headers_of_real_mr_files(tmp_path):
    """pydicom's real MR test file in its transfer syntaxes (explicit, implicit, big endian, RLE,
    JPEG-LS): the header scan reads geometry and InstanceNumber direction, nothing identifying."""
    import pydicom
    from pydicom.data import get_testdata_file

    for name in ("MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm",
                 "MR_small_jpeg_ls_lossless.dcm"):
        src = get_testdata_file(name)
        folder = tmp_path / name / "3.000000-ax dyn pre-1"
        folder.mkdir(parents=True)
        ds = pydicom.dcmread(src)
        ds.SeriesDescription = "ax dyn pre"
        ds.save_as(folder / "1-001.dcm")
        ds.InstanceNumber = 2
        ds.ImagePositionPatient = [float(v) for v in ds.ImagePositionPatient[:2]] + [float(ds.ImagePositionPatient[2]) - 5]
        ds.save_as(folder / "1-002.dcm")
        h = read_series(folder)
        assert (h.rows, h.columns, h.pixel_spacing, h.n_files) == (64, 64, (0.3125, 0.3125), 2), name
        assert (h.kind, h.uid) == ("pre", str(ds.SeriesInstanceUID)), name
        measure_direction(h)
        assert h.ascending is False, name          # instance 2 lies 5 mm lower along the normal
    assert not set(HEADER_TAGS) & set(IDENTIFYING_TAGS)


# ----------------------------------------------------------------------------- the replica
@pytest.fixture(scope="session")
def replica(tmp_path_factory):
    return write_duke_replica(tmp_path_factory.mktemp("duke") / "download", n_patients=12, mapping=True, masks=True)


@pytest.fixture(scope="session")
def imported(replica, tmp_path_factory):
    return import_duke(replica.dicom, replica.clinical, replica.boxes, tmp_path_factory.mktemp("c") / "duke")


def test_spreadsheets_as_published(replica):
    t = read_clinical(replica.clinical)
    assert t.header_row == 2 and t.sheet == "Data" and len(t.rows) == 12 and not t.duplicates
    assert t.rows[0]["n_stage"] == -1 and t.rows[0]["patient_id"] == "Breast_MRI_001"
    boxes, problems = read_duke_boxes(replica.boxes)
    assert "Breast_MRI_002" not in boxes and not problems
    names = read_mapping(replica.mapping)
    assert {v for (pid, _), v in names.items() if pid == "Breast_MRI_004"} == {"pre", "post_1", "post_2", "post_3", "T1"}


def test_clinical_errors_name_file_and_column(tmp_path):
    from openpyxl import Workbook

    def book(rows, name="c.xlsx"):
        wb = Workbook()
        for r in rows:
            wb.active.append(r)
        wb.save(tmp_path / name)
        return tmp_path / name

    with pytest.raises(ImporterError, match=r"no column 'Staging\(Nodes\)#\(Nx replaced by -1\)\[N\]' in row 2.*"
                                            r"closest: \['staging\(nodes\)#\(nx replaced by -2\)\[n\]'\]"):
        read_clinical(book([["Demographics"], ["Patient ID", "Date of Birth (Days)",
                                               "Staging(Nodes)#(Nx replaced by -2)[N]"]]))
    with pytest.raises(ImporterError, match="column 'ER' appears 2 times"):
        read_clinical(book([[None], ["Patient ID", "Date of Birth (Days)", "Staging(Nodes)#(Nx replaced by -1)[N]",
                                     "ER", "ER "]]))
    with pytest.raises(ImporterError, match="no row with a 'Patient ID' column"):
        read_clinical(book([["x"], ["y"]]))
    with pytest.raises(ImporterError, match="spreadsheet not found"):
        read_clinical(tmp_path / "missing.xlsx")
    (tmp_path / "not.xlsx").write_text("a,b\n")
    with pytest.raises(ImporterError, match="not a readable .xlsx workbook"):
        read_clinical(tmp_path / "not.xlsx")
    bad = book([["Patient ID", "Start Row", "End Row", "Start Column", "End Column", "Start Slice", "End Slice"],
                ["Breast_MRI_001", 1, 2, 3, 4, 5, 4], ["Breast_MRI_002", 1, 2, 3, 4, "x", 6]], "b.xlsx")
    boxes, problems = read_duke_boxes(bad)
    assert not boxes and set(problems) == {"Breast_MRI_001", "Breast_MRI_002"}


def test_every_patient_imported_or_listed(imported, replica):
    truth = pd.read_csv(replica.truth)
    exc = imported.excluded.set_index("patient_id")
    assert exc.code.to_dict() == {"Breast_MRI_001": "nx", "Breast_MRI_002": "no_box", "Breast_MRI_004": "no_pre"}
    assert "AX VIBRANT MPH 0" in exc.loc["Breast_MRI_004", "reason"]    # the series found are named
    assert set(imported.cohort.patient_id) | set(exc.index) == set(truth.patient_id)
    c = imported.cohort.merge(truth, on="patient_id", suffixes=("", "_truth"))
    assert (c.alnm == c.alnm_truth).all() and (c.dce_phases == c.n_post + 1).all()
    assert {"ph", "standard"} == set(c.naming) and c.descending.any()
    assert (c.DCE_series.str.startswith("^(?:")).all() and c.margin.eq("").all() and c.tic_type.eq("").all()
    on_disk = pd.read_csv(imported.cohort_dir / "excluded.csv")
    assert list(on_disk.columns) == ["patient_id", "reason", "code"] and len(on_disk) == 3


def test_boxes_land_on_the_tumour(imported, replica):
    """Every imported box equals the phantom's tumour box, InstanceNumber order either way."""
    truth = pd.read_csv(replica.truth).set_index("patient_id")
    for _, r in imported.cohort.iterrows():
        t = truth.loc[r.patient_id]
        assert read_boxes(imported.cohort_dir / r.DCE_roi) == [Box(*(int(t[k]) for k in
                                                                     ("slice0", "slice1", "row0", "row1", "col0", "col1")))]
        side = max((t.row1 - t.row0) * t.row_spacing, (t.col1 - t.col0) * t.col_spacing) / 10
        assert r.tumor_size_cm == pytest.approx(side, abs=0.006)
    check = check_boxes(imported.cohort_dir, n=20)
    assert len(check) == len(imported.cohort) and (check.best == "as imported").all() and not check.error.any()
    assert (check["as imported"] > 5 * check["slices reversed"].abs()).all()


def _trusting(r) -> InputConfig:
    return InputConfig(trusted_folders=tuple(r.trust))


def test_cohort_validates_reads_and_states_its_label(imported, replica):
    # the cohort reads the download in place: refused until the user trusts that folder
    refused = validate_cohort(imported.cohort_dir, ("DCE",), read_images=False)
    assert len(refused) == len(imported.cohort) and all("--trust FOLDER" in p.message for p in refused)
    assert imported.trust == [str((replica.dicom / "Duke-Breast-Cancer-MRI").resolve())]
    assert validate_cohort(imported.cohort_dir, ("DCE",), read_images=True, inputs=_trusting(imported)) == []
    df = load_cohort(imported.cohort_dir, ("DCE",), inputs=_trusting(imported))
    assert df.tumor_size_cm.notna().all()
    info = read_cohort_info(imported.cohort_dir)
    assert info["label"]["source"] == "clinical N stage" and info["label"]["pathological"] is False
    assert "not the pathological N stage (pN" in info["label"]["caveat"]
    assert info["not_recorded"] == ["margin", "tic_type"] and info["sequences"] == ["DCE"]
    assert info["counts"]["excluded_by_code"] == {"no_box": 1, "no_pre": 1, "nx": 1}
    assert (imported.cohort_dir / "dicom").is_symlink()          # nothing copied
    assert sum(f.stat().st_size for f in imported.cohort_dir.rglob("*") if f.is_file()) < 100_000


def test_a_declared_covariate_must_stay_empty(imported, tmp_path):
    c = tmp_path / "c"
    shutil.copytree(imported.cohort_dir, c, symlinks=True)
    df = pd.read_csv(c / "cohort.csv", dtype=str, keep_default_na=False)
    df.loc[0, "margin"] = "regular"
    df.to_csv(c / "cohort.csv", index=False)
    problems = validate_cohort(c, ("DCE",), read_images=False, inputs=_trusting(imported))
    assert [(p.patient_id, p.column) for p in problems] == [(df.loc[0, "patient_id"], "margin")]
    assert "declares it not recorded" in problems[0].message


def test_mapping_names_the_series_masks_replace_boxes(replica, tmp_path):
    r = import_duke(replica.dicom, replica.clinical, replica.boxes, tmp_path / "m", mapping=replica.mapping,
                    masks=replica.masks, link=False)
    assert "Breast_MRI_004" in set(r.cohort.patient_id)                # the curators' names resolve it
    kinds = r.cohort.set_index("patient_id").roi_kind
    assert kinds["Breast_MRI_003"] == "mask" and kinds["Breast_MRI_004"] == "box"   # masks: every 2nd patient
    assert not (tmp_path / "m" / "dicom").exists() and r.cohort.DCE_image.str.startswith("../").all()
    assert len(r.trust) == 2       # the download and the masks, read in place
    assert validate_cohort(tmp_path / "m", ("DCE",), read_images=True, inputs=_trusting(r)) == []
    assert read_cohort_info(tmp_path / "m")["roi"]["DCE"]["mask"] == int((kinds == "mask").sum())


def test_cli_import_refuses_overwrite_and_bad_input(replica, tmp_path, capsys):
    args = ["import", "duke", "--dicom", str(replica.dicom), "--clinical", str(replica.clinical),
            "--boxes", str(replica.boxes), "--out", str(tmp_path / "c")]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "9 patients imported" in err and "CLINICAL N stage (cN), not pathological pN" in err
    assert f"--trust {(replica.dicom / 'Duke-Breast-Cancer-MRI').resolve()}" in err
    assert main(args) == 2 and "already holds a cohort.csv; use --overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--check-boxes", "3"]) == 0
    assert len(pd.read_csv(tmp_path / "c" / "box_check.csv")) == 3
    assert main(["validate", "--cohort", str(tmp_path / "c"), "--sequences", "DCE"]) == 1
    assert "outside the cohort folder" in capsys.readouterr().out
    assert main(["validate", "--cohort", str(tmp_path / "c"), "--sequences", "DCE",
                 "--trust", str(replica.dicom)]) == 0
    bad = args[:5] + [str(tmp_path / "nope.xlsx")] + args[6:-1] + [str(tmp_path / "d")]
    assert main(bad) == 2 and "nope.xlsx: spreadsheet not found" in capsys.readouterr().err


def test_box_gallery(imported):
    from matplotlib.figure import Figure

    from alnm_core.config import resolve_config
    from alnm_core.report.boxes import box_gallery, box_views

    cohort = load_cohort(imported.cohort_dir, ("DCE",), inputs=_trusting(imported))
    broken = cohort.copy()
    broken.loc[broken.index[0], "DCE_roi"] = "rois/none.csv"
    views, skipped = box_views(broken, imported.cohort_dir, resolve_config("duke").roi, n=3)
    assert len(views) == 2 and skipped[0]["patient_id"] == cohort.patient_id.iloc[0]
    assert "none.csv: not found" in skipped[0]["reason"]
    v = views[0]
    assert v.is_box and v.scores["as imported"] > v.scores["slices reversed"]
    assert v.outline.any() and v.peak.shape == v.subtraction.shape == v.outline.shape
    fig = box_gallery(views, ncols=2)
    assert isinstance(fig, Figure) and sum(ax.axison for ax in fig.axes) == 4
    assert any("enh." in ax.get_title(loc="left") for ax in fig.axes)


def test_table1_shows_unrecorded_covariates():
    from alnm_core.stats import build_table1

    df = pd.DataFrame({"alnm": [1, 0, 1, 0, 1, 0], "age": [50, 60, 45, 52, 61, 40.0],
                       "tumor_size_cm": [2.0, 1.5, 3.0, 2.2, 1.9, 2.5], "margin": [""] * 6, "tic_type": [""] * 6,
                       "field_strength": ["3T", "1.5T"] * 3})
    t = build_table1(df)
    rows = t.set_index("characteristic")
    assert rows.loc["Tumor margin", "total"] == "not recorded" and rows.loc["TIC curve type", "test"] == ""
    assert "Field strength" in rows.index and rows.loc["Field strength", "test"] != ""


def test_cohort_info_errors(tmp_path):
    from alnm_core.cohort import CohortError

    (tmp_path / "cohort.json").write_text("{not json")
    with pytest.raises(CohortError, match="cannot be read as JSON"):
        read_cohort_info(tmp_path)
    (tmp_path / "cohort.json").write_text(json.dumps({"not_recorded": ["age"]}))
    with pytest.raises(CohortError, match=r"\['age'\]: only \['tumor_size_cm', 'margin', 'tic_type'\]"):
        read_cohort_info(tmp_path)
    assert read_cohort_info(tmp_path / "none") == {}
