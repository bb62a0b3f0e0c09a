"""Input that alnm does not trust (issue 21): model bundles from another site, weights files,
terminal text, PDFs. Cohort, DICOM, NIfTI and config cases are in test_cohort.py,
test_dicom.py, test_imaging.py and test_config.py; docs/security.md says what is covered."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from alnm_core.bundle import CHECKSUMS, BundleError, load_bundle, predict, verify, write_bundle
from alnm_core.cli import main
from alnm_core.config import resolve_config
from alnm_core.models import CheckpointError, load_network, make_network
from alnm_core.textsafe import printable


# ----------------------------------------------------------------------------- a bundle to attack
def _rehash(root: Path, extra: dict[str, Path] | None = None) -> None:
    """Recompute checksums.sha256 as a forger would (every file inside, plus ``extra``)."""
    lines = [f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.relative_to(root).as_posix()}"
             for f in sorted(root.rglob("*")) if f.is_file() and f.name != CHECKSUMS]
    lines += [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {rel}" for rel, p in (extra or {}).items()]
    (root / CHECKSUMS).write_text("\n".join(lines) + "\n")


def _edit_meta(root: Path, change) -> None:
    meta = json.loads((root / "bundle.json").read_text())
    change(meta)
    (root / "bundle.json").write_text(json.dumps(meta))
    _rehash(root)


M = "slice_vote_T2WI"


@pytest.fixture(scope="module")
def bundle_src(tmp_path_factory) -> Path:
    """A bundle of one sequence (T2WI) and two fold models with random weights, written by
    write_bundle as a run would (no pipeline needed)."""
    tmp = tmp_path_factory.mktemp("bundle")
    cfg = resolve_config("smoke", overrides=["sequences=[T2WI]"])
    torch.manual_seed(0)
    units = []
    for uid in ("r1-f1", "r1-f2"):
        ckpt = tmp / f"{uid}.pt"
        torch.save(make_network(cfg.train).state_dict(), ckpt)
        units.append((uid, ckpt))
    internal = pd.DataFrame({"label": [0, 1, 0, 1], M: [.2, .7, .4, .6], "weighted_vote": [.2, .7, .4, .6]})
    return write_bundle(tmp / "model", cfg=cfg, models={M: {"family": "slice_vote", "sequence": "T2WI", "label": "T2WI"}},
                        units={M: units}, weights={M: 1.0},
                        thresholds={M: {"fixed": 0.5}, "weighted_vote": {"fixed": 0.5, "youden": 0.45}},
                        internal_test=internal, cohort_summary={"n_patients": 4}, validation={},
                        model_card="# Model card\n", run_name="attack-test")


@pytest.fixture
def bundle(bundle_src, tmp_path) -> Path:
    """A writable copy, three folders deep (so ../../.. stays under tmp_path)."""
    dst = tmp_path / "a" / "b" / "model"
    shutil.copytree(bundle_src, dst)
    return dst


def test_an_intact_bundle_loads_and_predicts(bundle, tiny_cohort, tmp_path):
    b = load_bundle(bundle)
    assert b.sequences == ("T2WI",) and len(b.unit_weights(M)) == 2 and verify(bundle) == []
    from alnm_core.cohort import load_for_prediction

    cohort = load_for_prediction(tiny_cohort, b.sequences).head(2)
    out = predict(b, cohort, tiny_cohort, cache_dir=tmp_path / "cache")
    assert out.patients.weighted_vote.between(0, 1).all() and len(out.patients) == 2


def test_weights_outside_the_bundle_are_refused_even_with_recomputed_checksums(bundle, tmp_path, tiny_cohort, capsys):
    """The issue's case: a unit path ../../../../tmp/elsewhere/weights and the checksum file
    recomputed; predict used those weights (0.4208 -> 0.4655) and exited 0."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(bundle / "weights" / M / "r1-f1.pt", elsewhere / "weights.pt")
    rel = os.path.relpath(elsewhere / "weights", bundle / "weights" / M)
    assert rel.startswith("../../../../")
    _edit_meta(bundle, lambda m: m["models"][M]["units"].__setitem__(0, rel))
    with pytest.raises(BundleError, match=r"models.slice_vote_T2WI.units .* is not a list of plain unit names"):
        load_bundle(bundle)
    assert main(["predict", "--model", str(bundle), "--cohort", str(tiny_cohort),
                 "--out", str(tmp_path / "out"), "--no-gradcam"]) == 2
    err = capsys.readouterr().err
    assert "models.slice_vote_T2WI.units" in err and "Traceback" not in err and not (tmp_path / "out").exists()
    # the forger lists the outside file too: the checksum entry itself is refused
    _rehash(bundle, {f"weights/{M}/{rel}.pt": elsewhere / "weights.pt"})
    problems = "; ".join(verify(bundle))
    assert f"entry 'weights/{M}/{rel}.pt' is not a plain path inside the bundle" in problems


