"""The phantom: a synthetic multiparametric breast MRI cohort written as real DICOM + NIfTI.

Real patient data cannot ship, so this module writes a cohort that goes through exactly the code
path of a real one: per patient three axial DICOM series (MR Image Storage) on their own grids,
a NIfTI tumour mask per series in that series' geometry, and a ``cohort.csv`` manifest.

How the label shows in the images (each tunable through :class:`~alnm_core.config.PhantomConfig`):

* **T2WI** (``strength_t2wi``): a bright peritumoral oedema shell whose thickness and
  brightness grow with ALNM; tumour size and margin irregularity also differ by group, as in the
  paper's Table 1.
* **DWI** (``strength_dwi``): ALNM lowers the tumour's apparent diffusion coefficient
  (restricted diffusion), so the tumour stays brighter at the high b-value.
* **DCE** (``strength_dce``): ALNM adds rim enhancement (a less enhancing core).

With ``effect_slices = k > 0`` (:class:`~alnm_core.config.PhantomConfig`) the three effects
live in k adjacent tumour slices of each series only (:func:`effect_slice_indices`); the other
slices show the patient's label-free oedema, ADC and rim. Tumour size and margin still differ
by group on every slice.

The designed effect of the label, in SDs of each quantity (:func:`designed_effects`), is with the
demo's strengths 2.7 on DWI (ADC), 2.0 on T2WI (oedema thickness) and 0.3 on DCE (rim): DWI's is
the largest. That the demo's models rank T2WI above DWI comes from resolution and crop content
(the oedema is a large, bright structure; DWI's grid is coarse) and from tuning, not from the
design. Each series is stored on one fixed intensity scale per sequence for the whole cohort
(:data:`STORED_PER_SIGNAL`), as a scanner would, so no tissue's stored brightness carries the
label except through the designed signal (checked in ``tests/test_phantom.py``).

The anatomy is an analytic world model (breast outlines, fat, fibroglandular texture, chest wall,
tumour) evaluated at each series' voxel centres, so the three series of one patient show the same
anatomy on different matrices, spacings and slice positions, as in a real exam.

Marginals follow the paper's Table 1: age 51 +- 11, ~39% ALNM, size 2.4 +- 1.15 cm (ALNM) vs
1.9 +- 0.78 cm, irregular margin 66% vs 55%, TIC type III 29% vs 36%. Everything is deterministic
for a seed. No identifying values: names are the pseudonymous id, dates are fixed.

Example:
    >>> from alnm_core.config import PhantomConfig
    >>> write_phantom("data/phantom", PhantomConfig(n_patients=12))   # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .config import DEFAULT_SEQUENCES, PhantomConfig
from .imaging import Volume, write_mask_nifti

SEQUENCES = DEFAULT_SEQUENCES
#: forms the phantom's DICOM can take: one uncompressed file per slice (default), the same
#: compressed as JPEG Lossless SV1, or one Legacy Converted Enhanced MR file per series
TRANSFER_SYNTAXES = ("explicit", "jpeg-lossless", "enhanced")
#: bumped whenever the generator's output changes, so cached phantoms are rewritten
PHANTOM_VERSION = 5
#: stored value = rendered signal x this factor, one fixed scale per sequence for the whole cohort
#: (as a scanner's receiver gain): a per-series scale (version 4 used the series' own maximum)
#: would let every tissue's stored brightness depend on the brightest structure, on T2WI the
#: label-dependent oedema, and hand the label to any model not normalising per crop
STORED_PER_SIGNAL = {"T2WI": 4095.0 / 1700.0, "DWI": 4095.0 / 900.0, "DCE": 4095.0 / 1000.0}
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
UID_ROOT = "1.2.826.0.1.3680043.10.1174."  # fixed root for the phantom's derived UIDs

#: Acquisition parameters from the paper's Table 2, per field strength and sequence.
#: matrix = (columns, rows) as printed; fov in mm; thickness and gap in mm.
TABLE2 = {
    "1.5T": {
        "T2WI": dict(tr=7210, te=102, fa=160, gap=1.0, thick=4.0, fov=320, matrix=(288, 224)),
        "DWI": dict(tr=5030, te=56, fa=180, gap=1.0, thick=5.0, fov=320, matrix=(110, 170),
                    b=(50.0, 800.0)),
        "DCE": dict(tr=5.6, te=1.7, fa=15, gap=0.5, thick=1.5, fov=320, matrix=(114, 224)),
    },
    "3T": {
        "T2WI": dict(tr=4300, te=75, fa=120, gap=0.8, thick=4.0, fov=351, matrix=(576, 576)),
        "DWI": dict(tr=6650, te=65, fa=180, gap=1.1, thick=4.0, fov=340, matrix=(224, 224),
                    b=(50.0, 1000.0)),
        "DCE": dict(tr=3.6, te=1.8, fa=10, gap=0.5, thick=2.0, fov=340, matrix=(512, 512)),
    },
}
DCE_PHASES = 7
DCE_PHASE_SECONDS = 60.0
SCANNERS = {"1.5T": ("GE MEDICAL SYSTEMS", "Signa Explorer"), "3T": ("SIEMENS", "Skyra")}


@dataclass(frozen=True)
class PatientTruth:
    """Ground truth of one phantom patient (what the generator decided)."""

    patient_id: str
    alnm: int
    age: int
    tumor_size_cm: float
    margin: str
    tic_type: str
    field_strength: str
    center: tuple[float, float, float]  # tumour centre, LPS mm
    radius_mm: float
    edema_mm: float
    adc: float  # tumour ADC, 1e-3 mm^2/s
    rim: float  # 0 = homogeneous enhancement, 1 = core does not enhance
    irregularity: float
    # the same patient without the label's designed effect (phantom.effect_slices > 0 shows
    # these outside the effect slices)
    edema0_mm: float = 0.0
    adc0: float = 0.0
    rim0: float = 0.0


def _rng(seed: int, *keys: object) -> np.random.Generator:
    h = hashlib.sha256(("/".join(map(str, (seed, *keys)))).encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def _uid(seed: int, *keys: object) -> str:
    h = hashlib.sha256(("/".join(map(str, (seed, *keys)))).encode()).hexdigest()
    return UID_ROOT + str(int(h[:24], 16))[:30]


def draw_patients(cfg: PhantomConfig) -> list[PatientTruth]:
    """Draw the cohort's clinical variables and tumour parameters (deterministic for the seed)."""
    n = cfg.n_patients
    rng = _rng(cfg.seed, "cohort")
    n_pos = int(round(0.389 * n))
    labels = np.array([1] * n_pos + [0] * (n - n_pos))
    rng.shuffle(labels)
    out = []
    for i, y in enumerate(labels):
        r = _rng(cfg.seed, "patient", i)
        pid = f"P{i + 1:04d}"
        age = int(np.clip(round(r.normal(51.0 if y else 51.6, 11.1)), 26, 85))
        size = float(np.clip(r.normal(2.4, 1.15) if y else r.normal(1.9, 0.78), 0.8, 5.0))
        size = round(size, 1)
        margin = "irregular" if r.random() < (0.663 if y else 0.552) else "regular"
        tic = "III" if r.random() < (0.286 if y else 0.364) else "II"
        field = "3T" if r.random() < 0.55 else "1.5T"
        side = 1.0 if r.random() < 0.5 else -1.0
        center = (side * r.uniform(60, 100), r.uniform(-45, -15), r.uniform(-15, 15))
        s2 = cfg.strength_t2wi
        # the noise is drawn once and shared by the patient with and without the label
        n_edema = r.normal(0.8, 2.0)
        edema, edema0 = max(0.0, s2 * (4.0 * y + n_edema)), max(0.0, s2 * n_edema)
        n_adc = r.normal(0.0, 0.12)
        adc = float(np.clip(1.05 - 0.65 * cfg.strength_dwi * y + n_adc, 0.5, 1.6))
        adc0 = float(np.clip(1.05 + n_adc, 0.5, 1.6))
        n_rim = r.normal(0.15, 0.25)
        rim = float(np.clip(cfg.strength_dce * (1.6 * y) + n_rim, 0.0, 0.95))
        rim0 = float(np.clip(n_rim, 0.0, 0.95))
        irregular = 0.22 if margin == "irregular" else 0.04
        out.append(PatientTruth(pid, int(y), age, size, margin, tic, field, center,
                                size * 10 / 2, edema, adc, rim, irregular, edema0, adc0, rim0))
    return out


