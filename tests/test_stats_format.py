"""The one p-value formatter (issue 23): never 0.000, journal rules, NaN as an em dash."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from alnm_core.stats import format_p

CASES = [  # p, 3dp, nejm, ama
    (0.0, "<0.001", "<0.001", "<.001"),
    (1e-300, "<0.001", "<0.001", "<.001"),
    (0.00049, "<0.001", "<0.001", "<.001"),
    (0.000999, "<0.001", "<0.001", "<.001"),
    (0.001, "0.001", "0.001", ".001"),
    (0.00149, "0.001", "0.001", ".001"),
    (0.0094, "0.009", "0.009", ".009"),
    (0.0123, "0.012", "0.01", ".01"),
    (0.046, "0.046", "0.046", ".046"),       # not 0.05: a p below alpha never prints as alpha
    (0.0496, "0.0496", "0.0496", ".0496"),   # not 0.050
    (0.05, "0.050", "0.05", ".05"),
    (0.0501, "0.050", "0.05", ".05"),
    (0.079, "0.079", "0.08", ".08"),         # the paper's margin p (all patients)
    (0.2349, "0.235", "0.23", ".23"),
    (0.995, "0.995", ">0.99", ">.99"),
    (1.0, "1.000", ">0.99", ">.99"),
]


@pytest.mark.parametrize("p, dp3, nejm, ama", CASES)
def test_styles(p, dp3, nejm, ama):
    assert format_p(p) == dp3
    assert format_p(p, style="nejm") == nejm
    assert format_p(p, style="ama") == ama


@pytest.mark.parametrize("style", ["3dp", "nejm", "ama"])
def test_no_zero_p_value_is_ever_printed(style):
    ps = np.r_[0.0, np.logspace(-12, 0, 4000), np.linspace(0, 1, 4001)]
    for s in format_p(ps, style=style):
        assert not re.fullmatch(r"0?\.0+", s), s
        assert s[0] in "<>" or float(s) > 0


@pytest.mark.parametrize("missing", [float("nan"), np.nan, None, pd.NA, np.float32("nan")])
def test_missing_is_an_em_dash(missing):
    assert format_p(missing) == "—"


def test_series_arrays_and_lists():
    s = pd.Series([0.0001, 0.5, np.nan], index=["x", "y", "z"])
    out = format_p(s)
    assert isinstance(out, pd.Series) and list(out.index) == ["x", "y", "z"]
    assert out.tolist() == ["<0.001", "0.500", "—"]
    assert format_p(np.array([0.2, 0.01])) == ["0.200", "0.010"]
    assert format_p([0.2, None], style="nejm") == ["0.20", "—"]
    # usable as a pandas Styler / to_string formatter
    df = pd.DataFrame({"p_value": [0.0, 0.03]})
    assert "<0.001" in df.to_string(formatters={"p_value": format_p})


@pytest.mark.parametrize("bad", [-0.01, 1.01, np.inf, "0.05", True])
def test_impossible_values_raise(bad):
    with pytest.raises(ValueError):
        format_p(bad)


def test_unknown_style_raises():
    with pytest.raises(ValueError, match="style"):
        format_p(0.5, style="apa")
