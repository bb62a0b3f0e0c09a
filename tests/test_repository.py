"""The repository's contracts: notebooks, packaging, CI, README."""
from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _notebooks():
    import jupytext

    srcs = sorted((REPO / "alnm_core" / "notebooks").glob("*.py"))
    assert [p.name[:2] for p in srcs] == ["01", "02", "03", "04", "05", "06", "07"]
    return [(p, jupytext.read(p)) for p in srcs]


def test_notebooks_are_jupytext_sources_only():
    """The .py files are the one source: no .ipynb copy that could drift, and the repository's
    notebooks/ folder is the package's."""
    assert (REPO / "notebooks").resolve() == (REPO / "alnm_core" / "notebooks").resolve()
    assert not list((REPO / "alnm_core" / "notebooks").glob("*.ipynb"))
    for path, nb in _notebooks():
        text = path.read_text()
        assert text.startswith("# ---\n# jupyter:") and "format_name: percent" in text, path.name
        assert nb.cells[0].cell_type == "markdown", path.name
        heading = nb.cells[0].source.splitlines()[0]
        assert re.match(rf"# {int(path.name[:2])} · ", heading), f"{path.name}: heading {heading!r}"


def test_parameters_cells_hold_typed_literals_only():
    """``name: type = literal  # help``: the type is declared once (the annotation), and
    ``nbk.start`` receives every parameter by name."""
    for path, nb in _notebooks():
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, path.name
        names = []
        for line, node in zip(cells[0].source.splitlines(), ast.parse(cells[0].source).body):
            assert isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Constant), line
            assert ast.unparse(node.annotation) in ("str", "int", "bool", "float"), line
            assert re.search(r"#\s*\S", line), f"{path.name}: no help comment: {line}"
            names.append(node.target.id)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        call = re.search(r"nbk\.start\((.*?)\)\n", code, re.S).group(1)
        assert sorted(re.findall(r"(\w+)=\1", call)) == sorted(names), path.name


def _code(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_notebooks_load_a_step_and_compute_no_artifact():
    """A notebook narrates what a step returns: it loads finished steps and never writes an
    artifact itself, and no globals() plumbing is the first thing a student reads."""
    for path, nb in _notebooks():
        code = _code(nb)
        assert re.search(r"ctx\.load(_all)?\(\"\w+\"", code), path.name
        for forbidden in ("to_csv(", ".save(", "update_run_json", "record.", "torch.save", "write_text(",
                          "globals()", "_before =", "gradcam(", "auc_ci(", "delong_test("):
            assert forbidden not in code, f"{path.name} computes or writes ({forbidden})"


def test_notebooks_are_thin():
    """At most about 50 code lines each (parameters and imports included): the rest is in
    alnm_core, where tests reach it."""
    for path, nb in _notebooks():
        lines = [ln for c in nb.cells if c.cell_type == "code" for ln in c.source.splitlines()
                 if ln.strip() and not ln.strip().startswith("#")]
        assert len(lines) <= 55, f"{path.name}: {len(lines)} code lines"


def test_notebook_text_reaches_the_report_only_through_the_escaping_helpers():
    """Markdown, HTML and tables from data go through alnm_core.report.escape (md, table,
    details): no raw Markdown(f"..."), HTML(...), Styler.to_html() or display(DataFrame)."""
    for path, nb in _notebooks():
        code = _code(nb)
        for forbidden in ("Markdown(", "HTML(", ".to_html(", ".style.", "print("):
            assert forbidden not in code, f"{path.name}: {forbidden} bypasses the escaping helpers"
        for m in re.finditer(r"display\(([^\n]*)\)", code):
            arg = m.group(1)
            figure = re.match(r"views\.\w+_figure\(", arg)  # a rendered figure: pixels, never markup
            assert arg.startswith(("esc.", "plots.", "*views.")) or figure, f"{path.name}: display({arg}) is not escaped"


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
