"""The configuration's schema: one frozen dataclass per section, their defaults and documented
keys (:mod:`alnm_core.config` resolves and validates them).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

PROFILES = ("smoke", "demo", "paper", "duke")
#: the paper's three sequences, the default of ``StudyConfig.sequences`` (defined once)
DEFAULT_SEQUENCES = ("T2WI", "DWI", "DCE")
#: the per-sequence CNN families ``train.models`` may name (``slice_vote``: the paper's per-slice
#: ResNet with slice probabilities aggregated per patient; ``attention_mil``: attention MIL)
CNN_FAMILIES = ("slice_vote", "attention_mil")
#: the IBSI-oriented pyradiomics feature classes ``radiomics.feature_classes`` may name
RADIOMICS_FEATURE_CLASSES = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
#: the model kinds ``train.models`` may name: the paper's per-slice CNN whose slice
#: probabilities are aggregated, and patient-level attention MIL (:mod:`alnm_core.mil`)
MODEL_KINDS = CNN_FAMILIES


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
        effect_slices: 0: the label acts on the whole tumour (oedema, ADC, rim). k > 0: only
            on k adjacent tumour slices of each series, at a random place among the slices
            with at least a quarter of the largest tumour area; the others show the patient
            as if without ALNM (``truth.csv`` lists the slices: ``<SEQ>_effect_slices``).
            Tumour size and margin still differ by group on every slice (Table 1). For
            testing whether a model finds the slices that matter (attention MIL); use it
            with ``roi.slices=all``, or the central crops may miss them.
    """

    n_patients: int = 120
    seed: int = 2022
    matrix_scale: float = 0.35
    strength_t2wi: float = 1.0
    strength_dwi: float = 0.5
    strength_dce: float = 0.05
    effect_slices: int = 0


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
        cpu_isa: the instruction set oneDNN and MKL may use on the CPU: ``avx2`` (the same
            predictions on every x86-64 machine with AVX2 or newer, given the same threads) or
            ``native`` (their fastest path; numbers then depend on the machine). See
            :mod:`alnm_core.numerics`.
        checkpoint_dtype: precision of the saved selected weights: ``float16`` (half the disk;
            the weights are rounded before the unit predicts, so every prediction, in the run
            and by ``alnm predict``, comes from exactly what is saved) or ``float32``.
        models: the model kinds trained per sequence, a non-empty subset of ``slice_vote``
            (the paper: a 2D CNN on every slice, slice probabilities aggregated by
            ``aggregation``) and ``attention_mil`` (the same backbone over a patient's slices
            as one bag, pooled into one patient probability; settings under ``mil``). Both use
            the keys above (``batch_size`` counts crops per optimisation step for both);
            model ids are ``<kind>_<SEQ>``.
    """

    models: tuple[str, ...] = ("slice_vote",)
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
    cpu_isa: Literal["avx2", "native"] = "avx2"
    checkpoint_dtype: Literal["float16", "float32"] = "float16"


@dataclass(frozen=True)
class MilConfig:
    """Patient-level attention multiple-instance learning (``train.models`` with
    ``attention_mil``; :mod:`alnm_core.mil`).

    A patient's ROI crops of one sequence are one bag: every crop goes through the same 2D
    ResNet as the slice model (``train.arch``, ``train.pretrained``, ``train.in_channels``), and
    the slice embeddings are pooled into one patient embedding and one probability. The
    optimisation follows ``train.*`` (epochs, lr, weight decay, augmentation, class weighting
    by patients, checkpoint selection on the validation patients); ``train.batch_size`` counts
    crops: whole bags are packed into a step until the next one would pass it.

    Attributes:
        pooling: ``gated_attention`` (Ilse et al. 2018, gated: tanh x sigmoid branches),
            ``attention`` (Ilse et al. 2018, tanh), ``mean`` or ``max`` (element-wise over the
            slice embeddings). Each gives weights over a patient's slices summing to 1
            (``artifacts/mil_attention.csv``): the attention; 1/n for ``mean``; for ``max``
            the share of embedding dimensions each slice supplies the maximum of.
        attention_hidden: width of the attention network's hidden layer.
        dropout: dropout on the pooled patient embedding during training (0 = none).
        max_slices: a training bag holds at most this many of the patient's slices, drawn
            anew every epoch (0 = all slices); bounds memory, and acts as augmentation.
            Prediction always uses every slice.
    """

    pooling: Literal["gated_attention", "attention", "mean", "max"] = "gated_attention"
    attention_hidden: int = 128
    dropout: float = 0.0
    max_slices: int = 16


@dataclass(frozen=True)
class TuneConfig:
    """The hyperparameter search (Optuna), scored on inner validation folds of development
    patients only (:mod:`alnm_core.tune`).

    Every trial trains the model kind on ``inner_folds`` stratified folds of the development
    patients (train on k-1, score the held-out fold at the last epoch), with the same seeds for
    every trial, so trials differ only by their settings. The test patients never enter a trial
    (a ``LeakageError`` if one is given).

    Attributes:
        enabled: run the search before training; the best settings replace ``train.*`` (and
            ``mil.pooling``) for the model kind they were searched for.
        space: ``paper``: the paper's grid, learning rate 1e-3 / 1e-4 / 1e-5 / 1e-6 x batch
            size 16 / 32 / 64 (12 combinations, run by Optuna's grid sampler in a seeded random
            order); ``ranges``: :data:`alnm_core.search_space.DEFAULT_RANGES` drawn by Optuna's TPE sampler; or a
            mapping of the same form: ``lr`` and ``weight_decay`` ``[low, high]`` (log-uniform,
            low > 0), ``batch_size`` a list of choices, ``epochs`` ``[low, high]`` (integers),
            ``pooling`` a list of ``mil.pooling`` choices (attention MIL only; the slice
            model's search leaves it out). A key not searched keeps its ``train.*`` / ``mil.*``
            value.
        n_trials: trials per search (``paper``: at most the grid's 12).
        metric: what a trial scores, on each inner validation fold at the last epoch,
            averaged over folds: ``val_auc`` (patient-level AUC, maximised) or ``val_loss``
            (patient-level cross-entropy, minimised).
        nested: run one search inside each outer fold (on that fold's training patients),
            so the out-of-fold estimates stay honest; without it one search runs on all
            development patients and the out-of-fold estimates are optimistic by selection
            (the report says so).
        inner_folds: stratified folds of the development patients each trial trains and
            scores on (k-1 to train, 1 to score, k times).
        pruner: stop unpromising trials early on the per-epoch inner validation metric
            (step = fold x epochs + epoch): ``median`` (Optuna's median rule, after 2 finished
            trials), ``successive_halving`` (asynchronous successive halving), or ``none``.
        epochs: epochs per trial (0 = ``train.epochs``); ignored when ``epochs`` is searched.
        seed: seed of the sampler, of the inner folds and of every trial's training (None =
            the study's ``seed``).
    """

    enabled: bool = False
    space: str | dict[str, tuple[float | str, ...]] = "paper"
    n_trials: int = 12
    metric: Literal["val_auc", "val_loss"] = "val_auc"
    nested: bool = False
    inner_folds: int = 3
    pruner: Literal["median", "successive_halving", "none"] = "median"
    epochs: int = 0
    seed: int | None = None


@dataclass(frozen=True)
class EnsembleConfig:
    """Weighted voting (paper eq. 2-3).

    Attributes:
        weights_from: split whose accuracies set the weights; ``test`` is the paper-literal,
            optimistic variant.
        members: the base models fused: a CNN family of ``train.models`` (its model of every
            sequence) or model ids such as ``attention_mil_T2WI``.
        weight_rule: ``accuracy`` (the paper: wᵢ = ACCᵢ) or ``above_chance``: a member whose AUC
            on the development predictions (out-of-fold or validation) has a DeLong 95% CI
            reaching 0.5 gets weight 0 (chance-level; decided without the test set); if every
            member is chance-level the accuracy weights are kept. The other rule's weights are
            always shown beside the used ones.
    """

    weights_from: Literal["validation", "test"] = "validation"
    members: tuple[str, ...] = ("slice_vote",)
    weight_rule: Literal["accuracy", "above_chance"] = "accuracy"


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


#: manifest columns a clinical model may use, and its predictor built from each
CLINICAL_COVARIATES = ("age", "tumor_size_cm", "margin", "tic_type")


@dataclass(frozen=True)
class ClinicalConfig:
    """The clinical baseline and the clinical part of the clinical-radiomics model.

    Attributes:
        covariates: manifest columns used as predictors: ``age``, ``tumor_size_cm``, ``margin``
            (irregular vs regular) and ``tic_type`` (type III vs I/II). A cohort that does not
            record one (its ``cohort.json`` says so, e.g. the Duke collection's margin and TIC
            type) must leave it out: the run refuses a covariate that is not recorded.
    """

    covariates: tuple[str, ...] = CLINICAL_COVARIATES


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
        primary_comparisons: the pre-specified primary family of DeLong comparisons, each
            ``"MODEL_ID vs MODEL_ID"`` (e.g. ``"weighted_vote vs clinical"``), adjusted as one
            family (Holm, BH); empty: the headline model against each base model it fuses, the
            clinical baseline and the radiomics baselines. Every other pair is exploratory, in
            its own family; a model fitted on the test set is in none.
        recalibration: ``platt`` (logistic on the logit), ``isotonic`` or ``none``: a map fitted
            on the development predictions (validation, or out-of-fold) and applied to the test
            predictions, shown as calibration before and after; decision curves use the
            recalibrated probabilities. Table 3 stays on the models' own probabilities.
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
    primary_comparisons: tuple[str, ...] = ()
    recalibration: Literal["platt", "isotonic", "none"] = "platt"


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


#: the largest image (voxels, every b-value / phase counted) read by default: 500 million
#: voxels are 2 GB as float32, more than any clinical breast MRI series (a 512 x 512 x 200 DCE of
#: nine phases is 472 million); a 30000 x 30000 slice (900 million) is refused from its header
DEFAULT_MAX_VOXELS = 500_000_000
#: the most files and folders a series folder may hold (a walk stops there)
DEFAULT_MAX_FILES = 100_000


@dataclass(frozen=True)
class InputConfig:
    """What alnm agrees to read from a cohort (docs/security.md).

    Attributes:
        allow_outside_cohort: read ``<SEQ>_image`` / ``<SEQ>_roi`` paths that resolve (symlinks
            followed) outside the cohort folder. Off: such a path is refused naming the
            patient, the column and the file. Turn it on only for a manifest you wrote yourself
            (e.g. one that points at a collection stored elsewhere); the choice is recorded in
            ``run.json`` with the rest of the configuration.
        max_voxels: the largest image read, in voxels (rows x columns x slices x b-values or
            phases), checked from the header before any pixel is decoded.
        max_files: the most files and folders below one image folder; a walk stops there.
        trusted_folders: folders outside the cohort folder that its paths may resolve into, and
            no others (e.g. the download of a public collection that ``alnm import-duke``
            linked to: ``--trust DOWNLOAD``). Narrower than ``allow_outside_cohort``: a path
            into any other folder is still refused. Absolute paths; recorded in ``run.json``.
    """

    allow_outside_cohort: bool = False
    max_voxels: int = DEFAULT_MAX_VOXELS
    max_files: int = DEFAULT_MAX_FILES
    trusted_folders: tuple[str, ...] = ()


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
    mil: MilConfig = field(default_factory=MilConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    radiomics: RadiomicsConfig = field(default_factory=RadiomicsConfig)
    clinical: ClinicalConfig = field(default_factory=ClinicalConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    run: RunConfig = field(default_factory=RunConfig)
    input: InputConfig = field(default_factory=InputConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
