"""The study's step graph and notebooks, declared once.

This is the one place the graph lives: the runner, the order, the steps a complete run must
record, the cache keys, which notebook may run when, ``alnm status`` and the step table of
``docs/architecture.md`` (:func:`markdown_table`, checked by a test) are all derived from
:data:`STEPS` and :data:`NOTEBOOKS`.

Why our own small registry rather than Ploomber, Kedro or Snakemake: the three declare a task's
upstream and products once, as here, and Kedro refuses two writers of one output, as here. But
Snakemake and Ploomber decide staleness by file times or source hashes and run tasks as scripts
or notebooks; Kedro wants its project layout, a data catalog and its own runners. Our steps are
Python functions that must pass results in memory to the notebooks' kernels and to Ray workers,
are keyed on configuration values and cohort contents (a rerun after ``git checkout`` must not
recompute), fan out per sequence, and must explain why a step is stale by naming the
configuration key that changed. That is about 300 lines (:mod:`alnm_core.run.graph`); adopting
one of them would bring a larger dependency and still need most of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import StudyConfig
from ..runfolder.paths import RunPaths
from . import steps_bundle as B
from . import steps_data as D
from . import steps_eval as V
from . import steps_mil as M
from . import steps_train as T
from .graph import Cond, Graph, Output, Runner, Step

KFOLD = Cond("k-fold", lambda c: c.split.scheme == "kfold")
RADIOMICS = Cond("radiomics.enabled", lambda c: c.radiomics.enabled)
SLICE_VOTE = Cond("slice_vote in train.models", lambda c: "slice_vote" in c.train.models)
MIL = Cond("attention_mil in train.models", lambda c: "attention_mil" in c.train.models)
TUNE = Cond("tune.enabled", lambda c: c.tune.enabled)

#: every step of a study, in a valid order (upstream first)
STEPS: tuple[Step, ...] = (
    Step(name="prepare", compute=D.compute_prepare, load=D.load_prepare,
         config=("split", "seed", "sequences", "input"), files=D.manifest_digest, version=2,
         outputs=(Output(path="artifacts/splits.csv"), Output(path="artifacts/folds.csv")),
         doc="validates the cohort; the patient-level split (test fixed first) and the folds"),
    Step(name="describe_cohort", compute=D.compute_describe_cohort, load=D.load_describe_cohort,
         upstream=("prepare",), version=5,
         config=("stats.categorical_test", "stats.categorical_test_test_set", "stats.continuous_test",
                 "stats.ordinal_test", "stats.normality_test", "stats.alpha", "roi.on_error"),
         outputs=(Output(path="artifacts/table1.csv"), Output(path="artifacts/table1_partitions.csv"),
                  Output(path="artifacts/missing_data.csv")),
         doc="Table 1 (all patients, test set), characteristics by partition, missing data"),
    Step(name="roi", compute=D.compute_roi, load=D.load_roi, per_sequence=True,
         config=("roi", "input.max_voxels", "input.max_files"),
         files=D.sequence_files, version=2, outputs=(Output(path="artifacts/roi/{seq}.npz"),),
         doc="tumour crops of every patient (exclusions and warnings in run.json)"),
    Step(name="radiomics_features", compute=D.compute_radiomics_features, load=D.load_radiomics_features,
         per_sequence=True, when=RADIOMICS, files=D.sequence_files, version=2,
         config=("radiomics.feature_classes", "radiomics.bin_width", "radiomics.resample_mm",
                 "radiomics.normalize", "radiomics.on_error", "roi.dwi_b_value", "roi.dce_phase",
                 "roi.series_description", "input.max_voxels", "input.max_files"),
         outputs=(Output(path="artifacts/radiomics/{seq}.csv"),),
         doc="pyradiomics features from the image and mask the crops come from"),
    Step(name="tune", compute=M.compute_tune, load=M.load_tune, when=TUNE,
         upstream=("prepare", "roi:*"), config=("tune", "train", "mil", "split", "seed"), version=1,
         outputs=(Output(path="artifacts/tune_trials.csv"), Output(path="artifacts/tune_folds.csv"),
                  Output(path="artifacts/tune_best.csv"), Output(path="artifacts/tune/")),
         doc="the hyperparameter search on inner folds of the development patients (nested: per outer fold)"),
    Step(name="train_units", compute=T.compute_train_units, load=T.load_train_units,
         upstream=("prepare", "roi:*", "tune"), config=("train", "mil", "split", "seed"), version=3,
         outputs=(Output(path="artifacts/models/"),),
         doc="every training unit of every CNN model (one per model and fold, and the final refit), via the executor"),
    Step(name="train", compute=T.compute_train, load=T.load_train, per_sequence=True, when=SLICE_VOTE,
         upstream=("prepare", "roi:*", "train_units"), config=("train.aggregation",), version=3,
         outputs=(Output(path="artifacts/predictions/slice_vote_{seq}.csv"),
                  Output(path="artifacts/predictions/slice_vote_{seq}_slices.csv"),
                  Output(path="artifacts/predictions/slice_vote_{seq}_units.csv")),
         doc="the slice-vote CNN's patient predictions (out-of-fold for development patients)"),
    Step(name="describe_model", compute=T.compute_describe_model, load=T.load_describe_model,
         per_sequence=True, when=SLICE_VOTE, upstream=("roi", "train_units", "train"),
         config=("stats.threshold", "split.scheme"), version=2,
         outputs=(Output(path="artifacts/per_split/slice_vote_{seq}.csv"),
                  Output(path="artifacts/per_split/slice_vote_{seq}_flags.csv"),
                  Output(path="artifacts/gradcam/slice_vote_{seq}.npz")),
         doc="per-split AUCs with CIs and Grad-CAM maps of test patients (notebook 3)"),
    Step(name="train_mil", compute=M.compute_train_mil, load=M.load_train_mil, per_sequence=True, when=MIL,
         upstream=("prepare", "roi:*", "train_units"), version=1,
         outputs=(Output(path="artifacts/predictions/attention_mil_{seq}.csv"),
                  Output(path="artifacts/predictions/attention_mil_{seq}_units.csv"),
                  Output(path="artifacts/predictions/attention_mil_{seq}_attention.csv")),
         doc="the attention-MIL model's patient predictions and slice attention"),
    Step(name="describe_mil", compute=M.compute_describe_mil, load=M.load_describe_mil, per_sequence=True,
         when=MIL, upstream=("train_mil",), config=("stats.threshold", "split.scheme"), version=1,
         outputs=(Output(path="artifacts/per_split/attention_mil_{seq}.csv"),
                  Output(path="artifacts/per_split/attention_mil_{seq}_flags.csv")),
         doc="per-split AUCs with CIs of the MIL model (notebook 3)"),
    Step(name="mil_attention", compute=M.compute_mil_attention, load=M.load_mil_attention, when=MIL,
         upstream=("train_mil:*",), version=1, outputs=(Output(path="artifacts/mil_attention.csv"),),
         doc="every MIL model's slice attention: model_id, patient_id, sequence, slice, weight"),
    Step(name="fuse", compute=V.compute_fuse, load=V.load_fuse, upstream=("train:*", "train_mil:*"),
         config=("ensemble", "stats.threshold", "split.scheme"), version=2,
         outputs=(Output(path="artifacts/predictions/ensemble.csv"), Output(path="artifacts/ensemble_weights.csv")),
         doc="the weighted vote of the members (paper eq. 2-3) and its alternatives"),
    Step(name="clinical", compute=V.compute_clinical, load=V.load_clinical, upstream=("prepare",), version=2,
         config=("clinical.covariates",),
         outputs=(Output(path="artifacts/predictions/clinical.csv"),),
         doc="the clinical baseline (logistic: age, size, margin, TIC), cross-fitted"),
    Step(name="radiomics", compute=V.compute_radiomics, load=V.load_radiomics, when=RADIOMICS,
         upstream=("prepare", "roi:*", "radiomics_features:*"), version=2,
         config=("radiomics.penalty", "radiomics.corr_threshold", "radiomics.inner_folds", "seed",
                 "clinical.covariates"),
         outputs=(Output(path="artifacts/predictions/radiomics.csv"), Output(path="artifacts/radiomics_model.csv")),
         doc="the radiomics and clinical-radiomics models, cross-fitted"),
    Step(name="evaluate", compute=V.compute_evaluate, load=V.load_evaluate,
         upstream=("prepare", "train:*", "train_mil:*", "fuse", "clinical", "radiomics"), version=9,
         config=("stats", "ensemble.weights_from", "split.scheme", "seed", "clinical.covariates", "train.arch",
                 "train.in_channels"),
         outputs=(Output(path="artifacts/predictions/models.csv"), Output(path="artifacts/table3.csv"),
                  Output(path="artifacts/flags.csv"), Output(path="artifacts/epv.csv"),
                  Output(path="artifacts/delong.csv"),
                  Output(path="artifacts/calibration.csv"), Output(path="artifacts/reliability.csv"),
                  Output(path="artifacts/decision_curve.csv"), Output(path="artifacts/subgroups.csv"),
                  Output(path="artifacts/cv_summary.csv", when=KFOLD)),
         doc="Table 3, DeLong tests by family (primary, exploratory), calibration before and after "
             "recalibration, decision curves, subgroups, CV summary"),
    Step(name="crosscheck", compute=V.compute_crosscheck, load=V.load_crosscheck, version=1,
         upstream=("prepare", "describe_cohort", "train:*", "train_mil:*", "describe_model:*", "describe_mil:*",
                   "evaluate"),
         outputs=(Output(path="artifacts/crosscheck.csv"),),
         doc="the reviewer's cross-check: every headline number re-derived by independent code"),
    Step(name="bundle", compute=B.compute_bundle, load=B.load_bundle_step,
         upstream=("prepare", "train_units", "fuse", "evaluate", "tune"), version=3,
         config=("profile", "seed", "sequences", "split", "roi", "train", "mil", "tune", "ensemble", "radiomics",
                 "clinical", "stats", "input"),
         outputs=(Output(path="model/"),),
         doc="the model bundle: weights, bundle.json, model card, checksums"),
)

#: configuration keys no step reads, and why (a test checks every other key is declared)
NOT_READ = {
    "run": "where the training grid runs (local or Ray), never what it computes",
    "phantom": "the synthetic cohort `alnm demo` writes before a run (the cohort is the input)",
}


@dataclass(frozen=True, kw_only=True)
class Notebook:
    """A notebook of the suite, the report section it becomes, and the steps it shows."""

    stem: str
    number: str
    title: str
    shows: tuple[str, ...]  # step names ("roi:*": every sequence; per-sequence: its own)
    per_sequence: bool = False
    needs_figures: bool = True

    def instances(self, graph: Graph, seq: str | None) -> list[str]:
        out = []
        for s in self.shows:
            base, _, which = s.partition(":")
            if base not in graph.steps:
                continue
            if graph.steps[base].per_sequence:
                out += [f"{base}:{q}" for q in graph.cfg.sequences] if which == "*" else [f"{base}:{seq}"]
            else:
                out.append(base)
        return [i for i in out if i in graph.by_name]

    def title_for(self, seq: str | None) -> str:
        return f"{self.title}: {seq}" if self.per_sequence and seq else self.title


NOTEBOOKS: tuple[Notebook, ...] = (
    Notebook(stem="01_cohort_statistics", number="1", title="Cohort and Table 1",
             shows=("describe_cohort", "roi:*")),
    Notebook(stem="02_roi_cropping", number="2", title="ROI extraction and quality control",
             shows=("prepare", "roi:*")),
    Notebook(stem="03_train_sequence", number="3", title="Per-sequence CNN",
             shows=("train", "describe_model", "train_mil", "describe_mil", "tune"), per_sequence=True),
    Notebook(stem="04_ensemble_fusion", number="4", title="Ensemble fusion", shows=("fuse",), needs_figures=False),
    Notebook(stem="05_roc_delong", number="5", title="Evaluation: Table 3, ROC, DeLong", shows=("evaluate",)),
    Notebook(stem="06_reviewer_crosscheck", number="6", title="Reviewer's cross-check",
             shows=("crosscheck",), needs_figures=False),
)


def graph_for(cfg: StudyConfig) -> Graph:
    """The study's step instances for ``cfg``."""
    return Graph(STEPS, cfg)


