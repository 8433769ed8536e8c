"""``ftnet``: the deep feature transfer network (Huang et al. 2020, §3.1-3.3, Fig. 2 and 5).

::

    image -> backbone (VGG-19/10 + CPM, 128 ch, stride 8) = F
    joint branch  Conv-1 .. Conv-4 --(+ T_limb->joint)--> Conv-5 -> heatmaps_1 (19)
    limb  branch  Conv-1 .. Conv-4 --(+ T_joint->limb)--> Conv-5 -> PAFs_1     (38)
    refinement    concat(heatmaps_1, PAFs_1, F) -> joint: 7 blocks -> heatmaps_2
                                                -> limb:  7 blocks -> PAFs_2

``forward`` returns ``[(heatmaps_1, PAFs_1), (heatmaps_2, PAFs_2)]`` - nodes 1/2 of
Fig. 2 and the final maps - so training can supervise both.

The paper names the parts but not every connection; the choices made here:

* Detection branches (§3.1): OpenPose's stage-1 branch, Conv-1..3 3x3/128, Conv-4
  1x1/512, Conv-5 1x1 output, ReLU after all but Conv-5 (:class:`DetectionBranch`).
* Block (:class:`AggregationBlock`), the unit of both transfer and refinement: "3
  convolutional layers with a kernel size of 3x3 and the output features of them are
  aggregated to strengthen feature propagation".  Here: three chained 3x3/128 convs;
  the block input and the three outputs are concatenated and fused by a 1x1 conv
  (one-shot aggregation, as in VoVNet).  The fuse conv lets a block end at any width.
* Transfer (§3.2): one stack of 4 blocks per direction (limb -> joint, joint -> limb),
  128 channels inside (the paper does not give a width).  It reads the source branch's
  Conv-4 features (512) and ends in the target branch's Conv-4 type: 512 channels
  after a ReLU (eq. 5, ``A^T = ReLU(A * f_T)``).  The result is *added* to the target's
  Conv-4 output before Conv-5.  Adding has no parameters, so the "no transfer"
  ablation (Table 8) removes only the transfer blocks and keeps "all other structures
  and parameters the same", as the paper did.
* Refinement (§3.3): input ``concat(heatmaps, PAFs, F)`` = 185 channels, where ``F`` is
  the bifurcation layer of the backbone (the CPM output the branches start from); per
  branch 7 blocks at 128 channels and a 1x1 output conv without ReLU.

Parameters (default options; ``ftpose info ftnet``) against the paper's Fig. 5:

====================  ==========  ===========
part                  here        paper
====================  ==========  ===========
backbone + branches   8,387,321   8.9M
transfer              5,444,352   4.7M
refinement            7,271,097   7.6M
total                 21,102,770  21,278,912
====================  ==========  ===========

The total is 0.8% under the paper's and the MACs 82.04 G at 368x432 (paper: 82.5 G).
With 128-channel 3x3 blocks throughout, the two parts can only match Fig. 5's split
approximately; this wiring is the one found closest to it that follows the text.

Ablations (options): ``transfer_from="conv1"`` … ``"conv5"`` taps and merges at
Conv-k instead (Table 7; blocks then end in Conv-k's width and, for Conv-5, without a
ReLU since the target is a map); ``transfer_from=None`` (``"none"`` in configs and on the command line) removes transfer (Table 8);
``refinement=False`` removes the refinement module and returns one output (Table 9).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ftpose.keypoints import NUM_HEATMAPS, NUM_PAFS
from ftpose.models.openpose import DetectionBranch
from ftpose.models.registry import register_model
from ftpose.models.vgg import VGGBackbone, init_head_conv, scaled

TRANSFER_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
TRANSFER_BLOCKS = 4
REFINEMENT_BLOCKS = 7


class AggregationBlock(nn.Module):
    """Three chained 3x3 convs; input and their outputs concatenated, fused by a 1x1 conv.

    Every conv is followed by a ReLU; the fuse conv's ReLU is optional
    (``relu_out=False`` when the block produces signed maps).
    """

    def __init__(self, in_channels: int, out_channels: int, width: int = 128, relu_out: bool = True):
        super().__init__()
        self.conv1 = init_head_conv(nn.Conv2d(in_channels, width, 3, padding=1))
        self.conv2 = init_head_conv(nn.Conv2d(width, width, 3, padding=1))
        self.conv3 = init_head_conv(nn.Conv2d(width, width, 3, padding=1))
        self.fuse = init_head_conv(nn.Conv2d(in_channels + 3 * width, out_channels, 1))
        self.relu_out = relu_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.conv1(x))
        b = torch.relu(self.conv2(a))
        c = torch.relu(self.conv3(b))
        y = self.fuse(torch.cat([x, a, b, c], 1))
        return torch.relu(y) if self.relu_out else y


def block_stack(num_blocks: int, in_channels: int, out_channels: int, width: int, relu_out: bool) -> nn.Sequential:
    """``num_blocks`` aggregation blocks ``in -> width -> … -> width -> out``."""
    blocks = OrderedDict()
    for i in range(1, num_blocks + 1):
        last = i == num_blocks
        blocks[f"block{i}"] = AggregationBlock(in_channels if i == 1 else width, out_channels if last else width,
                                               width, relu_out=relu_out or not last)
    return nn.Sequential(blocks)


def refinement_branch(in_channels: int, out_channels: int, width: int) -> nn.Sequential:
    """7 aggregation blocks and a 1x1 output conv (no ReLU)."""
    branch = block_stack(REFINEMENT_BLOCKS, in_channels, width, width, relu_out=True)
    branch.add_module("output", init_head_conv(nn.Conv2d(width, out_channels, 1)))
    return branch


def transfer_branches(model: nn.Module, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The joint and limb branches of ``model`` over ``features``, five layers each, exchanging
    features after layer ``model.transfer_layer`` (the feature transfer); ``ftnet`` and ``ftnet-light``."""
    joint_branch, limb_branch = model.branches["joint"], model.branches["limb"]
    joint = limb = features
    for k in range(1, 6):
        joint, limb = joint_branch.layer(k, joint), limb_branch.layer(k, limb)
        if k == model.transfer_layer:
            joint, limb = (joint + model.transfer["limb_to_joint"](limb),
                           limb + model.transfer["joint_to_limb"](joint))
    return joint, limb


