"""Export a trained checkpoint as a deployable model: ``python -m inpainting.export``.

Usage::

    python -m inpainting.export --checkpoint RUN/best.pt --format onnx --out model.onnx
    python -m inpainting.export --checkpoint RUN --format pt2 --out model.pt2 --composite
    python -m inpainting.export --checkpoint RUN --format lama-torchscript --out model.pt

The exported graph takes two inputs, in this order:

- ``image``: (B, 3, H, W) float32 in [0, 1] (hole pixels are ignored, NaN and inf included),
- ``mask``: (B, 1, H, W) float32, 1 = known pixel, 0 = hole,

and returns ``output`` (B, 3, H, W): the network's prediction clamped to [0, 1], or with
``--composite`` the composite ``mask * image + (1 - mask) * prediction``. Batch, height and
width are dynamic. The network itself needs sides that are multiples of ``2 ** depth``; the
graph reflect-pads any other size up to the next multiple and crops back, as
:class:`inpainting.predict.Inpainter` does, so every size works (sides up to ``2 ** depth``
are padded to twice that, where ``Inpainter`` pads to ``2 ** depth``). The convention is written
into the file: ONNX ``metadata_props``, and for ``pt2`` the ``inpainting.json`` extra file
(``torch.export.load(path, extra_files={"inpainting.json": ""})``).

``lama-torchscript`` is a TorchScript file in LaMa's interface instead (mask int64, 1 = hole;
returns the composite), a drop-in for LaMa's ``big-lama.pt`` in IOPaint, lama-cleaner and
InvokeAI: see :mod:`inpainting.predict.lama_torchscript`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpainting.engine.cli import OneLineParser, choice, run_main
from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.engine.files import atomic_write, check_output_file
from inpainting.predict.lama_torchscript import LAMA_METADATA, save_lama_torchscript
from inpainting.tasks.inpainting.checkpoint import load_model_from_checkpoint

__all__ = [
    "EXPORT_FORMATS",
    "METADATA_FILE",
    "ExportWrapper",
    "export_model",
    "load_inpainting_model",
    "main",
    "model_metadata",
    "reflect_index",
]

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("onnx", "pt2", "lama-torchscript")
METADATA_FILE = "inpainting.json"  # the pt2 extra file holding the convention
ONNX_OPSET = 18
_ONNX_LOGGERS = ("onnxscript", "onnx_ir")  # the optimizer and rewriter passes of the exporter


def load_inpainting_model(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """The network of an inpainting checkpoint on the CPU, with errors a user can act on.

    Args:
        path: a checkpoint file written by ``train.py`` or a run folder (its ``last.pt``).

    Returns:
        ``(model, config)``: the model in eval mode and the resolved training config.

    Raises:
        UserInputError: no such file, or not an inpainting checkpoint of this project (one line).
    """
    try:
        model, config = load_model_from_checkpoint(path, device="cpu")
    except ValueError as error:  # UserInputError: a missing file or not a checkpoint
        message = " ".join(str(error).split())
        raise UserInputError(f"{message} (expected an inpainting checkpoint written by "
                             f"train.py, e.g. runs/NAME/best.pt, or a run folder)") from None
    if int(getattr(model, "in_channels", 3)) != 3:
        raise UserInputError(f"checkpoint '{path}' is a {model.in_channels}-channel model; "
                             "only RGB (3-channel) models are supported here")
    return model, config


def reflect_index(length: int, target: int) -> Tensor:
    """Source indices of a reflect padding of ``length`` up to ``target`` positions.

    Repeated reflection (as :func:`inpainting.predict.reflect_pad` does for pads larger than
    the side) is a triangle wave of period ``2 * (length - 1)``; a side of 1 replicates. Built
    from sizes and tensor arithmetic only, so a traced graph keeps the sizes symbolic.

    Args:
        length: the side (>= 1); a symbolic size while tracing.
        target: the padded side (>= length).

    Returns:
        (target,) int64 indices into ``[0, length)``.
    """
    position = torch.arange(target, dtype=torch.int64)
    # the sizes as 0-d tensors: the ONNX translation takes no symbolic Python scalars here
    side = torch.full((), length, dtype=torch.int64)
    period = torch.full((), torch.sym_max(2 * (length - 1), 1), dtype=torch.int64)
    phase = torch.remainder(position, period)
    return torch.where(phase < side, phase, period - phase)


class ExportWrapper(nn.Module):
    """The exported graph: ``(image, mask) -> prediction`` (or composite), any size.

    Args:
        model: an inpainting network ``(image, mask) -> (output, new_mask)`` with a ``depth``.
        composite: return ``mask * image + (1 - mask) * prediction`` instead of the prediction.
    """

    def __init__(self, model: nn.Module, composite: bool = False) -> None:
        super().__init__()
        self.model = model.eval()
        self.multiple = 2 ** int(getattr(model, "depth", 0))
        self.composite = composite

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        """Inpaint a batch.

        Args:
            image: (B, 3, H, W) in [0, 1]; hole pixels are ignored, whatever they hold (NaN
                and inf included).
            mask: (B, 1, H, W), 1 = known, 0 = hole.

        Returns:
            (B, 3, H, W) in [0, 1]: the prediction, or the composite.
        """
        height, width = image.shape[-2], image.shape[-1]
        # At least two multiples: a traced graph cannot keep a 1x1 bottom level symbolic (the
        # trace guards on it), so sides <= 2**depth are padded further than Inpainter pads them.
        padded_h = torch.sym_max((height + self.multiple - 1) // self.multiple, 2) * self.multiple
        padded_w = torch.sym_max((width + self.multiple - 1) // self.multiple, 2) * self.multiple
        rows, cols = reflect_index(height, padded_h), reflect_index(width, padded_w)
        known = mask.to(image.dtype)
        # where, not image * known: a NaN or inf in a hole times 0 is NaN, which would spread
        # through the network and, with the composite, into the output's holes
        image = torch.where(known > 0, image, 0.0)
        # (B, C, H, W) -> (B, C, H', W'): reflect-pad bottom and right, as Inpainter does
        masked = image.index_select(2, rows).index_select(3, cols)
        output, _ = self.model(masked, known.index_select(2, rows).index_select(3, cols))
        # crop back with gathers, not slices: a slice would make the trace guard on whether
        # the size was already a multiple and specialise the graph to that case
        output = output.index_select(2, rows[:height]).index_select(3, cols[:width])
        prediction = output.clamp(0.0, 1.0)
        if self.composite:
            return known * image + (1 - known) * prediction
        return prediction


def model_metadata(config: dict[str, Any], multiple: int, composite: bool) -> dict[str, str]:
    """The convention written into an exported file (string keys and values)."""
    return {
        "inputs": "image (B, 3, H, W) float32 in [0, 1]; mask (B, 1, H, W) float32, "
                  "1 = known, 0 = hole",
        "output": ("composite mask * image + (1 - mask) * prediction" if composite
                   else "prediction clamped to [0, 1]") + ", (B, 3, H, W) float32",
        "size": f"any H, W >= 2; reflect-padded inside the graph to multiples of {multiple} "
                f"(2**depth), at least {2 * multiple}",
        "size_multiple": str(multiple),
        "composite": str(composite).lower(),
        "model": json.dumps(config.get("model", {}), sort_keys=True),
        "producer": "pconv-inpainting",
    }


def _dynamic_shapes() -> dict[str, dict[int, Any]]:
    """Batch, height and width dynamic, shared by both inputs."""
    axes = {axis: torch.export.Dim.DYNAMIC for axis in (0, 2, 3)}
    return {"image": axes, "mask": axes}


def _example_inputs(multiple: int) -> tuple[Tensor, Tensor]:
    """Example inputs whose sides are not multiples, so padding shows up in the trace."""
    side_h, side_w = max(3 * multiple - 3, 5), max(2 * multiple - 1, 7)
    image = torch.rand(2, 3, side_h, side_w)
    mask = (torch.rand(2, 1, side_h, side_w) > 0.3).float()
    return image, mask


def export_model(
    model: nn.Module, config: dict[str, Any], out: str | os.PathLike, export_format: str,
    composite: bool = False,
) -> Path:
    """Export ``model`` to ``out`` as ONNX, a ``torch.export`` program (``.pt2``) or LaMa's
    TorchScript interface.

    Args:
        model: the inpainting network (eval mode, on the CPU).
        config: the checkpoint's resolved config (its ``model`` section goes into the metadata).
        out: the file to write; its folder is created. It is written atomically: an earlier
            file there stays intact until the new one is complete.
        export_format: ``"onnx"``, ``"pt2"`` or ``"lama-torchscript"``.
        composite: export the composite instead of the prediction (``lama-torchscript``
            always returns the composite, as LaMa does).

    Returns:
        The path written.

    Raises:
        UserInputError: for an unknown format, ``out`` is a folder (before any work), or a
            network lama-torchscript cannot hold.
        EnvironmentProblem: ONNX export without onnx or onnxscript installed, or ``out``
            cannot be written (a full disk, a read-only folder); nothing is left behind.
    """
    if export_format not in EXPORT_FORMATS:
        raise UserInputError(f"unknown format {export_format!r} "
                             f"(valid: {', '.join(EXPORT_FORMATS)})")
    if export_format == "onnx":
        missing = [name for name in ("onnx", "onnxscript")
                   if importlib.util.find_spec(name) is None]
        if missing:
            raise EnvironmentProblem(f"ONNX export needs {' and '.join(missing)}: "
                                     "pip install '.[app]' (or pip install onnx onnxscript)")
    out = check_output_file(out, "--out")
    out.parent.mkdir(parents=True, exist_ok=True)
    if export_format == "lama-torchscript":
        multiple = 2 ** int(getattr(model, "depth", 0))
        metadata = {**model_metadata(config, multiple, composite=True), **LAMA_METADATA,
                    "size": f"any H, W >= 1; reflect-padded inside to multiples of {multiple}"}
        return save_lama_torchscript(model, out, {METADATA_FILE: json.dumps(metadata)})
    wrapper = ExportWrapper(model, composite=composite).eval()
    metadata = model_metadata(config, wrapper.multiple, composite)
    inputs = _example_inputs(wrapper.multiple)
    with torch.no_grad():
        program = torch.export.export(wrapper, inputs, dynamic_shapes=_dynamic_shapes())
    if export_format == "pt2":
        # into memory, not to the path: torch.export.save's C++ writer aborts the process on
        # a full disk; atomic_write turns that into one line and keeps an earlier file intact
        buffer = io.BytesIO()
        torch.export.save(program, buffer, extra_files={METADATA_FILE: json.dumps(metadata)})
        atomic_write(out, buffer.getbuffer())
    else:
        atomic_write(out, _onnx_bytes(program, metadata))
    return out


def _window_sum_pool(x: Tensor, kernel_size: list[int], stride: list[int] | None = None,
                     padding: list[int] | int = 0, ceil_mode: bool = False,
                     count_include_pad: bool = True,
                     divisor_override: int | None = None) -> Tensor:
    """``aten.avg_pool2d`` with ``divisor_override``, spelled as a convolution with ones.

    ONNX ``AveragePool`` has no divisor override and the exporter drops it silently, which
    would turn the partial convolution's window sums into window means. A depthwise
    convolution with a ones kernel over the zero-padded input is the same sum (exact: the
    masks hold small whole numbers), divided by the override.
    """
    if ceil_mode or not count_include_pad:
        raise NotImplementedError("ONNX export of avg_pool2d needs count_include_pad=True and "
                                  "ceil_mode=False")
    kernel = list(kernel_size) * (2 // len(kernel_size))
    pads = [padding] * 2 if isinstance(padding, int) else list(padding) * (2 // len(padding))
    channels = x.shape[1]
    ones = x.new_ones((channels, 1, *kernel))
    total = F.conv2d(x, ones, None, stride or kernel, pads, 1, channels)
    return total / (divisor_override or kernel[0] * kernel[1])


def _onnx_bytes(program: torch.export.ExportedProgram, metadata: dict[str, str]) -> bytes:
    """Translate an exported program to the bytes of one ONNX file with the metadata set."""
    import onnx

    table = torch.export.default_decompositions()
    table[torch.ops.aten.avg_pool2d.default] = _window_sum_pool
    program = program.run_decompositions(table)
    with warnings.catch_warnings(), _quiet_onnx_optimizer():
        warnings.simplefilter("ignore", UserWarning)  # axis-renaming chatter of the exporter
        onnx_program = torch.onnx.export(
            program, f=None, input_names=["image", "mask"], output_names=["output"],
            opset_version=ONNX_OPSET, dynamo=True, verbose=False,
        )
    proto = onnx_program.model_proto
    onnx.helper.set_model_props(proto, metadata)
    return proto.SerializeToString()


@contextlib.contextmanager
def _quiet_onnx_optimizer() -> Iterator[None]:
    """Keep the ONNX optimizer's INFO lines (about a hundred per export: removed nodes,
    folded constants, deduplicated initializers) out of the command's output; its warnings
    still show."""
    loggers = [logging.getLogger(name) for name in _ONNX_LOGGERS]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(max(each.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for each, level in zip(loggers, levels):
            each.setLevel(level)


def build_parser() -> OneLineParser:
    """The command line of ``python -m inpainting.export``."""
    parser = OneLineParser(
        prog="python -m inpainting.export",
        description=(
            "Export a checkpoint as one model file: ONNX (onnxruntime), a torch.export "
            "program (.pt2), or lama-torchscript (a drop-in for LaMa's big-lama.pt in IOPaint, "
            "lama-cleaner and InvokeAI: mask int64 with 1 = hole, returns the composite).\n\n"
            "inputs, in this order: image (B, 3, H, W) float32 in [0, 1]; mask (B, 1, H, W) "
            "float32, 1 = known, 0 = hole\n"
            "output: the prediction clamped to [0, 1], or with --composite "
            "mask * image + (1 - mask) * prediction\n"
            "sizes: batch, H and W are dynamic. The network needs H, W multiples of 2**depth "
            "(e.g. 256 for depth 8); the graph reflect-pads other sizes and crops back, so any "
            "size works.\nThe convention is stored in the file (ONNX metadata_props; pt2 extra "
            f"file {METADATA_FILE})."
        ),
    )
    parser.add_argument("--checkpoint", required=True,
                        help="checkpoint written by train.py (RUN/best.pt) or a run folder")
    parser.add_argument("--format", dest="export_format", required=True,
                        metavar="{" + ",".join(EXPORT_FORMATS) + "}",
                        type=choice({name: name for name in EXPORT_FORMATS}),
                        help="onnx (runs in onnxruntime), pt2 (a torch.export program) or "
                             "lama-torchscript (LaMa's interface)")
    parser.add_argument("--out", required=True, help="file to write, e.g. model.onnx")
    parser.add_argument("--composite", action="store_true",
                        help="output mask * image + (1 - mask) * prediction (default: the "
                             "prediction)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 done, 2 bad input or --out a folder, 3 unwritable
    output)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def body() -> int:
        model, config = load_inpainting_model(args.checkpoint)
        out = export_model(model, config, args.out, args.export_format, args.composite)
        logger.info("wrote %s (%s, any size, padded to multiples of %d)", out,
                    args.export_format, 2 ** int(getattr(model, "depth", 0)))
        return 0

    return run_main("python -m inpainting.export", body)


if __name__ == "__main__":
    sys.exit(main())