class _World:
    """Analytic anatomy of one patient in LPS millimetres."""

    def __init__(self, p: PatientTruth, seed: int):
        r = _rng(seed, "world", p.patient_id)
        self.p = p
        # fibroglandular texture: random Fourier features, wavelengths 12-35 mm
        k = r.normal(size=(10, 3))
        k /= np.linalg.norm(k, axis=1, keepdims=True)
        k *= (2 * np.pi / r.uniform(12, 35, size=10))[:, None]
        self.k, self.phi = k, r.uniform(0, 2 * np.pi, size=10)
        self.fg_level = r.uniform(-0.3, 0.5)
        # tumour shape: low-order angular harmonics
        self.harm = [(int(m), r.uniform(0, 2 * np.pi), r.uniform(0.5, 1.0), int(l))
                     for m, l in zip(r.integers(3, 8, size=4), r.integers(1, 3, size=4))]
        self.axes = r.uniform(0.85, 1.15, size=3)
        self.breast_r = r.uniform(55, 75)

    def texture(self, pts: np.ndarray) -> np.ndarray:
        return np.cos(pts @ self.k.T + self.phi).mean(axis=-1) * 2.2

    def tumour_distance(self, pts: np.ndarray) -> np.ndarray:
        """Signed distance-like value: < 0 inside the tumour, in mm (approximate)."""
        d = (pts - np.asarray(self.p.center)) / self.axes
        rad = np.linalg.norm(d, axis=-1) + 1e-9
        theta = np.arctan2(d[..., 1], d[..., 0])
        elev = np.arcsin(np.clip(d[..., 2] / rad, -1, 1))
        mod = np.zeros_like(rad)
        for m, ph, a, l in self.harm:
            mod += a * np.cos(m * theta + ph) * np.cos(l * elev)
        mod /= len(self.harm)
        r_surf = self.p.radius_mm * (1 + self.p.irregularity * mod * 2.0)
        return rad - r_surf

    def tissues(self, pts: np.ndarray) -> dict[str, np.ndarray]:
        x, y = pts[..., 0], pts[..., 1]
        chest = y > 30
        body = chest & (y < 160) & (np.abs(x) < 170)
        inb = np.zeros(x.shape, bool)
        for cx in (-80.0, 80.0):
            inb |= (((x - cx) / self.breast_r) ** 2 + ((y - 30) / 85.0) ** 2 < 1) & (y <= 30)
        tex = self.texture(pts)
        fg = inb & (tex > self.fg_level) & (np.hypot(np.abs(x) - 80, y - 30) < self.breast_r * 0.85)
        d = self.tumour_distance(pts)
        tumour = d < 0
        edema = (~tumour) & (d < self.p.edema_mm) & inb
        return dict(body=body, breast=inb, fg=fg, tumour=tumour, edema=edema, dist=d, tex=tex)


