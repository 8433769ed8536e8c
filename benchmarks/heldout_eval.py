"""Teacher and student on the held-out photos, through ``ftpose predict --json`` + ``ftpose eval --results``.

The held-out split of ``../shared/data`` (annotated photos that no distillation run
may read, not even as unlabeled images):

* ``mmpose_fixtures/coco``: 4 COCO val2017 photos, 12 people with keypoints;
* ``coco8_pose`` val: 4 COCO train2017 photos, 14 person annotations.

Both are COCO-17 with the original annotations, and none of their images appear in
any training folder (coco_mini and coco8 train are other COCO images).  Everything
else in ``../shared/data`` may be used for distillation.  The two annotation files are
merged into one ground truth (image ids are the COCO ids, all distinct), each system
predicts on the 8 photos with the ``ftpose predict`` command and the results file is
scored by ``ftpose eval --dataset coco --results`` (pycocotools).

    python benchmarks/heldout_eval.py --out /tmp/heldout teacher ftnet=ftpose/assets/ftnet.safetensors

A system is ``NAME`` (a registered model with its shipped weights, e.g. ``teacher``)
or ``LABEL=WEIGHTS`` (a weights file, a training checkpoint, or a network file such as
Intel's ``human-pose-estimation-0001.xml``).  ``--backends`` runs each
system once per inference backend (``ftpose predict --backend``), which gives the AP cost
of bf16 and int8 on the same photos:

    python benchmarks/heldout_eval.py --out /tmp/heldout --backends torch,onnxruntime-int8 ftnet
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HELDOUT = (  # (annotations, folder its file names are relative to), relative to DATA
    ("mmpose_fixtures/coco/test_coco.json", "mmpose_fixtures/coco"),
    ("coco8_pose/person_keypoints_val.json", "coco8_pose"),
)


def write_ground_truth(data: Path, path: Path) -> list[Path]:
    """Merge the held-out annotation files into ``path``; return the image files."""
    merged = {"images": [], "annotations": [], "categories": None}
    images = []
    for annotation_file, folder in HELDOUT:
        part = json.loads((data / annotation_file).read_text())
        merged["categories"] = merged["categories"] or part["categories"]
        for image in part["images"]:
            images.append(data / folder / image["file_name"])
            # relative to --data: annotation files may not point outside their images folder
            merged["images"].append({**image, "file_name": str(Path(folder) / image["file_name"])})
        merged["annotations"].extend(part["annotations"])
    ids = [image["id"] for image in merged["images"]]
    assert len(set(ids)) == len(ids), "held-out image ids collide"
    path.write_text(json.dumps(merged))
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("systems", nargs="+", metavar="NAME|LABEL=WEIGHTS")
    parser.add_argument("--out", type=Path, required=True, help="folder for the ground truth and results")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--backends", default="torch", help="comma-separated inference backends")
    parser.add_argument("--calibration", type=Path, action="append", default=[],
                        help="photos or folders that calibrate the int8 backends (repeatable)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    truth = args.out / "heldout_gt.json"
    images = write_ground_truth(args.data, truth)
    ftpose = [sys.executable, "-m", "ftpose"]
    rows = []
    backends = args.backends.split(",")
    for system in args.systems:
        name, _, weights = system.partition("=")
        network_file = Path(weights).suffix.lower() in (".xml", ".onnx", ".pb")
        model = ["--weights", weights] if weights and not network_file else ["--model", weights or name]
        for backend in backends:
            label = name if len(backends) == 1 else f"{name} {backend}"
            results = args.out / f"{label.replace(' ', '_')}.json"
            calibration = [arg for path in args.calibration for arg in ("--calibration", str(path))]
            subprocess.run(ftpose + ["predict", *model, "--backend", backend, *calibration,
                                     "--json", str(results), *map(str, images)], check=True)
            metrics_file = results.with_suffix(".metrics.json")
            subprocess.run(ftpose + ["eval", "--dataset", "coco", "--ann", str(truth), "--results", str(results),
                                     "--json", str(metrics_file)], check=True, stdout=subprocess.DEVNULL)
            rows.append((label, json.loads(metrics_file.read_text())))
    print("| system | AP | AP50 | AP75 | AR |\n|---|---|---|---|---|")
    for label, m in rows:
        print(f"| {label} | " + " | ".join(f"{m[k]:.3f}" for k in ("AP", "AP50", "AP75", "AR")) + " |")


if __name__ == "__main__":
    main()
