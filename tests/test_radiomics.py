"""The radiomics baselines: feature values on shapes whose volume, surface and first-order
statistics are known analytically; a failing patient named or listed; the content-keyed cache;
models that never see a test patient; the radiomics rows in a run's report."""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from alnm_core.config import RadiomicsConfig, resolve_config
from alnm_core.radiomics_features import RadiomicsError, extract_sequence, volume_features
from alnm_core.radiomics_models import RadiomicsLeakageError, RobustnessFilter, fit_radiomics_models

RAW = RadiomicsConfig(feature_classes=("shape", "firstorder"), resample_mm=None, normalize=False,
                      bin_width=5.0)


def test_box_with_two_values_has_its_analytic_volume_surface_and_first_order_statistics():
    # a 10 x 12 x 14 voxel box at 2 x 1 x 1.5 mm: 20 x 12 x 21 mm; half the voxels 10, half 30
    img = np.zeros((20, 30, 30))
    mask = np.zeros(img.shape, bool)
    mask[4:14, 6:18, 8:22] = True
    img[mask] = 30.0
    img[4:14, 6:18, 8:15] = 10.0
    f = volume_features(img, mask, (2.0, 1.0, 1.5), RAW)
    n, voxel = 10 * 12 * 14, 2.0 * 1.0 * 1.5
    volume, area = 20 * 12 * 21, 2 * (20 * 12 + 20 * 21 + 12 * 21)
    assert f["shape_VoxelVolume"] == pytest.approx(n * voxel)
    # the marching-cubes mesh cuts the box's edges by half a voxel: slightly less
    assert f["shape_MeshVolume"] == pytest.approx(volume, rel=0.02) and f["shape_MeshVolume"] < volume
    assert f["shape_SurfaceArea"] == pytest.approx(area, rel=0.06)
    # between the diagonal through the corner voxels' centres and the box's own diagonal
    assert np.sqrt(18**2 + 11**2 + 19.5**2) < f["shape_Maximum3DDiameter"] < np.sqrt(20**2 + 12**2 + 21**2)
    expected = {"Mean": 20.0, "Median": 20.0, "Minimum": 10.0, "Maximum": 30.0, "Range": 20.0,
                "Variance": 100.0, "MeanAbsoluteDeviation": 10.0, "Skewness": 0.0, "Kurtosis": 1.0,
                "Energy": n / 2 * (10.0**2 + 30.0**2), "TotalEnergy": voxel * n / 2 * (10.0**2 + 30.0**2),
                "Entropy": 1.0, "Uniformity": 0.5}  # two equally full grey levels: 1 bit
    for k, v in expected.items():
        assert f[f"firstorder_{k}"] == pytest.approx(v, abs=1e-9), k


def test_sphere_volume_and_surface_are_close_to_analytic():
    r = 10.0
    z, y, x = np.mgrid[:60, :60, :60] * 0.5
    mask = ((z - 15) ** 2 + (y - 15) ** 2 + (x - 15) ** 2) <= r * r
    f = volume_features(np.full(mask.shape, 7.0), mask, (0.5, 0.5, 0.5), RAW)
    assert f["shape_MeshVolume"] == pytest.approx(4 / 3 * np.pi * r**3, rel=0.01)
    # marching cubes over-estimates a curved surface by a few per cent
    assert f["shape_SurfaceArea"] == pytest.approx(4 * np.pi * r**2, rel=0.10)
    assert f["shape_Sphericity"] > 0.9
    assert f["firstorder_Mean"] == 7.0 and f["firstorder_Variance"] == 0.0


def _one_voxel_mask(cohort_dir, pid: str, seq: str) -> None:
    import SimpleITK as sitk

    path = cohort_dir / pid / f"{seq}_roi.nii.gz"
    m = sitk.ReadImage(str(path))
    a = sitk.GetArrayFromImage(m)
    z, yy, xx = np.argwhere(a > 0)[0]
    a[:] = 0
    a[z, yy, xx] = 1
    out = sitk.GetImageFromArray(a)
    out.CopyInformation(m)
    sitk.WriteImage(out, str(path))


def test_a_failing_patient_is_named_or_listed_and_results_are_cached(cohort_copy, tmp_path):
    cohort = pd.read_csv(cohort_copy / "cohort.csv", dtype={"patient_id": str}).head(3)
    bad = cohort.patient_id.iloc[1]
    _one_voxel_mask(cohort_copy, bad, "DWI")
    cfg = RadiomicsConfig(feature_classes=("shape", "firstorder"), resample_mm=None)
    roi = resolve_config("smoke").roi
    with pytest.raises(RadiomicsError, match=rf"patient {bad}, DWI: radiomics: .*single voxel.*DWI"):
        extract_sequence(cohort, cohort_copy, "DWI", roi, dataclasses.replace(cfg, on_error="fail"),
                         cache_dir=tmp_path, jobs=1)
    got = extract_sequence(cohort, cohort_copy, "DWI", roi, cfg, cache_dir=tmp_path, jobs=1)
    assert [e["patient_id"] for e in got.exclusions] == [bad]
    assert set(got.features.patient_id) == set(cohort.patient_id) - {bad}
    assert got.features.shape[1] == 1 + 14 + 18  # patient_id, shape, first order
    again = extract_sequence(cohort, cohort_copy, "DWI", roi, cfg, cache_dir=tmp_path, jobs=1)
    pd.testing.assert_frame_equal(again.features, got.features)
    assert len(list(tmp_path.glob("DWI-*.json"))) == 1  # one cache entry, keyed by content


