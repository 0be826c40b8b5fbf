"""OpenMMLab mmagic's PConv generators as checkpoints of the inpainting task.

mmagic (Apache-2.0) publishes stage-2 PConv generators for Places365 and CelebA-HQ at 256x256
(``configs/partial_conv/README.md`` of open-mmlab/mmagic). Their ``PConvEncoderDecoder`` is the
U-Net of Liu et al. (ECCV 2018) with 7 levels: ``inpainting.models.PConvUNet(depth=7,
base_channels=64)`` has the very same layers (7x7, 5x5, 5x5 then 3x3 strided partial convs with
ReLU, BatchNorm on all but the first; nearest x2 upsampling, the upsampled map concatenated
before the skip, LeakyReLU(0.2), a last layer with a bias and no activation), so converting is a
renaming of the weights, plus two facts about mmagic's inputs:

- **[-1, 1].** mmagic normalises images with mean = std = 127.5, so the converted model gets
  ``value_range: symmetric`` (``2 * image - 1`` in, ``(output + 1) / 2`` out, inside
  ``forward``); its inputs and outputs stay RGB in [0, 1] like every model here.
- **BGR.** mmagic's loader reads images as BGR and its data preprocessor leaves the order
  (``channel_order='bgr'``, no ``to_rgb``), so its generator takes and returns BGR. Our models
  take RGB; reversing the colour channels *in the weights* is exact, because the colour
  channels enter the network at two places only and leave it at one: the input channels of
  ``enc1`` (the image), the last three input channels of ``dec1`` (the image skip, after the 64
  channels of ``dec2``'s output), and the output channels and bias of ``dec1``. A convolution
  whose input channels are permuted computes the same sums with its weights permuted alike, and
  permuting output channels permutes the result; nothing else sees a colour channel (the
  masks are the same in all channels).

``weight_mask_updater`` buffers (all ones, mmagic's constant for counting known inputs) are
checked and dropped; keys outside ``generator.`` (the perceptual loss's VGG, the optimizer,
``meta``) are ignored. Files are read with ``weights_only=True`` only.

Mask convention: 1 = known pixel, 0 = hole (mmagic's generator takes the same convention).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from inpainting import tasks
from inpainting.engine.checkpoint import CHECKPOINT_VERSION, unreadable_reason
from inpainting.engine.config import config_to_dict
from inpainting.engine.errors import UserInputError
from inpainting.models import PConvUNet
from inpainting.tasks.inpainting.config import InpaintingConfig
from inpainting.tasks.inpainting.data import DataConfig
from inpainting.tasks.inpainting.model import ModelConfig

__all__ = ["DEPTH", "SOURCE_LICENCES", "convert_mmagic_checkpoint", "mmagic_key"]

DEPTH, BASE_CHANNELS, IMAGE_SIZE = 7, 64, 256
SOURCE_LICENCES = {
    "code": "mmagic (OpenMMLab), Apache-2.0",
    "weights": "trained on Places365 or CelebA-HQ, whose terms restrict use to non-commercial "
               "research",
}
# Globals that mmengine writes into ``meta`` (numpy scalars and dtypes) and that torch's
# weights_only unpickler refuses by default; allowed by name, nothing else. Files written under
# numpy 1 name the scalar ``numpy.core.multiarray.scalar``, under numpy 2 ``numpy._core...``.
_SCALAR = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
_META_GLOBALS: list[Any] = [
    (_SCALAR, "numpy.core.multiarray.scalar"), (_SCALAR, "numpy._core.multiarray.scalar"),
    np.dtype, *(type(np.dtype(name)) for name in ("float64", "float32", "int64", "int32",
                                                   "bool"))]


def mmagic_key(ours: str) -> str:
    """Our ``PConvUNet`` key -> mmagic's: ``encoder.0.conv.weight`` ->
    ``generator.encoder.enc1.conv.weight``, ``decoder.3.norm.running_var`` ->
    ``generator.decoder.dec4.bn.running_var``."""
    part, index, module, leaf = ours.split(".", 3)
    level = f"{'enc' if part == 'encoder' else 'dec'}{int(index) + 1}"
    return f"generator.{part}.{level}.{'bn' if module == 'norm' else module}.{leaf}"


@functools.cache
def _our_shapes() -> dict[str, tuple[int, ...]]:
    """Our key -> shape of ``PConvUNet(depth=7, base_channels=64)``, built once, without
    weights (on the meta device)."""
    with torch.device("meta"):
        model = PConvUNet(depth=DEPTH, base_channels=BASE_CHANNELS)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _expected() -> dict[str, tuple[int, ...]]:
    """mmagic key -> shape of the published generator (our model at depth 7, 64 channels),
    ``weight_mask_updater`` buffers included."""
    shapes = {mmagic_key(key): shape for key, shape in _our_shapes().items()}
    for key, shape in list(shapes.items()):
        if key.endswith(".conv.weight"):
            shapes[key.replace(".weight", ".weight_mask_updater")] = shape
    return shapes


def _read(path: Path) -> Any:
    """``torch.load(weights_only=True)``, allowing mmengine's numpy ``meta`` types by name."""
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(_META_GLOBALS):
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:
        if error.errno != errno.EINVAL:  # torch's zip reader on a truncated file: a bad file
            raise
        found = unreadable_reason(path, error)
    except Exception as error:  # no common type: see engine.checkpoint.read_checkpoint_file
        found = unreadable_reason(path, error)
    raise UserInputError(f"cannot read '{path}' ({found}): not an mmagic PConv checkpoint")


