"""The network-input contract (ftpose/network_input.py) on the bundled photo and real networks."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ftpose.models import create_model
from ftpose.network_input import (PAD_VALUE, check_network_input, denormalize, network_batch, network_stride,
                                  normalize, prepare_network_input)


def test_prepared_input_is_the_resized_photo_padded_with_zero_after_normalising(photo):
    prepared = prepare_network_input(photo, 203)
    rows, cols = prepared.shown
    assert rows == 203 and cols == round(photo.shape[1] * 203 / photo.shape[0])
    assert prepared.pixels.shape[0] % 8 == 0 and prepared.pixels.shape[1] % 8 == 0
    assert prepared.pixels.shape[0] - rows < 8 and prepared.pixels.shape[1] - cols < 8
    expected = cv2.resize(photo, (cols, rows), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(prepared.pixels[:rows, :cols], expected)
    assert np.all(prepared.pixels[rows:] == PAD_VALUE) and np.all(prepared.pixels[:, cols:] == PAD_VALUE)
    x = network_batch([prepared.pixels])
    assert np.all(x[0, :, rows:] == 0.0) and np.all(x[0, :, :, cols:] == 0.0)


def test_normalisation_is_the_same_in_numpy_and_torch_and_inverts(photo):
    x = network_batch([photo, photo[:, ::-1]])
    assert x.shape == (2, 3, *photo.shape[:2]) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, 0], photo[:, :, 0] / np.float32(256) - np.float32(0.5))  # blue first
    from_torch = normalize(torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)[None])
    np.testing.assert_array_equal(from_torch.numpy(), x[:1])
    np.testing.assert_array_equal(denormalize(x[0]).transpose(1, 2, 0), photo)


def test_normalize_leaves_a_float_input_alone():
    values = torch.full((1, 3, 8, 8), 128.0)
    assert float(normalize(values).abs().max()) == 0.0
    assert float(values.min()) == 128.0


@pytest.mark.parametrize("name", ["ftnet", "ftnet-light", "openpose"])
def test_models_state_the_stride_of_their_maps(name):
    model = create_model(name, **({"width_mult": 0.125} if name != "ftnet-light" else {})).eval()
    stride = network_stride(model)
    with torch.inference_mode():
        heatmaps, pafs = model(torch.zeros(1, 3, 4 * stride, 6 * stride))[-1]
    assert heatmaps.shape[-2:] == pafs.shape[-2:] == (4, 6)
    with pytest.raises(ValueError, match=f"multiples of {stride}"):
        model(torch.zeros(1, 3, 4 * stride + 1, 6 * stride))


def test_check_network_input_names_the_shape():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        check_network_input(torch.zeros(3, 16, 16))
    check_network_input(torch.zeros(2, 3, 16, 24))
