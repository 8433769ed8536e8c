"""Screenshot of the ``ftpose serve`` page after uploading a photo (the README's picture of the page).

    python tools/page_screenshot.py docs/serve_page.jpg --layer heatmaps

Serves the default model in this process on a free loopback port, opens the page in
headless Chromium (Debian's ``chromium``, driven by Playwright), uploads the photo
(default: the bundled sample) and saves the page as it then looks.
"""
from __future__ import annotations

import argparse
import shutil
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from ftpose.files import SAMPLE_PHOTO, atomic_path
from ftpose.predictor import Predictor
from ftpose.server import create_app


def serve_in_background(app) -> tuple[uvicorn.Server, str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.1)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output image (.jpg or .png)")
    parser.add_argument("--photo", type=Path, default=SAMPLE_PHOTO, help="photo to upload")
    parser.add_argument("--layer", choices=("none", "heatmaps", "pafs"), default="none", help="map layer shown")
    parser.add_argument("--width", type=int, default=900, help="browser window width in pixels")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("no chromium on PATH: apt-get install chromium")

    server, url = serve_in_background(create_app(Predictor()))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": args.width, "height": 400})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.wait_for_function("document.getElementById('model').textContent.startsWith('model: ')")
            page.check(f"input[name=layer][value={args.layer}]")
            page.set_input_files("#file", str(args.photo))
            page.wait_for_function("Number(document.body.dataset.answers || 0) > 0")
            if args.layer != "none":
                page.wait_for_function("document.getElementById('layer').complete")
            with atomic_path(args.out) as temp:
                jpeg = args.out.suffix.lower() in (".jpg", ".jpeg")
                page.screenshot(path=str(temp), full_page=True, type="jpeg" if jpeg else "png",
                                **({"quality": 80} if jpeg else {}))
            browser.close()
    finally:
        server.should_exit = True
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
