"""Papermill orchestration and the HTML report.

``run_study`` resolves nothing itself: it takes a resolved :class:`StudyConfig`, prepares the
run folder (validated manifest, patient-level splits, ``run.json``), executes every notebook that
exists in order, each in a fresh ``python3`` kernel, and assembles one self-contained
``report.html`` (inline images, no code cells, a contents list, a provenance footer). A failing
notebook is still rendered up to the failing cell, and :class:`PipelineError` names it.
"""
from __future__ import annotations

import copy
import html
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat

from .cohort import load_cohort
from .config import StudyConfig
from .runinfo import (RunPaths, device_info, git_commit, package_versions, read_run_json,
                      update_run_json, write_run_json)
from .splits import make_splits

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
#: (file, section title, runs once per sequence)
STEPS = (
    ("01_cohort_statistics.ipynb", "Cohort and Table 1", False),
    ("02_roi_cropping.ipynb", "ROI extraction and quality control", False),
    ("03_train_sequence.ipynb", "Per-sequence CNN", True),
    ("04_ensemble_fusion.ipynb", "Ensemble fusion", False),
    ("05_roc_delong.ipynb", "Evaluation: Table 3, ROC, DeLong", False),
)
#: notebooks that must hold at least one figure once executed
FIGURE_STEPS = {"01_cohort_statistics.ipynb", "02_roi_cropping.ipynb", "03_train_sequence.ipynb",
                "05_roc_delong.ipynb"}


class PipelineError(RuntimeError):
    """A step of the pipeline failed; the message names the notebook and cell."""


@dataclass
class StepResult:
    name: str
    output: Path
    seconds: float
    ok: bool
    error: str = ""


def prepare_run(cohort_dir: str | Path, cfg: StudyConfig, run_dir: str | Path,
                *, extra: dict | None = None) -> RunPaths:
    """Validate the cohort, make the splits and write ``run.json`` in a fresh run folder."""
    t0 = time.time()
    paths = RunPaths(Path(run_dir)).make()
    cohort_dir = Path(cohort_dir).resolve()
    df = load_cohort(cohort_dir, cfg.sequences)
    splits = make_splits(df, test_size=cfg.split.test_size, val_fraction=cfg.split.val_fraction,
                         n_folds=cfg.split.n_folds, seed=cfg.seed,
                         use_manifest_split=cfg.split.use_manifest_split)
    splits.to_csv(paths.splits, index=False)
    data = {
        "run_name": paths.root.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cohort": str(cohort_dir),
        "n_patients": int(len(df)),
        "seed": cfg.seed,
        "profile": cfg.profile,
        "config": cfg.to_dict(),
        "git_commit": git_commit(),
        "versions": package_versions(),
        "device": device_info(),
        "timings_s": {"prepare": round(time.time() - t0, 3)},
        "exclusions": [],
        "steps": {},
    }
    if extra:
        data.update(extra)
    write_run_json(paths, data)
    return paths


def notebook_jobs(sequences: tuple[str, ...], notebook_dir: Path = NOTEBOOK_DIR,
                  only: tuple[str, ...] | None = None) -> list[tuple[Path, str, dict]]:
    """``(source, output name, parameters)`` for each notebook that exists, in order."""
    jobs = []
    for name, _title, per_seq in STEPS:
        src = notebook_dir / name
        if not src.exists() or (only and name[:2] not in only):
            continue
        if per_seq:
            for seq in sequences:
                jobs.append((src, name.replace(".ipynb", f"_{seq}.ipynb"), {"sequence": seq}))
        else:
            jobs.append((src, name, {}))
    return jobs


class _StreamToProgress(logging.Handler):
    """Forward notebook output lines starting with ``[alnm]`` to a progress callback."""

    def __init__(self, callback: Callable[[str], None]):
        super().__init__()
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        for line in str(record.getMessage()).splitlines():
            if line.startswith("[alnm]"):
                self.callback(line[len("[alnm]"):].strip())


