"""The app in a real browser: Debian's Chromium, driven by Playwright's pip wheel.

Starts ``python -m inpainting.app`` on a free loopback port with a tiny checkpoint, uploads a
photo, paints a stroke, runs the model and checks the downloaded PNG against the photo and the
downloaded mask. Installs nothing: it is skipped, with the reason shown by ``pytest -rs``, when
Chromium (``apt-get install chromium``), Playwright or Gradio (``pip install .[app]``) is
absent. ``$CHROMIUM`` may name another browser binary (default: Debian's ``chromium``).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from deploy_helpers import photo, tiny_checkpoint
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# $CHROMIUM names another Chromium build; the default is Debian's package
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]

if not os.path.exists(CHROMIUM):
    pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run "
                "does)",
                allow_module_level=True)
pytest.importorskip("gradio", reason="Gradio is not installed: pip install .[app]")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="Playwright is not installed: pip install .[app]")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def app_url(tmp_path):
    """Serve the app with a tiny checkpoint on a free loopback port; yields its URL."""
    checkpoint = tiny_checkpoint(tmp_path / "best.pt")
    port = _free_port()
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    log = (tmp_path / "app.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "inpainting.app", "--checkpoint", str(checkpoint), "--port",
         str(port), "--device", "cpu"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"the app did not start: {(tmp_path / 'app.log').read_text()}")
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_paint_a_stroke_and_download_the_inpainted_png(app_url, tmp_path):
    image = photo(96, 128, seed=3)
    upload = tmp_path / "photo.png"
    Image.fromarray(image).save(upload)
    outside = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000},
                                    accept_downloads=True)
            page.on("request", lambda request: outside.append(request.url)
                    if not request.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                    else None)
            page.goto(app_url)
            page.set_input_files("#photo-upload input[type=file]", upload)
            page.wait_for_function("document.querySelector('#status').innerText"
                                   ".includes('Paint over')")
            # the editor has drawn the photo once loading it can be undone
            page.wait_for_function(
                "!document.querySelector('#editor button[aria-label=Undo]').disabled")
            canvas = page.locator("#editor canvas").first.bounding_box()
            middle_x = canvas["x"] + canvas["width"] / 2
            middle_y = canvas["y"] + canvas["height"] / 2
            page.mouse.move(middle_x - 60, middle_y)
            page.mouse.down()
            for step in range(13):  # a diagonal stroke through the middle of the photo
                page.mouse.move(middle_x - 60 + 10 * step, middle_y + 3 * step)
            page.mouse.up()
            page.click("#inpaint")
            page.wait_for_function("document.querySelector('#status').innerText"
                                   ".match(/Filled|Cannot|wrong/)")
            status = page.inner_text("#status")
            assert status.startswith("Filled") and "Model" in status, status
            files = {}
            for button in ("download", "download-mask"):
                with page.expect_download() as download:
                    page.click(f"#{button}")
                files[button] = tmp_path / download.value.suggested_filename
                download.value.save_as(files[button])
            page.screenshot(path=tmp_path / "app.png", full_page=True)
        finally:
            browser.close()
    result = np.asarray(Image.open(files["download"]))
    known = np.asarray(Image.open(files["download-mask"])) == 255
    assert result.shape == image.shape and known.shape == image.shape[:2]
    assert 0 < (~known).sum() < known.size / 2  # the stroke, not the whole photo
    np.testing.assert_array_equal(result[known], image[known])
    assert np.mean(result[~known] != image[~known]) > 0.9
    assert (tmp_path / "app.png").stat().st_size > 0
    assert outside == [], f"the page called outside this machine: {outside}"
