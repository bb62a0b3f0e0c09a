"""The HTML report: executed notebooks merged into one self-contained page.

No code cells, inline images, no script fetched from the network, a contents list whose
numbers are the sections' own (1 = cohort ... 5 = evaluation; 3 once per sequence), a banner
when the run did not finish, and a provenance footer from ``run.json``.

The page is inert: a Content-Security-Policy forbids every script, frame, object and load other
than its own inline images and styles, so text from a cohort or a bundle that slipped past the
escaping helpers (:mod:`alnm_core.report.escape`) still cannot run or fetch anything. Every value
this module puts into the page from ``run.json`` (run name, profile, exclusions, configuration)
is escaped here.
"""
from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path
from typing import NamedTuple, Sequence

import nbformat

from ..runfolder import record
from ..runfolder.paths import RunPaths
from ..storage import atomic_write_text
from .escape import md_text

#: what the report may load: its own inline images (data: URIs) and inline styles; no script,
#: no frame, no object, no form, no font or image from anywhere else
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
       "script-src 'none'; object-src 'none'; frame-src 'none'; child-src 'none'; form-action 'none'; "
       "base-uri 'none'")
STUDY_TITLE = "ALNM prediction from multiparametric MRI"


class Section(NamedTuple):
    """One executed notebook in the report."""

    number: str  # "1", "3", ... (the notebook's own heading number)
    title: str  # e.g. "Per-sequence CNN: T2WI"
    path: Path  # the executed .ipynb


_CSS = """<style>
.alnm-section{margin-top:2.5em;padding:4px 8px;background:#eef2f7;color:#345;font-size:0.85em;
border-left:4px solid #4a6fa5}
.alnm-incomplete{border:2px solid #b00;padding:8px;color:#b00}
table.dataframe, .jp-RenderedHTMLCommon table{font-size:0.9em}
table.alnm-table caption{caption-side:top;text-align:left;font-weight:bold}
details.alnm-appendix > summary{cursor:pointer;font-weight:bold}
@page{size:A4;margin:14mm 12mm}
@media print{
  .jp-Cell, .jp-OutputArea-output, table, figure, img, svg{break-inside:avoid;page-break-inside:avoid}
  h1, h2, h3, h4, caption, p:has(+ .jp-OutputArea){break-after:avoid;page-break-after:avoid}
  .alnm-section{break-before:page}
  /* nothing scrolls on paper: tables wrap their cells and shrink to the page width */
  .jp-OutputArea-output, .jp-RenderedHTMLCommon{overflow:visible!important}
  table{font-size:7.5pt;width:100%!important;max-width:100%;table-layout:auto}
  table.alnm-wide{font-size:6.5pt}
  td, th{white-space:normal!important;overflow-wrap:break-word;word-break:normal;hyphens:manual;padding:1px 3px!important}
  th{overflow-wrap:normal}  /* a header breaks between words only: its column is as wide as its longest word */
  img{max-width:100%!important;height:auto}
  details.alnm-appendix > :not(summary){display:none}
  details.alnm-appendix > summary::after{content:" (the full table is in the CSV named above)"}
}
</style>
"""


def _without_progress(outputs: list) -> list:
    """Drop ``[alnm]`` progress lines (meant for the CLI) and stderr (library warnings, kept in
    the executed notebooks) from stream outputs."""
    kept = []
    for o in outputs:
        if o.get("output_type") == "stream" and o.get("name") == "stderr":
            continue
        if o.get("output_type") == "stream":
            text = "".join(o.get("text", ""))
            lines = [ln for ln in text.splitlines(keepends=True) if not ln.startswith("[alnm]")]
            if not "".join(lines).strip():
                continue
            o["text"] = "".join(lines)
        kept.append(o)
    return kept


def _seconds(v: dict) -> str:
    return f"{float(v.get('seconds', 0) or 0):.1f} s"


def _provenance(info: dict) -> str:
    m = md_text
    versions = ", ".join(f"{m(k)} {m(v)}" for k, v in info.get("versions", {}).items())
    steps = info.get("steps", {})
    timings = ", ".join(f"{m(k)}: {_seconds(v)}" for k, v in steps.items())
    units = steps.get("train_units", {}).get("units", {})
    if units:
        trained = sum(float(u.get("seconds", 0) or 0) for u in units.values())
        timings += (f" (training: {len(units)} units, {trained:.0f} s of training in all; units reused "
                    "from an earlier run count their original time)")
    nbt = ", ".join(f"{m(k)}: {_seconds(v)}" for k, v in info.get("notebooks", {}).items())
    dev = info.get("device", {})
    device = m(dev.get("gpu") or f"CPU ({dev.get('cpu_threads', '?')} threads)")
    excl = record.exclusions(info)
    excl_txt = ("none" if not excl else "; ".join(
        f"{m(e.get('patient_id'))} / {m(e.get('sequence', ''))}: {m(e.get('reason'))}" for e in excl))
    cfg = html.escape(json.dumps(info.get("config", {}), indent=1))
    return (
        "---\n\n## Provenance\n\n"
        f"- **Run**: {m(info.get('run_name'))}, created {m(info.get('created'))}, status "
        f"**{m(info.get('status', '?'))}**\n"
        f"- **Code**: git commit {m(info.get('git_commit'))}\n"
        f"- **Cohort**: {m(info.get('n_patients'))} patients (manifest cohort.csv; pseudonymous ids only)\n"
        f"- **Device**: {device}; {m(dev.get('platform', ''))}\n"
        f"- **Versions**: {versions}\n"
        f"- **Steps** (computation): {timings}\n"
        f"- **Notebooks** (narration): {nbt}\n"
        f"- **Exclusions**: {excl_txt}\n\n"
        f"<details><summary>Resolved configuration (run.json)</summary><pre>{cfg}</pre></details>\n"
    )


