"""``ftnet-light``: deep feature transfer on a MobileNet backbone, for real time on a CPU.

The paper's last sentence (§6) names the next step: "using light-weight and low-bit
network to obtain high speed while maintaining the accuracy".  ``ftnet-light`` is
``ftnet``'s design on Lightweight OpenPose's network (Osokin 2018), whose trained weights
(Intel's ``human-pose-estimation-0001``) can start it::

    image -> MobileNet-v1 to stride 8 (conv5_1 dilated) -> CPM (128 ch) = F
    joint branch  Conv-1 .. Conv-4 --(+ T_limb->joint)--> Conv-5 -> heatmaps_1 (19)
    limb  branch  Conv-1 .. Conv-4 --(+ T_joint->limb)--> Conv-5 -> PAFs_1     (38)
    refinement    concat(heatmaps_1, PAFs_1, F) -> 5 residual blocks -> heatmaps_2, PAFs_2

* Backbone (:class:`MobileNetBackbone`): MobileNet-v1's depthwise-separable convs up to
  ``conv5_5``, strides 2 at ``conv1``, ``conv2_2``, ``conv3_2`` only (stride 8), and
  ``conv5_1``'s depthwise conv dilated by 2 instead of strided; then Lightweight
  OpenPose's CPM: a 1x1 align conv to 128 channels, a residual trunk of depthwise-
  separable convs with ELUs, and a 3x3 conv.  Batch norms are folded into the convs'
  biases, as in Intel's IR.
* Detection branches: the paper's, :class:`~ftpose.models.openpose.DetectionBranch`
  (Conv-1..3 3x3/128, Conv-4 1x1/512, Conv-5 1x1 output).  Lightweight OpenPose shares
  Conv-1..3 between the two outputs; here each branch has its own, as the paper's
  transfer needs two separate feature streams (starting from Intel's weights, both get a
  copy of the shared convs, so the function is unchanged).
* Transfer (:class:`LightAggregationBlock`): per direction one block of a 1x1 reduction,
  three depthwise-separable 3x3 convs whose outputs are concatenated and fused by a 1x1
  conv into the target layer's width, after a ReLU (eq. 5); the result is added to the
  target branch's layer, as in ``ftnet``.  The fuse conv starts from tiny Gaussian
  weights, so a network initialised from a trained Lightweight OpenPose starts from its
  function and the transfer grows from there.
* Refinement: Lightweight OpenPose's single refinement stage (its light replacement of
  OpenPose's 7x7 stages): a 1x1 conv then 3x3 and dilated 3x3 convs with a residual,
  five times, and a 1x1/128 + 1x1 output head per map type.

Options as ``ftnet``'s where they apply: ``transfer_from`` (``"conv1"`` … ``"conv5"`` or
``None``), ``refinement``; ``transfer_width`` sets the transfer blocks' inner width.
:func:`init_from_lightweight_openpose` loads a trained start from Intel's IR.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from ftpose.keypoints import NUM_HEATMAPS, NUM_PAFS
from ftpose.models.ftnet import TRANSFER_LAYERS, transfer_branches
from ftpose.models.openpose import DetectionBranch
from ftpose.models.registry import register_model
from ftpose.models.vgg import init_conv, init_head_conv
from ftpose.network_input import PIXEL_OFFSET, PIXEL_SCALE, check_network_input

# (name, input channels, output channels, depthwise stride, depthwise dilation) of the
# depthwise-separable layers after conv1 (3x3/32, stride 2).
MOBILENET_LAYERS = (
    ("conv2_1", 32, 64, 1, 1), ("conv2_2", 64, 128, 2, 1),
    ("conv3_1", 128, 128, 1, 1), ("conv3_2", 128, 256, 2, 1),
    ("conv4_1", 256, 256, 1, 1), ("conv4_2", 256, 512, 1, 1),
    ("conv5_1", 512, 512, 1, 2), ("conv5_2", 512, 512, 1, 1), ("conv5_3", 512, 512, 1, 1),
    ("conv5_4", 512, 512, 1, 1), ("conv5_5", 512, 512, 1, 1),
)
CPM_WIDTH = 128
REFINEMENT_BLOCKS = 5
TRANSFER_FUSE_INIT_STD = 1e-4


def depthwise(channels: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return init_conv(nn.Conv2d(channels, channels, 3, stride, padding=dilation, dilation=dilation, groups=channels))


def pointwise(in_channels: int, out_channels: int) -> nn.Conv2d:
    return init_conv(nn.Conv2d(in_channels, out_channels, 1))


class SeparableConv(nn.Module):
    """A depthwise 3x3 conv and a pointwise 1x1 conv, each followed by ``activation``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1,
                 activation=torch.relu):
        super().__init__()
        self.dw = depthwise(in_channels, stride, dilation)
        self.pw = pointwise(in_channels, out_channels)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.pw(self.activation(self.dw(x))))


