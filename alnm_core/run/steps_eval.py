"""The fusion, baseline and evaluation steps.

Every table carries ``model_id`` (:mod:`alnm_core.model_registry`) beside the display label, so
that no reader looks a model up by its label.
"""
from __future__ import annotations

import functools

import pandas as pd

from .. import ensemble as E
from .. import evaluation as EV
from ..model_registry import HEADLINE, radiomics_headline, study_models
from ..runfolder import record
from ..storage import write_csv
from .graph import StepCall
from .results import Baseline, Evaluation, Fusion, RadiomicsResult

read = functools.partial(pd.read_csv, dtype={"patient_id": str})


def fit_split(cfg) -> tuple[str, str]:
    """``(split value, name)`` of the development predictions that thresholds, ensemble weights
    and stacking are fitted on: the validation patients (hold-out) or every development
    patient's out-of-fold prediction (k-fold)."""
    return ("val", "validation") if cfg.split.scheme == "holdout" else ("dev", "out-of-fold")


# ----------------------------------------------------------------------------- fuse
def member_predictions(call: StepCall) -> dict[str, pd.DataFrame]:
    """Patient-level predictions of each fusion member, by model id (in member order)."""
    ms = study_models(call.cfg)
    out = {}
    for m in ms.members:
        base, _, seq = m.step.partition(":")
        out[m.model_id] = call.session.get(m.step).patients if call.has(base) else None
    missing = [k for k, v in out.items() if v is None]
    if missing:
        raise RuntimeError(f"fuse: no step upstream produces {missing}")
    return out


def compute_fuse(call: StepCall) -> dict:
    cfg = call.cfg
    res = E.fuse(member_predictions(call), fit_split=fit_split(cfg)[0],
                 weights_from=cfg.ensemble.weights_from, threshold=cfg.stats.threshold,
                 weight_rule=cfg.ensemble.weight_rule)
    write_csv(res.ensemble, call.out("artifacts/predictions/ensemble.csv"), what="the fused predictions")
    write_csv(res.weights, call.out("artifacts/ensemble_weights.csv"), what="the ensemble weights")
    return {"weights_from": cfg.ensemble.weights_from,
            "weights": res.weights.set_index("model").weight_used.round(4).to_dict()}


def load_fuse(call: StepCall) -> Fusion:
    members = [m.model_id for m in study_models(call.cfg).members]
    return Fusion(ensemble=read(call.paths.predictions("ensemble")), weights=pd.read_csv(call.paths.ensemble_weights),
                  members=members)


# ----------------------------------------------------------------------------- clinical
def check_covariates(call: StepCall) -> tuple[str, ...]:
    """``clinical.covariates``, refused when the cohort does not record one of them."""
    from ..cohort import read_cohort_info
    from ..config import ConfigError

    cov = call.cfg.clinical.covariates
    missing = sorted(set(cov) & set(read_cohort_info(call.session.cohort_dir).get("not_recorded", [])))
    if missing:
        raise ConfigError(f"clinical.covariates: the cohort does not record {missing} (its cohort.json "
                          f"says so); leave them out, e.g. --set clinical.covariates="
                          f"[{', '.join(c for c in cov if c not in missing)}]")
    return cov


def compute_clinical(call: StepCall) -> None:
    prep = call.up("prepare")
    clin = EV.clinical_baseline(prep.cohort, prep.splits, prep.folds, covariates=check_covariates(call))
    write_csv(clin, call.out("artifacts/predictions/clinical.csv"), what="the clinical baseline's predictions")


def load_clinical(call: StepCall) -> Baseline:
    return Baseline(model_id="clinical", predictions=read(call.paths.predictions("clinical")))


