"""The radiomics and clinical-radiomics baselines: a robustness filter and a penalised logistic
model, fitted inside the development set only, like the CNNs.

Each model is a scikit-learn pipeline fitted on a model's training patients only:

1. median imputation (a patient whose features could not be computed, listed as an exclusion
   with ``roi.on_error=exclude``, gets the training patients' medians);
2. :class:`RobustnessFilter`: drops near-constant features, then, walking the features in a
   fixed order, every feature whose |Spearman r| with one already kept exceeds
   ``radiomics.corr_threshold``;
3. standardisation;
4. logistic regression with an L1 (lasso) or elastic-net penalty whose strength (and, for the
   elastic net, L1 ratio) is chosen by an inner stratified cross-validation on AUC
   (``radiomics.inner_folds``) within the same training patients.

Models: one per sequence (``radiomics_<SEQ>``), one on every sequence's features together
(``radiomics_all``), and the clinical-radiomics model (``clinical_radiomics``): a logistic
regression (as the clinical baseline: standardised, C = 1) on age, tumour size, irregular margin,
TIC type III and the *rad-score*, the all-sequence model's linear predictor. The rad-score of
the clinical-radiomics model's own training patients comes from an inner cross-fit (each scored
by an all-sequence model that did not see it), so that the second stage does not learn from
over-fitted scores.

Predictions come from :func:`alnm_core.protocol.cross_fitted` (out-of-fold for development
patients, a final refit on every development patient for the test set; hold-out: fitted on
``train``), and
every fit checks that no test patient, and no patient it predicts out of sample, is among its
training patients (:class:`RadiomicsLeakageError`). The coefficients shown in the report come
from each model refitted on every development patient (never a test patient); how often each
feature was selected by the fold models stands beside them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from .config import RadiomicsConfig
from .evaluation import clinical_features
from .protocol import LeakageError, cross_fitted

#: the penalty strengths searched by the inner cross-validation (inverse regularisation C)
CS = np.logspace(-2.5, 1.5, 12)
#: the elastic net's L1 ratios searched with C
L1_RATIOS = (0.2, 0.5, 0.8)
CLINICAL_NAMES = {"age": "age (years)", "size": "tumour size (cm)", "irregular": "irregular margin",
                  "tic_III": "TIC type III", "rad_score": "rad-score"}


class RadiomicsLeakageError(LeakageError):
    """A radiomics model would be fitted on a patient it predicts out of sample, or on a test
    patient (a bug, never a user error)."""


class RobustnessFilter(TransformerMixin, BaseEstimator):
    """Drop near-constant features, then one of each highly correlated pair.

    Fitted on the training patients only. A feature is near-constant when its SD is at most
    ``1e-9`` times its mean absolute value (or zero) or it takes fewer than 3 distinct values;
    of the rest, walking in column order, a feature is kept unless its |Spearman r| with a kept
    feature exceeds ``threshold``.
    """

    def __init__(self, threshold: float = 0.9):
        self.threshold = threshold

    def fit(self, X, y=None):
        X = np.asarray(X, float)
        sd = X.std(axis=0)
        distinct = np.array([len(np.unique(c)) for c in X.T])
        ok = np.flatnonzero((sd > 1e-9 * np.abs(X).mean(axis=0)) & (sd > 0) & (distinct >= 3))
        keep: list[int] = []
        if len(ok):
            ranks = pd.DataFrame(X[:, ok]).rank().to_numpy()
            r = np.abs(np.corrcoef(ranks, rowvar=False)) if len(ok) > 1 else np.ones((1, 1))
            r = np.atleast_2d(r)
            kept_local: list[int] = []
            for j in range(len(ok)):
                if not kept_local or r[j, kept_local].max() <= self.threshold:
                    kept_local.append(j)
            keep = [int(ok[j]) for j in kept_local]
        if not keep:
            raise ValueError("no feature passed the robustness filter")
        self.support_ = np.array(keep)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return np.asarray(X, float)[:, self.support_]


def _auc_score(estimator, X, y) -> float:
    """The inner cross-validation's score: AUC (Mann-Whitney) of the linear predictor; the
    same number as scikit-learn's ``roc_auc`` scorer, without its per-call validation (which
    took most of the fitting time)."""
    from .stats import auc

    y = np.asarray(y)
    score = np.asarray(X) @ np.ravel(estimator.coef_) + np.ravel(estimator.intercept_)[0]
    return auc((y == estimator.classes_[-1]).astype(int), score)


class InnerFolds:
    """Stratified k-fold for the inner cross-validations, with k lowered to the smaller class's
    count of the patients it is given (small training sets), never below 2."""

    def __init__(self, n_splits: int, seed: int):
        self.n_splits, self.seed = n_splits, seed

    def _cv(self, y):
        from sklearn.model_selection import StratifiedKFold

        k = int(min(self.n_splits, np.bincount(np.asarray(y, int), minlength=2).min()))
        if k < 2:
            raise ValueError("fewer than 2 patients of a class among a model's training patients: "
                             "the penalty cannot be chosen by cross-validation")
        return StratifiedKFold(k, shuffle=True, random_state=self.seed)

    def split(self, X, y, groups=None):
        return self._cv(y).split(X, y)

    def get_n_splits(self, X=None, y=None, groups=None):
        return self.n_splits if y is None else self._cv(y).get_n_splits()


def _logistic_cv(cfg: RadiomicsConfig, seed: int):
    from sklearn.linear_model import LogisticRegressionCV

    elastic = cfg.penalty == "elasticnet"
    kw = dict(Cs=CS, cv=InnerFolds(cfg.inner_folds, seed), scoring=_auc_score,
              solver="saga" if elastic else "liblinear", max_iter=10000, random_state=seed)
    import inspect

    if "use_legacy_attributes" in inspect.signature(LogisticRegressionCV).parameters:
        kw.update(l1_ratios=L1_RATIOS if elastic else (1.0,), use_legacy_attributes=False)
    else:  # scikit-learn < 1.8
        kw.update(penalty=cfg.penalty, **({"l1_ratios": list(L1_RATIOS)} if elastic else {}))
    return LogisticRegressionCV(**kw)


def radiomics_pipeline(cfg: RadiomicsConfig, seed: int):
    """Imputation, robustness filter, standardisation, penalised logistic (inner CV)."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("impute", SimpleImputer(strategy="median")),
                     ("filter", RobustnessFilter(cfg.corr_threshold)),
                     ("scale", StandardScaler()),
                     ("logistic", _logistic_cv(cfg, seed))])


