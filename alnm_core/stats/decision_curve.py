"""Decision curve analysis: net benefit of a model vs treat-all and treat-none (Vickers 2006).

``NB(pt) = TP/N - FP/N * pt / (1 - pt)``, treating patients whose probability is >= ``pt``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._validation import check_labels, check_scores


def net_benefit(y_true, prob, thresholds=None) -> pd.DataFrame:
    """Net benefit over threshold probabilities.

    Args:
        y_true: 0/1 outcomes.
        prob: predicted probabilities in [0, 1].
        thresholds: threshold probabilities in (0, 1); default 0.01 .. 0.99 by 0.01.

    Returns:
        DataFrame ``threshold, model, treat_all, treat_none``.

    Example:
        >>> nb = net_benefit([0, 1, 1, 0], [0.2, 0.8, 0.6, 0.4], [0.5])
        >>> float(nb.model[0]), float(nb.treat_all[0])
        (0.5, 0.0)
    """
    y = check_labels(y_true)
    p = check_scores(prob, y.size, name="prob")
    if p.min() < 0 or p.max() > 1:
        raise ValueError("prob must be probabilities in [0, 1]")
    t = np.arange(1, 100) / 100 if thresholds is None else np.asarray(thresholds, float)
    if np.any((t <= 0) | (t >= 1)):
        raise ValueError("thresholds must lie strictly between 0 and 1")
    n = y.size
    prev = y.mean()
    treat = p[None, :] >= t[:, None]
    tp = (treat & (y[None, :] == 1)).sum(axis=1)
    fp = (treat & (y[None, :] == 0)).sum(axis=1)
    odds = t / (1 - t)
    return pd.DataFrame({"threshold": t, "model": tp / n - fp / n * odds,
                         "treat_all": prev - (1 - prev) * odds, "treat_none": 0.0})
