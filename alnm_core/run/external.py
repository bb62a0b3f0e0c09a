"""External validation: a frozen study (its model bundle) applied to another cohort.

``alnm evaluate --model RUN/model --cohort OTHER`` writes its own run folder: the same ROI
settings, the fold models, the frozen ensemble weights and thresholds; nothing is refit. The
step :func:`evaluate_external` writes the predictions and every table; the notebook
``07_external_validation`` narrates them; the report is assembled like a study's.

Artifacts (one writer: :func:`evaluate_external`)::

    artifacts/predictions/external.csv   patient_id, label, each sequence, weighted_vote,
                                         sequences_used, note
    artifacts/table3.csv                 at the frozen thresholds (fixed and Youden)
    artifacts/calibration.csv, reliability.csv, decision_curve.csv
    artifacts/delong_internal.csv        unpaired DeLong: this cohort vs the run's test set
    artifacts/subgroups.csv              by field strength, when the manifest has it
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from .. import evaluation as EV
from .. import stats as S
from ..bundle import Bundle, load_bundle, predict
from ..cohort import load_for_prediction
from ..config import StudyConfig
from ..storage import sha256_file, write_csv
from . import record
from .paths import RunPaths

Progress = Callable[[str], None]
HEADLINE = "weighted_vote"


def _files(paths: RunPaths) -> dict[str, Path]:
    a = paths.artifacts
    return {"predictions": paths.predictions("external"), "table3": paths.table3,
            "calibration": paths.calibration, "reliability": a / "reliability.csv",
            "decision_curve": a / "decision_curve.csv", "delong_internal": a / "delong_internal.csv",
            "subgroups": paths.subgroups}


class ExternalResult(NamedTuple):
    """Everything the external validation report shows."""

    predictions: pd.DataFrame
    names: dict[str, str]
    table3: pd.DataFrame
    calibration: pd.DataFrame
    reliability: pd.DataFrame
    decision_curve: pd.DataFrame
    delong_internal: pd.DataFrame
    subgroups: pd.DataFrame
    bundle: dict


def start(paths: RunPaths, bundle_dir: Path, cohort_dir: Path) -> tuple[Bundle, StudyConfig]:
    """Open the bundle, check the cohort, and start the external run's ``run.json``."""
    b = load_bundle(bundle_dir)
    cohort = load_for_prediction(cohort_dir, b.sequences, need_labels=True,
                                 series_rules=b.cfg.roi.series_description)
    paths.make()
    record.create(paths, b.cfg, cohort_dir=Path(cohort_dir).resolve(), n_patients=len(cohort),
                  extra={"kind": "external validation", "bundle": str(Path(bundle_dir).resolve()),
                         "bundle_sha256": sha256_file(Path(bundle_dir) / "bundle.json"),
                         "bundle_run": b.meta.get("run")})
    return b, b.cfg


def names_for(sequences: tuple[str, ...]) -> dict[str, str]:
    names = {s: s for s in sequences} if len(sequences) > 1 else {}
    names[HEADLINE] = ("Multiparametric MRI" if len(sequences) > 1
                       else f"{sequences[0]} (one sequence: no fusion)")
    return names


def evaluate_external(paths: RunPaths, cfg: StudyConfig, *,
                      progress: Progress | None = None) -> ExternalResult:
    """Apply the bundle to the cohort named in ``run.json`` and write every table.

    Skipped (the saved result returned) when the bundle, the cohort and the outputs are the
    ones recorded.
    """
    say = progress or (lambda s: None)
    info = record.read(paths.root)
    b = load_bundle(info["bundle"])
    files = _files(paths)
    cohort_dir = Path(info["cohort"])
    key = json.dumps([info["bundle_sha256"], sha256_file(cohort_dir / "cohort.csv")])
    state = record.step_state(paths, "evaluate_external")
    if not (state and state.get("key") == key and all(f.exists() for f in files.values())):
        t0 = time.time()
        _compute(paths, b, cohort_dir, files, say)
        record.finish_step(paths, "evaluate_external", key=key, outputs=list(files.values()),
                           seconds=time.time() - t0)
    t = {k: pd.read_csv(v, dtype={"patient_id": str}) for k, v in files.items()}
    return ExternalResult(t["predictions"], names_for(b.sequences), t["table3"], t["calibration"],
                          t["reliability"], t["decision_curve"], t["delong_internal"],
                          t["subgroups"], b.meta)


