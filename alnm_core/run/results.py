"""What the study's steps return: keyword-only frozen records (never positional tuples).

Each is what a step's ``load`` reads back from the step's artifacts, so a notebook, the report
and the next step see the same thing whether the step just ran or ran in an earlier process.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """The validated cohort and its patient-level split (step ``prepare``)."""

    cohort: pd.DataFrame
    splits: pd.DataFrame
    folds: pd.DataFrame | None  # k-fold only
    cohort_dir: Path


@dataclass(frozen=True, kw_only=True)
class CohortResult:
    """Table 1 (step ``describe_cohort``)."""

    cohort: pd.DataFrame
    splits: pd.DataFrame
    data: pd.DataFrame  # cohort + ``part`` (train/val/dev/test) + ``fold``
    table1: pd.DataFrame  # both tables, ``population`` = All patients / Test set
    flow: pd.DataFrame  # patients and events per split
    partitions: pd.DataFrame  # characteristics of development vs test patients
    missing: pd.DataFrame  # per variable: missing values and their handling


@dataclass(frozen=True, kw_only=True)
class RoiResult:
    """One sequence's crops (step ``roi:<SEQ>``)."""

    sequence: str
    crops: Any  # alnm_core.roi.SequenceCrops
    exclusions: list[dict]  # patient_id, sequence, reason, file
    warnings: list[dict]  # patient_id, sequence, warning
    summary: dict  # patients, crops, per patient mean/min/max, by split, shape, value range


@dataclass(frozen=True, kw_only=True)
class UnitResult:
    """One training unit of the grid (a model and one fit of the protocol)."""

    job: Any  # alnm_core.run.steps_train.TrainJob
    key: str
    history: pd.DataFrame
    predictions: pd.DataFrame  # slice level (slice vote) or patient level (MIL); split = role
    info: dict  # best_epoch, seconds, device, crops_per_s, resumed_from_epoch, ...
    skipped: bool
    roles: pd.DataFrame  # patient_id, label, role


@dataclass(frozen=True, kw_only=True)
class GridResult:
    """Every training unit of every CNN model (step ``train_units``)."""

    units: dict[str, list[UnitResult]]  # model_id -> its units in grid order


@dataclass(frozen=True, kw_only=True)
class ModelPredictions:
    """A trained CNN's patient-level predictions (steps ``train:<SEQ>``, ``train_mil:<SEQ>``)."""

    model_id: str
    sequence: str
    units: list[UnitResult]
    patients: pd.DataFrame  # predictions/<model_id>.csv
    slices: pd.DataFrame | None  # predictions/<model_id>_slices.csv (slice vote)
    unit_patients: pd.DataFrame  # predictions/<model_id>_units.csv


@dataclass(frozen=True, kw_only=True)
class ModelSummary:
    """Per-split metrics and the Grad-CAM panels of a sequence's CNN (step ``describe_model``)."""

    model_id: str
    per_split: pd.DataFrame  # split, patients, n_pos, auc + CIs, acc/sen/spe + CIs, tp fp fn tn
    flags: pd.DataFrame  # model_id, model, flag, detail (as Table 3's)
    gradcam: dict = field(default_factory=dict)  # crops, heatmaps, table (patient_id, label, prob, correct)


@dataclass(frozen=True, kw_only=True)
class Fusion:
    """The fused predictions and the weights (step ``fuse``)."""

    ensemble: pd.DataFrame  # patient_id, split, label, members, fusion columns (by model_id)
    weights: pd.DataFrame  # per member: accuracies, weights, stacking coefficients
    members: list[str]


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """A cross-fitted baseline's predictions (step ``clinical``)."""

    model_id: str
    predictions: pd.DataFrame  # patient_id, split, label, prob


@dataclass(frozen=True, kw_only=True)
class RadiomicsResult:
    """The radiomics and clinical-radiomics baselines (step ``radiomics``)."""

    features: dict[str, pd.DataFrame]
    exclusions: list[dict]
    predictions: pd.DataFrame  # patient_id, split, label, one column per radiomics model_id
    coefficients: pd.DataFrame
    seconds_per_patient: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """Everything Table 3, the ROC section, DeLong tests, calibration and subgroups show."""

    predictions: pd.DataFrame  # predictions/models.csv: patient_id, split, label, one column per model_id
    models: Any  # alnm_core.model_registry.ModelSet
    table3: pd.DataFrame
    flags: pd.DataFrame  # model_id, model, flag (chance-level, one class), detail
    epv: pd.DataFrame  # events per candidate predictor of each model family
    delong: pd.DataFrame  # every pair of the shown models: family, role, p adjusted within its family
    calibration: pd.DataFrame
    reliability: pd.DataFrame
    decision_curve: pd.DataFrame
    subgroups: pd.DataFrame
    cv_summary: pd.DataFrame | None = None
    radiomics: RadiomicsResult | None = None
    recalibration: pd.DataFrame | None = None  # calibration before/after, per model (stats.recalibration)

    def family(self, role: str | None = None, name: str | None = None) -> pd.DataFrame:
        """The DeLong tests of one family (``name``, e.g. ``exploratory: attention MIL vs slice
        vote``) or of one role (``primary``, ``exploratory``, ``none``)."""
        d = self.delong
        return d[(d.role == role) if name is None else (d.family == name)].reset_index(drop=True)

    @property
    def delong_primary(self) -> pd.DataFrame:
        return self.family("primary")

    @property
    def names(self) -> dict[str, str]:
        """``model_id -> label`` of every model."""
        return self.models.labels()

    @property
    def test(self) -> pd.DataFrame:
        return self.predictions[self.predictions.split == "test"]