def execute_notebook(src: Path, out: Path, parameters: dict, *, cwd: Path,
                     progress: Callable[[str], None] | None = None) -> StepResult:
    """Run one notebook with papermill in a fresh ``python3`` kernel."""
    import papermill as pm

    t0 = time.time()
    handler = None
    logger = logging.getLogger("papermill")
    if progress is not None:
        handler = _StreamToProgress(progress)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    env_backend = os.environ.pop("MPLBACKEND", None)  # keep inline figures in notebooks
    try:
        pm.execute_notebook(str(src), str(out), parameters=parameters, kernel_name="python3",
                            cwd=str(cwd), progress_bar=False, log_output=progress is not None,
                            request_save_on_cell_execute=True)
        return StepResult(out.name, out, time.time() - t0, True)
    except pm.PapermillExecutionError as exc:
        msg = (f"{out.name}: cell {exc.exec_count or exc.cell_index} failed with "
               f"{exc.ename}: {exc.evalue}")
        return StepResult(out.name, out, time.time() - t0, False, msg)
    finally:
        if env_backend is not None:
            os.environ["MPLBACKEND"] = env_backend
        if handler is not None:
            logger.removeHandler(handler)


def run_notebooks(paths: RunPaths, *, notebook_dir: Path = NOTEBOOK_DIR,
                  progress: Callable[[str], None] | None = None,
                  only: tuple[str, ...] | None = None) -> list[StepResult]:
    """Execute the notebooks in order; stop at the first failure (later steps need its files)."""
    info = read_run_json(paths.root)
    sequences = tuple(info["config"]["sequences"])
    jobs = notebook_jobs(sequences, notebook_dir, only)
    results = []
    for i, (src, out_name, params) in enumerate(jobs, 1):
        say = progress or (lambda s: None)
        say(f"notebook {i}/{len(jobs)}: {out_name}")
        res = execute_notebook(src, paths.notebooks / out_name,
                               {"run_dir": str(paths.root.resolve()), **params},
                               cwd=paths.notebooks, progress=progress)
        results.append(res)
        update_run_json(paths.root, timings_s={out_name: round(res.seconds, 2)},
                        steps={out_name: "ok" if res.ok else res.error})
        say(f"{out_name}: {'done' if res.ok else 'FAILED'} in {res.seconds:.1f} s")
        if not res.ok:
            break
    return results


def _section_title(name: str) -> str:
    for file, title, per_seq in STEPS:
        stem = file.replace(".ipynb", "")
        if name == file:
            return title
        if per_seq and name.startswith(stem + "_"):
            return f"{title}: {name[len(stem) + 1:].replace('.ipynb', '')}"
    return name


def check_figures(nb_path: Path) -> bool:
    """True if an executed notebook holds at least one ``image/png`` output."""
    nb = nbformat.read(nb_path, as_version=4)
    return any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))


def assemble_report(paths: RunPaths, executed: list[Path], *, failed: str = "") -> Path:
    """Merge executed notebooks into one self-contained HTML without code cells."""
    from nbconvert import HTMLExporter

    info = read_run_json(paths.root)
    merged = nbformat.v4.new_notebook()
    toc = []
    body_cells = []
    for k, nb_path in enumerate(executed, 1):
        nb = nbformat.read(nb_path, as_version=4)
        anchor = f"section-{k}"
        title = _section_title(nb_path.name)
        toc.append(f"{k}. <a href=\"#{anchor}\">{html.escape(title)}</a>")
        body_cells.append(nbformat.v4.new_markdown_cell(
            id=f"s{k}-head", source=f"<a id=\"{anchor}\"></a>\n\n<div class=\"alnm-section\">Section {k} · "
            f"{html.escape(nb_path.name)}</div>"))
        for i, cell in enumerate(nb.cells):
            if "remove-from-report" in cell.get("metadata", {}).get("tags", []):
                continue
            if cell.cell_type == "code" and "injected-parameters" in cell.get("metadata", {}).get("tags", []):
                continue
            cell = copy.deepcopy(cell)
            cell["id"] = f"s{k}-c{i}"  # unique across the merged notebooks
            if cell.cell_type == "code":
                cell.outputs = _without_progress(cell.get("outputs", []))
            body_cells.append(cell)
    header = (f"# ALNM prediction from multiparametric MRI — run `{info.get('run_name')}`\n\n"
              f"Profile **{info.get('profile')}**, {info.get('n_patients')} patients, seed "
              f"{info.get('seed')}. Reproduces and extends Zhang et al., *Front. Oncol.* 2022 "
              "(doi:10.3389/fonc.2022.1069733).\n\n")
    if failed:
        header += (f"<div style=\"border:2px solid #b00;padding:8px;color:#b00\"><b>This run did "
                   f"not finish.</b> {html.escape(failed)}. The report shows every step up to the "
                   "failing cell.</div>\n\n")
    header += "## Contents\n\n" + "<br>\n".join(toc) + "\n"
    merged.cells = [nbformat.v4.new_markdown_cell(header, id="report-head")] + body_cells
    merged.cells.append(nbformat.v4.new_markdown_cell(_provenance_markdown(info), id="provenance"))
    merged.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(merged)
    # self-contained: drop the template's CDN scripts (require.js, MathJax); the report has no
    # widgets and no LaTeX, and must open offline
    body = re.sub(r"<script\b[^>]*>.*?</script>",
                  lambda m: "" if re.search(r"https?://|MathJax", m.group(0)) else m.group(0),
                  body, flags=re.S)
    body = body.replace("</head>", _REPORT_CSS + "</head>", 1)
    paths.report.write_text(body, encoding="utf-8")
    return paths.report


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


