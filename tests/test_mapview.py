"""Map pictures (ftpose.mapview), Predictor.stage_maps, without_transfer, People conveniences, `ftpose maps`.

Colours and positions are checked on the encoder's maps of the sample photo's COCO
annotations (known answers); stages and the command on the shipped ftnet-light weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ftpose import mapview
from ftpose.cli import main
from ftpose.files import SAMPLE_PHOTO, read_image
from ftpose.keypoints import COCO17, LIMBS, NETWORK, convert
from ftpose.models import create_model, without_transfer
from ftpose.predictor import PoseMaps, Predictor
from ftpose.targets import encode

torch.set_num_threads(1)
ANNOTATIONS = Path(__file__).parent / "data" / "000000000790_keypoints.json"


@pytest.fixture(scope="module")
def annotated():
    """``(P, 18, 3)`` network-layout keypoints of the sample photo's annotated people."""
    people = json.loads(ANNOTATIONS.read_text())["annotations"]
    coco = np.array([p["keypoints"] for p in people if p["num_keypoints"] > 0], float).reshape(-1, 17, 3)
    return convert(coco, COCO17, NETWORK)


@pytest.fixture(scope="module")
def target_maps(photo, annotated):
    heatmaps, pafs = encode(annotated, *photo.shape[:2])
    return PoseMaps(heatmaps, pafs, (8.0, 8.0))


@pytest.fixture(scope="module")
def light():
    return Predictor("ftnet-light")


def _at(panel, xy):
    x, y = np.round(xy).astype(int)
    return panel[y, x].astype(int)


def test_merged_heatmaps_tell_left_from_right(photo, annotated, target_maps):
    panel = mapview.merged_heatmaps(photo, target_maps)
    assert panel.shape == photo.shape and panel.dtype == np.uint8
    checked = 0
    for person in annotated:
        for side, joint in (("left", "wrist"), ("right", "wrist"), ("left", "shoulder"), ("right", "shoulder")):
            k = NETWORK.index[f"{side}_{joint}"]
            if person[k, 2] > 0:
                b, g, r = _at(panel, person[k, :2])
                assert (r > b + 60) if side == "left" else (b > r + 60), (side, joint, b, g, r)
                checked += 1
    assert checked >= 6


def test_part_heatmap_peaks_on_the_annotated_joint(photo, annotated, target_maps):
    k = NETWORK.index["left_wrist"]
    panel = mapview.part_heatmap(photo, target_maps, "left_wrist").astype(int)
    dimmed = mapview.part_heatmap(photo, PoseMaps(target_maps.heatmaps * 0, target_maps.pafs, (8.0, 8.0)), k)
    glow = np.abs(panel - dimmed).sum(-1)   # what the heatmap adds to the dimmed photo
    peak = np.unravel_index(glow.argmax(), glow.shape)[::-1]
    distances = np.hypot(*(annotated[annotated[:, k, 2] > 0, k, :2] - peak).T)
    assert distances.min() <= 3


def test_paf_hue_is_the_limb_direction(photo, annotated, target_maps):
    panel = mapview.paf_image(photo, target_maps)
    person = annotated[0]
    a, b = (NETWORK.index["left_shoulder"], NETWORK.index["left_elbow"])
    assert (a, b) in LIMBS and person[a, 2] > 0 and person[b, 2] > 0
    direction = person[b, :2] - person[a, :2]
    expected = mapview._direction_colours(np.array([[direction[0]]]), np.array([[direction[1]]]))[0, 0]
    found = _at(panel, (person[a, :2] + person[b, :2]) / 2)
    np.testing.assert_allclose(found, expected, atol=30)
    # the reverse direction has another hue
    assert np.abs(found - mapview._direction_colours(-np.array([[direction[0]]]),
                                                      -np.array([[direction[1]]]))[0, 0]).max() > 100


def test_upsample_follows_the_grid_convention():
    grid = np.zeros((1, 6, 9), np.float32)
    grid[0, 2, 5] = 1.0
    up = mapview.upsample(grid, (8.0, 8.0), (48, 72))[..., 0]
    y, x = np.unravel_index(up.argmax(), up.shape)
    assert (abs(x - (5.5 * 8 - 0.5)) <= 0.5) and (abs(y - (2.5 * 8 - 0.5)) <= 0.5)


def test_panels_shrink_large_photos_and_keep_small_ones(photo, target_maps):
    assert mapview.paf_image(photo, target_maps, max_side=320).shape == (211, 320, 3)
    assert mapview.merged_heatmaps(photo, target_maps, max_side=2000).shape == photo.shape
    grid = mapview.parts_grid(photo, target_maps)
    assert grid.shape == (3 * (211 + 22), 6 * 320, 3)   # 18 tiles of 320 x 211 with 22-row captions


def test_unknown_part_is_refused(photo, target_maps):
    with pytest.raises(ValueError, match="unknown part 'left_toe'"):
        mapview.part_heatmap(photo, target_maps, "left_toe")


def test_stage_maps_end_with_the_final_maps(photo, light):
    stages = light.stage_maps(photo)
    final = light.maps(photo)
    assert len(stages) == 2
    np.testing.assert_allclose(stages[-1].heatmaps, final.heatmaps, atol=1e-5)
    np.testing.assert_allclose(stages[-1].pafs, final.pafs, atol=1e-5)
    assert np.abs(stages[0].heatmaps - stages[1].heatmaps).max() > 0.05   # refinement changes the maps
    assert stages[0].cell_size == final.cell_size


