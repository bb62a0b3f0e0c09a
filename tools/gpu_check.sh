#!/usr/bin/env bash
# The one prepared GPU check (issue 11; what it measures and how to read it: BENCHMARKS.md,
# "The GPU check"). Three modes:
#
#   tools/gpu_check.sh --fetch     HERE, with PyPI: the pinned cp312 wheels of what the GPU
#                                  machine lacks (tools/gpu/requirements-device.txt) and Ray 2.60.0
#                                  trimmed to what runs tasks, into .gpu/ (git-ignored); prints
#                                  the MiB that will travel (the limit is 64 MiB with the tree).
#   tools/gpu_check.sh             ON THE GPU MACHINE, as one device call of at most 8 minutes:
#                                    run(command="bash tools/gpu_check.sh", carry=[".gpu"], timeout_s=480)
#                                  installs .gpu/ into /tmp/site (nothing else is touched), runs the
#                                  paper profile end to end through papermill on the GPU on a
#                                  phantom (120 patients, 2 epochs, training units packed four to
#                                  a GPU by Ray), then `alnm bench --only amp,pack`; results in $OUT.
#   tools/gpu_check.sh --dry-run   the same path on this CPU at toy sizes, the units trained in
#                                  process and Ray started by the packing bench only (no wheels: the local
#                                  environment), in well under a minute; tests/test_gpu_check.py.
#
# The device has no SimpleITK, and its wheel (~50 MB) cannot travel beside Ray: both modes that
# run put tools/gpu/shim (a NIfTI-only stand-in, tools/gpu/shim/SimpleITK.py) first on PYTHONPATH.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GPU="$REPO/.gpu"
RAY_PIN="ray==2.60.0"
MODE=device
case "${1:-}" in
  --fetch) MODE=fetch ;;
  --dry-run) MODE=dry ;;
  "") ;;
  -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
  *) echo "usage: tools/gpu_check.sh [--fetch | --dry-run]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}

if [ "$MODE" = fetch ]; then
  PLAT=(--only-binary=:all: --no-deps --python-version 3.12 --implementation cp
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
        --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64)
  rm -rf "$GPU/wheels" "$GPU/ray-build" && mkdir -p "$GPU/wheels" "$GPU/ray-build"
  "$PY" -m pip download -q "${PLAT[@]}" -d "$GPU/wheels" -r "$REPO/tools/gpu/requirements-device.txt"
  "$PY" -m pip download -q "${PLAT[@]}" -d "$GPU/ray-build" "$RAY_PIN"
  # Ray's wheel is ~70 MB: keep the core that runs tasks (drop the Java jars, the dashboard's
  # web client and the libraries alnm does not use: RLlib, Data, Serve, Tune, Train, LLM) and
  # compress it with xz (unpacked there with Python's lzma, no binary needed)
  "$PY" - "$GPU" <<'EOF'
import shutil, sys, tarfile, zipfile
from pathlib import Path
gpu = Path(sys.argv[1])
whl = next((gpu / "ray-build").glob("ray-*.whl"))
site = gpu / "ray-build" / "site"
zipfile.ZipFile(whl).extractall(site)
for sub in ("jars", "rllib", "data", "serve", "llm", "tune", "train", "dashboard/client"):
    shutil.rmtree(site / "ray" / sub, ignore_errors=True)
for p in site.rglob("*"):  # zip drops the executable bits of raylet and gcs_server
    if p.is_file() and (p.parent.name in ("raylet", "gcs") or p.suffix == ".so"):
        p.chmod(0o755)
with tarfile.open(gpu / "ray-trimmed.tar.xz", "w:xz", preset=6) as tar:
    for top in sorted(site.iterdir()):
        tar.add(top, arcname=top.name)
print(f"{whl.name}: {whl.stat().st_size / 2**20:.1f} MiB as a wheel, "
      f"{(gpu / 'ray-trimmed.tar.xz').stat().st_size / 2**20:.1f} MiB trimmed")
EOF
  rm -rf "$GPU/ray-build"
  echo "what travels with carry=[\".gpu\"]: $(du -sm "$GPU" | cut -f1) MiB in .gpu, plus the tree:"
  (cd "$REPO" && git ls-files -co --exclude-standard -z | du -cm --files0-from=- | tail -1)
  exit 0
fi

T0=$(date +%s)
if [ "$MODE" = dry ]; then
  OUTDIR=${GPU_CHECK_OUT:-$(mktemp -d /tmp/alnm-gpu-check-XXXXXX)}
else
  OUTDIR=${OUT:-$GPU/out}
fi
mkdir -p "$OUTDIR"
WORK=$(mktemp -d /tmp/alnm-gpu-work-XXXXXX)
LOG="$OUTDIR/gpu_check.log"
say() { echo "[gpu_check $(($(date +%s) - T0)) s] $*" | tee -a "$LOG" >&2; }
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

