"""The Duke-Breast-Cancer-MRI spreadsheets: clinical features, annotation boxes, file mapping.

Where each column name comes from (public code that reads these files; TCIA's collection page
"Duke-Breast-Cancer-MRI", DOI 10.7937/TCIA.e3sv-re93, lists the files): see
``docs/public-data.md``, "What the importer reads". In short:

* ``Clinical_and_Other_Features.xlsx``, sheet ``Data``: row 1 groups (merged cells, e.g.
  ``Demographics``, ``Tumor Characteristics``, ``MRI Technical Information``), row 2 the column
  names, row 3 a legend of the codes (e.g. ``(Taking date of diagnosis as day 0)``), data from
  row 4; some names end in a space. Values are codes; ``NC`` / ``NP`` / ``NA`` mark missing data.
* ``Annotation_Boxes.xlsx``: one header row ``Patient ID, Start Row, End Row, Start Column,
  End Column, Start Slice, End Slice``, one row per patient.
* ``Breast-Cancer-MRI-filepath_filename-mapping.xlsx``: one row per DICOM file with
  ``original_path_and_filename`` (``DICOM_Images/Breast_MRI_001/pre/...``: the curators' name of
  the series: ``pre``, ``post_1`` .. ``post_4``, ``T1``) and ``classic_path``
  (``Duke-Breast-Cancer-MRI/Breast_MRI_001/<StudyUID>/<SeriesUID>/<file>``).

Example:
    >>> label_from_n_stage(2)
    Label(value=1, code='', reason='')
    >>> label_from_n_stage(-1).code
    'nx'
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from . import ImporterError
from .xlsx import norm, read_rows, sheet_title

#: the clinical columns read: field -> name in row 2 of ``Clinical_and_Other_Features.xlsx``
CLINICAL_COLUMNS = {
    "patient_id": "Patient ID",
    "birth_days": "Date of Birth (Days)",
    "n_stage": "Staging(Nodes)#(Nx replaced by -1)[N]",
    "t_stage": "Staging(Tumor Size)# [T]",
    "field_strength": "Field Strength (Tesla)",
    "manufacturer": "Manufacturer",
    "er": "ER",
    "pr": "PR",
    "her2": "HER2",
    "mol_subtype": "Mol Subtype",
    "menopause": "Menopause (at diagnosis)",
    "bilateral": "Bilateral Information",
}
#: fields without which no patient can be imported
REQUIRED_CLINICAL = ("patient_id", "birth_days", "n_stage")
BOX_COLUMNS = ("Patient ID", "Start Row", "End Row", "Start Column", "End Column", "Start Slice", "End Slice")
MISSING = {"", "nc", "np", "na", "n/a", "nan", "none", "unknown"}
PATIENT_ID = re.compile(r"^Breast_MRI_(\d{3,})$")


def is_missing(value) -> bool:
    """Whether a cell holds no value (empty, or Duke's ``NC`` / ``NP`` / ``NA`` codes)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return str(value).strip().casefold() in MISSING


def as_number(value) -> float | None:
    """A cell as a number (None when missing or not numeric)."""
    if is_missing(value):
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def cell_text(value) -> str:
    """A cell as text for the manifest: integers without ``.0``, missing as empty."""
    if is_missing(value):
        return ""
    x = as_number(value)
    if x is not None and float(x).is_integer():
        return str(int(x))
    return str(value).strip()


# ----------------------------------------------------------------------------- derived values
class Label(NamedTuple):
    """The study label of one patient, or why there is none (``code`` and ``reason``)."""

    value: int | None
    code: str = ""
    reason: str = ""


def label_from_n_stage(value) -> Label:
    """ALNM label from Duke's clinical N stage (``-1`` = NX, ``0`` .. ``3``).

    cN0 -> 0; cN1, cN2, cN3 -> 1; NX (nodes not assessable) and anything else -> no label, with
    the reason. This is the *clinical* N stage at diagnosis, not the pathological pN the paper
    used (see ``cohort.json``, ``label``).
    """
    if is_missing(value):
        return Label(None, "no_n_stage", "clinical N stage not recorded")
    x = as_number(value)
    if x is None or not float(x).is_integer() or int(x) not in (-1, 0, 1, 2, 3):
        return Label(None, "bad_n_stage", f"clinical N stage {value!r} is not -1 (NX), 0, 1, 2 or 3")
    if int(x) == -1:
        return Label(None, "nx", "clinical N stage NX (-1: regional nodes not assessable)")
    return Label(int(int(x) >= 1))


def age_from_birth_days(value) -> tuple[float | None, str]:
    """Age in years at diagnosis from ``Date of Birth (Days)`` (days, diagnosis = day 0, so
    negative): ``-days / 365.25``, rounded to 0.1 year; ``(None, reason)`` if unusable."""
    x = as_number(value)
    if x is None:
        return None, "age not recorded (Date of Birth (Days) is empty)"
    if x >= 0:
        return None, f"Date of Birth (Days) = {value!r} is not negative (days before diagnosis)"
    age = round(-x / 365.25, 1)
    if not 0 < age < 120:
        return None, f"age {age} years from Date of Birth (Days) = {value!r} is implausible"
    return age, ""


def field_strength_label(value) -> str:
    """``1.5`` -> ``"1.5T"``; empty when missing or not a number."""
    x = as_number(value)
    return f"{x:g}T" if x is not None and x > 0 else ""


# ----------------------------------------------------------------------------- clinical table
@dataclass
class ClinicalTable:
    """The rows of the clinical spreadsheet that hold a patient id.

    Attributes:
        rows: one dict per patient (keys: :data:`CLINICAL_COLUMNS`'s fields present).
        missing_columns: optional fields whose column the spreadsheet lacks.
        header_row: 1-based row number of the column names.
        sheet: the sheet read.
        duplicates: patient ids appearing on several rows (each listed once).
    """

    rows: list[dict]
    missing_columns: list[str]
    header_row: int
    sheet: str
    duplicates: list[str]


def read_clinical(path: str | Path, *, sheet: str = "Data") -> ClinicalTable:
    """Read ``Clinical_and_Other_Features.xlsx`` (multi-row header, data below the legend row).

    The name row is the first row holding a ``Patient ID`` cell (row 2 in the published file);
    the row above gives each column's group (merged cells carried to the right), the row below
    is the legend; data rows are those whose ``Patient ID`` reads ``Breast_MRI_<number>``.

    Raises:
        ImporterError: no name row, a required column missing (the closest names are listed),
            or a needed name appearing twice.
    """
    path = Path(path)
    rows = read_rows(path, sheet=sheet)
    above: tuple = ()
    header: tuple | None = None
    for i, row in enumerate(rows, start=1):
        if any(norm(v) == norm("Patient ID") for v in row):
            header, header_row = row, i
            break
        if i >= 10:
            break
        above = row
    if header is None:
        raise ImporterError(f"{path}: no row with a 'Patient ID' column among the first 10 rows "
                            "(expected the name row of Clinical_and_Other_Features.xlsx, row 2)")
    groups, group = [], ""
    for j in range(len(header)):
        v = above[j] if j < len(above) else None
        group = str(v).strip() if v not in (None, "") else group
        groups.append(group)
    names = [norm(v) for v in header]
    index, missing = {}, []
    for field, name in CLINICAL_COLUMNS.items():
        hits = [j for j, n in enumerate(names) if n == norm(name)]
        if len(hits) > 1:
            raise ImporterError(f"{path}: column {name!r} appears {len(hits)} times in row {header_row} "
                                f"(groups {[groups[j] for j in hits]}); cannot tell which to read")
        if not hits:
            if field in REQUIRED_CLINICAL:
                close = difflib.get_close_matches(norm(name), [n for n in names if n], n=3, cutoff=0.5)
                raise ImporterError(f"{path}: no column {name!r} in row {header_row} (the column names); "
                                    f"closest: {close or 'none'}")
            missing.append(field)
            continue
        index[field] = hits[0]
    out, seen, dups = [], set(), []
    for row in rows:
        pid = row[index["patient_id"]] if index["patient_id"] < len(row) else None
        pid = str(pid).strip() if pid is not None else ""
        if not PATIENT_ID.match(pid):
            continue
        if pid in seen:
            dups.append(pid)
            continue
        seen.add(pid)
        out.append({f: (row[j] if j < len(row) else None) for f, j in index.items()} | {"patient_id": pid})
    return ClinicalTable(out, missing, header_row, sheet_title(path, sheet), sorted(set(dups)))


# ----------------------------------------------------------------------------- boxes
@dataclass(frozen=True)
class DukeBox:
    """One row of ``Annotation_Boxes.xlsx``: 1-based, inclusive voxel indices (rows and columns
    of the image, slices counted in InstanceNumber order of the series)."""

    start_row: int
    end_row: int
    start_column: int
    end_column: int
    start_slice: int
    end_slice: int


def read_duke_boxes(path: str | Path) -> tuple[dict[str, list[DukeBox]], dict[str, str]]:
    """The boxes of ``Annotation_Boxes.xlsx`` per patient, and per patient why a row is unusable.

    Returns:
        ``(boxes, problems)``: ``boxes[patient_id]`` lists the patient's boxes (usually one);
        ``problems[patient_id]`` says why a row was not read (values not whole numbers >= 1,
        an end before its start).

    Raises:
        ImporterError: no header row with the seven columns.
    """
    path = Path(path)
    rows = read_rows(path)
    idx = None
    for i, row in enumerate(rows, start=1):
        names = [norm(v) for v in row]
        if norm("Patient ID") in names:
            missing = [c for c in BOX_COLUMNS if norm(c) not in names]
            if missing:
                raise ImporterError(f"{path}: row {i} lacks column(s) {missing} (has {[v for v in row if v]})")
            idx = [names.index(norm(c)) for c in BOX_COLUMNS]
            break
        if i >= 10:
            break
    if idx is None:
        raise ImporterError(f"{path}: no header row with {list(BOX_COLUMNS)} among the first 10 rows")
    boxes: dict[str, list[DukeBox]] = {}
    problems: dict[str, str] = {}
    for row in rows:
        values = [row[j] if j < len(row) else None for j in idx]
        pid = str(values[0]).strip() if values[0] is not None else ""
        if not PATIENT_ID.match(pid):
            continue
        nums = [as_number(v) for v in values[1:]]
        if any(x is None or not float(x).is_integer() or x < 1 for x in nums):
            problems[pid] = f"annotation box values {values[1:]} are not whole numbers >= 1"
            continue
        b = DukeBox(*(int(x) for x in nums))
        if b.end_row < b.start_row or b.end_column < b.start_column or b.end_slice < b.start_slice:
            problems[pid] = f"annotation box ends before it starts ({values[1:]})"
            continue
        boxes.setdefault(pid, []).append(b)
    return boxes, problems


# ----------------------------------------------------------------------------- mapping
def read_mapping(path: str | Path) -> dict[tuple[str, str], str]:
    """The curators' name of every series in ``Breast-Cancer-MRI-filepath_filename-mapping.xlsx``.

    Returns:
        ``{(patient_id, key): name}`` where ``key`` is the SeriesInstanceUID (from
        ``classic_path``) or the series folder's name (from ``descriptive_path``) and ``name``
        is ``pre``, ``post_1`` .. ``post_4`` or ``T1`` (from ``original_path_and_filename``).
        Read row by row; one entry per series, so memory does not grow with the ~770k rows.

    Raises:
        ImporterError: no header with ``original_path_and_filename`` and ``classic_path`` or
            ``descriptive_path``.
    """
    path = Path(path)
    rows = read_rows(path)
    header = next(rows, None)
    names = [norm(v) for v in header or ()]
    if "original_path_and_filename" not in names or not {"classic_path", "descriptive_path"} & set(names):
        raise ImporterError(f"{path}: the first row must name original_path_and_filename and classic_path "
                            f"or descriptive_path (found {[v for v in header or () if v]})")
    io = names.index("original_path_and_filename")
    ic = names.index("classic_path") if "classic_path" in names else None
    idp = names.index("descriptive_path") if "descriptive_path" in names else None
    out: dict[tuple[str, str], str] = {}
    for row in rows:
        orig = str(row[io]) if io < len(row) and row[io] is not None else ""
        parts = orig.replace("\\", "/").split("/")
        if len(parts) < 3 or not PATIENT_ID.match(parts[1]):
            continue
        pid, name = parts[1], parts[2]
        if ic is not None and ic < len(row) and row[ic]:
            cp = str(row[ic]).replace("\\", "/").split("/")
            if len(cp) >= 4:
                out.setdefault((pid, cp[-2]), name)
        if idp is not None and idp < len(row) and row[idp]:
            dp = [p for p in str(row[idp]).replace("\\", "/").split("/") if p]
            if len(dp) >= 2:
                out.setdefault((pid, dp[-2]), name)
    return out
