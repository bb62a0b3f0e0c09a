"""A tiny training whose predictions are pinned to a golden hash (tests/test_training.py).

Run as ``python tests/golden/tiny_training.py [avx2|native]``: trains a ResNet18 for two epochs
on 48 synthetic 32 x 32 crops (one thread, seed 1) with ``train.cpu_isa`` as given, and prints
the SHA-256 of its slice probabilities rounded to 6 decimals, then the first three.
"""
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from alnm_core.config import TrainConfig
from alnm_core.roi import SequenceCrops
from alnm_core.training import UnitFiles, train_unit


def main(isa: str) -> None:
    rng = np.random.default_rng(0)
    n_pat, per, size = 24, 2, 32
    y = np.array([i % 2 for i in range(n_pat)])
    crops = rng.normal(0.5, 0.1, (n_pat * per, size, size)).astype(np.float32)
    for i in range(n_pat):
        if y[i]:
            crops[i * per:(i + 1) * per, 10:20, 10:20] += 0.3
    crops = np.clip(crops, 0, 1).astype(np.float16).astype(np.float32)
    ids = [f"P{i:02d}" for i in range(n_pat)]
    pp = pd.DataFrame({"patient_id": ids, "n_crops": per})
    sc = SequenceCrops("T2WI", crops, np.repeat(ids, per), np.tile(np.arange(per), n_pat),
                       np.zeros((n_pat * per, 4)), np.ones(n_pat * per), np.ones((n_pat * per, 3)),
                       np.zeros((n_pat * per, 2)), pp, [], "toy")
    roles = pd.DataFrame({"patient_id": ids, "label": y, "role": ["train"] * 16 + ["val"] * 4 + ["test"] * 4})
    cfg = TrainConfig(arch="resnet18", epochs=2, batch_size=8, selection="last", num_threads=1,
                      device="cpu", checkpoint_dtype="float32", cpu_isa=isa)
    with tempfile.TemporaryDirectory() as d:
        res = train_unit(sc, roles, cfg, UnitFiles(Path(d, "c.pt"), Path(d, "l.pt"), Path(d, "h.csv")), seed=1)
    p = res.slices.prob.to_numpy()
    print(hashlib.sha256(np.round(p, 6).tobytes()).hexdigest(), " ".join(f"{v:.8f}" for v in p[:3]))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "avx2")
