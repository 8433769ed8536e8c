"""``ftpose serve``: the real server (its own process, loopback port) called over HTTP with real photos and bad uploads."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import torch
from people_match import MIN_OKS, WELL_LABELLED, best_oks
from test_input_limits import write_png

from ftpose.files import SAMPLE_PHOTO, read_image
from ftpose.keypoints import COCO17, OPENPOSE18
from ftpose.pipeline import DEFAULT_MIN_JOINTS, DEFAULT_MIN_SCORE
from ftpose.predictor import Predictor

torch.set_num_threads(1)
ANNOTATIONS = Path(__file__).parent / "data" / "000000000790_keypoints.json"
# Photos of ../shared/data/people whose number of people its README gives, and which the
# shipped model gets right at a score above 0.2 (bus.jpg's 4 are not: 2 score above 0.2).
KNOWN_COUNTS = {"ultralytics__zidane.jpg": 2, "scikit_image__astronaut.png": 1, "matplotlib__grace_hopper.jpg": 1}


@pytest.fixture(scope="module")
def server(pose_server):
    url, _ = pose_server
    with httpx.Client(base_url=url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def local():
    """The same predictor in this process, to compare the server's answers with."""
    return Predictor()


def post_photo(server, path: Path, **params) -> httpx.Response:
    return server.post("/predict", params=params, files={"image": (path.name, path.read_bytes())})


def assert_one_line_error(response: httpx.Response, status: int, words: str):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "\n" not in response.text
    error = response.json()["error"]
    assert words in error, error


def test_health_models_and_loopback(server, pose_server):
    health = server.get("/health").json()
    assert health == {"status": "ok", "model": "ftnet-light", "trained": True}
    models = server.get("/models").json()
    assert models["served"]["model"] == "ftnet-light" and "ftnet" in models["registered"]
    assert models["layouts"]["coco17"]["keypoints"] == list(COCO17.keypoints)
    assert models["layouts"]["openpose18"]["skeleton"] == [list(p) for p in OPENPOSE18.skeleton]
    assert models["max_upload_bytes"] == 1024 * 1024
    assert models["defaults"] == {"min_score": DEFAULT_MIN_SCORE, "min_joints": DEFAULT_MIN_JOINTS, "max_people": None}
    url, log = pose_server
    assert url.startswith("http://127.0.0.1:") and f"ftnet-light on {url}/" in log.read_text()  # loopback by default
    page = server.get("/")
    assert page.status_code == 200 and "<canvas id=\"overlay\">" in page.text
    assert server.get("/static/page.js").status_code == 200


def test_sample_photo_people_in_both_layouts(server, local):
    response = post_photo(server, SAMPLE_PHOTO)
    assert response.status_code == 200, response.text
    answer = response.json()
    image = read_image(SAMPLE_PHOTO)
    assert (answer["height"], answer["width"]) == image.shape[:2] and answer["count"] == len(answer["people"])
    assert {"network", "grouping", "upload_and_decode", "total"} <= set(answer["timing_ms"])
    everyone = local.predict(image)
    expected = everyone.filtered(DEFAULT_MIN_SCORE, DEFAULT_MIN_JOINTS)   # predict's defaults
    assert answer["count"] == len(expected) == 4 < len(everyone)
    coco = np.array([p["coco17"] for p in answer["people"]])
    openpose = np.array([p["openpose18"] for p in answer["people"]])
    np.testing.assert_allclose(coco, expected.to_coco17(), atol=0.006)
    np.testing.assert_allclose(openpose, expected.to_openpose18(), atol=0.006)
    np.testing.assert_allclose([p["score"] for p in answer["people"]], expected.scores, atol=1e-4)
    # every well-labelled annotated person is found (OKS >= 0.5, AP50's threshold)
    people = [p for p in json.loads(ANNOTATIONS.read_text())["annotations"] if p["num_keypoints"] >= WELL_LABELLED]
    assert people and min(best_oks(coco, people)) >= MIN_OKS
    unfiltered = post_photo(server, SAMPLE_PHOTO, min_score=0, min_joints=0).json()
    assert unfiltered["count"] == len(everyone)
    assert post_photo(server, SAMPLE_PHOTO, max_people=2).json()["people"] == answer["people"][:2]


