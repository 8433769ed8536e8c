"""Evaluation protocols (ftpose/evaluation/protocols.py): predictions saved by one load back into another."""
from __future__ import annotations

import pytest

from ftpose.evaluation.protocols import PROTOCOLS, open_protocol

FIXTURES = {"coco": "coco/test_coco.json", "mpii": "mpii/test_mpii.json", "posetrack": "posetrack18/annotations/val"}


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_oracle_predictions_round_trip_through_a_results_file(name, shared_data, tmp_path):
    ann = shared_data / "mmpose_fixtures" / FIXTURES[name]
    first = open_protocol(name, ann)
    assert first.images() and all(isinstance(file, str) for _, file in first.images())
    first.oracle()
    metrics = first.metrics()
    first.save_predictions(tmp_path / "results.json")
    second = open_protocol(name, ann)
    second.load_results(tmp_path / "results.json", first.layout)   # oracle people: network layout
    again = second.metrics()
    assert again.keys() == metrics.keys()
    for key, value in metrics.items():
        assert (value is None and again[key] is None) or again[key] == pytest.approx(value, abs=1e-3), key
    assert second.tables(again, "oracle")


def test_unknown_protocol_names_the_choices():
    with pytest.raises(ValueError, match="available: coco, mpii, posetrack"):
        open_protocol("lsp", "x.json")
