"""Duke-Breast-Cancer-MRI (TCIA, 922 patients, CC BY-NC 4.0) as a DCE cohort folder.

``alnm import duke --dicom DIR --clinical Clinical_and_Other_Features.xlsx --boxes
Annotation_Boxes.xlsx --out COHORT`` reads the download's DICOM headers (never pixels) and the
two spreadsheets, and writes:

* ``cohort.csv``: one row per usable patient. ``DCE_image`` is the patient's study folder in
  the download (through one link ``COHORT/dicom``; nothing is copied), ``DCE_series`` a rule
  naming exactly its DCE series, which alnm's DICOM reader joins in acquisition order
  (pre-contrast first); ``DCE_roi`` the tumour box as a box file ``rois/<id>/DCE_roi.csv``
  (:mod:`alnm_core.boxes`), or with ``--masks`` a MAMA-MIA expert mask.
* ``excluded.csv``: ``patient_id, reason, code`` for every patient left out (NX, no box, no
  pre-contrast series, ...), ``cohort.json``: where the cohort came from, the label's
  definition (clinical N stage, *not* pathological pN), the covariates' sources and what the
  collection does not record (MRI margin, TIC type), counts; ``boxes_source.csv``: each box as
  published and how it was converted.

Example:
    >>> r = import_duke("tcia/", "Clinical_and_Other_Features.xlsx", "Annotation_Boxes.xlsx",
    ...                 "cohorts/duke")                                   # doctest: +SKIP
    >>> r.n_imported, r.excluded.code.value_counts().to_dict()           # doctest: +SKIP
    (874, {'nx': 31, 'no_pre': 9, ...})
"""
from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ..boxes import Box, write_boxes
from ..storage import atomic_write_text, sha256_file, write_csv
from . import ImporterError
from .duke_series import (DceChoice, Refusal, choose_dce, duke_box, find_collection_root, mapping_kind,
                          patient_folders, read_series, series_folders)
from .duke_tables import (CLINICAL_COLUMNS, age_from_birth_days, cell_text, field_strength_label,
                          label_from_n_stage, read_clinical, read_duke_boxes, read_mapping)

DESCRIPTION = """Duke-Breast-Cancer-MRI (TCIA) -> a DCE-only cohort folder, from the download as it is.

Reads DICOM headers (no pixels), Clinical_and_Other_Features.xlsx and Annotation_Boxes.xlsx.
Label: the CLINICAL N stage (cN0 -> 0, cN1-cN3 -> 1, cNX excluded), not the pathological pN
of Zhang et al. 2022. ROI: the published tumour box (or a MAMA-MIA expert mask, --masks).
Every patient left out is listed with its reason in COHORT/excluded.csv."""

COLLECTION = {"name": "Duke-Breast-Cancer-MRI", "publisher": "The Cancer Imaging Archive (TCIA)",
              "doi": "10.7937/TCIA.e3sv-re93", "license": "CC BY-NC 4.0", "patients": 922}
LABEL = {
    "column": "alnm",
    "source": "clinical N stage",
    "pathological": False,
    "from": f"Clinical_and_Other_Features.xlsx, column {CLINICAL_COLUMNS['n_stage']!r}",
    "definition": "cN1, cN2 or cN3 -> 1; cN0 -> 0; cNX (-1) excluded",
    "caveat": "The label is the clinical N stage at diagnosis (examination and imaging), not the "
              "pathological N stage (pN, from axillary surgery) of Zhang et al. 2022; clinical "
              "staging misses some nodal metastases and calls some reactive nodes positive, so "
              "results on this cohort are not directly comparable with the paper's.",
}
COVARIATES = {
    "age": "years at diagnosis = -'Date of Birth (Days)' / 365.25 (the column counts days from "
           "diagnosis, day 0)",
    "tumor_size_cm": "longest in-plane side of the annotation box on the DCE series (pixel count x "
                     "pixel spacing), in cm: an MRI extent along the image axes, a lower bound of the "
                     "largest diameter (the spreadsheet's mammography / ultrasound sizes are mostly "
                     "'NC', not collected); from a MAMA-MIA mask the same for its bounding box",
    "field_strength": "'Field Strength (Tesla)' (MRI Technical Information), else the DICOM "
                      "MagneticFieldStrength, else 'unknown'",
    "cn_stage, ct_stage, er, pr, her2, mol_subtype, menopause, bilateral, manufacturer":
        "the spreadsheet's codes as published (legend in its row 3)",
}
NOT_RECORDED = {"margin": "the collection gives mammography and ultrasound margins (mostly 'NC'), "
                          "not the MRI margin the paper read",
                "tic_type": "no radiologist's time-intensity curve type is published; alnm computes "
                            "one from the images (DCE crops step), averaged over the box"}
