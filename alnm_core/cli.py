"""The ``alnm`` command: demo, run, status, predict, evaluate, report, lab, phantom, validate, bench.

Every command has ``--help``. Errors a user can fix (an invalid cohort, an unknown config key,
a run folder in use or holding another run) are one clear message and exit code 2; a failing
step or notebook, or a disk that cannot be written, is one message and exit code 1; never a
traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from .cohort import CohortError, CohortReport, inspect_cohort
from .config import DEFAULT_SEQUENCES, PROFILES, ConfigError, PhantomConfig, resolve_config
from .splits import SplitError
from .textsafe import printable

#: what ``--allow-outside-cohort`` sets (``input.allow_outside_cohort``)
ALLOW_OUTSIDE = "input.allow_outside_cohort=true"


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {printable(msg)}", file=sys.stderr, flush=True)


def _phantom_progress(done: int, total: int) -> None:
    if done == total or done % max(1, total // 10) == 0:
        _say(f"phantom: {done}/{total} patients written")


def cmd_phantom(args: argparse.Namespace) -> int:
    from .phantom import write_phantom

    base = resolve_config(args.profile).phantom if args.profile else PhantomConfig()
    cfg = PhantomConfig(**{**base.__dict__,
                           **({"n_patients": args.patients} if args.patients else {}),
                           **({"seed": args.seed} if args.seed is not None else {})})
    if cfg.n_patients < 8:
        raise ConfigError("--patients: at least 8")
    t0 = time.time()
    out = write_phantom(args.out, cfg, progress=_phantom_progress, transfer_syntax=args.transfer_syntax)
    _say(f"phantom cohort of {cfg.n_patients} patients in {time.time() - t0:.1f} s")
    print(out)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    seqs = [f"sequences=[{args.sequences}]"] if args.sequences else []
    cfg = resolve_config("demo", config_file=args.config,
                         overrides=seqs + (args.set or []) + _allow(args))
    report = inspect_cohort(args.cohort, cfg.sequences, read_images=not args.quick,
                            series_rules=cfg.roi.series_description, inputs=cfg.input)
    _print_series_and_warnings(report, list_all=args.list_series)
    problems = report.problems
    if problems:
        print(printable(f"cohort {args.cohort} is INVALID: {len(problems)} problem(s)"))
        for p in problems:
            print(printable(f"  - {p}", keep_newlines=False))
        return 1
    print(printable(f"cohort {args.cohort} is valid ({'files checked' if args.quick else 'all images read'})"))
    return 0


def _print_series_and_warnings(report: CohortReport, *, list_all: bool) -> None:
    """The DICOM series found per patient and folder (where a folder holds several, or all with
    ``list_all``), each with the manifest columns read from it; then the warnings."""
    folders: dict[tuple[str, str], dict[str, tuple[str, list[str]]]] = {}
    for pid, column, path, series in report.series:
        found = folders.setdefault((pid, path), {})
        for s in series:
            found.setdefault(s.uid, (s.line(), []))[1].extend([column] if s.selected else [])
    for (pid, path), found in folders.items():
        if list_all or len(found) > 1:
            print(printable(f"patient {pid}, {path}: {len(found)} series", keep_newlines=False))
            for line, columns in found.values():
                print(printable(f"  {line}" + (f"  <- {', '.join(columns)}" if columns else ""),
                                keep_newlines=False))
    for w in report.warnings:
        print(printable(f"warning: {w}", keep_newlines=False))


def run_name(text: str) -> str:
    """``--name``: one plain folder name inside ``--out`` (a ``/`` or ``..`` would put the run
    folder elsewhere)."""
    if (not text.strip() or text in (".", "..") or text.startswith(".") or any(c in text for c in "/\\\x00")):
        raise argparse.ArgumentTypeError(f"{printable(repr(text))} is not a run folder name: one folder "
                                         "name inside --out (no '/' or '\\', not starting with '.')")
    return text


def _trusted(args: argparse.Namespace) -> tuple[str, ...]:
    """The folders of ``--trust``, absolute (as recorded in ``run.json``)."""
    return tuple(os.path.abspath(os.path.expanduser(t)) for t in (getattr(args, "trust", None) or []))


def _allow(args: argparse.Namespace) -> list[str]:
    """The overrides ``--allow-outside-cohort`` and ``--trust`` stand for (recorded with the
    configuration)."""
    out = [ALLOW_OUTSIDE] if getattr(args, "allow_outside_cohort", False) else []
    if trusted := _trusted(args):
        out.append(f"input.trusted_folders={json.dumps(list(trusted))}")
    return out


def _inputs(args: argparse.Namespace):
    """What this user agrees to read (never a bundle's or a manifest's choice)."""
    from .config import InputConfig

    inputs = InputConfig(allow_outside_cohort=args.allow_outside_cohort, trusted_folders=_trusted(args))
    for t in inputs.trusted_folders:
        if not os.path.isdir(t):
            raise ConfigError(f"--trust {t}: not a folder")
    return inputs


def _print_status(paths, cfg) -> int:
    """Per step and notebook: up to date, stale (and why) or missing; exit 0 when all is up to date."""
    from .run.pipeline import status

    steps, nbs = status(paths, cfg)
    print(f"run {paths.root}")
    for st in steps:
        print("  " + st.line())
    for name, state in nbs:
        print(f"  notebook {name:<30} {state}")
    todo = sum(st.state != "up to date" for st in steps) + sum(s != "up to date" for _, s in nbs)
    print(f"{todo} of {len(steps) + len(nbs)} to run" if todo else "everything is up to date")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .runfolder import record
    from .runfolder.paths import RunPaths

    paths = RunPaths(Path(args.run).resolve())
    if not record.exists(paths.root):
        raise ConfigError(f"{args.run} is not a run folder (no run.json): give RUN, the folder "
                          "`alnm run` or `alnm demo` wrote")
    return _print_status(paths, record.config(paths.root))


def _run(cohort: Path, cfg, out: Path, name: str, *, fresh_name: bool, overwrite: bool,
         dry_run: bool = False) -> int:
    """Own the run folder, refuse what would mix or lose results, run the study."""
    from .cohort import load_cohort
    from .run.pipeline import PipelineError, run_study
    from .runfolder.lock import RunLock, check_reuse, move_aside, new_run_folder
    from .runfolder.paths import RunPaths

    load_cohort(cohort, cfg.sequences, inputs=cfg.input)  # refused before any folder is made
    if dry_run:
        target = out / name
        if not (target / "run.json").is_file():
            print(f"{target}: no run yet; every step and notebook would run")
            return 0
        return _print_status(RunPaths(target.resolve()), cfg)
    command = " ".join(shlex.quote(a) for a in sys.argv)
    if fresh_name:
        run_dir = new_run_folder(out, name)
    else:
        run_dir = out / name
        if overwrite and (run_dir / "run.json").is_file():
            with RunLock(RunPaths(run_dir).lock, command=command):
                old = move_aside(run_dir)
            (old / RunPaths(run_dir).lock.name).unlink(missing_ok=True)
            _say(f"--overwrite: the previous run was moved to {old}")
    paths = RunPaths(run_dir)
    t0 = time.time()
    with RunLock(paths.lock, command=command):
        check_reuse(run_dir, cfg.to_dict(), cohort)
        _say(f"run folder {run_dir}")
        try:
            report = run_study(cohort, cfg, run_dir, progress=_say)
        except PipelineError as exc:
            _say(f"FAILED after {time.time() - t0:.0f} s: {exc}")
            return 1
    _say(f"done in {time.time() - t0:.0f} s")
    print(printable(report.resolve()))
    return 0


def _check_executor(cfg) -> None:
    """Refuse ``run.executor=ray`` without Ray before anything is generated or written; pin the
    CPU instruction set (``train.cpu_isa``) before any kernel, worker or library starts."""
    from .numerics import pin_cpu_isa
    from .run.executor import for_config

    for_config(cfg)
    pin_cpu_isa(cfg.train.cpu_isa)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = resolve_config(args.profile, config_file=args.config, overrides=(args.set or []) + _allow(args))
    if getattr(args, "dry_run", False) and not args.name:
        raise ConfigError("--dry-run needs --name: the run folder whose steps would be compared")
    _check_executor(cfg)
    if args.name:
        return _run(Path(args.cohort), cfg, Path(args.out), args.name, fresh_name=False,
                    overwrite=args.overwrite, dry_run=args.dry_run)
    return _run(Path(args.cohort), cfg, Path(args.out), f"{cfg.profile}-{time.strftime('%Y%m%d-%H%M%S')}",
                fresh_name=True, overwrite=False)


def cmd_demo(args: argparse.Namespace) -> int:
    from .phantom_cache import ensure_phantom

    cfg = resolve_config(args.profile, overrides=args.set or [])
    _check_executor(cfg)
    _say(f"demo: profile {cfg.profile}, phantom of {cfg.phantom.n_patients} patients")
    t0 = time.time()
    cohort = ensure_phantom(cfg.profile, cfg.phantom, args.data, progress=_phantom_progress)
    _say(f"phantom ready in {time.time() - t0:.1f} s: {cohort}")
    return _run(cohort, cfg, Path(args.out), args.name or cfg.profile, fresh_name=False,
                overwrite=args.overwrite)


def cmd_predict(args: argparse.Namespace) -> int:
    """Score one patient or a cohort with a trained study's model bundle."""
    from .bundle import load_bundle, predict
    from .cohort import load_for_prediction, patient_folder_manifest
    from .numerics import pin_cpu_isa

    b = load_bundle(args.model)
    pin_cpu_isa(b.cfg.train.cpu_isa)
    if args.patient:
        manifest, root = patient_folder_manifest(args.patient, b.sequences)
    else:
        manifest, root = None, Path(args.cohort)
    # the reading rules are this user's, never the bundle's (it is another site's file)
    inputs = _inputs(args)
    cohort = load_for_prediction(root, b.sequences, manifest=manifest,
                                 series_rules=b.cfg.roi.series_description, inputs=inputs)
    out = Path(args.out or f"predictions-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    pred = predict(b, cohort, root, progress=_say)
    pred.patients.to_csv(out / "predictions.csv", index=False)
    if len(pred.attention):  # attention MIL: which slices the model weighed (per patient)
        pred.attention.to_csv(out / "attention.csv", index=False)
    th = b.meta["thresholds"].get("weighted_vote", {})
    doc = {"model": str(Path(args.model).resolve()), "run": b.meta.get("run"),
           "sequences": list(b.sequences), "models": {m: i.get("label") for m, i in b.models.items()},
           "weights": b.weights,
           "thresholds": {"decision": th.get("fixed"), "decision_youden": th.get("youden")},
           "patients": json.loads(pred.patients.to_json(orient="records"))}
    (out / "predictions.json").write_text(json.dumps(doc, indent=1))
    if not args.no_gradcam:
        from .report.saliency import gradcam_figures

        gradcam_figures(b, pred, out / "gradcam")
    for _, r in pred.patients.iterrows():
        extra = f"  ({r.note})" if r.note else ""
        _say(f"{r.patient_id}: fused {r.weighted_vote:.3f}, decision {int(r.decision)} at "
             f"{th.get('fixed')}{extra}")
    _say(f"{len(pred.patients)} patient(s) scored in {time.time() - t0:.1f} s")
    print(printable(out.resolve()))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """External validation of a trained study on another cohort."""
    from .run.external import run_external
    from .run.pipeline import PipelineError
    from .runfolder.lock import RunLock, new_run_folder
    from .runfolder.paths import RunPaths

    run_dir = new_run_folder(Path(args.out), args.name or f"external-{time.strftime('%Y%m%d-%H%M%S')}")
    t0 = time.time()
    try:
        with RunLock(RunPaths(run_dir).lock, command="alnm evaluate"):
            report = run_external(args.model, args.cohort, run_dir, progress=_say,
                                  inputs=_inputs(args))
    except PipelineError as exc:
        _say(f"FAILED after {time.time() - t0:.0f} s: {exc}")
        return 1
    except Exception:
        if not any(p.name != ".alnm-run.lock" for p in run_dir.iterdir()):
            run_dir.rmdir()  # refused before anything was written: leave no empty folder
        raise
    _say(f"done in {time.time() - t0:.0f} s")
    print(report.resolve())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print a run's report to PDF (the HTML report is written by every run)."""
    from .report.pdf import html_to_pdf

    run_dir = Path(args.run)
    html = run_dir / "report.html" if run_dir.is_dir() else run_dir
    if not html.is_file() or html.suffix != ".html":
        raise ConfigError(f"{args.run} is not a run folder with a report.html (give RUN, the folder "
                          "`alnm run` or `alnm demo` wrote, or its report.html)")
    if not args.pdf:
        print(printable(html.resolve()))
        return 0
    t0 = time.time()
    pdf = html_to_pdf(html, args.out or html.with_suffix(".pdf"), browser=args.browser,
                      paper=args.paper, progress=_say)
    _say(f"PDF written in {time.time() - t0:.1f} s")
    print(printable(pdf))
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    from .lab import launch, register_kernel, write_lab_settings

    if args.register_only:
        print(register_kernel())
        print(write_lab_settings())
        return 0
    return launch(args.root, port=args.port, open_browser=not args.no_browser)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_benchmarks

    run_benchmarks(args.only.split(",") if args.only else None, quick=args.quick, json_path=args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alnm",
        description="ALNM prediction from multiparametric breast MRI (Zhang et al. 2022, "
                    "reproduced and extended): cohort checks, phantom data, the study pipeline.")
    sub = p.add_subparsers(dest="command", required=True)
    overwrite_help = ("if the run folder holds a run, move it aside (renamed <name>.old-<time>, "
                      "never deleted) and start afresh; without it, a folder holding a run with "
                      "other settings is refused")
    trust_help = ("a folder outside the cohort folder that its image and mask paths may lead into, "
                  "e.g. a public collection's download that `alnm import duke` linked to (repeatable; "
                  "sets input.trusted_folders, recorded in run.json); paths into any other folder "
                  "are still refused")
    allow_help = ("read image and mask paths that resolve (symlinks followed) outside the cohort "
                  "folder; without it they are refused naming patient, column and file. Only for "
                  "a manifest you trust (sets input.allow_outside_cohort=true, recorded in run.json)")

    d = sub.add_parser("demo", help="run the whole study on the built-in phantom cohort",
                       description="Generate (or reuse) the phantom cohort and run the study on it; "
                                   "prints the path of report.html.")
    d.add_argument("--out", default="reports", help="folder that receives the run folder (default: reports)")
    d.add_argument("--profile", default="demo", choices=PROFILES, help="profile (default: demo)")
    d.add_argument("--name", type=run_name, help="run folder name (default: the profile name)")
    d.add_argument("--data", help="where phantom cohorts are cached (default: $ALNM_DATA, else "
                                  "~/.cache/alnm/data)")
    d.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    d.add_argument("--overwrite", action="store_true", help=overwrite_help)
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("run", help="run the study on a cohort folder",
                       description="Resolve profile + --config + --set once (written to run.json), "
                                   "split by patient, run the steps and notebooks, write report.html.")
    r.add_argument("--cohort", required=True, help="folder holding cohort.csv")
    r.add_argument("--profile", default="demo", choices=PROFILES, help="profile (default: demo)")
    r.add_argument("--config", help="YAML file overriding profile keys")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. train.epochs=5 (repeatable)")
    r.add_argument("--out", default="reports", help="folder that receives the run folder (default: reports)")
    r.add_argument("--name", type=run_name, help="run folder name (default: <profile>-<timestamp>, never an existing folder)")
    r.add_argument("--overwrite", action="store_true", help=overwrite_help)
    r.add_argument("--dry-run", action="store_true",
                   help="run nothing: show, per step and notebook of the run folder --name, whether "
                        "it is up to date, stale (naming the key or upstream that changed) or missing "
                        "under these settings")
    r.add_argument("--allow-outside-cohort", action="store_true", help=allow_help)
    r.add_argument("--trust", action="append", metavar="FOLDER", help=trust_help)
    r.set_defaults(func=cmd_run)

    st = sub.add_parser("status", help="which steps of a run are up to date, stale or missing",
                        description="Per step and notebook of a run folder: up to date, stale (naming "
                                    "the configuration key, upstream step or cohort files that "
                                    "changed) or missing, as make -n would; nothing is run.")
    st.add_argument("run", help="a run folder")
    st.set_defaults(func=cmd_status)

    ph = sub.add_parser("phantom", help="write a synthetic multiparametric MRI cohort (DICOM + NIfTI)",
                        description="Write the phantom cohort: DICOM series, NIfTI masks, cohort.csv.")
    ph.add_argument("--out", required=True, help="target folder")
    ph.add_argument("--patients", type=int, help="number of patients (default: the profile's)")
    ph.add_argument("--seed", type=int, help="random seed (default: the profile's)")
    ph.add_argument("--profile", default="demo", choices=PROFILES,
                    help="take matrix scale and label strengths from this profile (default: demo)")
    ph.add_argument("--transfer-syntax", default="explicit", choices=["explicit", "jpeg-lossless", "enhanced"],
                    help="DICOM form: one uncompressed file per slice (default), the same as JPEG "
                         "Lossless SV1, or one enhanced (legacy converted) MR file per series")
    ph.set_defaults(func=cmd_phantom)

    v = sub.add_parser("validate", help="check a cohort folder against the manifest contract",
                       description="Report every problem at once (patient, column, file); exit 1 "
                                   "if any. DICOM folders holding several series are listed, so "
                                   "series rules can be written.")
    v.add_argument("--cohort", required=True, help="folder holding cohort.csv")
    v.add_argument("--sequences", help=f"comma-separated sequence names (default: {','.join(DEFAULT_SEQUENCES)})")
    v.add_argument("--quick", action="store_true", help="check that files exist without reading them")
    v.add_argument("--config", help="YAML file with sequences and series rules (roi.series_description)")
    v.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="config override, e.g. roi.series_description.DWI='diff|dwi' (repeatable)")
    v.add_argument("--list-series", action="store_true",
                   help="list the DICOM series of every image folder (<- marks the columns read from each)")
    v.add_argument("--allow-outside-cohort", action="store_true", help=allow_help)
    v.add_argument("--trust", action="append", metavar="FOLDER", help=trust_help)
    v.set_defaults(func=cmd_validate)

    from .importers import add_parser as add_import_parser  # `alnm import <recipe>`
    add_import_parser(sub)

    pr = sub.add_parser("predict", help="score patients with a trained study's model bundle",
                        description="Apply RUN/model (frozen: nothing is refit) to one patient folder "
                                    "or a cohort: per patient each sequence's probability, the fused "
                                    "probability and the decision at the frozen thresholds, as CSV "
                                    "and JSON, plus a Grad-CAM PNG per sequence. A patient lacking a "
                                    "sequence is scored from those present, weights renormalised.")
    pr.add_argument("--model", required=True, help="the model bundle folder (RUN/model)")
    grp = pr.add_mutually_exclusive_group(required=True)
    grp.add_argument("--patient", help="one patient's folder: <SEQ>/ (DICOM) or <SEQ>.nii.gz, and "
                                       "<SEQ>_roi.nii.gz per sequence, or a one-row cohort.csv")
    grp.add_argument("--cohort", help="a folder holding cohort.csv (labels not needed)")
    pr.add_argument("--out", help="output folder (default: predictions-<timestamp>)")
    pr.add_argument("--no-gradcam", action="store_true", help="skip the Grad-CAM figures")
    pr.add_argument("--allow-outside-cohort", action="store_true", help=allow_help)
    pr.add_argument("--trust", action="append", metavar="FOLDER", help=trust_help)
    pr.set_defaults(func=cmd_predict)

    ev = sub.add_parser("evaluate", help="external validation of a trained study on another cohort",
                        description="Apply RUN/model, frozen, to a labelled cohort and write a report: "
                                    "Table 3 with CIs, ROC, calibration, decision curve, and an "
                                    "unpaired DeLong test against the run's own test set.")
    ev.add_argument("--model", required=True, help="the model bundle folder (RUN/model)")
    ev.add_argument("--cohort", required=True, help="a folder holding cohort.csv with labels (alnm)")
    ev.add_argument("--out", default="reports", help="folder that receives the run folder (default: reports)")
    ev.add_argument("--name", type=run_name, help="run folder name (default: external-<timestamp>, never an existing folder)")
    ev.add_argument("--allow-outside-cohort", action="store_true", help=allow_help)
    ev.add_argument("--trust", action="append", metavar="FOLDER", help=trust_help)
    ev.set_defaults(func=cmd_evaluate)

    rp = sub.add_parser("report", help="a run's report, printed to PDF with --pdf",
                        description="Print RUN/report.html to PDF through headless Chromium "
                                    "(A4 or US Letter; each section starts a page, tables and "
                                    "figures are not cut), inert: JavaScript off, nothing loaded "
                                    "but the report itself, Chromium's sandbox on where it can "
                                    "run; without --pdf prints the HTML report's path.")
    rp.add_argument("run", help="a run folder (or its report.html)")
    rp.add_argument("--pdf", action="store_true", help="write report.pdf beside report.html")
    rp.add_argument("--out", help="PDF path (default: RUN/report.pdf)")
    rp.add_argument("--browser", help="Chromium/Chrome executable (default: chromium on PATH)")
    rp.add_argument("--paper", choices=["a4", "letter"], default="a4", help="paper size (default: a4)")
    rp.set_defaults(func=cmd_report)

    lb = sub.add_parser("lab", help="open the notebooks in JupyterLab with the project's kernel",
                        description="Register this environment's interpreter as the Jupyter kernel "
                                    "'alnm' (the name papermill uses too), make JupyterLab open the "
                                    "jupytext .py notebooks as notebooks, and start JupyterLab.")
    lb.add_argument("root", nargs="?", help="folder to serve (default: ./notebooks, else the "
                                            "package's notebooks)")
    lb.add_argument("--port", type=int, help="port (default: JupyterLab's, 8888 or the next free)")
    lb.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lb.add_argument("--register-only", action="store_true",
                    help="register the kernel and the Lab settings, then exit")
    lb.set_defaults(func=cmd_lab)

    b = sub.add_parser("bench", help="print throughput figures (phantom, reading, statistics, ROI, training)",
                       description="Benchmarks; numbers go to stdout, nothing is asserted.")
    b.add_argument("--only", help="comma-separated subset: phantom,read,delong,roi,radiomics,train,coverage,"
                                  "ray (smoke grid: local vs Ray), amp (fp32 vs bf16), pack (4 "
                                  "trainings packed on one GPU by Ray), mil (attention MIL vs slice "
                                  "vote throughput), tune (Optuna / Ray per-trial overhead)")
    b.add_argument("--quick", action="store_true", help="smaller sizes (seconds)")
    b.add_argument("--json", help="also write the figures to this JSON file")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    from .bundle import BundleError
    from .report.pdf import PdfError
    from .roi import RoiError
    from .runfolder.lock import RunRefused
    from .runfolder.record import RunRecordMissing
    from .storage import StorageError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, CohortError, SplitError, RunRefused, BundleError, RoiError, RunRecordMissing) as exc:
        print(printable(f"alnm {args.command}: {exc}"), file=sys.stderr)
        return 2
    except (StorageError, PdfError) as exc:
        print(printable(f"alnm {args.command}: {exc}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        import logging

        # a kernel killed by the same Ctrl-C leaves an unretrieved task error that asyncio would
        # print at exit as a traceback; the interruption is the message
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        print("interrupted: files written so far are intact; run the same command again to "
              "resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
