"""The one scorer, aggregate and table of validation and evaluation (inpainting.metrics.scoring)."""

import math

import pytest
import torch

from inpainting.metrics.image import psnr
from inpainting.metrics.scoring import (
    MASKED_INPUT,
    aggregate,
    bin_index,
    composite,
    format_paper_table,
    format_table,
    hole_ratios,
    image_records,
    masked_input,
    score,
)
from masks import PAPER_BINS

BINS = tuple(PAPER_BINS)


def _pairs():
    image = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8).float() / 255
    mask = torch.ones(2, 1, 16, 16)
    mask[:, :, 4:12, 4:12] = 0
    return image, mask


def test_score_on_composite_quantised_to_8_bits():
    image, mask = _pairs()
    prediction = torch.rand(2, 3, 16, 16) * 1.2 - 0.1  # some values outside [0, 1]
    metrics, merged = score(image, mask, prediction)
    expected = torch.where(mask.bool(), image, (prediction.clamp(0, 1) * 255).round() / 255)
    torch.testing.assert_close(merged, expected, rtol=0, atol=0)
    # the same bits as "mask * image + (1 - mask) * output, then quantised" on 8-bit images
    blended = (mask * image + (1 - mask) * prediction).clamp(0, 1).mul(255).round().div(255)
    assert torch.equal(merged, blended)
    torch.testing.assert_close(metrics["psnr"], psnr(expected, image))
    hole_error = (expected - image).abs() * (1 - mask)
    torch.testing.assert_close(metrics["l1_hole"], 100 * hole_error.sum((1, 2, 3)) / (64 * 3))
    # a perfect prediction is perfect everywhere
    perfect, _ = score(image, mask, image)
    assert torch.isinf(perfect["psnr"]).all() and torch.allclose(perfect["ssim"], torch.ones(2))


def test_masked_input_is_the_input_with_black_holes():
    image, mask = _pairs()
    metrics, merged = score(image, mask, masked_input(image, mask))
    assert torch.equal(merged, image * mask)
    torch.testing.assert_close(metrics["psnr"], psnr(image * mask, image))


def test_bin_index_is_half_open():
    assert bin_index(0.01, BINS) is None
    assert bin_index(0.010001, BINS) == 0
    assert bin_index(0.1, BINS) == 0
    assert bin_index(0.6, BINS) == 5
    assert bin_index(0.61, BINS) is None


def test_image_records_carry_hole_ratio_border_and_metrics():
    image, mask = _pairs()
    mask[1] = 1  # no hole: l1_hole is NaN
    metrics, _ = score(image, mask, torch.zeros_like(image))
    records = image_records(metrics, mask, [True, False])
    assert hole_ratios(mask) == [64 / 256, 0.0]
    assert [(r["hole_ratio"], r["border"]) for r in records] == [(0.25, True), (0.0, False)]
    assert records[0]["psnr"] == pytest.approx(float(metrics["psnr"][0]))
    assert math.isnan(records[1]["l1_hole"]) and math.isinf(records[1]["psnr"])
    assert [r["border"] for r in image_records(metrics, mask, False)] == [False, False]


def _record(ratio, border, value):
    return {"hole_ratio": ratio, "border": border,
            "psnr": value, "ssim": value / 100, "l1": value / 10, "l1_hole": value / 5}


def test_aggregate_rows_by_hole_ratio_and_border_then_overall():
    records = [_record(0.05, False, 10.0), _record(0.1, False, 20.0), _record(0.25, True, 30.0),
               _record(0.9, False, 40.0)]
    rows, overall = aggregate(records, BINS)
    assert [(r["bin"], r["border"], r["count"]) for r in rows] == [
        ([0.01, 0.1], False, 2), (None, False, 1), ([0.2, 0.3], True, 1)]
    assert rows[0]["psnr"] == 15.0 and rows[0]["l1_hole"] == 3.0
    assert overall == {"count": 4, "psnr": 25.0, "ssim": 0.25, "l1": 2.5, "l1_hole": 5.0}


def test_aggregate_l1_hole_skips_images_without_holes_and_nan_psnr_stays_nan():
    no_hole = {**_record(0.0, False, 20.0), "l1_hole": math.nan}
    _, overall = aggregate([_record(0.05, False, 10.0), no_hole], BINS)
    assert overall["l1_hole"] == 2.0 and overall["psnr"] == 15.0
    broken = {**_record(0.05, False, 10.0), "psnr": math.nan}
    assert math.isnan(aggregate([broken, _record(0.05, False, 10.0)], BINS).overall["psnr"])


def test_table_lines_up_methods_row_by_row():
    model = aggregate([_record(0.05, False, 30.0), _record(0.15, True, 20.0)], BINS)
    baseline = aggregate([_record(0.05, False, 5.0), _record(0.15, True, 8.0)], BINS)
    lines = format_table({"model": model, MASKED_INPUT: baseline}).splitlines()
    assert "model" in lines[0] and MASKED_INPUT in lines[0]
    assert lines[2].split() == ["(0.01,", "0.1]", "no", "1", "3.00", "30.00", "0.300",
                                "0.50", "5.00", "0.050"]
    assert lines[3].split()[:4] == ["(0.1,", "0.2]", "yes", "1"]
    assert lines[-1].split() == ["overall", "2", "2.50", "25.00", "0.250",
                                 "0.65", "6.50", "0.065"]
    assert len(lines) == 2 + 2 + 1


def test_paper_table_has_a_block_of_method_rows_per_metric_and_bin_columns():
    pm = aggregate([_record(0.05, False, 5.0), _record(0.15, True, 8.0)], BINS)
    model = aggregate([_record(0.05, False, 30.0), _record(0.15, True, 20.0)], BINS)
    lines = format_paper_table({"patchmatch": pm, "model": model},
                               {"patchmatch": "PM", "model": "ours"}).splitlines()
    assert lines[0].split() == ["(0.01,", "0.1]", "(0.1,", "0.2]", "all"]
    assert lines[1].split() == ["N", "B", "N", "B"]
    assert lines[2].split() == ["count", "1", "-", "-", "1", "2"]  # no group: "-"
    assert [line.strip() for line in lines if not line.startswith(" ")][1:] == [
        "L1 (%)", "PSNR", "SSIM", "L1 hole (%)"]  # the paper's three first
    block = lines[lines.index("PSNR") + 1:lines.index("PSNR") + 3]
    assert [line.split() for line in block] == [["PM", "5.00", "-", "-", "8.00", "6.50"],
                                               ["ours", "30.00", "-", "-", "20.00", "25.00"]]


def test_paper_table_takes_every_metric_column_the_scores_have():
    with_is = aggregate([_record(0.05, False, 5.0)], BINS)
    with_is.rows[0]["is"], with_is.overall["is"] = 3.25, 3.25
    lines = format_paper_table({"model": with_is}).splitlines()
    assert lines[lines.index("IS") + 1].split() == ["model", "3.250", "-", "3.250"]


def test_composite_keeps_known_pixels_bit_for_bit():
    image, mask = _pairs()
    merged = composite(image, mask, torch.full_like(image, float("nan")))
    assert torch.equal(merged[mask.expand_as(image) > 0], image[mask.expand_as(image) > 0])