EXTRA = ("cn_stage", "ct_stage", "er", "pr", "her2", "mol_subtype", "menopause", "bilateral", "manufacturer")
_MASK_NAME = re.compile(r"^duke_(\d+)\.nii(\.gz)?$", re.IGNORECASE)


@dataclass
class ImportResult:
    """What an import wrote: the cohort folder, its patients, the exclusions and ``cohort.json``."""

    cohort_dir: Path
    cohort: pd.DataFrame
    excluded: pd.DataFrame
    info: dict
    seconds: float

    @property
    def trust(self) -> list[str]:
        """The folders the cohort reads in place (the download, the masks): what ``--trust``
        (``input.trusted_folders``) must name for alnm to read them."""
        return list(self.info.get("read_in_place", []))

    @property
    def n_imported(self) -> int:
        return len(self.cohort)


def mask_index(folder: str | Path) -> tuple[Path, dict[str, str]]:
    """MAMA-MIA expert masks: ``(folder holding them, {patient_id: file name})``.

    ``folder`` is the expert-segmentation folder or the MAMA-MIA root (its
    ``segmentations/expert``); files are named like ``duke_001.nii.gz`` (any case), for
    ``Breast_MRI_001``.
    """
    folder = Path(folder)
    for cand in (folder / "segmentations" / "expert", folder):
        if cand.is_dir():
            found = {}
            for e in os.scandir(cand):
                m = _MASK_NAME.match(e.name)
                if m and e.is_file():
                    found[f"Breast_MRI_{int(m.group(1)):03d}"] = e.name
            if found:
                return cand, found
    raise ImporterError(f"{folder}: no MAMA-MIA Duke mask (duke_<number>.nii.gz) here or in "
                        "segmentations/expert/")


def _link(out: Path, name: str, target: Path, use_link: bool) -> str:
    """The manifest's path prefix for ``target``: a link ``out/name`` to it, or a relative path."""
    if not use_link:
        return Path(os.path.relpath(target.resolve(), out.resolve())).as_posix()
    link = out / name
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise ImporterError(f"{link} exists and is not a link; remove it or import with --no-link")
    link.symlink_to(target.resolve(), target_is_directory=True)
    return name


def _mask_size_cm(path: Path) -> float:
    """Longest in-plane side of a mask's bounding box, in cm (reads that one mask)."""
    from ..boxes import mask_box
    from ..imaging import read_mask, read_sitk_file

    vol = read_sitk_file(path)
    b = mask_box(read_mask(path))
    return max(b.extent_mm(vol.spacing)[1:]) / 10.0


def _patient_task(task: tuple) -> tuple[dict | None, list[tuple[str, str]], dict]:
    return _patient(*task)


