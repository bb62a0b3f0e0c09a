"""A miniature replica of the Duke-Breast-Cancer-MRI download, from the phantom.

For tests and for trying ``alnm import duke`` without the 368 GB download: the collection's
layout as TCIA serves it (``Duke-Breast-Cancer-MRI/Breast_MRI_001/<study>/<n>.000000-<series>-
<n>/1-001.dcm``, one series per DCE phase with the collection's descriptions, a T1 series,
``Clinical_and_Other_Features.xlsx`` with its group / name / legend rows, ``Annotation_Boxes.xlsx``
in its 1-based inclusive convention with slices in InstanceNumber order), and the cases a real
download has: a cNX patient, a patient without a box, one with the ``Ph1/ax 3d dyn`` naming, one
whose series names no reader recognises, patients whose InstanceNumber runs against the slice
normal, three or four post-contrast phases. Optionally TCIA's file-path mapping spreadsheet and
MAMA-MIA-style expert masks. The images are the phantom's DCE (:func:`alnm_core.phantom.render_series`);
``render=False`` writes tiny constant images instead, for measuring the importer at full scale.

Example:
    >>> paths = write_duke_replica("replica", n_patients=24)        # doctest: +SKIP
    >>> paths.clinical.name
    'Clinical_and_Other_Features.xlsx'
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..boxes import mask_box
from ..config import PhantomConfig
from ..phantom import draw_patients, render_series, stored_values

ORDINAL = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th"}
NAMINGS = {
    "standard": ("ax dyn pre", lambda k: f"ax dyn {ORDINAL[k]} pass", "ax t1"),
    "ph": ("ax 3d dyn", lambda k: f"Ph{k}/ax 3d dyn", "ax t1 tse"),
    "unrecognised": ("AX VIBRANT MPH 0", lambda k: f"AX VIBRANT MPH {k}", "ax t1"),
}
#: clinical columns written: (group, name, legend); the readers' names with the published spelling
CLINICAL_LAYOUT = [
    ("Patient Information", "Patient ID", ""),
    ("MRI Technical Information", "Days to MRI (From the Date of Diagnosis)", ""),
    ("MRI Technical Information", "Manufacturer", ""),
    ("MRI Technical Information", "Field Strength (Tesla)", ""),
    ("MRI Technical Information", "Slice Thickness ", ""),
    ("Demographics", "Date of Birth (Days)", "(Taking date of diagnosis as day 0)"),
    ("Demographics", "Menopause (at diagnosis)", "{0 = pre,\n1 = post,\n2 = N/A}"),
    ("Tumor Characteristics", "ER", "{0 = neg, 1 = pos}"),
    ("Tumor Characteristics", "PR", "{0 = neg, 1 = pos}"),
    ("Tumor Characteristics", "HER2", "{0 = neg, 1 = pos, 2 = borderline}"),
    ("Tumor Characteristics", "Mol Subtype", "{0 = luminal-like,\n1 = ER/PR pos, HER2 pos,\n2 = her2,\n3 = trip neg}"),
    ("Tumor Characteristics", "Staging(Tumor Size)# [T]", ""),
    ("Tumor Characteristics", "Staging(Nodes)#(Nx replaced by -1)[N]", ""),
    ("Tumor Characteristics", "Bilateral Information", "{0 = unilateral, 1 = bilateral}"),
    ("MRI Findings", "Lymphadenopathy or Suspicious Nodes", "{0 = no, 1 = yes}"),
    ("Mammography Characteristics", "Margin", ""),
    ("Mammography Characteristics", "Tumor Size (cm)", ""),
    ("US features", "Margin", ""),
    ("US features", "Tumor Size (cm)", ""),
]


@dataclass(frozen=True)
class ReplicaPaths:
    """Where the replica's parts are: the download folder (``dicom``), the spreadsheets, the
    masks folder (MAMA-MIA root, or None) and ``truth.csv`` (what each patient should import as)."""

    dicom: Path
    clinical: Path
    boxes: Path
    mapping: Path | None
    masks: Path | None
    truth: Path


def _num(seed: int, *keys) -> int:
    return int(hashlib.sha256("/".join(map(str, (seed, *keys))).encode()).hexdigest()[:8], 16)


def _uid(seed: int, *keys) -> str:
    return "1.2.826.0.1.3680043.10.1175." + str(_num(seed, *keys) * 7919 + _num(seed, "u", *keys))[:24]


def _case(i: int, special: bool, n_post: int | None) -> dict:
    """The replica's special patients come first; the rest vary order and phase count."""
    case = dict(naming="standard", descending=i % 5 == 4, n_post=n_post or (3 if i % 4 == 3 else 4),
                nx=False, box=True)
    if special:
        case |= {0: dict(nx=True), 1: dict(box=False), 2: dict(naming="ph"), 3: dict(naming="unrecognised"),
                 4: dict(descending=True)}.get(i, {})
    return case