def _clinical_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0))


def feature_matrix(features: dict[str, pd.DataFrame], patient_ids, sequences) -> pd.DataFrame:
    """Features of ``sequences`` side by side (columns ``<SEQ>:<feature>``), one row per patient
    in ``patient_ids`` (NaN where a patient's features are missing)."""
    parts = [features[s].set_index("patient_id").add_prefix(f"{s}:") for s in sequences]
    return pd.concat(parts, axis=1).reindex(pd.Index(list(patient_ids), name="patient_id"))


class _Fits:
    """Fits one kind of model for :func:`cross_fitted`, checking every fit's patients."""

    def __init__(self, splits: pd.DataFrame, folds: pd.DataFrame | None, log: list | None):
        self.test = set(splits.patient_id[splits.split == "test"])
        self.holdout = folds is None
        self.log = log

    def check(self, model: str, train_ids, predict_ids) -> None:
        train = set(train_ids)
        leaked = sorted(train & self.test)
        if not self.holdout:  # k-fold: everything predicted is out of sample
            leaked = sorted(set(leaked) | (train & set(predict_ids)))
        if leaked:
            raise RadiomicsLeakageError(f"{model}: fitted on patients it predicts out of sample: "
                                        f"{leaked[:5]}")
        if self.log is not None:
            self.log.append({"model": model, "train": sorted(train), "predict": sorted(set(predict_ids))})


