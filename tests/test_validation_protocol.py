"""The validation protocol: k-fold out-of-fold predictions that no model saw, the model bundle,
`alnm predict` (= the run's own test probabilities), external validation on another cohort,
and a one-sequence (DCE-only) study."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alnm_core.bundle import BundleError, load_bundle, predict
from alnm_core.cli import main
from alnm_core.cohort import load_for_prediction, patient_folder_manifest
from alnm_core.config import resolve_config
from alnm_core.phantom import write_phantom
from alnm_core.protocol import Fold, LeakageError, check_roles, fits
from alnm_core.runfolder.paths import RunPaths
from conftest import link_copy, run_steps

pytestmark = pytest.mark.slow
KFOLD = ["train.epochs=1", "stats.bootstrap_n=100", "split.scheme=kfold", "split.n_folds=2",
         "split.repeats=2", "train.selection=best_val_auc", "split.val_fraction=0.3",
         "sequences=[T2WI, DWI, DCE]", "train.num_threads=1"]
T2 = "slice_vote_T2WI"


@pytest.fixture(scope="module")
def kfold_run(study):
    """Repeated 2-fold (2 repeats), fold models choosing their checkpoint on an inner
    validation part: every step through the bundle, no notebooks."""
    return study(*KFOLD)


def test_every_development_patient_is_predicted_once_per_repeat_by_a_model_that_never_saw_it(kfold_run):
    paths, cfg = kfold_run
    splits = pd.read_csv(paths.splits)
    dev = set(splits.patient_id[splits.split == "dev"])
    units = pd.read_csv(paths.unit_patient_predictions(T2))
    oof = units[units.split == "oof"]
    for rep in (0, 1):
        counts = oof[oof.repeat == rep].patient_id.value_counts()
        assert set(counts.index) == dev and (counts == 1).all()
    grid = fits(scheme="kfold", n_folds=2, repeats=2)
    assert [u.id for u in grid] == ["r0-f0", "r0-f1", "r1-f0", "r1-f1", "final"]
    for u in grid[:-1]:
        roles = pd.read_csv(paths.unit_roles(T2, u.id))
        fitted = set(roles.patient_id[roles.role.isin(["train", "val"])])
        mine = set(oof.patient_id[(oof.repeat == u.repeat) & (oof.fold == u.fold)])
        assert mine and not (mine & fitted)
        assert (roles.role == "val").any()  # best_val_auc: an inner validation part
        assert not (set(roles.patient_id[roles.role == "test"]) & fitted)
    # the final fit: every development patient (an inner validation part carved), no test patient
    final = pd.read_csv(paths.unit_roles(T2, "final"))
    assert set(final.patient_id[final.role.isin(["train", "val"])]) == dev and (final.role == "val").any()
    assert set(final.patient_id[final.role == "test"]) == set(splits.patient_id[splits.split == "test"])
    # the patient-level file: dev rows = mean of the repeats' out-of-fold predictions
    pat = pd.read_csv(paths.predictions(T2))
    mean_oof = oof.groupby("patient_id").prob.mean()
    dev_rows = pat[pat.split == "dev"].set_index("patient_id").prob
    np.testing.assert_allclose(dev_rows.sort_index(), mean_oof.reindex(dev_rows.index).sort_index())
    # ... and the test rows the final model's alone (one model, as each out-of-fold prediction)
    test_rows = pat[pat.split == "test"].set_index("patient_id").prob
    by_final = units[(units.split == "test") & (units.repeat == -1)].set_index("patient_id").prob
    np.testing.assert_allclose(test_rows.sort_index(), by_final.reindex(test_rows.index).sort_index())
    assert len(units[units.split == "test"]) == 5 * len(test_rows)  # 2 folds x 2 repeats + final


def test_leakage_is_refused_in_the_code():
    roles = pd.DataFrame({"patient_id": ["a", "b", "a"], "label": [0, 1, 0],
                          "role": ["train", "oof", "oof"]})
    with pytest.raises(LeakageError, match=r"\['a'\]"):
        check_roles(roles, Fold(0, 0))


def test_fusion_and_thresholds_come_from_out_of_fold_predictions(kfold_run):
    paths, _ = kfold_run
    w = pd.read_csv(paths.ensemble_weights)
    ens = pd.read_csv(paths.predictions("ensemble"))
    dev = ens[ens.split == "dev"]
    for _, r in w.iterrows():  # the weights are the out-of-fold accuracies
        assert r.acc_validation == pytest.approx(((dev[r.model] >= 0.5) == dev.label).mean())
    t3 = pd.read_csv(paths.table3)
    assert "Youden on out-of-fold" in set(t3.threshold_from)
    cv = pd.read_csv(paths.cv_summary)
    assert (cv.loc[cv.model_id == T2, "fold_n"] == 4).all()  # 2 folds x 2 repeats


def test_predict_reproduces_the_runs_test_probabilities(kfold_run, smoke_cohort, tmp_path):
    paths, cfg = kfold_run
    b = load_bundle(paths.bundle)
    splits = pd.read_csv(paths.splits)
    cohort = load_for_prediction(smoke_cohort, b.sequences)
    test_ids = set(splits.patient_id[splits.split == "test"])
    pred = predict(b, cohort[cohort.patient_id.isin(test_ids)], smoke_cohort, cache_dir=tmp_path)
    ens = pd.read_csv(paths.predictions("ensemble")).set_index("patient_id")
    got = pred.patients.set_index("patient_id")
    for seq in cfg.sequences:
        m = f"slice_vote_{seq}"
        np.testing.assert_allclose(got[m], ens.loc[got.index, m], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.weighted_vote, ens.loc[got.index, "weighted_vote"], rtol=0, atol=1e-6)
    assert (got.alnm == cohort.set_index("patient_id").alnm.astype(int).reindex(got.index)).all()


def test_cli_predict_one_patient_folder_and_a_missing_sequence(kfold_run, smoke_cohort, tmp_path, capsys):
    paths, _ = kfold_run
    patient = tmp_path / "P0003"
    shutil.copytree(smoke_cohort / "P0003", patient)
    shutil.rmtree(patient / "DWI")  # this patient has no DWI
    (patient / "DWI_roi.nii.gz").unlink()
    assert main(["predict", "--model", str(paths.bundle), "--patient", str(patient),
                 "--out", str(tmp_path / "out")]) == 0
    rows = json.loads((tmp_path / "out" / "predictions.json").read_text())["patients"]
    assert len(rows) == 1 and rows[0]["slice_vote_DWI"] is None and rows[0]["sequences_used"] == "T2WI,DCE"
    assert "DWI missing" in rows[0]["note"] and 0 <= rows[0]["weighted_vote"] <= 1
    assert {p.name for p in (tmp_path / "out" / "gradcam").glob("*.png")} == {
        "P0003_T2WI_gradcam.png", "P0003_DCE_gradcam.png"}
    manifest, root = patient_folder_manifest(patient, ("T2WI", "DWI", "DCE"))
    assert manifest.iloc[0].DWI_image == "" and root == tmp_path


def test_a_tampered_or_foreign_bundle_is_refused_naming_the_file(kfold_run, tmp_path, capsys):
    paths, _ = kfold_run
    copy = tmp_path / "model"
    shutil.copytree(paths.bundle, copy)
    w = next((copy / "weights" / T2).glob("*.pt"))
    w.write_bytes(w.read_bytes()[:-100])  # truncated
    with pytest.raises(BundleError, match=f"{w.name}: altered or truncated"):
        load_bundle(copy)
    assert main(["predict", "--model", str(copy), "--cohort", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "altered or truncated" in err and "Traceback" not in err
    shutil.rmtree(copy)
    shutil.copytree(paths.bundle, copy)
    meta = json.loads((copy / "bundle.json").read_text())
    meta["ensemble"]["weights"][T2] = 0.99  # an edit
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="bundle.json: altered"):
        load_bundle(copy)
    with pytest.raises(BundleError, match="for sequences"):
        load_bundle(paths.bundle, sequences=("ADC",))
    card = (paths.bundle / "MODEL_CARD.md").read_text()
    for section in ("Intended use", "Not intended for", "Data", "How it was validated",
                    "Test-set performance", "Calibration", "Limitations"):
        assert f"## {section}" in card


def test_external_validation_on_another_phantom(kfold_run, tmp_path, capsys):
    paths, _ = kfold_run
    other = write_phantom(tmp_path / "other", resolve_config("smoke").phantom.__class__(
        n_patients=14, seed=99, matrix_scale=0.2))
    assert main(["evaluate", "--model", str(paths.bundle), "--cohort", str(other),
                 "--out", str(tmp_path / "ext"), "--name", "e"]) == 0
    run = RunPaths(tmp_path / "ext" / "e")
    ext = pd.read_csv(run.predictions("external"))
    assert len(ext) == 14 and ext.weighted_vote.between(0, 1).all()
    t3 = pd.read_csv(run.table3)
    assert {"fixed 0.5, frozen", "Youden on the development predictions, frozen"} <= set(t3.threshold_from)
    dl = pd.read_csv(run.artifacts / "delong_internal.csv")
    assert "Multiparametric MRI" in set(dl.model) and dl.p_value.notna().any()
    html = run.report.read_text()
    assert "External validation" in html and "data:image/png" in html
    info = json.loads(run.run_json.read_text())
    assert info["kind"] == "external validation" and info["status"] == "ok"
    # bad input: a cohort whose mask is in another geometry is one named error
    bad = link_copy(other, tmp_path / "bad")
    (bad / "P0002" / "T2WI_roi.nii.gz").unlink()
    shutil.copy(other / "P0003" / "T2WI_roi.nii.gz", bad / "P0002" / "T2WI_roi.nii.gz")
    assert main(["evaluate", "--model", str(paths.bundle), "--cohort", str(bad),
                 "--out", str(tmp_path / "ext"), "--name", "b"]) == 2
    err = capsys.readouterr().err
    assert "P0002" in err and "T2WI_roi" in err and "Traceback" not in err
    assert not (tmp_path / "ext" / "b").exists()


def test_a_one_sequence_study_runs_end_to_end(smoke_cohort, tmp_path):
    """sequences: [DCE] (as the public Duke breast MRI collection, DCE only): every step, the
    fusion is the sequence itself, and the bundle predicts with it."""
    cfg = resolve_config("smoke", overrides=["sequences=[DCE]", "train.epochs=1", "stats.bootstrap_n=100"])
    paths = RunPaths(tmp_path / "dce")
    run_steps(paths, cfg, cohort=smoke_cohort)
    ens = pd.read_csv(paths.predictions("ensemble"))
    np.testing.assert_array_equal(ens.weighted_vote, ens.slice_vote_DCE)
    t3 = pd.read_csv(paths.table3)
    assert set(t3.model_id) == {"weighted_vote", "clinical", "radiomics_DCE", "clinical_radiomics"}
    assert "DCE (one model: no fusion)" in set(t3.model)  # smoke: radiomics on
    dl = pd.read_csv(paths.delong)
    assert len(dl[dl.role == "primary"]) == 3  # the one model vs clinical, radiomics_DCE, clinical-radiomics
    assert len(dl[dl.family == "exploratory: CNNs vs radiomics baselines"]) == 2  # no per-sequence pairs
    assert load_bundle(paths.bundle).sequences == ("DCE",)
