"""The page at ``/`` in a real headless Chromium (Debian's ``chromium`` driven by Playwright).

Skips, saying why, when Playwright or a Chromium binary is missing (``.ci/run`` installs
Debian's ``chromium`` when it can; Playwright's own browser downloads are never used).
"""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import httpx
import pytest

from ftpose.files import SAMPLE_PHOTO

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_MS = 120_000


def find_chromium() -> str:
    path = os.environ.get("FTPOSE_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if path is None:
        pytest.skip("no Chromium for the browser test: install Debian's package (apt-get install chromium) "
                    "or set FTPOSE_CHROMIUM to a Chromium or Chrome binary")
    return path


@pytest.fixture(scope="module")
def page(pose_server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright "
                                   "(pip install -e '.[test]')")
    executable = find_chromium()
    url, _ = pose_server
    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=executable, headless=True,
                args=["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
        except sync_api.Error as e:
            pytest.skip(f"Chromium at {executable} does not start headless: {str(e).splitlines()[0]}")
        context = browser.new_context()
        context.grant_permissions(["camera"], origin=url)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url + "/")
        page.wait_for_function("document.getElementById('model').textContent.startsWith('model: ')")
        yield page
        browser.close()


def api_count(url: str, path: Path, **params) -> int:
    with httpx.Client(base_url=url, timeout=120) as client:
        return client.post("/predict", params=params, files={"image": (path.name, path.read_bytes())}).json()["count"]


def answers(page) -> int:
    return int(page.evaluate("Number(document.body.dataset.answers || 0)"))


def wait_for_answer(page, before: int) -> None:
    page.wait_for_function(f"Number(document.body.dataset.answers || 0) > {before}")


def painted_pixels(page) -> int:
    return page.evaluate("""() => {
        const canvas = document.getElementById('overlay');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
        return painted;
    }""")


def test_upload_draws_the_overlay_with_the_apis_people_count(page, pose_server):
    url, _ = pose_server
    assert "model: ftnet-light" in page.text_content("#model") and "UNTRAINED" not in page.text_content("#model")
    before = answers(page)
    page.set_input_files("#file", str(SAMPLE_PHOTO))
    wait_for_answer(page, before)
    min_score = page.input_value("#min-score")
    assert min_score == "0.1"   # the server's default, from GET /models
    expected = api_count(url, SAMPLE_PHOTO, min_score=min_score)
    assert 4 <= expected < api_count(url, SAMPLE_PHOTO, min_score=0, min_joints=0)
    assert page.get_attribute("#count", "data-count") == str(expected)
    assert page.text_content("#count") == f"{expected} people"
    assert page.evaluate("[document.getElementById('overlay').width, document.getElementById('overlay').height]") \
        == [640, 422]
    assert int(page.get_attribute("#overlay", "data-joints")) >= 4 * 5
    assert painted_pixels(page) > 1000   # skeletons really drawn on the canvas
    assert "network" in page.text_content("#timing") and page.text_content("#error") == ""

    # the map layers: asking for one re-sends the photo with maps=1
    before = answers(page)
    page.check("input[name=layer][value=heatmaps]")
    wait_for_answer(page, before)
    page.wait_for_function("document.getElementById('layer').complete && "
                           "document.getElementById('layer').naturalWidth === 640")
    assert page.is_visible("#layer")
    heatmaps = page.get_attribute("#layer", "src")
    page.check("input[name=layer][value=pafs]")
    pafs = page.get_attribute("#layer", "src")
    assert heatmaps.startswith("data:image/jpeg;base64,") and pafs.startswith("data:image/jpeg;base64,")
    assert pafs != heatmaps
    page.check("input[name=layer][value=none]")
    assert not page.is_visible("#layer")
    page.uncheck("#skeletons")
    assert painted_pixels(page) == 0
    page.check("#skeletons")
    assert painted_pixels(page) > 1000


def test_dropped_photo_and_a_bad_file(page, pose_server, shared_data):
    url, _ = pose_server
    photo = shared_data / "people" / "ultralytics__zidane.jpg"
    before = answers(page)
    transfer = page.evaluate_handle("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'zidane.jpg', {type: 'image/jpeg'}));
        return transfer;
    }""", base64.b64encode(photo.read_bytes()).decode())
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    wait_for_answer(page, before)
    assert page.get_attribute("#count", "data-count") == str(api_count(url, photo, min_score=page.input_value("#min-score")))

    # another score threshold: the page asks again
    before = answers(page)
    page.fill("#min-score", "0.5")
    page.dispatch_event("#min-score", "change")
    wait_for_answer(page, before)
    assert page.get_attribute("#count", "data-count") == str(api_count(url, photo, min_score=0.5))
    page.fill("#min-score", "0.1")
    assert page.evaluate("document.getElementById('overlay').width") == 1280

    page.set_input_files("#file", files=[{"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"no pixels"}])
    page.wait_for_function("document.getElementById('error').textContent !== ''")
    assert "notes.jpg: not a readable image" in page.text_content("#error")


def test_webcam_frames_go_to_the_api(page):
    """Chromium's fake camera (a synthetic test pattern) stands in for a webcam."""
    before = answers(page)
    page.click("#webcam")
    wait_for_answer(page, before + 1)    # at least two frames answered
    assert page.is_visible("#video") and page.evaluate("document.getElementById('video').videoWidth") > 0
    assert page.text_content("#webcam") == "Stop webcam" and page.text_content("#error") == ""
    page.click("#webcam")
    assert not page.is_visible("#video") and page.text_content("#webcam") == "Start webcam"
