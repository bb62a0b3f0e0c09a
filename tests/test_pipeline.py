"""End to end: the smoke profile through the steps and papermill, the run folder, the report."""
from __future__ import annotations

import json
import re
from html import unescape
import shutil
import subprocess
import time

import nbformat
import pandas as pd
import pytest

from alnm_core.cli import main
from alnm_core.run.pipeline import (PipelineError, check_figures, execute_notebook,
                                    notebook_dir, notebook_source, run_study)
from alnm_core.runfolder.paths import RunPaths
from conftest import link_copy

slow = pytest.mark.slow
SEQS = ("T2WI", "DWI", "DCE")
MODELS = tuple(f"slice_vote_{s}" for s in SEQS)


@slow
def test_run_folder_has_every_artifact(smoke_run):
    p = smoke_run
    info = json.loads(p.run_json.read_text())
    for key in ("config", "seed", "git_commit", "versions", "device", "steps", "notebooks", "cohort"):
        assert key in info
    assert info["status"] == "ok" and info["profile"] == "smoke"
    assert (p.bundle / "checksums.sha256").is_file() and "bundle" in info["steps"]
    assert info["versions"]["torch"] != "not installed"
    units = info["steps"]["train_units"]["units"]
    assert {u.split()[0] for u in units} == set(MODELS) and len(units) == 9  # 2 folds + final, each
    for name, st in info["steps"].items():  # every step records what its key was made of
        assert {"version", "config", "upstream", "files"} <= set(st["inputs"]), name
    assert all(v["status"] == "ok" for v in info["notebooks"].values()) and len(info["notebooks"]) == 8
    splits = pd.read_csv(p.splits)
    assert list(splits.columns) == ["patient_id", "label", "split", "fold"]
    assert splits.patient_id.is_unique and set(splits.split) == {"dev", "test"}  # smoke: 2-fold
    assert set(splits.fold[splits.split == "dev"]) == {0, 1} and p.folds.is_file()
    assert p.table1.is_file()
    for s, m in zip(SEQS, MODELS):
        assert p.roi(s).is_file()
        for u in ("r0-f0", "r0-f1"):
            assert p.checkpoint(m, u).is_file() and p.history(m, u).is_file()
            assert not p.resume_state(m, u).exists()  # removed once training finished
        pat = pd.read_csv(p.predictions(m))
        assert list(pat.columns) == ["patient_id", "split", "label", "prob", "n_slices"]
        assert set(pat.patient_id) == set(splits.patient_id)
        # predictions carry the split of splits.csv: no patient leaks between splits
        merged = pat.merge(splits, on="patient_id", suffixes=("", "_s"))
        assert (merged.split == merged.split_s).all() and (merged.label == merged.label_s).all()
        sl = pd.read_csv(p.slice_predictions(m))
        assert {"patient_id", "split", "label", "slice_index", "prob"} <= set(sl.columns)
    ens = pd.read_csv(p.predictions("ensemble"))
    assert {"weighted_vote", "weighted_vote_test_weights", "soft_vote", "majority_vote", "stacking"} <= set(ens.columns)
    assert p.ensemble_weights.is_file()
    # every artifact a step recorded exists, and nothing half-written is left behind
    for name, st in info["steps"].items():
        assert all((p.root / o).exists() for o in st["outputs"]), name
    assert not [f for f in p.root.rglob("*") if ".tmp" in f.name]