def _retitle(cell, sec: Section):
    """A notebook's heading names its section as the contents do (``# 3 · Per-sequence CNN: T2WI``),
    so that a notebook shown once per sequence gets a heading per sequence."""
    lines = cell.source.splitlines()
    if lines and re.match(rf"#\s*{re.escape(sec.number)}\s*·", lines[0]):
        cell = copy.deepcopy(cell)
        cell.source = "\n".join([f"# {sec.number} · {md_text(sec.title)}"] + lines[1:])
    return cell


def assemble_report(paths: RunPaths, sections: Sequence[Section], *, problem: str = "") -> Path:
    """Merge executed notebooks into ``report.html`` (self-contained, no code cells).

    Args:
        paths: the run folder.
        sections: the executed notebooks, in order.
        problem: when the run did not finish or is incomplete, what went wrong (shown on top).
    """
    from nbconvert import HTMLExporter

    info = record.read(paths.root)
    merged = nbformat.v4.new_notebook()
    toc, body, numbered = [], [], set()
    for k, sec in enumerate(sections, 1):
        nb = nbformat.read(sec.path, as_version=4)
        anchor = f"section-{k}"
        # the first section of each number is also #sec-<number> (the checklist links there)
        alias = f"<a id=\"sec-{html.escape(sec.number)}\"></a>" if sec.number not in numbered else ""
        numbered.add(sec.number)
        toc.append(f"{sec.number} · <a href=\"#{anchor}\">{html.escape(sec.title)}</a>")
        body.append(nbformat.v4.new_markdown_cell(
            id=f"s{k}-head", source=f"<a id=\"{anchor}\"></a>{alias}\n\n<div class=\"alnm-section\">Section "
            f"{sec.number} · {html.escape(sec.title)}</div>"))
        for i, cell in enumerate(nb.cells):
            if i == 0 and cell.cell_type == "markdown":
                cell = _retitle(cell, sec)
            tags = cell.get("metadata", {}).get("tags", [])
            if "remove-from-report" in tags or (cell.cell_type == "code" and "injected-parameters" in tags):
                continue
            cell = copy.deepcopy(cell)
            cell["id"] = f"s{k}-c{i}"  # unique across the merged notebooks
            if cell.cell_type == "code":
                cell.outputs = _without_progress(cell.get("outputs", []))
            body.append(cell)
    header = (f"# {STUDY_TITLE} — run {md_text(info.get('run_name'))}\n\n"
              f"Profile **{md_text(info.get('profile'))}**, {md_text(info.get('n_patients'))} patients, seed "
              f"{md_text(info.get('seed'))}. Reproduces and extends Zhang et al., *Front. Oncol.* 2022 "
              "(doi:10.3389/fonc.2022.1069733).\n\n")
    if problem:
        header += (f"<div class=\"alnm-incomplete\"><b>This run did not finish or is incomplete.</b> "
                   f"{html.escape(problem)}. The report shows every section that ran.</div>\n\n")
    header += "## Contents\n\n" + "<br>\n".join(toc) + "\n"
    merged.cells = [nbformat.v4.new_markdown_cell(header, id="report-head"), *body,
                    nbformat.v4.new_markdown_cell(_provenance(info), id="provenance")]
    merged.metadata["kernelspec"] = {"name": "alnm", "display_name": "Python (alnm)", "language": "python"}
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    title = f"{STUDY_TITLE} — run {info.get('run_name')}"
    page, _ = exporter.from_notebook_node(merged, resources={"metadata": {"name": title}})
    # self-contained: drop the template's CDN scripts (require.js, MathJax); the report has no
    # widgets and no LaTeX, and must open offline
    page = re.sub(r"<script\b[^>]*>.*?</script>",
                  lambda m: "" if re.search(r"https?://|MathJax", m.group(0)) else m.group(0),
                  page, flags=re.S)
    page = re.sub(r"<title>.*?</title>", lambda _: f"<title>{html.escape(title)}</title>", page, count=1, flags=re.S)
    head = (f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f'<meta name="description" content="{html.escape(STUDY_TITLE)}">\n')
    page = re.sub(r"<head>", lambda _: "<head>\n" + head, page, count=1)
    page = page.replace("</head>", _CSS + "</head>", 1)
    atomic_write_text(paths.report, page, what="the HTML report")
    return paths.report