if [ "$MODE" = device ]; then
  [ -d "$GPU/wheels" ] && [ -f "$GPU/ray-trimmed.tar.xz" ] || {
    echo "no .gpu/ here: run tools/gpu_check.sh --fetch on the development machine and carry .gpu" >&2; exit 2; }
  say "installing $(ls "$GPU"/wheels/*.whl | wc -l) carried wheels and the trimmed Ray into /tmp/site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$GPU"/wheels/*.whl >>"$LOG" 2>&1
  "$PY" -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall('/tmp/site')" "$GPU/ray-trimmed.tar.xz"
  export PYTHONPATH="$REPO/tools/gpu/shim:/tmp/site:$REPO${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="/tmp/site/bin:$PATH"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >>"$LOG" 2>&1 || true
  # the paper profile, shortened: 120 phantom patients (paper scale), 2 epochs, repeats=1 (18
  # units: 3 sequences x (5 folds + the final refit)), packed four to the GPU by Ray
  # radiomics off: pyradiomics ships as a source package only and the device has no build chain;
  # the radiomics arm is CPU work that the GPU check has nothing to measure on
  # the search off: 12 trials x 3 inner folds per model would not fit the call; bench tune measures it
  SETS=(phantom.n_patients=120 train.epochs=2 run.executor=ray run.gpus_per_task=0.25
        run.cpus_per_task=2 radiomics.enabled=false tune.enabled=false)
  BENCH=(--only amp,pack)
  LIMIT=330
else
  export PYTHONPATH="$REPO/tools/gpu/shim:$REPO${PYTHONPATH:+:$PYTHONPATH}"
  # the same path at toy sizes on the CPU (Ray packs by CPU here: no GPU)
  SETS=(phantom.n_patients=20 phantom.matrix_scale=0.2 "sequences=[T2WI]" split.test_size=5
        split.n_folds=2 roi.size=32 roi.slices=largest train.arch=resnet18 train.epochs=1
        train.batch_size=8 train.selection=last train.num_threads=1 stats.bootstrap_n=100
        run.executor=local radiomics.enabled=false tune.enabled=false)
  # the pipeline's units on the local executor: Ray starts once, in `bench --only pack` (a second
  # start cost the test suite about 25 s; `alnm run` on Ray is tested in tests/test_ray.py)
  BENCH=(--only amp,pack --quick)
  LIMIT=240
fi
export RAY_USAGE_STATS_ENABLED=0
"$PY" -c "import SimpleITK, alnm_core; assert SimpleITK.__version__.startswith('0-alnm'), SimpleITK.__file__"

ARGS=(demo --profile paper --out "$WORK/reports" --data "$WORK/data" --name paper)
for s in "${SETS[@]}"; do ARGS+=(--set "$s"); done
say "alnm ${ARGS[*]}"
set +e
timeout "$LIMIT" "$PY" -m alnm_core.cli "${ARGS[@]}" >>"$LOG" 2>&1
RC=$?
set -e
say "pipeline exit code $RC"
RUN="$WORK/reports/paper"
[ -f "$RUN/report.html" ] && cp "$RUN/report.html" "$OUTDIR/report.html"
[ -f "$RUN/run.json" ] && cp "$RUN/run.json" "$OUTDIR/run.json"

say "alnm bench ${BENCH[*]}"
set +e
timeout 150 "$PY" -m alnm_core.cli bench "${BENCH[@]}" --json "$OUTDIR/bench.json" >>"$LOG" 2>&1
BRC=$?
set -e
say "bench exit code $BRC"

# one summary: the units' devices and seconds, the notebooks, the figures
"$PY" - "$OUTDIR" <<'EOF' | tee -a "$LOG"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
summary = {}
if (out / "run.json").is_file():
    info = json.loads((out / "run.json").read_text())
    units = list(info.get("steps", {}).get("train_units", {}).get("units", {}).values())
    summary["status"] = info.get("status")
    summary["units"] = len(units)
    summary["unit_devices"] = sorted({u.get("device") for u in units})
    summary["unit_seconds_mean"] = round(sum(u["seconds"] for u in units) / max(1, len(units)), 2)
    summary["train_crops_per_s_mean"] = round(sum(u["train_crops_per_s"] for u in units) / max(1, len(units)), 1)
    summary["steps_s"] = {k: v.get("seconds") for k, v in info.get("steps", {}).items()}
    summary["notebooks"] = {k: v.get("status") for k, v in info.get("notebooks", {}).items()}
    summary["device"] = info.get("device")
if (out / "bench.json").is_file():
    summary["bench"] = {r["name"]: round(r["value"], 4) for r in json.loads((out / "bench.json").read_text())}
(out / "summary.json").write_text(json.dumps(summary, indent=1))
print(json.dumps(summary, indent=1))
EOF
say "done: $OUTDIR ($(ls "$OUTDIR" | tr '\n' ' '))"
[ "$RC" = 0 ] && [ "$BRC" = 0 ]
