"""The HTML report: executed notebooks merged into one self-contained page.

No code cells, inline images, no script fetched from the network, a contents list whose
numbers are the sections' own (1 = cohort ... 5 = evaluation; 3 once per sequence), a banner
when the run did not finish, and a provenance footer from ``run.json``.
"""
from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path
from typing import NamedTuple, Sequence

import nbformat

from ..run import record
from ..run.paths import RunPaths
from ..storage import atomic_write_text


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
@media print{
  .jp-Cell, .jp-OutputArea-output, table, figure, img, svg{break-inside:avoid;page-break-inside:avoid}
  h1, h2, h3{break-after:avoid;page-break-after:avoid}
  .alnm-section{break-before:page}
  /* nothing scrolls on paper: wide tables shrink instead of being cut at the page edge */
  .jp-OutputArea-output, .jp-RenderedHTMLCommon{overflow:visible!important}
  table{font-size:8pt;max-width:100%}
  img{max-width:100%!important;height:auto}
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


def _provenance(info: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items())
    steps = info.get("steps", {})
    timings = ", ".join(f"{k}: {v.get('seconds', 0):.1f} s" for k, v in steps.items())
    nbt = ", ".join(f"{k}: {v.get('seconds', 0):.1f} s" for k, v in info.get("notebooks", {}).items())
    dev = info.get("device", {})
    device = dev.get("gpu") or f"CPU ({dev.get('cpu_threads', '?')} threads)"
    excl = info.get("exclusions", [])
    excl_txt = ("none" if not excl else "<br>".join(html.escape(
        f"{e.get('patient_id')} / {e.get('sequence', '')}: {e.get('reason')}") for e in excl))
    cfg = html.escape(json.dumps(info.get("config", {}), indent=1))
    return (
        "---\n\n## Provenance\n\n"
        f"- **Run**: `{info.get('run_name')}`, created {info.get('created')}, status "
        f"**{info.get('status', '?')}**\n"
        f"- **Code**: git commit `{info.get('git_commit')}`\n"
        f"- **Cohort**: {info.get('n_patients')} patients (manifest `cohort.csv`; pseudonymous ids only)\n"
        f"- **Device**: {device}; {dev.get('platform', '')}\n"
        f"- **Versions**: {versions}\n"
        f"- **Steps** (computation): {timings}\n"
        f"- **Notebooks** (narration): {nbt}\n"
        f"- **Exclusions**: {excl_txt}\n\n"
        f"<details><summary>Resolved configuration (run.json)</summary><pre>{cfg}</pre></details>\n"
    )


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
    toc, body = [], []
    for k, sec in enumerate(sections, 1):
        nb = nbformat.read(sec.path, as_version=4)
        anchor = f"section-{k}"
        toc.append(f"{sec.number} · <a href=\"#{anchor}\">{html.escape(sec.title)}</a>")
        body.append(nbformat.v4.new_markdown_cell(
            id=f"s{k}-head", source=f"<a id=\"{anchor}\"></a>\n\n<div class=\"alnm-section\">Section "
            f"{sec.number} · {html.escape(sec.title)}</div>"))
        for i, cell in enumerate(nb.cells):
            tags = cell.get("metadata", {}).get("tags", [])
            if "remove-from-report" in tags or (cell.cell_type == "code" and "injected-parameters" in tags):
                continue
            cell = copy.deepcopy(cell)
            cell["id"] = f"s{k}-c{i}"  # unique across the merged notebooks
            if cell.cell_type == "code":
                cell.outputs = _without_progress(cell.get("outputs", []))
            body.append(cell)
    header = (f"# ALNM prediction from multiparametric MRI — run `{info.get('run_name')}`\n\n"
              f"Profile **{info.get('profile')}**, {info.get('n_patients')} patients, seed "
              f"{info.get('seed')}. Reproduces and extends Zhang et al., *Front. Oncol.* 2022 "
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
    page, _ = exporter.from_notebook_node(merged)
    # self-contained: drop the template's CDN scripts (require.js, MathJax); the report has no
    # widgets and no LaTeX, and must open offline
    page = re.sub(r"<script\b[^>]*>.*?</script>",
                  lambda m: "" if re.search(r"https?://|MathJax", m.group(0)) else m.group(0),
                  page, flags=re.S)
    page = page.replace("</head>", _CSS + "</head>", 1)
    atomic_write_text(paths.report, page, what="the HTML report")
    return paths.report