def _grid(p: PatientTruth, seq: str, cfg: PhantomConfig):
    """Voxel-centre coordinates of a series: an axial slab around the tumour."""
    spec = TABLE2[p.field_strength][seq]
    cols = max(64, int(round(spec["matrix"][0] * cfg.matrix_scale)))
    rows = max(64, int(round(spec["matrix"][1] * cfg.matrix_scale)))
    fov = float(spec["fov"])
    ps_row, ps_col = fov / rows, fov / cols
    dz = spec["thick"] + spec["gap"]
    r = _rng(cfg.seed, "grid", p.patient_id, seq)
    half_extent = p.radius_mm * (1 + 2 * p.irregularity) + dz
    n = max(3, int(math.ceil(2 * half_extent / dz)) + 1)
    zc = p.center[2] + r.uniform(-dz / 4, dz / 4)
    z0 = zc - (n - 1) / 2 * dz
    origin = (-fov / 2 + ps_col / 2, -fov / 2 + 40 + ps_row / 2, z0)
    xs = origin[0] + ps_col * np.arange(cols)
    ys = origin[1] + ps_row * np.arange(rows)
    zs = z0 + dz * np.arange(n)
    Z, Y, X = np.meshgrid(zs, ys, xs, indexing="ij")
    pts = np.stack([X, Y, Z], axis=-1)
    return pts, (dz, ps_row, ps_col), origin, spec


def _tic_curve(tic: str, n: int = DCE_PHASES) -> np.ndarray:
    t = np.arange(n) * DCE_PHASE_SECONDS / 60.0  # minutes; phase 0 = pre-contrast
    rise = 1 - np.exp(-t / 0.45)
    if tic == "I":
        curve = rise * (1 + 0.06 * t)
    elif tic == "II":
        curve = rise
    else:
        curve = rise * np.exp(-0.09 * np.clip(t - 1.2, 0, None))
    curve[0] = 0.0
    return curve / curve.max()


