"""The cohort manifest (``cohort.csv``): load, validate, describe.

A cohort is a folder with ``cohort.csv``, one row per patient (columns: README.md, "The cohort
manifest"). Validation collects *every* problem at once, each naming the patient, the column and
the file, so a user fixes a cohort in one pass instead of one crash at a time. Reading also
collects warnings (files skipped in a DICOM folder) and the DICOM series found, so a user can
write series rules.

Example:
    >>> problems = validate_cohort("data/phantom-demo", ("T2WI", "DWI", "DCE"))  # doctest: +SKIP
    >>> [p.message for p in problems]                                            # doctest: +SKIP
    []
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import DEFAULT_SEQUENCES, InputConfig
from .imaging import ImageReadError, SeriesInfo, read_image, read_mask
from .inputs import OUTSIDE, check_path, kind

REQUIRED = ("patient_id", "alnm", "age", "tumor_size_cm", "margin", "tic_type", "field_strength")
MARGINS = ("regular", "irregular")
TIC_TYPES = ("I", "II", "III")
SPLITS = ("train", "test")
#: covariates a cohort may declare as not recorded (``cohort.json``: ``"not_recorded"``); their
#: cells are then empty for every patient and Table 1 / the clinical baseline leave them out
NOT_RECORDABLE = ("tumor_size_cm", "margin", "tic_type")
#: optional description of a cohort beside ``cohort.csv`` (written by ``alnm import``)
COHORT_INFO = "cohort.json"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a cohort."""

    patient_id: str
    column: str
    file: str
    message: str

    def __str__(self) -> str:
        where = ", ".join(x for x in (f"patient {self.patient_id}" if self.patient_id else "",
                                      f"column {self.column}" if self.column else "",
                                      f"file {self.file}" if self.file else "") if x)
        return f"{where}: {self.message}" if where else self.message