@pytest.mark.parametrize("unit", ["/tmp/elsewhere/weights", "..", "a\\b", "x" * 65, ""])
def test_unit_names_are_plain_path_components(bundle, unit):
    _edit_meta(bundle, lambda m: m["models"][M]["units"].__setitem__(0, unit))
    with pytest.raises(BundleError, match="models.slice_vote_T2WI.units"):
        load_bundle(bundle)


def test_a_unit_not_covered_by_the_checksums_is_refused(bundle):
    """A unit id that names a file of the bundle the checksum list does not cover."""
    (bundle / "weights" / M / "r1-f3.pt").write_bytes(b"")
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["models"][M]["units"].append("r1-f3")
    (bundle / "bundle.json").write_text(json.dumps(meta))
    lines = [ln for ln in (bundle / CHECKSUMS).read_text().splitlines() if "bundle.json" not in ln]
    digest = hashlib.sha256((bundle / "bundle.json").read_bytes()).hexdigest()
    (bundle / CHECKSUMS).write_text("\n".join(lines + [f"{digest}  bundle.json"]) + "\n")
    (bundle / "weights" / M / "r1-f3.pt").unlink()
    with pytest.raises(BundleError, match=r"unit 'r1-f3' of slice_vote_T2WI refers to .*r1-f3.pt, which is not a file "
                                          r"of the bundle covered by checksums.sha256"):
        load_bundle(bundle)


def test_links_out_of_the_bundle_are_refused(bundle, tmp_path):
    outside = tmp_path / "evil.pt"
    shutil.copy(bundle / "weights" / M / "r1-f1.pt", outside)
    target = bundle / "weights" / M / "r1-f1.pt"
    target.unlink()
    target.symlink_to(outside)
    _rehash(bundle)  # the forger's checksum of the linked file is right
    with pytest.raises(BundleError, match=r"r1-f1.pt: links to .*evil.pt, outside the bundle"):
        load_bundle(bundle)
    target.unlink()
    shutil.copy(outside, target)
    (bundle / "weights" / M).rename(bundle / "weights" / "real")
    (bundle / "weights" / M).symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(BundleError, match="outside the bundle"):
        load_bundle(bundle)


@pytest.mark.parametrize("line", ["0" * 64 + "  /etc/passwd", "0" * 64 + "  weights/../../x",
                                  "not a digest  bundle.json", "0" * 64 + "  weights//slice_vote_T2WI/r1-f1.pt"])
def test_checksum_entries_must_be_plain_paths_inside(bundle, line):
    with open(bundle / CHECKSUMS, "a") as fh:
        fh.write(line + "\n")
    n = len((bundle / CHECKSUMS).read_text().splitlines())
    with pytest.raises(BundleError, match=f"{CHECKSUMS}, line {n}: "):
        load_bundle(bundle)


@pytest.mark.parametrize("change, fragment", [
    (lambda m: m.__setitem__("run", {"<b>": 1}), "run is missing or not str"),
    (lambda m: m.__setitem__("sequences", ["../T2WI"]), "sequences .* are not distinct plain names"),
    (lambda m: m["ensemble"].__setitem__("weights", {M: "1; DROP"}), "ensemble.weights"),
    (lambda m: m["ensemble"].__setitem__("weights", {M: float("nan")}), "ensemble.weights"),
    (lambda m: m["thresholds"]["weighted_vote"].pop("fixed"), "thresholds.weighted_vote.fixed is missing"),
    (lambda m: m["thresholds"].__setitem__("T2WI", {"fixed": "0.5"}), "thresholds.T2WI is not an object of numbers"),
    (lambda m: m["config"]["train"].__setitem__("arch", "resnet1000"), "config: train.arch"),
    (lambda m: m.__setitem__("training_cohort", ["x"]), "training_cohort is not an object"),
])
def test_bundle_json_is_checked_for_shape(bundle, change, fragment):
    """Strings read from a bundle are another site's data: types and shapes are checked before
    anything uses them (the report escapes their text)."""
    _edit_meta(bundle, change)
    with pytest.raises(BundleError, match=fragment):
        load_bundle(bundle)