def _effect_window(p: PatientTruth, seq: str, cfg: PhantomConfig, tumour: np.ndarray) -> np.ndarray:
    """Which slices of a series carry the label's effect (bool per slice; all when
    ``cfg.effect_slices == 0``): k adjacent ones among the slices with at least a quarter of
    the largest tumour area, at a random place (seeded per patient and sequence)."""
    nz = tumour.shape[0]
    if cfg.effect_slices <= 0:
        return np.ones(nz, bool)
    area = tumour.sum(axis=(1, 2))
    cand = np.flatnonzero(area >= 0.25 * area.max())
    k = min(cfg.effect_slices, len(cand))
    start = int(_rng(cfg.seed, "effect", p.patient_id, seq).integers(0, len(cand) - k + 1))
    out = np.zeros(nz, bool)
    out[cand[start:start + k]] = True
    return out


def effect_slice_indices(p: PatientTruth, seq: str, cfg: PhantomConfig) -> list[int]:
    """The slices (indices into the series, as ``slice_index`` of the crops) where the label's
    designed effect shows; every slice when ``cfg.effect_slices == 0``."""
    pts, *_ = _grid(p, seq, cfg)
    tumour = _World(p, cfg.seed).tumour_distance(pts) < 0
    return [int(z) for z in np.flatnonzero(_effect_window(p, seq, cfg, tumour))]


def render_series(p: PatientTruth, seq: str, cfg: PhantomConfig) -> tuple[np.ndarray, Volume, np.ndarray]:
    """Render one series of one patient.

    Returns:
        ``(array, geometry, mask)``: array ``(z, y, x)`` for T2WI, ``(n, z, y, x)`` for DWI
        (b-values) and DCE (phases); a :class:`Volume` carrying the geometry; the tumour mask.
    """
    world = _World(p, cfg.seed)
    pts, spacing, origin, spec = _grid(p, seq, cfg)
    t = world.tissues(pts)
    r = _rng(cfg.seed, "noise", p.patient_id, seq)
    shape = t["body"].shape
    tex = t["tex"]
    # the label's effect per slice: on every slice, or (effect_slices) on a few only
    on = _effect_window(p, seq, cfg, t["tumour"])
    edema_z = np.where(on, p.edema_mm, p.edema0_mm)[:, None, None]
    adc_z = np.where(on, p.adc, p.adc0)[:, None, None]
    rim_z = np.where(on, p.rim, p.rim0)[:, None, None]
    if not on.all():
        t["edema"] = (~t["tumour"]) & (t["dist"] < edema_z) & t["breast"]
    if seq == "T2WI":
        img = np.full(shape, 8.0)
        img[t["body"]] = 260 + 20 * tex[t["body"]]
        img[t["breast"]] = 780 + 40 * tex[t["breast"]]
        img[t["fg"]] = 360 + 50 * tex[t["fg"]]
        ed_int = np.broadcast_to(900 + 250 * np.minimum(1.0, edema_z / 5.0), shape)
        img[t["edema"]] = ed_int[t["edema"]] + 60 * tex[t["edema"]]
        img[t["tumour"]] = 470 + 60 * tex[t["tumour"]]
        img = img + r.normal(0, 22, shape)
        stack = np.abs(img)[None]
    elif seq == "DWI":
        s0 = np.full(shape, 5.0)
        adc = np.full(shape, 2.5)
        s0[t["body"]], adc[t["body"]] = 260, 1.4
        s0[t["breast"]], adc[t["breast"]] = 60, 0.3  # fat: suppressed, low signal
        s0[t["fg"]], adc[t["fg"]] = 420 + 40 * tex[t["fg"]], 1.9
        s0[t["edema"]], adc[t["edema"]] = 480, 2.2
        s0[t["tumour"]] = 520 + 40 * tex[t["tumour"]]
        adc[t["tumour"]] = np.broadcast_to(adc_z, shape)[t["tumour"]] + 0.08 * tex[t["tumour"]]
        stack = np.stack([s0 * np.exp(-b * adc * 1e-3) for b in spec["b"]])
        stack = np.abs(stack + r.normal(0, 14, stack.shape))
    else:
        base = np.full(shape, 6.0)
        base[t["body"]] = 250
        base[t["breast"]] = 90
        base[t["fg"]] = 190 + 15 * tex[t["fg"]]
        base[t["tumour"]] = 210
        amp = np.zeros(shape)
        amp[t["body"]] = 0.15
        amp[t["fg"]] = 0.35
        curve_fg = _tic_curve("I")
        depth = np.clip(-t["dist"] / max(p.radius_mm, 1e-3), 0, 1)
        tum_amp = 1.9 * (1 - rim_z * depth) + 0.15 * tex
        curve_t = _tic_curve(p.tic_type)
        phases = []
        for k in range(DCE_PHASES):
            s = base * (1 + amp * curve_fg[k])
            s = np.where(t["tumour"], base * (1 + tum_amp * curve_t[k]), s)
            phases.append(s)
        stack = np.abs(np.stack(phases) + r.normal(0, 9, (DCE_PHASES, *shape)))
    # direction: x = patient left, y = posterior, z = superior (standard axial LPS)
    vol = Volume(array=stack.astype(np.float32), spacing=spacing, origin=origin,
                 direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))
    return stack.astype(np.float32), vol, t["tumour"]


