"""Score the same predictions with ftpose and with poseval, PoseTrack's reference tool.

poseval (github.com/leonid-pishchulin/poseval) is not on PyPI and is no dependency of
ftpose: install it in a separate environment and pass that environment's python::

    python -m venv /tmp/poseval-env
    /tmp/poseval-env/bin/pip install motmetrics shapely click tqdm
    git clone https://github.com/leonid-pishchulin/poseval /tmp/poseval-src
    /tmp/poseval-env/bin/pip install --no-deps -e /tmp/poseval-src
    python tools/crosscheck_poseval.py --poseval-python /tmp/poseval-env/bin/python

Cases are built from the real fixtures in ``../shared/data`` by controlled corruptions
(joint noise, mirrored sides, dropped, duplicated and invented people, track-id
switches) with distinct joint scores, so that ranking ties cannot differ:

- PoseTrack 2018 per-part AP on the three annotated validation frames;
- MPII per-part AP on the MPII fixture, given to poseval in its 2017 format (its 15
  joints hold MPII's 14; MPII's Head and mAP are formed from the per-joint APs);
- PoseTrack MOTA, precision, recall and MOTP on a 6-frame video made from the
  11-person frame (people moving a few pixels per frame).  poseval's tracking skips
  the last frame of each sequence, so ftpose scores the same frames without it; and
  poseval's MOTP sums the distances of all candidate pairs under py-motmetrics >= 1.2,
  so it is also run with its sum restricted to matched pairs (what ftpose reports).

Prints one line per case and metric and exits 1 if any AP differs by 0.1 or more.
With ``--keep DIR`` the cases stay for scoring with ``ftpose eval``: per seed ``N``,
``DIR/posetrackN/pred``, ``DIR/mpiiN/mpii_{gt,pred}.json`` and ``DIR/videoN/{gt,pred}``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ftpose.evaluation import mpii, posetrack
from ftpose.keypoints import MPII16, POSETRACK17, POSETRACK18

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.1  # AP points, i.e. percent

# poseval reads MPII joints through its PoseTrack-2017 ids: MPII's 14 scored joints
MPII_TO_POSEVAL = {name: POSETRACK17.index.get(name, POSETRACK17.index["head_bottom"]) for name in mpii.JOINTS}

PATCH_MOTP = """
import runpy, sys
import motmetrics as mm
events = mm.MOTAccumulator.events
mm.MOTAccumulator.events = property(lambda self: events.fget(self)[events.fget(self).Type.isin(
    ["MATCH", "SWITCH", "MISS", "FP"])])