def _what_it_is(raw: Any, generator: dict[str, Any]) -> str:
    """A few words on a file that is no mmagic PConv checkpoint."""
    owner = tasks.checkpoint_owner(raw)
    if owner is not None:
        return owner
    weights = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if isinstance(weights, dict) and any(str(k).startswith("generator.model.") for k in weights):
        return "a LaMa checkpoint"  # LaMa's generators are Sequentials under generator.model
    if generator:
        return f"an mmagic checkpoint of another generator ({min(generator)}, ...)"
    if isinstance(weights, dict) and weights:
        return f"a checkpoint of other weights ({min(map(str, weights))}, ...)"
    return f"a {type(raw).__name__}, not a checkpoint"


def _generator_weights(raw: Any, path: Path) -> dict[str, Tensor]:
    """The ``generator.`` tensors of an mmagic checkpoint, checked against the published model.

    Raises:
        UserInputError: not an mmagic PConv checkpoint (saying what it is instead), keys or
            shapes that differ from mmagic's PConv generator, or a ``weight_mask_updater`` that
            is not all ones.
    """
    weights = raw.get("state_dict", raw) if isinstance(raw, dict) else {}
    weights = weights if isinstance(weights, dict) else {}
    generator = {k: v for k, v in weights.items() if str(k).startswith("generator.")}
    expected = _expected()
    if not generator.keys() & expected.keys():
        raise UserInputError(f"'{path}' is {_what_it_is(raw, generator)}, not an mmagic PConv "
                             "checkpoint")
    missing, extra = sorted(expected.keys() - generator.keys()), sorted(generator.keys() -
                                                                        expected.keys())
    if missing or extra:
        listed = ", ".join((missing or extra)[:2])
        raise UserInputError(f"'{path}' is not mmagic's 7-level PConv generator ({len(missing)} "
                             f"keys missing, {len(extra)} unexpected, e.g. {listed})")
    for key, shape in expected.items():
        value = generator[key]
        if not isinstance(value, Tensor) or tuple(value.shape) != shape:
            found = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise UserInputError(f"'{path}': {key} has shape {found}, mmagic's PConv generator "
                                 f"has {shape}")
        if key.endswith("weight_mask_updater") and not bool((value == 1).all()):
            raise UserInputError(f"'{path}': {key} is not all ones; this is not mmagic's "
                                 "PConv layer")
    return generator


def _to_rgb(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Reverse the colour channels where they enter and leave the network (module docstring).
    """
    state = dict(state)
    flip = torch.tensor([2, 1, 0])
    state["encoder.0.conv.weight"] = state["encoder.0.conv.weight"][:, flip]
    last = state["decoder.0.conv.weight"][flip]  # output channels
    skip = last.shape[1] - 3
    last = torch.cat([last[:, :skip], last[:, skip:][:, flip]], dim=1)  # the image skip
    state["decoder.0.conv.weight"] = last
    state["decoder.0.conv.bias"] = state["decoder.0.conv.bias"][flip]
    return state


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_mmagic_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read an mmagic PConv checkpoint and return it as a checkpoint of the inpainting task.

    Args:
        path: a ``.pth`` file of mmagic's ``configs/partial_conv`` (``{"meta", "state_dict",
            ...}`` with ``generator.encoder.enc1.conv.weight`` ...).

    Returns:
        A checkpoint dict (``engine.checkpoint`` layout): ``model`` (RGB weights of a
        ``PConvUNet(depth=7, base_channels=64, value_range="symmetric")``), ``config`` (that
        model section and a data section of mmagic's test protocol: 256 px, resized),
        ``step`` 0, ``version``, and ``source`` (file name, sha256 and the licences of the code
        and of the weights). ``evaluate.py``, ``predict``, the app, ``export`` and
        ``--init-from`` read it like any other.

    Raises:
        UserInputError: not an mmagic PConv checkpoint (one line saying what was found).
        OSError: the file cannot be read.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserInputError(f"mmagic checkpoint '{path}' does not exist; pass the .pth file")
    generator = _generator_weights(_read(path), path)
    ours = {key: generator[mmagic_key(key)].clone() for key in _our_shapes()}
    model = ModelConfig(depth=DEPTH, base_channels=BASE_CHANNELS, value_range="symmetric")
    config = InpaintingConfig(model=model, data=DataConfig(image_size=IMAGE_SIZE,
                                                           eval_mode="resize"))
    return {
        "model": _to_rgb(ours), "ema": None, "step": 0, "best_metric": None,
        "config": config_to_dict(config), "version": CHECKPOINT_VERSION,
        "source": {"format": "mmagic PConv", "file": path.name, "sha256": _sha256(path),
                   "licences": dict(SOURCE_LICENCES)},
    }