def fit_radiomics_models(features: dict[str, pd.DataFrame], cohort: pd.DataFrame, splits: pd.DataFrame,
                         folds: pd.DataFrame | None, cfg: RadiomicsConfig, *, seed: int,
                         fit_log: list | None = None,
                         covariates: tuple[str, ...] = ("age", "tumor_size_cm", "margin", "tic_type"),
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Out-of-fold and test predictions of every radiomics model, and the models refitted on the
    development set.

    Args:
        features: per sequence, ``patient_id`` + feature columns.
        cohort: the manifest (clinical variables of the clinical-radiomics model).
        splits, folds: the run's split (``folds`` None for the hold-out design).
        fit_log: if a list, every fit appends ``{"model", "train", "predict"}`` (tests).

    Returns:
        ``(predictions, coefficients)``: ``patient_id, split, label`` and one probability column
        per model, in the order of ``splits``; and one row per model and term of its
        development-set refit: ``model, term, coef`` (per standardised unit), ``mean, sd,
        dev_min, dev_max`` of the term on the development patients, ``selected_in`` (fold models
        that selected it) of ``n_fits``, the chosen ``C`` and ``l1_ratio``, ``n_after_filter`` and
        ``n_features``; ``(intercept)`` rows hold the intercepts. The clinical-radiomics model's
        terms are its clinical variables and ``rad_score`` (what the nomogram draws).

    Raises:
        RadiomicsLeakageError: a fit would include a test patient or a patient it predicts out
            of sample.
    """
    seqs = list(features)
    ids = splits.patient_id
    y = cohort.set_index("patient_id").alnm.reindex(ids).astype(int)
    clin = clinical_features(cohort, covariates).set_index(cohort.patient_id.to_numpy()).reindex(ids)
    X_all = feature_matrix(features, ids, seqs)
    groups = {f"radiomics_{s}": [s] for s in seqs}
    if len(seqs) > 1:
        groups["radiomics_all"] = seqs
    all_name = "radiomics_all" if len(seqs) > 1 else f"radiomics_{seqs[0]}"
    guard = _Fits(splits, folds, fit_log)
    selected: dict[str, list[set[str]]] = {m: [] for m in groups}
    memo: dict[tuple, object] = {}

    def fit_group(name: str, train: list):
        """The model ``name`` fitted on ``train`` (the all-sequence model is fitted once per
        training set and shared with the clinical-radiomics model)."""
        k = (name, tuple(sorted(train)))
        if k not in memo:
            Xm = X_all[[c for c in X_all.columns if c.split(":", 1)[0] in groups[name]]]
            memo[k] = radiomics_pipeline(cfg, seed).fit(Xm.loc[train], y.loc[train])
        return memo[k]

    def columns(name: str) -> list[str]:
        return [c for c in X_all.columns if c.split(":", 1)[0] in groups[name]]

    def radiomics_fp(name: str):
        def fit_predict(train_ids, predict_ids):
            guard.check(name, train_ids, predict_ids)
            m = fit_group(name, list(train_ids))
            selected[name].append(_selected(m, columns(name)))
            pr = list(predict_ids)
            return pd.Series(m.predict_proba(X_all.loc[pr, columns(name)])[:, 1], index=pr)

        return fit_predict

    out = splits[["patient_id", "split", "label"]].copy()
    for name in groups:
        out[name] = cross_fitted(radiomics_fp(name), splits, folds).prob.to_numpy()

    def clinical_radiomics_fit(train: list):
        m_all = fit_group(all_name, train)
        Z = clin.loc[train].assign(rad_score=_inner_rad_scores(X_all[columns(all_name)], y, train, cfg, seed))
        return m_all, _clinical_pipeline().fit(Z, y.loc[train]), Z

    def clinical_radiomics_fp(train_ids, predict_ids):
        guard.check("clinical_radiomics", train_ids, predict_ids)
        pr = list(predict_ids)
        m_all, m, _ = clinical_radiomics_fit(list(train_ids))
        Z_pr = clin.loc[pr].assign(rad_score=m_all.decision_function(X_all.loc[pr, columns(all_name)]))
        return pd.Series(m.predict_proba(Z_pr)[:, 1], index=pr)

    out["clinical_radiomics"] = cross_fitted(clinical_radiomics_fp, splits, folds).prob.to_numpy()

    # every model refitted on the development set, for the coefficients and the nomogram
    dev = list(splits.patient_id[splits.split != "test"])
    guard.check("development refit", dev, [])
    rows = []
    for name in groups:
        rows += _coef_rows(name, fit_group(name, dev), X_all.loc[dev, columns(name)], cfg, selected[name])
    _, m, Z = clinical_radiomics_fit(dev)
    sc, lr = m.steps[0][1], m.steps[-1][1]
    info = dict(model="clinical_radiomics", C=1.0, l1_ratio=np.nan, n_after_filter=Z.shape[1],
                n_features=Z.shape[1], n_fits=np.nan)
    rows.append({**info, "term": "(intercept)", "coef": float(lr.intercept_[0])})
    for j, term in enumerate(Z.columns):
        rows.append({**info, "term": term, "coef": float(lr.coef_.ravel()[j]), "mean": float(sc.mean_[j]),
                     "sd": float(np.sqrt(sc.var_[j])), "dev_min": float(Z[term].min()),
                     "dev_max": float(Z[term].max())})
    return out, pd.DataFrame(rows).reindex(columns=COEF_COLUMNS)


COEF_COLUMNS = ["model", "term", "coef", "mean", "sd", "dev_min", "dev_max", "selected_in", "n_fits",
                "C", "l1_ratio", "n_after_filter", "n_features"]


def _inner_rad_scores(X: pd.DataFrame, y: pd.Series, train: list, cfg: RadiomicsConfig, seed: int) -> np.ndarray:
    """Rad-scores (linear predictors of the all-sequence model) of the training patients from
    an inner cross-fit: each patient is scored by a model fitted without it."""
    from sklearn.model_selection import cross_val_predict

    yt = y.loc[train].to_numpy()
    return cross_val_predict(radiomics_pipeline(cfg, seed), X.loc[train], yt,
                             cv=InnerFolds(cfg.inner_folds, seed + 1), method="decision_function")


def _coef_rows(name: str, m, X_dev: pd.DataFrame, cfg: RadiomicsConfig, fits: list[set[str]]) -> list[dict]:
    """The non-zero coefficients (per standardised unit) of a development-set refit, with the
    share of fold models that selected each feature."""
    lr, sc = m.named_steps["logistic"], m.named_steps["scale"]
    kept = np.asarray(X_dev.columns)[m.named_steps["filter"].support_]
    l1 = float(np.ravel(getattr(lr, "l1_ratio_", [1.0]))[0]) if cfg.penalty == "elasticnet" else 1.0
    info = dict(model=name, C=float(np.ravel(lr.C_)[0]), l1_ratio=l1, n_after_filter=len(kept),
                n_features=X_dev.shape[1], n_fits=len(fits))
    rows = [{**info, "term": "(intercept)", "coef": float(lr.intercept_[0])}]
    for j in np.flatnonzero(lr.coef_.ravel() != 0):
        raw = X_dev[kept[j]]
        rows.append({**info, "term": kept[j], "coef": float(lr.coef_.ravel()[j]), "mean": float(sc.mean_[j]),
                     "sd": float(np.sqrt(sc.var_[j])), "dev_min": float(raw.min()), "dev_max": float(raw.max()),
                     "selected_in": sum(kept[j] in s for s in fits)})
    return rows


def _selected(model, columns) -> set[str]:
    kept = np.asarray(columns)[model.named_steps["filter"].support_]
    coef = model.named_steps["logistic"].coef_.ravel()
    return set(kept[coef != 0])


def nomogram_points(coefs: pd.DataFrame) -> pd.DataFrame:
    """Points scales of the clinical-radiomics nomogram (from its development-set refit).

    Each predictor's contribution to the linear predictor over its development range is
    ``coef * (x - mean) / sd``; the predictor with the widest span gets 0-100 points and the
    others are scaled alike. Returns ``term, label, x_low, x_high, points_low, points_high,
    points_per_unit`` and the intercept / scale needed to turn total points into a probability
    (``lp = lp_at_zero + total_points / points_per_lp``) in the frame's ``attrs``.
    """
    c = coefs[(coefs.model == "clinical_radiomics") & (coefs.term != "(intercept)")].copy()
    b0 = float(coefs[(coefs.model == "clinical_radiomics") & (coefs.term == "(intercept)")].coef.iloc[0])
    slope = c.coef / c.sd  # per raw unit
    lo_lp, hi_lp = slope * (c.dev_min - c["mean"]), slope * (c.dev_max - c["mean"])
    span = (hi_lp - lo_lp).abs()
    points_per_lp = 100.0 / float(span.max()) if span.max() > 0 else 1.0
    base = np.minimum(lo_lp, hi_lp)
    out = pd.DataFrame({"term": c.term, "label": c.term.map(CLINICAL_NAMES).fillna(c.term),
                        "x_low": c.dev_min, "x_high": c.dev_max,
                        "points_low": (lo_lp - base) * points_per_lp, "points_high": (hi_lp - base) * points_per_lp,
                        "points_per_unit": slope * points_per_lp}).reset_index(drop=True)
    out.attrs["lp_at_zero"] = b0 + float(base.sum())
    out.attrs["points_per_lp"] = points_per_lp
    return out
