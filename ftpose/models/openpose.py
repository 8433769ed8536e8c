"""``openpose``: the part-affinity-field network of Cao et al. 2017, the paper's baseline.

Structure as OpenPose's public COCO model has it: the VGG-19/10 + CPM
backbone, a first stage of two :class:`DetectionBranch` es (joints -> 19 heatmaps, limbs
-> 38 PAFs), then ``stages - 1`` refinement stages that each read
``concat(heatmaps, PAFs, backbone features)`` (185 channels) and run, per branch, five
7x7/128 convs, a 1x1/128 conv and a 1x1 output conv.  Six stages: 52,311,446
parameters and 159.6 GMAC at 368x432 (the paper quotes 52,298,816).

:class:`DetectionBranch` is also ``ftnet``'s detection branch: its five layers are
what the paper calls Conv-1 … Conv-5.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ftpose.keypoints import NUM_HEATMAPS, NUM_PAFS
from ftpose.models.registry import register_model
from ftpose.models.vgg import VGGBackbone, init_head_conv, scaled


class DetectionBranch(nn.Module):
    """OpenPose stage-1 branch = the paper's Conv-1 … Conv-5.

    Conv-1..3: 3x3 convs of ``width`` channels; Conv-4: 1x1 conv to ``hidden`` (512)
    channels; Conv-5: 1x1 output conv to ``out_channels`` maps.  A ReLU follows each
    layer but Conv-5.  :meth:`layer` runs one layer, so ``ftnet`` can tap and merge
    features between layers.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int = 128, hidden: int = 512):
        super().__init__()
        self.conv1 = init_head_conv(nn.Conv2d(in_channels, width, 3, padding=1))
        self.conv2 = init_head_conv(nn.Conv2d(width, width, 3, padding=1))
        self.conv3 = init_head_conv(nn.Conv2d(width, width, 3, padding=1))
        self.conv4 = init_head_conv(nn.Conv2d(width, hidden, 1))
        self.conv5 = init_head_conv(nn.Conv2d(hidden, out_channels, 1))

    @property
    def layers(self) -> tuple[nn.Conv2d, ...]:
        return (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5)

    def layer_channels(self, k: int) -> int:
        """Output channels of Conv-``k`` (1-based)."""
        return self.layers[k - 1].out_channels

    def layer(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """Apply Conv-``k`` (1-based) and, for k < 5, its ReLU."""
        x = self.layers[k - 1](x)
        return torch.relu(x) if k < 5 else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k in range(1, 6):
            x = self.layer(k, x)
        return x


class RefinementStage(nn.Module):
    """One OpenPose stage t >= 2: two branches of 5x 7x7 convs, a 1x1 conv and a 1x1 output."""

    def __init__(self, in_channels: int, width: int = 128):
        super().__init__()
        self.joint = self._branch(in_channels, width, NUM_HEATMAPS)
        self.limb = self._branch(in_channels, width, NUM_PAFS)

    @staticmethod
    def _branch(in_channels: int, width: int, out_channels: int) -> nn.Sequential:
        layers = OrderedDict()
        channels = in_channels
        for i in range(1, 6):
            layers[f"conv{i}"] = init_head_conv(nn.Conv2d(channels, width, 7, padding=3))
            layers[f"relu{i}"] = nn.ReLU(inplace=True)
            channels = width
        layers["conv6"] = init_head_conv(nn.Conv2d(width, width, 1))
        layers["relu6"] = nn.ReLU(inplace=True)
        layers["conv7"] = init_head_conv(nn.Conv2d(width, out_channels, 1))
        return nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.joint(x), self.limb(x)


@register_model("openpose")
class OpenPose(nn.Module):
    """Cao et al. 2017 (OpenPose, COCO): backbone + ``stages`` stages (6 in the original).

    Options:
        stages: number of supervised stages (>= 1).
        width_mult: scales every layer's width (1.0 = the real network); small values
            (e.g. 0.125) give a tiny variant that trains on a CPU in tests.
        pretrained_backbone: initialise VGG ``conv1_1 … conv4_2`` from ImageNet
            (downloads the weights once; see :mod:`ftpose.models.vgg`).

    Input ``(B, 3, H, W)`` BGR ``pixels / 256 - 0.5``, H and W multiples of 8.  Output:
    one ``(heatmaps (B,19,H/8,W/8), pafs (B,38,H/8,W/8))`` pair per stage, the final last.
    """

    stride = VGGBackbone.stride

    def __init__(self, stages: int = 6, width_mult: float = 1.0, pretrained_backbone: bool = False):
        super().__init__()
        if stages < 1:
            raise ValueError(f"stages must be at least 1, got {stages}")
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        self.backbone = VGGBackbone(width_mult)
        width, hidden = scaled(128, width_mult), scaled(512, width_mult)
        features = self.backbone.out_channels
        self.stage1 = nn.ModuleDict({
            "joint": DetectionBranch(features, NUM_HEATMAPS, width, hidden),
            "limb": DetectionBranch(features, NUM_PAFS, width, hidden),
        })
        self.stages = stages
        for t in range(2, stages + 1):  # named attributes stage2 … stage6 keep `ftpose info` readable
            self.add_module(f"stage{t}", RefinementStage(NUM_HEATMAPS + NUM_PAFS + features, width))
        if pretrained_backbone:
            self.backbone.load_imagenet_vgg16()

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        features = self.backbone(x)
        maps = (self.stage1["joint"](features), self.stage1["limb"](features))
        outputs = [maps]
        for t in range(2, self.stages + 1):
            maps = getattr(self, f"stage{t}")(torch.cat([*maps, features], 1))
            outputs.append(maps)
        return outputs