def test_bundle_json_that_is_not_json(bundle):
    (bundle / "bundle.json").write_bytes(b"\xff\xfe not json")
    _rehash(bundle)
    with pytest.raises(BundleError, match="bundle.json: not readable JSON"):
        load_bundle(bundle)


# ----------------------------------------------------------------------------- weights files
class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED-by-alnm-test",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("content, fragment", [
    ("torch.save", "refused: it holds Python objects other than tensors"),
    (pickle.dumps({"conv.weight": _Payload()}), "refused: not a state dict of tensors"),
    (b"\x00garbage" * 100, "refused: not a state dict of tensors"),
    (b"PK\x03\x04" + b"\x00" * 200, "not a PyTorch checkpoint"),
    (None, "its tensors do not fit a resnet18 network"),
], ids=["torch-save-payload", "pickle-payload", "garbage", "broken-zip", "other-network"])
def test_a_weights_file_replaced_is_a_named_error(bundle, tmp_path, tiny_cohort, capsys, monkeypatch,
                                                  content, fragment):
    """Before: a raw UnpicklingError traceback that advised weights_only=False, without the file."""
    monkeypatch.chdir(tmp_path)
    w = bundle / "weights" / M / "r1-f2.pt"
    if content is None:
        torch.save({"fc.weight": torch.zeros(2, 3)}, w)
    elif content == "torch.save":
        torch.save({"conv.weight": _Payload()}, w)
    else:
        w.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"{w}: .*" + fragment) as err:
        load_network(resolve_config("smoke").train, w)
    assert "weights_only=False" not in str(err.value)
    _rehash(bundle)
    assert main(["predict", "--model", str(bundle), "--cohort", str(tiny_cohort),
                 "--out", str(tmp_path / "out"), "--no-gradcam"]) == 2
    err = capsys.readouterr().err
    assert f"unit 'r1-f2' of {M}: {w}" in err and fragment in err
    assert "Traceback" not in err and "weights_only" not in err
    assert not (tmp_path / "PWNED-by-alnm-test").exists()


# ----------------------------------------------------------------------------- terminal text
@pytest.mark.parametrize("text, shown", [
    ("P001\x1b[2J\x1b]0;title\x07", "P001\\x1b[2J\\x1b]0;title\\x07"),
    ("a\rb", "a\\rb"),
    ("admin\u202e\u2066txt.exe", "admin\\u202e\\u2066txt.exe"),
    ("\x9b31m", "\\x9b31m"),
    ("line 1\nline 2", "line 1\nline 2"),
    ("Zürich 中文 ✓", "Zürich 中文 ✓"),
])
def test_printable_escapes_control_characters_only(text, shown):
    assert printable(text) == shown
    assert printable("a\nb", keep_newlines=False) == "a\\nb"


def test_cli_messages_are_printed_escaped(tmp_path, capsys):
    bad = tmp_path / "no\x1b[2Jsuch\u202emodel"
    assert main(["predict", "--model", str(bad), "--cohort", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err and "no\\x1b[2Jsuch\\u202emodel" in err


# ----------------------------------------------------------------------------- the PDF
needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("pdftotext") is None,
                                    reason="Debian chromium and poppler-utils (pdftotext) not installed")
HOSTILE = """<!doctype html><html><head><title>ALNM report: hostile &amp; co</title>
<meta http-equiv="refresh" content="1;url=data:text/html,<h1>FORGED</h1>">
<link rel="stylesheet" href="file:///etc/passwd"><style>h1{color:#345}</style></head><body>
<h1>THE REPORT</h1><p>field strength: <iframe src="file:///etc/passwd" width="600" height="400"></iframe></p>
<object data="file:///etc/passwd" width="600" height="400"></object><embed src="file:///etc/hostname">
<img src="file:///etc/passwd"><img src="y" onerror="alert(3)"><img src="https://example.org/beacon.png">
<script>alert(1); document.body.insertAdjacentHTML("beforeend", "<p>SCRIPT RAN</p>");</script>
<p>size <img alt="inline" src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==" width="40"> end</p>
</body></html>"""


def _pdf_text(pdf: Path) -> str:
    import subprocess

    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def _pdf_info(pdf: Path) -> dict[str, str]:
    import subprocess

    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in out.splitlines())}


