"""The data steps: the cohort and its split, Table 1, the ROI crops, the radiomics features.

Each step is a ``compute(call)`` that writes its declared artifacts and a ``load(call)`` that
reads its result back (the declarations are in :mod:`alnm_core.run.registry`).
"""
from __future__ import annotations

import pandas as pd

from ..cohort import load_cohort, paths_outside
from ..config import StatsConfig
from ..runfolder import record
from ..splits import fold_table, make_splits
from ..stats import build_table1
from ..report.views import crops_summary
from ..storage import sha256_file, write_csv
from .graph import StepCall
from .results import CohortResult, Prepared, RoiResult

SPLIT_ORDER = ("train", "val", "dev", "test")


# ----------------------------------------------------------------------------- shared facts
def cohort(call: StepCall) -> pd.DataFrame:
    """The validated manifest (read and checked once per process)."""
    r = call.session
    return r.memo("cohort", lambda: load_cohort(r.cohort_dir, r.cfg.sequences, inputs=r.cfg.input))


def manifest_digest(call: StepCall) -> list:
    """The bytes of ``cohort.csv`` and of ``cohort.json`` (label definition, unrecorded
    covariates), when there is one."""
    r = call.session
    info = r.cohort_dir / "cohort.json"
    return r.memo("cohort.csv", lambda: [sha256_file(r.cohort_dir / "cohort.csv"),
                                         sha256_file(info) if info.is_file() else None])


def files_signature(call: StepCall, seq: str) -> list:
    """(name, size, mtime) of every image and mask file of a sequence: cheap change detection
    between runs (the cross-run crop cache keys on the bytes). Computed once per process."""
    def make() -> list:
        root = call.session.cohort_dir
        sig = []
        for _, row in cohort(call).sort_values("patient_id").iterrows():
            for col in (f"{seq}_image", f"{seq}_roi"):
                p = root / row[col]
                files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
                sig.append([row["patient_id"], col] + [[f.name, f.stat().st_size, f.stat().st_mtime_ns]
                                                       for f in files])
        return sig

    return call.session.memo(f"files:{seq}", make)


def sequence_files(call: StepCall) -> list:
    return [manifest_digest(call), files_signature(call, call.seq)]


def limits(call: StepCall) -> dict:
    """The reading limits of ``input.*`` (checked from headers, before pixels are decoded)."""
    return {"max_voxels": call.cfg.input.max_voxels, "max_files": call.cfg.input.max_files}


def excluded_patients(call: StepCall) -> set[str]:
    """Patients an ROI step left out (of every model, so all see the same patients)."""
    return {e["patient_id"] for r in call.up_all("roi").values() for e in r.exclusions}


# ----------------------------------------------------------------------------- prepare
def compute_prepare(call: StepCall) -> dict:
    cfg = call.cfg
    s = cfg.split
    splits = make_splits(cohort(call), test_size=s.test_size, val_fraction=s.val_fraction,
                         n_folds=s.n_folds, seed=cfg.seed, use_manifest_split=s.use_manifest_split,
                         scheme=s.scheme, test_where=s.test_where)
    write_csv(splits, call.out("artifacts/splits.csv"), what="the patient-level split")
    folds = (fold_table(splits, n_folds=s.n_folds, repeats=s.repeats, seed=cfg.seed) if s.scheme == "kfold"
             else pd.DataFrame(columns=["patient_id", "repeat", "fold"]))
    write_csv(folds, call.out("artifacts/folds.csv"), what="the folds of every repeat")
    return {"n_patients": len(splits), **outside_record(call)}


def outside_record(call: StepCall) -> dict:
    """How many image and mask paths were read from outside the cohort folder, and by whose
    leave (``input.trusted_folders`` or ``input.allow_outside_cohort``): for ``run.json`` and
    section 1. Empty when every path is inside."""
    inp = call.cfg.input
    if not (inp.allow_outside_cohort or inp.trusted_folders):
        return {}
    out = paths_outside(call.session.cohort_dir, cohort(call), call.cfg.sequences, max_files=inp.max_files)
    if not out:
        return {}
    return {"read_outside_cohort": {"paths": len(out), "trusted_folders": list(inp.trusted_folders),
                                    "allow_outside_cohort": inp.allow_outside_cohort}}


