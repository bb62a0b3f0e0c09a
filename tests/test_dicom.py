"""DICOM as archives export it: compressed transfer syntaxes, enhanced MR, study folders, SEG."""
from __future__ import annotations

import re
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


# ----------------------------------------------------------------------------- helpers
def _datasets(folder: Path) -> list:
    return sorted((pydicom.dcmread(f) for f in folder.iterdir()), key=lambda d: int(d.InstanceNumber))


def _enhanced(src: Path, out: Path, *, standard: bool) -> Path:
    """Convert a phantom classic series into one Legacy Converted Enhanced MR file (highdicom).

    highdicom keeps DiffusionBValue and TemporalPositionIdentifier in the per-frame "unassigned
    converted attributes" (where a legacy converted object carries them), and writes
    FrameAcquisitionDateTime only when AcquisitionDate is present, which the phantom leaves
    out, so it is added here. With ``standard`` the b-value and temporal position are moved by
    this test to the functional groups an Enhanced MR object uses (MRDiffusionSequence,
    FrameContentSequence.TemporalPositionIndex), so both locations are read.
    """
    import highdicom as hd
    from pydicom.dataset import Dataset

    datasets = _datasets(src)
    for ds in datasets:
        ds.AcquisitionDate = ds.StudyDate
    im = hd.legacy.LegacyConvertedEnhancedMRImage(
        datasets, series_instance_uid=datasets[0].SeriesInstanceUID, series_number=90,
        sop_instance_uid=hd.UID(), instance_number=1)
    if standard:
        for item in im.PerFrameFunctionalGroupsSequence:
            unassigned = item.UnassignedPerFrameConvertedAttributesSequence[0]
            if "DiffusionBValue" in unassigned:
                diffusion = Dataset()
                diffusion.DiffusionBValue = unassigned.DiffusionBValue
                diffusion.DiffusionDirectionality = "ISOTROPIC"
                item.MRDiffusionSequence = [diffusion]
                del unassigned.DiffusionBValue
            if "TemporalPositionIdentifier" in unassigned:
                item.FrameContentSequence[0].TemporalPositionIndex = int(unassigned.TemporalPositionIdentifier)
                del unassigned.TemporalPositionIdentifier
    out.parent.mkdir(parents=True, exist_ok=True)
    im.save_as(out, enforce_file_format=True)
    return out


def _assert_same_volume(a, b):
    np.testing.assert_array_equal(a.array, b.array)
    assert (a.spacing, a.origin, a.direction) == (b.spacing, b.origin, b.direction)
    assert (a.b_values, a.phases, a.phase_times_s) == (b.b_values, b.phases, b.phase_times_s)


def _write_seg(series: Path, mask: np.ndarray, out: Path, n_segments: int = 1) -> Path:
    """A DICOM SEG (highdicom) of ``mask`` (z, y, x, in position order) over a classic series."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    datasets = sorted(_datasets(series), key=lambda d: float(d.ImagePositionPatient[2]))
    descriptions = [hd.seg.SegmentDescription(
        segment_number=k + 1, segment_label=f"lesion {k + 1}",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL) for k in range(n_segments)]
    pixels = np.stack([mask] * n_segments, axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=datasets, pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=100,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="alnm tests",
        manufacturer_model_name="tests", software_versions="0", device_serial_number="0")
    seg.save_as(out)
    return out


def _study(tiny_cohort: Path, dst: Path, patient: str = "P0001", flat: bool = False) -> Path:
    """A study folder holding the patient's three series (subfolders, or side by side)."""
    for seq in ("T2WI", "DWI", "DCE"):
        for f in (tiny_cohort / patient / seq).iterdir():
            target = dst / (f"{seq}_{f.name}" if flat else f"{seq}/{f.name}")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, target)
    return dst


