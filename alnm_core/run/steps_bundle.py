"""The bundle step: the trained study as a checked model bundle (``RUN/model/``).

Thresholds, weights and scores are written by ``model_id``; the labels only reach the model
card. Renaming a label therefore changes no number and no threshold of the bundle.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..model_registry import HEADLINE, study_models
from ..protocol import scoring_test
from ..runfolder import record
from .graph import StepCall


def compute_bundle(call: StepCall) -> None:
    from ..bundle import write_bundle
    from ..phantom import phantom_settings
    from ..report.model_card import model_card

    cfg, paths = call.cfg, call.paths
    ms = study_models(cfg)
    ev = call.up("evaluate")
    prep = call.up("prepare")
    grid = call.up("train_units")
    t3 = ev.table3
    youden = {mid: float(g.threshold.iloc[0]) for mid, g in
              t3[t3.threshold_from.str.startswith("Youden")].groupby("model_id")
              if np.isfinite(g.threshold.iloc[0])}  # NaN: no threshold beats chance
    cnn = [m for m in ms if m.in_bundle and m.kind == "cnn"]
    bundled = [m.model_id for m in cnn] + [HEADLINE]
    thresholds = {mid: {"fixed": cfg.stats.threshold, **({"youden": youden[mid]} if mid in youden else {})}
                  for mid in bundled}
    test = ev.predictions[ev.predictions.split == "test"]
    c = prep.cohort
    summary = {"n_patients": int(len(c)), "n_alnm": int(c.alnm.sum()), "prevalence": float(c.alnm.mean()),
               "n_development": int((prep.splits.split != "test").sum()), "n_test": int(len(test)),
               "field_strength": {str(k): int(v) for k, v in c.field_strength.value_counts().items()},
               "age_mean": float(c.age.mean()), "age_sd": float(c.age.std()),
               "size_mean": float(c.tumor_size_cm.mean()), "size_sd": float(c.tumor_size_cm.std())}
    shown = [m.model_id for m in cnn if m.shown] + [HEADLINE]
    cols = ["model_id", "model", "threshold", "threshold_from", "auc", "auc_low", "auc_high", "acc", "sen",
            "sen_low", "sen_high", "spe", "spe_low", "spe_high", "ppv", "ppv_low", "ppv_high", "npv",
            "npv_low", "npv_high"]
    validation = {"scheme": cfg.split.scheme, "ci_method": str(t3.auc_ci_method.iloc[0]),
                  "ppv_npv_method": str(t3.ppv_method.iloc[0]),
                  "test": _records(t3[t3.model_id.isin(shown)][cols]),
                  "calibration": _records(ev.calibration[ev.calibration.model_id.isin(shown)]
                                          [["model_id", "model", "probabilities", "brier", "intercept", "slope"]]),
                  "cv": [] if ev.cv_summary is None else
                  _records(ev.cv_summary[ev.cv_summary.model_id.isin(shown)])}
    # the networks that scored the test set: the final fit (k-fold) or the hold-out fit
    units = {m.model_id: [(u.job.id, paths.checkpoint(m.model_id, u.job.id)) for u in scoring_test(grid.units[m.model_id])]
             for m in cnn}
    weights = call.up("fuse").weights.set_index("model").weight_used.astype(float).to_dict()
    members = [m.model_id for m in ms.members]
    card = model_card(info=record.read(paths.root), cfg=cfg, summary=summary, validation=validation,
                      members=members, member_labels=ms.labels(), phantom=phantom_settings(prep.cohort_dir) is not None)
    models = {}
    for m in cnn:
        models[m.model_id] = {"family": m.family, "sequence": m.sequence, "label": m.label}
        if m.family == "attention_mil":  # what rebuilds each fold model's network (tuned or not)
            models[m.model_id]["settings"] = {u.job.id: u.info["settings"] for u in scoring_test(grid.units[m.model_id])}
    tuning = (call.up("tune").best.to_dict("records") if call.has("tune") else [])
    validation["tuning"] = [{k: r[k] for k in ("model_id", "scope", "metric", "best_score", "params")}
                            for r in tuning]
    write_bundle(call.out("model/"), cfg=cfg, models=models,
                 units=units, weights={m: weights[m] for m in members}, thresholds=thresholds,
                 internal_test=test[["label"] + bundled].reset_index(drop=True),
                 cohort_summary=summary, validation=validation, model_card=card,
                 run_name=paths.root.name)


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as plain records, NaN as None (JSON null, not the invalid ``NaN``)."""
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
            for r in df.to_dict("records")]


def load_bundle_step(call: StepCall):
    return call.paths.bundle
