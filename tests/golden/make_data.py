"""Write the data sets behind the pROC golden values (run once; the CSVs are committed).

    python tests/golden/make_data.py && Rscript tests/golden/proc_golden.R
"""
from pathlib import Path

import numpy as np
import pandas as pd

here = Path(__file__).parent
rng = np.random.default_rng(20221206)

# many ties: scores on a 0..10 integer scale (like a 5-point reader score x2)
n = 300
y = rng.integers(0, 2, n)
a = np.clip(np.round(rng.normal(4 + 2.0 * y, 2.2)), 0, 10).astype(int)
b = np.clip(np.round(a + rng.normal(0.3 * y, 1.5)), 0, 10).astype(int)
pd.DataFrame({"y": y, "a": a, "b": b}).to_csv(here / "ties.csv", index=False)

# small sample: 12 cases / 9 controls, continuous
y = np.array([1] * 12 + [0] * 9)
a = np.round(rng.normal(0.8 * y, 1.0), 4)
b = np.round(0.5 * a + rng.normal(0.4 * y, 0.8), 4)
pd.DataFrame({"y": y, "a": a, "b": b}).to_csv(here / "small.csv", index=False)

# large: n = 20000, 10% positive, scores rounded to 3 decimals (some ties)
n = 20000
y = (rng.random(n) < 0.1).astype(int)
a = np.round(rng.normal(0.9 * y, 1.0), 3)
b = np.round(0.7 * a + rng.normal(0.5 * y, 0.7), 3)
pd.DataFrame({"y": y, "a": a, "b": b}).to_csv(here / "large.csv.gz", index=False)

# unpaired: two independent samples
y1 = rng.integers(0, 2, 80)
s1 = np.round(rng.normal(1.0 * y1, 1.0), 3)
y2 = rng.integers(0, 2, 120)
s2 = np.round(rng.normal(0.5 * y2, 1.0), 3)
pd.DataFrame({"y": y1, "s": s1}).to_csv(here / "unpaired1.csv", index=False)
pd.DataFrame({"y": y2, "s": s2}).to_csv(here / "unpaired2.csv", index=False)
