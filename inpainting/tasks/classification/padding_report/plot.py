"""The table as a picture, drawn with Pillow (matplotlib is not a dependency).

One row of two panels per architecture and metric (clean, border-shifted top-1): left, each
run's best (dots) and the group mean (bar) per padding; right, the difference with zero
padding and its 95 % Welch interval, with NVIDIA's published difference (open diamond) where
given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from inpainting.engine.errors import UserInputError
from inpainting.engine.files import atomic_write, check_output_file
from inpainting.tasks.classification.padding_report.runs import PADDINGS, PublishedRow
from inpainting.tasks.classification.padding_report.stats import GroupStats

__all__ = ["plot_format", "save_plot"]

COLOURS = {"zero": (110, 110, 110), "partial": (44, 160, 44), "reflect": (31, 119, 180),
           "replicate": (255, 127, 14)}
PANEL_W, PANEL_H, MARGIN_L, MARGIN_T, MARGIN_B = 420, 260, 70, 40, 40


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # scalable, Pillow >= 10.1
    except TypeError:
        return ImageFont.load_default()


class _Panel:
    """Maps (padding index, value) to pixels inside one panel and draws its axes."""

    def __init__(self, draw: ImageDraw.ImageDraw, left: int, top: int,
                 values: Sequence[float], title: str) -> None:
        low, high = min(values), max(values)
        pad = max((high - low) * 0.15, 0.05)
        self.low, self.high = low - pad, high + pad
        self.draw, self.left, self.top = draw, left, top
        self.width = PANEL_W - MARGIN_L - 10
        self.height = PANEL_H - MARGIN_T - MARGIN_B
        font = _font(12)
        x0, y0 = left + MARGIN_L, top + MARGIN_T
        draw.rectangle([x0, y0, x0 + self.width, y0 + self.height], outline=(0, 0, 0))
        draw.text((x0, top + 12), title, fill=(0, 0, 0), font=font)
        for index in range(5):
            value = self.low + (self.high - self.low) * index / 4
            y = self.y(value)
            draw.line([x0 - 4, y, x0, y], fill=(0, 0, 0))
            draw.text((left + 8, y - 7), f"{value:.2f}", fill=(0, 0, 0), font=font)
        for index, padding in enumerate(PADDINGS):
            draw.text((self.x(index) - 22, y0 + self.height + 8), padding,
                      fill=COLOURS[padding], font=font)

    def x(self, index: float) -> float:
        return self.left + MARGIN_L + self.width * (index + 0.5) / len(PADDINGS)

    def y(self, value: float) -> float:
        fraction = (value - self.low) / (self.high - self.low)
        return self.top + MARGIN_T + self.height * (1.0 - fraction)


def _draw_runs(panel: _Panel, groups: Sequence[GroupStats]) -> None:
    for group in groups:
        centre, colour = panel.x(PADDINGS.index(group.padding)), COLOURS[group.padding]
        spacing = min(8.0, 60.0 / len(group.bests))
        for rank, best in enumerate(group.bests):
            x = centre + (rank - (len(group.bests) - 1) / 2) * spacing
            y = panel.y(best)
            panel.draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        y = panel.y(group.mean)
        panel.draw.line([centre - 30, y, centre + 30, y], fill=(0, 0, 0), width=2)


def _draw_differences(panel: _Panel, groups: Sequence[GroupStats],
                      published: dict[tuple[str, str], PublishedRow]) -> None:
    zero_y = panel.y(0.0)
    panel.draw.line([panel.x(-0.5), zero_y, panel.x(len(PADDINGS) - 0.5), zero_y],
                    fill=(180, 180, 180))
    for group in groups:
        centre, colour = panel.x(PADDINGS.index(group.padding)), COLOURS[group.padding]
        if group.interval is not None:
            low, high = (panel.y(value) for value in group.interval)
            panel.draw.line([centre, low, centre, high], fill=colour, width=2)
            for y in (low, high):
                panel.draw.line([centre - 6, y, centre + 6, y], fill=colour, width=2)
        if group.diff is not None:
            y = panel.y(group.diff)
            panel.draw.ellipse([centre - 4, y - 4, centre + 4, y + 4], fill=colour)
        row = published.get((group.arch, group.padding))
        if row is not None and row.diff is not None:
            x, y = centre + 16, panel.y(row.diff)
            panel.draw.polygon([(x, y - 5), (x + 5, y), (x, y + 5), (x - 5, y)], outline=colour)


def _draw_arch(draw: ImageDraw.ImageDraw, top: int, arch: str, metric: str,
               mine: Sequence[GroupStats], published: dict[tuple[str, str], PublishedRow]
               ) -> None:
    """One row of the picture: ``arch``'s runs and differences for ``metric``."""
    runs = _Panel(draw, 0, top, [best for g in mine for best in g.bests],
                  f"{arch}: best {metric} per run (%), bar = mean")
    _draw_runs(runs, mine)
    points = [0.0] + [value for g in mine for value in (g.interval or ())]
    points += [g.diff for g in mine if g.diff is not None]
    nvidia = [published.get((arch, g.padding)) for g in mine]
    points += [row.diff for row in nvidia if row is not None and row.diff is not None]
    differences = _Panel(draw, PANEL_W, top, points,  # type: ignore[arg-type]
                         f"{arch}: {metric} diff vs zero, 95% CI (open: NVIDIA)")
    _draw_differences(differences, mine, published)


def save_plot(sections: Sequence[tuple[str, Sequence[GroupStats],
                                       dict[tuple[str, str], PublishedRow] | None]],
              path: Path) -> None:
    """Draw the per-run bests and the differences with zero padding; write ``path`` (PNG...).

    Args:
        sections: one ``(metric, groups, published)`` per metric, drawn one below the other,
            one row per architecture: the metric's name for the titles, the table's groups
            (``.table.group_runs``), and NVIDIA's rows by
            (arch, padding), drawn as open diamonds (None for none).
        path: the image file; the format follows its suffix. It is written atomically.

    Raises:
        UserInputError: ``path`` is a folder or has no image suffix Pillow writes.
        EnvironmentProblem: the file cannot be written; an earlier file there is intact.
    """
    image_format = plot_format(path)
    rows = [(metric, arch, [g for g in groups if g.arch == arch], published or {})
            for metric, groups, published in sections
            for arch in sorted({group.arch for group in groups})]
    image = Image.new("RGB", (2 * PANEL_W, PANEL_H * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for index, (metric, arch, mine, published) in enumerate(rows):
        _draw_arch(draw, index * PANEL_H, arch, metric, mine, published)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: image.save(handle, format=image_format))


def plot_format(path: Path) -> str:
    """Pillow's format name for the plot file ``path`` (``PNG`` for ``table.png``).

    Raises:
        UserInputError: ``path`` is a folder, or its suffix is no image format Pillow writes.
    """
    check_output_file(path, "--plot")
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None or image_format not in Image.SAVE:
        raise UserInputError(f"--plot '{path}': not an image file name Pillow can write; "
                             "use a .png file")
    return image_format