def _patient(pid: str, row: dict, folder: Path | None, boxes: list, box_problem: str,
             mask: Path | None, mapping: dict | None, masks_given: bool) -> tuple[dict | None, list[tuple[str, str]], dict]:
    """One patient: its manifest row, or the reasons it is left out; and its box audit row.

    ``mapping``: this patient's curated series names, ``{SeriesInstanceUID or folder name: name}``.
    """
    reasons: list[tuple[str, str]] = []
    audit: dict = {}
    label = label_from_n_stage(row.get("n_stage"))
    if label.value is None:
        reasons.append((label.code, label.reason))
    age, why = age_from_birth_days(row.get("birth_days"))
    if age is None:
        reasons.append(("no_age", why))
    if box_problem and mask is None:
        reasons.append(("bad_box", box_problem))
    elif not boxes and mask is None:
        reasons.append(("no_box", "no annotation box in Annotation_Boxes.xlsx"
                        + (" and no MAMA-MIA mask" if masks_given else "")))
    dce: DceChoice | None = None
    if folder is None:
        reasons.append(("no_images", "no Breast_MRI folder for this patient in the DICOM download"))
    else:
        headers = [read_series(f) for f in series_folders(folder)]
        for h in headers:
            name = (mapping or {}).get(h.uid) or (mapping or {}).get(h.folder.name)
            if name is not None:
                h.kind, h.phase = mapping_kind(name)
        try:
            dce = choose_dce(headers, need_direction=mask is None and bool(boxes))
        except Refusal as r:
            reasons.append((r.code, r.reason))
    size_cm, converted = None, []
    if dce is not None and mask is None and boxes:
        pre = dce.pre
        shape = (pre.n_files, pre.rows, pre.columns)
        try:
            converted = [duke_box(b, shape, ascending=bool(pre.ascending)) for b in boxes]
        except ValueError as exc:
            reasons.append(("box_outside", str(exc)))
        if converted and pre.pixel_spacing:
            ext = [b.extent_mm((1.0, *pre.pixel_spacing)) for b in converted]
            size_cm = round(max(max(e[1], e[2]) for e in ext) / 10.0, 2)
        audit = dict(patient_id=pid, **{k: [getattr(b, k) for b in boxes] if len(boxes) > 1 else getattr(boxes[0], k)
                                        for k in boxes[0].__dataclass_fields__},
                     n_slices=pre.n_files, rows=pre.rows, columns=pre.columns,
                     instance_order="ascending" if pre.ascending else "descending",
                     series=pre.description)
    if reasons:
        return None, reasons, audit
    fs = field_strength_label(row.get("field_strength")) or (
        f"{dce.pre.field_strength:g}T" if dce.pre.field_strength else "unknown")
    out = dict(patient_id=pid, alnm=label.value, age=age, tumor_size_cm=size_cm, margin="", tic_type="",
               field_strength=fs, DCE_series=dce.rule, dce_phases=len(dce.series),
               cn_stage=cell_text(row.get("n_stage")), ct_stage=cell_text(row.get("t_stage")),
               **{k: cell_text(row.get(k)) for k in EXTRA[2:]})
    out["_study"], out["_boxes"], out["_mask"] = dce.study, converted, mask
    return out, [], audit