@register_model("ftnet")
class FTNet(nn.Module):
    """The paper's feature-transfer network (see the module docstring for the wiring).

    Options:
        transfer_from: branch layer whose features are transferred, ``"conv1"`` …
            ``"conv5"`` (default ``"conv4"``, the paper's choice), or ``None`` for no
            transfer sub-network.
        refinement: keep the refinement module (default); ``False`` returns only the
            pre-refinement maps.
        width_mult: scales every layer's width (1.0 = the real network); small values
            (e.g. 0.125) give a tiny variant that trains on a CPU in tests.
        pretrained_backbone: initialise VGG ``conv1_1 … conv4_2`` from ImageNet
            (downloads the weights once; see :mod:`ftpose.models.vgg`).

    Input ``(B, 3, H, W)`` BGR ``pixels / 256 - 0.5``, H and W multiples of 8.  Output:
    ``[(heatmaps_1, pafs_1), (heatmaps_2, pafs_2)]`` with heatmaps ``(B,19,H/8,W/8)``
    and PAFs ``(B,38,H/8,W/8)``; a single pair when ``refinement=False``.
    """

    stride = VGGBackbone.stride

    def __init__(self, transfer_from: str | None = "conv4", refinement: bool = True,
                 width_mult: float = 1.0, pretrained_backbone: bool = False):
        super().__init__()
        if transfer_from is not None and transfer_from not in TRANSFER_LAYERS:
            raise ValueError(f"transfer_from must be one of {', '.join(TRANSFER_LAYERS)} or none, got {transfer_from!r}")
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        width = scaled(128, width_mult)
        self.backbone = VGGBackbone(width_mult)
        features = self.backbone.out_channels
        self.branches = nn.ModuleDict({
            "joint": DetectionBranch(features, NUM_HEATMAPS, width, scaled(512, width_mult)),
            "limb": DetectionBranch(features, NUM_PAFS, width, scaled(512, width_mult)),
        })
        self.transfer_layer = None if transfer_from is None else TRANSFER_LAYERS.index(transfer_from) + 1
        self.transfer = None
        if self.transfer_layer is not None:
            k = self.transfer_layer
            joint_channels = self.branches["joint"].layer_channels(k)
            limb_channels = self.branches["limb"].layer_channels(k)
            relu_out = k < 5  # Conv-5 is the linear output layer
            self.transfer = nn.ModuleDict({
                "limb_to_joint": block_stack(TRANSFER_BLOCKS, limb_channels, joint_channels, width, relu_out),
                "joint_to_limb": block_stack(TRANSFER_BLOCKS, joint_channels, limb_channels, width, relu_out),
            })
        self.refinement = None
        if refinement:
            in_channels = NUM_HEATMAPS + NUM_PAFS + features
            self.refinement = nn.ModuleDict({
                "joint": refinement_branch(in_channels, NUM_HEATMAPS, width),
                "limb": refinement_branch(in_channels, NUM_PAFS, width),
            })
        if pretrained_backbone:
            self.backbone.load_imagenet_vgg16()

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        features = self.backbone(x)
        joint, limb = transfer_branches(self, features)
        outputs = [(joint, limb)]
        if self.refinement is not None:
            context = torch.cat([joint, limb, features], 1)
            outputs.append((self.refinement["joint"](context), self.refinement["limb"](context)))
        return outputs
