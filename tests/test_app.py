"""The app's logic without a browser: photo reading, size limit, mask from the painted layers,
the methods, the page handlers' messages, and the command line."""

import os
import signal
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

from inpainting.app.__main__ import load_inpainter, main
from inpainting.app.logic import (
    MODEL_METHOD,
    known_from_layers,
    load_photo,
    new_request_folder,
    run_methods,
    sample_photos,
)
from inpainting.engine.errors import UserInputError


def _layer(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """An RGBA paint layer with a half-transparent stroke over rows a:b, columns c:d."""
    layer = np.zeros((height, width, 4), np.uint8)
    a, b, c, d = box
    layer[a:b, c:d] = (255, 45, 85, 191)
    return layer


def test_load_photo_reads_rgb_and_downscales_large_photos(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(photo(30, 100)).convert("RGBA").save(path)
    image, note = load_photo(path)
    assert image.shape == (30, 100, 3) and image.dtype == np.uint8 and note == ""
    image, note = load_photo(path, max_side=50)
    assert image.shape == (15, 50, 3)
    assert "100x30" in note and "50x15" in note and "limit is 50 px" in note


def test_load_photo_refuses_unreadable_and_huge_files_in_one_line(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    for path in (broken, text):
        with pytest.raises(UserInputError, match=f"cannot read '{path.name}' as an image"):
            load_photo(path)
    big = tmp_path / "big.png"
    Image.new("RGB", (400, 300)).save(big)
    with pytest.raises(UserInputError, match=r"400x300 .* limit is 0.1 megapixels"):
        load_photo(big, max_pixels=100_000)


def test_an_unreadable_upload_is_named_by_its_file_name_not_the_server_copy(tmp_path):
    server_copy = tmp_path / "gradio" / "3f2a9c" / "holiday.jpg"  # where the server keeps it
    server_copy.parent.mkdir(parents=True)
    server_copy.write_bytes(b"not a photo at all")
    with pytest.raises(UserInputError) as caught:
        load_photo(server_copy)
    message = str(caught.value)
    assert "'holiday.jpg'" in message and str(server_copy.parent) not in message, message


def test_known_from_layers_marks_painted_pixels_as_holes():
    layers = [_layer(20, 30, (2, 6, 3, 9)), None, _layer(20, 30, (10, 12, 0, 30))]
    known = known_from_layers(layers, (20, 30))
    expected = np.ones((20, 30), bool)
    expected[2:6, 3:9] = expected[10:12, :] = False
    np.testing.assert_array_equal(known, expected)
    # a canvas at twice the photo's size is scaled back by nearest neighbour
    known = known_from_layers([_layer(40, 60, (4, 12, 6, 18))], (20, 30))
    assert (~known).sum() == 4 * 6 and not known[2:6, 3:9].any()


def test_known_from_layers_refuses_empty_and_full_masks():
    with pytest.raises(UserInputError, match="nothing is painted"):
        known_from_layers([np.zeros((5, 5, 4), np.uint8)], (5, 5))
    with pytest.raises(UserInputError, match="nothing is painted"):
        known_from_layers([], (5, 5))
    with pytest.raises(UserInputError, match="whole photo"):
        known_from_layers([_layer(5, 5, (0, 5, 0, 5))], (5, 5))


def test_run_methods_keep_known_pixels_and_fill_holes(tmp_path):
    image = photo(37, 45)
    known = np.ones((37, 45), bool)
    known[10:20, 12:30] = False
    inpainter = load_inpainter(str(tiny_checkpoint(tmp_path / "best.pt")), "cpu")
    results = run_methods(image, known, inpainter)
    assert list(results) == [MODEL_METHOD, "OpenCV Telea", "OpenCV Navier-Stokes"]
    for result in results.values():
        assert result.shape == image.shape and result.dtype == np.uint8
        np.testing.assert_array_equal(result[known], image[known])
    assert np.mean(results[MODEL_METHOD][~known] != image[~known]) > 0.9
    assert list(run_methods(image, known, None)) == ["OpenCV Telea", "OpenCV Navier-Stokes"]


def test_request_folders_are_new_and_old_ones_are_removed(tmp_path):
    first = new_request_folder(tmp_path)
    second = new_request_folder(tmp_path)
    assert first != second and first.is_dir() and second.is_dir()
    os.utime(first, (0, 0))  # an hour-old request
    new_request_folder(tmp_path)
    assert not first.exists() and second.exists()


def test_sample_photos_are_bundled_with_scikit_image():
    pytest.importorskip("skimage", reason="the samples come with the demo extra's scikit-image")
    assert [path.name for path in sample_photos()] == ["chelsea.png", "coffee.png"]


def test_page_handlers_turn_errors_into_one_message(tmp_path, caplog):
    pytest.importorskip("gradio", reason="the app extra is not installed: pip install .[app]")
    from inpainting.app.page import _guarded, _inpaint, _load

    load = _guarded(_load, 3)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"garbage")
    *_, message = load(str(broken))
    assert message.startswith("**Cannot do that:** cannot read 'broken.png'")
    editor, image, message = load(str(_save(tmp_path, photo(24, 32))))
    assert image.shape == (24, 32, 3) and editor["background"] is image

    def inpaint(*args):
        return _inpaint(None, tmp_path, *args)

    outputs = 7
    *_, message = _guarded(inpaint, outputs)({"layers": []}, image)
    assert "nothing is painted" in message
    *_, message = _guarded(inpaint, outputs)(None, None)
    assert "upload a photo" in message
    result = _guarded(inpaint, outputs)({"layers": [_layer(24, 32, (5, 9, 5, 9))]}, image)
    assert result[0] is None and result[-1].startswith("Filled 16 pixels")

    def bug(*args):
        raise RuntimeError("a bug")

    *_, message = _guarded(bug, outputs)()
    assert "Something went wrong" in message and "Traceback" not in message
    assert "a bug" in caplog.text  # the server log keeps the details


def _save(folder, image):
    path = folder / "photo.png"
    Image.fromarray(image).save(path)
    return path


def test_cli_refuses_a_checkpoint_that_is_not_an_inpainting_checkpoint(tmp_path, capsys):
    notes = tmp_path / "notes.pt"
    notes.write_text("not a checkpoint")
    assert main(["--checkpoint", str(notes), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m inpainting.app: error: ") and err.count("\n") == 1
    assert "inpainting checkpoint" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["--port", "http"])
    assert exit_info.value.code == 2


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_both_remove_the_temporary_results(tmp_path, stop):
    pytest.importorskip("gradio", reason="Gradio is not installed: pip install .[app]")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    temp = tmp_path / "tmp"  # the app's TMPDIR: its results folder goes there
    temp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(temp), "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "inpainting.app", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, \
                    server.communicate()[0]
                time.sleep(0.2)
        (workdir,) = temp.glob("inpainting-app-*")
        (workdir / "request" / "inpainted.png").parent.mkdir()
        (workdir / "request" / "inpainted.png").write_bytes(b"a result")  # as after a request
        server.send_signal(stop)
        output, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, output
    assert not list(temp.glob("inpainting-app-*")), output