class CohortError(ValueError):
    """A cohort that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"cohort is invalid ({len(problems)} problem(s)):\n{lines}{more}")


@dataclass
class CohortReport:
    """What checking a cohort found.

    Attributes:
        problems: what makes the cohort unusable (each names patient, column, file).
        warnings: what was passed over but does not stop a run (e.g. non-DICOM files skipped).
        series: ``(patient_id, column, path, series found)`` for every DICOM image read.
    """

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    series: list[tuple[str, str, str, tuple[SeriesInfo, ...]]] = field(default_factory=list)


def series_rule(row: Mapping, sequence: str, rules: Mapping[str, str] | None = None) -> str | None:
    """The series rule of one patient's sequence: the manifest's ``<SEQ>_series`` value if
    filled, else the configured SeriesDescription pattern (``roi.series_description``)."""
    value = row.get(f"{sequence}_series")
    value = value.strip() if isinstance(value, str) else ""
    return value or (rules or {}).get(sequence) or None


def read_cohort_info(cohort_dir: str | Path) -> dict:
    """The cohort's ``cohort.json`` (``{}`` when there is none): where it came from, how its
    label was defined (``label``: e.g. ``{"source": "clinical N stage", "pathological": false,
    "caveat": ...}``), which covariates it does not record (``not_recorded``), its sequences.

    Raises:
        CohortError: the file exists but is not a JSON object, or ``not_recorded`` names a
            column that cannot be left unrecorded (see :data:`NOT_RECORDABLE`).
    """
    path = Path(cohort_dir) / COHORT_INFO
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CohortError([Problem("", "", str(path), f"cannot be read as JSON ({exc})")]) from exc
    if not isinstance(info, dict):
        raise CohortError([Problem("", "", str(path), "must hold a JSON object")])
    bad = [c for c in info.get("not_recorded", []) if c not in NOT_RECORDABLE]
    if bad or not isinstance(info.get("not_recorded", []), list):
        raise CohortError([Problem("", "not_recorded", str(path),
                                   f"{bad or info.get('not_recorded')!r}: only {list(NOT_RECORDABLE)} "
                                   "may be declared not recorded")])
    return info


def read_manifest(cohort_dir: str | Path) -> pd.DataFrame:
    """Read ``cohort.csv`` as text columns (no type guessing); raise CohortError if absent."""
    path = Path(cohort_dir) / "cohort.csv"
    what = kind(path)
    if what == "missing":
        raise CohortError([Problem("", "", str(path), "cohort.csv not found")])
    if what != "file":
        raise CohortError([Problem("", "", str(path), f"is {what}, not a regular file")])
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as exc:
        raise CohortError([Problem("", "", str(path), "is empty: no header row and no patient "
                                                      "(see README, 'The cohort manifest')")]) from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CohortError([Problem("", "", str(path), f"cannot be parsed as CSV ({exc})")]) from exc


def check_manifest(df: pd.DataFrame, sequences: tuple[str, ...], *, manifest: str = "cohort.csv",
                   not_recorded: Collection[str] = ()) -> list[Problem]:
    """Check columns and values of a manifest table (no file access).

    ``not_recorded``: covariates the cohort declares it does not have (``cohort.json``); their
    column must be present and empty for every patient (a value would contradict the declaration).
    """
    problems: list[Problem] = []
    for col in not_recorded:
        if col in df.columns:
            filled = df[col].str.strip() != ""
            for pid in df.loc[filled, "patient_id"] if "patient_id" in df.columns else []:
                problems.append(Problem(pid, col, manifest, f"has a value although {COHORT_INFO} "
                                                             "declares it not recorded"))
    needed = list(REQUIRED) + [f"{s}_{k}" for s in sequences for k in ("image", "roi")]
    for col in needed:
        if col not in df.columns:
            problems.append(Problem("", col, manifest, "required column is missing"))
    if "patient_id" not in df.columns:
        return problems
    if df.empty:
        problems.append(Problem("", "", manifest, "holds a header row but no patient"))
    ids = df["patient_id"].str.strip()
    for i, pid in enumerate(ids):
        if pid == "":
            problems.append(Problem(f"row {i + 2}", "patient_id", manifest, "empty patient_id"))
    dup = ids[ids.duplicated(keep=False) & (ids != "")]
    for pid in sorted(set(dup)):
        rows = [int(i) + 2 for i in np.flatnonzero(ids.to_numpy() == pid)]
        problems.append(Problem(pid, "patient_id", manifest, f"duplicated patient_id (rows {rows})"))
    for _, row in df.iterrows():
        pid = row["patient_id"]
        if "alnm" in df.columns and row["alnm"].strip() not in ("0", "1"):
            problems.append(Problem(pid, "alnm", manifest, f"label {row['alnm']!r} is not 0 or 1"))
        for col, lo, hi in (("age", 0, 120), ("tumor_size_cm", 0, 30)):
            if col in df.columns and col not in not_recorded:
                try:
                    v = float(row[col])
                    if not (lo < v < hi):
                        raise ValueError
                except ValueError:
                    problems.append(Problem(pid, col, manifest, f"{row[col]!r} is not a number in ({lo}, {hi})"))
        if "margin" in df.columns and "margin" not in not_recorded and row["margin"].strip().lower() not in MARGINS:
            problems.append(Problem(pid, "margin", manifest, f"{row['margin']!r} is not one of {MARGINS}"))
        if "tic_type" in df.columns and "tic_type" not in not_recorded and row["tic_type"].strip().upper() not in TIC_TYPES:
            problems.append(Problem(pid, "tic_type", manifest, f"{row['tic_type']!r} is not one of {TIC_TYPES}"))
        if "field_strength" in df.columns and row["field_strength"].strip() == "":
            problems.append(Problem(pid, "field_strength", manifest, "empty field strength"))
        if "split" in df.columns and row["split"].strip() not in ("",) + SPLITS:
            problems.append(Problem(pid, "split", manifest, f"{row['split']!r} is not train, test or empty"))
        for seq in sequences:
            rule = row.get(f"{seq}_series", "").strip()
            if rule:
                try:
                    re.compile(rule)
                except re.error as exc:
                    problems.append(Problem(pid, f"{seq}_series", manifest,
                                            f"{rule!r} is neither a SeriesInstanceUID nor a regular expression ({exc})"))
    return problems


def check_files(cohort_dir: str | Path, df: pd.DataFrame, sequences: tuple[str, ...],
                *, read: bool = True, series_rules: Mapping[str, str] | None = None,
                inputs: InputConfig | None = None) -> list[Problem]:
    """Check that every image and mask exists and, if ``read``, reads and matches its image."""
    return inspect_files(cohort_dir, df, sequences, read=read, series_rules=series_rules,
                         inputs=inputs).problems


def inspect_files(cohort_dir: str | Path, df: pd.DataFrame, sequences: tuple[str, ...],
                  *, read: bool = True, series_rules: Mapping[str, str] | None = None,
                  inputs: InputConfig | None = None) -> CohortReport:
    """Like :func:`check_files`, also returning warnings and the DICOM series found.

    Args:
        cohort_dir: the folder holding ``cohort.csv``.
        df: the manifest.
        sequences: sequence names whose ``<SEQ>_image`` / ``<SEQ>_roi`` columns are checked.
        read: read every image and mask (else only check that they exist).
        series_rules: SeriesDescription pattern per sequence (``roi.series_description``).
        inputs: what may be read (``input.*``): by default only regular files and folders
            inside the cohort folder (symlinks resolved), images up to ``max_voxels``; a path
            that breaks a rule is a problem naming the patient, the column and the file, and
            is never opened.
    """
    root = Path(cohort_dir)
    inputs = inputs or InputConfig()
    report = CohortReport()
    for _, row in df.iterrows():
        pid = row.get("patient_id", "")
        for seq in sequences:
            img_col, roi_col = f"{seq}_image", f"{seq}_roi"
            if img_col not in df.columns or roi_col not in df.columns:
                continue
            img_rel, roi_rel = row[img_col].strip(), row[roi_col].strip()
            img_path, roi_path = root / img_rel, root / roi_rel
            ok = True
            for col, rel, path in ((img_col, img_rel, img_path), (roi_col, roi_rel, roi_path)):
                if rel == "":
                    report.problems.append(Problem(pid, col, "", "no path given"))
                    ok = False
                elif refused := check_path(root, rel, allow_outside=inputs.allow_outside_cohort,
                                           trusted=inputs.trusted_folders, max_files=inputs.max_files):
                    report.problems.append(Problem(pid, col, str(refused[0]), refused[1]))
                    ok = False
            if not ok or not read:
                continue
            try:
                vol = read_image(img_path, series=series_rule(row, seq, series_rules),
                                 max_voxels=inputs.max_voxels, max_files=inputs.max_files)
            except ImageReadError as exc:
                report.problems.append(Problem(pid, img_col, str(img_path), str(exc)))
                continue
            seen = {(w.patient_id, w.message) for w in report.warnings}  # a folder read for several
            report.warnings += [Problem(pid, img_col, str(img_path), w)   # sequences warns once
                                for w in vol.warnings if (pid, w) not in seen]
            if vol.series:
                report.series.append((pid, img_col, str(img_path), vol.series))
            try:
                read_mask(roi_path, like=vol, max_voxels=inputs.max_voxels)
            except ImageReadError as exc:
                report.problems.append(Problem(pid, roi_col, str(roi_path), str(exc)))
    return report


def inspect_cohort(cohort_dir: str | Path, sequences: tuple[str, ...] = DEFAULT_SEQUENCES,
                   *, read_images: bool = True, series_rules: Mapping[str, str] | None = None,
                   inputs: InputConfig | None = None) -> CohortReport:
    """Problems, warnings and DICOM series of a cohort folder (see :func:`validate_cohort`)."""
    try:
        df = read_manifest(cohort_dir)
        info = read_cohort_info(cohort_dir)
    except CohortError as exc:
        return CohortReport(problems=exc.problems)
    manifest = str(Path(cohort_dir) / "cohort.csv")
    problems = check_manifest(df, sequences, manifest=manifest,
                              not_recorded=info.get("not_recorded", ()))
    report = inspect_files(cohort_dir, df, sequences, read=read_images, series_rules=series_rules,
                           inputs=inputs)
    report.problems[:0] = problems
    return report


def validate_cohort(cohort_dir: str | Path, sequences: tuple[str, ...] = DEFAULT_SEQUENCES,
                    *, read_images: bool = True, series_rules: Mapping[str, str] | None = None,
                    inputs: InputConfig | None = None) -> list[Problem]:
    """Every problem of a cohort folder, as a list (empty = valid).

    Args:
        cohort_dir: the folder holding ``cohort.csv``.
        sequences: sequence names whose ``<SEQ>_image`` / ``<SEQ>_roi`` columns are required.
        read_images: also read every series and mask (slower, catches unreadable DICOM,
            empty masks and geometry mismatches).
        series_rules: SeriesDescription pattern per sequence, for DICOM study folders
            (``roi.series_description``; a ``<SEQ>_series`` column overrides it per patient).
        inputs: what may be read (``input.*``, see :func:`inspect_files`).
    """
    return inspect_cohort(cohort_dir, sequences, read_images=read_images, series_rules=series_rules,
                          inputs=inputs).problems


def load_cohort(cohort_dir: str | Path, sequences: tuple[str, ...] = DEFAULT_SEQUENCES,
                *, read_images: bool = False, inputs: InputConfig | None = None) -> pd.DataFrame:
    """Load and validate a manifest into a typed DataFrame.

    ``inputs`` (``cfg.input``) says what may be read; by default every image and mask path must
    resolve inside the cohort folder (see :func:`inspect_files`).

    Raises:
        CohortError: listing every problem found.
    """
    problems = validate_cohort(cohort_dir, sequences, read_images=read_images, inputs=inputs)
    if problems:
        raise CohortError(problems)
    df = read_manifest(cohort_dir)
    df["patient_id"] = df["patient_id"].str.strip()
    df["alnm"] = df["alnm"].astype(int)
    df["age"] = df["age"].astype(float)
    df["tumor_size_cm"] = pd.to_numeric(df["tumor_size_cm"].replace("", np.nan))  # NaN: not recorded
    df["margin"] = df["margin"].str.strip().str.lower()
    df["tic_type"] = df["tic_type"].str.strip().str.upper()
    if "split" in df.columns:
        df["split"] = df["split"].str.strip()
    return df.reset_index(drop=True)


def describe_cohort(df: pd.DataFrame) -> pd.DataFrame:
    """Counts by label and field strength: a quick look before Table 1."""
    out = df.groupby(["field_strength", "alnm"]).size().unstack(fill_value=0)
    out.columns = [f"alnm={c}" for c in out.columns]
    out["total"] = out.sum(axis=1)
    return out


#: where a patient folder keeps each sequence (``alnm predict --patient DIR``)
_IMAGE_NAMES = ("{seq}", "{seq}.nii.gz", "{seq}.nii", "{seq}.nrrd")
_MASK_NAMES = ("{seq}_roi.nii.gz", "{seq}_roi.nii", "{seq}_roi.nrrd", "{seq}_roi.dcm", "{seq}_roi.csv")


def patient_folder_manifest(folder: str | Path, sequences: tuple[str, ...]) -> tuple[pd.DataFrame, Path]:
    """A one-row manifest for one patient's folder, and the folder its paths are relative to.

    The folder holds ``cohort.csv`` (one row), or per sequence an image (``<SEQ>/`` DICOM
    folder, ``<SEQ>.nii.gz`` / ``.nii`` / ``.nrrd``) and a mask (``<SEQ>_roi.nii.gz`` / ``.nii`` /
    ``.nrrd`` / ``.dcm`` SEG / ``.csv`` bounding box), as a phantom patient's folder does; the
    folder's name is the id.
    A sequence without an image is left empty (the patient lacks it).

    Raises:
        CohortError: the folder does not exist or holds no image of any sequence.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CohortError([Problem("", "", str(folder), "patient folder not found")])
    if (folder / "cohort.csv").is_file():
        df = read_manifest(folder)
        if len(df) != 1:
            raise CohortError([Problem("", "", str(folder / "cohort.csv"),
                                       f"holds {len(df)} patients, but --patient scores one patient's "
                                       f"folder: to score a cohort, pass this folder as --cohort {folder}")])
        return df, folder
    row = {"patient_id": folder.name}
    for seq in sequences:
        img = next((n.format(seq=seq) for n in _IMAGE_NAMES if (folder / n.format(seq=seq)).exists()), "")
        roi = next((n.format(seq=seq) for n in _MASK_NAMES if (folder / n.format(seq=seq)).exists()), "")
        row[f"{seq}_image"] = f"{folder.name}/{img}" if img else ""
        row[f"{seq}_roi"] = f"{folder.name}/{roi}" if roi else ""
    if not any(row[f"{s}_image"] for s in sequences):
        raise CohortError([Problem(folder.name, "", str(folder),
                                   f"no image of any sequence {list(sequences)} (expected e.g. "
                                   f"{sequences[0]}/ or {sequences[0]}.nii.gz and {sequences[0]}_roi.nii.gz)")])
    return pd.DataFrame([row]), folder.parent


