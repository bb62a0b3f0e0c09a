"""Text from a cohort, a DICOM header, a run name and a bundle is data, never markup (issue 21):
markup planted in every free-text manifest column, a series description and the run name goes
through a real smoke study, ``alnm evaluate`` (the bundle carries it into another report) and
``alnm report --pdf``; the browser executes nothing, the HTML and the model card hold it only
escaped, and the PDF holds no local file."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pydicom
import pytest

from alnm_core.cli import main

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

#: each payload sets the page title when it runs (and one reads a local file into the page)
PAYLOADS = {
    "patient_id": "<script>document.title='PWNED-id'</script>",
    "patient_id_img": '<img src=y onerror="document.title=\'PWNED-img\'">',
    "field_strength": "<svg onload=\"document.title='PWNED-fs'\"></svg>",
    "file": '<iframe src="file:///etc/passwd"></iframe>',
    "series": "<script>document.title='PWNED-series'</script>",
    "run": "<b onmouseover=alert(1)>run",  # a run name is one folder name: no "/"
}


def _hostile_cohort(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    df = pd.read_csv(dst / "cohort.csv", dtype=str, keep_default_na=False)
    df.loc[0, "patient_id"] = df.loc[0, "patient_id"] + PAYLOADS["patient_id"]
    df.loc[1, "patient_id"] = df.loc[1, "patient_id"] + PAYLOADS["patient_id_img"]
    df.loc[2, "patient_id"] = df.loc[2, "patient_id"] + PAYLOADS["file"]
    df["field_strength"] = df.field_strength.map({"1.5T": "1.5T" + PAYLOADS["field_strength"], "3T": "3T"})
    df["note"] = PAYLOADS["file"]  # a column alnm does not use
    df.to_csv(dst / "cohort.csv", index=False)
    # a second T2WI series in one patient's folder, described with markup: that patient cannot be
    # cropped without a series rule and is listed, with the series found, in section 2
    folder = dst / df.loc[4, "T2WI_image"]
    uid = pydicom.uid.generate_uid()
    for f in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID, ds.SeriesDescription = uid, PAYLOADS["series"]
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(folder / f"X{f.name}", enforce_file_format=True)
    return dst


def _inert_in_a_browser(html_path: Path, tmp: Path) -> str:
    """The report opened with JavaScript on and its Content-Security-Policy removed (so that the
    escaping alone is tested); returns the page's text. Fails if any payload ran."""
    playwright = pytest.importorskip("playwright.sync_api")
    html = html_path.read_text()
    bare = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    assert bare != html  # the report does carry a CSP
    page_file = tmp / f"{html_path.parent.name}-nocsp.html"
    page_file.write_text(bare)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = b.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_file.as_uri())
        page.wait_for_timeout(1500)
        page.mouse.move(10, 10)
        title, text = page.title(), page.inner_text("body")
        frames = len(page.frames)
        b.close()
    assert "PWNED" not in title and not dialogs and frames == 1, (title, dialogs, frames)
    return text


@pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("pdftotext") is None,
                    reason="Debian chromium and poppler-utils (pdftotext) not installed")
def test_markup_from_every_input_stays_text_in_reports_pdf_and_bundle(smoke_cohort, tmp_path, capsys):
    cohort = _hostile_cohort(smoke_cohort, tmp_path / "hostile")
    name = "smoke" + PAYLOADS["run"]
    # one sequence: every free-text path is the same for one as for three, at a third of the cost
    sets = ["sequences=[T2WI]", "radiomics.enabled=false", "roi.on_error=exclude"]
    code = main(["run", "--cohort", str(cohort), "--profile", "smoke", "--out", str(tmp_path / "reports"),
                 "--name", name, *[a for s in sets for a in ("--set", s)]])
    assert code == 0, capsys.readouterr().err[-3000:]
    run = tmp_path / "reports" / name
    ext = tmp_path / "reports" / "external"
    for f in cohort.rglob("X*.dcm"):  # evaluate refuses an unreadable patient: the series rule is the run's
        f.unlink()
    assert main(["evaluate", "--model", str(run / "model"), "--cohort", str(cohort),
                 "--out", str(tmp_path / "reports"), "--name", "external"]) == 0
    for report in (run / "report.html", ext / "report.html"):
        html = report.read_text()
        body = re.sub(r"<style.*?</style>", "", html, flags=re.S)
        assert not re.search(r"<(script|iframe|svg)\b", body, re.I), report
        assert not re.search(r"<[^>]+\son\w+\s*=", body, re.I), report  # no event-handler attribute
        text = _inert_in_a_browser(report, tmp_path)
        # ... and the planted text is shown, as text (the external report shows no patient ids)
        assert "1.5T<svg" in text and (report.parent == ext or "document.title='PWNED-id'" in text), report
    main_text = (run / "report.html").read_text()
    assert "PWNED-series" in _inert_in_a_browser(run / "report.html", tmp_path)  # the series inventory
    assert "&lt;b onmouseover=alert(1)&gt;" in main_text  # the run name in the header, escaped
    card = (run / "model" / "MODEL_CARD.md").read_text()
    assert "<script" not in card and "<svg" not in card and "<b onmouseover" not in card
    assert main(["report", str(run), "--pdf", "--out", str(tmp_path / "r.pdf")]) == 0
    pdf_text = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True).stdout
    assert "root:" not in pdf_text and "/bin/" not in pdf_text and "PWNED-id" in pdf_text