# ----------------------------------------------------------------------------- radiomics
def compute_radiomics(call: StepCall) -> None:
    from ..radiomics_models import fit_radiomics_models

    prep = call.up("prepare")
    feats = {s: r["features"] for s, r in call.up_all("radiomics_features").items()}
    excluded = {e["patient_id"] for r in call.up_all("roi").values() for e in r.exclusions}
    splits = prep.splits[~prep.splits.patient_id.isin(excluded)].reset_index(drop=True)
    folds = prep.folds
    if folds is not None:
        folds = folds[~folds.patient_id.isin(excluded)].reset_index(drop=True)
    call.say("radiomics: fitting the models")
    preds, coefs = fit_radiomics_models(feats, prep.cohort, splits, folds, call.cfg.radiomics, seed=call.cfg.seed,
                                        covariates=check_covariates(call))
    write_csv(preds, call.out("artifacts/predictions/radiomics.csv"), what="the radiomics models' predictions")
    write_csv(coefs, call.out("artifacts/radiomics_model.csv"), what="the radiomics models' coefficients")


def load_radiomics(call: StepCall) -> RadiomicsResult:
    up = call.up_all("radiomics_features")
    return RadiomicsResult(features={s: r["features"] for s, r in up.items()},
                           exclusions=[e for r in up.values() for e in r["exclusions"]],
                           predictions=read(call.paths.predictions("radiomics")),
                           coefficients=read(call.paths.radiomics_model),
                           seconds_per_patient={s: r["seconds_per_patient"] for s, r in up.items()})


def radiomics_comparisons(cfg) -> list[tuple[str, str]]:
    """The comparisons of the radiomics family (:data:`alnm_core.evaluation.RADIOMICS_FAMILY`):
    the CNN fusion against the radiomics and clinical-radiomics models (by default in the
    primary family, so not repeated here), the clinical-radiomics model against radiomics alone
    and against the clinical baseline, and each sequence's CNN against its own radiomics model."""
    rad = radiomics_headline(cfg)
    pairs = [(HEADLINE, rad), (HEADLINE, "clinical_radiomics"), ("clinical_radiomics", rad),
             ("clinical_radiomics", "clinical")]
    if len(cfg.sequences) > 1:
        pairs += [(m.model_id, f"radiomics_{m.sequence}") for m in study_models(cfg).cnns()]
    return pairs


# ----------------------------------------------------------------------------- evaluate
def all_predictions(call: StepCall) -> pd.DataFrame:
    """One wide table: ``patient_id, split, label`` and a probability column per model id,
    for the patients every model predicts."""
    ms = study_models(call.cfg)
    fused = call.up("fuse").ensemble
    preds = fused.merge(call.up("clinical").predictions[["patient_id", "prob"]]
                        .rename(columns={"prob": "clinical"}), on="patient_id")
    cnn_cols = [m.model_id for m in ms.cnns() if m.model_id not in preds.columns]
    for mid in cnn_cols:
        p = call.session.get(ms[mid].step).patients[["patient_id", "prob"]].rename(columns={"prob": mid})
        preds = preds.merge(p, on="patient_id")
    if call.has("radiomics"):
        preds = preds.merge(call.up("radiomics").predictions.drop(columns=["split", "label"]), on="patient_id")
    return preds[["patient_id", "split", "label"] + [m.model_id for m in ms]]


def evaluation_outputs(cfg) -> dict[str, str]:
    out = {"models": "artifacts/predictions/models.csv", "table3": "artifacts/table3.csv",
           "flags": "artifacts/flags.csv", "epv": "artifacts/epv.csv", "delong": "artifacts/delong.csv",
           "calibration": "artifacts/calibration.csv", "reliability": "artifacts/reliability.csv",
           "decision_curve": "artifacts/decision_curve.csv", "subgroups": "artifacts/subgroups.csv"}
    if cfg.split.scheme == "kfold":
        out["cv_summary"] = "artifacts/cv_summary.csv"
    return out


