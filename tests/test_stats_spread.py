"""Fold-to-fold spread beside the pooled out-of-fold estimate (issue 23)."""
from __future__ import annotations

import numpy as np
import pytest

from alnm_core import stats as S


def test_spread_summary_and_text():
    s = S.spread([0.7, 0.8, np.nan, 0.9])
    assert (s.n, s.n_missing) == (3, 1)
    assert s.mean == pytest.approx(0.8) and s.sd == pytest.approx(0.1)
    assert (s.min, s.median, s.max) == pytest.approx((0.7, 0.8, 0.9))
    assert s.text() == "0.800 ± 0.100 (0.700–0.900), 3 folds; 1 without a value"
    assert S.spread([]).text() == "—"
    assert S.spread([0.6]).text(digits=2) == "0.60 ± — (0.60–0.60), 1 folds"


def test_fold_aucs_per_repeat_and_fold_and_one_class_folds_named():
    rng = np.random.default_rng(0)
    n = 60
    y = np.tile(np.r_[np.ones(30, int), np.zeros(10, int), np.ones(5, int), np.zeros(15, int)], 2)
    s = rng.normal(size=2 * n) + y
    folds = np.tile(np.repeat([0, 1, 2], 20), 2)  # fold 0 of each repeat holds only positives
    reps = np.repeat([0, 1], n)
    t = S.fold_aucs(y, s, folds, reps)
    assert len(t) == 6 and list(t.columns) == ["repeat", "fold", "n", "n_pos", "auc", "note"]
    bad = t[t.fold == 0]
    assert bad.auc.isna().all() and (bad.note == "one class only: no AUC").all()
    ok = t[(t.fold == 1) & (t["repeat"] == 1)].iloc[0]
    sel = (folds == 1) & (reps == 1)
    assert ok.auc == S.auc(y[sel], s[sel])
    sp = S.spread(t.auc)
    assert (sp.n, sp.n_missing) == (4, 2)
    with pytest.raises(ValueError, match="one label per row"):
        S.fold_aucs(y, s, folds[:-1])