# ----------------------------------------------------------------------------- enhanced MR
@pytest.mark.parametrize("seq", ["T2WI", "DWI", "DCE"])
@pytest.mark.parametrize("standard", [False, True], ids=["legacy-converted", "enhanced-groups"])
def test_enhanced_mr_reads_as_the_classic_series(tiny_cohort, tmp_path, standard, seq):
    from alnm_core.config import RoiConfig
    from alnm_core.roi import extract_patient

    src = tiny_cohort / "P0001" / seq
    enhanced = _enhanced(src, tmp_path / seq / "EN0001.dcm", standard=standard)
    classic, multi = read_image(src), read_image(enhanced)
    _assert_same_volume(classic, multi)
    assert multi.meta["n_files"] == 1 and multi.meta["n_images"] == classic.meta["n_files"]
    assert multi.meta["RepetitionTime"] == classic.meta["RepetitionTime"]
    assert read_image(enhanced.parent).array.shape == classic.array.shape  # the folder reads too
    mask = tiny_cohort / "P0001" / f"{seq}_roi.nii.gz"
    a = extract_patient("P0001", seq, src, mask, RoiConfig(size=32))
    b = extract_patient("P0001", seq, enhanced, mask, RoiConfig(size=32))
    np.testing.assert_array_equal(a.crops, b.crops)
    assert a.selected == b.selected and a.tic_type == b.tic_type


def test_enhanced_rescale_and_geometry_come_from_the_functional_groups(tiny_cohort, tmp_path):
    src = tiny_cohort / "P0002" / "T2WI"
    path = _enhanced(src, tmp_path / "en.dcm", standard=True)
    ds = pydicom.dcmread(path)
    shared = ds.SharedFunctionalGroupsSequence[0]
    shared.PixelValueTransformationSequence[0].RescaleSlope = 2
    shared.PixelValueTransformationSequence[0].RescaleIntercept = -10
    for name in ("ImageOrientationPatient", "PixelSpacing", "ImagePositionPatient"):
        if name in ds:
            delattr(ds, name)  # nothing at top level: geometry only in the groups
    ds.save_as(path)
    classic, multi = read_image(src), read_image(path)
    np.testing.assert_array_equal(multi.array, classic.array * 2 - 10)
    assert (multi.spacing, multi.origin) == (classic.spacing, classic.origin)
    del ds.PerFrameFunctionalGroupsSequence[3].PlanePositionSequence
    ds.save_as(path)
    with pytest.raises(ImageReadError, match="frame 4: missing ImagePositionPatient"):
        read_image(path)


