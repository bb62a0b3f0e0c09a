"""Every path of a run folder, in one place (the map is ``docs/architecture.md``).

One run = one folder ``<out>/<run_name>/``. Each artifact below has exactly one writer, a step
of :mod:`alnm_core.run.steps` (named beside each path); notebooks and the report only read them.

Example:
    >>> p = RunPaths(Path("reports/demo"))
    >>> p.predictions("T2WI").as_posix()
    'reports/demo/artifacts/predictions/T2WI.csv'
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunPaths:
    """The files and folders of one run."""

    root: Path

    # ---------------------------------------------------------------- the run itself
    @property
    def run_json(self) -> Path:
        """Provenance and step records (writer: :mod:`alnm_core.run.record`)."""
        return self.root / "run.json"

    @property
    def lock(self) -> Path:
        """Ownership of the folder while a run uses it (writer: :mod:`alnm_core.run.lock`)."""
        return self.root / ".alnm-run.lock"

    @property
    def report(self) -> Path:
        """The self-contained HTML report (writer: :mod:`alnm_core.report.html`)."""
        return self.root / "report.html"

    @property
    def notebooks(self) -> Path:
        """Executed notebooks (writer: :mod:`alnm_core.run.pipeline`, through papermill)."""
        return self.root / "notebooks"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    # ---------------------------------------------------------------- step: prepare
    @property
    def splits(self) -> Path:
        """``patient_id, label, split, fold`` (step ``prepare``)."""
        return self.artifacts / "splits.csv"

    @property
    def folds(self) -> Path:
        """``patient_id, repeat, fold`` of the development patients, k-fold only (step ``prepare``)."""
        return self.artifacts / "folds.csv"

    # ---------------------------------------------------------------- step: describe_cohort
    @property
    def table1(self) -> Path:
        """Table 1 for all patients and the test set (step ``describe_cohort``)."""
        return self.artifacts / "table1.csv"

    # ---------------------------------------------------------------- step: extract_rois
    def roi(self, seq: str) -> Path:
        """Crops of one sequence (step ``extract_rois``)."""
        return self.artifacts / "roi" / f"{seq}.npz"

    # ---------------------------------------------------------------- step: train_unit
    def models(self, seq: str) -> Path:
        """Folder of a sequence's trained models, one sub-folder per training unit."""
        return self.artifacts / "models" / seq

    def unit_dir(self, seq: str, unit: str) -> Path:
        """One training unit (``holdout``, or ``r<repeat>-f<fold>``) of a sequence."""
        return self.models(seq) / unit

    def checkpoint(self, seq: str, unit: str) -> Path:
        """Selected weights of a unit (step ``train_unit``)."""
        return self.unit_dir(seq, unit) / "checkpoint.pt"

    def resume_state(self, seq: str, unit: str) -> Path:
        """Model, optimiser and RNG state after the last epoch (step ``train_unit``; removed
        when the training has finished unless ``train.keep_resume_state``)."""
        return self.unit_dir(seq, unit) / "last.pt"

    def history(self, seq: str, unit: str) -> Path:
        """Per-epoch loss, AUC and time of a unit (step ``train_unit``)."""
        return self.unit_dir(seq, unit) / "history.csv"

    def unit_predictions(self, seq: str, unit: str) -> Path:
        """Slice-level predictions of a unit for every patient it predicts (step ``train_unit``)."""
        return self.unit_dir(seq, unit) / "predictions.csv"

    def unit_roles(self, seq: str, unit: str) -> Path:
        """``patient_id, label, role`` of a unit: whom it fitted, selected on, predicted (step
        ``train_unit``)."""
        return self.unit_dir(seq, unit) / "roles.csv"

    def unit_record(self, seq: str, unit: str) -> Path:
        """Key, selected epoch, timing and device of a unit (step ``train_unit``)."""
        return self.unit_dir(seq, unit) / "unit.json"

    # ---------------------------------------------------------------- step: train (collect)
    def predictions(self, name: str) -> Path:
        """Patient-level predictions of a model (steps ``train``: a sequence; ``fuse``:
        ``ensemble``; ``evaluate``: ``clinical``; ``radiomics``: ``radiomics``, one column per
        radiomics model)."""
        return self.artifacts / "predictions" / f"{name}.csv"

    def slice_predictions(self, seq: str) -> Path:
        """Slice-level predictions of a sequence, every unit (step ``train``)."""
        return self.artifacts / "predictions" / f"{seq}_slices.csv"

    def unit_patient_predictions(self, seq: str) -> Path:
        """Patient-level predictions of each unit of a sequence, long form with ``repeat`` and
        ``fold`` (step ``train``): the fold spread comes from here."""
        return self.artifacts / "predictions" / f"{seq}_units.csv"

    # ---------------------------------------------------------------- step: radiomics
    def radiomics_features(self, seq: str) -> Path:
        """``patient_id`` and the radiomics features of one sequence (step ``radiomics_features``)."""
        return self.artifacts / "radiomics" / f"{seq}.csv"

    @property
    def radiomics_model(self) -> Path:
        """Selected features and coefficients of each radiomics model refitted on the development
        set, with how often the fold models selected them (step ``radiomics``)."""
        return self.artifacts / "radiomics_model.csv"

    # ---------------------------------------------------------------- step: fuse
    @property
    def ensemble_weights(self) -> Path:
        """Accuracies, weights and stacking coefficients per base model (step ``fuse``)."""
        return self.artifacts / "ensemble_weights.csv"

    # ---------------------------------------------------------------- step: evaluate
    @property
    def table3(self) -> Path:
        """Diagnostic metrics with CIs, one row per model and operating point (step ``evaluate``)."""
        return self.artifacts / "table3.csv"

    @property
    def delong(self) -> Path:
        """Paired DeLong tests of every pair of models (step ``evaluate``)."""
        return self.artifacts / "delong.csv"

    @property
    def delong_fusion(self) -> Path:
        """The fusion against each base model: the paper's family of comparisons (step ``evaluate``)."""
        return self.artifacts / "delong_fusion.csv"

    @property
    def delong_radiomics(self) -> Path:
        """The CNNs against the radiomics and clinical-radiomics baselines: their own family of
        comparisons (step ``evaluate``, with ``radiomics.enabled``)."""
        return self.artifacts / "delong_radiomics.csv"

    @property
    def calibration(self) -> Path:
        """Brier score, calibration intercept and slope per model (step ``evaluate``)."""
        return self.artifacts / "calibration.csv"

    @property
    def subgroups(self) -> Path:
        """Test AUCs per field strength with the unpaired DeLong test (step ``evaluate``)."""
        return self.artifacts / "subgroups.csv"

    @property
    def cv_summary(self) -> Path:
        """Out-of-fold vs test AUC and the spread over folds and repeats (step ``evaluate``)."""
        return self.artifacts / "cv_summary.csv"

    # ---------------------------------------------------------------- step: bundle
    @property
    def bundle(self) -> Path:
        """The trained study as a model bundle (step ``bundle``; see :mod:`alnm_core.bundle`)."""
        return self.root / "model"

    def make(self) -> "RunPaths":
        """Create the run's folders (idempotent)."""
        for p in (self.notebooks, self.artifacts / "roi", self.artifacts / "models",
                  self.artifacts / "predictions"):
            p.mkdir(parents=True, exist_ok=True)
        return self
