"""External validation: a frozen study (its model bundle) applied to another cohort.

``alnm evaluate --model RUN/model --cohort OTHER`` writes its own run folder: the same ROI
settings, the fold models, the frozen ensemble weights and thresholds; nothing is refit. Its one
step, ``evaluate_external`` (declared in :data:`EXTERNAL_STEPS`, run by the same
:class:`~alnm_core.run.graph.Runner` as a study's), writes the predictions and every table; the
notebook ``07_external_validation`` narrates them; the report is assembled like a study's.

Artifacts (one writer: the step ``evaluate_external``)::

    artifacts/predictions/external.csv   patient_id, split, label, each CNN model (by model_id),
                                         weighted_vote, sequences_used, note
    artifacts/table3.csv                 at the frozen thresholds (fixed and Youden)
    artifacts/calibration.csv, reliability.csv, decision_curve.csv
    artifacts/delong_internal.csv        unpaired DeLong: this cohort vs the run's test set
    artifacts/subgroups.csv              by field strength, when the manifest has it
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from .. import evaluation as EV
from .. import stats as S
from ..bundle import Bundle, load_bundle, predict
from ..cohort import load_for_prediction
from ..config import StudyConfig
from ..model_registry import HEADLINE
from ..runfolder import record
from ..runfolder.paths import RunPaths
from ..storage import sha256_file, write_csv
from .graph import Output, Runner, Step, StepCall

Progress = Callable[[str], None]
FILES = {"predictions": "artifacts/predictions/external.csv", "table3": "artifacts/table3.csv",
         "calibration": "artifacts/calibration.csv", "reliability": "artifacts/reliability.csv",
         "decision_curve": "artifacts/decision_curve.csv", "delong_internal": "artifacts/delong_internal.csv",
         "subgroups": "artifacts/subgroups.csv"}


@dataclass(frozen=True, kw_only=True)
class ExternalResult:
    """Everything the external validation report shows."""

    predictions: pd.DataFrame
    names: dict[str, str]  # model_id -> label
    table3: pd.DataFrame
    calibration: pd.DataFrame
    reliability: pd.DataFrame
    decision_curve: pd.DataFrame
    delong_internal: pd.DataFrame
    subgroups: pd.DataFrame
    bundle: dict


def labels(b: Bundle) -> dict[str, str]:
    """``model_id -> label`` of the bundle's shown models: each CNN (several sequences) and the
    fused headline."""
    models = b.models
    out = {m: str(i.get("label", m)) for m, i in models.items()} if len(b.weights) > 1 else {}
    members = list(b.weights)
    out[HEADLINE] = ("Multiparametric MRI" if len(members) > 1
                     else f"{models[members[0]].get('label', members[0])} (one model: no fusion)")
    return out


def _bundle(call: StepCall) -> Bundle:
    return call.session.memo("bundle", lambda: load_bundle(record.read(call.paths.root)["bundle"]))


def _files_digest(call: StepCall) -> list:
    info = record.read(call.paths.root)
    return [info["bundle_sha256"], sha256_file(Path(info["cohort"]) / "cohort.csv")]


def compute_external(call: StepCall) -> None:
    b = _bundle(call)
    cfg = b.cfg
    cohort_dir = call.session.cohort_dir
    cohort = load_for_prediction(cohort_dir, b.sequences, need_labels=True,
                                 series_rules=cfg.roi.series_description, inputs=call.cfg.input)
    pred = predict(b, cohort, cohort_dir, progress=call.say)
    out = pred.patients.drop(columns=["alnm"], errors="ignore")
    out.insert(1, "split", "test")
    out.insert(2, "label", cohort.set_index("patient_id").alnm.reindex(out.patient_id).to_numpy())
    write_csv(out.drop(columns=["decision", "decision_youden"]), call.out(FILES["predictions"]),
              what="the external predictions")
    names = labels(b)
    scored = out.dropna(subset=[HEADLINE])
    rows = []
    for kind, source in (("fixed", f"fixed {cfg.stats.threshold:g}, frozen"),
                         ("youden", "Youden on the development predictions, frozen")):
        for col, name in names.items():
            thr = b.threshold(col, kind)
            d = scored.dropna(subset=[col])
            if thr is None or d.label.nunique() < 2:
                continue
            rows.append(EV.table3_rows(name, d.label, d[col], threshold=thr, threshold_source=source,
                                       ppv_npv_method=cfg.stats.ppv_npv_method, auc_ci_method=cfg.stats.auc_ci,
                                       n_boot=cfg.stats.bootstrap_n, seed=cfg.seed, model_id=col))
    write_csv(pd.DataFrame(rows), call.out(FILES["table3"]), what="Table 3 (external)")
    write_csv(EV.calibration_table(scored, names), call.out(FILES["calibration"]), what="the calibration table")
    write_csv(EV.reliability_long(scored, names), call.out(FILES["reliability"]), what="the reliability bins")
    write_csv(EV.decision_curves(scored, names), call.out(FILES["decision_curve"]), what="the decision curves")
    internal = pd.read_csv(b.root / "internal_test.csv")
    dl = []
    for col, name in names.items():
        d = scored.dropna(subset=[col])
        try:
            r = S.delong_test_unpaired(d.label, d[col], internal.label, internal[col])
            dl.append({"model_id": col, "model": name, "auc_external": r.auc_a, "auc_internal_test": r.auc_b,
                       "statistic": r.statistic, "df": r.df, "p_value": r.p_value, "note": ""})
        except (ValueError, KeyError) as exc:
            dl.append({"model_id": col, "model": name, "note": f"not testable ({exc})"})
    cols = ["model_id", "model", "auc_external", "auc_internal_test", "statistic", "df", "p_value", "note"]
    write_csv(pd.DataFrame(dl, columns=cols), call.out(FILES["delong_internal"]),
              what="the DeLong tests against the internal test set")
    if "field_strength" in cohort.columns:
        sub = EV.subgroup_auc(scored, cohort, names, ci_method=cfg.stats.auc_ci,
                              n_boot=cfg.stats.bootstrap_n, seed=cfg.seed)
    else:
        sub = pd.DataFrame(columns=["model_id", "model", "subgroup", "n", "auc", "ci_low", "ci_high", "note"])
    write_csv(sub, call.out(FILES["subgroups"]), what="the subgroup table")


def load_external(call: StepCall) -> ExternalResult:
    b = _bundle(call)
    t = {k: pd.read_csv(call.paths.root / v, dtype={"patient_id": str}) for k, v in FILES.items()}
    return ExternalResult(predictions=t["predictions"], names=labels(b), table3=t["table3"],
                          calibration=t["calibration"], reliability=t["reliability"],
                          decision_curve=t["decision_curve"], delong_internal=t["delong_internal"],
                          subgroups=t["subgroups"], bundle=b.meta)


EXTERNAL_STEPS = (
    Step(name="evaluate_external", compute=compute_external, load=load_external, files=_files_digest,
         version=2, outputs=tuple(Output(path=p) for p in FILES.values()),
         doc="the frozen bundle applied to another labelled cohort"),
)


def runner(paths: RunPaths, cfg: StudyConfig, **kw) -> Runner:
    return Runner(paths, cfg, EXTERNAL_STEPS, **kw)


def start(paths: RunPaths, bundle_dir: Path, cohort_dir: Path, inputs=None) -> tuple[Bundle, StudyConfig]:
    """Open the bundle, check the cohort (with the user's reading rules ``inputs``, never the
    bundle's), and start the external run's ``run.json``."""
    from dataclasses import replace

    from ..config import InputConfig

    b = load_bundle(bundle_dir)
    cfg = replace(b.cfg, input=inputs or InputConfig())
    cohort = load_for_prediction(cohort_dir, b.sequences, need_labels=True,
                                 series_rules=b.cfg.roi.series_description, inputs=cfg.input)
    paths.make()
    record.create(paths, cfg, cohort_dir=Path(cohort_dir).resolve(), n_patients=len(cohort),
                  extra={"kind": "external validation", "bundle": str(Path(bundle_dir).resolve()),
                         "bundle_sha256": sha256_file(Path(bundle_dir) / "bundle.json"),
                         "bundle_run": b.meta.get("run")})
    return b, cfg


def run_external(bundle_dir: str | Path, cohort_dir: str | Path, run_dir: str | Path, *,
                 progress: Progress | None = None, inputs=None) -> Path:
    """The external validation into ``run_dir`` (owned by the caller): step, notebook, report.

    Raises:
        BundleError, CohortError: the bundle or the cohort cannot be used (nothing is written).
        PipelineError: the notebook failed (the report is still written).
    """
    from ..report.html import Section, assemble_report
    from .pipeline import PipelineError, execute_notebook, kernels_inside, notebook_source

    say = progress or (lambda s: None)
    paths = RunPaths(Path(run_dir).resolve())
    _, cfg = start(paths, Path(bundle_dir), Path(cohort_dir), inputs)
    runner(paths, cfg, progress=say).get("evaluate_external")
    out = paths.notebooks / "07_external_validation.ipynb"
    with kernels_inside(paths):
        res = execute_notebook(notebook_source("07_external_validation"), out,
                               {"run_dir": str(paths.root)}, cwd=paths.notebooks, progress=say)
    record.finish_notebook(paths, out.name, key=None, status="ok" if res.ok else "failed", error=res.error,
                           seconds=res.seconds)
    record.set_status(paths, "ok" if res.ok else "failed")
    assemble_report(paths, [Section("7", "External validation", out)] if out.is_file() else [],
                    problem="" if res.ok else res.error)
    if not res.ok:
        raise PipelineError(f"{res.error} (report: {paths.report})")
    return paths.report
