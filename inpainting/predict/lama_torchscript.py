"""A trained network in LaMa's TorchScript interface, for tools that load LaMa's ``big-lama.pt``.

IOPaint (formerly lama-cleaner) and InvokeAI run LaMa as a TorchScript file called as
``model(image, mask)``:

- ``image``: (B, 3, H, W) float32 in [0, 1],
- ``mask``: (B, 1, H, W) int64 (or float) 0/1, **1 = hole** (values >= 0.5 count as holes),

under ``torch.inference_mode()``, returning (B, 3, H, W) in [0, 1]: the composite, as LaMa's
own TorchScript wrapper returns its ``inpainted`` output (the prediction in the holes, the
input elsewhere). :class:`LamaInterface` is that call around a network of this project (mask
1 = known inside): it reflect-pads any H, W to the network's multiple of ``2 ** depth`` and crops
back, exactly as :meth:`inpainting.predict.Inpainter.predict` does, so the file computes
``Inpainter``'s composite. It holds a buffer because InvokeAI reads the device to use from
``next(model.buffers())``.

The network is traced: its Python control flow depends on its configuration only (the
partial convolutions skip their data-dependent fast path while tracing), which
:func:`script_lama_interface` checks on a second size and batch. The wrapper, whose padding
depends on the input size, is scripted around the trace.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from inpainting.engine.errors import UserInputError
from inpainting.engine.files import atomic_write

__all__ = ["LAMA_METADATA", "LamaInterface", "reflect_positions", "save_lama_torchscript",
           "script_lama_interface"]

# How the file's call differs from the other exported formats (see inpainting.export).
LAMA_METADATA = {
    "inputs": "image (B, 3, H, W) float32 in [0, 1]; mask (B, 1, H, W) int64 or float, "
              "1 = hole, 0 = known (LaMa's convention)",
    "output": "composite: the prediction in the holes, the input elsewhere, (B, 3, H, W) "
              "float32 in [0, 1] (as LaMa's big-lama.pt)",
}


def reflect_positions(length: int, target: int, device: torch.device) -> Tensor:
    """Source indices of a repeated reflect padding of ``length`` positions up to ``target``.

    The same indices as :func:`inpainting.export.reflect_index` (a triangle wave of period
    ``2 * (length - 1)``; a side of 1 repeats), written for TorchScript, which keeps sizes as
    plain ints.

    Returns:
        (target,) int64 indices into ``[0, length)``, on ``device``.
    """
    position = torch.arange(target, dtype=torch.int64, device=device)
    period = max(2 * (length - 1), 1)
    phase = torch.remainder(position, period)
    return torch.where(phase < length, phase, period - phase)


class LamaInterface(nn.Module):
    """``(image, mask with 1 = hole) -> composite``, any size, around an inpainting network.

    Args:
        network: ``(image * known, known) -> (output, new_mask)`` with known = 1, hole = 0,
            taking sides that are multiples of ``multiple`` (a ``PConvUNet`` or its trace).
        multiple: the size divisor, ``2 ** depth``.
    """

    def __init__(self, network: nn.Module, multiple: int) -> None:
        super().__init__()
        # InvokeAI takes the device from the first buffer; a network without BatchNorm has
        # none, so the wrapper holds one of its own (the size divisor, for the curious).
        self.register_buffer("size_multiple", torch.tensor(multiple, dtype=torch.int64))
        self.network = network
        self.multiple = multiple

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        """Inpaint a batch.

        Args:
            image: (B, 3, H, W) float in [0, 1]; hole pixels are ignored.
            mask: (B, 1, H, W) any dtype, 1 = hole, 0 = known (values >= 0.5 are holes).

        Returns:
            (B, 3, H, W) in [0, 1]: the prediction clamped to [0, 1] in the holes, ``image``
            elsewhere.
        """
        height, width = image.shape[2], image.shape[3]
        hole = mask >= 0.5
        known = (~hole).to(image.dtype)
        padded_h = (height + self.multiple - 1) // self.multiple * self.multiple
        padded_w = (width + self.multiple - 1) // self.multiple * self.multiple
        rows = reflect_positions(height, padded_h, image.device)
        cols = reflect_positions(width, padded_w, image.device)
        # (B, C, H, W) -> (B, C, H', W'): reflect-pad bottom and right, as Inpainter does
        masked = image.masked_fill(hole, 0.0).index_select(2, rows).index_select(3, cols)
        output, _ = self.network(masked, known.index_select(2, rows).index_select(3, cols))
        prediction = output[:, :, :height, :width].clamp(0.0, 1.0)
        return torch.where(hole, prediction, image)


@contextlib.contextmanager
def _quiet_torchscript() -> Iterator[None]:
    """Silence what tracing and scripting say about themselves.

    torch 2.x marks ``torch.jit`` deprecated (a FutureWarning per call), and tracing warns
    about every size check that it records as a constant; those checks only raise on
    malformed inputs, and :func:`script_lama_interface` verifies the result on another size.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", message=r"`?torch\.jit", category=category)
        yield


def script_lama_interface(model: nn.Module) -> torch.jit.ScriptModule:
    """:class:`LamaInterface` around ``model`` as a TorchScript module (CPU, eval mode).

    Args:
        model: an inpainting network of this project with ``depth`` (a ``PConvUNet``).

    Returns:
        The scripted interface; checked against the eager one on a size and batch other
        than the traced ones.

    Raises:
        UserInputError: a network whose computation depends on the input size in Python
            (``prefill: diffusion``), which a trace would fix to one size.
    """
    if getattr(model, "prefill", "none") != "none":
        raise UserInputError("--format lama-torchscript cannot hold a network with "
                             f"prefill {model.prefill!r} (its fill loops once per halving "
                             "of the image size, and a trace fixes that to one size); use "
                             "--format onnx or pt2")
    model = model.cpu().eval()
    multiple = 2 ** int(getattr(model, "depth", 0))
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 2 * multiple, 2 * multiple, generator=generator)
    known = (torch.rand(1, 1, 2 * multiple, 2 * multiple, generator=generator) > 0.3).float()
    with torch.no_grad(), _quiet_torchscript():
        traced = torch.jit.trace(model, (image * known, known), check_trace=False)
        scripted = torch.jit.script(LamaInterface(traced, multiple))
    _check_generalises(scripted, LamaInterface(model, multiple), multiple, generator)
    return scripted


def _check_generalises(scripted: nn.Module, eager: nn.Module, multiple: int,
                       generator: torch.Generator) -> None:
    """Raise if the scripted interface differs from the eager one on a new size and batch
    (a trace that kept a size as a constant)."""
    height, width = multiple + 3, 2 * multiple + 5  # padded inside, unlike the traced size
    image = torch.rand(2, 3, height, width, generator=generator)
    hole = (torch.rand(2, 1, height, width, generator=generator) > 0.7).long()
    with torch.inference_mode():
        difference = (scripted(image, hole) - eager(image, hole)).abs().max().item()
    if not difference <= 1e-4:
        raise RuntimeError(f"the TorchScript trace does not generalise to other sizes "
                           f"(max difference {difference:.2e} at {height}x{width})")


def save_lama_torchscript(model: nn.Module, out: str | os.PathLike,
                          extra_files: dict[str, str]) -> Path:
    """Write ``model`` as a TorchScript file in LaMa's interface (see the module docstring).

    Args:
        model: the inpainting network (moved to the CPU and eval mode).
        out: the file to write; its folder must exist. Written whole or not at all.
        extra_files: file name -> text stored in the archive, read back with
            ``torch.jit.load(path, _extra_files={name: ""})``.

    Returns:
        The path written.

    Raises:
        UserInputError: as :func:`script_lama_interface`.
    """
    scripted = script_lama_interface(model)
    buffer = io.BytesIO()  # serialise first: a failure leaves no file behind
    with _quiet_torchscript():
        torch.jit.save(scripted, buffer, _extra_files=extra_files)
    atomic_write(out, buffer.getvalue())  # exit 3 on a full disk, the earlier file intact
    return Path(out)