def import_duke(dicom: str | Path, clinical: str | Path, boxes: str | Path, out: str | Path, *,
                mapping: str | Path | None = None, masks: str | Path | None = None, link: bool = True,
                overwrite: bool = False, jobs: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Import the Duke download as a cohort folder (see the module's description).

    Args:
        dicom: the download folder (holding ``Duke-Breast-Cancer-MRI/`` or the patient folders).
        clinical: ``Clinical_and_Other_Features.xlsx``.
        boxes: ``Annotation_Boxes.xlsx``.
        out: the cohort folder to write (created).
        mapping: ``Breast-Cancer-MRI-filepath_filename-mapping.xlsx``: the curators' name of
            each series (``pre``, ``post_1`` ..) overrides the names' reading.
        masks: MAMA-MIA's expert masks (``segmentations/expert/duke_001.nii.gz`` ..), used
            instead of the box where a patient has one.
        link: reach the download through links in ``out`` (``dicom``, ``masks``); else
            relative paths.
        overwrite: replace a cohort already in ``out``.
        jobs: processes reading headers (default: the cores); the result does not depend on it.
        progress: ``progress(done, total)`` after each patient.

    Raises:
        ImporterError: an input that cannot be read at all (each patient's own problems are
            listed in ``excluded.csv`` instead).
    """
    from ..roi import map_patients  # the per-patient process pool the crops use

    t0 = time.time()
    out = Path(out)
    if (out / "cohort.csv").exists() and not overwrite:
        raise ImporterError(f"{out} already holds a cohort.csv; use --overwrite to replace it")
    root = find_collection_root(dicom)
    folders = patient_folders(root)
    table = read_clinical(clinical)
    dboxes, box_problems = read_duke_boxes(boxes)
    names: dict[str, dict[str, str]] | None = None
    if mapping:
        names = {}
        for (pid, key), name in read_mapping(mapping).items():
            names.setdefault(pid, {})[key] = name
    mask_dir, masks_found = mask_index(masks) if masks else (None, {})
    out.mkdir(parents=True, exist_ok=True)
    dicom_prefix = _link(out, "dicom", root, link)
    mask_prefix = _link(out, "masks", mask_dir, link) if mask_dir else ""
    rows, excluded, audits = [], [], []
    for pid in table.duplicates:
        excluded.append(dict(patient_id=pid, reason="several rows in Clinical_and_Other_Features.xlsx; "
                                                   "the first was used", code="duplicate_row"))
    tasks = [(r["patient_id"], r, folders.get(r["patient_id"]), dboxes.get(r["patient_id"], []),
              box_problems.get(r["patient_id"], ""),
              mask_dir / masks_found[r["patient_id"]] if r["patient_id"] in masks_found else None,
              None if names is None else names.get(r["patient_id"], {}), bool(masks))
             for r in sorted(table.rows, key=lambda r: r["patient_id"])]
    for (pid, *_), (good, reasons, audit) in zip(tasks, map_patients(_patient_task, tasks, jobs=jobs,
                                                                       progress=progress)):
        if good is None:
            excluded.append(dict(patient_id=pid, reason="; ".join(r for _, r in reasons),
                                 code="+".join(c for c, _ in reasons)))
        else:
            rows.append(good)
        if audit:
            audits.append(audit)
    known = {r["patient_id"] for r in table.rows}
    for pid in sorted((set(folders) | set(dboxes)) - known):
        excluded.append(dict(patient_id=pid, reason="not in Clinical_and_Other_Features.xlsx (no label)",
                             code="not_in_clinical"))
    cohort = _write_rows(out, rows, dicom_prefix, mask_prefix, mask_dir)
    exc = pd.DataFrame(excluded, columns=["patient_id", "reason", "code"])
    write_csv(exc, out / "excluded.csv", what="the list of excluded patients")
    if audits:
        write_csv(pd.DataFrame(audits), out / "boxes_source.csv", what="the boxes as published")
    info = _info(cohort, exc, table, dict(dicom=dicom, clinical=clinical, boxes=boxes, mapping=mapping,
                                          masks=masks), dicom_prefix, mask_prefix)
    info["read_in_place"] = [str(d.resolve()) for d in (root, mask_dir) if d is not None]
    atomic_write_text(out / "cohort.json", json.dumps(info, indent=1, default=str), what="cohort.json")
    return ImportResult(out, cohort, exc, info, time.time() - t0)


def _write_rows(out: Path, rows: list[dict], dicom_prefix: str, mask_prefix: str,
                mask_dir: Path | None) -> pd.DataFrame:
    """Write the box files and ``cohort.csv``; returns the manifest."""
    for r in rows:
        study: Path = r.pop("_study")
        converted: list[Box] = r.pop("_boxes")
        mask: Path | None = r.pop("_mask")
        rel = Path(*study.parts[-2:]).as_posix()  # <patient>/<study>
        r["DCE_image"] = f"{dicom_prefix}/{rel}"
        if mask is not None:
            r["DCE_roi"] = f"{mask_prefix}/{mask.name}"
            r["roi_kind"] = "mask"
            if r["tumor_size_cm"] is None:
                r["tumor_size_cm"] = round(_mask_size_cm(mask), 2)
        else:
            box_file = Path("rois") / r["patient_id"] / "DCE_roi.csv"
            write_boxes(out / box_file, converted)
            r["DCE_roi"] = box_file.as_posix()
            r["roi_kind"] = "box"
    cols = ["patient_id", "alnm", "age", "tumor_size_cm", "margin", "tic_type", "field_strength",
            "DCE_image", "DCE_series", "DCE_roi", "roi_kind", "dce_phases", *EXTRA]
    cohort = pd.DataFrame(rows, columns=cols)
    write_csv(cohort, out / "cohort.csv", what="cohort.csv")
    return cohort


def _input(path) -> dict | None:
    if path is None:
        return None
    p = Path(path)
    if p.is_file():
        return {"file": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)}
    return {"folder": str(p.resolve())}


def _info(cohort: pd.DataFrame, exc: pd.DataFrame, table, inputs: dict, dicom_prefix: str,
          mask_prefix: str) -> dict:
    codes: dict[str, int] = {}
    for c in exc.code:
        for part in str(c).split("+"):
            codes[part] = codes.get(part, 0) + 1
    return {
        "cohort_info_version": 1,
        "importer": "alnm import duke",
        "collection": COLLECTION,
        "inputs": {k: _input(v) for k, v in inputs.items()},
        "paths": {"DCE_image": f"{dicom_prefix}/<patient>/<study> (the download, not copied)",
                  **({"masks": mask_prefix} if mask_prefix else {})},
        "sequences": ["DCE"],
        "label": LABEL,
        "covariates": COVARIATES,
        "not_recorded": sorted(NOT_RECORDED),
        "not_recorded_why": NOT_RECORDED,
        "missing_clinical_columns": table.missing_columns,
        "roi": {"DCE": {"box": int((cohort.roi_kind == "box").sum()), "mask": int((cohort.roi_kind == "mask").sum()),
                        "box_convention": "Annotation_Boxes.xlsx: 1-based, inclusive; rows and columns of "
                                          "the image; slices counted in InstanceNumber order of the series. "
                                          "Written as 0-based, half-open boxes in alnm's slice order (along "
                                          "the slice normal): see boxes_source.csv and docs/public-data.md"}},
        "counts": {"clinical_rows": len(table.rows), "imported": len(cohort),
                   "alnm_1": int((cohort.alnm == 1).sum()), "alnm_0": int((cohort.alnm == 0).sum()),
                   "excluded": len(exc), "excluded_by_code": dict(sorted(codes.items()))},
    }


# ----------------------------------------------------------------------------- command line
def add_arguments(p) -> None:
    """The options of ``alnm import duke``."""
    p.add_argument("--dicom", required=True, help="the DICOM download folder (holding Duke-Breast-Cancer-MRI/, "
                                                  "or the Breast_MRI_<n> folders themselves)")
    p.add_argument("--clinical", required=True, help="Clinical_and_Other_Features.xlsx")
    p.add_argument("--boxes", required=True, help="Annotation_Boxes.xlsx")
    p.add_argument("--out", required=True, help="the cohort folder to write")
    p.add_argument("--mapping", help="Breast-Cancer-MRI-filepath_filename-mapping.xlsx (optional): the "
                                     "curators' name of each series overrides the reading of its description")
    p.add_argument("--masks", help="MAMA-MIA expert masks (its root or segmentations/expert/), used instead of "
                                   "the box where a patient has one")
    p.add_argument("--no-link", action="store_true", help="write paths relative to the cohort folder instead of "
                                                          "a link COHORT/dicom to the download")
    p.add_argument("--overwrite", action="store_true", help="replace a cohort already in --out")
    p.add_argument("--jobs", type=int, help="processes reading the DICOM headers (default: the cores)")
    p.add_argument("--check-boxes", type=int, default=0, metavar="N",
                   help="afterwards read N patients' DCE and check the box convention against the images "
                        "(mean enhancement in the box as imported vs. the other readings); writes "
                        "box_check.csv")


def main(args) -> int:
    """``alnm import duke``: exit 0 when written, 2 on an input that cannot be read."""
    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def prog(i: int, n: int) -> None:
        if i == n or i % max(1, n // 10) == 0:
            say(f"import duke: {i}/{n} patients")

    try:
        r = import_duke(args.dicom, args.clinical, args.boxes, args.out, mapping=args.mapping, masks=args.masks,
                        link=not args.no_link, overwrite=args.overwrite, jobs=args.jobs, progress=prog)
    except ImporterError as exc:
        print(f"alnm import duke: {exc}", file=sys.stderr)
        return 2
    c = r.info["counts"]
    say(f"{c['imported']} patients imported ({c['alnm_1']} cN+, {c['alnm_0']} cN0), {c['excluded']} excluded "
        f"{c['excluded_by_code']} in {r.seconds:.1f} s; see {r.cohort_dir / 'excluded.csv'}")
    say("label = CLINICAL N stage (cN), not pathological pN: cohort.json, 'label'")
    trust = " ".join(f"--trust {shlex.quote(t)}" for t in r.trust)
    say(f"the cohort reads the download in place (nothing copied): alnm reads outside a cohort folder "
        f"only where you say so, so add {trust} to alnm validate / run (input.trusted_folders)")
    if args.check_boxes:
        from .box_check import check_boxes

        df = check_boxes(r.cohort_dir, n=args.check_boxes, progress=say)
        write_csv(df, r.cohort_dir / "box_check.csv", what="the box check")
        best = int((df.best == "as imported").sum())
        say(f"box check: the box as imported holds the most enhancement in {best} of {len(df)} patients "
            f"({r.cohort_dir / 'box_check.csv'})")
    print(r.cohort_dir.resolve())
    return 0
