"""Inpainting images of any size with a trained model: padding, tiling, exact compositing.

The network (a ``PConvUNet`` of depth ``d``) needs sides divisible by ``2 ** d``. An image of any
size is reflect-padded up to the next multiple (image and mask alike), inpainted, and cropped
back. Images with a side larger than ``tile_size`` are cut into overlapping ``tile_size`` tiles
that are inpainted in batches and blended with weights that fall off linearly towards each
tile's edge, so no seam shows. The result is composited in 8-bit space,
``where(mask, input, round(255 * output))``, so known pixels come back bit-identical.

Mask convention: 1 = known pixel, 0 = hole.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from inpainting.engine.errors import UserInputError
from inpainting.tasks.inpainting.checkpoint import load_model_from_checkpoint

__all__ = [
    "DEFAULT_TILE_OVERLAP",
    "DEFAULT_TILE_SIZE",
    "Inpainter",
    "composite_uint8",
    "reflect_pad",
    "resolve_device",
    "tile_starts",
    "to_known_mask",
]

logger = logging.getLogger(__name__)

DEFAULT_TILE_SIZE = 1024
DEFAULT_TILE_OVERLAP = 128


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Turn ``"auto"``/``None``/``"cpu"``/``"cuda[:k]"`` into a device.

    Raises:
        UserInputError: If CUDA is requested but not available, or the name is not a device.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:  # torch.device's parse error of the name
        raise UserInputError(f"unknown device {device!r} (valid: auto, cpu, cuda, "
                             "cuda:N)") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError("device 'cuda' requested but CUDA is not available; use "
                             "--device cpu")
    return resolved


def to_known_mask(mask: np.ndarray | Image.Image) -> np.ndarray:
    """Normalise a mask to ``bool (H, W)``, True = known.

    Args:
        mask: (H, W) or (H, W, 1) bool, or numbers with 1 (or 255) = known and 0 = hole: values
            >= 0.5 count as known when the maximum is <= 1, values >= 128 otherwise. A PIL image
            is converted to grey first.

    Raises:
        ValueError: If the mask is not 2-D.
    """
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L"))
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.ndim != 2:
        raise ValueError(f"a mask must be (H, W) with 1 = known, 0 = hole; got shape {mask.shape}")
    if mask.dtype == bool:
        return mask
    threshold = 0.5 if mask.size == 0 or mask.max() <= 1 else 128
    return mask >= threshold


def reflect_pad(x: Tensor, multiple: int) -> Tensor:
    """Pad the bottom and right of ``x`` by reflection so H and W are multiples of ``multiple``.

    Reflection is repeated when the pad is larger than the side (tiny images); a side of one
    pixel is replicated instead.

    Args:
        x: (B, C, H, W) float tensor.
        multiple: The size divisor, e.g. ``2 ** depth``.

    Returns:
        (B, C, H', W') with H' = ceil(H / multiple) * multiple (same for W); the top-left
        (H, W) block is ``x``.
    """
    height, width = x.shape[-2:]
    target_h, target_w = -(-height // multiple) * multiple, -(-width // multiple) * multiple
    while x.shape[-2] < target_h or x.shape[-1] < target_w:
        height, width = x.shape[-2:]
        need_h, need_w = target_h - height, target_w - width
        if (need_h and height == 1) or (need_w and width == 1):
            return F.pad(x, (0, need_w, 0, need_h), mode="replicate")
        x = F.pad(x, (0, min(need_w, width - 1), 0, min(need_h, height - 1)), mode="reflect")
    return x


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap``.

    The last tile ends exactly at ``length``; a length <= tile gives one tile at 0.
    """
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = -(-(length - tile) // stride) + 1
    # Spread the tiles evenly so every overlap is at least `overlap` pixels.
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def _ramp(length: int, overlap: int, device: torch.device) -> Tensor:
    """(length,) blending weights: 1 in the middle, falling linearly over ``overlap`` pixels."""
    position = torch.arange(length, device=device, dtype=torch.float32)
    distance = torch.minimum(position + 1, length - position)
    return torch.clamp(distance / (overlap + 1), max=1.0)


def composite_uint8(image: np.ndarray, output: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Known pixels from ``image``, holes from ``output``, all ``uint8``.

    Args:
        image: (H, W, C) uint8 input.
        output: (H, W, C) float prediction in [0, 1] (clipped), rounded to 8 bits.
        known: (H, W) bool, True = known.

    Returns:
        (H, W, C) uint8; equals ``image`` bit for bit wherever ``known``.
    """
    predicted = np.rint(np.clip(output, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.where(known[:, :, None], image, predicted)


class Inpainter:
    """Inpaint images of any size with a trained model.

    Args:
        model: An inpainting network ``(image (B, C, H, W) [0, 1], mask (B, 1, H, W)) ->
            (output, final_mask)``; its ``depth`` attribute (if any) sets the size divisor
            ``2 ** depth`` and ``in_channels`` (default 3) the image channels.
        device: ``None``/``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
        tile_size: Images with a side longer than this are inpainted in overlapping tiles of
            this size (pixels).
        tile_overlap: Minimum overlap of neighbouring tiles, blended linearly (pixels).
        batch_size: Tiles per forward pass.

    Raises:
        UserInputError: If ``tile_overlap`` is not in ``[0, tile_size)`` or ``batch_size < 1``.

    Example:
        >>> inpainter = Inpainter.from_checkpoint("runs/demo/best.pt")
        >>> result = inpainter(image, mask)  # (H, W, 3) uint8, mask (H, W): 1 = known, 0 = hole
    """

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device | None = None,
        tile_size: int = DEFAULT_TILE_SIZE,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        batch_size: int = 4,
    ) -> None:
        if tile_size < 1 or not 0 <= tile_overlap < tile_size:
            raise UserInputError(
                f"need tile_size >= 1 and 0 <= tile_overlap < tile_size (--tile-size, "
                f"--tile-overlap), got tile_size={tile_size}, tile_overlap={tile_overlap}"
            )
        if batch_size < 1:
            raise UserInputError(f"batch_size (--batch-size) must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.multiple = 2 ** int(getattr(model, "depth", 0))
        self.channels = int(getattr(model, "in_channels", 3))
        self.tile_size, self.tile_overlap, self.batch_size = tile_size, tile_overlap, batch_size

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str | torch.device | None = None, **kwargs: Any
    ) -> Inpainter:
        """Build an inpainter from a training checkpoint of the inpainting task (the weight
        average when the run kept one; see
        :func:`inpainting.tasks.inpainting.checkpoint.load_model_from_checkpoint`).

        Args:
            path: Checkpoint file.
            device: As in the constructor.
            **kwargs: ``tile_size``, ``tile_overlap``, ``batch_size``.
        """
        model, _ = load_model_from_checkpoint(path, resolve_device(device))
        return cls(model, device=device, **kwargs)

    @torch.no_grad()
    def predict(self, image: Tensor, mask: Tensor) -> Tensor:
        """Raw network prediction for a batch, padded to the size divisor and cropped back.

        Args:
            image: (B, C, H, W) in [0, 1]; hole pixels are ignored, whatever they hold (NaN
                and inf included: they are set to 0 before the model).
            mask: (B, 1, H, W), 1 = known, 0 = hole.

        Returns:
            (B, C, H, W) prediction clamped to [0, 1] (not composited), on ``self.device``.
        """
        height, width = image.shape[-2:]
        mask = mask.to(self.device, torch.float32)
        # where, not image * mask: a NaN or inf in a hole times 0 is NaN, which would spread
        image = torch.where(mask > 0, image.to(self.device, torch.float32), 0.0)
        output, _ = self.model(reflect_pad(image, self.multiple), reflect_pad(mask, self.multiple))
        return output[:, :, :height, :width].clamp(0.0, 1.0)

    @torch.no_grad()
    def predict_tiled(self, image: Tensor, mask: Tensor) -> Tensor:
        """Like :meth:`predict` for one image, in blended tiles when a side exceeds the tile size.

        Args:
            image: (1, C, H, W) in [0, 1].
            mask: (1, 1, H, W), 1 = known, 0 = hole.

        Returns:
            (1, C, H, W) prediction in [0, 1].
        """
        height, width = image.shape[-2:]
        if max(height, width) <= self.tile_size:
            return self.predict(image, mask)
        tile_h, tile_w = min(height, self.tile_size), min(width, self.tile_size)
        boxes = [
            (top, left)
            for top in tile_starts(height, tile_h, self.tile_overlap)
            for left in tile_starts(width, tile_w, self.tile_overlap)
        ]
        weight = _ramp(tile_h, self.tile_overlap, self.device)[:, None] * _ramp(
            tile_w, self.tile_overlap, self.device
        )  # (tile_h, tile_w)
        total = torch.zeros(1, image.shape[1], height, width, device=self.device)
        norm = torch.zeros(1, 1, height, width, device=self.device)
        for first in range(0, len(boxes), self.batch_size):
            chunk = boxes[first : first + self.batch_size]
            crops = [(t, t + tile_h, s, s + tile_w) for t, s in chunk]
            tiles = torch.cat([image[:, :, a:b, c:d] for a, b, c, d in crops])
            tile_masks = torch.cat([mask[:, :, a:b, c:d] for a, b, c, d in crops])
            outputs = self.predict(tiles, tile_masks)
            for output, (a, b, c, d) in zip(outputs, crops):
                total[0, :, a:b, c:d] += output * weight
                norm[0, :, a:b, c:d] += weight
        return total / norm

    def inpaint_array(self, image: np.ndarray, known: np.ndarray) -> np.ndarray:
        """Inpaint one uint8 image; known pixels are returned unchanged, bit for bit.

        Args:
            image: (H, W, C) uint8, C = the model's channels.
            known: (H, W) bool, True = known pixel.

        Returns:
            (H, W, C) uint8 composite.
        """
        tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]  # (1, C, H, W)
        tensor = tensor.to(self.device, torch.float32) / 255.0
        mask = torch.from_numpy(np.array(known))[None, None].to(self.device, torch.float32)
        output = self.predict_tiled(tensor, mask)[0].permute(1, 2, 0).cpu().numpy()
        return composite_uint8(image, output, known)

    def __call__(
        self, image: np.ndarray | Image.Image, mask: np.ndarray | Image.Image
    ) -> np.ndarray | Image.Image:
        """Inpaint the holes of ``image``.

        Args:
            image: (H, W, 3) uint8 array or PIL image (converted to RGB); for a grayscale model
                (``in_channels=1``) an (H, W) or (H, W, 1) uint8 array or a PIL image (to ``L``).
            mask: (H, W) array or PIL image, 1 or 255 = known, 0 = hole (or bool, True = known).

        Returns:
            The inpainted image, of the input's type and shape (a PIL image comes back in mode
            ``RGB``, or ``L`` for a grayscale model); known pixels are unchanged.

        Raises:
            ValueError: If the image layout or dtype does not fit the model, or the mask size
                differs from the image size.
        """
        as_pil = isinstance(image, Image.Image)
        if as_pil:
            image = np.asarray(image.convert("L" if self.channels == 1 else "RGB"))
        array = np.asarray(image)
        flat = array.ndim == 2
        if flat:
            array = array[:, :, None]
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != self.channels:
            expected = "(H, W) or (H, W, 1)" if self.channels == 1 else "(H, W, 3)"
            raise ValueError(
                f"image must be a {expected} uint8 array for this {self.channels}-channel model, "
                f"got {array.dtype} {np.asarray(image).shape}"
            )
        known = to_known_mask(mask)
        if known.shape != array.shape[:2]:
            raise ValueError(f"mask is {known.shape[0]}x{known.shape[1]} but the image is "
                             f"{array.shape[0]}x{array.shape[1]}; they must be the same size")
        result = self.inpaint_array(array, known)
        if flat or as_pil:
            result = result[:, :, 0] if self.channels == 1 else result
        return Image.fromarray(result) if as_pil else result
