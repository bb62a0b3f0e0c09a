"""Study configuration: frozen dataclasses resolved from a profile, a YAML file and overrides.

A run is ``profile + optional YAML + --set key=value overrides``, resolved once by
:func:`resolve_config` and written to ``run.json``. Every key is checked: an unknown key or a
value of the wrong type raises :class:`ConfigError` naming the key, so a typo never passes
silently (papermill itself only warns on unknown parameters).

Example:
    >>> cfg = resolve_config("smoke", overrides=["train.epochs=3"])
    >>> cfg.train.epochs
    3
"""
from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

#: the built-in profiles (``alnm_core/profiles/<name>.yaml``), the one list every caller uses
PROFILES = ("smoke", "demo", "paper")
#: the paper's three sequences, the default of ``StudyConfig.sequences`` (defined once)
DEFAULT_SEQUENCES = ("T2WI", "DWI", "DCE")
#: the IBSI-oriented pyradiomics feature classes ``radiomics.feature_classes`` may name
RADIOMICS_FEATURE_CLASSES = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")


class ConfigError(ValueError):
    """A configuration key or value that cannot be used."""


@dataclass(frozen=True)
class PhantomConfig:
    """Settings of the synthetic cohort that ``alnm demo`` generates.

    Attributes:
        n_patients: number of patients.
        seed: random seed; the same seed gives byte-identical pixel data.
        matrix_scale: factor applied to the paper's Table 2 matrices (1.0 = paper size).
        strength_t2wi: how strongly the label shows on T2WI (oedema, margin), 0 = not at all.
        strength_dwi: how strongly the label lowers the tumour ADC on DWI.
        strength_dce: how strongly the label shows as rim enhancement on DCE.
    """

    n_patients: int = 120
    seed: int = 2022
    matrix_scale: float = 0.35
    strength_t2wi: float = 1.0
    strength_dwi: float = 0.5
    strength_dce: float = 0.05


@dataclass(frozen=True)
class SplitConfig:
    """Patient-level stratified split and validation design.

    The test set is fixed first (a ``split`` column in ``cohort.csv``, a ``test_where`` rule, or
    a stratified draw of ``test_size``) and never used before the final evaluation. The rest is
    the development set.

    Attributes:
        scheme: ``holdout`` (one model per sequence, a validation part carved from the
            development set) or ``kfold`` (patient-level stratified k-fold over the development
            set: one model per fold, every development patient predicted once per repeat by a
            model that never saw it; thresholds, ensemble weights and stacking are fitted on
            these out-of-fold predictions; the test set is scored by the fold models together).
        test_size: number of test patients (int >= 1) or a fraction in (0, 1).
        val_fraction: ``holdout``: share of the development set used for validation;
            ``kfold`` with ``train.selection=best_val_auc``: share of each fold model's training
            patients carved out to choose its checkpoint.
        n_folds: folds (``kfold``).
        repeats: repeated k-fold: each repeat draws new folds (``kfold``).
        use_manifest_split: honour a ``split`` column in cohort.csv when present.
        test_where: ``column=value``: every patient with that manifest value is the test set
            (e.g. ``field_strength=3T`` or ``site=B``: train on one scanner, test on the other);
            takes precedence over a ``split`` column.
    """

    scheme: Literal["holdout", "kfold"] = "holdout"
    test_size: float = 0.2
    val_fraction: float = 0.2
    n_folds: int = 5
    repeats: int = 1
    use_manifest_split: bool = True
    test_where: str = ""


