"""Tests for the ``python -m masks`` command line: generate, stats, video and bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from masks import MaskGenerator, load_mask
from masks.__main__ import main

REPO = Path(__file__).resolve().parents[1]


def _cli(*args, cwd):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "masks", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _write_video(path, frames=4):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.uniform(0, 255, (48, 64)), (0, 0), 2).astype(np.uint8)
    background = cv2.normalize(background, None, 0, 255, cv2.NORM_MINMAX)
    for index in range(frames):
        frame = background.copy()
        frame[12:36, 4 + 8 * index : 28 + 8 * index] = 255 - background[12:36, 20:44]
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()


def test_generate_then_rerun_then_stats(tmp_path, capsys):
    out = tmp_path / "set"
    args = ["generate", "--out", str(out), "--size", "40", "--count-per-bin", "2",
            "--bins", "0.01-0.1,0.2-0.3", "--seed", "3", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "wrote 8 masks, kept 0" in capsys.readouterr().out
    times = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert main(args) == 0
    assert "wrote 0 masks, kept 8" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == times
    assert main(["stats", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "(0.01, 0.1] border" in printed and "(0.2, 0.3] free" in printed
    assert "8 masks (known_white), 0 outside their bin" in printed
    sheet = cv2.imread(str(out / "contact_sheet.png"), cv2.IMREAD_UNCHANGED)
    assert sheet is not None and sheet.ndim == 2 and sheet.shape[0] > 4 * 96


def test_border_off_only(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["generate", "--out", str(out), "--size", "32", "--count-per-bin", "1",
                 "--border", "off", "--no-progress"]) == 0  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["masks"]) == 6 and not any(e["border"] for e in manifest["masks"])


def test_stats_on_plain_hole_white_folder(tmp_path, capsys):
    generator = MaskGenerator(32, 32, (0.1, 0.2), rng=0)
    for index in range(3):
        cv2.imwrite(str(tmp_path / f"{index}.png"), (generator() == 0).astype(np.uint8) * 255)
    assert main(["stats", str(tmp_path), "--polarity", "hole-white", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "(0.1, 0.2]" in printed and "3 masks (hole_white), 0 outside" in printed
    # Read with the wrong polarity, the same masks have 80-90 % holes: outside every paper bin.
    assert main(["stats", str(tmp_path), "--no-progress"]) == 0
    assert "other" in capsys.readouterr().out


def test_stats_reports_changed_and_missing_files(tmp_path, capsys):
    out = tmp_path / "set"
    main(["generate", "--out", str(out), "--size", "32", "--count-per-bin", "1",
          "--bins", "0.1-0.2", "--no-progress"])  # fmt: skip
    (out / "border" / "0.1-0.2" / "00000.png").unlink()
    cv2.imwrite(str(out / "no_border" / "0.1-0.2" / "00000.png"), np.full((32, 32), 255, np.uint8))
    assert main(["stats", str(out), "--no-progress"]) == 1
    errors = capsys.readouterr().err
    assert "border/0.1-0.2/00000.png" in errors and "manifest says" in errors


def test_video_command(tmp_path, capsys):
    video = tmp_path / "clip.avi"
    _write_video(video)
    out = tmp_path / "masks"
    assert main(["video", str(video), "--out", str(out), "--size", "32", "--no-progress"]) == 0
    files = sorted(out.glob("*.png"))
    assert len(files) == 3
    assert all(load_mask(f).shape == (32, 32) for f in files)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["file"] for e in manifest["masks"]] == [f.name for f in files]


def test_video_command_that_finds_no_mask_says_so_and_exits_1(tmp_path, capsys):
    video = tmp_path / "clip.avi"
    _write_video(video)
    out = tmp_path / "masks"
    code = main(["video", str(video), "--out", str(out), "--size", "32", "--no-progress",
                 "--hole-range", "0.98-0.99"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1, lines
    assert "no frame pair of" in lines[0] and "--hole-range" in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "--out", "o", "--bins", "0.5-1.5"], "inside [0, 1]"),
        (["generate", "--out", "o", "--bins", "0.4-0.2"], "lo < hi"),
        (["generate", "--out", "o", "--bins", "half"], "lo-hi pairs"),
        (["generate", "--out", "o", "--count-per-bin", "0"], "--count-per-bin: must be >= 1"),
        (["generate", "--out", "o", "--size", "abc"], "expected a whole number"),
        (["generate", "--out", "o", "--size", "32", "--border-px", "20"], "no room"),
        (["generate"], "--out"),
        ([], "COMMAND"),
        (["stats", "missing"], "does not exist"),
        (["stats", ".", "--polarity", "white"], "valid: known-white, hole-white"),
        (["video", "missing.mp4", "--out", "o"], "cannot open video"),
        (["video", "junk.mp4", "--out", "o"], "cannot open video"),
        (["video", "clip.mp4", "--out", "o"], "cannot open video 'clip.mp4'"),
        (["video", "one.avi", "--out", "o"], "'one.avi' has too few frames to find motion"),
        (["video", "one.avi", "--out", "o", "--frame-step", "3"], "3 apart (at least 4 frames)"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, message):
    (tmp_path / "blocker").write_text("a file, not a folder")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    (tmp_path / "clip.mp4").write_text("a text file named like a video\n" * 40)
    _write_video(tmp_path / "one.avi", frames=1)
    result = _cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and message in lines[0]
    assert not (tmp_path / "o").exists()


def test_unwritable_out_is_one_line_with_exit_code_3(tmp_path):
    """A folder that cannot be written is the environment's problem (exit 3), not an argument's."""
    (tmp_path / "blocker").write_text("a file, not a folder")
    result = _cli("generate", "--out", "blocker/sub", cwd=tmp_path)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write to 'blocker/sub'" in lines[0], result.stderr
    assert "choose a writable folder" in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [[], ["generate"], ["stats"], ["video"]])
def test_help_of_every_command_states_the_exit_codes(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "exit codes:" in printed and "130" in printed
    assert all(f"  {code} " in printed for code in ("0", "1", "2", "3"))


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    """Only UserInputError and environment OSErrors become one line; a bug's ValueError does not."""

    def buggy(*args, **kwargs):
        raise ValueError("a bug, not the user's input")

    monkeypatch.setattr("masks.__main__.collect_stats", buggy)
    with pytest.raises(ValueError, match="a bug"):
        main(["stats", str(tmp_path), "--no-progress"])


def test_stats_on_a_plain_folder_skips_pictures_with_one_warning(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for index in range(3):
        mask = MaskGenerator(32, 32, (0.1, 0.3), rng=index)()
        cv2.imwrite(str(folder / f"mask{index}.png"), mask * 255)
    rng = np.random.default_rng(0)
    for name in ("holiday.jpg", "cat.png"):  # photos left among the masks
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    done = _cli("stats", folder, "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ("WARNING masks.stats: skipped 2 image(s) that are not black-and-white "
                           "masks (over 10% grey pixels): cat.png, holiday.jpg\n")
    assert "3 masks (known_white)" in done.stdout
    for name in ("holiday.jpg", "cat.png"):  # a folder of pictures only is no mask folder
        (folder / name).rename(tmp_path / name)
    for index in range(3):
        (folder / f"mask{index}.png").unlink()
        cv2.imwrite(str(folder / f"photo{index}.png"),
                    rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    done = _cli("stats", folder, "--no-progress", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith(
        f"python -m masks stats: error: no black-and-white masks in '{folder}': its 3 images "
        "are pictures (photo0.png, photo1.png, photo2.png)"), done.stderr