def test_stage_maps_of_a_one_stage_network_with_flip(photo):
    network = create_model("ftnet", width_mult=0.125, refinement=False)
    predictor = Predictor(network, flip=True, input_height=184)
    (only,) = predictor.stage_maps(photo)
    np.testing.assert_allclose(only.pafs, predictor.maps(photo).pafs, atol=1e-5)


def test_without_transfer_keeps_every_other_weight(light):
    network = light.network
    reduced = without_transfer(network)
    assert reduced.transfer is None and reduced.model_options["transfer_from"] is None
    reference = create_model("ftnet-light", transfer_from=None).eval()
    reference.load_state_dict({k: v for k, v in network.state_dict().items() if not k.startswith("transfer.")})
    x = torch.from_numpy(np.random.default_rng(0).uniform(-0.5, 0.5, (1, 3, 64, 48)).astype(np.float32))
    with torch.no_grad():
        ours, theirs, full = reduced(x)[-1][0], reference(x)[-1][0], network(x)[-1][0]
    torch.testing.assert_close(ours, theirs)
    assert (ours - full).abs().max() > 0   # the transfer did change the maps
    with pytest.raises(ValueError, match="no feature transfer"):
        without_transfer(reduced)


def test_people_conveniences(photo, light):
    people = light.predict(photo)
    assert len(people) >= 4
    strong = people.filtered(0.3)
    assert 0 < len(strong) < len(people) and (strong.scores >= 0.3).all()
    np.testing.assert_array_equal(people.to_openpose18(), people.keypoints)
    records = people.records()
    assert len(records) == len(people)
    first = records[0]
    assert set(first) == {"score", "coco17", "openpose18"}
    assert len(first["coco17"]) == 17 and len(first["openpose18"]) == 18
    np.testing.assert_allclose(first["coco17"], people.to_coco17()[0], atol=0.006)
    assert first["score"] == pytest.approx(float(people.scores[0]), abs=1e-4)
    json.dumps(records)   # JSON-ready
    drawn = strong.draw(photo)
    assert drawn.shape == photo.shape and (drawn != photo).any() and not (photo != read_image(SAMPLE_PHOTO)).any()
    joint = strong.keypoints[0][strong.keypoints[0, :, 2] > 0][0]
    assert (_at(drawn, joint[:2]) != _at(photo, joint[:2])).any()


def test_render_names_every_stage_and_the_comparison(photo, light):
    panels = mapview.render(light, photo, compare=[("no transfer", Predictor(without_transfer(light.network)))],
                            parts=("left_wrist",))
    assert set(panels) == {f"{s}.{k}" for s in ("before-refinement", "final") for k in ("heatmaps", "parts", "pafs")} \
        | {"compare"}
    sheet = panels["compare"]
    tile_rows = 211 + 22
    assert sheet.shape == (4 * tile_rows, 4 * 320, 3)   # 4 rows (2 stages x 2 networks) of 4 columns


def maps_command(*args):
    return CliRunner().invoke(main, ["maps", "--threads", "1", *map(str, args)])


def test_maps_command_writes_panels_and_reports_bad_inputs(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    out = tmp_path / "out"
    result = maps_command(SAMPLE_PHOTO, broken, "--model", "ftnet-light", "--out", out, "--format", "jpg",
                          "--tile-side", 160)
    assert result.exit_code == 1
    assert "broken.jpg: not a readable image" in result.stderr and "Traceback" not in result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"000000000790.{s}.{k}.jpg" for s in ("before-refinement", "final")
                            for k in ("heatmaps", "parts", "pafs")] + ["000000000790.compare.jpg"])
    sheet = cv2.imread(str(out / "000000000790.compare.jpg"))
    assert sheet.shape == (2 * (106 + 22), 5 * 160, 3)   # 2 stages x (people, all parts, 2 ankles, PAFs)


def test_maps_command_refuses_what_cannot_be_done(tmp_path):
    result = maps_command("--model", "openpose", "--without-transfer", "--out", tmp_path)
    assert result.exit_code == 2 and "no feature transfer" in result.output
    result = maps_command("--parts", "left_toe", "--out", tmp_path)
    assert result.exit_code == 2 and "unknown part" in result.output
    a_file = tmp_path / "taken"
    a_file.write_text("")
    result = maps_command("--out", a_file)
    assert result.exit_code == 2 and "is a file" in result.output and "Traceback" not in result.output


def test_predict_render_maps(tmp_path):
    result = CliRunner().invoke(main, ["predict", "--model", "ftnet-light", "--threads", "1", "--render-maps",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for kind in ("heatmaps", "parts", "pafs"):
        assert cv2.imread(str(tmp_path / f"000000000790.{kind}.png")) is not None
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for _ in range(2):
        writer.write(np.full((48, 64, 3), 128, np.uint8))
    writer.release()
    result = CliRunner().invoke(main, ["predict", str(video), "--model", "ftnet-light", "--threads", "1",
                                       "--render-maps", "--out", str(tmp_path / "video")])
    assert result.exit_code == 0 and "videos get none" in result.stderr
    assert not list((tmp_path / "video").glob("*.png"))
    result = CliRunner().invoke(main, ["predict", "--render-maps"])
    assert result.exit_code == 2 and "--render-maps needs --out" in result.output