@dataclass(frozen=True)
class RoiConfig:
    """ROI cropping (paper: per-slice bounding boxes, 224 x 224, min-max to [0, 1]).

    Attributes:
        size: output crop side in pixels.
        margin_mm: peritumoral margin added around the mask's bounding box, in millimetres.
        keep_aspect: pad the box to a square (in mm) before resizing instead of stretching.
        min_area_mm2: slices whose tumour area is below this are skipped.
        slices: which tumour slices to keep: all, the largest, or the central k.
        central_k: k for ``slices="central"``.
        dwi_b_value: b-value to use; None = the highest in the series.
        dce_phase: ``"peak"`` (peak relative enhancement of the ROI) or a 0-based phase index.
        on_error: ``fail`` stops at the first unusable patient; ``exclude`` lists it in
            ``run.json`` and the report and goes on without it.
        series_description: per sequence, a regular expression searched (case-insensitive)
            in SeriesDescription, choosing the series of a DICOM study folder that make the
            sequence (e.g. ``{"DWI": "diff|dwi"}``); several matching series are joined. A
            manifest column ``<SEQ>_series`` overrides it per patient. Not needed for folders
            holding one series.
    """

    size: int = 64
    margin_mm: float = 10.0
    keep_aspect: bool = True
    min_area_mm2: float = 4.0
    slices: Literal["all", "largest", "central"] = "all"
    central_k: int = 3
    dwi_b_value: float | None = None
    dce_phase: str = "peak"
    on_error: Literal["fail", "exclude"] = "fail"
    series_description: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """Per-sequence CNN training.

    Attributes:
        arch: torchvision ResNet depth.
        pretrained: load ImageNet weights (torchvision cache or ``weights_path``).
        weights_path: local ``.pth`` file with ImageNet weights.
        in_channels: 3 = grayscale crop repeated to RGB (ImageNet filters apply); 1 = single
            channel (first convolution's filters summed).
        epochs: training epochs.
        batch_size: mini-batch size.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        augment: random flips / 90-degree rotations / intensity jitter on training crops.
        class_weighting: ``balanced`` weights the loss by inverse class frequency.
        selection: checkpoint kept: best validation AUC or the last epoch.
        aggregation: slice -> patient probability: mean, max, or the largest-ROI slice.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        num_threads: CPU threads for torch (0 = torch default).
        keep_resume_state: keep ``last.pt`` (model, optimiser and RNG state) after a training
            has finished, so that a later run with more ``epochs`` continues from it instead of
            starting again; off by default (it is about four times the selected weights).
        checkpoint_dtype: precision of the saved selected weights: ``float16`` (half the disk;
            the weights are rounded before the unit predicts, so every prediction, in the run
            and by ``alnm predict``, comes from exactly what is saved) or ``float32``.
    """

    arch: Literal["resnet18", "resnet34", "resnet50"] = "resnet18"
    pretrained: bool = False
    weights_path: str | None = None
    in_channels: int = 3
    epochs: int = 12
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    augment: bool = True
    class_weighting: Literal["balanced", "none"] = "balanced"
    selection: Literal["best_val_auc", "last"] = "best_val_auc"
    aggregation: Literal["mean", "max", "largest"] = "mean"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int = 0
    keep_resume_state: bool = False
    checkpoint_dtype: Literal["float16", "float32"] = "float16"


@dataclass(frozen=True)
class EnsembleConfig:
    """Weighted voting (paper eq. 2-3).

    Attributes:
        weights_from: split whose accuracies set the weights; ``test`` is the paper-literal,
            optimistic variant.
    """

    weights_from: Literal["validation", "test"] = "validation"


@dataclass(frozen=True)
class RadiomicsConfig:
    """The radiomics and clinical-radiomics baselines (hand-crafted features from the same
    image and tumour mask the CNN crops come from; penalised logistic models fitted inside the
    development set exactly as the CNNs: out-of-fold and test predictions).

    Attributes:
        enabled: compute the baselines and show them beside the CNNs (Table 3, ROC, DeLong).
        feature_classes: pyradiomics feature classes, computed in 3D on the whole mask:
            ``shape``, ``firstorder``, ``glcm``, ``glrlm``, ``glszm``, ``gldm``, ``ngtdm``.
        bin_width: intensity bin width for discretisation (fixed bin size, IBSI), in the units
            of the image after normalisation (``normalize``: z-score x 100).
        resample_mm: isotropic voxel size the image and mask are resampled to before
            extraction (B-spline for the image, nearest neighbour for the mask); None keeps the
            acquired grid.
        normalize: z-score each image on all its voxels (scaled x 100) before discretisation
            (MRI intensities have no absolute unit); false uses the stored intensities.
        penalty: ``l1`` (lasso, liblinear) or ``elasticnet`` (saga, L1 ratio 0.2 / 0.5 / 0.8
            chosen with the penalty) for the logistic models.
        corr_threshold: robustness filter, fitted on each model's training patients only:
            near-constant features are dropped, and of each pair with |Spearman r| above this
            the later one (1.0: keep every non-constant feature).
        inner_folds: stratified folds of the inner cross-validation that chooses the penalty
            (AUC) inside each model's training patients.
        on_error: a patient whose features cannot be computed (e.g. a one-voxel tumour on a
            coarse DWI grid, which pyradiomics refuses): ``exclude`` lists it in ``run.json``
            and the report, and each model imputes its features by its training patients'
            medians (it keeps its CNN and clinical predictions); ``fail`` stops the run naming
            the patient, sequence and file.
    """

    enabled: bool = False
    feature_classes: tuple[str, ...] = RADIOMICS_FEATURE_CLASSES
    bin_width: float = 10.0
    resample_mm: float | None = 2.0
    normalize: bool = True
    penalty: Literal["l1", "elasticnet"] = "l1"
    corr_threshold: float = 0.9
    inner_folds: int = 5
    on_error: Literal["fail", "exclude"] = "exclude"


