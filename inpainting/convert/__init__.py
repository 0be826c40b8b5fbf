"""Checkpoints of other projects as checkpoints of this one: ``python -m inpainting.convert
--from mmagic CKPT --out OUT.pt`` (see :mod:`inpainting.tasks.inpainting.mmagic`)."""
