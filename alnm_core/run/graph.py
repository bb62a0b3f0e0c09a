"""The step graph: how a study's steps are declared, keyed, run, cached and explained.

A :class:`Step` is declared once (in :mod:`alnm_core.run.registry`): its name, the function that
computes it, the function that reads its result back, its upstream steps, the configuration keys
it reads, the artifacts it writes, and a version. Everything else is derived from the
declarations: the order, the cache keys, which steps a run must record, what ``alnm status``
shows, which notebook may run when, and the table in ``docs/architecture.md``.

* **Instances.** A per-sequence step ``roi`` has one instance per sequence (``roi:T2WI``); an
  upstream ``"roi"`` of a per-sequence step means the same sequence's instance, ``"roi:*"``
  every sequence's. A step whose condition (``when``) is false for the configuration has no
  instance, and an upstream naming it is dropped.
* **Keys.** An instance's key is a pure function of its version, its sequence, the values of its
  configuration keys, its upstream instances' keys and, for the steps that read the cohort, the
  digest of the files they read. Keys are computed once per process.
* **One writer.** Two steps declaring the same artifact are refused when the graph is built (as
  Kedro refuses two nodes with one output); a step that writes a file under ``artifacts/`` it
  did not declare fails the run naming the file.
* **Results.** A step is computed at most once per process; its upstream results are passed in
  (:meth:`StepCall.up`), never recomputed. A step whose recorded key equals its current key and
  whose outputs exist is not computed: its result is read back (``load``).

Example:
    >>> from alnm_core.run.registry import graph_for                      # doctest: +SKIP
    >>> g = graph_for(cfg); [i.name for i in g.instances][:3]             # doctest: +SKIP
    ['prepare', 'describe_cohort', 'roi:T2WI']
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import StudyConfig
from ..runfolder import record
from ..runfolder.paths import RunPaths

Progress = Callable[[str], None]


class StepError(RuntimeError):
    """A step cannot run or broke its declaration; the message names the step."""


class GraphError(ValueError):
    """A step graph that contradicts itself (two writers of one artifact, an unknown upstream)."""


def make_key(*parts: object) -> str:
    """Short SHA-256 of the JSON form of ``parts``."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Cond:
    """A condition on the configuration, with the words the documentation shows for it."""

    text: str
    test: Callable[[StudyConfig], bool]

    def __call__(self, cfg: StudyConfig) -> bool:
        return bool(self.test(cfg))


@dataclass(frozen=True, kw_only=True)
class Output:
    """An artifact a step writes: a path relative to the run folder (``{seq}`` for a
    per-sequence step), a file or, ending in ``/``, a folder the step owns."""

    path: str
    when: Cond | None = None
    what: str = ""


@dataclass(frozen=True, kw_only=True)
class Step:
    """One step of the study, declared once.

    Attributes:
        name: the step's name (an instance of a per-sequence step is ``name:SEQ``).
        compute: ``compute(call) -> dict | None``: writes the outputs; returns what ``run.json``
            records about the work (exclusions, per-unit records...).
        load: ``load(call) -> result``: reads the result back from the outputs.
        upstream: the steps it needs (``"roi"``: same sequence; ``"roi:*"``: every sequence).
        config: dotted configuration keys or sections it reads (``"roi"``, ``"train.lr"``).
        ignore: keys under a declared section that do not change what it computes.
        outputs: the artifacts it writes (nothing else).
        version: bumped when its computation changes, so older results are recomputed.
        per_sequence: one instance per sequence.
        when: the step is part of the study only if this holds.
        files: ``files(call) -> object``: a digest of the cohort files it reads (source steps).
        doc: one line for the architecture table.
    """

    name: str
    compute: Callable[["StepCall"], dict | None]
    load: Callable[["StepCall"], Any]
    upstream: tuple[str, ...] = ()
    config: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    outputs: tuple[Output, ...] = ()
    version: int = 1
    per_sequence: bool = False
    when: Cond | None = None
    files: Callable[["StepCall"], Any] | None = None
    doc: str = ""


@dataclass(frozen=True)
class Instance:
    """A step for one sequence (or the step itself when it is not per sequence)."""

    step: Step
    seq: str | None
    upstream: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.step.name if self.seq is None else f"{self.step.name}:{self.seq}"

    def outputs(self, cfg: StudyConfig) -> list[str]:
        return [o.path.format(seq=self.seq or "") for o in self.step.outputs if o.when is None or o.when(cfg)]


