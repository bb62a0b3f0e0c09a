"""alnm_core: the library behind the alnm notebook suite.

Predicting axillary lymph node metastasis (ALNM) in invasive breast cancer from preoperative
multiparametric MRI, reproducing and extending Zhang et al., Front. Oncol. 2022.
Every computation lives here; the notebooks only narrate, parameterise and display.
"""
from __future__ import annotations

__version__ = "0.1.0"
