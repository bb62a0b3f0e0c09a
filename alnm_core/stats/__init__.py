"""Statistics for the study: one idea per module, pure numpy / scipy functions.

=====================  ==========================================================
module                 what it holds
=====================  ==========================================================
``roc``                AUC (Mann-Whitney, ties 1/2), ROC curve, Youden threshold
``delong``             DeLong placements, variance, paired / unpaired tests, matrix
``auc_ci``             AUC CIs: exact (MedCalc), DeLong, logit DeLong, percentile / BCa bootstrap
``bootstrap``          BCa bootstrap interval (as R's ``boot::boot.ci``)
``diagnostic``         ACC / SEN / SPE / PPV / NPV / LR+ / LR- with CIs
``calibration``        Brier score, calibration intercept and slope, reliability bins
``recalibration``      Platt (logistic) and isotonic maps, fitted on one set, applied to another
``decision_curve``     net benefit vs treat-all / treat-none
``table1``             continuous, categorical and trend tests, Table 1
``normality``          Shapiro-Wilk and Lilliefors (as R's nortest)
``multiplicity``       Holm and Benjamini-Hochberg adjusted p-values
``coverage``           simulated coverage of the CIs offered (writes the committed table)
``coverage_lookup``    the committed coverage table: look-up, footnote, choice of primary CI
``format``             p-values as journals print them (``<0.001``, never ``0.000``)
``spread``             fold-to-fold spread of a metric across CV folds and repeats
=====================  ==========================================================

Conventions: positive class = 1, a higher score = more likely positive (pROC's
``direction = "<"``), no silent direction flipping; bad input raises ``ValueError``.
"""
from __future__ import annotations

from .auc_ci import (METHOD_LABELS, METHODS as AUC_CI_METHODS, PRIMARY as PRIMARY_AUC_CI, AucCI,
                     auc_ci, auc_cis, bootstrap_aucs, exact_auc_interval, separation_interval)
from .bootstrap import bca_interval
from .calibration import Calibration, brier_score, calibration_intercept_slope, reliability_table
from .coverage_lookup import coverage_footnote, lookup_coverage, simulated_coverage
from .decision_curve import net_benefit
from .format import format_p
from .delong import (Comparison, DeLongResult, UnpairedDeLongResult, compare, delong_cov,
                     delong_matrix, delong_test, delong_test_unpaired, delong_var, placements)
from .diagnostic import (Estimate, clopper_pearson, confusion_counts, diagnostic_metrics,
                         metrics_from_counts, wilson)
from .multiplicity import adjust_within_families, benjamini_hochberg, holm
from .recalibration import (IsotonicFit, PlattFit, apply_recalibration, calibration_before_after,
                            fit_recalibration)
from .spread import Spread, fold_aucs, spread
from .normality import lilliefors, normality
from .roc import RocCurve, YoudenResult, auc, roc_curve, youden_threshold
from .table1 import (TestResult, build_table1, categorical_test, continuous_test, fisher_exact_2xc,
                     trend_test)

__all__ = [
    "AUC_CI_METHODS", "METHOD_LABELS", "PRIMARY_AUC_CI", "AucCI", "auc_ci", "auc_cis",
    "bootstrap_aucs", "exact_auc_interval", "separation_interval", "bca_interval",
    "coverage_footnote", "lookup_coverage", "simulated_coverage", "format_p",
    "IsotonicFit", "PlattFit", "apply_recalibration", "calibration_before_after",
    "fit_recalibration", "Spread", "fold_aucs", "spread", "trend_test",
    "Calibration", "brier_score", "calibration_intercept_slope", "reliability_table",
    "net_benefit",
    "Comparison", "DeLongResult", "UnpairedDeLongResult", "compare", "delong_cov", "delong_matrix",
    "delong_test", "delong_test_unpaired", "delong_var", "placements",
    "Estimate", "clopper_pearson", "confusion_counts", "diagnostic_metrics", "metrics_from_counts",
    "wilson", "adjust_within_families", "benjamini_hochberg", "holm", "lilliefors",
    "RocCurve", "YoudenResult", "auc", "roc_curve", "youden_threshold",
    "TestResult", "build_table1", "categorical_test", "continuous_test", "fisher_exact_2xc",
    "normality",
]