class LightweightCPM(nn.Module):
    """Lightweight OpenPose's CPM: align to 128 channels, a residual separable trunk (ELUs), a 3x3 conv."""

    def __init__(self, in_channels: int, width: int = CPM_WIDTH):
        super().__init__()
        self.align = pointwise(in_channels, width)
        self.reduce = pointwise(width, width)
        self.trunk1 = SeparableConv(width, width, activation=nn.functional.elu)
        self.trunk2 = SeparableConv(width, width, activation=nn.functional.elu)
        self.dw3 = depthwise(width)
        self.increase = pointwise(width, width)
        self.conv = init_conv(nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        elu = nn.functional.elu
        aligned = elu(self.align(x))
        trunk = self.trunk2(self.trunk1(elu(self.reduce(aligned))))
        trunk = elu(self.increase(elu(self.dw3(trunk))))
        return torch.relu(self.conv(aligned + trunk))


class MobileNetBackbone(nn.Module):
    """MobileNet-v1 to stride 8 with a dilated ``conv5_1`` and Lightweight OpenPose's CPM; 128 channels out."""

    out_channels = CPM_WIDTH

    def __init__(self):
        super().__init__()
        self.conv1 = init_conv(nn.Conv2d(3, 32, 3, stride=2, padding=1))
        self.layers = nn.Sequential(OrderedDict(
            (name, SeparableConv(cin, cout, stride, dilation)) for name, cin, cout, stride, dilation in MOBILENET_LAYERS))
        self.cpm = LightweightCPM(MOBILENET_LAYERS[-1][2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cpm(self.layers(torch.relu(self.conv1(x))))


class LightAggregationBlock(nn.Module):
    """1x1 reduction, three chained depthwise-separable 3x3 convs, their outputs fused by a 1x1 conv.

    ``ftnet``'s aggregation block in light convolutions; the fuse conv reads the three
    outputs (not the wide input), which keeps a block at a few hundred MACs per cell and
    channel of output.  The fuse conv starts from tiny Gaussian weights
    (:data:`TRANSFER_FUSE_INIT_STD`): its output is near zero, yet not exactly zero, so
    its ReLU passes gradients from the first step.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int, relu_out: bool = True):
        super().__init__()
        self.reduce = pointwise(in_channels, width)
        self.conv1 = SeparableConv(width, width)
        self.conv2 = SeparableConv(width, width)
        self.conv3 = SeparableConv(width, width)
        self.fuse = nn.Conv2d(3 * width, out_channels, 1)
        nn.init.normal_(self.fuse.weight, std=TRANSFER_FUSE_INIT_STD)
        nn.init.zeros_(self.fuse.bias)
        self.relu_out = relu_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv1(torch.relu(self.reduce(x)))
        b = self.conv2(a)
        c = self.conv3(b)
        y = self.fuse(torch.cat([a, b, c], 1))
        return torch.relu(y) if self.relu_out else y


class RefinementBlock(nn.Module):
    """Lightweight OpenPose's refinement block: 1x1 conv, then 3x3 and dilated 3x3 convs added back."""

    def __init__(self, in_channels: int, width: int):
        super().__init__()
        self.initial = init_head_conv(nn.Conv2d(in_channels, width, 1))
        self.conv = init_head_conv(nn.Conv2d(width, width, 3, padding=1))
        self.dilated = init_head_conv(nn.Conv2d(width, width, 3, padding=2, dilation=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        initial = torch.relu(self.initial(x))
        return initial + torch.relu(self.dilated(torch.relu(self.conv(initial))))


class LightRefinement(nn.Module):
    """Five refinement blocks on ``concat(heatmaps, PAFs, F)``, then one 1x1 head per map type."""

    def __init__(self, in_channels: int, width: int = CPM_WIDTH):
        super().__init__()
        self.blocks = nn.Sequential(*(RefinementBlock(in_channels if i == 0 else width, width)
                                      for i in range(REFINEMENT_BLOCKS)))
        self.heads = nn.ModuleDict({
            "joint": nn.Sequential(init_head_conv(nn.Conv2d(width, width, 1)), nn.ReLU(),
                                   init_head_conv(nn.Conv2d(width, NUM_HEATMAPS, 1))),
            "limb": nn.Sequential(init_head_conv(nn.Conv2d(width, width, 1)), nn.ReLU(),
                                  init_head_conv(nn.Conv2d(width, NUM_PAFS, 1))),
        })

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        trunk = self.blocks(x)
        return self.heads["joint"](trunk), self.heads["limb"](trunk)


@register_model("ftnet-light")
class FTNetLight(nn.Module):
    """Feature transfer on a MobileNet backbone (see the module docstring for the wiring).

    Options:
        transfer_from: branch layer whose features are transferred, ``"conv1"`` …
            ``"conv5"`` (default ``"conv4"``), or ``None`` for no transfer.
        refinement: keep the refinement stage (default); ``False`` returns only the
            pre-refinement maps.
        transfer_width: inner width of the transfer blocks (default 64).

    Input ``(B, 3, H, W)`` BGR ``pixels / 256 - 0.5``, H and W multiples of 8.  Output:
    ``[(heatmaps_1, pafs_1), (heatmaps_2, pafs_2)]`` (one pair without refinement).
    """

    stride = 8   # conv1, conv2_2 and conv3_2 stride 2

    def __init__(self, transfer_from: str | None = "conv4", refinement: bool = True, transfer_width: int = 64):
        super().__init__()
        if transfer_from is not None and transfer_from not in TRANSFER_LAYERS:
            raise ValueError(f"transfer_from must be one of {', '.join(TRANSFER_LAYERS)} or none, got {transfer_from!r}")
        if transfer_width < 1:
            raise ValueError(f"transfer_width must be positive, got {transfer_width}")
        self.backbone = MobileNetBackbone()
        features = self.backbone.out_channels
        self.branches = nn.ModuleDict({
            "joint": DetectionBranch(features, NUM_HEATMAPS, CPM_WIDTH, 512),
            "limb": DetectionBranch(features, NUM_PAFS, CPM_WIDTH, 512),
        })
        self.transfer_layer = None if transfer_from is None else TRANSFER_LAYERS.index(transfer_from) + 1
        self.transfer = None
        if self.transfer_layer is not None:
            k = self.transfer_layer
            joint, limb = self.branches["joint"].layer_channels(k), self.branches["limb"].layer_channels(k)
            self.transfer = nn.ModuleDict({
                "limb_to_joint": LightAggregationBlock(limb, joint, transfer_width, relu_out=k < 5),
                "joint_to_limb": LightAggregationBlock(joint, limb, transfer_width, relu_out=k < 5),
            })
        self.refinement = LightRefinement(NUM_HEATMAPS + NUM_PAFS + features) if refinement else None

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        check_network_input(x, self.stride)
        features = self.backbone(x)
        joint, limb = transfer_branches(self, features)
        outputs = [(joint, limb)]
        if self.refinement is not None:
            outputs.append(self.refinement(torch.cat([joint, limb, features], 1)))
        return outputs

    def load_openvino_ir(self, path) -> None:
        """Start from Intel's trained Lightweight OpenPose IR (:func:`init_from_lightweight_openpose`)."""
        init_from_lightweight_openpose(self, path)


def init_from_lightweight_openpose(model: FTNetLight, path) -> None:
    """Load Intel's trained Lightweight OpenPose (``human-pose-estimation-0001`` IR) into ``model``.

    Every layer Intel's network has takes its weights (int8/fp16 in the IR, dequantised);
    the shared initial-stage convs go to both branches; the transfer blocks keep their
    initialisation.  Two conventions are folded in so that ``model`` takes ftpose's input
    and gives ftpose's output: the IR normalises ``pixels / 255 - 0.502`` inside (folded
    into ``conv1``), and its PAFs are in CMU's channel order (output rows and refinement
    input columns permuted by :data:`~ftpose.models.foreign.CMU_PAF_CHANNELS`).
    """
    from ftpose.models.foreign import CMU_PAF_CHANNELS, read_ir_convolutions

    convs = read_ir_convolutions(path)
    scale, shift = convs.pop("input_scale"), convs.pop("input_shift")

    def load(conv: nn.Conv2d, name: str, rows=None, columns=None):
        if name not in convs:
            raise ValueError(f"{path}: no convolution {name!r}; not a Lightweight OpenPose IR")
        weight, bias = convs[name]
        weight = weight.reshape(conv.weight.shape) if conv.groups > 1 else weight
        if rows is not None:
            weight, bias = weight[rows], bias[rows]
        if columns is not None:
            weight = weight[:, columns]
        if tuple(weight.shape) != tuple(conv.weight.shape):
            raise ValueError(f"{path}: {name} has weights {tuple(weight.shape)}, expected {tuple(conv.weight.shape)}")
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(weight))
            conv.bias.copy_(torch.from_numpy(bias))

    backbone = model.backbone
    # conv1 sees ftpose's y = p/256 - 0.5; the IR's conv1 saw u = p * scale + shift = a * y + b
    load(backbone.conv1, "conv1")
    a, b = np.float32(PIXEL_SCALE) * scale, np.float32(PIXEL_SCALE * PIXEL_OFFSET) * scale + shift
    with torch.no_grad():
        weight = backbone.conv1.weight
        backbone.conv1.bias += (weight * torch.from_numpy(b).view(1, 3, 1, 1)).sum((1, 2, 3))
        weight *= torch.from_numpy(a).view(1, 3, 1, 1)
    for name, *_ in MOBILENET_LAYERS:
        layer = getattr(backbone.layers, name)
        load(layer.dw, f"{name}/dw")
        load(layer.pw, f"{name}/sep")
    cpm = backbone.cpm
    for conv, name in ((cpm.align, "conv4_3_CPM/al"), (cpm.reduce, "conv4_3_CPM/red"),
                       (cpm.trunk1.dw, "conv4_3_CPM/dw1"), (cpm.trunk1.pw, "conv4_3_CPM/dw1/1x1"),
                       (cpm.trunk2.dw, "conv4_3_CPM/dw2"), (cpm.trunk2.pw, "conv4_3_CPM/dw2/1x1"),
                       (cpm.dw3, "conv4_3_CPM/dw3"), (cpm.increase, "conv4_3_CPM/inc"), (cpm.conv, "conv4_4_CPM")):
        load(conv, name)
    pafs = CMU_PAF_CHANNELS
    for branch, stage, rows in ((model.branches["joint"], "L2", None), (model.branches["limb"], "L1", pafs)):
        for k in (1, 2, 3):
            load(getattr(branch, f"conv{k}"), f"conv5_{k}_CPM_L1")  # the shared trunk, copied into both
        load(branch.conv4, f"conv5_4_CPM_{stage}")
        load(branch.conv5, f"conv5_5_CPM_{stage}", rows=rows)
    if model.refinement is not None:
        refinement = model.refinement
        # the IR concatenates (PAFs in CMU order, heatmaps, F); ftnet-light (heatmaps, PAFs, F)
        columns = np.concatenate([38 + np.arange(NUM_HEATMAPS), pafs, 57 + np.arange(CPM_WIDTH)])
        for i, block in enumerate(refinement.blocks, start=1):
            load(block.initial, f"Mconv{i}_stage2_L1/sq", columns=columns if i == 1 else None)
            load(block.conv, f"Mconv{i}_stage2_L1/3x3")
            load(block.dilated, f"Mconv{i}_stage2_L1/3x3/2")
        for head, stage, rows in ((refinement.heads["joint"], "L2", None), (refinement.heads["limb"], "L1", pafs)):
            load(head[0], f"Mconv6_stage2_{stage}")
            load(head[2], f"Mconv7_stage2_{stage}", rows=rows)
