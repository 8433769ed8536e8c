"""``ftpose info``: the JSON other tools read, the table, options and errors."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from ftpose.cli import main
from ftpose.models import create_model
from ftpose.models.complexity import count_parameters


def run(*args):
    return CliRunner().invoke(main, ["info", *args])


@pytest.mark.parametrize("name, params, macs, size_mb", [
    ("ftnet", 21_278_912, 82.5e9, 85.2),      # paper §4.5 and Table 5
    ("openpose", 52_298_816, 159.6e9, 209.3),
])
def test_json_for_both_models(name, params, macs, size_mb):
    result = run(name, "--input", "368x432", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)  # exactly one JSON object, nothing else
    assert isinstance(summary["params"], int) and isinstance(summary["macs"], int)
    assert isinstance(summary["size_mb"], float)
    assert summary["params"] == pytest.approx(params, rel=0.01)
    assert summary["macs"] == pytest.approx(macs, rel=0.02)
    assert summary["size_mb"] == pytest.approx(size_mb, rel=0.01)
    assert summary["size_mb"] == pytest.approx(summary["params"] * 4 / 1e6, abs=1e-3)
    assert sum(summary["modules"].values()) == summary["params"]
    assert sum(summary["module_macs"].values()) == summary["macs"]
    assert summary["input"] == [368, 432] and summary["model"] == name
    with torch.device("meta"):
        assert summary["params"] == count_parameters(create_model(name))


def test_json_per_module_split_of_ftnet():
    summary = json.loads(run("ftnet", "--json").output)
    assert list(summary["modules"]) == ["backbone", "branches", "transfer", "refinement"]
    assert summary["options"] == {"transfer_from": "conv4", "refinement": True, "width_mult": 1.0,
                                  "pretrained_backbone": False}


def test_options_reach_the_model():
    full = json.loads(run("ftnet", "--json").output)
    ablated = json.loads(run("ftnet", "-o", "transfer_from=none", "--option", "refinement=false", "--json").output)
    assert ablated["options"]["transfer_from"] is None and ablated["options"]["refinement"] is False
    assert list(ablated["modules"]) == ["backbone", "branches"]
    assert ablated["params"] == full["modules"]["backbone"] + full["modules"]["branches"]
    # MACs scale with the input area (everything is convolutional)
    small = json.loads(run("openpose", "--input", "184x216", "--json").output)
    big = json.loads(run("openpose", "--input", "368x432", "--json").output)
    assert small["params"] == big["params"]
    assert big["macs"] / small["macs"] == pytest.approx(4.0, rel=0.001)


def test_table():
    result = run("ftnet", "--depth", "2")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "ftnet (transfer_from=conv4, refinement=True, width_mult=1.0)"
    assert lines[1].split()[:3] == ["module", "params", "share"] and "368x432" in lines[1]
    names = [line.split()[0] for line in lines[2:]]
    assert {"backbone.conv3_4", "transfer.limb_to_joint", "refinement.joint", "total"} <= set(names)
    total = next(line for line in lines if line.startswith("total")).split()
    assert total[1] == f"{json.loads(run('ftnet', '--json').output)['params']:,}" and total[2] == "100.0%"
    assert lines[-1].startswith("fp32 size: 84.4 MB")


@pytest.mark.parametrize("args, message", [
    (["resnet"], "unknown model 'resnet'; available models: ftnet, ftnet-light, openpose"),
    (["ftnet", "--input", "367x432"], "multiples of 8, got 367x432"),
    (["ftnet", "--input", "big"], "'big' is not HEIGHTxWIDTH"),
    (["ftnet", "-o", "transfer=conv4"], "has no option 'transfer'"),
    (["ftnet", "-o", "refinement"], "not of the form KEY=VALUE"),
])
def test_errors_are_one_clear_line(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