def stored_values(stack: np.ndarray, seq: str) -> np.ndarray:
    """The 12-bit values written to DICOM: the rendered signal on the sequence's fixed scale."""
    return np.clip(np.round(stack * STORED_PER_SIGNAL[seq]), 0, 4095).astype(np.uint16)


def _write_dicom_series(folder: Path, p: PatientTruth, seq: str, stack: np.ndarray, vol: Volume,
                        cfg: PhantomConfig) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    folder.mkdir(parents=True, exist_ok=True)
    spec = TABLE2[p.field_strength][seq]
    manufacturer, model = SCANNERS[p.field_strength]
    field_t = 1.5 if p.field_strength == "1.5T" else 3.0
    n_vol, nz, rows, cols = stack.shape
    study_uid = _uid(cfg.seed, p.patient_id, "study")
    series_uid = _uid(cfg.seed, p.patient_id, seq, "series")
    for_uid = _uid(cfg.seed, p.patient_id, seq, "for")
    pix = stored_values(stack, seq)
    desc = {"T2WI": "AX T2 FSE", "DWI": "AX DWI", "DCE": "AX DYN T1 FS"}[seq]
    series_no = {"T2WI": 2, "DWI": 3, "DCE": 4}[seq]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID_ROOT + "1"
    meta.ImplementationVersionName = "ALNM_PHANTOM"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20200101"
    ds.StudyTime = ds.SeriesTime = "090000"
    ds.AccessionNumber = ""
    ds.Modality = "MR"
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = model
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "BREAST MRI (PHANTOM)"
    ds.SeriesDescription = desc
    ds.PatientName = f"PHANTOM^{p.patient_id}"
    ds.PatientID = p.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "F"
    ds.PatientAge = f"{p.age:03d}Y"
    ds.BodyPartExamined = "BREAST"
    ds.ScanningSequence = "SE" if seq != "DCE" else "GR"
    ds.SequenceVariant = "SK" if seq != "DCE" else "SP"
    ds.ScanOptions = "" if seq != "DCE" else "FS"
    ds.MRAcquisitionType = "2D" if seq != "DCE" else "3D"
    ds.SliceThickness = f"{spec['thick']:g}"
    ds.SpacingBetweenSlices = f"{spec['thick'] + spec['gap']:g}"
    ds.RepetitionTime = f"{spec['tr']:g}"
    ds.EchoTime = f"{spec['te']:g}"
    ds.EchoTrainLength = 1 if seq == "DCE" else 16
    ds.NumberOfAverages = 1
    ds.ImagingFrequency = f"{42.577 * field_t:.3f}"
    ds.ImagedNucleus = "1H"
    ds.MagneticFieldStrength = f"{field_t:g}"
    ds.FlipAngle = f"{spec['fa']:g}"
    ds.AngioFlag = "N"
    ds.PatientPosition = "FFP"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_no
    ds.FrameOfReferenceUID = for_uid
    ds.PositionReferenceIndicator = ""
    ds.Laterality = "L" if p.center[0] > 0 else "R"
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = [f"{vol.spacing[1]:.6f}", f"{vol.spacing[2]:.6f}"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.WindowCenter, ds.WindowWidth = "2048", "4096"
    if seq == "DWI":
        ds.DiffusionDirectionality = "ISOTROPIC"
    if seq == "DCE":
        ds.NumberOfTemporalPositions = n_vol
    inst = 0
    for v in range(n_vol):
        for z in range(nz):
            inst += 1
            sop_uid = _uid(cfg.seed, p.patient_id, seq, v, z)
            meta.MediaStorageSOPInstanceUID = sop_uid
            ds.SOPInstanceUID = sop_uid
            ds.ContentTime = f"09{(inst // 60) % 60:02d}{inst % 60:02d}"
            ds.InstanceNumber = inst
            ds.AcquisitionNumber = v + 1
            zpos = vol.origin[2] + z * vol.spacing[0]
            ds.ImagePositionPatient = [f"{vol.origin[0]:.4f}", f"{vol.origin[1]:.4f}", f"{zpos:.4f}"]
            ds.SliceLocation = f"{zpos:.4f}"
            if seq == "DWI":
                ds.DiffusionBValue = float(spec["b"][v])
            if seq == "DCE":
                ds.TemporalPositionIdentifier = v + 1
                secs = 9 * 3600 + int(v * DCE_PHASE_SECONDS)
                ds.AcquisitionTime = f"{secs // 3600:02d}{secs // 60 % 60:02d}{secs % 60:02d}"
                ds.ContrastBolusAgent = "Gd-DTPA" if v > 0 else ""
            ds.PixelData = pix[v, z].tobytes()
            ds.save_as(folder / f"IM{inst:05d}.dcm", enforce_file_format=True)


def _to_jpeg_lossless(folder: Path) -> None:
    """Re-encode every file of a written series as JPEG Lossless SV1 (same pixels)."""
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLosslessSV1

    from .jpeg_lossless import encode

    for f in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.PixelData = encapsulate([encode(ds.pixel_array, int(ds.BitsStored))])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
        ds.save_as(f, enforce_file_format=True)


def _to_enhanced(folder: Path, cfg: PhantomConfig, p: PatientTruth, seq: str) -> None:
    """Replace a written series by one Legacy Converted Enhanced MR file (highdicom), keeping
    its series UID; b-values and temporal positions land in the per-frame functional groups."""
    import highdicom as hd
    import pydicom

    files = sorted(folder.glob("*.dcm"))
    datasets = [pydicom.dcmread(f) for f in files]
    for ds in datasets:
        ds.AcquisitionDate = ds.StudyDate  # lets highdicom write FrameAcquisitionDateTime
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(
        datasets, series_instance_uid=datasets[0].SeriesInstanceUID,
        series_number=int(datasets[0].SeriesNumber), sop_instance_uid=_uid(cfg.seed, p.patient_id, seq, "enhanced"),
        instance_number=1)
    enhanced.InstanceCreationDate, enhanced.InstanceCreationTime = "20200101", "090000"  # deterministic
    # it keeps the series UID of its (replaced) sources, so it references no other series
    # (dciodvfy: "ReferencedSeriesSequence present but Instance does not reference Instances")
    del enhanced.ReferencedSeriesSequence
    for f in files:
        f.unlink()
    enhanced.save_as(folder / "EN00001.dcm", enforce_file_format=True)


def write_patient(root: Path, p: PatientTruth, cfg: PhantomConfig,
                  transfer_syntax: str = "explicit") -> dict[str, str]:
    """Write the three series and masks of one patient; return the manifest's path columns.

    ``transfer_syntax`` is one of :data:`TRANSFER_SYNTAXES`.
    """
    row = {}
    for seq in SEQUENCES:
        stack, vol, mask = render_series(p, seq, cfg)
        stack4 = stack if stack.ndim == 4 else stack[None]
        series_dir = Path(p.patient_id) / seq
        shutil.rmtree(root / series_dir, ignore_errors=True)  # no stale slices of an older phantom
        _write_dicom_series(root / series_dir, p, seq, stack4, vol, cfg)
        if transfer_syntax == "jpeg-lossless":
            _to_jpeg_lossless(root / series_dir)
        elif transfer_syntax == "enhanced":
            _to_enhanced(root / series_dir, cfg, p, seq)
        mask_path = Path(p.patient_id) / f"{seq}_roi.nii.gz"
        write_mask_nifti(mask, vol, root / mask_path)
        row[f"{seq}_image"] = series_dir.as_posix()
        row[f"{seq}_roi"] = mask_path.as_posix()
    return row


def write_phantom(
    out: str | Path,
    cfg: PhantomConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
    transfer_syntax: str = "explicit",
) -> Path:
    """Write a phantom cohort folder (``cohort.csv``, DICOM series, NIfTI masks, ``truth.csv``).

    Args:
        out: target folder (created; existing phantom files are overwritten).
        cfg: phantom settings; defaults to :class:`PhantomConfig`.
        progress: called as ``progress(done, total)`` after each patient.
        jobs: worker processes (default: all cores); output is identical for any value.
        transfer_syntax: the DICOM form, one of :data:`TRANSFER_SYNTAXES`: ``explicit`` (one
            uncompressed file per slice), ``jpeg-lossless`` (the same, JPEG Lossless SV1) or
            ``enhanced`` (one Legacy Converted Enhanced MR file per series).

    Returns:
        The folder written.
    """
    cfg = cfg or PhantomConfig()
    if transfer_syntax not in TRANSFER_SYNTAXES:
        raise ValueError(f"transfer_syntax {transfer_syntax!r} is not one of {TRANSFER_SYNTAXES}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    patients = draw_patients(cfg)
    rows, truth = [], []
    jobs = max(1, min(jobs or (os.cpu_count() or 1), len(patients)))
    if jobs > 1:
        pool = ProcessPoolExecutor(max_workers=jobs)
        results = pool.map(write_patient, [root] * len(patients), patients, [cfg] * len(patients),
                           [transfer_syntax] * len(patients))
    else:
        pool = None
        results = (write_patient(root, p, cfg, transfer_syntax) for p in patients)
    for i, (p, paths) in enumerate(zip(patients, results)):
        rows.append(dict(patient_id=p.patient_id, alnm=p.alnm, age=p.age,
                         tumor_size_cm=p.tumor_size_cm, margin=p.margin, tic_type=p.tic_type,
                         field_strength=p.field_strength, **paths))
        truth.append(dict(patient_id=p.patient_id, edema_mm=round(p.edema_mm, 3),
                          adc=round(p.adc, 4), rim=round(p.rim, 4),
                          irregularity=round(p.irregularity, 3)))
        if cfg.effect_slices > 0:
            truth[-1].update({f"{seq}_effect_slices": ";".join(map(str, effect_slice_indices(p, seq, cfg)))
                              for seq in SEQUENCES})
        if progress:
            progress(i + 1, len(patients))
    if pool is not None:
        pool.shutdown()
    pd.DataFrame(rows).to_csv(root / "cohort.csv", index=False)
    pd.DataFrame(truth).to_csv(root / "truth.csv", index=False)
    (root / "PHANTOM.txt").write_text(
        "Synthetic cohort written by alnm_core.phantom; no real patient data.\n"
        f"settings: {cfg}\n"
        f"DICOM form: {transfer_syntax}\n"
    )
    (root / "PHANTOM.json").write_text(json.dumps(phantom_stamp(cfg), indent=1))
    return root


def designed_effects(cfg: PhantomConfig) -> dict[str, float]:
    """The label's designed effect per sequence, in SDs of the quantity it moves (before
    clipping): oedema thickness (T2WI), tumour ADC (DWI), rim enhancement (DCE).

    With ``cfg.effect_slices = k > 0`` this is the effect on the k effect slices of each
    series (:func:`effect_slice_indices`); on its other slices the effect is 0, so a model
    that weighs every slice alike sees it diluted."""
    return {"T2WI": 4.0 * cfg.strength_t2wi / 2.0 if cfg.strength_t2wi else 0.0,
            "DWI": 0.65 * cfg.strength_dwi / 0.12,
            "DCE": 1.6 * cfg.strength_dce / 0.25}


def phantom_settings(cohort_dir: str | Path) -> PhantomConfig | None:
    """The settings a phantom cohort folder was written with (None for a real cohort)."""
    stamp = Path(cohort_dir) / "PHANTOM.json"
    if not stamp.is_file():
        return None
    data = json.loads(stamp.read_text())
    data.pop("generator_version", None)
    return PhantomConfig(**data)


def phantom_stamp(cfg: PhantomConfig) -> dict:
    """What ``PHANTOM.json`` records of a cached phantom: its settings and generator version."""
    return {**cfg.__dict__, "generator_version": PHANTOM_VERSION}
