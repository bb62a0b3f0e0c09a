"""The whole path on a replica of the Duke download, through the command line only:
``alnm import duke`` -> ``alnm validate`` -> ``alnm run --profile duke`` (smoke-sized) ->
``alnm predict`` on box ROIs."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from alnm_core.cli import main
from alnm_core.importers.duke_replica import write_duke_replica

#: the duke profile at smoke size (the profile's design: DCE only, k-fold, radiomics without shape)
SMOKE = ["train.arch=resnet18", "train.epochs=2", "train.batch_size=16", "train.selection=last",
         "train.num_threads=1", "roi.size=32", "roi.central_k=3", "split.n_folds=2", "split.test_size=6",
         "radiomics.inner_folds=3", "radiomics.resample_mm=3.0", "radiomics.feature_classes=[firstorder,glcm]",
         "stats.bootstrap_n=200"]


def _study(tmp_path, n_post):
    rep = write_duke_replica(tmp_path / "download", n_patients=30, n_post=n_post)
    cohort = tmp_path / "cohort"
    assert main(["import", "duke", "--dicom", str(rep.dicom), "--clinical", str(rep.clinical),
                 "--boxes", str(rep.boxes), "--out", str(cohort)]) == 0
    trust = ["--trust", str(rep.dicom)]  # the cohort reads the download in place
    assert main(["validate", "--cohort", str(cohort), "--sequences", "DCE", *trust]) == 0
    sets = [a for s in SMOKE for a in ("--set", s)]
    code = main(["run", "--cohort", str(cohort), "--profile", "duke", "--out", str(tmp_path / "reports"),
                 "--name", "duke", *sets, *trust])
    return code, cohort, tmp_path / "reports" / "duke", trust


@pytest.mark.slow
def test_import_validate_run_predict(tmp_path, capsys):
    """One study on a replica whose patients have three or four post-contrast phases: each
    time-intensity curve is drawn on its own patient's phase times, the report shows the box QC
    gallery, and ``predict`` scores the cohort from the bundle."""
    code, cohort, run, trust = _study(tmp_path, n_post=None)
    assert code == 0, capsys.readouterr().err[-3000:]
    rj = json.loads((run / "run.json").read_text())
    assert rj["config"]["sequences"] == ["DCE"] and rj["config"]["profile"] == "duke"
    assert rj["config"]["input"]["trusted_folders"] == [str(tmp_path / "download")]  # recorded
    t1 = pd.read_csv(run / "artifacts" / "table1.csv")
    assert set(t1.loc[t1.total == "not recorded", "characteristic"]) == {"Tumor margin", "TIC curve type"}
    n = int(t1.loc[t1.characteristic == "Number", "total"].iloc[0][2:])  # 30 - NX - no box - no pre
    preds = pd.read_csv(run / "artifacts" / "predictions" / "ensemble.csv")
    assert len(preds) == n and preds.slice_vote_DCE.between(0, 1).all()
    assert (run / "artifacts" / "radiomics" / "DCE.csv").is_file()               # radiomics on the boxes
    html = (run / "report.html").read_text()
    assert "not recorded" in html and "Box outlines" in html  # the box QC gallery
    assert rj["steps"]["prepare"]["read_outside_cohort"]["paths"] == n   # each DCE folder, via the link
    assert f"{n} image and mask path(s) were read from outside the cohort folder" in html
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(run / "model"), "--cohort", str(cohort), "--out", str(out),
                 "--no-gradcam", *trust]) == 0
    assert len(pd.read_csv(out / "predictions.csv")) == n