sys.argv = ["poseval.evaluate"] + sys.argv[1:]
runpy.run_module("poseval.evaluate", run_name="__main__")
"""


def run_poseval(python: str, gt_dir: Path, pred_dir: Path, out_dir: Path, tracking: bool,
                matched_distances_only: bool = False) -> dict:
    args = ["-g", f"{gt_dir}/", "-p", f"{pred_dir}/", "-o", str(out_dir), "-e"] + (["-t"] if tracking else [])
    command = [python, "-c", PATCH_MOTP, *args] if matched_distances_only else [python, "-m", "poseval.evaluate", *args]
    subprocess.run(command, check=True, capture_output=True, text=True)
    out = {"ap": json.loads((out_dir / "total_AP_metrics.json").read_text())["ap"]}
    if tracking:
        out.update(json.loads((out_dir / "total_MOT_metrics.json").read_text()))
    return out


def corrupt(people: list[dict], rng, head_sizes) -> list[dict]:
    """Noisy copies of annotated people (keypoints ``(K, 3)``), some mirrored, dropped,
    duplicated or invented; every joint gets a distinct random score.  The noise level
    (in head sizes) is drawn per call, so the cases span high and low AP."""
    noise = rng.uniform(0.05, 0.4)
    out = []
    for person, head in zip(people, head_sizes):
        if rng.random() < 0.15:
            continue
        kp = person["keypoints"].copy()
        labelled = kp[:, 2] > 0
        kp[labelled, :2] += rng.normal(0, noise * head, (labelled.sum(), 2))
        if rng.random() < 0.25:
            kp = kp[person["flip"]]
        out.append(dict(person, keypoints=kp))
        if rng.random() < 0.2:
            twin = kp.copy()
            twin[twin[:, 2] > 0, :2] += rng.normal(0, head, ((twin[:, 2] > 0).sum(), 2))
            out.append(dict(person, keypoints=twin, track_id=person["track_id"] + 500))
    if people and rng.random() < 0.5:
        ghost = people[0]["keypoints"].copy()
        ghost[ghost[:, 2] > 0, :2] += rng.uniform(-300, 300, 2)
        out.append(dict(people[0], keypoints=ghost, track_id=900))
    for p in out:
        p["scores"] = rng.permutation(1000)[:len(p["keypoints"])] / 1000 + rng.random() / 1000
    return out


# --- PoseTrack --------------------------------------------------------------------------

def posetrack_prediction_files(gt_dir: Path, pred_dir: Path, rng, tracked=True):
    pred_dir.mkdir(parents=True, exist_ok=True)
    for file in sorted(gt_dir.glob("*.json")):
        data = json.loads(file.read_text())
        annotations = []
        for image in data["images"]:
            people = [{"keypoints": np.reshape(a["keypoints"], (-1, 3)).astype(float), "track_id": a["track_id"],
                       "flip": POSETRACK18.flip_permutation}
                      for a in data["annotations"] if a["image_id"] == image["id"]]
            heads = [np.hypot(*a["bbox_head"][2:]) * 0.6 for a in data["annotations"] if a["image_id"] == image["id"]]
            predicted = corrupt(people, rng, heads) or [dict(people[0], scores=np.full(17, 0.5))]
            for n, p in enumerate(predicted):
                kp = p["keypoints"].copy()
                kp[kp[:, 2] == 0] = 0
                kp[kp[:, 2] > 0, 2] = 1
                annotations.append({"image_id": image["id"], "id": image["id"] * 100 + n, "category_id": 1,
                                    "keypoints": kp.ravel().tolist(), "scores": np.round(p["scores"], 6).tolist(),
                                    "track_id": int(p["track_id"] if tracked else n)})
        (pred_dir / file.name).write_text(json.dumps(dict(data, annotations=annotations)))


def make_video(source: Path, out_dir: Path, frames: int, rng):
    """A ``frames``-frame sequence of one annotated frame, its people drifting."""
    data = json.loads(source.read_text())
    image = data["images"][0]
    images, annotations = [], []
    drift = {a["track_id"]: rng.uniform(-4, 4, 2) for a in data["annotations"]}
    for t in range(frames):
        frame = dict(image, id=image["id"] + t, frame_id=image["id"] + t,
                     file_name=str(Path(image["file_name"]).with_name(f"{t:06d}.jpg")))
        images.append(frame)
        for a in data["annotations"]:
            kp = np.reshape(a["keypoints"], (-1, 3)).astype(float)
            kp[kp[:, 2] > 0, :2] += t * drift[a["track_id"]]
            x, y, w, h = a["bbox_head"]
            dx, dy = t * drift[a["track_id"]]
            annotations.append(dict(a, image_id=frame["id"], id=frame["id"] * 100 + a["track_id"],
                                    keypoints=kp.ravel().tolist(), bbox_head=[x + dx, y + dy, w, h]))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / source.name).write_text(json.dumps(dict(data, images=images, annotations=annotations)))


def switch_some_tracks(pred_dir: Path, rng):
    """Exchange the track ids of two people from a random frame on, in every file."""
    for file in pred_dir.glob("*.json"):
        data = json.loads(file.read_text())
        ids = sorted({a["image_id"] for a in data["annotations"]})
        start = ids[rng.integers(1, len(ids))]
        tracks = sorted({a["track_id"] for a in data["annotations"]})[:2]
        for a in data["annotations"]:
            if a["image_id"] >= start and a["track_id"] in tracks:
                a["track_id"] = tracks[1 - tracks.index(a["track_id"])]
        file.write_text(json.dumps(data))


def ours_posetrack(gt_dir: Path, pred_dir: Path, drop_last_frame=False) -> dict:
    sequences = posetrack.load_ground_truth(gt_dir)
    if drop_last_frame:
        for s in sequences:
            s.frames = s.frames[:-1]
    predictions, layout = posetrack.load_results(pred_dir)
    return posetrack.evaluate_posetrack(sequences, predictions, layout)


def compare_posetrack_ap(ours: dict, ref: dict, case: str) -> float:
    joints = {name: i for i, name in enumerate(POSETRACK17.keypoints)}
    worst = 0.0
    for column, members in posetrack.COLUMNS.items():
        theirs = np.mean([ref["ap"][joints[m]] for m in members])
        worst = max(worst, report(case, column, 100 * ours[column], theirs))
    return max(worst, report(case, "mAP", 100 * ours["mAP"], ref["ap"][-1]))


def report(case: str, metric: str, ours: float, theirs: float) -> float:
    difference = abs(ours - theirs)
    print(f"{case:<28} {metric:<16} ftpose {ours:8.3f}   poseval {theirs:8.3f}   |diff| {difference:.2e}")
    return difference


# --- MPII -------------------------------------------------------------------------------

def mpii_case(shared: Path, work: Path, rng) -> tuple[Path, Path, Path, Path]:
    """MPII ground truth with head boxes, noisy predictions, both in ftpose's and poseval's formats."""
    records = json.loads((shared / "mmpose_fixtures/mpii/test_mpii.json").read_text())
    gt_annolist, pred_annolist, ours_gt, ours_pred = [], [], [], []
    for r in records:
        visible = np.asarray(r["joints_vis"]) > 0
        kp = np.concatenate([np.asarray(r["joints"], float), visible[:, None].astype(float)], 1)
        kp[~visible] = 0
        neck, top = kp[MPII16.index["upper_neck"], :2], kp[MPII16.index["head_top"], :2]
        box = [*(np.minimum(neck, top) - 10).tolist(), *(np.maximum(neck, top) + 10).tolist()]
        ours_gt.append(dict(r, head_box=box))
        head = mpii.head_size_from_box(box)
        people = [{"keypoints": kp, "track_id": 0, "flip": MPII16.flip_permutation}]
        predicted = corrupt(people, rng, [head])
        gt_annolist.append(_annolist_frame(r["image"], [kp], box=box))
        pred_annolist.append(_annolist_frame(r["image"], [p["keypoints"] for p in predicted],
                                             scores=[p["scores"] for p in predicted]))
        ours_pred += [{"image": r["image"], "keypoints": np.where(p["keypoints"][:, 2:] > 0, p["keypoints"], 0)
                       .ravel().tolist(), "keypoint_scores": p["scores"].tolist()} for p in predicted]
    paths = [work / "mpii_gt.json", work / "mpii_pred.json", work / "mpii_gt_poseval", work / "mpii_pred_poseval"]
    paths[0].write_text(json.dumps(ours_gt))
    paths[1].write_text(json.dumps(ours_pred))
    for folder, annolist in zip(paths[2:], (gt_annolist, pred_annolist)):
        folder.mkdir(exist_ok=True)
        (folder / "mpii.json").write_text(json.dumps({"annolist": annolist}))
    return tuple(paths)


def _annolist_frame(image: str, people, box=None, scores=None) -> dict:
    rects = []
    for n, kp in enumerate(people):
        points = []
        for name, target in MPII_TO_POSEVAL.items():
            j = MPII16.index[name]
            if kp[j, 2] > 0:
                point = {"id": [target], "x": [float(kp[j, 0])], "y": [float(kp[j, 1])]}
                if scores is not None:
                    point["score"] = [float(scores[n][j])]
                points.append(point)
        rect = {"track_id": [n], "annopoints": [{"point": points}]}
        if box is not None:
            rect.update({"x1": [box[0]], "y1": [box[1]], "x2": [box[2]], "y2": [box[3]]})
        rects.append(rect)
    return {"image": [{"name": image}], "annorect": rects}


def compare_mpii(ours: dict, ref: dict, case: str) -> float:
    theirs = {name: ref["ap"][target] for name, target in MPII_TO_POSEVAL.items()}
    worst = 0.0
    for column, members in mpii.COLUMNS.items():
        worst = max(worst, report(case, column, 100 * ours[column], np.mean([theirs[m] for m in members])))
    return max(worst, report(case, "mAP", 100 * ours["mAP"], np.mean(list(theirs.values()))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--poseval-python", required=True, help="python of an environment with poseval installed")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="write the cases here (ground truth, predictions, poseval's "
                                                   "output) instead of a temporary folder")
    args = parser.parse_args()
    posetrack_val = args.data / "mmpose_fixtures/posetrack18/annotations/val"
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            case = work / f"posetrack{seed}"
            posetrack_prediction_files(posetrack_val, case / "pred", rng, tracked=False)
            ref = run_poseval(args.poseval_python, posetrack_val, case / "pred", case / "out", tracking=False)
            worst = max(worst, compare_posetrack_ap(ours_posetrack(posetrack_val, case / "pred"), ref,
                                                    f"posetrack18 AP seed {seed}"))

            case = work / f"mpii{seed}"
            case.mkdir(parents=True, exist_ok=True)
            gt, pred, gt_poseval, pred_poseval = mpii_case(args.data, case, rng)
            ref = run_poseval(args.poseval_python, gt_poseval, pred_poseval, case / "out", tracking=False)
            predictions, layout = mpii.load_results(pred)
            worst = max(worst, compare_mpii(mpii.evaluate_mpii(gt, predictions, layout), ref, f"mpii AP seed {seed}"))

            case = work / f"video{seed}"
            make_video(posetrack_val / "012834_mpii_test.json", case / "gt", 6, rng)
            posetrack_prediction_files(case / "gt", case / "pred", rng)
            switch_some_tracks(case / "pred", rng)
            ours = ours_posetrack(case / "gt", case / "pred", drop_last_frame=True)
            ref = run_poseval(args.poseval_python, case / "gt", case / "pred", case / "out", tracking=True)
            fixed = run_poseval(args.poseval_python, case / "gt", case / "pred", case / "out_fixed", tracking=True,
                                matched_distances_only=True)
            name = f"video tracking seed {seed}"
            for metric, key in (("MOTA", "mota"), ("precision", "pre"), ("recall", "rec")):
                worst = max(worst, report(name, metric, 100 * ours[metric], ref[key][-1]))
            worst = max(worst, report(name, "MOTP", 100 * ours["MOTP"], fixed["motp"][-1]))
            report(name, "MOTP (poseval as is)", 100 * ours["MOTP"], ref["motp"][-1])
            worst = max(worst, compare_posetrack_ap(ours_posetrack(case / "gt", case / "pred"), ref,
                                                    f"video AP seed {seed}"))
    print(f"largest difference: {worst:.2e} points (tolerance {TOLERANCE})")
    sys.exit(0 if worst < TOLERANCE else 1)


if __name__ == "__main__":
    main()
