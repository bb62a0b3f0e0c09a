"""The model registry: every model of a study by a stable ``model_id``.

A model is whatever produces one probability per patient: a sequence's CNN (the paper's slice
vote; attention MIL), a fusion of them (the paper's weighted vote and its alternatives), the
clinical baseline, a radiomics model. Its ``model_id`` names its prediction column in every
table (``predictions/models.csv``, ``table3.csv``, ``delong*.csv``, the bundle), so nothing is
ever looked up by its display label: relabelling a model changes no number and no threshold.

Adding a model is one registration in :data:`FAMILIES`: its id pattern, label, kind, the step
that produces it and when it is part of a study.

Example:
    >>> from alnm_core.config import resolve_config
    >>> ms = study_models(resolve_config("smoke"))
    >>> ms.headline.model_id, ms.label("slice_vote_T2WI")
    ('weighted_vote', 'T2WI')
    >>> [m.model_id for m in ms.members]
    ['slice_vote_T2WI', 'slice_vote_DWI', 'slice_vote_DCE']
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator

from .config import CNN_FAMILIES, StudyConfig

#: the fusion that is the study's headline model (the paper's weighted vote, eq. 2-3)
HEADLINE = "weighted_vote"


@dataclass(frozen=True, kw_only=True)
class Model:
    """One model of a study.

    Attributes:
        model_id: stable id, the prediction column's name (``slice_vote_T2WI``, ``weighted_vote``).
        label: display label (tables, figures).
        kind: ``cnn``, ``fusion``, ``clinical`` or ``radiomics``.
        family: the registration it comes from (``slice_vote``, ``stacking``, ...).
        sequence: the sequence of a per-sequence model.
        step: the step (instance) that writes its predictions.
        headline: the study's headline model.
        member: a fusion member (a base model of the weighted vote).
        shown: a row of Table 3 and a member of the DeLong matrix (a one-member "fusion" is a
            copy of its member, so the member is not shown twice).
        test_fitted: fitted with the test labels (the paper-literal weights): reported, labelled
            optimistic, and left out of every comparison family.
        in_bundle: frozen into the model bundle for ``alnm predict`` / ``alnm evaluate``.
    """

    model_id: str
    label: str
    kind: str
    family: str
    sequence: str | None = None
    step: str = ""
    headline: bool = False
    member: bool = False
    shown: bool = True
    test_fitted: bool = False
    in_bundle: bool = False


@dataclass(frozen=True, kw_only=True)
class Family:
    """A registration: how one kind of model appears in a study."""

    name: str
    kind: str
    step: str  # per-sequence families: the step's name without ":SEQ"
    label: Callable[[StudyConfig, str | None], str]
    enabled: Callable[[StudyConfig], bool]
    per_sequence: bool = False


def _fit_name(cfg: StudyConfig) -> str:
    return "validation" if cfg.split.scheme == "holdout" else "out-of-fold"


def member_ids(cfg: StudyConfig) -> list[str]:
    """The fusion members ``ensemble.members`` names (a CNN family name stands for that family's
    model of every sequence), in the order of ``sequences``."""
    out: list[str] = []
    for m in cfg.ensemble.members:
        out += [f"{m}_{s}" for s in cfg.sequences] if m in CNN_FAMILIES else [m]
    return list(dict.fromkeys(out))


def _multi(cfg: StudyConfig) -> bool:
    return len(member_ids(cfg)) > 1


def _fusion_label(key: str) -> Callable[[StudyConfig, str | None], str]:
    def label(cfg: StudyConfig, _seq: str | None) -> str:
        fit = _fit_name(cfg)
        return {"weighted_vote_test_weights": "Multiparametric (weighted vote, test weights: "
                                              "paper-literal, optimistic)",
                "weighted_vote_fit_weights": f"Multiparametric (weighted vote, {fit} weights)",
                "soft_vote": "Equal-weight soft vote",
                "majority_vote": "Majority hard vote",
                "stacking": f"Logistic stacking (fitted on {fit} predictions, cross-fitted there)"}[key]
    return label


def _headline_label(cfg: StudyConfig, _seq: str | None) -> str:
    members = member_ids(cfg)
    if len(members) > 1:
        return "Multiparametric MRI"
    return f"{_cnn_label(members[0])} (one model: no fusion)"


def _cnn_label(model_id: str) -> str:
    family, _, seq = model_id.rpartition("_")
    return seq if family == "slice_vote" else f"{seq} ({family.replace('_', ' ')})"


def _covariate_words(cfg: StudyConfig) -> str:
    short = {"age": "age", "tumor_size_cm": "size", "margin": "margin", "tic_type": "TIC"}
    return ", ".join(short[c] for c in cfg.clinical.covariates)


def alternative_vote(cfg: StudyConfig) -> str:
    """The weighted vote with the other weights: the paper's test weights beside the default,
    or the development weights beside the paper-literal headline."""
    return ("weighted_vote_test_weights" if cfg.ensemble.weights_from == "validation"
            else "weighted_vote_fit_weights")


#: every registration, in table order (a new model is one entry here)
FAMILIES: tuple[Family, ...] = (
    Family(name="slice_vote", kind="cnn", step="train", per_sequence=True,
           label=lambda c, s: s, enabled=lambda c: "slice_vote" in c.train.models),
    Family(name="attention_mil", kind="cnn", step="train_mil", per_sequence=True,
           label=lambda c, s: f"{s} (attention MIL)", enabled=lambda c: "attention_mil" in c.train.models),
    Family(name=HEADLINE, kind="fusion", step="fuse", label=_headline_label, enabled=lambda c: True),
    Family(name="weighted_vote_test_weights", kind="fusion", step="fuse",
           label=_fusion_label("weighted_vote_test_weights"),
           enabled=lambda c: _multi(c) and c.ensemble.weights_from == "validation"),
    Family(name="weighted_vote_fit_weights", kind="fusion", step="fuse",
           label=_fusion_label("weighted_vote_fit_weights"),
           enabled=lambda c: _multi(c) and c.ensemble.weights_from == "test"),
    Family(name="soft_vote", kind="fusion", step="fuse", label=_fusion_label("soft_vote"), enabled=_multi),
    Family(name="majority_vote", kind="fusion", step="fuse", label=_fusion_label("majority_vote"),
           enabled=_multi),
    Family(name="stacking", kind="fusion", step="fuse", label=_fusion_label("stacking"), enabled=_multi),
    Family(name="clinical", kind="clinical", step="clinical",
           label=lambda c, s: f"Clinical baseline (logistic: {_covariate_words(c)})", enabled=lambda c: True),
    Family(name="radiomics", kind="radiomics", step="radiomics", per_sequence=True,
           label=lambda c, s: f"Radiomics: {s}", enabled=lambda c: c.radiomics.enabled),
    Family(name="radiomics_all", kind="radiomics", step="radiomics",
           label=lambda c, s: "Radiomics: all sequences",
           enabled=lambda c: c.radiomics.enabled and len(c.sequences) > 1),
    Family(name="clinical_radiomics", kind="radiomics", step="radiomics",
           label=lambda c, s: "Clinical-radiomics (nomogram)", enabled=lambda c: c.radiomics.enabled),
)


class ModelSet:
    """The models of one study, in table order, with lookups by id (never by label)."""

    def __init__(self, models: list[Model]):
        ids = [m.model_id for m in models]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"model ids registered twice: {dup}")
        self.models = models
        self._by_id = {m.model_id: m for m in models}

    def __iter__(self) -> Iterator[Model]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._by_id

    def __getitem__(self, model_id: str) -> Model:
        try:
            return self._by_id[model_id]
        except KeyError:
            raise KeyError(f"no model {model_id!r} in this study (models: {list(self._by_id)})") from None

    def ids(self, *, kind: str | None = None, shown: bool | None = None) -> list[str]:
        return [m.model_id for m in self.models if (kind is None or m.kind == kind)
                and (shown is None or m.shown == shown)]

    def label(self, model_id: str) -> str:
        return self[model_id].label

    def labels(self, ids: list[str] | None = None) -> dict[str, str]:
        """``model_id -> label`` (all models, or ``ids`` in that order)."""
        return {i: self[i].label for i in (ids if ids is not None else [m.model_id for m in self.models])}

    @property
    def headline(self) -> Model:
        return next(m for m in self.models if m.headline)

    @property
    def members(self) -> list[Model]:
        return [m for m in self.models if m.member]

    @property
    def shown(self) -> list[Model]:
        """Table 3's rows and the DeLong matrix's models, in order."""
        return [m for m in self.models if m.shown]

    def cnns(self, family: str | None = None) -> list[Model]:
        return [m for m in self.models if m.kind == "cnn" and (family is None or m.family == family)]

    def produced_by(self, step: str) -> list[Model]:
        return [m for m in self.models if m.step == step]


def study_models(cfg: StudyConfig) -> ModelSet:
    """Every model of the study ``cfg`` describes, in table order.

    Raises:
        ValueError: ``ensemble.members`` names a model the study does not train.
    """
    members = member_ids(cfg)
    multi = len(members) > 1
    models: list[Model] = []
    for fam in FAMILIES:
        if not fam.enabled(cfg):
            continue
        for seq in (cfg.sequences if fam.per_sequence else (None,)):
            mid = f"{fam.name}_{seq}" if fam.per_sequence else fam.name
            models.append(Model(model_id=mid, label=fam.label(cfg, seq), kind=fam.kind, family=fam.name,
                                sequence=seq, step=f"{fam.step}:{seq}" if fam.per_sequence else fam.step,
                                headline=mid == HEADLINE, member=mid in members,
                                test_fitted=mid == "weighted_vote_test_weights" or
                                (mid == HEADLINE and cfg.ensemble.weights_from == "test"),
                                in_bundle=fam.kind == "cnn" or mid == HEADLINE))
    known = {m.model_id for m in models if m.kind == "cnn"}
    unknown = [m for m in members if m not in known]
    if unknown:
        raise ValueError(f"ensemble.members: {unknown} are not trained in this study (train.models="
                         f"{list(cfg.train.models)}, sequences={list(cfg.sequences)})")
    # a one-member "fusion" is a copy of the member: show it once, as the headline
    models = [replace(m, shown=False) if (m.member and not multi) else m for m in models]
    # the members first (in member order), then the rest in registration order
    order = {mid: i for i, mid in enumerate(members)}
    models.sort(key=lambda m: (0, order[m.model_id]) if m.member else (1, 0))
    return ModelSet(models)


def radiomics_headline(cfg: StudyConfig) -> str:
    """The radiomics model on every sequence (the one sequence's model in a one-sequence study)."""
    return "radiomics_all" if len(cfg.sequences) > 1 else f"radiomics_{cfg.sequences[0]}"