def runner_for(paths: RunPaths, cfg: StudyConfig, **kw) -> Runner:
    """A :class:`~alnm_core.run.graph.Runner` of the study's steps in ``paths``."""
    return Runner(paths, cfg, STEPS, **kw)


def notebook_jobs(cfg: StudyConfig) -> list[tuple[Notebook, str | None, str]]:
    """``(notebook, sequence, output file name)`` of every notebook a run executes, in report order."""
    jobs = []
    for nb in NOTEBOOKS:
        if nb.per_sequence:
            jobs += [(nb, s, f"{nb.stem}_{s}.ipynb") for s in cfg.sequences]
        else:
            jobs.append((nb, None, f"{nb.stem}.ipynb"))
    return jobs


def markdown_table(cfg: StudyConfig | None = None) -> str:
    """The step table of ``docs/architecture.md``, generated from :data:`STEPS`."""
    rows = ["| step | upstream | reads (config) | writes | what |", "| --- | --- | --- | --- | --- |"]
    for s in STEPS:
        name = f"`{s.name}:<SEQ>`" if s.per_sequence else f"`{s.name}`"
        if s.when is not None:
            name += f" ({s.when.text})"
        ups = ", ".join(f"`{u}`" for u in s.upstream) or "—"
        conf = ", ".join(f"`{c}`" for c in s.config) + (" + cohort files" if s.files is not None else "")
        outs = ", ".join(f"`{o.path.replace('{seq}', '<SEQ>')}`" + (f" ({o.when.text})" if o.when else "")
                         for o in s.outputs)
        rows.append(f"| {name} | {ups} | {conf or '—'} | {outs} | {s.doc} |")
    return "\n".join(rows)


BEGIN, END = "<!-- steps:begin (generated by alnm_core.run.registry.markdown_table) -->", "<!-- steps:end -->"


def write_docs(doc: Path) -> bool:
    """Replace the generated step table in ``doc``; returns whether it changed."""
    text = doc.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n{markdown_table()}\n{END}{tail}"
    if new != text:
        doc.write_text(new)
    return new != text


if __name__ == "__main__":  # python -m alnm_core.run.registry docs/architecture.md
    import sys

    print("updated" if write_docs(Path(sys.argv[1])) else "already up to date")