@needs_chromium
def test_the_pdf_is_printed_inert(tmp_path):
    """Before: an <iframe src=file:///etc/passwd> in a manifest field put the password file in
    the PDF, and alert() made --pdf hang 180 s. Scripts are off, nothing outside the report's
    own bytes is loaded, a refresh cannot replace the page."""
    import time

    from alnm_core.report.pdf import html_to_pdf

    html = tmp_path / "report.html"
    html.write_text(HOSTILE)
    notes = []
    t0 = time.time()
    pdf = html_to_pdf(html, tmp_path / "report.pdf", progress=notes.append, timeout_s=60)
    seconds = time.time() - t0
    text = _pdf_text(pdf)
    assert "THE REPORT" in text and "size" in text and "end" in text
    assert "root:" not in text and "/bin/" not in text and "SCRIPT RAN" not in text and "FORGED" not in text
    assert seconds < 30
    info = _pdf_info(pdf)
    assert info["Title"] == "ALNM report: hostile & co"
    assert info["Page size"].startswith("595.92 x 841.92")  # A4
    assert info.get("JavaScript", "no") == "no"
    if os.geteuid() == 0:
        assert len(notes) == 1 and "without Chromium's sandbox: running as root" in notes[0]
    else:
        assert notes == []


@needs_chromium
def test_the_pdf_paper_is_a4_or_letter_from_the_cli(tmp_path, capsys):
    html = tmp_path / "report.html"
    html.write_text("<html><head><title>t</title><style>@page{size:A3}</style></head><body>x</body></html>")
    assert main(["report", str(html), "--pdf", "--paper", "letter", "--out", str(tmp_path / "l.pdf")]) == 0
    assert _pdf_info(tmp_path / "l.pdf")["Page size"].startswith("612 x 792")  # not the page's A3
    assert main(["report", str(html), "--pdf", "--out", str(tmp_path / "a.pdf")]) == 0
    assert _pdf_info(tmp_path / "a.pdf")["Page size"].startswith("595.92 x 841.92")
    err = capsys.readouterr().err
    assert "Traceback" not in err and (os.geteuid() != 0 or "without Chromium's sandbox" in err)


@needs_chromium
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to start Chromium as an ordinary user")
def test_the_sandbox_is_used_where_it_can_run(tmp_path):
    """Chromium as user 'nobody' (a wrapper drops root): the sandbox starts, --no-sandbox is
    never passed, the print is the same. As root the sandbox cannot run: refused if required."""
    from alnm_core.report.pdf import PdfError, html_to_pdf

    import tempfile

    home = Path(tempfile.mkdtemp(prefix="alnm-nobody-"))  # pytest's own folder is root's only
    os.chown(home, 65534, 65534)
    args = tmp_path / "args.txt"
    wrapper = tmp_path / "chromium-as-nobody"
    wrapper.write_text(  # the printer's own profile folder is root's: give nobody one of its own
        f'#!/bin/sh\necho "$@" > {args}\n'
        'for a; do shift; case "$a" in --user-data-dir=*) ;; *) set -- "$@" "$a" ;; esac; done\n'
        f"cd {home} && exec setpriv --reuid=65534 --regid=65534 --clear-groups env HOME={home} "
        f"XDG_CONFIG_HOME={home}/.config XDG_CACHE_HOME={home}/.cache "
        f'{shutil.which("chromium")} "$@" --user-data-dir={home}/profile\n')
    wrapper.chmod(0o755)
    html = tmp_path / "report.html"
    html.write_text(HOSTILE)
    notes = []
    try:
        pdf = html_to_pdf(html, tmp_path / "report.pdf", browser=str(wrapper), sandbox=True,
                          progress=notes.append, timeout_s=90)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert notes == [] and "--no-sandbox" not in args.read_text()
    text = _pdf_text(pdf)
    assert "THE REPORT" in text and "root:" not in text and "SCRIPT RAN" not in text
    with pytest.raises(PdfError, match="its sandbox cannot run here"):
        html_to_pdf(html, tmp_path / "root.pdf", sandbox=True, timeout_s=60)


