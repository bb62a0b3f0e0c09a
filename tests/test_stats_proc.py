"""Agreement with R's pROC 1.18 (golden values from tests/golden/proc_golden.R), to 1e-9."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from alnm_core import stats as S

GOLD = Path(__file__).parent / "golden"
G = json.loads((GOLD / "proc_golden.json").read_text())


def _data():
    a = pd.read_csv(GOLD / "aSAH.csv")
    out = {"aSAH": (G["aSAH"], a.y, a.s100b, a.ndka),
           "aSAH-wfns": (G["aSAH"]["wfns"], a.y, a.wfns, a.s100b)}
    for name in ("ties", "small"):
        d = pd.read_csv(GOLD / f"{name}.csv")
        out[name] = (G[name], d.y, d.a, d.b)
    d = pd.read_csv(GOLD / "large.csv.gz")
    out["large"] = (G["large"], d.y, d.a, d.b)
    return out


DATA = _data()
TOL = 1e-9


@pytest.mark.parametrize("name", list(DATA))
def test_auc_variance_and_delong_ci(name):
    g, y, a, b = DATA[name]
    assert S.auc(y, a) == pytest.approx(g["auc_a"][0], abs=TOL)
    assert S.delong_var(y, a) == pytest.approx(g["var_a"][0], abs=TOL)
    ci = S.auc_ci(y, a, method="delong")
    assert (ci.low, ci.high) == pytest.approx(tuple(g["ci_a"]), abs=TOL)


@pytest.mark.parametrize("name", list(DATA))
def test_paired_delong_test(name):
    g, y, a, b = DATA[name]
    r = S.delong_test(y, a, b)
    assert r.auc_b == pytest.approx(g["auc_b"][0], abs=TOL)
    assert r.var_b == pytest.approx(g["var_b"][0], abs=TOL)
    assert r.cov == pytest.approx(g["cov_ab"][0], abs=TOL)
    assert r.z == pytest.approx(g["z"][0], abs=TOL)
    assert r.p_value == pytest.approx(g["p"][0], abs=TOL)
    assert (r.ci_low, r.ci_high) == pytest.approx(tuple(g["diff_ci"]), abs=TOL)
    assert S.delong_test(y, a, b, alternative="greater").p_value == pytest.approx(g["p_greater"][0], abs=TOL)
    assert S.delong_test(y, a, b, alternative="less").p_value == pytest.approx(g["p_less"][0], abs=TOL)


@pytest.mark.parametrize("name", list(DATA))
def test_youden_threshold(name):
    g, y, a, _ = DATA[name]
    r = S.youden_threshold(y, a)
    assert r.threshold == pytest.approx(g["best_threshold"][0], abs=TOL)
    assert r.sensitivity == pytest.approx(g["best_sen"][0], abs=TOL)
    assert r.specificity == pytest.approx(g["best_spe"][0], abs=TOL)


def test_unpaired_delong():
    u1, u2 = pd.read_csv(GOLD / "unpaired1.csv"), pd.read_csv(GOLD / "unpaired2.csv")
    r = S.delong_test_unpaired(u1.y, u1.s, u2.y, u2.s)
    g = G["unpaired"]
    assert (r.auc_a, r.auc_b) == pytest.approx((g["auc_a"][0], g["auc_b"][0]), abs=TOL)
    assert r.statistic == pytest.approx(g["statistic"][0], abs=TOL)
    assert r.df == pytest.approx(g["df"][0], abs=1e-7)
    assert r.p_value == pytest.approx(g["p"][0], abs=TOL)


def test_matrix_matches_pairwise_tests():
    g, y, a, b = DATA["ties"]
    m = S.delong_matrix(y, {"a": a, "b": b, "c": a * 0.5 + b})
    row = m[(m.model_a == "a") & (m.model_b == "b")].iloc[0]
    assert row.z == pytest.approx(g["z"][0], abs=TOL)
    assert row.p_value == pytest.approx(g["p"][0], abs=TOL)
    assert len(m) == 3
