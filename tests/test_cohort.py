from __future__ import annotations

import os
import shutil
import threading
import time

import pandas as pd
import pytest

from alnm_core.cli import main
from alnm_core.cohort import CohortError, load_cohort, validate_cohort
from alnm_core.config import InputConfig


def test_phantom_cohort_is_valid(tiny_cohort):
    assert validate_cohort(tiny_cohort) == []
    df = load_cohort(tiny_cohort)
    assert df.alnm.dtype.kind == "i" and len(df) == 12


@pytest.mark.slow  # several seconds of training or phantom writing: the full suite
def test_every_problem_is_reported_at_once(cohort_copy, capsys):
    df = pd.read_csv(cohort_copy / "cohort.csv", dtype=str, keep_default_na=False)
    df.loc[1, "alnm"] = "2"                                   # label not 0/1
    df.loc[2, "patient_id"] = df.loc[3, "patient_id"]         # duplicated id
    (cohort_copy / df.loc[4, "T2WI_roi"]).unlink()            # missing mask
    f = sorted((cohort_copy / df.loc[5, "DWI_image"]).iterdir())[0]
    f.write_bytes(b"not a dicom file at all")                 # unreadable DICOM
    df.loc[6, "DCE_roi"] = df.loc[6, "T2WI_roi"]              # mask of another geometry
    df.loc[7, "margin"] = "spiculated"
    df.to_csv(cohort_copy / "cohort.csv", index=False)
    problems = validate_cohort(cohort_copy)
    text = "\n".join(map(str, problems))
    pid = df.patient_id
    assert f"patient {pid[1]}, column alnm" in text and "not 0 or 1" in text
    assert f"patient {pid[3]}, column patient_id" in text and "duplicated" in text
    assert f"patient {pid[4]}, column T2WI_roi" in text and "not found" in text
    assert f"patient {pid[5]}, column DWI_image" in text and f.name in text
    assert f"patient {pid[6]}, column DCE_roi" in text and "does not match" in text
    assert f"patient {pid[7]}, column margin" in text
    with pytest.raises(CohortError):
        load_cohort(cohort_copy)
    assert main(["validate", "--cohort", str(cohort_copy)]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "not 0 or 1" in out


def test_missing_manifest_and_missing_columns(tmp_path):
    problems = validate_cohort(tmp_path)
    assert "cohort.csv not found" in str(problems[0])
    pd.DataFrame({"patient_id": ["A"], "alnm": ["1"]}).to_csv(tmp_path / "cohort.csv", index=False)
    text = "\n".join(map(str, validate_cohort(tmp_path)))
    assert "column T2WI_image" in text and "required column is missing" in text


def test_cli_validate_ok(tiny_cohort, capsys):
    assert main(["validate", "--cohort", str(tiny_cohort)]) == 0
    assert "valid" in capsys.readouterr().out


# ----------------------------------------------------------------------------- bad manifests
def test_empty_and_header_only_manifests_are_named_problems(tmp_path, capsys):
    """Before: a 0-byte cohort.csv was a pandas EmptyDataError traceback, a header-only one
    'valid'."""
    (tmp_path / "cohort.csv").write_bytes(b"")
    assert [str(p) for p in validate_cohort(tmp_path)] == [
        f"file {tmp_path / 'cohort.csv'}: is empty: no header row and no patient (see README, "
        "'The cohort manifest')"]
    assert main(["validate", "--cohort", str(tmp_path)]) == 1
    assert main(["run", "--cohort", str(tmp_path), "--profile", "smoke", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "is empty" in err and "Traceback" not in err and not (tmp_path / "r").exists()
    header = ("patient_id,alnm,age,tumor_size_cm,margin,tic_type,field_strength,"
              "T2WI_image,T2WI_roi,DWI_image,DWI_roi,DCE_image,DCE_roi\n")
    (tmp_path / "cohort.csv").write_text(header)
    assert [p.message for p in validate_cohort(tmp_path)] == ["holds a header row but no patient"]
    with pytest.raises(CohortError, match="holds a header row but no patient"):
        load_cohort(tmp_path)
    from alnm_core.cohort import load_for_prediction
    with pytest.raises(CohortError, match="holds a header row but no patient"):
        load_for_prediction(tmp_path, ("T2WI",))


# ----------------------------------------------------------------------------- a closed cohort
def _set(cohort, row: int, column: str, value: str, *, keep: int | None = 2) -> pd.DataFrame:
    """Set one manifest cell; keep that row and the ``keep`` rows after it (fewer to read)."""
    df = pd.read_csv(cohort / "cohort.csv", dtype=str, keep_default_na=False)
    df.loc[row, column] = value
    if keep is not None:
        df = df.iloc[row:row + 1 + keep]
    df.to_csv(cohort / "cohort.csv", index=False)
    return df


@pytest.fixture
def outside(cohort_copy, tmp_path):
    """A copy of patient 3 beside the cohort folder (as the issue's ../../outside/P0005)."""
    out = tmp_path / "outside"
    shutil.copytree(cohort_copy / "P0003", out / "P0003")
    return out


@pytest.mark.parametrize("how", ["absolute", "dotdot", "linked-folder", "linked-file-inside"])
def test_paths_outside_the_cohort_are_refused_naming_patient_column_and_file(cohort_copy, outside, how):
    """Before: validate said valid and read the files."""
    target = outside / "P0003" / "T2WI"
    pid = "P0003"
    if how == "absolute":
        value = str(target)
    elif how == "dotdot":
        value = "../outside/P0003/T2WI"
    elif how == "linked-folder":
        (cohort_copy / "elsewhere").symlink_to(target, target_is_directory=True)
        value = "elsewhere"
    else:  # a slice inside the patient's own series folder that links out
        value = f"{pid}/T2WI"
        victim = sorted((cohort_copy / value).iterdir())[3]
        victim.unlink()
        victim.symlink_to(sorted(target.iterdir())[3])
    _set(cohort_copy, 2, "T2WI_image", value)
    for read in (False, True):
        problems = [p for p in validate_cohort(cohort_copy, read_images=read) if p.column == "T2WI_image"]
        assert len(problems) == 1, problems
        p = problems[0]
        assert p.patient_id == pid and "outside the cohort folder" in p.message
        linked = sorted(target.iterdir())[3] if how == "linked-file-inside" else target
        assert f"resolves to {linked}" in p.message and "--trust FOLDER" in p.message
        assert p.file == (str(victim) if how == "linked-file-inside" else str(cohort_copy / value))
    with pytest.raises(CohortError, match="outside the cohort folder"):
        load_cohort(cohort_copy)
    allowed = InputConfig(allow_outside_cohort=True)
    assert validate_cohort(cohort_copy, inputs=allowed) == []
    df = load_cohort(cohort_copy, inputs=allowed)
    assert len(df) == 3
    from alnm_core.cohort import paths_outside

    (p,) = paths_outside(cohort_copy, df, ("T2WI", "DWI", "DCE"))  # what the report lists
    assert (p.patient_id, p.column) == (pid, "T2WI_image") and f"resolves to {linked}" in p.message


def test_a_mask_pointing_at_a_system_file_is_refused_unopened(cohort_copy):
    _set(cohort_copy, 1, "DWI_roi", "../" * 30 + "etc/passwd")
    (p,) = [p for p in validate_cohort(cohort_copy) if p.column == "DWI_roi"]
    assert p.patient_id == "P0002" and "resolves to /etc/passwd, outside the cohort folder" in p.message
    (p,) = [p for p in validate_cohort(cohort_copy, inputs=InputConfig(allow_outside_cohort=True))
            if p.column == "DWI_roi"]
    assert "not a DICOM file or folder, nor a NIfTI" in p.message  # never given to SimpleITK


def test_the_root_folder_as_an_image_is_refused_without_walking_the_file_system(cohort_copy):
    """Before: 55 s walking /, then /dev/autofs named."""
    _set(cohort_copy, 0, "T2WI_image", "/")
    t0 = time.time()
    (p,) = [p for p in validate_cohort(cohort_copy) if p.column == "T2WI_image"]
    assert "resolves to /, outside the cohort folder" in p.message
    (p,) = [p for p in validate_cohort(cohort_copy, inputs=InputConfig(allow_outside_cohort=True,
                                                                        max_files=2000))
            if p.column == "T2WI_image"]
    assert "holds more than 2,000 files and folders" in p.message or "not a regular file" in p.message
    assert time.time() - t0 < 20


def test_special_files_are_refused_without_being_opened(cohort_copy):
    """A FIFO named like a slice used to hang validate for ever."""
    fifo = cohort_copy / "P0004" / "DWI" / "IM99999.dcm"
    os.mkfifo(fifo)
    os.mkfifo(cohort_copy / "P0006" / "mask.nii.gz")
    _set(cohort_copy, 3, "DWI_image", "P0004/DWI", keep=None)
    _set(cohort_copy, 5, "T2WI_roi", "P0006/mask.nii.gz", keep=None)
    done = {}
    worker = threading.Thread(target=lambda: done.setdefault("problems", validate_cohort(cohort_copy)),
                              daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("validate blocked on a FIFO")
    text = "\n".join(map(str, done["problems"]))
    assert f"patient P0004, column DWI_image, file {fifo}: is a named pipe (FIFO), not a regular file" in text
    assert f"patient P0006, column T2WI_roi, file {cohort_copy / 'P0006' / 'mask.nii.gz'}: is a named pipe" in text
    _set(cohort_copy, 5, "T2WI_roi", "/dev/zero", keep=0)
    (p,) = [p for p in validate_cohort(cohort_copy, inputs=InputConfig(allow_outside_cohort=True))
            if p.patient_id == "P0006"]
    assert p.message.startswith("is a character device, not a regular file or folder")


def test_a_detached_nrrd_header_cannot_point_outside(cohort_copy, tmp_path):
    """A .nhdr names its data file; it is a path of the manifest like any other."""
    import SimpleITK as sitk

    mask = sitk.ReadImage(str(cohort_copy / "P0001" / "T2WI_roi.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "mask.nhdr"))  # writes mask.nhdr + mask.raw(.gz)
    data = next(p for p in tmp_path.iterdir() if p.name.startswith("mask.") and p.suffix != ".nhdr")
    header = (tmp_path / "mask.nhdr").read_text()
    (cohort_copy / "P0001" / "mask.nhdr").write_text(header.replace(data.name, str(data)))
    _set(cohort_copy, 0, "T2WI_roi", "P0001/mask.nhdr", keep=0)
    (p,) = validate_cohort(cohort_copy)
    assert p.column == "T2WI_roi" and p.file == str(data) and "outside the cohort folder" in p.message
    shutil.copy(data, cohort_copy / "P0001" / data.name)
    (cohort_copy / "P0001" / "mask.nhdr").write_text(header)
    assert validate_cohort(cohort_copy) == []  # the same mask, its data inside: read and matched


def test_the_choice_is_a_flag_and_recorded_in_the_configuration(cohort_copy, outside, capsys):
    _set(cohort_copy, 2, "T2WI_image", "../outside/P0003/T2WI")
    assert main(["validate", "--cohort", str(cohort_copy), "--quick"]) == 1
    assert "outside the cohort folder" in capsys.readouterr().out
    assert main(["validate", "--cohort", str(cohort_copy), "--quick", "--allow-outside-cohort"]) == 0
    from alnm_core.cli import build_parser
    from alnm_core.config import resolve_config

    for cmd in (["run", "--cohort", "x"], ["validate", "--cohort", "x"],
                ["predict", "--model", "m", "--cohort", "x"]):
        assert build_parser().parse_args(cmd + ["--allow-outside-cohort"]).allow_outside_cohort
    from alnm_core.cli import ALLOW_OUTSIDE
    assert resolve_config("smoke", overrides=[ALLOW_OUTSIDE]).to_dict()["input"]["allow_outside_cohort"]


def test_control_characters_in_manifest_text_are_printed_escaped(cohort_copy, capsys):
    _set(cohort_copy, 0, "T2WI_image", "P0001/T2WI\x1b]8;;x\x07\x1b[2J\x9b\u202e", keep=None)
    _set(cohort_copy, 1, "margin", "\x1b[31mred\x1b[0m", keep=None)
    assert main(["validate", "--cohort", str(cohort_copy), "--quick"]) == 1
    out = capsys.readouterr().out
    assert not set(out) & {"\x1b", "\x07", "\x9b", "\u202e"}
    assert "P0001/T2WI\\x1b]8;;x\\x07\\x1b[2J\\x9b\\u202e" in out
    assert "'\\x1b[31mred\\x1b[0m'" in out or "\\\\x1b[31mred" in out
