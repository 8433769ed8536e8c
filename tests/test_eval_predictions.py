"""The shared predict-over-a-dataset loop (ftpose/evaluation/predictions.py) on real photos."""
from __future__ import annotations

import numpy as np
import pytest

from ftpose.evaluation.predictions import predict_images
from ftpose.files import SAMPLE_PHOTO, InputError
from ftpose.predictor import Predictor


def test_people_by_key_match_one_by_one_prediction_and_bad_files_are_skipped(tmp_path, photo):
    predictor = Predictor(input_height=184)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    entries = [(790, SAMPLE_PHOTO), ("broken", broken), ("missing", tmp_path / "missing.png"), (1, SAMPLE_PHOTO)]
    errors = []
    found = predict_images(predictor, entries, batch_size=2, on_error=errors.append)
    assert list(found) == [790, 1] and [type(e) for e in errors] == [InputError, InputError]
    alone = predictor.predict(photo)
    assert len(alone) > 0
    for people in found.values():
        np.testing.assert_allclose(people.keypoints, alone.keypoints, atol=1e-4)
    with pytest.raises(InputError, match="missing.png"):
        predict_images(predictor, entries[2:])
