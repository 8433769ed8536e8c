"""Training configs: TOML files, command-line overrides, clear errors, the shipped configs."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ftpose.files import InputError
from ftpose.training.config import TrainConfig, dumps_toml, load_config, parse_assignment

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_are_the_papers():
    c = TrainConfig()
    assert (c.optim.name, c.optim.lr, c.optim.momentum, c.optim.weight_decay, c.batch_size) == \
        ("sgd", 4e-5, 0.9, 5e-4, 28)
    assert (c.augment.input_size, c.augment.person_height, c.augment.max_rotation) == (368, 0.6, 40.0)
    assert (c.augment.scale_min, c.augment.scale_max, c.targets.sigma) == (0.5, 1.1, 7.0)


def test_file_then_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('steps = 50\n[optim]\nname = "adam"\nlr = 1e-3\n[augment]\ninput_size = 184\n')
    c = load_config(path, {"optim.lr": "2e-3", "schedule.milestones": "10,20", "deterministic": "true"})
    assert (c.steps, c.optim.name, c.optim.lr, c.augment.input_size) == (50, "adam", 2e-3, 184)
    assert c.schedule.milestones == [10, 20] and c.deterministic is True


def test_round_trip_through_toml():
    c = load_config(None, {"model_options": {"width_mult": 0.25}, "data": ["coco:a.json:imgs"], "steps": 9})
    assert TrainConfig.from_dict(tomllib.loads(dumps_toml(c.to_dict()))) == c


@pytest.mark.parametrize("overrides, problem", [
    ({"optim.lr": "fast"}, "setting 'optim.lr' expects float, got 'fast'"),
    ({"optim.momentun": 0.9}, "unknown setting 'optim.momentun'"),
    ({"steps": 1.5}, "setting 'steps' expects int"),
    ({"optim.name": "lbfgs"}, "optim.name must be one of sgd, adam, adamw"),
    ({"augment.input_size": 100}, "multiple of 8"),
])
def test_bad_settings_are_one_line_errors(overrides, problem):
    with pytest.raises(InputError, match=problem):
        load_config(None, overrides)


def test_bad_file_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("steps = = 3")
    with pytest.raises(InputError, match="bad.toml: not valid TOML"):
        load_config(path)
    with pytest.raises(InputError, match="missing.toml: no such config file"):
        load_config(tmp_path / "missing.toml")


def test_assignments_parse_toml_values():
    assert parse_assignment("optim.lr=1e-3") == ("optim.lr", 1e-3)
    assert parse_assignment("optim.name=adam") == ("optim.name", "adam")
    assert parse_assignment("model_options={width_mult=0.5}") == ("model_options", {"width_mult": 0.5})
    with pytest.raises(ValueError, match="SECTION.KEY=VALUE"):
        parse_assignment("optim.lr")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    load_config(path)


def test_ablation_configs_extend_the_papers_and_change_only_the_model():
    configs = Path(__file__).resolve().parents[1] / "configs"
    paper = load_config(configs / "coco.toml")
    expected = {"table8_transfer": {"transfer_from": "conv4"}, "table8_no_transfer": {"transfer_from": "none"},
                "table9_no_refinement": {"refinement": False},
                **{f"table7_transfer_conv{k}": {"transfer_from": f"conv{k}"} for k in (1, 2, 3, 5)}}
    for name, options in expected.items():
        config = load_config(configs / f"{name}.toml")
        assert config.model_options == {"pretrained_backbone": True, **options}, name
        assert {**config.to_dict(), "model_options": None} == {**paper.to_dict(), "model_options": None}, name


def test_extends_cycles_and_bad_values_are_one_line_errors(tmp_path):
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(InputError, match="a cycle"):
        load_config(tmp_path / "a.toml")
    (tmp_path / "c.toml").write_text("extends = 3\n")
    with pytest.raises(InputError, match="'extends' must be a file name"):
        load_config(tmp_path / "c.toml")