@dataclass(frozen=True)
class StatsConfig:
    """Statistical choices used by Table 1 and Table 3.

    Attributes:
        alpha: significance level.
        categorical_test: Table 1's test for categorical variables: ``auto`` (Pearson
            chi-square, Fisher's exact when an expected count < 5), ``chi2`` or ``fisher``.
        categorical_test_test_set: the same for the test-set table (``same`` = as above); the
            paper used chi-square for all patients and Fisher's exact test for its test set.
        continuous_test: ``welch+mannwhitney`` (a fixed rule: Welch's t is the shown p, the
            Mann-Whitney U p sits beside it; no pretest), ``auto`` (the two-stage SPSS rule:
            Student/Welch t when both groups pass the normality check, else Mann-Whitney; the
            paper profile), ``t``, ``welch`` or ``mannwhitney``.
        ordinal_test: ordered categorical variables (TIC curve type I < II < III): ``trend``
            (Cochran-Armitage trend test, R's ``prop.trend.test``; the nominal test beside it)
            or ``categorical`` (the rule of ``categorical_test``, as the paper).
        normality_test: ``shapiro`` or ``lilliefors`` drives ``auto``; both are reported.
        auc_ci: the headline AUC CI: ``logit_delong`` (DeLong's variance on the logit scale;
            the default, chosen by the committed coverage simulation, see
            docs/statistics-coverage.md), ``delong`` (as pROC), ``bootstrap`` (stratified
            percentile) or ``bca`` (stratified BCa bootstrap); the exact binomial CI of MedCalc
            and the paper is shown beside it.
        ppv_npv_method: ``exact`` (Clopper-Pearson; holds its coverage when the prevalence is
            estimated from the sample) or ``logit`` (Mercaldo 2007, as MedCalc) for PPV/NPV CIs.
        bootstrap_n: bootstrap replicates.
        threshold: probability threshold for the paper's operating point.
    """

    alpha: float = 0.05
    categorical_test: Literal["auto", "chi2", "fisher"] = "auto"
    categorical_test_test_set: Literal["same", "auto", "chi2", "fisher"] = "same"
    continuous_test: Literal["welch+mannwhitney", "auto", "t", "welch", "mannwhitney"] = "welch+mannwhitney"
    ordinal_test: Literal["trend", "categorical"] = "trend"
    normality_test: Literal["shapiro", "lilliefors"] = "shapiro"
    auc_ci: Literal["logit_delong", "delong", "bootstrap", "bca"] = "logit_delong"
    ppv_npv_method: Literal["exact", "logit"] = "exact"
    bootstrap_n: int = 2000
    threshold: float = 0.5


@dataclass(frozen=True)
class RunConfig:
    """Where and how the grid of training units runs; never what it computes.

    The same seeds give the same predictions with either executor (to 1e-6), so these keys are
    not part of any step's key, and a run folder may be resumed with other values (a run
    started locally can be finished on a cluster).

    Attributes:
        executor: ``local`` trains the units one after the other in this process; ``ray``
            submits each unit as a Ray task (``pip install 'alnm[ray]'``).
        ray_address: empty: Ray starts embedded on this machine for the run and stops with it;
            ``auto`` or ``HOST:PORT``: join a running cluster (``ray start --head``). Every
            node needs the same alnm installed and the run folder at the same path (a shared
            file system): workers read the crops from it and write their unit's folder.
        cpus_per_task: CPUs the scheduler reserves for one unit (fractions allowed).
        gpus_per_task: GPUs reserved for one unit; fractions pack units on one GPU (0.25: four
            trainings share a card). A Ray task with 0 sees no GPU and trains on the CPU.
        max_retries: how often a unit whose worker died (killed, out of memory, node lost) is
            started again; it resumes from its resume state. An error raised by the training
            itself is not retried: it stops the run.
    """

    executor: Literal["local", "ray"] = "local"
    ray_address: str = ""
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    max_retries: int = 2