def _compute(paths: RunPaths, b: Bundle, cohort_dir: Path, files: dict[str, Path], say: Progress) -> None:
    cfg = b.cfg
    cohort = load_for_prediction(cohort_dir, b.sequences, need_labels=True,
                                 series_rules=cfg.roi.series_description)
    pred = predict(b, cohort, cohort_dir, progress=say)
    out = pred.patients.rename(columns={"fused": HEADLINE})
    out.insert(1, "split", "test")
    out.insert(2, "label", cohort.set_index("patient_id").alnm.reindex(out.patient_id).to_numpy())
    write_csv(out.drop(columns=["decision", "decision_youden"]), files["predictions"],
              what="the external predictions")
    names = names_for(b.sequences)
    scored = out.dropna(subset=[HEADLINE])
    rows = []
    for kind, label in (("fixed", f"fixed {cfg.stats.threshold:g} (frozen)"),
                        ("youden", "Youden on the development predictions (frozen)")):
        for col, name in names.items():
            thr = b.meta["thresholds"].get(col, {}).get(kind)
            d = scored.dropna(subset=[col])
            if thr is None or d.label.nunique() < 2:
                continue
            rows.append(EV.table3_rows(name, d.label, d[col], threshold=float(thr),
                                       threshold_source=label, ppv_npv_method=cfg.stats.ppv_npv_method,
                                       auc_ci_method=cfg.stats.auc_ci, n_boot=cfg.stats.bootstrap_n,
                                       seed=cfg.seed))
    write_csv(pd.DataFrame(rows), files["table3"], what="Table 3 (external)")
    write_csv(EV.calibration_table(scored, names), files["calibration"], what="the calibration table")
    write_csv(EV.reliability_long(scored, names), files["reliability"], what="the reliability bins")
    write_csv(EV.decision_curves(scored, names), files["decision_curve"], what="the decision curves")
    internal = pd.read_csv(b.root / "internal_test.csv")
    dl = []
    for col, name in names.items():
        d = scored.dropna(subset=[col])
        try:
            r = S.delong_test_unpaired(d.label, d[col], internal.label, internal[col])
            dl.append({"model": name, "auc_external": r.auc_a, "auc_internal_test": r.auc_b,
                       "statistic": r.statistic, "df": r.df, "p_value": r.p_value, "note": ""})
        except ValueError as exc:
            dl.append({"model": name, "note": f"not testable ({exc})"})
    write_csv(pd.DataFrame(dl), files["delong_internal"], what="the DeLong tests against the internal test set")
    if "field_strength" in cohort.columns:
        sub = EV.subgroup_auc(scored, cohort, names, ci_method=cfg.stats.auc_ci,
                              n_boot=cfg.stats.bootstrap_n, seed=cfg.seed)
    else:
        sub = pd.DataFrame(columns=["model", "subgroup", "n", "auc", "ci_low", "ci_high", "note"])
    write_csv(sub, files["subgroups"], what="the subgroup table")


def run_external(bundle_dir: str | Path, cohort_dir: str | Path, run_dir: str | Path, *,
                 progress: Progress | None = None) -> Path:
    """The external validation into ``run_dir`` (owned by the caller): step, notebook, report.

    Raises:
        BundleError, CohortError: the bundle or the cohort cannot be used (nothing is written).
        PipelineError: the notebook failed (the report is still written).
    """
    from ..report.html import Section, assemble_report
    from .pipeline import PipelineError, execute_notebook, kernels_inside, notebook_source

    say = progress or (lambda s: None)
    paths = RunPaths(Path(run_dir).resolve())
    _, cfg = start(paths, Path(bundle_dir), Path(cohort_dir))
    say("step evaluate_external")
    evaluate_external(paths, cfg, progress=say)
    out = paths.notebooks / "07_external_validation.ipynb"
    with kernels_inside(paths):
        res = execute_notebook(notebook_source("07_external_validation"), out,
                               {"run_dir": str(paths.root)}, cwd=paths.notebooks, progress=say)
    record.update(paths, notebooks={out.name: {"status": "ok" if res.ok else "failed",
                                               "error": res.error, "seconds": round(res.seconds, 2)}},
                  status="ok" if res.ok else "failed")
    assemble_report(paths, [Section("7", "External validation", out)] if out.is_file() else [],
                    problem="" if res.ok else res.error)
    if not res.ok:
        raise PipelineError(f"{res.error} (report: {paths.report})")
    return paths.report
