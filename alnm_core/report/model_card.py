"""The model card of a bundle (``MODEL_CARD.md``), from a template with every value escaped.

The words are ``templates/model_card.md``; the numbers and names come from the run. A run name,
a field-strength label or a model label is data, so each reaches the card through
:func:`alnm_core.report.escape.md_string` and can never become markup in a reader's viewer.
"""
from __future__ import annotations

from importlib import resources
from typing import Any

from .escape import Safe, fmt_number, md_string


def _ci(est: Any, lo: Any, hi: Any) -> str:
    e = fmt_number(est)
    return e if e == "—" else f"{e} ({fmt_number(lo)}-{fmt_number(hi)})"


def model_card(*, info: dict, cfg, summary: dict, validation: dict, members: list[str],
               member_labels: dict[str, str], phantom: bool, flags: list[str] | None = None) -> str:
    """The card's Markdown.

    Args:
        info: ``run.json`` (run name, created, git commit).
        cfg: the resolved configuration.
        summary: the training cohort's summary (counts, field strengths, age and size).
        validation: Table 3 rows (``test``), calibration rows, cross-validation rows (``cv``)
            and the AUC CI method, of the shown models.
        members: the fused model ids; member_labels: their labels.
        phantom: trained on the synthetic phantom.
        flags: models flagged in the report (chance-level or one-class), each a sentence.
    """
    import alnm_core

    template = resources.files("alnm_core.report").joinpath("templates/model_card.md").read_text()
    rows = "\n".join(md_string("| {model} | {thr} | {auc} | {sen} | {spe} | {ppv} | {npv} |",
                               model=m["model"], thr=f"{fmt_number(m['threshold'])} ({m['threshold_from']})",
                               auc=_ci(m["auc"], m["auc_low"], m["auc_high"]),
                               sen=_ci(m["sen"], m.get("sen_low"), m.get("sen_high")),
                               spe=_ci(m["spe"], m.get("spe_low"), m.get("spe_high")),
                               ppv=_ci(m["ppv"], m.get("ppv_low"), m.get("ppv_high")),
                               npv=_ci(m["npv"], m.get("npv_low"), m.get("npv_high")))
                     for m in validation["test"])
    cal = "\n".join(md_string("| {model} | {p} | {b} | {i} | {s} |", model=c["model"],
                              p=c.get("probabilities", "as predicted"), b=fmt_number(c["brier"]),
                              i=fmt_number(c["intercept"]), s=fmt_number(c["slope"]))
                    for c in validation["calibration"])
    cv = "\n".join(md_string("- {model}: out-of-fold AUC {auc}{spread}", model=m["model"],
                             auc=_ci(m["auc_oof"], m["auc_oof_low"], m["auc_oof_high"]),
                             spread=(f"; fold AUCs {fmt_number(m['fold_auc_mean'])} ± "
                                     f"{fmt_number(m['fold_auc_sd'])} over {int(m['fold_n'])} folds"
                                     if m.get("fold_n") else ""))
                   for m in validation.get("cv", []))
    s = cfg.split
    design = (f"patient-level stratified {s.n_folds}-fold cross-validation ({s.repeats} repeat(s)); "
              "each model was then refitted on every development patient, and that final model scored "
              "the test set and is the one in this bundle" if s.scheme == "kfold" else
              f"a validation part ({s.val_fraction:.0%} of the development set) chose each model's checkpoint")
    fit = "out-of-fold" if s.scheme == "kfold" else "validation"
    warn = ("\n\n**Trained on the synthetic phantom.** These weights learnt a designed signal in synthetic "
            "images; they have no clinical meaning and must not be applied to patients.\n" if phantom else "")
    flag_text = "".join(md_string("\n- {f}", f=f) for f in (flags or []))
    return md_string(
        template, run_name=info.get("run_name"), created=info.get("created"), version=alnm_core.__version__,
        git_commit=info.get("git_commit"), sequences=", ".join(cfg.sequences),
        members=", ".join(member_labels.get(m, m) for m in members),
        weights_from="test (paper-literal, optimistic)" if cfg.ensemble.weights_from == "test" else fit,
        phantom_warning=Safe(warn), n_patients=summary["n_patients"], n_alnm=summary["n_alnm"],
        prevalence=f"{summary['prevalence']:.1%}", n_development=summary["n_development"],
        n_test=summary["n_test"],
        field_strength=", ".join(f"{k}: {v}" for k, v in summary["field_strength"].items()),
        age=f"{fmt_number(summary['age_mean'], 1)} ± {fmt_number(summary['age_sd'], 1)} years",
        size=f"{fmt_number(summary['size_mean'], 2)} ± {fmt_number(summary['size_sd'], 2)} cm",
        crop=f"{cfg.roi.size} × {cfg.roi.size} px, {cfg.roi.margin_mm:g} mm margin",
        b_value="highest" if cfg.roi.dwi_b_value is None else f"{cfg.roi.dwi_b_value:g}",
        dce_phase=cfg.roi.dce_phase, design=design, cv_lines=Safe(cv),
        auc_ci_method=validation["ci_method"], ppv_npv_method=validation.get("ppv_npv_method", ""),
        metric_rows=Safe(rows), calibration_rows=Safe(cal),
        flags=Safe(("\n\n**Flagged in the report:**" + flag_text) if flags else ""))
