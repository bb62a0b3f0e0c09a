from __future__ import annotations

import hashlib
import shutil
import subprocess

import numpy as np
import pandas as pd
import pydicom
import pytest

from alnm_core.config import PhantomConfig
from alnm_core.imaging import IDENTIFYING_TAGS, read_image, read_mask
from alnm_core.phantom import draw_patients, render_series, write_phantom
from alnm_core.stats import auc


def _digest(folder):
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.suffix == ".dcm":
            h.update(pydicom.dcmread(f).PixelData)
    return h.hexdigest()


@pytest.mark.slow  # several seconds of training or phantom writing: the full suite
def test_deterministic_for_a_seed(tmp_path):
    cfg = PhantomConfig(n_patients=8, seed=3, matrix_scale=0.2)
    a = write_phantom(tmp_path / "a", cfg, jobs=1)
    b = write_phantom(tmp_path / "b", cfg, jobs=2)
    assert (a / "cohort.csv").read_text() == (b / "cohort.csv").read_text()
    assert _digest(a) == _digest(b)
    c = write_phantom(tmp_path / "c", PhantomConfig(n_patients=8, seed=4, matrix_scale=0.2))
    assert (a / "cohort.csv").read_text() != (c / "cohort.csv").read_text()


def test_manifest_and_series_follow_the_contract(tiny_cohort):
    df = pd.read_csv(tiny_cohort / "cohort.csv")
    for col in ("patient_id", "alnm", "age", "tumor_size_cm", "margin", "tic_type", "field_strength",
                "T2WI_image", "T2WI_roi", "DWI_image", "DWI_roi", "DCE_image", "DCE_roi"):
        assert col in df.columns
    assert df.patient_id.is_unique and set(df.alnm) <= {0, 1}
    for _, row in df.head(3).iterrows():
        for seq in ("T2WI", "DWI", "DCE"):
            vol = read_image(tiny_cohort / row[f"{seq}_image"])
            mask = read_mask(tiny_cohort / row[f"{seq}_roi"], like=vol)
            # the tumour does not touch the slab's first or last slice
            assert not mask[0].any() and not mask[-1].any()
        ds = pydicom.dcmread(next((tiny_cohort / row.T2WI_image).iterdir()))
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
        assert float(ds.MagneticFieldStrength) == (1.5 if row.field_strength == "1.5T" else 3.0)
        assert float(ds.RepetitionTime) == (7210 if row.field_strength == "1.5T" else 4300)  # Table 2


def test_no_identifying_values(tiny_cohort):
    for f in list((tiny_cohort / "P0001").rglob("*.dcm"))[:20]:
        ds = pydicom.dcmread(f)
        assert "P0001" in str(ds.PatientName) and "PHANTOM" in str(ds.PatientName)
        assert ds.PatientBirthDate == "" and ds.AccessionNumber == ""
        assert ds.StudyDate == "20200101"
    assert "PatientName" in IDENTIFYING_TAGS


def test_marginals_follow_table1():
    pts = draw_patients(PhantomConfig(n_patients=600, seed=1))
    df = pd.DataFrame([p.__dict__ for p in pts])
    assert df.alnm.mean() == pytest.approx(0.39, abs=0.01)
    assert df.age.mean() == pytest.approx(51.3, abs=1.5)
    assert df.age.std() == pytest.approx(11.2, abs=1.5)
    size = df.groupby("alnm").tumor_size_cm.mean()
    assert size[1] > size[0] + 0.3  # larger tumours with ALNM, as in the paper (2.4 vs 1.9)
    irr = df.groupby("alnm").apply(lambda d: (d.margin == "irregular").mean(), include_groups=False)
    assert irr[1] > irr[0]
    assert set(df.tic_type) == {"II", "III"}
    assert set(df.field_strength) == {"1.5T", "3T"}


@pytest.mark.slow  # several seconds of training or phantom writing: the full suite
def test_label_shows_in_the_images_as_designed():
    """Image features measured on the rendered series separate the groups as designed."""
    cfg = PhantomConfig(n_patients=40, seed=9, matrix_scale=0.35)
    pts = draw_patients(cfg)
    y, t2, adc = [], [], []
    for p in pts:
        arr, vol, mask = render_series(p, "T2WI", cfg)
        from scipy.ndimage import binary_dilation
        ring = binary_dilation(mask, iterations=2) & ~mask
        t2.append(arr[0][ring].mean() / arr[0][mask].mean())
        arr, vol, mask = render_series(p, "DWI", cfg)
        adc.append(-np.log(arr[1][mask].mean() / arr[0][mask].mean()))
        y.append(p.alnm)
    assert auc(y, t2) >= 0.8          # oedema ring
    assert auc(y, -np.array(adc)) >= 0.6  # restricted diffusion (measured on a coarse grid)