def config_value(cfg_dict: dict, key: str) -> Any:
    """The value of a dotted key (a section gives its whole mapping)."""
    cur: Any = cfg_dict
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise GraphError(f"configuration key {key!r} does not exist")
        cur = cur[part]
    return cur


def config_values(cfg_dict: dict, keys: tuple[str, ...], ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """``{leaf key: value}`` of every leaf under ``keys``, less the ``ignore`` keys."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if prefix in ignore:
            return
        if isinstance(value, dict) and "." not in prefix:  # a section (deeper: a mapping value)
            for k in sorted(value):
                walk(f"{prefix}.{k}" if prefix else k, value[k])
        else:
            out[prefix] = value

    for key in keys:
        walk(key, config_value(cfg_dict, key))
    return out


class Graph:
    """The instances of a study's steps for one configuration, in a valid order."""

    def __init__(self, steps: tuple[Step, ...], cfg: StudyConfig):
        self.cfg = cfg
        self.steps = {s.name: s for s in steps}
        if len(self.steps) != len(steps):
            raise GraphError("two steps share a name")
        active = {s.name for s in steps if s.when is None or s.when(cfg)}
        instances: list[Instance] = []
        seen: set[str] = set()
        for s in steps:
            if s.name not in active:
                continue
            for seq in (cfg.sequences if s.per_sequence else (None,)):
                ups: list[str] = []
                for u in s.upstream:
                    base, _, which = u.partition(":")
                    if base not in self.steps:
                        raise GraphError(f"step {s.name}: unknown upstream {u!r}")
                    if base not in active:
                        continue
                    if self.steps[base].per_sequence:
                        if which == "*":
                            ups += [f"{base}:{q}" for q in cfg.sequences]
                        elif seq is not None:
                            ups.append(f"{base}:{seq}")
                        else:
                            raise GraphError(f"step {s.name}: upstream {u!r} is per sequence: "
                                             f"write {base}:*")
                    else:
                        ups.append(base)
                missing = [u for u in ups if u not in seen]
                if missing:
                    raise GraphError(f"step {s.name}: upstream {missing} must be declared before it")
                inst = Instance(s, seq, tuple(ups))
                instances.append(inst)
                seen.add(inst.name)
        self.instances = instances
        self.by_name = {i.name: i for i in instances}
        writers: dict[str, str] = {}
        for i in instances:
            for o in i.outputs(cfg):
                for other, w in writers.items():
                    if o == other or o.startswith(other) and other.endswith("/") or \
                            other.startswith(o) and o.endswith("/"):
                        raise GraphError(f"{o} has two writers: {w} and {i.name}")
                writers[o] = i.name
        self.writers = writers

    def __getitem__(self, name: str) -> Instance:
        try:
            return self.by_name[name]
        except KeyError:
            raise StepError(f"step {name!r} is not part of this study "
                            f"(its steps: {', '.join(self.by_name)})") from None

    def downstream(self, name: str) -> list[str]:
        """Every instance that depends on ``name``, directly or not, in order."""
        out, reached = [], {name}
        for i in self.instances:
            if reached & set(i.upstream):
                reached.add(i.name)
                out.append(i.name)
        return out


@dataclass
class StepStatus:
    """What ``alnm status`` says of one step instance."""

    name: str
    state: str  # "up to date", "stale", "missing"
    reasons: list[str] = field(default_factory=list)

    def line(self) -> str:
        why = f" ({'; '.join(self.reasons)})" if self.reasons else ""
        return f"{self.name:<28} {self.state}{why}"


@dataclass(frozen=True, kw_only=True)
class StepCall:
    """What a step's ``compute`` and ``load`` get: the instance, the run, its upstream results."""

    instance: Instance
    runner: "Runner"

    @property
    def name(self) -> str:
        return self.instance.name

    @property
    def seq(self) -> str | None:
        return self.instance.seq

    @property
    def paths(self) -> RunPaths:
        return self.runner.paths

    @property
    def cfg(self) -> StudyConfig:
        return self.runner.cfg

    @property
    def session(self) -> "Runner":
        return self.runner

    def say(self, message: str) -> None:
        self.runner.say(message)

    def up(self, name: str) -> Any:
        """The result of an upstream step (the same sequence's instance for a per-sequence one)."""
        inst = self._upstream(name)
        return self.runner.get(inst)

    def up_all(self, name: str) -> dict[str, Any]:
        """``{sequence: result}`` of a per-sequence upstream step (every sequence it has)."""
        names = [u for u in self.instance.upstream if u.startswith(name + ":")]
        return {u.split(":", 1)[1]: self.runner.get(u) for u in names}

    def has(self, name: str) -> bool:
        return any(u == name or u.startswith(name + ":") for u in self.instance.upstream)

    def _upstream(self, name: str) -> str:
        cands = [name] if name in self.instance.upstream else [f"{name}:{self.seq}"]
        for c in cands:
            if c in self.instance.upstream:
                return c
        raise StepError(f"step {self.name} reads {name}, which it does not declare upstream "
                        f"(declared: {list(self.instance.upstream)})")

    def out(self, path: str) -> Path:
        """The path of a declared output (``{seq}`` filled in); an undeclared one is refused."""
        rel = path.format(seq=self.seq or "")
        declared = self.instance.outputs(self.cfg)
        if not any(rel == d or (d.endswith("/") and rel.startswith(d)) for d in declared):
            raise StepError(f"step {self.name} writes {rel}, which it does not declare "
                            f"(declared: {declared})")
        return self.paths.root / rel


class Runner:
    """Runs a study's step graph in one run folder: each instance at most once per process.

    Args:
        paths: the run folder.
        cfg: the resolved configuration.
        steps: the declarations (the registry's).
        cohort_dir: the cohort (defaults to the one ``run.json`` records).
        progress: where progress lines go.
        executor: runs the training grid (local or Ray).
        trust_record: read a step that ``run.json`` records as finished (outputs present)
            without recomputing its key chain: what the pipeline's notebook kernels do, since the
            pipeline has just brought every step up to date.
    """

    def __init__(self, paths: RunPaths, cfg: StudyConfig, steps: tuple[Step, ...], *,
                 cohort_dir: Path | None = None, progress: Progress | None = None,
                 executor: Any = None, trust_record: bool = False):
        self.paths, self.cfg = paths, cfg
        self.graph = Graph(steps, cfg)
        self.say = progress or (lambda s: None)
        self.executor = executor
        self.trust_record = trust_record
        self._cohort_dir = Path(cohort_dir).resolve() if cohort_dir is not None else None
        self._keys: dict[str, str] = {}
        self._inputs: dict[str, dict] = {}
        self._results: dict[str, Any] = {}
        self._cfg_dict = cfg.to_dict()
        #: per-process caches shared by the steps (the cohort, file signatures)
        self.cache: dict[str, Any] = {}

    # ------------------------------------------------------------------ the run's facts
    @property
    def cohort_dir(self) -> Path:
        if self._cohort_dir is None:
            self._cohort_dir = Path(record.read(self.paths.root)["cohort"]).resolve()
        return self._cohort_dir

    def memo(self, key: str, make: Callable[[], Any]) -> Any:
        """A per-process cached value (computed once)."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def _call(self, name: str) -> StepCall:
        return StepCall(instance=self.graph[name], runner=self)

    # ------------------------------------------------------------------ keys and status
    def inputs(self, name: str) -> dict:
        """What the key of ``name`` is made of: version, config values, upstream keys, files."""
        if name not in self._inputs:
            inst = self.graph[name]
            s = inst.step
            files = s.files(self._call(name)) if s.files is not None else None
            self._inputs[name] = {
                "version": s.version,
                "config": config_values(self._cfg_dict, s.config, s.ignore),
                "upstream": {u: self.key(u) for u in inst.upstream},
                "files": make_key(files) if files is not None else None,
            }
        return self._inputs[name]

    def key(self, name: str) -> str:
        """The key of an instance (computed once per process)."""
        if name not in self._keys:
            inst = self.graph[name]
            self._keys[name] = make_key(inst.step.name, inst.seq, self.inputs(name))
        return self._keys[name]

    def _outputs(self, name: str) -> list[Path]:
        return [self.paths.root / o.rstrip("/") for o in self.graph[name].outputs(self.cfg)]

    def _recorded(self, name: str) -> dict | None:
        return record.step_state(self.paths, name)

    def current(self, name: str) -> bool:
        st = self._recorded(name)
        return bool(st) and st.get("key") == self.key(name) and all(p.exists() for p in self._outputs(name))

    def status(self) -> list[StepStatus]:
        """Per instance: up to date, stale (naming the configuration key, upstream step or files
        that changed) or missing (never ran, or an output is gone)."""
        out = []
        for inst in self.graph.instances:
            name = inst.name
            st = self._recorded(name)
            gone = [str(p.relative_to(self.paths.root)) for p in self._outputs(name) if not p.exists()]
            if not st:
                out.append(StepStatus(name, "missing", ["never ran"]))
                continue
            if st.get("key") == self.key(name):
                out.append(StepStatus(name, "missing", [f"output {g} is gone" for g in gone]) if gone
                           else StepStatus(name, "up to date"))
                continue
            out.append(StepStatus(name, "stale", _why(st.get("inputs", {}), self.inputs(name))))
        return out

    # ------------------------------------------------------------------ running
    def get(self, name: str) -> Any:
        """The result of an instance: read back when it is up to date, else computed (its
        upstream first). At most one computation per instance and process."""
        if name in self._results:
            return self._results[name]
        inst = self.graph[name]
        call = self._call(name)
        st = self._recorded(name) if self.trust_record else None
        trusted = bool(st) and all(p.exists() for p in self._outputs(name))
        if not trusted and not self.current(name):
            for u in inst.upstream:
                self.get(u)
            self._compute(name, call)
        self._results[name] = inst.step.load(call)
        return self._results[name]

    def run(self, names: list[str] | None = None) -> None:
        """Bring the given instances (default: every one) up to date, in graph order."""
        for inst in self.graph.instances:
            if names is None or inst.name in names:
                self.get(inst.name)

    def _compute(self, name: str, call: StepCall) -> None:
        self.say(f"step {name}")
        before = _snapshot(self.paths.artifacts)
        t0 = time.time()
        report = call.instance.step.compute(call) or {}
        seconds = time.time() - t0
        outputs = self._outputs(name)
        missing = [str(p.relative_to(self.paths.root)) for p in outputs if not p.exists()]
        if missing:
            raise StepError(f"step {name} did not write its declared outputs {missing}")
        after = _snapshot(self.paths.artifacts)
        declared = [o for o in call.instance.outputs(self.cfg)]
        stray = sorted(str(p.relative_to(self.paths.root)) for p, m in after.items()
                       if before.get(p) != m and not _declared(p.relative_to(self.paths.root).as_posix(), declared))
        if stray:
            raise StepError(f"step {name} wrote {stray[:5]}, which it does not declare (declared: {declared})")
        record.finish_step(self.paths, name, key=self.key(name), outputs=outputs, seconds=seconds,
                           inputs=self.inputs(name), report=report)
        self.say(f"{name}: done in {seconds:.1f} s")


def _declared(rel: str, declared: list[str]) -> bool:
    return any(rel == d or (d.endswith("/") and rel.startswith(d)) for d in declared)


def _snapshot(root: Path) -> dict[Path, tuple[int, int]]:
    if not root.is_dir():
        return {}
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            try:
                s = p.stat()
            except OSError:
                continue
            out[p] = (s.st_mtime_ns, s.st_size)
    return out


def _why(old: dict, new: dict) -> list[str]:
    """Why a recorded step is stale: what changed between the inputs it was keyed on and now."""
    out = []
    if old.get("version") != new.get("version"):
        out.append(f"step version {old.get('version')} -> {new.get('version')}")
    oc, nc = old.get("config", {}), new.get("config", {})
    for k in sorted(set(oc) | set(nc)):
        if oc.get(k, "<absent>") != nc.get(k, "<absent>"):
            out.append(f"config {k}: {oc.get(k, '<absent>')!r} -> {nc.get(k, '<absent>')!r}")
    ou, nu = old.get("upstream", {}), new.get("upstream", {})
    for k in nu:
        if k not in ou:
            out.append(f"upstream {k} added")
        elif ou[k] != nu[k]:
            out.append(f"upstream {k} changed")
    out += [f"upstream {k} removed" for k in ou if k not in nu]
    if old.get("files") != new.get("files"):
        out.append("cohort files changed")
    return out or ["inputs changed"]
