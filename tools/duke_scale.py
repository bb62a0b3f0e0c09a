"""Measure `alnm import duke` and the cohort's reading on a full-scale replica of the download.

    python tools/duke_scale.py --out /tmp/duke-scale [--patients 922] [--full-size 2] [--json FILE]

1. A header-only replica of N patients (the collection's tree and spreadsheets, 6 series of
   8 slices of 16 x 16 per patient): the manifest import's time and peak memory (a fresh
   process each, at 100 and at N patients, to show that memory does not grow with the cohort).
2. The imported cohort read back: ``load_cohort`` (manifest checks) and ``validate --quick``.
3. K patients at Duke's size (5 DCE phases + T1, 160 slices of 512 x 512, uncompressed 16-bit):
   per patient the time to read the joined DCE, to crop it (duke profile: 224 x 224, central
   7 slices), and the crop cache's key (every byte of the study folder is hashed).

Numbers go to stdout (and --json); nothing is asserted. Used for docs/public-data.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMPORT = """
import resource, sys, time, tracemalloc
from alnm_core.importers.duke import import_duke
trace = sys.argv[5] == "trace"
if trace:
    tracemalloc.start()
t0 = time.perf_counter()
r = import_duke(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], overwrite=True, jobs=1)
dt = time.perf_counter() - t0
peak = tracemalloc.get_traced_memory()[1] if trace else 0
print(dt, peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, r.n_imported, len(r.excluded))
"""


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _import(rep, out: Path) -> dict:
    """Time (a plain process, one job) and memory (a second process under tracemalloc)."""
    def run(mode):
        res = subprocess.run([sys.executable, "-c", IMPORT, str(rep.dicom), str(rep.clinical), str(rep.boxes),
                              str(out), mode], capture_output=True, text=True, env=_env(), check=True)
        return res.stdout.split()

    dt, _, rss, n_in, n_out = run("time")
    _, peak, _, _, _ = run("trace")
    return {"seconds": float(dt), "python_peak_mb": int(peak) / 2**20, "max_rss_mb": int(rss) / 1024,
            "imported": int(n_in), "excluded": int(n_out), "load_average": os.getloadavg()[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--patients", type=int, default=922)
    ap.add_argument("--full-size", type=int, default=2, help="patients at Duke's image size (0: skip)")
    ap.add_argument("--json")
    a = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from alnm_core.importers.duke_replica import write_duke_replica

    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    res: dict = {"cpus": os.cpu_count()}
    for n in sorted({min(100, a.patients), a.patients}):
        t0 = time.perf_counter()
        rep = write_duke_replica(out / f"replica-{n}", n_patients=n, render=False)
        files = sum(1 for _ in (rep.dicom / "Duke-Breast-Cancer-MRI").rglob("*.dcm"))
        res[f"replica_{n}"] = {"write_seconds": time.perf_counter() - t0, "dicom_files": files}
        r = _import(rep, out / f"cohort-{n}")
        r["ms_per_patient"] = 1000 * r["seconds"] / n
        res[f"import_{n}"] = r
        print(f"import of {n} patients ({files} DICOM files): {r['seconds']:.1f} s "
              f"({r['ms_per_patient']:.1f} ms/patient), Python peak {r['python_peak_mb']:.1f} MB, "
              f"max RSS {r['max_rss_mb']:.0f} MB; {r['imported']} imported, {r['excluded']} excluded "
              f"(load average {r['load_average']:.1f} on {os.cpu_count()} cores)", flush=True)
    from alnm_core.cli import main as cli
    from alnm_core.cohort import load_cohort

    cohort = out / f"cohort-{a.patients}"
    t0 = time.perf_counter()
    df = load_cohort(cohort, ("DCE",))
    res["load_cohort_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cli(["validate", "--cohort", str(cohort), "--sequences", "DCE", "--quick"])
    res["validate_quick_seconds"] = time.perf_counter() - t0
    print(f"load_cohort ({len(df)} patients): {res['load_cohort_seconds']:.2f} s; validate --quick: "
          f"{res['validate_quick_seconds']:.2f} s", flush=True)
    if a.full_size:
        res["full_size"] = _full_size(out, a.full_size)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


def _full_size(out: Path, k: int) -> dict:
    from alnm_core.cohort import load_cohort, series_rule
    from alnm_core.config import resolve_config
    from alnm_core.imaging import read_image
    from alnm_core.importers.duke import import_duke
    from alnm_core.importers.duke_replica import write_duke_replica
    from alnm_core.roi import content_key, extract_patient

    t0 = time.perf_counter()
    rep = write_duke_replica(out / "replica-full", n_patients=k, render=False, special=False, n_post=4,
                             size=(160, 512, 512))
    write_s = time.perf_counter() - t0
    study_bytes = sum(f.stat().st_size for f in (rep.dicom / "Duke-Breast-Cancer-MRI").rglob("*.dcm")) / k
    r = import_duke(rep.dicom, rep.clinical, rep.boxes, out / "cohort-full", overwrite=True)
    cfg = resolve_config("duke").roi
    df = load_cohort(r.cohort_dir, ("DCE",))
    per = []
    for _, row in df.iterrows():
        img, roi = r.cohort_dir / row.DCE_image, r.cohort_dir / row.DCE_roi
        t0 = time.perf_counter()
        vol = read_image(img, series=series_rule(row, "DCE"))
        t_read = time.perf_counter() - t0
        del vol
        t0 = time.perf_counter()
        pc = extract_patient(row.patient_id, "DCE", img, roi, cfg, series_rule(row, "DCE"))
        t_crop = time.perf_counter() - t0
        t0 = time.perf_counter()
        content_key(df[df.patient_id == row.patient_id], "DCE", r.cohort_dir, cfg)
        t_key = time.perf_counter() - t0
        per.append({"read_dce_s": t_read, "read_and_crop_s": t_crop, "cache_key_s": t_key, "crops": len(pc.crops)})
        print(f"{row.patient_id}: read DCE {t_read:.1f} s, read + crop {t_crop:.1f} s ({len(pc.crops)} crops), "
              f"crop cache key {t_key:.1f} s; study folder {study_bytes / 2**20:.0f} MB", flush=True)
    return {"write_seconds": write_s, "study_mb": study_bytes / 2**20, "patients": per}


if __name__ == "__main__":
    sys.exit(main())
