"""Recalibration (issue 23): Platt pinned to R glm, isotonic to R isoreg and scikit-learn,
fitted on one set and applied to another, cross-fitted over folds."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alnm_core import stats as S
from alnm_core.stats.recalibration import (apply_isotonic, apply_platt, cross_fitted, fit_isotonic,
                                           fit_platt)

GOLD = Path(__file__).parent / "golden"
G = json.loads((GOLD / "stats_golden3.json").read_text())["recalibration"]


def test_platt_as_r_glm():
    d = pd.read_csv(GOLD / "g2_calib.csv")
    fit = fit_platt(d.y, d.p)
    assert (fit.intercept, fit.slope) == pytest.approx(tuple(G["platt_coef"]), abs=1e-10)
    assert apply_platt(fit, G["platt_new_p"]) == pytest.approx(G["platt_apply"], abs=1e-10)
    assert apply_platt(fit, d.p) == pytest.approx(G["platt_fitted"], abs=1e-10)
    # the Platt slope is the calibration slope; after it, the same data are calibrated
    assert fit.slope == pytest.approx(S.calibration_intercept_slope(d.y, d.p).slope, abs=1e-6)
    after = S.calibration_before_after(d.y, d.p, apply_platt(fit, d.p))
    assert list(after.stage) == ["before", "after"]
    assert after.slope.iloc[1] == pytest.approx(1.0, abs=1e-5)
    assert after.intercept.iloc[1] == pytest.approx(0.0, abs=1e-5)
    assert after.brier.iloc[1] < after.brier.iloc[0]


def test_isotonic_as_r_isoreg_and_sklearn():
    from sklearn.isotonic import IsotonicRegression

    d = pd.read_csv(GOLD / "g2_calib.csv")
    fit = fit_isotonic(d.y, d.p)
    assert apply_isotonic(fit, d.p) == pytest.approx(G["isotonic_fitted"], abs=1e-12)
    rng = np.random.default_rng(2)
    p = np.round(rng.uniform(size=400), 2)  # ties pooled before PAVA
    y = (rng.uniform(size=400) < p ** 2).astype(int)
    new = rng.uniform(size=500)
    ref = IsotonicRegression(out_of_bounds="clip").fit(p, y)
    assert apply_isotonic(fit_isotonic(y, p), new) == pytest.approx(ref.predict(new), abs=1e-12)
    out = apply_isotonic(fit_isotonic(y, p), np.sort(new))
    assert np.all(np.diff(out) >= 0) and out.min() >= 0 and out.max() <= 1


def test_fitted_on_one_set_applied_to_another():
    rng = np.random.default_rng(5)
    true = rng.uniform(0.02, 0.98, 3000)
    y = (rng.uniform(size=3000) < true).astype(int)
    over = 1 / (1 + np.exp(-3 * np.log(true / (1 - true))))  # overconfident: slope 1/3
    fit_i, test_i = slice(0, 2000), slice(2000, None)
    fit = S.fit_recalibration(y[fit_i], over[fit_i], method="platt")
    assert fit.slope == pytest.approx(1 / 3, abs=0.05)
    after = S.apply_recalibration(fit, over[test_i])
    assert S.calibration_intercept_slope(y[test_i], after).slope == pytest.approx(1.0, abs=0.15)
    iso = S.fit_recalibration(y[fit_i], over[fit_i], method="isotonic")
    assert S.brier_score(y[test_i], S.apply_recalibration(iso, over[test_i])) < S.brier_score(y[test_i], over[test_i])
    with pytest.raises(ValueError, match="platt"):
        S.fit_recalibration(y, over, method="beta")


def test_cross_fitted_never_uses_a_patients_own_fold():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 200)
    y = (rng.uniform(size=200) < p).astype(int)
    folds = np.repeat(np.arange(5), 40)
    out = cross_fitted(y, p, folds)
    for k in range(5):
        held = folds == k
        fit = fit_platt(y[~held], p[~held])
        assert out[held] == pytest.approx(apply_platt(fit, p[held]), abs=1e-15)
    # flipping the outcomes of fold 0 changes nothing in fold 0's own recalibrated values
    y2 = y.copy()
    y2[folds == 0] = 1 - y2[folds == 0]
    assert np.array_equal(cross_fitted(y2, p, folds)[folds == 0], out[folds == 0])
    with pytest.raises(ValueError, match="2 folds"):
        cross_fitted(y, p, np.zeros(200))


def test_platt_refuses_separated_or_constant_probabilities():
    with pytest.raises(ValueError, match="separated"):
        fit_platt([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="equal"):
        fit_platt([0, 1, 0, 1], [0.3] * 4)
    with pytest.raises(ValueError, match="probabilities"):
        fit_platt([0, 1, 0, 1], [0.3, 1.2, 0.1, 0.5])
    fit = fit_isotonic([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])  # isotonic copes
    assert apply_isotonic(fit, [0.15, 0.35]).tolist() == [0.0, 1.0]