def comparison_families(cfg, ms) -> pd.DataFrame:
    """Every pair of the shown models in exactly one family: the pre-specified primary family
    (``stats.primary_comparisons``; default the headline against its members, the clinical and
    the radiomics baselines), then the radiomics and attention-MIL families, then every other
    pair; pairs with a model fitted on the test set in none."""
    rad = radiomics_headline(cfg) if cfg.radiomics.enabled else None
    primary = EV.primary_comparisons(ms, cfg.stats.primary_comparisons, radiomics=rad)
    exploratory = [(EV.RADIOMICS_FAMILY, radiomics_comparisons(cfg) if rad else []),
                   (EV.MIL_FAMILY, mil_comparisons(ms))]
    return EV.comparison_families(ms, primary, exploratory)


def mil_comparisons(ms) -> list[tuple[str, str]]:
    """Each sequence's attention-MIL model against its slice-vote model (the MIL family)."""
    return [(f"attention_mil_{m.sequence}", m.model_id) for m in ms.cnns("slice_vote")
            if f"attention_mil_{m.sequence}" in ms]


def main_models(ms) -> list[str]:
    """The models calibration and the cross-validation summary show: the fusion's members, the
    headline, the other CNNs, the clinical baseline and the radiomics headline models."""
    base = [m.model_id for m in ms.members if m.shown]
    others = [m.model_id for m in ms.cnns() if m.shown and not m.member]
    rad = [i for i in ("radiomics_all", "clinical_radiomics") if i in ms]
    if rad and "radiomics_all" not in ms:  # one sequence: its radiomics model is the headline one
        rad = [i for i in ms.ids(kind="radiomics") if i != "clinical_radiomics"][:1] + ["clinical_radiomics"]
    return base + [HEADLINE] + others + ["clinical"] + rad


def compute_evaluate(call: StepCall) -> None:
    cfg = call.cfg
    ms = study_models(cfg)
    files = {k: call.out(v) for k, v in evaluation_outputs(cfg).items()}
    preds = all_predictions(call)
    write_csv(preds, files["models"], what="every model's predictions")
    test = preds[preds.split == "test"]
    shown = ms.labels([m.model_id for m in ms.shown])
    s = cfg.stats
    split_value, fit_name = fit_split(cfg)
    t3 = EV.build_table3(preds, shown, threshold=s.threshold, ppv_npv_method=s.ppv_npv_method,
                         auc_ci_method=s.auc_ci, n_boot=s.bootstrap_n, seed=cfg.seed,
                         fit_split=split_value, fit_name=fit_name)
    write_csv(t3, files["table3"], what="Table 3")
    write_csv(EV.model_flags(preds, t3, shown, fit_split=split_value, fit_name=fit_name), files["flags"],
              what="the flags of Table 3")
    write_csv(events_per_predictor(call, preds, ms), files["epv"], what="events per candidate predictor")
    base = [m.model_id for m in ms.members if m.shown]
    write_csv(EV.with_labels(EV.delong_families(preds, comparison_families(cfg, ms)), ms.labels()),
              files["delong"], what="the DeLong tests, by family")
    main = ms.labels(main_models(ms))
    cal, rel = [EV.calibration_table(test, main)], [EV.reliability_long(test, main).assign(probabilities="as predicted")]
    dca, scored, notes = ms.labels([HEADLINE] + base[:1] + ["clinical"]), test, {}
    if s.recalibration != "none":
        what = f"recalibrated ({s.recalibration}, fitted on the {fit_name} predictions)"
        scored, notes = EV.recalibrate(preds, list(main), method=s.recalibration, fit_split=split_value)
        cal.append(EV.calibration_table(scored, main, probabilities=what, notes=notes))
        ok = {k: v for k, v in main.items() if k not in notes}
        rel.append(EV.reliability_long(scored, ok).assign(probabilities=what))
    write_csv(pd.concat(cal, ignore_index=True), files["calibration"], what="the calibration table")
    write_csv(pd.concat(rel, ignore_index=True), files["reliability"], what="the reliability bins")
    write_csv(pd.concat([EV.decision_curves(test if m in notes else scored, {m: name}).assign(
        probabilities="as predicted" if s.recalibration == "none" or m in notes else f"recalibrated ({s.recalibration})")
        for m, name in dca.items()], ignore_index=True), files["decision_curve"], what="the decision curves")
    sub = EV.subgroup_auc(preds, call.up("prepare").cohort, ms.labels(base + [HEADLINE]),
                          ci_method=s.auc_ci, n_boot=s.bootstrap_n, seed=cfg.seed)
    write_csv(sub, files["subgroups"], what="the subgroup table")
    if "cv_summary" in files:
        units = {m.model_id: call.session.get(m.step).unit_patients for m in ms.members} if len(base) > 1 else {}
        w = call.up("fuse").weights.set_index("model").weight_used.to_dict()
        write_csv(EV.cv_summary(preds, units, w, main, folds=call.up("prepare").folds), files["cv_summary"],
                  what="the cross-validation summary")