@slow
def test_table3_and_delong_tables(smoke_run):
    t3 = pd.read_csv(smoke_run.table3)
    for col in ("model_id", "model", "acc", "sen", "spe", "ppv", "npv", "acc_low", "npv_high", "auc",
                "auc_low", "auc_high"):
        assert col in t3.columns
    assert set(MODELS) | {"weighted_vote", "clinical"} <= set(t3.model_id)
    assert {"T2WI", "DWI", "DCE", "Multiparametric MRI"} <= set(t3.model)
    assert set(t3.threshold_from) == {"fixed 0.5", "Youden on out-of-fold"}
    cv = pd.read_csv(smoke_run.cv_summary)
    assert set(cv.model_id) >= {"slice_vote_T2WI", "weighted_vote"}
    assert (cv.fold_n[cv.model_id == "slice_vote_T2WI"] == 2).all()
    d = pd.read_csv(smoke_run.delong)
    assert list(d.columns[:9]) == ["model_a", "label_a", "model_b", "label_b", "auc_a", "auc_b", "z", "p_value", "diff"]
    assert d.p_value.between(0, 1).all() and set(d.model_a) <= set(t3.model_id)
    # every pair of the shown models in exactly one family; the primary one pre-specified
    assert len(d) == len({frozenset(p) for p in zip(d.model_a, d.model_b)}) == len(t3.model_id.unique()) * (
        len(t3.model_id.unique()) - 1) // 2
    prim = d[d.role == "primary"]
    assert set(zip(prim.model_a, prim.model_b)) == {("weighted_vote", m) for m in (
        "slice_vote_T2WI", "slice_vote_DWI", "slice_vote_DCE", "clinical", "radiomics_all", "clinical_radiomics")}
    assert (d.loc[d.role == "none", ["model_a", "model_b"]] == "weighted_vote_test_weights").any(axis=1).all()
    inf = d[d.role != "none"]
    assert d.loc[d.role == "none", "p_holm"].isna().all() and (inf.p_holm >= inf.p_value - 1e-12).all()
    for f in ("calibration.csv", "reliability.csv", "decision_curve.csv", "subgroups.csv"):
        t = pd.read_csv(smoke_run.artifacts / f)
        assert "model_id" in t.columns or "model_a" in t.columns, f
    wide = pd.read_csv(smoke_run.predictions("models"))
    assert set(t3.model_id) <= set(wide.columns)


class _Tables:
    """Every table of an HTML page as (header cells, rows of cells), with the stdlib parser."""

    def __init__(self, html: str):
        from html.parser import HTMLParser

        tables, cur = [], {}

        class P(HTMLParser):
            def handle_starttag(self, tag, attrs):
                if tag == "table":
                    cur.update(head=[], rows=[], row=None, cell=None)
                elif tag == "tr" and cur:
                    cur["row"] = []
                elif tag in ("td", "th") and cur and cur["row"] is not None:
                    cur["cell"] = ""

            def handle_endtag(self, tag):
                if tag in ("td", "th") and cur and cur.get("cell") is not None:
                    cur["row"].append(cur["cell"].strip())
                    cur["cell"] = None
                elif tag == "tr" and cur and cur["row"] is not None:
                    (cur["rows"] if cur["head"] else cur["head"]).append(cur["row"]) if cur["row"] else None
                    cur["row"] = None
                elif tag == "table" and cur:
                    tables.append((cur["head"][0] if cur["head"] else [], cur["rows"]))
                    cur.clear()

            def handle_data(self, data):
                if cur and cur.get("cell") is not None:
                    cur["cell"] += data

        P().feed(html)
        self.tables = tables


@slow
def test_no_p_value_prints_as_zero_in_the_report(smoke_run):
    """Every p-value column of every table prints as journals do: ``<0.001``, never ``0.000``
    (issue 23); the scan finds the DeLong, Table 1 and subgroup p columns."""
    tables = _Tables(smoke_run.report.read_text()).tables
    p_cols = 0
    for head, rows in tables:
        for i, name in enumerate(head):
            if re.fullmatch(r"(?i)(p|p \(.*\)|unpaired p|p value)", name.strip()):
                p_cols += 1
                cells = [r[i] for r in rows if i < len(r)]
                assert not [c for c in cells if re.fullmatch(r"0\.0+", c)], (head, cells)
                assert all(re.fullmatch(r"(<0\.001|[01]\.\d{3,6}|—|)", c) for c in cells), (head, cells)
    assert p_cols >= 5