def test_real_photos_match_the_library_and_known_counts(server, local, shared_data):
    for path in sorted((shared_data / "people").glob("*")):
        if path.suffix == ".avi":
            continue
        answer = post_photo(server, path, min_score=0, min_joints=0).json()
        expected = local.predict(read_image(path))
        assert answer["count"] == len(expected), path.name
        np.testing.assert_allclose([p["score"] for p in answer["people"]], expected.scores, atol=1e-4)
        if path.name in KNOWN_COUNTS:
            strong = post_photo(server, path, min_score=0.2).json()
            assert strong["count"] == KNOWN_COUNTS[path.name] == len(expected.filtered(0.2, DEFAULT_MIN_JOINTS))
            assert all(p["score"] >= 0.2 for p in strong["people"])


def test_maps_layers(server):
    answer = post_photo(server, SAMPLE_PHOTO, maps=1).json()
    for kind in ("heatmaps", "pafs"):
        prefix, data = answer["maps"][kind].split(",", 1)
        assert prefix == "data:image/jpeg;base64"
        picture = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape == (422, 640, 3)
    assert "maps" in answer["timing_ms"] and "maps" not in post_photo(server, SAMPLE_PHOTO).json()


def test_bad_uploads_get_one_line_errors_and_the_server_keeps_serving(server, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("these are not pixels\n")
    assert_one_line_error(post_photo(server, text), 415, "notes.jpg: not a readable image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert_one_line_error(post_photo(server, empty), 400, "empty.png: is empty")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(SAMPLE_PHOTO.read_bytes()[:5000])
    assert_one_line_error(post_photo(server, truncated), 415, "truncated JPEG")
    bomb = write_png(tmp_path / "bomb.png", 12000, 12000)   # 140 KB that would decode to 144 MB
    assert_one_line_error(post_photo(server, bomb), 415, "12000 x 12000 = 144000000 pixels is more than the limit")
    big = np.random.default_rng(0).integers(0, 256, 1_200_000, dtype=np.uint8).tobytes()
    assert_one_line_error(server.post("/predict", files={"image": ("big.jpg", big)}), 413, "upload too large")

    def chunks():   # a valid multipart body without Content-Length: refused while it is read
        yield b'--x\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n\r\n'
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]
        yield b"\r\n--x--\r\n"

    streamed = server.post("/predict", content=chunks(),
                           headers={"content-type": "multipart/form-data; boundary=x"})
    assert_one_line_error(streamed, 413, "upload too large: over")
    assert_one_line_error(server.post("/predict", files={"photo": ("a.jpg", b"x")}), 400, "field 'image'")
    assert_one_line_error(server.post("/predict", data={"image": "not a file"}), 400, "must be a file upload")
    assert_one_line_error(server.post("/predict", content=b"\xff\xd8", headers={"content-type": "image/jpeg"}),
                          400, "multipart/form-data file field 'image'")
    assert_one_line_error(server.post("/predict", content=b"--x\r\nbroken",
                                      headers={"content-type": "multipart/form-data; boundary=x"}), 400, "")
    assert_one_line_error(post_photo(server, SAMPLE_PHOTO, min_score="high"), 400, "min_score='high' is not a number")
    assert_one_line_error(post_photo(server, SAMPLE_PHOTO, max_people="-1"), 400, "max_people='-1' is negative")
    assert_one_line_error(post_photo(server, SAMPLE_PHOTO, min_joints="2.5"), 400, "is not an integer")
    assert_one_line_error(server.get("/predict"), 405, "Method Not Allowed")
    assert_one_line_error(server.get("/no-such-page"), 404, "Not Found")
    assert server.get("/health").json()["status"] == "ok"
    assert post_photo(server, SAMPLE_PHOTO).json()["count"] > 0


def test_serve_without_the_extra_says_what_to_install(monkeypatch):
    import sys

    from click.testing import CliRunner

    from ftpose.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)   # as if it were not installed
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1 and "pip install 'ftpose[serve]'" in result.output
