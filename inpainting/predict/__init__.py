"""Inpainting with a trained model: :class:`Inpainter` (any image size, tiling, exact
compositing; :mod:`.inference`) and the command line ``python -m inpainting.predict``
(:mod:`.cli`)."""

from typing import Any

__all__ = ["DEFAULT_TILE_OVERLAP", "DEFAULT_TILE_SIZE", "Inpainter", "composite_uint8",
           "reflect_pad", "resolve_device", "tile_starts", "to_known_mask"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: ``python -m inpainting.predict`` imports this package before its
    # command line can catch a Ctrl-C while torch loads (seconds), so nothing here loads torch.
    if name in __all__:
        from inpainting.predict import inference

        return getattr(inference, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