def test_designed_effects_are_stated_as_they_are():
    """DWI's designed effect is the largest with the demo's strengths (README and report say so)."""
    from alnm_core.config import resolve_config
    from alnm_core.phantom import designed_effects

    eff = designed_effects(resolve_config("demo").phantom)
    assert eff["DWI"] == pytest.approx(2.7, abs=0.05) and eff["T2WI"] == pytest.approx(2.0)
    assert eff["DWI"] > eff["T2WI"] > eff["DCE"]


@pytest.mark.slow  # several seconds of training or phantom writing: the full suite
def test_stored_intensities_carry_no_label_beyond_the_designed_signal():
    """Away from the tumour and its oedema, the stored intensities of every sequence do not
    predict the label: each sequence is stored on one fixed scale for the whole cohort. The
    scale of version 4 (each series to its own maximum) fails this check on T2WI."""
    from scipy import ndimage

    from alnm_core.phantom import stored_values
    from alnm_core.stats import auc_ci

    cfg = PhantomConfig(n_patients=40, seed=3, matrix_scale=0.2)
    pats = draw_patients(cfg)
    y = [p.alnm for p in pats]
    old_t2 = []
    for seq in ("T2WI", "DWI", "DCE"):
        background, whole = [], []
        for p in pats:
            stack, vol, mask = render_series(p, seq, cfg)
            s4 = stack if stack.ndim == 4 else stack[None]
            far = ndimage.distance_transform_edt(~mask, sampling=vol.spacing) > 20  # mm
            stored = stored_values(s4, seq).astype(float)[0]
            background.append(stored[far].mean())
            whole.append(stored.mean())
            if seq == "T2WI":
                per_series = np.clip(np.round(s4 * 4095 / s4.max()), 0, 4095)[0]
                old_t2.append(per_series[far].mean())
        for name, values in (("background", background), ("whole series", whole)):
            ci = auc_ci(y, values, method="delong")
            assert ci.low < 0.5 < ci.high and abs(ci.auc - 0.5) < 0.2, (seq, name, ci)
    assert abs(auc(y, old_t2) - 0.5) > 0.2  # the side channel this test guards against


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools' dciodvfy not installed")
def test_dciodvfy_reports_no_errors(tiny_cohort):
    df = pd.read_csv(tiny_cohort / "cohort.csv")
    for seq in ("T2WI", "DWI", "DCE"):
        f = sorted((tiny_cohort / df[f"{seq}_image"][0]).iterdir())[0]
        out = subprocess.run(["dciodvfy", str(f)], capture_output=True, text=True)
        errors = [l for l in (out.stdout + out.stderr).splitlines() if l.startswith("Error")]
        assert errors == [], f"{seq}: {errors}"


def test_effect_slices_put_the_label_on_those_slices_only():
    """phantom.effect_slices=2: a positive patient's series equal those of the same patient
    without the label everywhere except on the two listed slices (where they differ); a
    negative patient's series are unchanged."""
    from dataclasses import replace

    from alnm_core.config import ConfigError, resolve_config
    from alnm_core.phantom import effect_slice_indices

    cfg = PhantomConfig(n_patients=8, seed=5, matrix_scale=0.2, effect_slices=2)
    pts = draw_patients(cfg)
    pos = next(p for p in pts if p.alnm)
    neg = next(p for p in pts if not p.alnm)
    whole = replace(cfg, effect_slices=0)
    twin = replace(pos, edema_mm=pos.edema0_mm, adc=pos.adc0, rim=pos.rim0)
    for seq in ("T2WI", "DWI", "DCE"):
        arr, _, mask = render_series(pos, seq, cfg)
        base, _, mask0 = render_series(twin, seq, whole)
        assert np.array_equal(mask, mask0)
        axis = tuple(i for i in range(arr.ndim) if i != arr.ndim - 3)  # all but the slice axis
        differ = np.flatnonzero((arr != base).any(axis=axis)).tolist()
        eff = effect_slice_indices(pos, seq, cfg)
        assert len(eff) == 2 and eff[1] == eff[0] + 1 and mask[eff].any(axis=(1, 2)).all()
        assert differ and set(differ) <= set(eff), (seq, differ, eff)
        assert np.array_equal(render_series(neg, seq, cfg)[0], render_series(neg, seq, whole)[0])
    n_slices = render_series(pos, "T2WI", whole)[2].shape[0]
    assert effect_slice_indices(pos, "T2WI", whole) == list(range(n_slices))  # 0: every slice
    with pytest.raises(ConfigError, match="effect_slices"):
        resolve_config("smoke", overrides=["phantom.effect_slices=-1"])
