"""The HTML report printed to PDF by headless Chromium (journals and ethics boards want a PDF).

The report's print stylesheet (:mod:`alnm_core.report.html`) starts each section on a new page
and keeps tables, figures and cells whole where they fit on a page. Chromium is the browser a
Debian machine installs as ``chromium``; pass ``browser=`` for another Chromium or Chrome.

Example::

    alnm report reports/demo --pdf          # writes reports/demo/report.pdf
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class PdfError(RuntimeError):
    """No browser, or the browser could not print the report; the message says which."""


def find_browser(browser: str | None = None) -> str:
    """The Chromium executable to use; raises :class:`PdfError` naming what was looked for."""
    for name in ([browser] if browser else BROWSERS):
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    raise PdfError(f"no Chromium found (looked for {', '.join([browser] if browser else BROWSERS)}); "
                   "install one (Debian: apt-get install chromium) or pass --browser PATH")


def html_to_pdf(html: str | Path, pdf: str | Path, *, browser: str | None = None,
                timeout_s: float = 180) -> Path:
    """Print ``html`` to ``pdf`` (A4, backgrounds, no browser header/footer); returns ``pdf``."""
    html, pdf = Path(html).resolve(), Path(pdf).resolve()
    if not html.is_file():
        raise PdfError(f"{html} does not exist: run the study first")
    exe = find_browser(browser)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    tmp_pdf = pdf.with_name(f".{pdf.name}.tmp")
    with tempfile.TemporaryDirectory(prefix="alnm-pdf-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
               f"--user-data-dir={profile}", f"--print-to-pdf={tmp_pdf}", html.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise PdfError(f"{exe} did not finish printing {html} within {timeout_s:.0f} s") from exc
    if not tmp_pdf.is_file() or tmp_pdf.stat().st_size == 0:
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-3:])
        raise PdfError(f"{exe} wrote no PDF for {html} (exit {proc.returncode}): {tail}")
    tmp_pdf.replace(pdf)
    return pdf