def _pad_slab(pix: np.ndarray, mask: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Extend the phantom's slab (centred on the tumour) by tumour-free slices above it, as a
    whole-breast series is: the tumour then lies off-centre, so counting slices from the wrong
    end moves the box off it."""
    r = np.random.default_rng(seed)
    nz = pix.shape[1]
    extra = nz // 2 + 3
    level = np.median(pix[:, -1], axis=(1, 2))[:, None, None, None]
    pad = np.clip(level + r.normal(0, 30, (pix.shape[0], extra, *pix.shape[2:])), 0, 4095).astype(pix.dtype)
    return np.concatenate([pix, pad], axis=1), np.concatenate([mask, np.zeros((extra, *mask.shape[1:]), bool)])


def _write_series(folder: Path, pixels: np.ndarray, *, seed: int, pid: str, desc: str, number: int,
                  seconds: int, spacing, origin, descending: bool, field: float, study_uid: str) -> str:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    folder.mkdir(parents=True, exist_ok=True)
    nz, rows, cols = pixels.shape
    series_uid = _uid(seed, pid, desc, "series")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.Modality, ds.Manufacturer = "MR", "GE MEDICAL SYSTEMS" if field < 2 else "SIEMENS"
    ds.PatientID, ds.PatientName = pid, pid  # TCIA's pseudonymous id
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.FrameOfReferenceUID = _uid(seed, pid, "for")
    ds.SeriesDescription, ds.SeriesNumber = desc, number
    ds.MagneticFieldStrength = f"{field:g}"
    ds.AcquisitionTime = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[2]:.6f}"]
    ds.SliceThickness = f"{spacing[0]:g}"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for z in range(nz):
        inst = nz - z if descending else z + 1
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID = _uid(seed, pid, desc, z)
        ds.InstanceNumber = inst
        ds.ImagePositionPatient = [f"{origin[0]:.4f}", f"{origin[1]:.4f}", f"{origin[2] + z * spacing[0]:.4f}"]
        ds.PixelData = pixels[z].tobytes()
        ds.save_as(folder / f"1-{inst:03d}.dcm", enforce_file_format=True)
    return series_uid


def _write_xlsx(path: Path, rows: list[list], *, sheet: str, merged: list[tuple[int, int, int]] = ()) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=not merged)
    ws = wb.create_sheet(sheet) if not merged else wb.active
    if merged:
        ws.title = sheet
    for row in rows:
        ws.append(row)
    for r, c0, c1 in merged:
        ws.merge_cells(start_row=r, start_column=c0, end_row=r, end_column=c1)
    wb.save(path)


def write_duke_replica(out: str | Path, *, n_patients: int = 24, seed: int = 3, matrix_scale: float = 0.2,
                       special: bool = True, render: bool = True, mapping: bool = False, masks: bool = False,
                       n_post: int | None = None, size: tuple[int, int, int] = (8, 16, 16),
                       progress: Callable[[int, int], None] | None = None) -> ReplicaPaths:
    """Write a replica of the Duke download (see the module's description) into ``out``.

    Args:
        n_patients: patients (``Breast_MRI_001`` ..); at least 8 with ``special``.
        seed: the phantom's seed; the same seed gives the same files.
        matrix_scale: the phantom's matrix scale (``render``).
        special: make the first five patients the special cases (cNX, no box, ``Ph1/ax`` naming,
            unrecognised names, InstanceNumber against the slice normal).
        render: the phantom's images; False: 16 x 16 constant slices (for timing the importer).
        mapping: also write ``Breast-Cancer-MRI-filepath_filename-mapping.xlsx``.
        masks: also write MAMA-MIA-style masks (``masks/segmentations/expert/duke_<n>.nii.gz``)
            for every second patient.
        n_post: post-contrast phases of every patient (None: four, three for every fourth).
        size: ``(slices, rows, columns)`` of the unrendered images (``render=False``); Duke's are
            about ``(160, 512, 512)``.
    """
    from ..imaging import Volume, write_mask_nifti

    out = Path(out)
    root = out / "Duke-Breast-Cancer-MRI"
    root.mkdir(parents=True, exist_ok=True)
    (root / "LICENSE").write_text("replica of the collection's layout; synthetic images\n")
    cfg = PhantomConfig(n_patients=max(n_patients, 8), seed=seed, matrix_scale=matrix_scale)
    truths = draw_patients(cfg)[:n_patients]
    clinical, boxes, truth, maprows = [], [], [], []
    for i, p in enumerate(truths):
        pid = f"Breast_MRI_{i + 1:03d}"
        case = _case(i, special, n_post)
        field = 1.5 if p.field_strength == "1.5T" else 3.0
        if render:
            stack, vol, tmask = render_series(p, "DCE", cfg)
            pix, tmask = _pad_slab(stored_values(stack, "DCE"), tmask, _num(seed, pid, "pad"))
            spacing, origin = vol.spacing, vol.origin
        else:
            nz, ny, nx = size
            pix = np.full((7, *size), 100, np.uint16)
            lesion = (slice(nz // 3, nz // 3 + max(1, nz // 4)), slice(ny // 3, ny // 3 + max(1, ny // 3)),
                      slice(nx // 4, nx // 4 + max(1, nx // 4)))
            pix[(slice(1, None), *lesion)] = 300
            spacing, origin = (2.0, 0.7, 0.7), (0.0, 0.0, 0.0)
            tmask = np.zeros(size, bool)
            tmask[lesion] = True
        nz = pix.shape[1]
        pre_name, post_name, t1_name = NAMINGS[case["naming"]]
        study_uid = _uid(seed, pid, "study")
        study = root / pid / f"01-01-1990-NA-MRI BREAST BILATERAL W  WO-{_num(seed, pid) % 90000 + 10000}"
        series = [(t1_name, 2, None, "T1"), (pre_name, 3, 0, "pre")]
        series += [(post_name(k), 3 + k, k, f"post_{k}") for k in range(1, case["n_post"] + 1)]
        for desc, number, phase, curated in series:
            img = pix[0] * 0.8 if phase is None else pix[phase]
            name = f"{number}.000000-{desc.replace('/', '')}-{_num(seed, pid, desc) % 90000 + 10000}"
            uid = _write_series(study / name, np.asarray(img, np.uint16), seed=seed, pid=pid, desc=desc,
                                number=number, seconds=9 * 3600 + 60 * (phase or 0) - (60 if phase is None else 0),
                                spacing=spacing, origin=origin, descending=case["descending"], field=field,
                                study_uid=study_uid)
            if mapping:
                for z in range(nz):
                    f = f"1-{z + 1:03d}.dcm"
                    maprows.append([f"DICOM_Images/{pid}/{curated}/{pid}_{curated}_{z + 1:03d}.dcm",
                                    f"Duke-Breast-Cancer-MRI/{pid}/{study_uid}/{uid}/{f}",
                                    f"Duke-Breast-Cancer-MRI/{pid}/{study.name}/{name}/{f}"])
        b = mask_box(tmask)  # 0-based, half-open, slices along the normal
        s_first, s_last = (nz - b.slice1 + 1, nz - b.slice0) if case["descending"] else (b.slice0 + 1, b.slice1)
        if case["box"]:
            boxes.append([pid, b.row0 + 1, b.row1, b.col0 + 1, b.col1, s_first, s_last])
        if masks and i % 2 == 0 and render:
            geo = Volume(np.zeros(tmask.shape, np.float32), spacing=spacing, origin=origin)
            write_mask_nifti(tmask, geo, out / "masks" / "segmentations" / "expert" / f"duke_{i + 1:03d}.nii.gz")
        r = np.random.default_rng(_num(seed, pid, "clinical"))
        n_stage = -1 if case["nx"] else (int(r.integers(1, 4)) if p.alnm else 0)
        clinical.append([pid, int(r.integers(-30, 0)), "GE MEDICAL SYSTEMS" if field < 2 else "SIEMENS", field,
                         round(float(spacing[0]), 2), -int(round(p.age * 365.25 + r.integers(0, 300))),
                         int(p.age > 50), int(r.integers(0, 2)), int(r.integers(0, 2)), int(r.integers(0, 3)),
                         int(r.integers(0, 4)), int(r.integers(1, 4)), n_stage, 0, int(r.integers(0, 2)),
                         "NC", "NC", "NC", round(p.tumor_size_cm, 1) if i % 7 == 0 else "NC"])
        truth.append(dict(patient_id=pid, alnm=None if case["nx"] else int(n_stage >= 1), naming=case["naming"],
                          descending=case["descending"], n_post=case["n_post"], has_box=case["box"],
                          slice0=b.slice0, slice1=b.slice1, row0=b.row0, row1=b.row1, col0=b.col0, col1=b.col1,
                          n_slices=nz, row_spacing=spacing[1], col_spacing=spacing[2]))
        if progress:
            progress(i + 1, n_patients)
    groups = [g for g, _, _ in CLINICAL_LAYOUT]
    header1 = [g if j == 0 or groups[j - 1] != g else None for j, g in enumerate(groups)]
    merged, j = [], 0
    while j < len(groups):
        k = j
        while k + 1 < len(groups) and groups[k + 1] == groups[j]:
            k += 1
        if k > j:
            merged.append((1, j + 1, k + 1))
        j = k + 1
    paths = ReplicaPaths(out, out / "Clinical_and_Other_Features.xlsx", out / "Annotation_Boxes.xlsx",
                         out / "Breast-Cancer-MRI-filepath_filename-mapping.xlsx" if mapping else None,
                         out / "masks" if masks and render else None, out / "truth.csv")
    _write_xlsx(paths.clinical, [header1, [n for _, n, _ in CLINICAL_LAYOUT], [lg for _, _, lg in CLINICAL_LAYOUT],
                                 *clinical], sheet="Data", merged=merged)
    _write_xlsx(paths.boxes, [["Patient ID", "Start Row", "End Row", "Start Column", "End Column", "Start Slice",
                               "End Slice"], *boxes], sheet="Sheet1")
    if mapping:
        _write_xlsx(paths.mapping, [["original_path_and_filename", "classic_path", "descriptive_path"], *maprows],
                    sheet="Sheet1")
    pd.DataFrame(truth).to_csv(paths.truth, index=False)
    return paths