def load_for_prediction(cohort_dir: str | Path, sequences: tuple[str, ...], *,
                        manifest: pd.DataFrame | None = None, need_labels: bool = False,
                        series_rules: Mapping[str, str] | None = None,
                        inputs: InputConfig | None = None) -> pd.DataFrame:
    """A manifest for applying a trained study: ``patient_id`` (and ``alnm`` when
    ``need_labels``); each sequence optional per patient (an empty or absent column = the
    patient lacks it), but a sequence that is given must read and match its mask.

    Raises:
        CohortError: every problem at once (duplicated ids, labels not 0/1, an image without a
            mask, unreadable files, masks in another geometry, paths outside the folder unless
            ``inputs.allow_outside_cohort``), each naming patient, column, file.
    """
    df = read_manifest(cohort_dir) if manifest is None else manifest.copy()
    where = str(Path(cohort_dir) / "cohort.csv")
    problems: list[Problem] = []
    if "patient_id" not in df.columns:
        raise CohortError([Problem("", "patient_id", where, "required column is missing")])
    if df.empty:
        raise CohortError([Problem("", "", where, "holds a header row but no patient")])
    df["patient_id"] = df["patient_id"].astype(str).str.strip()
    for pid in sorted(set(df.patient_id[df.patient_id.duplicated()])):
        problems.append(Problem(pid, "patient_id", where, "duplicated patient_id"))
    if need_labels:
        if "alnm" not in df.columns:
            problems.append(Problem("", "alnm", where, "required column is missing (labels are "
                                    "needed to evaluate)"))
        else:
            for _, row in df.iterrows():
                if str(row["alnm"]).strip() not in ("0", "1"):
                    problems.append(Problem(row["patient_id"], "alnm", where,
                                            f"label {row['alnm']!r} is not 0 or 1"))
    present = [s for s in sequences if f"{s}_image" in df.columns]
    if not present:
        problems.append(Problem("", "", where, f"no column for any of the sequences {list(sequences)} "
                                               f"(expected e.g. {sequences[0]}_image, {sequences[0]}_roi)"))
    for seq in present:
        if f"{seq}_roi" not in df.columns:
            df[f"{seq}_roi"] = ""
        df[[f"{seq}_image", f"{seq}_roi"]] = df[[f"{seq}_image", f"{seq}_roi"]].fillna("").astype(str)
        given = df[f"{seq}_image"].str.strip() != ""
        for _, row in df[given & (df[f"{seq}_roi"].str.strip() == "")].iterrows():
            problems.append(Problem(row["patient_id"], f"{seq}_roi", "", f"{seq} image given without a mask"))
        ok = given & (df[f"{seq}_roi"].str.strip() != "")
        problems += inspect_files(cohort_dir, df[ok], (seq,), read=True, series_rules=series_rules,
                                  inputs=inputs).problems
    if problems:
        raise CohortError(problems)
    if need_labels:
        df["alnm"] = df["alnm"].astype(int)
    return df.reset_index(drop=True)


def paths_outside(cohort_dir: str | Path, df: pd.DataFrame, sequences: tuple[str, ...], *,
                  max_files: int | None = None) -> list[Problem]:
    """The manifest's image and mask paths that lead outside the cohort folder (what
    ``input.allow_outside_cohort`` or ``input.trusted_folders`` let through), one per path:
    patient, column, and where it resolves to (a link below a series folder counts). For
    ``run.json`` and the report, so that a reader sees what was read from elsewhere.

    Example:
        >>> paths_outside("data/phantom-demo", manifest, ("T2WI",))   # doctest: +SKIP
        [Problem(patient_id='P0003', column='T2WI_image', file='/data/other/P0003/T2WI', ...)]
    """
    root = Path(cohort_dir)
    out = []
    for _, row in df.iterrows():
        for col in [f"{s}_{k}" for s in sequences for k in ("image", "roi")]:
            rel = str(row.get(col, "") or "").strip()
            refused = check_path(root, rel, max_files=max_files) if rel else None
            if refused and OUTSIDE in refused[1]:
                out.append(Problem(str(row.get("patient_id", "")), col, str(refused[0]),
                                   f"resolves to {os.path.realpath(refused[0])}, outside the cohort folder"))
    return out
