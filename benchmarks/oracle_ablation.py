"""Oracle COCO AP of the decoder's design choices, on the real annotation files.

Every variant decodes the encoder's perfect maps of the same annotations (see
``ftpose.evaluation.oracle``) and is scored by pycocotools:

- ``default``: peaks on the stride-8 maps with sub-cell refinement, fragment merging;
- ``upsampled``: the maps first resized x8 to the image size (cubic, as OpenPose);
- ``no merging``: fragments that no limb joins stay separate people;
- ``min 3 parts``: OpenPose's filter, people with fewer than 3 joints dropped;
- ``rank by joints`` / ``mean confidence`` / ``unranked``: the default people with
  other person scores (number of joints, mean joint confidence, all equal), to show
  what the documented score is worth.

Also shown: how many people the variant returns for the people annotated in
``coco_mini`` (stray fragments are extra people), and the time of encoding plus
decoding (plus upsampling) all four files.

    python benchmarks/oracle_ablation.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ftpose.data.coco import load_coco_annotations
from ftpose.evaluation.coco import evaluate_coco
from ftpose.evaluation.oracle import oracle_results
from ftpose.grouping import GroupingParams

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = {
    "coco_mini": "coco_mini/annotations/person_keypoints_train2017.json",
    "coco8 train": "coco8_pose/person_keypoints_train.json",
    "coco8 val": "coco8_pose/person_keypoints_val.json",
    "mmpose coco": "mmpose_fixtures/coco/test_coco.json",
}
VARIANTS = {
    "default": {},
    "upsampled": {"upsample": True},
    "no merging": {"params": GroupingParams(merge_fragments=False)},
    "min 3 parts": {"params": GroupingParams(min_parts=3)},
}
RESCORED = {
    "rank by joints": lambda confidences: sum(c > 0 for c in confidences),
    "mean confidence": lambda confidences: sum(confidences) / max(sum(c > 0 for c in confidences), 1),
    "unranked": lambda confidences: 1.0,
}


def main():
    missing = [name for name in FILES.values() if not (DATA / name).is_file()]
    if missing:
        sys.exit(f"benchmark data not found: {DATA / missing[0]} (the shared real-data folder)")
    annotations = {label: load_coco_annotations(DATA / name) for label, name in FILES.items()}
    print(f"{'variant':<16}" + "".join(f"{label:>13}" for label in FILES)
          + "   people found (annotated) in coco_mini   oracle time, all files")
    decoded = {}
    for variant, options in VARIANTS.items():
        start = time.perf_counter()
        decoded[variant] = {label: oracle_results(coco, **options) for label, coco in annotations.items()}
        seconds = time.perf_counter() - start
        annotated = sum(a["num_keypoints"] > 0 and not a["iscrowd"] for a in annotations["coco_mini"].anns.values())
        found = f"{len(decoded[variant]['coco_mini'])} ({annotated})"
        _print_row(variant, annotations, decoded[variant], f"   {found:>38}   {seconds:.2f} s")
    for variant, score in RESCORED.items():
        rescored = {label: [dict(r, score=float(score(r["keypoints"][2::3]))) for r in records]
                    for label, records in decoded["default"].items()}
        _print_row(variant, annotations, rescored, "")


def _print_row(variant, annotations, results, suffix):
    aps = [evaluate_coco(annotations[label], results[label])["AP"] for label in FILES]
    print(f"{variant:<16}" + "".join(f"{ap:>13.3f}" for ap in aps) + suffix)


if __name__ == "__main__":
    main()
