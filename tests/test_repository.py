"""The repository's contracts: notebooks, packaging, CI, README."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import nbformat
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))


def test_notebooks_match_their_source_and_have_no_outputs():
    import build_notebooks

    built = build_notebooks.build()
    committed = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    assert committed == sorted(built)
    for name, nb in built.items():
        on_disk = nbformat.read(REPO / "notebooks" / name, as_version=4)
        assert [c.source for c in on_disk.cells] == [c.source for c in nb.cells], \
            f"{name} differs from tools/build_notebooks.py: run `make notebooks`"
        for c in on_disk.cells:
            if c.cell_type == "code":
                assert not c.outputs and c.execution_count is None


def test_parameters_cells_hold_typed_literals_only():
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, path.name
        for line, node in zip(cells[0].source.splitlines(), ast.parse(cells[0].source).body):
            assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant), line
            assert re.search(r"#\s*(str|int|bool|float):", line), f"{path.name}: no type comment: {line}"


def test_environment_yml_in_sync_with_pyproject():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    proj = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "conda-forge" in env["channels"]
    deps = env["dependencies"]
    py = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    assert py.split("=")[1] in ("3.11", "3.12") and proj["project"]["requires-python"] == ">=3.11"
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-e .[dev]" in pip       # pyproject stays the one list of dependencies
    conda_names = {re.split(r"[=<>]", d)[0] for d in deps if isinstance(d, str)}
    assert conda_names <= {"python", "pip"}, "list packages in pyproject.toml, not environment.yml"


def test_torch_range_admits_the_pins():
    from packaging.requirements import Requirement

    proj = tomllib.loads((REPO / "pyproject.toml").read_text())
    reqs = {Requirement(r).name: Requirement(r) for r in proj["project"]["dependencies"]}
    make = (REPO / "Makefile").read_text()
    pins = dict(re.findall(r"(torch|torchvision)==([\d.]+)", make))
    assert pins == {"torch": "2.14.1", "torchvision": "0.29.1"}
    for name, version in pins.items():
        assert reqs[name].specifier.contains(version)


def test_ci_calls_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert re.search(r"^make test$", ci, re.M)
    quick = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    assert re.findall(r"^make \w+$", quick, re.M) == ["make demo", "make test"]