@slow
def test_renaming_a_label_changes_no_number_and_no_bundle_threshold(smoke_run, tmp_path, monkeypatch):
    """Display labels are for readers only: every table and the bundle are keyed by model_id."""
    from alnm_core import model_registry as R
    from alnm_core.runfolder import record
    from alnm_core.run.registry import runner_for

    run = RunPaths(link_copy(smoke_run.root, tmp_path / "relabelled"))
    cfg = record.config(run.root)
    for n in ("evaluate", "bundle"):  # recompute the label-bearing steps under new labels
        record.forget_step(run, n)
    fams = tuple(R.Family(**{**f.__dict__, "label": (lambda c, s, f=f: "RENAMED " + f.label(c, s))})
                 for f in R.FAMILIES)
    monkeypatch.setattr(R, "FAMILIES", fams)
    runner_for(run, cfg).run(["evaluate", "bundle"])
    old, new = pd.read_csv(smoke_run.table3), pd.read_csv(run.table3)
    assert new.model.str.startswith("RENAMED ").all()
    num = old.select_dtypes("number").columns
    pd.testing.assert_frame_equal(old[["model_id", *num]], new[["model_id", *num]])
    b_old = json.loads((smoke_run.bundle / "bundle.json").read_text())
    b_new = json.loads((run.bundle / "bundle.json").read_text())
    assert b_old["thresholds"] == b_new["thresholds"] and b_old["ensemble"] == b_new["ensemble"]


@slow
def test_report_is_self_contained_without_code(smoke_run):
    html = smoke_run.report.read_text()
    assert "Contents" in html and "Provenance" in html and "Table 3" in html
    assert html.count("data:image/png;base64") >= 10
    body = re.sub(r"<style.*?</style>|<script.*?</script>", "", html, flags=re.S)
    assert "jp-CodeMirrorEditor" not in body and "highlight hl-ipython3" not in body  # no code cells
    assert "Traceback" not in body and "application/vnd.jupyter.stderr" not in body
    assert not re.search(r"^\s*(import \w|from \w+ import )", re.sub(r"<[^>]+>", "\n", body), re.M)
    assert "nbk.start" not in body
    assert "PHANTOM^" not in html and "PatientName" not in html and "BirthDate" not in html
    assert not re.search(r'src="https?://', html)  # nothing fetched from the network
    for nb in sorted(smoke_run.notebooks.glob("*.ipynb")):
        if nb.name.startswith(("01", "02", "03", "05")):
            assert check_figures(nb), nb.name
        for cell in nbformat.read(nb, as_version=4).cells:
            assert all(o.get("output_type") != "error" for o in cell.get("outputs", []))


@slow
def test_one_numbering_in_banners_headings_contents_and_checklist(smoke_run):
    html = smoke_run.report.read_text()
    banners = re.findall(r'alnm-section">Section (\d) · ([^<]+)', html)
    assert [b[0] for b in banners] == ["1", "2", "3", "3", "3", "4", "5", "6"]
    headings = re.findall(r"<h1[^>]*>(\d) · ([^<]+)<", html)
    assert [h[0] for h in headings] == ["1", "2", "3", "3", "3", "4", "5", "6"]  # each notebook's own
    assert [h[1].strip() for h in headings[2:5]] == [f"Per-sequence CNN: {s}" for s in SEQS]  # one per sequence
    toc = re.findall(r'(\d) · <a href="#section-\d+">', html)
    assert toc == ["1", "2", "3", "3", "3", "4", "5", "6"]
    for ref in re.findall(r"Section (\d)", html.split("Reviewer checklist", 1)[1]):
        assert ref in {"1", "2", "3", "4", "5", "6"}


@slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")
def test_report_renders_in_headless_chromium(smoke_run, tmp_path):
    shot = tmp_path / "report.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,3000",
                    f"--screenshot={shot}", smoke_run.report.resolve().as_uri()],
                   capture_output=True, timeout=120)
    from PIL import Image
    import numpy as np

    img = np.asarray(Image.open(shot).convert("L"))
    assert img.shape[0] >= 3000 and img.std() > 20   # a rendered page, not a blank one


@slow
@pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("pdftotext") is None,
                    reason="Debian chromium and poppler-utils (pdftotext, pdfinfo) not installed")
