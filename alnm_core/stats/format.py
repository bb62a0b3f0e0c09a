"""One p-value formatter for every table and notebook: p-values printed as journals print them.

Styles:

* ``"3dp"`` (default): three decimals, ``<0.001`` below 0.001, so never ``0.000``; a p-value
  that rounds to 1 prints ``1.000``. The style of the paper reproduced here (Frontiers in
  Oncology; its Table 1 prints 0.079, 0.201, 0.387, 0.243) and of most radiology journals.
* ``"nejm"``: the NEJM / AMA rule (AMA Manual of Style, 11th ed., sec. 20.9; NEJM's
  statistical guidelines): two decimals, three between 0.001 and 0.01, ``<0.001`` below,
  ``>0.99`` above 0.99.
* ``"ama"``: the ``"nejm"`` numbers without the leading zero (``.03``, ``<.001``), as JAMA
  prints them.

In every style a p-value below ``alpha`` (0.05) gets as many more decimals as it takes not to
print as ``alpha`` or above (0.046 is ``0.046`` in ``nejm``, not ``0.05``; 0.04996 is
``0.04996``, not ``0.050``), as the AMA manual asks.

A missing p-value (NaN, None: no test was possible) prints as an em dash ``—``. Values outside
[0, 1] raise ValueError: a p-value there is a bug upstream, never something to print.

Example:
    >>> format_p(0.0004), format_p(0.0412), format_p(float("nan"))
    ('<0.001', '0.041', '—')
    >>> format_p(0.0462, style="nejm"), format_p(0.2349, style="nejm"), format_p(0.004, style="ama")
    ('0.046', '0.23', '.004')
"""
from __future__ import annotations

import math
from numbers import Real

import numpy as np
import pandas as pd

#: what a missing p-value prints as
MISSING = "—"
STYLES = ("3dp", "nejm", "ama")


def _digits(p: float, digits: int, alpha: float) -> str:
    """``p`` to ``digits`` decimals, more where rounding would lift a p below ``alpha`` to it."""
    while p < alpha and round(p, digits) >= alpha and digits < 6:
        digits += 1
    return f"{p:.{digits}f}"


def _one(p, style: str, alpha: float) -> str:
    if p is None or p is pd.NA or (isinstance(p, (Real, np.number)) and math.isnan(float(p))):
        return MISSING
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (Real, np.number)):
        raise ValueError(f"a p-value must be a number, got {p!r}")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a p-value must lie in [0, 1], got {p!r}")
    if style == "3dp":
        return "<0.001" if p < 0.001 else _digits(p, 3, alpha)
    if p < 0.001:
        s = "<0.001"
    elif p > 0.99:
        s = ">0.99"
    else:
        s = _digits(p, 3 if p < 0.01 else 2, alpha)
    return s.replace("0.", ".", 1) if style == "ama" else s


def format_p(p, *, style: str = "3dp", alpha: float = 0.05):
    """Format p-values for a table.

    Args:
        p: a number, None/NaN, or a sequence, numpy array or pandas Series of them.
        style: ``"3dp"`` (default), ``"nejm"`` or ``"ama"`` (see the module docstring).
        alpha: the significance level the ``nejm``/``ama`` styles keep visible (a p-value
            below it never rounds up to it).

    Returns:
        A string for a scalar; a Series of strings (same index) for a Series; a list of
        strings for any other sequence or array.

    Raises:
        ValueError: a value outside [0, 1], not a number, or an unknown style.

    Example:
        >>> import pandas as pd
        >>> format_p(pd.Series([0.0, 0.5, None], index=["a", "b", "c"])).tolist()
        ['<0.001', '0.500', '—']
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    if isinstance(p, pd.Series):
        return p.map(lambda v: _one(v, style, alpha)).astype(object)
    if isinstance(p, (list, tuple, np.ndarray, pd.Index)):
        return [_one(v.item() if isinstance(v, np.generic) else v, style, alpha)
                for v in np.asarray(p, dtype=object).ravel()]
    return _one(p, style, alpha)