def events_per_predictor(call: StepCall, preds: pd.DataFrame, ms) -> pd.DataFrame:
    """Events (development patients with ALNM) per candidate predictor of each model family
    (TRIPOD+AI 8b): the clinical covariates, the radiomics features before selection, the CNNs'
    parameters (an image model: the ratio is not a sample-size rule for it, shown as such)."""
    dev = preds[preds.split != "test"]
    events, n = int(dev.label.sum()), len(dev)
    rows = [{"model": ms.label("clinical"), "candidate predictors": len(call.cfg.clinical.covariates),
             "what": "clinical covariates"}]
    if call.has("radiomics"):
        feats = call.up("radiomics").features
        for s, f in feats.items():
            rows.append({"model": f"Radiomics: {s}", "candidate predictors": int(f.shape[1] - 1),
                         "what": "radiomics features before the robustness filter and the penalty"})
    for m in ms.cnns():
        rows.append({"model": m.label, "candidate predictors": _parameters(call.cfg),
                     "what": "network parameters (an image model: EPV is not its sample-size rule)"})
    out = pd.DataFrame(rows)
    out.insert(1, "development patients", n)
    out.insert(2, "events (ALNM)", events)
    out["events per predictor"] = out["events (ALNM)"] / out["candidate predictors"]
    return out


def _parameters(cfg) -> int:
    """Trainable parameters of the configured network (counted once per architecture)."""
    import torch  # noqa: F401  (the network builder needs it)

    from ..models import make_network

    return int(sum(p.numel() for p in make_network(cfg.train).parameters() if p.requires_grad))


def load_evaluate(call: StepCall) -> Evaluation:
    cfg = call.cfg
    files = evaluation_outputs(cfg)
    t = {k: read(call.paths.root / v) for k, v in files.items()}
    return Evaluation(predictions=t["models"], models=study_models(cfg), table3=t["table3"], flags=t["flags"],
                      epv=t["epv"], delong=t["delong"], calibration=t["calibration"],
                      reliability=t["reliability"], decision_curve=t["decision_curve"],
                      subgroups=t["subgroups"], cv_summary=t.get("cv_summary"),
                      radiomics=call.up("radiomics") if call.has("radiomics") else None)


def excluded_from_record(call: StepCall) -> list[dict]:
    return record.exclusions(record.read(call.paths.root))


# ----------------------------------------------------------------------------- crosscheck
def compute_crosscheck(call: StepCall) -> dict:
    from .. import crosscheck as X

    check = X.crosscheck(call.paths.root)
    write_csv(check, call.out("artifacts/crosscheck.csv"), what="the reviewer's cross-check")
    return {"summary": X.summary(check), "differ": int((check.ok == False).sum())}  # noqa: E712


def load_crosscheck(call: StepCall) -> pd.DataFrame:
    out = pd.read_csv(call.paths.root / "artifacts/crosscheck.csv")
    out["ok"] = out.ok.map({True: True, False: False, "True": True, "False": False})
    return out
