"""Oracle evaluation: decode perfect maps rendered from the ground truth.

The encoder draws each image's annotated people at the image's own size, the decoder
groups them exactly as the predictor groups network output (same decoder, same
stride-8 to pixel transform), and COCO AP of the result is the decoder's upper bound:
what the grouping loses when the network is perfect.  No images are read.
"""
from __future__ import annotations

import cv2
import numpy as np

from ftpose.data.coco import load_coco_annotations
from ftpose.grouping import GroupingParams, People, decode
from ftpose.keypoints import COCO17, NETWORK, convert
from ftpose.network_input import STRIDE
from ftpose.targets import encode


def oracle_people(keypoints: np.ndarray, height: int, width: int, stride: int = STRIDE,
                  upsample: bool = False, params: GroupingParams | None = None) -> People:
    """Encode ``(N, 18, 3)`` network-layout keypoints and decode them again, in image pixels.

    ``upsample`` decodes maps resized to the image's size (cubic, as OpenPose does)
    instead of the stride-``stride`` maps.
    """
    heatmaps, pafs = encode(keypoints, height, width, stride)
    if upsample:
        heatmaps, pafs = (_resize(m, stride) for m in (heatmaps, pafs))
        return decode(heatmaps, pafs, params)
    return decode(heatmaps, pafs, params).scaled(stride)


def _resize(maps: np.ndarray, factor: int) -> np.ndarray:
    _, h, w = maps.shape
    resized = cv2.resize(maps.transpose(1, 2, 0), (w * factor, h * factor), interpolation=cv2.INTER_CUBIC)
    return resized.reshape(h * factor, w * factor, -1).transpose(2, 0, 1)


def oracle_results(ann, stride: int = STRIDE, upsample: bool = False,
                   params: GroupingParams | None = None) -> list[dict]:
    """COCO keypoint results decoded from maps rendered from the annotations ``ann``.

    ``ann`` is a path, a dict or a pycocotools ``COCO``.  People marked ``iscrowd`` or
    without keypoints are not drawn (training ignores them too).
    """
    coco = load_coco_annotations(ann)
    results = []
    for image_id in sorted(coco.getImgIds()):
        image = coco.imgs[image_id]
        anns = [a for a in coco.imgToAnns.get(image_id, []) if not a["iscrowd"] and a["num_keypoints"] > 0]
        keypoints = np.array([a["keypoints"] for a in anns], np.float64).reshape(-1, len(COCO17), 3)
        people = oracle_people(convert(keypoints, COCO17, NETWORK), image["height"], image["width"],
                               stride, upsample, params)
        results += people.coco_results(image_id)
    return results