@dataclass(frozen=True)
class StudyConfig:
    """The whole study's configuration, as resolved once per run."""

    profile: str = "demo"
    seed: int = 42
    sequences: tuple[str, ...] = DEFAULT_SEQUENCES
    phantom: PhantomConfig = field(default_factory=PhantomConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    roi: RoiConfig = field(default_factory=RoiConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    radiomics: RadiomicsConfig = field(default_factory=RadiomicsConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _check_value(key: str, value: Any, hint: Any) -> Any:
    """Coerce ``value`` to ``hint`` where lossless, else raise ConfigError naming ``key``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_value(key, value, a)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): _check_value(f"{key}.{k}", v, args[1]) for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_check_value(key, v, args[0]) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected text, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {hint}")  # pragma: no cover


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown key(s) {[prefix + u for u in unknown]}; known under "
            f"{prefix.rstrip('.') or 'top level'}: {sorted(names)}"
        )
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, prefix + name + ".")
        else:
            kwargs[name] = _check_value(prefix + name, value, hint)
    return cls(**kwargs)


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def profile_dict(name: str) -> dict[str, Any]:
    """The raw mapping of a built-in profile (``smoke``, ``demo`` or ``paper``)."""
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; choose one of {list(PROFILES)}")
    text = resources.files("alnm_core.profiles").joinpath(f"{name}.yaml").read_text()
    data = yaml.safe_load(text) or {}
    data["profile"] = name
    return data


def parse_override(item: str) -> dict[str, Any]:
    """Turn ``"train.epochs=5"`` into ``{"train": {"epochs": 5}}`` (value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r} has an empty key")
    value = yaml.safe_load(raw) if raw.strip() else None
    out: dict[str, Any] = {}
    cur = out
    parts = key.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


def resolve_config(
    profile: str = "demo",
    *,
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> StudyConfig:
    """Resolve ``profile`` + optional YAML file + ``key=value`` overrides into a StudyConfig.

    Args:
        profile: built-in profile name.
        config_file: YAML file whose keys override the profile's.
        overrides: ``section.key=value`` strings, applied last.

    Raises:
        ConfigError: unknown profile, key, or a value of the wrong type.
    """
    data = profile_dict(profile)
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        extra = yaml.safe_load(path.read_text()) or {}
        if not isinstance(extra, dict):
            raise ConfigError(f"config file {path}: expected a mapping at top level")
        data = _merge(data, extra)
    for item in overrides:
        data = _merge(data, parse_override(item))
    return config_from_dict(data)


def config_from_dict(data: dict[str, Any]) -> StudyConfig:
    """Build and validate a StudyConfig from a plain mapping (as stored in run.json)."""
    cfg = _build(StudyConfig, data)
    _check_ranges(cfg)
    return cfg


def _check_ranges(cfg: StudyConfig) -> None:
    problems = []
    if not cfg.sequences:
        problems.append("sequences: at least one sequence is needed")
    if len(set(cfg.sequences)) != len(cfg.sequences):
        problems.append(f"sequences: duplicated names in {list(cfg.sequences)}")
    if cfg.phantom.n_patients < 8:
        problems.append("phantom.n_patients: at least 8 patients are needed")
    if not 0 < cfg.phantom.matrix_scale <= 1:
        problems.append("phantom.matrix_scale: must be in (0, 1]")
    ts = cfg.split.test_size
    if not (0 < ts < 1 or (ts >= 1 and float(ts).is_integer())):
        problems.append("split.test_size: a fraction in (0, 1) or a whole number of patients")
    if not 0 < cfg.split.val_fraction < 1:
        problems.append("split.val_fraction: must be in (0, 1)")
    if cfg.split.n_folds < 2:
        problems.append("split.n_folds: at least 2")
    if cfg.split.repeats < 1:
        problems.append("split.repeats: at least 1")
    if cfg.split.test_where and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.+", cfg.split.test_where):
        problems.append(f"split.test_where: {cfg.split.test_where!r} is not of the form column=value")
    if cfg.roi.size < 16:
        problems.append("roi.size: at least 16 pixels")
    if cfg.roi.margin_mm < 0:
        problems.append("roi.margin_mm: must be >= 0")
    if cfg.roi.dce_phase != "peak" and not cfg.roi.dce_phase.isdigit():
        problems.append("roi.dce_phase: 'peak' or a phase index such as '3'")
    for seq, pattern in cfg.roi.series_description.items():
        if seq not in cfg.sequences:
            problems.append(f"roi.series_description.{seq}: not one of the sequences {list(cfg.sequences)}")
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"roi.series_description.{seq}: {pattern!r} is not a regular expression ({exc})")
    if cfg.train.epochs < 1 or cfg.train.batch_size < 1:
        problems.append("train.epochs and train.batch_size: at least 1")
    if cfg.train.in_channels not in (1, 3):
        problems.append("train.in_channels: 1 or 3")
    if cfg.train.lr <= 0:
        problems.append("train.lr: must be > 0")
    rc = cfg.radiomics
    unknown = sorted(set(rc.feature_classes) - set(RADIOMICS_FEATURE_CLASSES))
    if unknown or not rc.feature_classes:
        problems.append(f"radiomics.feature_classes: {unknown or 'empty'}; choose from "
                        f"{list(RADIOMICS_FEATURE_CLASSES)}")
    if rc.bin_width <= 0:
        problems.append("radiomics.bin_width: must be > 0")
    if rc.resample_mm is not None and rc.resample_mm <= 0:
        problems.append("radiomics.resample_mm: must be > 0 (or null: no resampling)")
    if not 0 < rc.corr_threshold <= 1:
        problems.append("radiomics.corr_threshold: must be in (0, 1]")
    if rc.inner_folds < 2:
        problems.append("radiomics.inner_folds: at least 2")
    if not 0 < cfg.stats.alpha < 1:
        problems.append("stats.alpha: must be in (0, 1)")
    if not 0 < cfg.stats.threshold < 1:
        problems.append("stats.threshold: must be in (0, 1)")
    if cfg.stats.bootstrap_n < 100:
        problems.append("stats.bootstrap_n: at least 100")
    r = cfg.run
    if r.cpus_per_task <= 0:
        problems.append(f"run.cpus_per_task: must be > 0 (got {r.cpus_per_task:g})")
    if r.gpus_per_task < 0:
        problems.append(f"run.gpus_per_task: must be >= 0 (got {r.gpus_per_task:g}; 0.25 packs four "
                        "units on one GPU)")
    elif r.gpus_per_task > 1 and not float(r.gpus_per_task).is_integer():
        problems.append("run.gpus_per_task: a fraction below 1 or a whole number of GPUs")
    if r.max_retries < 0:
        problems.append("run.max_retries: must be >= 0")
    if r.ray_address and r.ray_address != "auto" and not re.fullmatch(r"(ray://)?[^\s:]+:\d+", r.ray_address):
        problems.append(f"run.ray_address: {r.ray_address!r} is not empty, 'auto' or HOST:PORT")
    if r.executor == "ray" and r.gpus_per_task == 0 and cfg.train.device == "cuda":
        problems.append("train.device=cuda with run.executor=ray needs run.gpus_per_task > 0 (a Ray "
                        "task that reserves no GPU sees none)")
    if problems:
        raise ConfigError("; ".join(problems))


def check_notebook_parameters(params: dict[str, Any], allowed: dict[str, type]) -> None:
    """Fail loudly on an unknown or mistyped notebook parameter (papermill only warns).

    Args:
        params: the parameters as the notebook sees them (name -> value).
        allowed: expected name -> type (``type(None)`` allowed via a tuple).

    Raises:
        ConfigError: naming every unknown or mistyped parameter.
    """
    problems = []
    for name, value in params.items():
        if name not in allowed:
            problems.append(f"unknown parameter {name!r} (known: {sorted(allowed)})")
        elif not isinstance(value, allowed[name]):
            problems.append(f"parameter {name!r}={value!r} should be {allowed[name]}")
    if problems:
        raise ConfigError("; ".join(problems))
