"""Statistics for the study: one idea per module, pure numpy / scipy functions.

=====================  ==========================================================
module                 what it holds
=====================  ==========================================================
``roc``                AUC (Mann-Whitney, ties 1/2), ROC curve, Youden threshold
``delong``             DeLong placements, variance, paired / unpaired tests, matrix
``auc_ci``             AUC confidence intervals: exact (MedCalc), DeLong, bootstrap
``diagnostic``         ACC / SEN / SPE / PPV / NPV / LR+ / LR- with CIs
``calibration``        Brier score, calibration intercept and slope, reliability bins
``decision_curve``     net benefit vs treat-all / treat-none
``table1``             continuous and categorical tests, Table 1
``normality``          Shapiro-Wilk and Lilliefors (as R's nortest)
``multiplicity``       Holm and Benjamini-Hochberg adjusted p-values
``coverage``           simulated coverage of the CIs offered
=====================  ==========================================================

Conventions: positive class = 1, a higher score = more likely positive (pROC's
``direction = "<"``), no silent direction flipping; bad input raises ``ValueError``.
"""
from __future__ import annotations

from .auc_ci import AucCI, auc_ci, bootstrap_aucs, exact_auc_interval
from .calibration import Calibration, brier_score, calibration_intercept_slope, reliability_table
from .decision_curve import net_benefit
from .delong import (Comparison, DeLongResult, UnpairedDeLongResult, compare, delong_cov,
                     delong_matrix, delong_test, delong_test_unpaired, delong_var, placements)
from .diagnostic import (Estimate, clopper_pearson, confusion_counts, diagnostic_metrics,
                         metrics_from_counts, wilson)
from .multiplicity import benjamini_hochberg, holm
from .normality import lilliefors, normality
from .roc import RocCurve, YoudenResult, auc, roc_curve, youden_threshold
from .table1 import TestResult, build_table1, categorical_test, continuous_test, fisher_exact_2xc

__all__ = [
    "AucCI", "auc_ci", "bootstrap_aucs", "exact_auc_interval",
    "Calibration", "brier_score", "calibration_intercept_slope", "reliability_table",
    "net_benefit",
    "Comparison", "DeLongResult", "UnpairedDeLongResult", "compare", "delong_cov", "delong_matrix",
    "delong_test", "delong_test_unpaired", "delong_var", "placements",
    "Estimate", "clopper_pearson", "confusion_counts", "diagnostic_metrics", "metrics_from_counts",
    "wilson", "benjamini_hochberg", "holm", "lilliefors",
    "RocCurve", "YoudenResult", "auc", "roc_curve", "youden_threshold",
    "TestResult", "build_table1", "categorical_test", "continuous_test", "fisher_exact_2xc",
    "normality",
]