# ----------------------------------------------------------------------------- paths
def test_check_path_rules(tmp_path):
    """alnm_core.inputs: the rules every manifest path goes through before anything is opened."""
    from alnm_core.inputs import check_path, kind

    root = tmp_path / "cohort"
    (root / "P1" / "T2WI").mkdir(parents=True)
    (root / "P1" / "T2WI" / "IM1.dcm").write_bytes(b"x")
    os.mkfifo(root / "P1" / "pipe")
    (root / "P1" / "loop").symlink_to(root / "P1" / "loop")
    (root / "P1" / "dangling").symlink_to(root / "nowhere")
    (tmp_path / "secret").write_text("s")
    (root / "P1" / "T2WI" / "IM2.dcm").symlink_to(tmp_path / "secret")
    assert kind(root / "P1" / "pipe") == "a named pipe (FIFO)" and kind("/dev/null") == "a character device"
    assert kind(root / "P1" / "loop") == "a link loop" and kind(root / "P1" / "dangling") == "a broken link"
    assert check_path(root, "P1/T2WI/IM1.dcm") is None
    cases = {"P1/pipe": "is a named pipe (FIFO)", "P1/loop": "is a link loop",
             "P1/dangling": "is a broken link", "P1/none": "file or folder not found",
             "P1/x\x00": "holds a NUL character", "../secret": "outside the cohort folder",
             "P1/T2WI": "outside the cohort folder"}
    for rel, fragment in cases.items():
        file, why = check_path(root, rel)
        assert fragment in why, (rel, why)
    assert check_path(root, "P1/T2WI")[0] == root / "P1" / "T2WI" / "IM2.dcm"  # the link, named
    assert check_path(root, "P1/T2WI", allow_outside=True) is None
    assert "holds more than 1 files" in check_path(root, "P1/T2WI", allow_outside=True, max_files=1)[1]


def test_a_trusted_folder_lets_its_paths_through_and_no_other(tmp_path, capsys):
    """``input.trusted_folders`` (``--trust``): a cohort that reads a collection in place (as
    ``alnm import duke`` makes it) is read when the user names that folder, and a path into any
    other folder is still refused, also through a link below a trusted series folder."""
    from alnm_core.cli import main
    from alnm_core.inputs import check_path

    root, store, other = tmp_path / "cohort", tmp_path / "store", tmp_path / "other"
    (store / "P1" / "T2WI").mkdir(parents=True)
    (store / "P1" / "T2WI" / "IM1.dcm").write_bytes(b"x")
    other.mkdir()
    (other / "secret").write_text("s")
    root.mkdir()
    (root / "data").symlink_to(store, target_is_directory=True)
    assert "--trust FOLDER" in check_path(root, "data/P1/T2WI")[1]
    assert check_path(root, "data/P1/T2WI", trusted=(str(store),)) is None
    assert "outside the cohort folder" in check_path(root, "../other/secret", trusted=(str(store),))[1]
    (store / "P1" / "T2WI" / "IM2.dcm").symlink_to(other / "secret")  # a link out of the trusted folder
    file, why = check_path(root, "data/P1/T2WI", trusted=(str(store),))
    assert file.name == "IM2.dcm" and "or the trusted folder(s)" in why
    # the option is checked and recorded as given on the command line
    with pytest.raises(Exception, match="not an absolute path"):
        resolve_config("smoke", overrides=["input.trusted_folders=[relative/folder]"])
    with pytest.raises(Exception, match="is not a folder"):
        resolve_config("smoke", overrides=[f"input.trusted_folders=[{tmp_path / 'none'}]"])
    assert resolve_config("smoke", overrides=[f"input.trusted_folders=[{store}]"]).input.trusted_folders == (str(store),)
    assert main(["validate", "--cohort", str(root), "--quick", "--trust", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "input.trusted_folders" in err and "is not a folder" in err


@pytest.mark.parametrize("name", ["../elsewhere", "a/b", "..", ".hidden", "x\\y", " "])
def test_a_run_name_is_one_folder_inside_out(name, tmp_path, capsys):
    """``--name`` never puts a run folder outside ``--out`` (refused by argparse: exit 2)."""
    for cmd in (["run", "--cohort", str(tmp_path)], ["demo"], ["evaluate", "--model", "m", "--cohort", "c"]):
        with pytest.raises(SystemExit) as exc:
            main([*cmd, "--out", str(tmp_path / "out"), "--name", name])
        assert exc.value.code == 2 and "is not a run folder name" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "elsewhere").exists()