def load_prepare(call: StepCall) -> Prepared:
    paths = call.paths
    splits = pd.read_csv(paths.splits, dtype={"patient_id": str})
    folds = pd.read_csv(paths.folds, dtype={"patient_id": str}) if call.cfg.split.scheme == "kfold" else None
    return Prepared(cohort=cohort(call), splits=splits, folds=folds, cohort_dir=call.session.cohort_dir)


# ----------------------------------------------------------------------------- describe_cohort
def table1_pair(all_patients: pd.DataFrame, test_set: pd.DataFrame,
                s: StatsConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 of all patients and of the test set, each with its own categorical test rule
    (``stats.categorical_test`` and ``stats.categorical_test_test_set``)."""
    kw = dict(continuous_method=s.continuous_test, ordinal_method=s.ordinal_test,
              normality_test=s.normality_test, alpha=s.alpha)
    test_rule = s.categorical_test if s.categorical_test_test_set == "same" else s.categorical_test_test_set
    return (build_table1(all_patients, categorical_method=s.categorical_test, **kw),
            build_table1(test_set, categorical_method=test_rule, **kw))


def _cohort_data(prep: Prepared) -> pd.DataFrame:
    return prep.cohort.merge(prep.splits[["patient_id", "split", "fold"]].rename(columns={"split": "part"}),
                             on="patient_id")


def compute_describe_cohort(call: StepCall) -> None:
    prep = call.up("prepare")
    data = _cohort_data(prep)
    t_all, t_test = table1_pair(data, data[data.part == "test"], call.cfg.stats)
    table1 = pd.concat([t_all.assign(population="All patients"), t_test.assign(population="Test set")],
                       ignore_index=True)
    write_csv(table1, call.out("artifacts/table1.csv"), what="Table 1")
    write_csv(partition_table(data, call.cfg.stats), call.out("artifacts/table1_partitions.csv"),
              what="the characteristics by partition")
    write_csv(missing_data(call, prep), call.out("artifacts/missing_data.csv"), what="the missing data table")


def partition_table(data: pd.DataFrame, s: StatsConfig) -> pd.DataFrame:
    """Characteristics of the development and the test patients side by side (TRIPOD+AI 20),
    the outcome among them, with the partitions compared by Table 1's rules."""
    d = data.assign(in_test=(data.part == "test").astype(int),
                    outcome=data.alnm.map({1: "ALNM", 0: "non-ALNM"}))
    kw = dict(continuous_method=s.continuous_test, ordinal_method=s.ordinal_test,
              normality_test=s.normality_test, alpha=s.alpha)
    return build_table1(d, group="in_test", group_labels=("Test", "Development"),
                        categorical=(("outcome", "Outcome", ("ALNM", "non-ALNM")),
                                     ("margin", "Tumor margin", ("regular", "irregular")),
                                     ("tic_type", "TIC curve type", ("I", "II", "III")),
                                     ("field_strength", "Field strength", ())),
                        categorical_method=s.categorical_test, **kw)


def missing_data(call: StepCall, prep: Prepared) -> pd.DataFrame:
    """Per manifest variable: values missing and how they were handled (TRIPOD+AI 9 / CLAIM 20)."""
    from ..cohort import read_cohort_info

    raw = pd.read_csv(call.session.cohort_dir / "cohort.csv", dtype=str, keep_default_na=False)
    not_recorded = set(read_cohort_info(call.session.cohort_dir).get("not_recorded", []))
    rows = []
    for col in ["alnm", "age", "tumor_size_cm", "margin", "tic_type", "field_strength"]:
        if col not in raw.columns:
            continue
        n_missing = int(raw[col].str.strip().eq("").sum())
        if col in not_recorded:
            how = "not recorded by this cohort: not shown in Table 1's tests, not a clinical predictor"
        elif n_missing:
            how = "listed by the cohort check (a patient without it cannot be analysed)"
        else:
            how = "complete"
        rows.append({"variable": col, "patients": len(raw), "missing": n_missing, "handling": how})
    for seq in call.cfg.sequences:
        rows.append({"variable": f"{seq} image and mask", "patients": len(raw),
                     "missing": int(raw.get(f"{seq}_image", pd.Series([], dtype=str)).str.strip().eq("").sum()),
                     "handling": "a patient whose ROI cannot be cropped is excluded from every model "
                                 f"(roi.on_error={call.cfg.roi.on_error}) and listed in section 2"})
    return pd.DataFrame(rows)


def patient_flow(splits: pd.DataFrame) -> pd.DataFrame:
    """Patients with and without ALNM per split, and the total, in split order."""
    flow = (splits.groupby(["split", "label"]).size().unstack(fill_value=0)
            .rename(columns={0: "non-ALNM", 1: "ALNM"})
            .reindex([s for s in SPLIT_ORDER if s in set(splits.split)]))
    for c in ("ALNM", "non-ALNM"):
        if c not in flow.columns:
            flow[c] = 0
    flow = flow[["ALNM", "non-ALNM"]]
    flow["total"] = flow.sum(axis=1)
    return flow


def load_describe_cohort(call: StepCall) -> CohortResult:
    prep = call.up("prepare")
    read = lambda rel: pd.read_csv(call.paths.root / rel, keep_default_na=False)  # noqa: E731
    return CohortResult(cohort=prep.cohort, splits=prep.splits, data=_cohort_data(prep),
                        table1=pd.read_csv(call.paths.table1, keep_default_na=False),
                        flow=patient_flow(prep.splits), partitions=read("artifacts/table1_partitions.csv"),
                        missing=read("artifacts/missing_data.csv"))


# ----------------------------------------------------------------------------- roi
def compute_roi(call: StepCall) -> dict:
    from ..roi import extract_sequence

    seq, say = call.seq, call.say

    def prog(i: int, n: int) -> None:
        if i == n or i % max(1, n // 4) == 0:
            say(f"ROI {seq}: {i}/{n} patients")

    crops = extract_sequence(cohort(call), call.session.cohort_dir, seq, call.cfg.roi, progress=prog,
                             limits=limits(call))
    crops.save(call.out("artifacts/roi/{seq}.npz"))
    warnings = [dict(patient_id=p, sequence=seq, warning=w)
                for p, ws in zip(crops.per_patient.patient_id, crops.per_patient.warnings) if ws
                for w in ws.split("; ")]
    return {"content_key": crops.key, "exclusions": crops.exclusions, "warnings": warnings}


def load_roi(call: StepCall) -> RoiResult:
    from ..roi import SequenceCrops

    crops = SequenceCrops.load(call.paths.roi(call.seq))
    st = record.step_state(call.paths, call.name) or {}
    return RoiResult(sequence=call.seq, crops=crops, exclusions=list(st.get("exclusions", [])),
                     warnings=list(st.get("warnings", [])), summary=crops_summary(crops))


# ----------------------------------------------------------------------------- radiomics features
def compute_radiomics_features(call: StepCall) -> dict:
    from ..radiomics_features import extract_sequence as extract_features

    seq, say = call.seq, call.say

    def prog(i: int, n: int) -> None:
        if i == n or i % max(1, n // 4) == 0:
            say(f"radiomics {seq}: {i}/{n} patients")

    feats = extract_features(cohort(call), call.session.cohort_dir, seq, call.cfg.roi, call.cfg.radiomics,
                             progress=prog, limits=limits(call))
    write_csv(feats.features, call.out("artifacts/radiomics/{seq}.csv"), what=f"the {seq} radiomics features")
    return {"content_key": feats.key, "exclusions": feats.exclusions,
            "seconds_per_patient": round(feats.seconds_per_patient, 4),
            "n_features": int(feats.features.shape[1] - 1)}


def load_radiomics_features(call: StepCall) -> dict:
    st = record.step_state(call.paths, call.name) or {}
    return {"features": pd.read_csv(call.paths.radiomics_features(call.seq), dtype={"patient_id": str}),
            "exclusions": list(st.get("exclusions", [])),
            "seconds_per_patient": st.get("seconds_per_patient", float("nan"))}
