"""The public API named in ftpose/__init__: listed by dir(), imported lazily from each name's home."""
from __future__ import annotations

import json
import subprocess
import sys

import ftpose

PUBLIC = ["Predictor", "People", "Tracker", "create_model", "list_models", "load_model", "read_image",
          "expand_inputs", "VideoReader"]


def test_dir_lists_the_public_api_and_keypoints_stay_torch_free():
    code = ("import json, sys, ftpose, ftpose.keypoints; "
            "print(json.dumps([dir(ftpose), sorted(m for m in ('torch', 'cv2', 'ftpose.predictor') if m in sys.modules)]))")
    listed, loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                               check=True, timeout=60).stdout)
    assert set(PUBLIC) <= set(listed) and sorted(ftpose.__all__) == sorted(PUBLIC)
    assert loaded == []


def test_each_name_is_the_object_of_its_home_module():
    from ftpose.files import SAMPLE_PHOTO, read_image
    from ftpose.grouping import People
    from ftpose.models import create_model, list_models, load_model
    from ftpose.predictor import Predictor
    from ftpose.sources import VideoReader, expand_inputs
    from ftpose.tracking import Tracker

    homes = [Predictor, People, Tracker, create_model, list_models, load_model, read_image, expand_inputs, VideoReader]
    assert [getattr(ftpose, name) for name in PUBLIC] == homes
    assert ftpose.read_image(SAMPLE_PHOTO).shape[2] == 3 and "ftnet" in ftpose.list_models()
