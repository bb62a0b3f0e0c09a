"""The paper's printed numbers, recomputed: Table 3 metrics and AUC CIs, Table 1 p-values."""
from __future__ import annotations

import pytest

from alnm_core import stats as S

# test set: 20 ALNM, 30 non-ALNM; counts implied by Table 3 (tp, fp, fn, tn)
TABLE3 = {
    "T2WI": ((15, 3, 5, 27), (0.840, 0.750, 0.900, 0.833, 0.844), 0.908, (0.792, 0.971)),
    "DWI": ((11, 9, 9, 21), (0.640, 0.550, 0.700, 0.550, 0.700), 0.702, (0.556, 0.823)),
    "DCE-MRI": ((11, 14, 9, 16), (0.540, 0.550, 0.533, 0.440, 0.640), 0.572, (0.424, 0.711)),
    "Multiparametric MRI": ((17, 3, 3, 27), (0.880, 0.850, 0.900, 0.850, 0.900), 0.913, (0.799, 0.974)),
}


@pytest.mark.parametrize("model", list(TABLE3))
def test_table3_metrics(model):
    counts, printed, _, _ = TABLE3[model]
    m = S.metrics_from_counts(*counts, ppv_npv_method="logit")  # MedCalc's, for the comparison
    got = tuple(round(m[k].estimate, 3) for k in ("acc", "sen", "spe", "ppv", "npv"))
    assert got == printed
    for k in ("acc", "sen", "spe"):
        assert m[k].method == "Clopper-Pearson"
        assert m[k].low < m[k].estimate < m[k].high
    assert "Mercaldo" in m["ppv"].method
    assert S.metrics_from_counts(*counts)["ppv"].method == "Clopper-Pearson"  # the default


@pytest.mark.parametrize("model", list(TABLE3))
def test_table3_auc_exact_ci(model):
    _, _, a, ci = TABLE3[model]
    low, high = S.exact_auc_interval(a, 50)
    assert (round(low, 3), round(high, 3)) == ci


def test_clopper_pearson_and_medcalc_style_intervals():
    m = S.metrics_from_counts(15, 3, 5, 27)
    # sensitivity 15/20: exact interval 0.5090-0.9134 (Clopper-Pearson)
    assert (round(m["sen"].low, 4), round(m["sen"].high, 4)) == (0.5090, 0.9134)
    # LR+ = 0.75/0.1 = 7.5 with the log method
    assert m["lr_pos"].estimate == pytest.approx(7.5)
    assert m["lr_pos"].low < 7.5 < m["lr_pos"].high
    assert m["youden_j"].estimate == pytest.approx(0.65)
    ex = S.metrics_from_counts(15, 3, 5, 27, ppv_npv_method="exact")
    assert ex["ppv"].method == "Clopper-Pearson"
    # a predictive value of 1 falls back to an exact interval (as MedCalc) ...
    assert S.metrics_from_counts(10, 0, 5, 20, ppv_npv_method="logit")["ppv"].method.startswith("Clopper-Pearson")
    # ... but a sensitivity of 1 with a PPV below 1 keeps the logit interval
    m = S.metrics_from_counts(20, 5, 0, 25, ppv_npv_method="logit")
    assert "Mercaldo" in m["ppv"].method and m["ppv"].low < 0.8 < m["ppv"].high


def test_table1_categorical_p_values():
    # all patients: Pearson chi-square without continuity correction
    assert round(S.categorical_test([[33, 65], [69, 85]]).p_value, 3) == 0.079   # margin
    assert round(S.categorical_test([[70, 28], [98, 56]]).p_value, 3) == 0.201   # TIC type
    # test set: the printed p-values are Fisher's exact test
    r = S.categorical_test([[7, 13], [15, 15]], method="fisher")
    assert (round(r.p_value, 3), r.test) == (0.387, "Fisher exact")
    assert round(S.categorical_test([[14, 6], [15, 15]], method="fisher").p_value, 3) == 0.243
    assert S.categorical_test([[1, 9], [6, 3]]).test == "Fisher exact"  # expected < 5 -> auto Fisher
