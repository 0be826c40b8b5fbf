"""How inpainting is measured: image metrics (``psnr``, ``ssim``, ``l1``; ``.image``), the
per-bin table of Liu et al., ECCV 2018, Table 1 (``.scoring``), the classical methods scored
beside a model (``.baselines``) and the test-set evaluation behind ``evaluate.py``
(``.evaluation``). ``evaluate.py --metrics`` adds the field's metrics (``.suite``): the hole's
sharpness ``grad-ratio`` (``.gradient``), LPIPS (``.perceptual``), and FID, KID, IS and
P-IDS/U-IDS (``.fid``) on Inception features (``.inception``, ground truth cached by
``.features``), their weights found offline (``.weights``).

Images are (B, C, H, W) in [0, 1]; masks (B, 1, H, W), 1 = known, 0 = hole.
"""

from inpainting.metrics.image import l1, psnr, ssim, to_uint8_levels

__all__ = ["l1", "psnr", "ssim", "to_uint8_levels"]
