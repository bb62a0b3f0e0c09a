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
import os
import re
import typing

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from .config_schema import (  # noqa: F401 (the schema is re-exported: import it from here)
    CLINICAL_COVARIATES,
    CNN_FAMILIES,
    ClinicalConfig,
    ConfigError,
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_VOXELS,
    DEFAULT_SEQUENCES,
    EnsembleConfig,
    InputConfig,
    MODEL_KINDS,
    MilConfig,
    PROFILES,
    PhantomConfig,
    RADIOMICS_FEATURE_CLASSES,
    RadiomicsConfig,
    RoiConfig,
    RunConfig,
    SplitConfig,
    StatsConfig,
    StudyConfig,
    TrainConfig,
    TuneConfig,
    _plain,
)
from .search_space import MIL_POOLINGS, SpaceError, tune_space  # noqa: F401 (MIL_POOLINGS re-exported)

_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


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
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 1e-4 (no dot) as text
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


def load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load(text)``, its errors as :class:`ConfigError` naming ``where`` and the line.

    ``safe_load`` never builds Python objects; a tag such as ``!!python/object/apply`` is a
    ``ConstructorError``, which is reported here like malformed YAML.

    Example:
        >>> try:
        ...     load_yaml("a: [1, 2", "x.yaml")
        ... except ConfigError as exc:
        ...     print(exc)
        x.yaml, line 1, column 9: not valid YAML: expected ',' or ']', but got '<stream end>'
    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, yaml.constructor.ConstructorError):
            problem = (f"{problem} (alnm reads plain YAML: mappings, lists, numbers, text; "
                       "tags that build Python objects are refused)")
        raise ConfigError(f"{where}{at}: not valid YAML: {problem}") from None


def profile_dict(name: str) -> dict[str, Any]:
    """The raw mapping of a built-in profile (``smoke``, ``demo``, ``paper`` or ``duke``)."""
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
    value = load_yaml(raw, f"override {item!r}") if raw.strip() else None
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
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        if not path.is_file():
            raise ConfigError(f"config file {path} is not a regular file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read as UTF-8 text ({exc})") from None
        extra = load_yaml(text, f"config file {path}") or {}
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
    if cfg.phantom.effect_slices < 0:
        problems.append("phantom.effect_slices: >= 0 (0 = the whole tumour)")
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
    for m in cfg.ensemble.members:
        fam, _, seq = m.rpartition("_")
        if m in CNN_FAMILIES:
            if m not in cfg.train.models:
                problems.append(f"ensemble.members: {m!r} is not trained (train.models={list(cfg.train.models)})")
        elif fam not in cfg.train.models or seq not in cfg.sequences:
            problems.append(f"ensemble.members: {m!r} is neither a trained CNN family "
                            f"({list(cfg.train.models)}) nor one of their models "
                            f"(<family>_<sequence>, sequences {list(cfg.sequences)})")
    for c in cfg.stats.primary_comparisons:
        a, sep, b = str(c).partition(" vs ")
        if not sep or not a.strip() or not b.strip():
            problems.append(f"stats.primary_comparisons: {c!r}; each is 'MODEL_ID vs MODEL_ID'")
    if not cfg.ensemble.members:
        problems.append("ensemble.members: at least one model")
    cov = cfg.clinical.covariates
    if not cov or set(cov) - set(CLINICAL_COVARIATES) or len(set(cov)) != len(cov):
        problems.append(f"clinical.covariates: {list(cov)}; a non-empty list of distinct names from "
                        f"{list(CLINICAL_COVARIATES)}")
    if cfg.train.epochs < 1 or cfg.train.batch_size < 1:
        problems.append("train.epochs and train.batch_size: at least 1")
    if cfg.train.in_channels not in (1, 3):
        problems.append("train.in_channels: 1 or 3")
    if cfg.train.lr <= 0:
        problems.append("train.lr: must be > 0")
    problems += _check_models(cfg)
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
    if cfg.input.max_voxels < 1:
        problems.append("input.max_voxels: at least 1")
    if cfg.input.max_files < 1:
        problems.append("input.max_files: at least 1")
    for folder in cfg.input.trusted_folders:
        if not os.path.isabs(str(folder)):
            problems.append(f"input.trusted_folders: {folder!r} is not an absolute path")
        elif not os.path.isdir(folder):
            problems.append(f"input.trusted_folders: {folder!r} is not a folder")
    if problems:
        raise ConfigError("; ".join(problems))


def _check_models(cfg: StudyConfig) -> list[str]:
    """``train.models``, ``mil`` and ``tune``: the problems found (empty when fine)."""
    problems = []
    models = cfg.train.models
    if not models or set(models) - set(MODEL_KINDS) or len(set(models)) != len(models):
        problems.append(f"train.models: {list(models)}; a non-empty list without repeats "
                        f"from {list(MODEL_KINDS)}")
    m = cfg.mil
    if m.attention_hidden < 1:
        problems.append("mil.attention_hidden: at least 1")
    if not 0 <= m.dropout < 1:
        problems.append("mil.dropout: must be in [0, 1)")
    if m.max_slices < 0:
        problems.append("mil.max_slices: >= 0 (0 = every slice)")
    t = cfg.tune
    if t.n_trials < 1:
        problems.append("tune.n_trials: at least 1")
    if t.inner_folds < 2:
        problems.append("tune.inner_folds: at least 2")
    if t.epochs < 0:
        problems.append("tune.epochs: >= 0 (0 = train.epochs)")
    try:
        space = tune_space(t.space)
    except SpaceError as exc:
        problems.append(str(exc))
    else:
        if t.space == "paper" and t.n_trials > 12:
            problems.append(f"tune.n_trials={t.n_trials}: the paper grid has 12 combinations")
        if isinstance(t.space, dict) and "pooling" in space and "attention_mil" not in models:
            problems.append("tune.space: pooling is searched for attention_mil only, which "
                            "train.models does not train")
    return problems


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