def test_report_prints_to_pdf(smoke_run, tmp_path, capsys):
    pdf = tmp_path / "report.pdf"
    assert main(["report", str(smoke_run.root), "--pdf", "--out", str(pdf)]) == 0
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    sections = smoke_run.report.read_text().count('class="alnm-section')
    assert sections >= 6 and pages >= sections  # each section starts on a new page
    # A4, the study's title, and no column lost off the page edge: every word of every column
    # header of every table in the HTML is in the PDF's text (a header wrapped inside its cell
    # reads as one run of text once line breaks are dropped)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert "A4" in info and "ALNM prediction from multiparametric MRI" in info
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    flat = re.sub(r"[\s\u00ad]+", "", text)
    html = smoke_run.report.read_text()
    on_screen_only = html.split('class="alnm-appendix"')[1:]  # folded tables: summarised on paper
    printed = re.sub(r'<details class="alnm-appendix">.*?</details>', "", html, flags=re.S)
    headers = {unescape(re.sub(r"<[^>]+>", "", h)).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", printed, re.S)}
    missing = sorted(h for h in headers if h and not all(w in flat for w in re.findall(r"[A-Za-z0-9%]+", h)))
    assert not missing, missing
    # headers are never hyphenated inside a word on paper (hyphens: manual)
    assert "Characte\nristic" not in text and "hyphens:auto" not in html
    assert on_screen_only and "artifacts/crosscheck.csv" in text  # summarised on paper, named
    assert main(["report", str(tmp_path / "no-such-run"), "--pdf"]) == 2
    assert "is not a run folder" in capsys.readouterr().err


@slow
def test_rerun_with_nothing_changed_does_no_work(smoke_run, smoke_cohort, capsys):
    before = json.loads(smoke_run.run_json.read_text())
    t0 = time.time()
    assert main(["run", "--cohort", str(smoke_cohort), "--profile", "smoke",
                 "--out", str(smoke_run.root.parent), "--name", "smoke"]) == 0
    seconds = time.time() - t0
    after = json.loads(smoke_run.run_json.read_text())
    err = capsys.readouterr().err
    # no step recomputed, no notebook executed again: same records, "up to date" for each notebook
    assert {k: v["finished"] for k, v in after["steps"].items()} == \
           {k: v["finished"] for k, v in before["steps"].items()}
    assert {k: v["finished"] for k, v in after["notebooks"].items()} == \
           {k: v["finished"] for k, v in before["notebooks"].items()}
    assert err.count(": up to date") == len(after["notebooks"]) == 8
    print(f"\nno-change rerun of the smoke run: {seconds:.1f} s")


def _broken_notebook_dir(tmp_path):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    for f in notebook_dir().glob("*.py"):
        shutil.copy(f, nbdir)
    (nbdir / "02_roi_cropping.py").write_text(
        "# %% [markdown]\n# # 2 · broken step\n\n"
        "# %% tags=[\"parameters\"]\nrun_dir: str = ''\n\n"
        "# %%\nprint('before the failure')\n\n"
        "# %%\nraise RuntimeError('deliberate failure for the test')\n")
    return nbdir


@slow
def test_failing_notebook_renders_partial_report_and_names_the_cell(smoke_run, smoke_cohort, smoke_cfg, tmp_path):
    run = link_copy(smoke_run.root, tmp_path / "run")
    with pytest.raises(PipelineError, match=r"02_roi_cropping.ipynb: cell \d+ failed with RuntimeError: deliberate"):
        run_study(smoke_cohort, smoke_cfg, run, notebook_dir=_broken_notebook_dir(tmp_path))
    html = (tmp_path / "run" / "report.html").read_text()
    assert "did not finish" in html and "before the failure" in html and "Table 1" in html
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "failed"
    assert info["notebooks"]["02_roi_cropping.ipynb"]["status"] == "failed"


def test_unknown_notebook_parameter_fails_loudly(tmp_path):
    """Refused before a kernel starts (papermill only warns): unknown, and of the wrong type."""
    res = execute_notebook(notebook_source("01_cohort_statistics"), tmp_path / "out.ipynb",
                           {"run_dir": str(tmp_path), "profil": "demo"}, cwd=tmp_path)
    assert not res.ok and "ConfigError" in res.error and "'profil'" in res.error
    res = execute_notebook(notebook_source("02_roi_cropping"), tmp_path / "out.ipynb",
                           {"run_dir": str(tmp_path), "n_qc_patients": "three"}, cwd=tmp_path)
    assert not res.ok and "n_qc_patients" in res.error and "should be int" in res.error
    assert not (tmp_path / "out.ipynb").exists()


def test_a_notebook_checks_its_own_parameters_without_the_pipeline():
    """Run by papermill directly (or edited in Lab), nbk.start still refuses what papermill
    injected but the parameters cell does not declare."""
    from alnm_core import notebook as nbk
    from alnm_core.config import ConfigError

    ns = {"__annotations__": {"run_dir": str, "profile": str}, "run_dir": "x", "profile": "smoke", "profil": "demo"}
    with pytest.raises(ConfigError, match="unknown parameter 'profil'"):
        nbk._check({"run_dir": "x", "profile": "smoke"}, ns)
    with pytest.raises(ConfigError, match="should be str"):
        nbk._check({"run_dir": 3, "profile": "smoke"}, {"__annotations__": {"run_dir": str, "profile": str}})
    with pytest.raises(ConfigError, match="not passed"):
        nbk._check({"run_dir": "x"}, {"__annotations__": {"run_dir": str, "profile": str}})


def test_run_dir_is_resolved_against_the_repository_never_inside_the_package(tmp_path, monkeypatch):
    """JupyterLab follows the notebooks link: the kernel's working directory is the package's
    notebooks folder, yet run_dir = "reports/demo" means the repository's reports/demo."""
    from alnm_core import notebook as nbk
    from alnm_core.config import ConfigError

    repo = notebook_dir().resolve().parent.parent
    monkeypatch.chdir(notebook_dir())
    assert nbk.resolve_run_dir("reports/demo") == repo / "reports" / "demo"
    assert nbk.resolve_run_dir(str(tmp_path / "x")) == tmp_path / "x"
    with pytest.raises(ConfigError, match="inside the alnm package"):
        nbk.resolve_run_dir("alnm_core/notebooks/run")


def test_cli_errors_are_messages_not_tracebacks(smoke_cohort, tmp_path, capsys):
    assert main(["run", "--cohort", str(smoke_cohort), "--profile", "smoke", "--set", "train.epoch=1",
                 "--out", str(tmp_path)]) == 2
    assert "unknown key" in capsys.readouterr().err
    assert main(["run", "--cohort", str(tmp_path / "nowhere"), "--profile", "smoke", "--out", str(tmp_path)]) == 2
    assert "cohort.csv not found" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before any run folder was made


@pytest.mark.parametrize("cmd", [[], ["demo"], ["run"], ["phantom"], ["validate"], ["bench"]])
def test_every_command_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main(cmd + ["--help"])
    assert e.value.code == 0
    assert "usage: alnm" in capsys.readouterr().out


@slow
def test_last_notebook_runs_on_its_own(tmp_path, smoke_cohort):
    """Opened alone (as in JupyterLab), notebook 05 makes everything upstream it needs, through
    the same step functions the pipeline calls."""
    from alnm_core.config import resolve_config
    from alnm_core.run.pipeline import start_record

    run_dir = tmp_path / "standalone"
    cfg = resolve_config("smoke", overrides=["train.epochs=1", "sequences=[T2WI]", "radiomics.enabled=false"])
    start_record(RunPaths(run_dir), cfg, smoke_cohort, 24)
    res = execute_notebook(notebook_source("05_roc_delong"), tmp_path / "05.ipynb",
                           {"run_dir": str(run_dir)}, cwd=tmp_path)
    assert res.ok, res.error
    paths = RunPaths(run_dir)
    assert paths.table3.is_file() and paths.predictions("ensemble").is_file()
    assert check_figures(tmp_path / "05.ipynb")
    info = json.loads(paths.run_json.read_text())
    units = info["steps"]["train_units"]["units"]  # trained in the notebook's own kernel, recorded
    assert {u["epochs"] for u in units.values()} == {1} and len(units) == 3  # 2 folds + final
    assert paths.checkpoint("slice_vote_T2WI", "r0-f1").is_file()
    assert "bundle" not in info["steps"]  # only what notebook 05 needs
    assert not paths.lock.exists()  # the notebook released the folder