# ----------------------------------------------------------------------------- non-DICOM files
def test_non_dicom_files_are_skipped_and_listed_once(tiny_cohort, tmp_path):
    src = tiny_cohort / "P0001" / "DWI"
    dst = tmp_path / "DWI"
    shutil.copytree(src, dst)
    shutil.copy(tiny_cohort / "P0001" / "DWI_roi.nii.gz", dst / "DWI_roi.nii.gz")
    (dst / "sidecar.json").write_text('{"protocol": "dwi"}')
    (dst / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    ds = pydicom.dcmread(next(dst.glob("*.dcm")), stop_before_pixels=True)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"  # a DICOMDIR
    ds.save_as(dst / "DICOMDIR")  # DICOM without pixels: passed over, not listed
    vol = read_image(dst)
    _assert_same_volume(vol, read_image(src))
    assert len(vol.warnings) == 1
    assert "skipped 2 non-DICOM file(s)" in vol.warnings[0]
    assert "DWI_roi.nii.gz" in vol.warnings[0] and "sidecar.json" in vol.warnings[0]
    assert ".DS_Store" not in vol.warnings[0] and "DICOMDIR" not in vol.warnings[0]
    assert vol.select(1).warnings == vol.warnings


def test_a_damaged_dicom_file_stays_an_error_naming_it(tiny_cohort, tmp_path):
    dst = tmp_path / "T2WI"
    shutil.copytree(tiny_cohort / "P0001" / "T2WI", dst)
    victim = sorted(dst.iterdir())[2]
    victim.write_bytes(victim.read_bytes()[:300])  # DICM preamble, then cut off
    with pytest.raises(ImageReadError, match=victim.name):
        read_image(dst)
    victim.unlink()
    odd = sorted(dst.iterdir())[4]
    ds = pydicom.dcmread(odd)
    ds.ImagePositionPatient = [0.0, 1.0]
    ds.save_as(odd)
    with pytest.raises(ImageReadError, match=f"{odd.name}: ImagePositionPatient should hold 3 numbers"):
        read_image(dst)
    only_junk = tmp_path / "junk"
    only_junk.mkdir()
    (only_junk / "notes.txt").write_text("no images here")
    with pytest.raises(ImageReadError, match="no DICOM file with pixel data.*notes.txt"):
        read_image(only_junk)


# ----------------------------------------------------------------------------- study folders
@pytest.mark.parametrize("flat", [False, True], ids=["subfolders", "flat"])
def test_study_folder_series_rules(tiny_cohort, tmp_path, flat):
    study = _study(tiny_cohort, tmp_path / "study", flat=flat)
    with pytest.raises(ImageReadError, match=r'holds 3 series.*"AX T2 FSE".*"AX DWI".*b=50/1000'):
        read_image(study)
    dwi = read_image(study, series="dwi")  # case-insensitive search in SeriesDescription
    _assert_same_volume(dwi, read_image(tiny_cohort / "P0001" / "DWI"))
    assert [s.selected for s in dwi.series].count(True) == 1 and len(dwi.series) == 3
    uid = pydicom.dcmread(next((tiny_cohort / "P0001" / "T2WI").iterdir())).SeriesInstanceUID
    _assert_same_volume(read_image(study, series=uid), read_image(tiny_cohort / "P0001" / "T2WI"))
    with pytest.raises(ImageReadError, match=r"no series matches rule 'adc'; found: series 2"):
        read_image(study, series="adc")
    with pytest.raises(ImageReadError, match=r"rule '\^AX' joins 3 series"):
        read_image(study, series="^AX")


def _split_series(src: Path, dst: Path, by: str) -> None:
    """Write each DCE phase (or DWI b-value) of a classic series as its own series."""
    import highdicom as hd

    dst.mkdir(parents=True, exist_ok=True)
    uids: dict = {}
    for ds in _datasets(src):
        key = ds.TemporalPositionIdentifier if by == "phase" else ds.DiffusionBValue
        uids.setdefault(key, hd.UID())
        ds.SeriesInstanceUID = uids[key]
        ds.SeriesNumber = 40 + len(uids)
        ds.SeriesDescription = f"{ds.SeriesDescription} {len(uids)}"
        if by == "phase":
            del ds.TemporalPositionIdentifier  # each series is one phase; order from time
        ds.save_as(dst / f"{by}{len(uids)}_{ds.InstanceNumber:04d}.dcm")


def test_phases_and_b_values_exported_as_separate_series_are_joined(tiny_cohort, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(tiny_cohort / "P0001" / "T2WI", study / "t2")
    _split_series(tiny_cohort / "P0001" / "DCE", study / "dyn", "phase")
    _split_series(tiny_cohort / "P0001" / "DWI", study / "dwi", "b")
    dce = read_image(study, series="dyn")
    _assert_same_volume(dce, read_image(tiny_cohort / "P0001" / "DCE"))
    assert dce.meta["n_series"] == 7
    _assert_same_volume(read_image(study, series="dwi"), read_image(tiny_cohort / "P0001" / "DWI"))
    with pytest.raises(ImageReadError, match="joins 8 series"):
        read_image(study, series="dyn|t2")


def _study_cohort(tiny_cohort: Path, root: Path, n: int = 2):
    """A cohort of ``n`` tiny-cohort patients whose three sequences point at one study folder."""
    import pandas as pd

    df = pd.read_csv(tiny_cohort / "cohort.csv", dtype=str, keep_default_na=False).head(n)
    for pid in df.patient_id:
        _study(tiny_cohort, root / pid / "study", patient=pid)
        for seq in ("T2WI", "DWI", "DCE"):
            shutil.copy(tiny_cohort / pid / f"{seq}_roi.nii.gz", root / pid / f"{seq}_roi.nii.gz")
            df.loc[df.patient_id == pid, f"{seq}_image"] = f"{pid}/study"
    return df


def test_validate_lists_series_and_warnings_per_patient(tiny_cohort, tmp_path, capsys):
    from alnm_core.cli import main

    root = tmp_path / "cohort"
    df = _study_cohort(tiny_cohort, root)
    (root / df.patient_id[0] / "study" / "notes.txt").write_text("exported by PACS")
    df["DWI_series"] = ["AX DWI", ""]  # per patient; the second patient uses the config's rule
    df.to_csv(root / "cohort.csv", index=False)
    args = ["validate", "--cohort", str(root), "--set", "roi.series_description.T2WI=t2",
            "--set", "roi.series_description.DCE=dyn"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert f"patient {df.patient_id[1]}, column DWI_image" in out and "holds 3 series" in out
    assert out.count("INVALID: 1 problem(s)") == 1
    assert out.count("notes.txt") == 1  # one warning for the folder, not one per sequence
    assert f'warning: patient {df.patient_id[0]}, column T2WI_image' in out
    assert out.count(f"patient {df.patient_id[0]}, {root / df.patient_id[0] / 'study'}: 3 series") == 1
    assert re.search(r'series 3 "AX DWI": \d+ image\(s\), axial, b=50/\d+ \[uid [\d.]+\]  <- DWI_image', out)
    assert main(args + ["--set", "roi.series_description.DWI=dwi"]) == 0
    assert "is valid" in capsys.readouterr().out


def test_roi_extraction_follows_the_series_rules(tiny_cohort, tmp_path):
    """The pipeline's path: rules from the manifest column, else from roi.series_description."""
    import pandas as pd

    from alnm_core.config import RoiConfig
    from alnm_core.roi import extract_sequence

    df = _study_cohort(tiny_cohort, tmp_path / "cohort")
    uid = pydicom.dcmread(next((tiny_cohort / df.patient_id[0] / "DWI").iterdir())).SeriesInstanceUID
    df["DWI_series"] = [uid, ""]
    cfg = RoiConfig(size=32, series_description={"DWI": "diffusion|dwi"})
    got = extract_sequence(df, tmp_path / "cohort", "DWI", cfg, cache_dir=tmp_path / "cache", jobs=1)
    ref = extract_sequence(pd.read_csv(tiny_cohort / "cohort.csv", dtype=str).head(2), tiny_cohort, "DWI",
                           cfg, cache_dir=tmp_path / "cache", jobs=1)
    np.testing.assert_array_equal(got.crops, ref.crops)
    assert list(got.per_patient.selected) == list(ref.per_patient.selected)


# ----------------------------------------------------------------------------- DICOM SEG
def test_dicom_seg_mask_is_the_nifti_mask_on_the_same_slices(tiny_cohort, tmp_path):
    from alnm_core.config import RoiConfig
    from alnm_core.imaging import read_mask
    from alnm_core.roi import extract_patient

    series = tiny_cohort / "P0001" / "T2WI"
    vol = read_image(series)
    nifti = tiny_cohort / "P0001" / "T2WI_roi.nii.gz"
    mask = read_mask(nifti, like=vol)
    seg = _write_seg(series, mask, tmp_path / "T2WI_seg.dcm")
    np.testing.assert_array_equal(read_mask(seg, like=vol), mask)
    a = extract_patient("P0001", "T2WI", series, nifti, RoiConfig(size=32))
    b = extract_patient("P0001", "T2WI", series, seg, RoiConfig(size=32))
    np.testing.assert_array_equal(a.crops, b.crops)
    other = read_image(tiny_cohort / "P0001" / "DWI")
    with pytest.raises(ImageReadError, match=f"SEG references series {vol.series[0].uid}, "
                                             f"image is series {other.series[0].uid}"):
        read_mask(seg, like=other)
    with pytest.raises(ImageReadError, match="can only be placed on a DICOM image series"):
        read_mask(seg)
    two = _write_seg(series, mask, tmp_path / "two.dcm", n_segments=2)
    with pytest.raises(ImageReadError, match=r"SEG holds 2 segments \['lesion 1', 'lesion 2'\]"):
        read_mask(two, like=vol)


def test_seg_beside_the_images_is_not_an_image_series(tiny_cohort, tmp_path):
    from alnm_core.imaging import read_mask

    series = tmp_path / "T2WI"
    shutil.copytree(tiny_cohort / "P0001" / "T2WI", series)
    vol = read_image(series)
    mask = read_mask(tiny_cohort / "P0001" / "T2WI_roi.nii.gz", like=vol)
    seg = _write_seg(series, mask, series / "seg.dcm")
    _assert_same_volume(read_image(series), vol)
    np.testing.assert_array_equal(read_mask(seg, like=read_image(series)), mask)


# ----------------------------------------------------------------------------- identifiers
IDENTIFYING = {"PatientName": "DOEWRIGHT^JANEMARIE", "PatientBirthDate": "19581107",
               "AccessionNumber": "ACC5550123", "PatientAddress": "12 Elmwood Street Springfield",
               "OtherPatientNames": "ROEMERSON^JANELLE", "ReferringPhysicianName": "HOUSEMAN^GREGORIUS",
               "InstitutionName": "ST ELSEWHERE HOSPITAL", "PatientTelephoneNumbers": "555-0199"}


def test_no_identifying_value_reaches_an_object_or_a_message(tiny_cohort, tmp_path, capsys):
    import pandas as pd

    from alnm_core.cli import main
    from alnm_core.config import RoiConfig
    from alnm_core.imaging import IDENTIFYING_TAGS, read_mask
    from alnm_core.roi import extract_patient

    assert set(IDENTIFYING) == set(IDENTIFYING_TAGS)
    study = _study(tiny_cohort, tmp_path / "cohort" / "P0001" / "study")
    for f in study.rglob("*.dcm"):
        ds = pydicom.dcmread(f)
        for name, value in IDENTIFYING.items():
            setattr(ds, name, value)
        ds.save_as(f)
    (study / "DWI" / "report.txt").write_text("not DICOM")
    enhanced = _enhanced(study / "T2WI", tmp_path / "en" / "EN.dcm", standard=False)
    t2 = read_image(study, series="t2")
    mask = read_mask(tiny_cohort / "P0001" / "T2WI_roi.nii.gz", like=t2)
    seg = _write_seg(study / "T2WI", mask, tmp_path / "seg.dcm")  # highdicom copies the patient
    texts = [repr(t2), repr(read_image(enhanced)), repr(read_image(study, series="dwi")),
             repr(extract_patient("P0001", "T2WI", study, seg, RoiConfig(size=32), "t2"))]
    for call in (lambda: read_image(study), lambda: read_image(study, series="nothing"),
                 lambda: read_mask(seg, like=read_image(study, series="dwi"))):
        with pytest.raises(ImageReadError) as exc:
            call()
        texts.append(str(exc.value))
    pd.DataFrame([dict(patient_id="P0001", alnm=1, age=50, tumor_size_cm=2, margin="regular", tic_type="II",
                       field_strength="3T", T2WI_image="P0001/study", T2WI_roi="P0001/seg.dcm",
                       T2WI_series="t2")]).to_csv(tmp_path / "cohort" / "cohort.csv", index=False)
    shutil.copy(seg, tmp_path / "cohort" / "P0001" / "seg.dcm")
    assert main(["validate", "--cohort", str(tmp_path / "cohort"), "--sequences", "T2WI", "--list-series"]) == 0
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    joined = "\n".join(texts)
    assert "AX T2 FSE" in joined  # the texts hold what they should
    for value in IDENTIFYING.values():
        for part in value.split("^"):
            assert part not in joined, part


# ----------------------------------------------------------------------------- phantom forms
@pytest.mark.parametrize("form", ["jpeg-lossless", "enhanced"])
def test_phantom_forms_read_as_the_uncompressed_phantom(tiny_cohort, tmp_path, form):
    from alnm_core.config import PhantomConfig
    from alnm_core.phantom import draw_patients, write_patient

    cfg = PhantomConfig(n_patients=12, seed=5, matrix_scale=0.2)  # the tiny cohort's settings
    row = write_patient(tmp_path, draw_patients(cfg)[0], cfg, form)
    for seq in ("T2WI", "DWI", "DCE"):
        folder = tmp_path / row[f"{seq}_image"]
        files = sorted(folder.iterdir())
        ds = pydicom.dcmread(files[0], stop_before_pixels=True)
        if form == "enhanced":
            assert len(files) == 1 and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4.4"
        else:
            assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"
        _assert_same_volume(read_image(folder), read_image(tiny_cohort / "P0001" / seq))
        if shutil.which("dciodvfy"):
            out = subprocess.run(["dciodvfy", str(files[0])], capture_output=True, text=True)
            errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
            assert errors == [], f"{form} {seq}: {errors}"


# ----------------------------------------------------------------------------- hostile headers
def deflated_dicom(path: Path, rows: int, cols: int, *, pixel_bytes: int | None = None) -> Path:
    """A deflated MR slice declaring ``rows`` x ``cols`` 16-bit pixels, written as a stream of
    zeros (30000 x 30000 is a 1.75 MB file that inflates to 1.8 GB); ``pixel_bytes`` sets the
    pixel data's length (and content) independently of the header."""
    import struct
    import zlib

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID = "MR", "1.2.3.4"
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    out = []
    for d, writer in ((meta, write_file_meta_info), (ds, write_dataset)):
        buf = DicomBytesIO()
        buf.is_little_endian, buf.is_implicit_VR = True, False
        writer(buf, d)
        out.append(buf.getvalue())
    n = rows * cols * 2 if pixel_bytes is None else pixel_bytes
    with open(path, "wb") as fh:
        fh.write(b"\0" * 128 + b"DICM" + out[0])
        z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        fh.write(z.compress(out[1] + b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", n)))
        block = bytes(1 << 24)
        while n > 0:
            fh.write(z.compress(block[:min(n, len(block))]))
            n -= len(block)
        fh.write(z.flush())
    return path


def test_a_declared_image_beyond_the_limit_is_refused_from_its_header(tiny_cohort, tmp_path):
    """The header is checked before any pixel is read: a deflated slice declaring 2000 x 2000
    (limit 10^6), an uncompressed series whose slices are each small but together too large."""
    folder = tmp_path / "big"
    folder.mkdir()
    big = deflated_dicom(folder / "IM1.dcm", 2000, 2000)
    with pytest.raises(ImageReadError, match=re.escape(f"{big}: declares 2000 x 2000 pixels x 1 frame(s) "
                                                       "= 4,000,000 voxels, more than the limit of 1,000,000")):
        read_image(folder, max_voxels=1_000_000)
    assert read_image(deflated_dicom(tmp_path / "ok.dcm", 20, 30)).array.shape == (1, 20, 30)
    series = tiny_cohort / "P0001" / "DCE"
    vol = read_image(series)
    with pytest.raises(ImageReadError, match=f"{series}: the series holds .* voxels in all, more than the limit"):
        read_image(series, max_voxels=vol.array.size - 1)
    assert read_image(series, max_voxels=vol.array.size).array.shape == vol.array.shape


def test_a_deflate_bomb_is_stopped_while_it_inflates(tmp_path):
    """A 4 x 4 slice whose pixel data inflates to 256 MB: refused once it inflates past what its
    header declares, never holding more than its header."""
    bomb = deflated_dicom(tmp_path / "IM1.dcm", 4, 4, pixel_bytes=1 << 28)
    with pytest.raises(ImageReadError, match=f"{bomb}: inflates to more than its header declares"):
        read_image(bomb)


@pytest.mark.slow
def test_30000_square_deflated_slice_is_refused_fast_and_small(tmp_path):
    """The issue's case: 1.75 MB declaring 30000 x 30000 (pydicom alone inflates 1.8 GB; before:
    14.2 GB peak and 105 s). Measured in a fresh process: its peak memory and time."""
    import json
    import sys

    folder = tmp_path / "T2WI"
    folder.mkdir()
    deflated_dicom(folder / "IM00001.dcm", 30000, 30000)
    assert (folder / "IM00001.dcm").stat().st_size < 2_000_000
    # VmHWM: the peak of this process's own memory (ru_maxrss would include pytest's, kept
    # across exec)
    code = ("import json, time\n"
            "from alnm_core.imaging import ImageReadError, read_image\n"
            "import pydicom.filereader, SimpleITK; t = time.time()\n"
            f"try:\n    read_image({str(folder)!r}); msg = 'read'\n"
            "except ImageReadError as exc:\n    msg = str(exc)\n"
            "peak = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]\n"
            "print(json.dumps([msg, time.time() - t, int(peak)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    msg, seconds, peak_kb = json.loads(out.stdout.strip().splitlines()[-1])
    assert "IM00001.dcm: declares 30000 x 30000 pixels" in msg and "input.max_voxels" in msg
    assert seconds < 10 and peak_kb < 400_000, (seconds, peak_kb)


def _break(folder: Path, index: int, change) -> Path:
    f = sorted(folder.iterdir())[index]
    ds = pydicom.dcmread(f)
    change(ds)
    ds.save_as(f)
    return f


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
@pytest.mark.parametrize("index", [0, 4], ids=["first", "middle"])
@pytest.mark.parametrize("change, fragment", [
    (lambda ds: setattr(ds, "Rows", 0), "declares a matrix of 0 x"),
    (lambda ds: setattr(ds, "Rows", 65535), "pixel data holds"),
    (lambda ds: setattr(ds, "PixelSpacing", [0, 0.7]), r"PixelSpacing \[0.0, 0.7\] is not a positive size"),
    (lambda ds: setattr(ds, "ImagePositionPatient", ["NaN", 0, 0]), "ImagePositionPatient holds a value that is not a finite"),
    (lambda ds: setattr(ds, "ImageOrientationPatient", [0, 0, 0, 0, 1, 0]), "is not two unit vectors"),
    (lambda ds: setattr(ds, "Columns", ds.Columns - 1), "differs from the series"),
    (lambda ds: setattr(ds, "PixelSpacing", [0.5, 0.5]), "pixel spacing .* differs from the series"),
], ids=["rows-0", "rows-65535", "spacing-0", "nan-position", "zero-orientation", "columns", "spacing"])
def test_a_slice_with_a_broken_header_is_the_one_named(tiny_cohort, tmp_path, index, change, fragment):
    """Before: the first slice in file order was the reference, so a broken first slice made
    every good neighbour the culprit, and a NaN position blamed the mask."""
    dst = tmp_path / "T2WI"
    shutil.copytree(tiny_cohort / "P0001" / "T2WI", dst)
    bad = _break(dst, index, change)
    with pytest.raises(ImageReadError) as err:
        read_image(dst)
    assert str(err.value).startswith(f"{bad}") and re.search(fragment, str(err.value)), str(err.value)


def test_preamble_then_random_bytes_is_an_error_naming_the_file(tiny_cohort, tmp_path):
    """pydicom parses such a file as a data set of one junk element; it used to be passed over
    silently (an extra file) or to surface as 'not evenly spaced' (in place of a slice)."""
    junk = b"\0" * 128 + b"DICM" + np.random.default_rng(0).bytes(4000)
    dst = tmp_path / "T2WI"
    shutil.copytree(tiny_cohort / "P0001" / "T2WI", dst)
    (dst / "IM99999.dcm").write_bytes(junk)
    with pytest.raises(ImageReadError, match=f"{dst / 'IM99999.dcm'}: not a readable DICOM file"):
        read_image(dst)
    (dst / "IM99999.dcm").unlink()
    middle = sorted(dst.iterdir())[5]
    middle.write_bytes(junk)
    with pytest.raises(ImageReadError, match=f"{middle}: not a readable DICOM file"):
        read_image(dst)


def _without_hanging(fn, fifo: Path, timeout: float = 30):
    """Call ``fn`` in a thread; if it blocks on ``fifo``, release it and fail."""
    import os
    from concurrent.futures import ThreadPoolExecutor, TimeoutError

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(fn)
        try:
            return future.exception(timeout=timeout)
        except TimeoutError:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # unblock the reader
            pytest.fail(f"blocked on {fifo}")


def test_a_fifo_in_a_series_folder_is_refused_without_being_opened(tiny_cohort, tmp_path):
    import os

    dst = tmp_path / "T2WI"
    shutil.copytree(tiny_cohort / "P0001" / "T2WI", dst)
    os.mkfifo(dst / "IM99999.dcm")
    exc = _without_hanging(lambda: read_image(dst), dst / "IM99999.dcm")
    assert isinstance(exc, ImageReadError)
    assert str(exc) == (f"{dst / 'IM99999.dcm'}: is a named pipe (FIFO), not a regular file or folder; "
                        "alnm reads only regular files and folders")
    exc = _without_hanging(lambda: read_image(dst / "IM99999.dcm"), dst / "IM99999.dcm")
    assert isinstance(exc, ImageReadError) and "named pipe" in str(exc)


def test_a_walk_is_bounded(tiny_cohort, tmp_path):
    dst = tmp_path / "T2WI"
    shutil.copytree(tiny_cohort / "P0001" / "T2WI", dst)
    with pytest.raises(ImageReadError, match=f"{dst}: holds more than 10 files and folders"):
        read_image(dst, max_files=10)
    assert read_image(dst, max_files=15).array.shape[0] == 15
