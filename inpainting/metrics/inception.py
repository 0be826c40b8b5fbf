"""Inception-v3 features for FID, KID, IS and P-IDS/U-IDS, as torch-fidelity computes them.

The network is torch-fidelity's ``FeatureExtractorInceptionV3``: TensorFlow's 2015-12-05
Inception graph (the one of the original FID, Heusel et al. 2017, and IS, Salimans et al. 2016)
ported to PyTorch. Its preprocessing, which ours is: the 8-bit image (the composite a user would
save) is resized to 299x299 with TensorFlow 1.x's bilinear resize (align_corners=False, no
antialiasing) and scaled by (x - 128) / 128. So the numbers are torch-fidelity's and
torchmetrics' (which uses the same extractor); pytorch-fid resizes with PyTorch's bilinear
``F.interpolate`` instead and differs slightly.

Outputs: the 2048-d pool features (FID, KID, P-IDS/U-IDS) and the 1008 logits without the final
bias (``logits_unbiased``, torch-fidelity's choice for IS).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.metrics.weights import WEIGHT_FILES, ResolvedWeights, load_state_dict

__all__ = ["FEATURES", "LOGITS", "PREPROCESSING", "InceptionFeatures", "build_inception"]

FEATURES = "2048"  # torch-fidelity's names of its outputs
LOGITS = "logits_unbiased"
# What the features depend on besides the weights and the image: part of the cache key.
PREPROCESSING = "torch-fidelity FeatureExtractorInceptionV3: uint8 -> tf1 bilinear 299"
_INSTALL = "pip install -e '.[metrics]' (torch-fidelity, lpips, scikit-learn)"


class InceptionFeatures(nn.Module):
    """Frozen Inception-v3: images in [0, 1] -> pool features and logits.

    Args:
        extractor: torch-fidelity's ``FeatureExtractorInceptionV3`` with the features
            ``["2048", "logits_unbiased"]``.
    """

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor

    @torch.inference_mode()
    def forward(self, image: Tensor) -> dict[str, Tensor]:
        """Features of a batch.

        Args:
            image: (B, 3, H, W) or grey (B, 1, H, W) in [0, 1], any size (resized to 299);
                values are rounded to the 8-bit grid first.

        Returns:
            ``{"2048": (B, 2048), "logits_unbiased": (B, 1008)}`` float32 on the input's device.
        """
        if image.ndim != 4 or image.shape[1] not in (1, 3):
            raise ValueError(f"image must be (B, 1 or 3, H, W), got {tuple(image.shape)}")
        levels = image.expand(-1, 3, -1, -1).clamp(0, 1).mul(255).round().to(torch.uint8)
        features, logits = self.extractor(levels)
        return {FEATURES: features, LOGITS: logits}


def build_inception(weights: ResolvedWeights) -> InceptionFeatures:
    """torch-fidelity's extractor with a local weight file (it would download otherwise).

    Raises:
        EnvironmentProblem: torch-fidelity is not installed.
        UserInputError: the file is not a state dict of the FID Inception (one line).
    """
    try:
        from torch_fidelity import FeatureExtractorInceptionV3
    except ImportError as error:
        raise EnvironmentProblem(f"the Inception metrics need torch-fidelity ({error}); "
                                 f"{_INSTALL}") from error
    load_state_dict(weights)  # weights_only first: torch-fidelity itself would unpickle
    try:
        extractor = FeatureExtractorInceptionV3(
            "inception-v3-compat", [FEATURES, LOGITS],
            feature_extractor_weights_path=str(weights.path),
        )
    except RuntimeError as error:  # load_state_dict: missing, unexpected or misshapen keys
        detail = " ".join(str(error).split())
        detail = detail if len(detail) <= 300 else detail[:297] + "..."
        raise UserInputError(f"inception weights {weights.path} are not "
                             f"{WEIGHT_FILES['inception'].description}: {detail}") from error
    return InceptionFeatures(extractor)
