"""Memory of ``ftpose predict`` over a long video: resident set size against frames done.

Runs the command line in a subprocess on every frame of the video (default
``../shared/data/people/opencv-doc__vtest.avi``, 795 frames) with tracking, live
smoothing and every output (overlay video, COCO JSON, CSV, OpenPose JSON), and reads
the process's VmRSS from /proc every half second, with the frames done so far from the
journal.  The network is a tiny random-weights ``ftnet`` (``width_mult`` 0.125) with
thresholds off, so that it is quick and still finds "people" (noise) in every frame:
what is measured is the pipeline's memory, not the network's.  Run from the project root:

    python benchmarks/video_memory.py
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "people" / "opencv-doc__vtest.avi"


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=VIDEO)
    args = parser.parse_args()
    import torch

    from ftpose.models import create_model, save_weights

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        torch.manual_seed(0)
        save_weights(create_model("ftnet", width_mult=0.125), folder / "tiny.safetensors")
        out = folder / "out"
        command = [sys.executable, "-m", "ftpose", "predict", str(args.video), "--weights", str(folder / "tiny.safetensors"),
                   "--threads", "1", "--min-score", "0", "--min-joints", "0", "--track", "--smooth", "--out", str(out),
                   "--csv", str(out / "joints.csv"), "--openpose-json", str(out / "openpose")]
        process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        samples = []
        while process.poll() is None:
            journal = out / "predictions.jsonl"
            frames = journal.read_bytes().count(b"\n") if journal.is_file() else 0
            rss = rss_kib(process.pid)
            if rss is not None and frames:
                samples.append((frames, rss))
            time.sleep(0.5)
        if process.returncode:
            sys.exit(process.stderr.read())
        people = sum(1 for line in (out / "joints.csv").open()) - 1
    print(f"{args.video.name}: {samples[-1][0]} frames, {people} joint rows written\n")
    print("| frames done | resident set (MiB) |")
    print("|---:|---:|")
    shown = set()
    for frames, rss in samples:
        bucket = frames // 100
        if bucket not in shown:
            shown.add(bucket)
            print(f"| {frames} | {rss / 1024:.0f} |")
    print(f"| {samples[-1][0]} | {samples[-1][1] / 1024:.0f} |")


if __name__ == "__main__":
    main()