_REPORT_CSS = """<style>
.alnm-section{margin-top:2.5em;padding:4px 8px;background:#eef2f7;color:#345;font-size:0.85em;
border-left:4px solid #4a6fa5}
table.dataframe, .jp-RenderedHTMLCommon table{font-size:0.9em}
</style>
"""


def _provenance_markdown(info: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items())
    timings = ", ".join(f"{k}: {v:.1f} s" for k, v in info.get("timings_s", {}).items()
                        if isinstance(v, (int, float)))
    dev = info.get("device", {})
    device = dev.get("gpu") or f"CPU ({dev.get('cpu_threads', '?')} threads)"
    excl = info.get("exclusions", [])
    excl_txt = ("none" if not excl else "<br>".join(html.escape(
        f"{e.get('patient_id')} / {e.get('sequence', '')}: {e.get('reason')}") for e in excl))
    cfg = html.escape(json.dumps(info.get("config", {}), indent=1))
    return (
        "---\n\n## Provenance\n\n"
        f"- **Run**: `{info.get('run_name')}`, created {info.get('created')}\n"
        f"- **Code**: git commit `{info.get('git_commit')}`\n"
        f"- **Cohort**: {info.get('n_patients')} patients (manifest `cohort.csv`; pseudonymous ids only)\n"
        f"- **Device**: {device}; {dev.get('platform', '')}\n"
        f"- **Versions**: {versions}\n"
        f"- **Timings**: {timings}\n"
        f"- **Exclusions**: {excl_txt}\n\n"
        f"<details><summary>Resolved configuration (run.json)</summary><pre>{cfg}</pre></details>\n"
    )


def run_study(cohort_dir: str | Path, cfg: StudyConfig, run_dir: str | Path, *,
              progress: Callable[[str], None] | None = None,
              notebook_dir: Path = NOTEBOOK_DIR, only: tuple[str, ...] | None = None) -> Path:
    """Prepare the run folder, execute the notebooks and write ``report.html``.

    Returns:
        Path of ``report.html``.

    Raises:
        PipelineError: a notebook failed (the report is still written) or lacks its figures.
    """
    say = progress or (lambda s: None)
    t0 = time.time()
    say("preparing run folder (cohort check, splits)")
    paths = prepare_run(cohort_dir, cfg, run_dir)
    results = run_notebooks(paths, notebook_dir=notebook_dir, progress=progress, only=only)
    failed = next((r for r in results if not r.ok), None)
    update_run_json(paths.root, timings_s={"total": round(time.time() - t0, 2)},
                    status="failed" if failed else "ok")
    say("assembling report.html")
    assemble_report(paths, [r.output for r in results if r.output.exists()],
                    failed=failed.error if failed else "")
    if failed:
        raise PipelineError(f"{failed.error} (partial report: {paths.report})")
    missing = [r.name for r in results
               if any(r.name.startswith(s.replace(".ipynb", "")) for s in FIGURE_STEPS)
               and not check_figures(r.output)]
    if missing:
        raise PipelineError(f"executed notebooks without any figure: {missing} "
                            "(is MPLBACKEND=Agg set, or does a library call matplotlib.use?)")
    return paths.report
