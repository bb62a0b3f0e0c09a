"""Every path of a run folder, in one place.

One run = one folder ``<out>/<run_name>/``. Which step writes which artifact is declared once,
in the step registry (:mod:`alnm_core.run.registry`); this module only knows where files live.
Notebooks, the report and the cross-check read them.

Example:
    >>> p = RunPaths(Path("reports/demo"))
    >>> p.predictions("slice_vote_T2WI").as_posix()
    'reports/demo/artifacts/predictions/slice_vote_T2WI.csv'
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
        """Provenance and step records (writer: :mod:`alnm_core.runfolder.record`)."""
        return self.root / "run.json"

    @property
    def lock(self) -> Path:
        """Ownership of the folder while a run uses it (writer: :mod:`alnm_core.runfolder.lock`)."""
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

    def artifact(self, relative: str) -> Path:
        """An artifact by its path relative to the run folder (as the step registry declares it)."""
        return self.root / relative

    # ---------------------------------------------------------------- cohort
    @property
    def splits(self) -> Path:
        """``patient_id, label, split, fold``."""
        return self.artifacts / "splits.csv"

    @property
    def folds(self) -> Path:
        """``patient_id, repeat, fold`` of the development patients (empty for hold-out)."""
        return self.artifacts / "folds.csv"

    @property
    def table1(self) -> Path:
        return self.artifacts / "table1.csv"

    def roi(self, seq: str) -> Path:
        """Crops of one sequence."""
        return self.artifacts / "roi" / f"{seq}.npz"

    # ---------------------------------------------------------------- trained models
    def models(self, model_id: str) -> Path:
        """Folder of a trained model's units (one sub-folder per training unit)."""
        return self.artifacts / "models" / model_id

    def unit_dir(self, model_id: str, unit: str) -> Path:
        """One training unit (``holdout``, or ``r<repeat>-f<fold>``) of a model."""
        return self.models(model_id) / unit

    def checkpoint(self, model_id: str, unit: str) -> Path:
        return self.unit_dir(model_id, unit) / "checkpoint.pt"

    def resume_state(self, model_id: str, unit: str) -> Path:
        """Model, optimiser and RNG state after the last epoch (removed once the unit finished,
        unless ``train.keep_resume_state``)."""
        return self.unit_dir(model_id, unit) / "last.pt"

    def history(self, model_id: str, unit: str) -> Path:
        return self.unit_dir(model_id, unit) / "history.csv"

    def unit_predictions(self, model_id: str, unit: str) -> Path:
        """Slice-level (slice vote) or patient-level (MIL) predictions of a unit."""
        return self.unit_dir(model_id, unit) / "predictions.csv"

    def unit_roles(self, model_id: str, unit: str) -> Path:
        """``patient_id, label, role`` of a unit: whom it fitted, selected on, predicted."""
        return self.unit_dir(model_id, unit) / "roles.csv"

    def unit_record(self, model_id: str, unit: str) -> Path:
        """Key, selected epoch, timing and device of a unit."""
        return self.unit_dir(model_id, unit) / "unit.json"

    # ---------------------------------------------------------------- predictions
    def predictions(self, name: str) -> Path:
        """Patient-level predictions of a model (by ``model_id``), or of a group of models
        (``ensemble``, ``radiomics``, ``models``: every model of the evaluation, wide)."""
        return self.artifacts / "predictions" / f"{name}.csv"

    def slice_predictions(self, model_id: str) -> Path:
        return self.artifacts / "predictions" / f"{model_id}_slices.csv"

    def unit_patient_predictions(self, model_id: str) -> Path:
        """Patient-level predictions of each unit, long form with ``repeat`` and ``fold``."""
        return self.artifacts / "predictions" / f"{model_id}_units.csv"

    def model_summary(self, model_id: str) -> Path:
        """Per-split AUC with CIs and the confusion counts at the operating threshold."""
        return self.artifacts / "per_split" / f"{model_id}.csv"

    def gradcam(self, model_id: str) -> Path:
        """Grad-CAM maps of the test patients shown in the report."""
        return self.artifacts / "gradcam" / f"{model_id}.npz"

    # ---------------------------------------------------------------- radiomics
    def radiomics_features(self, seq: str) -> Path:
        return self.artifacts / "radiomics" / f"{seq}.csv"

    @property
    def radiomics_model(self) -> Path:
        return self.artifacts / "radiomics_model.csv"

    # ---------------------------------------------------------------- fusion, evaluation
    @property
    def ensemble_weights(self) -> Path:
        return self.artifacts / "ensemble_weights.csv"

    @property
    def table3(self) -> Path:
        return self.artifacts / "table3.csv"

    @property
    def delong(self) -> Path:
        return self.artifacts / "delong.csv"

    @property
    def calibration(self) -> Path:
        return self.artifacts / "calibration.csv"

    @property
    def reliability(self) -> Path:
        return self.artifacts / "reliability.csv"

    @property
    def decision_curve(self) -> Path:
        return self.artifacts / "decision_curve.csv"

    @property
    def subgroups(self) -> Path:
        return self.artifacts / "subgroups.csv"

    @property
    def cv_summary(self) -> Path:
        return self.artifacts / "cv_summary.csv"

    @property
    def bundle(self) -> Path:
        """The trained study as a model bundle (see :mod:`alnm_core.bundle`)."""
        return self.root / "model"

    def make(self) -> "RunPaths":
        """Create the run's folders (idempotent)."""
        for p in (self.notebooks, self.artifacts / "roi", self.artifacts / "models",
                  self.artifacts / "predictions"):
            p.mkdir(parents=True, exist_ok=True)
        return self