def test_robustness_filter_drops_constant_and_correlated_features():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    X = np.column_stack([a, np.exp(a), np.ones(50), b, a + 0.01 * rng.normal(size=50)])
    assert RobustnessFilter(0.9).fit(X).support_.tolist() == [0, 3]
    assert RobustnessFilter(1.0).fit(X).support_.tolist() == [0, 1, 3, 4]


def _synthetic(n=60, seed=1):
    rng = np.random.default_rng(seed)
    ids = [f"S{i:03d}" for i in range(n)]
    y = np.array([0, 1] * (n // 2))
    cohort = pd.DataFrame({"patient_id": ids, "alnm": y, "age": rng.normal(50, 10, n).round(),
                           "tumor_size_cm": rng.uniform(1, 4, n).round(1),
                           "margin": rng.choice(["regular", "irregular"], n), "tic_type": rng.choice(["I", "II", "III"], n)})
    feats = {s: pd.DataFrame({"patient_id": ids, **{f"f{j}": rng.normal(size=n) + (j == 0) * 1.5 * y
                                                    for j in range(12)}}) for s in ("T2WI", "DWI")}
    test = set(ids[::5])
    splits = pd.DataFrame({"patient_id": ids, "label": y,
                           "split": ["test" if p in test else "dev" for p in ids]})
    dev = splits[splits.split == "dev"].patient_id.tolist()
    folds = pd.DataFrame([{"patient_id": p, "repeat": r, "fold": (i + r) % 3}
                          for r in range(2) for i, p in enumerate(dev)])
    return feats, cohort, splits, folds


def test_the_models_never_see_a_test_patient_and_predict_every_patient_out_of_fold():
    feats, cohort, splits, folds = _synthetic()
    log: list = []
    cfg = RadiomicsConfig(enabled=True, inner_folds=3)
    preds, coefs = fit_radiomics_models(feats, cohort, splits, folds, cfg, seed=3, fit_log=log)
    test = set(splits.patient_id[splits.split == "test"])
    # 4 models x (3 folds x 2 repeats + the final refit scoring the test set), and the refit for the coefficients
    assert len(log) == 4 * 7 + 1
    for fit in log:
        assert not set(fit["train"]) & test
        if fit["predict"]:  # out of fold: predicted patients were not fitted
            assert not set(fit["train"]) & set(fit["predict"])
    assert list(preds.columns) == ["patient_id", "split", "label", "radiomics_T2WI", "radiomics_DWI",
                                   "radiomics_all", "clinical_radiomics"]
    assert preds.iloc[:, 3:].notna().all().all()
    from alnm_core.stats import auc

    t = preds[preds.split == "test"]
    assert auc(t.label, t.radiomics_all) > 0.7  # the planted feature is found
    assert "T2WI:f0" in set(coefs.term[coefs.model == "radiomics_T2WI"])
    assert set(coefs.term[coefs.model == "clinical_radiomics"]) == {"(intercept)", "age", "size", "irregular",
                                                                    "tic_III", "rad_score"}
    # a fold table that puts a test patient among the fitted ones is refused
    leak = pd.concat([folds, pd.DataFrame([{"patient_id": sorted(test)[0], "repeat": 0, "fold": 1}])])
    from alnm_core.protocol import LeakageError

    with pytest.raises(LeakageError, match=sorted(test)[0]):
        fit_radiomics_models(feats, cohort, splits, leak, cfg, seed=3)


def test_demo_and_paper_profiles_compute_the_radiomics_baselines():
    assert resolve_config("demo").radiomics.enabled and resolve_config("paper").radiomics.enabled


@pytest.mark.slow
def test_a_run_shows_the_radiomics_rows(smoke_run):
    """The smoke profile runs the baselines (small settings); the demo's report has the same."""
    t3 = pd.read_csv(smoke_run.table3)
    rows = {"Radiomics: T2WI", "Radiomics: DWI", "Radiomics: DCE", "Radiomics: all sequences",
            "Clinical-radiomics (nomogram)"}
    assert rows <= set(t3.model)
    dl = pd.read_csv(smoke_run.delong)
    d = dl[dl.family == "exploratory: CNNs vs radiomics baselines"]
    assert len(d) == 5 and (d.p_holm >= d.p_value - 1e-12).all()  # the fusion's two pairs are primary
    assert ("slice_vote_DWI", "radiomics_DWI") in set(zip(d.model_a, d.model_b))
    assert ("weighted_vote", "radiomics_all") in set(zip(dl.model_a[dl.role == "primary"], dl.model_b[dl.role == "primary"]))
    html = smoke_run.report.read_text()
    assert "Radiomics baseline" in html and "nomogram" in html
    section = html.split("Radiomics baseline", 1)[1].split("Calibration, decision curve", 1)[0]
    assert len(re.findall("data:image/png;base64", section)) >= 3  # coefficients, nomogram, ROC
