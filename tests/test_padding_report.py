"""The padding report's table: statistics, t quantiles, run folders, published CSV, plot, CLI."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from inpainting.tasks.classification.padding_report import (
    PUBLISHED_CSV,
    format_padding_table,
    group_runs,
    load_published,
    read_run,
    student_t_quantile,
    welch_interval,
)
from inpainting.tasks.classification.padding_report.__main__ import main
from inpainting.tasks.classification.padding_report.plot import PANEL_H, PANEL_W
from inpainting.tasks.classification.padding_report.stats import (
    group_stats,
    sample_stdev,
    student_t_cdf,
)

ROOT = Path(__file__).resolve().parents[1]


def make_run(folder: Path, arch: str, padding: str, top1: list[float], seed: int = 0,
             shifted: list[float] | None = None) -> Path:
    """A classification run folder as classify.py writes it."""
    folder.mkdir(parents=True)
    config = {"classifier": {"arch": arch, "padding": padding}, "train": {"seed": seed}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    lines = []
    for step, value in enumerate(top1):
        record = {"step": step * 10, "epoch": step, "top1": value, "top5": 99.0, "loss": 0.5}
        if shifted is not None:
            record["top1_shifted"] = shifted[step]
        lines.append(json.dumps(record))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def runs(tmp_path):
    """resnet18: zero bests 70, 72, 74; partial bests 73, 74, 75; reflect one run (71)."""
    folders = []
    for seed, best in enumerate([70.0, 72.0, 74.0]):
        folders.append(make_run(tmp_path / f"zero{seed}", "resnet18", "zero",
                                [best - 5, best, best - 1], seed, shifted=[50, 51 + seed, 49]))
    for seed, best in enumerate([73.0, 74.0, 75.0]):
        folders.append(make_run(tmp_path / f"pd{seed}", "pdresnet18", "partial",
                                [best, best - 2], seed, shifted=[60 + seed, 55]))
    folders.append(make_run(tmp_path / "ref0", "resnet18", "reflect", [71.0], 0, shifted=[40]))
    return folders


@pytest.mark.parametrize(("p", "df", "expected"), [
    (0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 4, 2.776), (0.975, 10, 2.228),
    (0.975, 30, 2.042), (0.95, 5, 2.015), (0.995, 3, 5.841), (0.975, 1e7, 1.960),
])
def test_t_quantile_matches_tables(p, df, expected):
    assert student_t_quantile(p, df) == pytest.approx(expected, abs=1e-3)
    assert student_t_quantile(1 - p, df) == pytest.approx(-expected, abs=1e-3)
    assert student_t_cdf(student_t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)


def test_t_cdf_of_one_degree_is_cauchy():
    for t in (-3.0, -0.5, 0.0, 1.0, 7.0):
        assert student_t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)


def test_group_statistics_by_hand():
    zero, partial = [70.0, 72.0, 74.0], [73.0, 74.0, 75.0]
    assert sample_stdev(zero) == pytest.approx(2.0)
    group = group_stats("resnet18", "partial", partial, zero)
    assert (group.mean, group.stdev, group.diff) == pytest.approx((74.0, 1.0, 2.0))
    # Welch: se^2 = 1/3 + 4/3, df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = 50/17.
    t = student_t_quantile(0.975, 50 / 17)
    assert 3.182 < t < 4.303
    half = t * math.sqrt(5 / 3)
    assert group.interval == pytest.approx((2.0 - half, 2.0 + half))
    assert welch_interval([1.0], zero) is None
    assert welch_interval([5.0, 5.0], [3.0, 3.0]) == (2.0, 2.0)
    baseline = group_stats("resnet18", "zero", zero, zero)
    assert baseline.diff is None and baseline.interval is None


def test_read_run_takes_the_best_and_strips_pd(runs):
    result = read_run(runs[3])
    assert (result.arch, result.padding, result.seed, result.best, result.step) == (
        "resnet18", "partial", 0, 73.0, 0)
    assert read_run(runs[1], "top1_shifted").best == 52


def test_table_rows(runs, capsys):
    assert main([str(run) for run in runs]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[1]: line.split() for line in lines[2:5]}
    assert rows["zero"][:9] == ["resnet18", "zero", "3", "70.00", "72.00", "74.00", "72.000",
                                "-", "2.000"]
    assert rows["partial"][2:9] == ["3", "73.00", "74.00", "75.00", "74.000", "+2.000", "1.000"]
    low, high = welch_interval([73.0, 74.0, 75.0], [70.0, 72.0, 74.0])
    assert f"[{low:+.3f}, {high:+.3f}]" in lines[3]
    assert rows["reflect"][2:8] == ["1", "71.00", "71.000", "-1.000", "n/a", "n/a"]
    # resnet18 is not in NVIDIA's table: its columns say n/a; the source is named.
    assert rows["partial"][-3:] == ["n/a", "n/a", "n/a"]
    assert any("published.csv" in line for line in lines)


def test_table_beside_published_figures(tmp_path):
    run = make_run(tmp_path / "r50", "resnet50", "zero", [76.0])
    groups = group_runs([read_run(run)])
    text = format_padding_table(groups, "top1", load_published())
    assert text.splitlines()[2].split()[-3:] == ["76.132", "-", "0.086"]
    assert "NVIDIA" not in format_padding_table(groups, "top1", None)


def test_shifted_metric_leaves_published_out(runs, capsys):
    assert main([*map(str, runs), "--metric", "top1_shifted"]) == 0
    out = capsys.readouterr().out
    assert "best top1_shifted per run" in out and "NVIDIA" not in out
    assert out.splitlines()[2].split()[3:7] == ["51.00", "52.00", "53.00", "52.000"]


def test_both_metrics_give_two_tables_and_a_plot_of_two_rows(runs, tmp_path, capsys):
    out = tmp_path / "both.png"
    assert main([*map(str, runs), "--metric", "top1", "--metric", "top1_shifted",
                 "--no-published", "--plot", str(out)]) == 0
    text = capsys.readouterr().out
    assert "best top1 per run" in text and "best top1_shifted per run" in text
    assert "NVIDIA" not in text
    shifted = text[text.index("best top1_shifted"):].splitlines()
    assert shifted[2].split()[3:7] == ["51.00", "52.00", "53.00", "52.000"]
    with Image.open(out) as image:
        assert image.size == (2 * PANEL_W, 2 * PANEL_H)
    # a metric that one run lacks fails before anything is printed
    plain = make_run(tmp_path / "plain", "resnet18", "zero", [1.0])
    assert main([str(runs[0]), str(plain), "--metric", "top1", "--metric", "top1_shifted"]) == 2
    assert capsys.readouterr().out == ""


def test_published_csv_matches_nvidia_table():
    first = PUBLISHED_CSV.read_text().splitlines()[0]
    assert first.startswith("# source: NVIDIA/partialconv, README.MD") and "1811.11718" in first
    rows = load_published()
    assert len(rows) == 20
    assert {arch for arch, _ in rows} == {"vgg16_bn", "vgg19_bn", "resnet50", "resnet101",
                                          "resnet152"}
    for (arch, padding), row in rows.items():
        assert len(row.bests) == 5
        assert sum(row.bests) / 5 == pytest.approx(row.average, abs=1e-3)
        zero = rows[arch, "zero"].average
        if padding == "zero":
            assert row.diff is None and row.pytorch_official is not None
        else:
            assert row.diff == pytest.approx(row.average - zero, abs=2e-3)
    assert rows["resnet50", "partial"].average == 76.611
    assert rows["resnet50", "partial"].bests == (76.606, 76.532, 76.638, 76.562, 76.716)
    assert rows["vgg16_bn", "partial"].diff == 0.316
    assert rows["vgg19_bn", "reflect"].stdev == 0.389
    assert rows["resnet152", "zero"].pytorch_official == 78.31


def test_plot_is_a_valid_image(runs, tmp_path, capsys):
    out = tmp_path / "plots" / "table.png"
    assert main([*map(str, runs), "--plot", str(out)]) == 0
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (2 * PANEL_W, PANEL_H)


def _inpainting_run(folder: Path) -> Path:
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump({"model": {"name": "pconv_unet"}}))
    (folder / "metrics.jsonl").write_text(json.dumps({"step": 1, "psnr": 20.0}) + "\n")
    return folder


def _bad_inputs(tmp_path: Path, good: Path) -> dict[str, list[str]]:
    no_metrics = tmp_path / "no_metrics"
    no_metrics.mkdir()
    (no_metrics / "config.yaml").write_text(yaml.safe_dump({"classifier": {}}))
    no_config = tmp_path / "no_config"
    no_config.mkdir()
    (no_config / "metrics.jsonl").write_text("")
    empty = make_run(tmp_path / "empty", "resnet18", "zero", [])
    bad_padding = make_run(tmp_path / "circular", "resnet18", "circular", [1.0])
    broken = make_run(tmp_path / "broken", "resnet18", "zero", [1.0])
    with (broken / "metrics.jsonl").open("a") as log:
        log.write("{not json\n")
    return {
        "missing": [str(tmp_path / "nowhere")],
        "no metrics": [str(no_metrics)],
        "no config": [str(no_config)],
        "empty log": [str(empty)],
        "inpainting run": [str(_inpainting_run(tmp_path / "inpainting"))],
        "bad padding": [str(bad_padding)],
        "bad json": [str(broken)],
        "twice": [str(good), str(good)],
        "no published file": [str(good), "--published", str(tmp_path / "none.csv")],
        "no shifted accuracy": [str(make_run(tmp_path / "plain", "resnet18", "zero", [1.0])),
                                "--metric", "top1_shifted"],
        "plot onto a folder": [str(good), "--plot", str(tmp_path)],  # refused, not replaced
        "plot of no image format": [str(good), "--plot", str(tmp_path / "table.txt")],
    }


def test_bad_inputs_one_line_exit_2(runs, tmp_path, capsys):
    for name, argv in _bad_inputs(tmp_path, runs[0]).items():
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, name
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (name, err)
    with pytest.raises(SystemExit) as caught:
        main([str(runs[0]), "--metric", "top5"])
    assert caught.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_module_runs_as_command(runs):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "inpainting.tasks.classification.padding_report"]
    done = subprocess.run([*command, *map(str, runs)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 0 and "resnet18" in done.stdout
    done = subprocess.run([*command, str(runs[0].parent)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def test_the_documented_table_matches_the_csv():
    text = (ROOT / "docs" / "padding.md").read_text()
    section = text.split("## The report's table: padding_report")[1]
    rows = load_published()
    checked = 0
    for line in section.split("\n## ")[0].splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("|") and (cells[0], "zero") in rows:
            assert float(cells[1]) == rows[cells[0], "zero"].average
            checked += 1
            for padding, cell in zip(("partial", "reflect", "replicate"), cells[2:]):
                mean, diff = cell.replace("(", "").replace(")", "").split()
                assert (float(mean), float(diff)) == (rows[cells[0], padding].average,
                                                      rows[cells[0], padding].diff)
    assert checked == 5
