"""Runs never lose or mix results: one owner per run folder, no silent overwrite, honest
completion, named storage errors, and nothing left running after Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from alnm_core.cli import main
from alnm_core.config import resolve_config
from alnm_core.run.pipeline import PipelineError, notebook_dir, run_study
from alnm_core.runfolder.lock import (RunLock, RunRefused, check_reuse, config_differences, move_aside,
                                      new_run_folder)
from alnm_core.runfolder.paths import RunPaths
from alnm_core.storage import StorageError
from conftest import link_copy, run_steps

slow = pytest.mark.slow


@pytest.fixture
def base_run(smoke_run, smoke_cfg):
    """The session's finished smoke run, to copy."""
    return smoke_run, smoke_cfg


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


def _holder(lock: Path) -> subprocess.Popen:
    """Another process that holds a run folder's lock until killed."""
    code = textwrap.dedent(f"""
        import time
        from alnm_core.runfolder.lock import RunLock
        with RunLock({str(lock)!r}, command="alnm run (the other one)"):
            print("holding", flush=True)
            time.sleep(120)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "holding"
    return p


@slow
def test_a_folder_in_use_is_refused_at_once_naming_the_holder(smoke_cohort, tmp_path, capsys):
    run_dir = tmp_path / "busy"
    holder = _holder(RunPaths(run_dir).lock)
    try:
        t0 = time.time()
        code = main(["run", "--cohort", str(smoke_cohort), "--profile", "smoke", "--out", str(tmp_path),
                     "--name", "busy"])
        err = capsys.readouterr().err
        assert code == 2 and time.time() - t0 < 30
        assert f"process {holder.pid}" in err and "in use by another run" in err
        assert "Traceback" not in err
        assert sorted(p.name for p in run_dir.iterdir()) == [".alnm-run.lock"]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and is taken over
    with RunLock(RunPaths(run_dir).lock, command="next"):
        assert json.loads(RunPaths(run_dir).lock.read_text())["pid"] == os.getpid()
    assert not RunPaths(run_dir).lock.exists()


@slow
def test_a_finished_run_with_other_settings_is_refused_and_left_intact(base_run, smoke_cohort, tmp_path, capsys):
    run = link_copy(base_run[0].root, tmp_path / "smoke")
    before = _snapshot(run)
    code = main(["run", "--cohort", str(smoke_cohort), "--profile", "smoke", "--out", str(tmp_path),
                 "--name", "smoke", "--set", "train.epochs=3", "--set", "roi.margin_mm=5"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "train.epochs: 2 -> 3" in err and "roi.margin_mm: 8.0 -> 5.0" in err and "--overwrite" in err
    assert _snapshot(run) == before  # nothing in the existing run folder changed
    # another cohort is another run, too
    with pytest.raises(RunRefused, match="cohort:"):
        check_reuse(run, json.loads((run / "run.json").read_text())["config"], tmp_path)


@slow
def test_overwrite_moves_the_old_run_aside_never_deletes_it(base_run, tmp_path):
    run = link_copy(base_run[0].root, tmp_path / "smoke")
    before = _snapshot(run)
    old = move_aside(run)
    assert not run.exists() and old.name.startswith("smoke.old-")
    assert _snapshot(old) == before
    assert move_aside(link_copy(old, tmp_path / "smoke")) != old  # a second one gets its own name


def test_default_names_never_collide(tmp_path):
    a, b, c = (new_run_folder(tmp_path, "smoke-20261128-101010") for _ in range(3))
    assert len({a, b, c}) == 3 and all(p.is_dir() for p in (a, b, c))
    assert config_differences({"a": {"b": 1}, "c": 2}, {"a": {"b": 1}, "c": 3}) == ["c: 2 -> 3"]


@slow
def test_a_run_that_lacks_a_notebook_fails_and_says_it_is_incomplete(base_run, smoke_cohort, tmp_path):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    for f in notebook_dir().glob("*.py"):
        if not f.name.startswith("01"):
            (nbdir / f.name).write_text(f.read_text())
    paths, cfg = base_run
    run = link_copy(paths.root, tmp_path / "smoke")
    with pytest.raises(PipelineError, match="01_cohort_statistics.py is missing"):
        run_study(smoke_cohort, cfg, run, notebook_dir=nbdir)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed"
    assert "did not finish or is incomplete" in (run / "report.html").read_text()


# --------------------------------------------------------------------------- storage
@pytest.fixture
def small_disk(tmp_path):
    """A 25 MiB tmpfs the test mounts (root only); skipped where it cannot be made."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=25m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip() or 'not root'})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@slow
def test_a_full_disk_is_named_and_the_run_resumes_after(small_disk, smoke_cohort):
    cfg = resolve_config("smoke", overrides=["train.epochs=1", "sequences=[T2WI, DWI]"])
    paths = RunPaths(small_disk / "run")
    run_steps(paths, cfg, ["prepare", "roi:T2WI", "roi:DWI"], cohort=smoke_cohort)
    with pytest.raises(StorageError, match=r"cannot write the resume state \(last.pt\) to .*last.pt: the disk is full"):
        run_steps(paths, cfg, ["train:T2WI"])
    # what was written before is intact and readable; nothing half-written is left
    import numpy as np
    import pandas as pd

    assert len(pd.read_csv(paths.splits)) == 24 and np.load(paths.roi("T2WI"))["crops"].size
    assert not [p for p in paths.root.rglob("*") if ".tmp" in p.name]
    subprocess.run(["mount", "-o", "remount,size=400m", str(small_disk)], check=True)
    res = run_steps(paths, cfg, ["train:T2WI"]).get("train:T2WI")  # the same call resumes the run
    assert len(res.patients) == 24


@slow
def test_a_read_only_folder_is_named(small_disk, smoke_cohort):
    cfg = resolve_config("smoke")
    paths = RunPaths(small_disk / "run")
    run_steps(paths, cfg, ["prepare"], cohort=smoke_cohort)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(StorageError, match="table1.csv: the folder is on a read-only file system"):
        run_steps(paths, cfg, ["describe_cohort"])


@slow
def test_cli_names_a_full_disk_without_a_traceback(small_disk, smoke_cohort):
    r = subprocess.run([sys.executable, "-m", "alnm_core.cli", "run", "--cohort", str(smoke_cohort),
                        "--profile", "smoke", "--out", str(small_disk), "--name", "r",
                        "--set", "sequences=[T2WI]", "--set", "train.epochs=1"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "the disk is full" in r.stderr and "Traceback" not in r.stderr
    info = json.loads((small_disk / "r" / "run.json").read_text())
    assert info["status"] == "failed" and info["steps"]["roi:T2WI"]


# --------------------------------------------------------------------------- Ctrl-C
def _descendants(pid: int) -> set[int]:
    import psutil

    try:
        return {c.pid for c in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _cmdline(pid: int) -> str:
    """A process's command line; empty once it has ended (a short-lived worker may be a zombie
    between two looks)."""
    import psutil

    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


@slow
def test_ctrl_c_leaves_no_kernel_or_worker_behind(smoke_cohort, tmp_path):
    import psutil

    proc = subprocess.Popen([sys.executable, "-m", "alnm_core.cli", "run", "--cohort", str(smoke_cohort),
                             "--profile", "smoke", "--out", str(tmp_path), "--name", "cc"],
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen: set[int] = set()
    deadline = time.time() + 300
    kernel_up = False
    while time.time() < deadline and proc.poll() is None:
        kids = _descendants(proc.pid)
        seen |= kids
        if any("ipykernel" in _cmdline(k) for k in kids):
            kernel_up = True
            time.sleep(2)
            break
        time.sleep(0.2)
    assert kernel_up, "no notebook kernel started"
    seen |= _descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (130, 1), err[-2000:]
    assert "Traceback" not in err
    time.sleep(1)
    def running(p: int) -> bool:
        try:
            return psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    alive = [p for p in seen if running(p)]
    assert not alive, [_cmdline(p) for p in alive]
    assert not RunPaths(tmp_path / "cc").lock.exists()
