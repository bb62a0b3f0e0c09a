from __future__ import annotations

import pandas as pd
import pytest

from alnm_core.cli import main
from alnm_core.cohort import CohortError, load_cohort, validate_cohort


def test_phantom_cohort_is_valid(tiny_cohort):
    assert validate_cohort(tiny_cohort) == []
    df = load_cohort(tiny_cohort)
    assert df.alnm.dtype.kind == "i" and len(df) == 12


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
