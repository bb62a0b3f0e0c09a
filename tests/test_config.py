from __future__ import annotations

import pytest

from alnm_core.config import (ConfigError, check_notebook_parameters, config_from_dict,
                              parse_override, resolve_config)


@pytest.mark.parametrize("name", ["smoke", "demo", "paper", "duke"])
def test_profiles_resolve_and_roundtrip(name):
    cfg = resolve_config(name)
    assert cfg.profile == name
    assert config_from_dict(cfg.to_dict()) == cfg


def test_paper_profile_holds_the_papers_settings():
    cfg = resolve_config("paper")
    assert cfg.train.arch == "resnet50"
    assert cfg.roi.size == 224
    assert cfg.train.batch_size == 64
    assert cfg.train.lr == pytest.approx(5e-5)
    assert cfg.train.epochs == 300
    assert cfg.split.test_size == 50
    assert cfg.phantom.n_patients == 252
    assert cfg.stats.threshold == 0.5


def test_duke_profile_is_the_paper_design_on_dce_only():
    duke, paper = resolve_config("duke"), resolve_config("paper")
    assert duke.sequences == ("DCE",)
    assert (duke.split.scheme, duke.split.n_folds) == (paper.split.scheme, paper.split.n_folds)
    assert (duke.train.arch, duke.train.lr, duke.train.epochs, duke.roi.size) == \
        (paper.train.arch, paper.train.lr, paper.train.epochs, paper.roi.size)
    assert duke.roi.on_error == "exclude" and "shape" not in duke.radiomics.feature_classes


def test_overrides_and_yaml_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  epochs: 7\nroi:\n  margin_mm: 3\n")
    cfg = resolve_config("smoke", config_file=f, overrides=["train.epochs=9", "roi.slices=largest"])
    assert cfg.train.epochs == 9  # --set wins over the file
    assert cfg.roi.margin_mm == 3.0 and isinstance(cfg.roi.margin_mm, float)
    assert cfg.roi.slices == "largest"
    assert parse_override("a.b.c=[1, 2]") == {"a": {"b": {"c": [1, 2]}}}


@pytest.mark.parametrize("override, fragment", [
    ("train.epoch=3", "unknown key"),
    ("trian.epochs=3", "unknown key"),
    ("train.epochs=three", "expected an integer"),
    ("train.arch=resnet101", "not one of"),
    ("train.augment=1", "true/false"),
    ("roi.margin_mm=-1", "margin_mm"),
    ("split.test_size=0", "test_size"),
    ("epochs", "key=value"),
])
def test_bad_overrides_fail_loudly(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        resolve_config("smoke", overrides=[override])


def test_unknown_profile_and_missing_file():
    with pytest.raises(ConfigError, match="unknown profile"):
        resolve_config("fast")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config("smoke", config_file="/nonexistent.yaml")


def test_notebook_parameter_check():
    check_notebook_parameters({"run_dir": "x"}, {"run_dir": str})
    with pytest.raises(ConfigError, match="unknown parameter 'sequnce'"):
        check_notebook_parameters({"run_dir": "x", "sequnce": "T2WI"}, {"run_dir": str, "sequence": str})
    with pytest.raises(ConfigError, match="should be"):
        check_notebook_parameters({"run_dir": 3}, {"run_dir": str})


@pytest.mark.parametrize("text, fragment", [
    ("train:\n  epochs: 3\nroi: !!python/object/apply:os.system ['touch PWNED']\n",
     r"line 3, column 6: not valid YAML: could not determine a constructor for the tag "
     r"'tag:yaml.org,2002:python/object/apply:os.system' \(alnm reads plain YAML"),
    ("train:\n  epochs: 3\n bad: [\n", r"line 3, column 2: not valid YAML: expected <block end>"),
    ("train: [1, 2\n", r"line 2, column 1: not valid YAML"),
])
def test_yaml_tags_and_malformed_yaml_name_the_file_and_line(tmp_path, text, fragment, capsys):
    """safe_load never ran the tag; now the error is a ConfigError (exit 2), not a traceback."""
    from alnm_core.cli import main

    f = tmp_path / "study.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=f"config file {f}, " + fragment):
        resolve_config("smoke", config_file=f)
    assert main(["validate", "--cohort", str(tmp_path), "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"config file {f}, line" in err and "Traceback" not in err
    assert not (tmp_path / "PWNED").exists()


def test_override_with_a_yaml_tag_or_a_special_config_file(tmp_path):
    import os

    with pytest.raises(ConfigError, match=r"override 'train.epochs=!!python/name:os.system', line 1"):
        resolve_config("smoke", overrides=["train.epochs=!!python/name:os.system"])
    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(ConfigError, match="is not a regular file"):
        resolve_config("smoke", config_file=tmp_path / "fifo.yaml")  # never opened: no hang
    (tmp_path / "latin1.yaml").write_bytes("train:\n  arch: r\xe9snet\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="cannot be read as UTF-8"):
        resolve_config("smoke", config_file=tmp_path / "latin1.yaml")


def test_input_section_defaults_checks_and_roundtrip():
    cfg = resolve_config("smoke")
    assert (cfg.input.allow_outside_cohort, cfg.input.max_voxels, cfg.input.max_files) == (
        False, 500_000_000, 100_000)
    assert cfg.to_dict()["input"] == {"allow_outside_cohort": False, "max_voxels": 500_000_000,
                                      "max_files": 100_000, "trusted_folders": []}
    on = resolve_config("smoke", overrides=["input.allow_outside_cohort=true", "input.max_voxels=1000"])
    assert on.input.allow_outside_cohort and config_from_dict(on.to_dict()) == on
    for bad, fragment in (("input.max_voxels=0", "input.max_voxels: at least 1"),
                          ("input.max_files=-1", "input.max_files: at least 1"),
                          ("input.allow_outside_cohort=yes please", "expected true/false")):
        with pytest.raises(ConfigError, match=fragment):
            resolve_config("smoke", overrides=[bad])
    old = cfg.to_dict()
    del old["input"]  # a run.json or bundle written before the section existed
    assert config_from_dict(old).input == cfg.input
