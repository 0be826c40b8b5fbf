"""FID, KID, IS and P-IDS/U-IDS on synthetic features, against the reference packages."""

import numpy as np
import pytest
import torch

from inpainting.metrics.fid import (
    _trace_sqrt_product,
    frechet_distance,
    inception_discriminative_scores,
    inception_score,
    kernel_inception_distance,
)

# the reference packages' own chatter (feature buffers, scipy deprecations)
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning:torchmetrics.*"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:pytorch_fid.*")]


def _features(count: int = 300, dim: int = 32, seed: int = 0):
    """Two well-conditioned Gaussian feature sets with different means and covariances."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=generator) / dim**0.5 + torch.eye(dim)
    real = torch.randn(count, dim, generator=generator) @ mixing + 0.5
    fake = torch.randn(count, dim, generator=generator) @ (1.3 * mixing) + 0.3
    return real, fake


def _standard(count: int, dim: int, seed: int) -> torch.Tensor:
    """Samples of one fixed distribution: N(0.5, I)."""
    return torch.randn(count, dim, generator=torch.Generator().manual_seed(seed)) + 0.5


class _Identity(torch.nn.Module):
    """A torchmetrics ``feature`` module for features computed already."""

    def forward(self, x):
        return x


def test_fid_equals_pytorch_fid():
    fid_score = pytest.importorskip("pytorch_fid.fid_score", reason="pytorch-fid (dev extra)")
    real, fake = _features()
    r, f = real.double().numpy(), fake.double().numpy()
    expected = fid_score.calculate_frechet_distance(
        r.mean(0), np.cov(r, rowvar=False), f.mean(0), np.cov(f, rowvar=False))
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-4)
    assert frechet_distance(real, real) == pytest.approx(0, abs=1e-8)


@pytest.mark.parametrize("count, repeats", [(20, 1), (300, 1), (300, 30)])
def test_fid_fast_paths_equal_the_plain_square_root(count, repeats):
    """Fewer samples than dimensions, positive definite covariances, and a singular real
    covariance with many samples (test images repeated across masks): every path the
    automatic choice can take equals S_r^(1/2) S_f S_r^(1/2) from the eigendecomposition."""
    real, fake = _features(count=count, dim=32)
    real = real[torch.arange(count) % (count // repeats)]  # count // repeats distinct rows
    real_centred, fake_centred = real.double() - real.mean(0), fake.double() - fake.mean(0)
    covariances = (real_centred.T @ real_centred / (count - 1),
                   fake_centred.T @ fake_centred / (count - 1))
    plain = _trace_sqrt_product(real_centred, fake_centred, *covariances, method="root")
    for method in ("auto", "samples", "cholesky"):
        value = _trace_sqrt_product(real_centred, fake_centred, *covariances, method=method)
        assert value.item() == pytest.approx(plain.item(), rel=1e-6), method


def test_kid_equals_torchmetrics():
    kid_module = pytest.importorskip("torchmetrics.image.kid", reason="torchmetrics (dev extra)")
    real, fake = _features(count=200)
    reference = kid_module.KernelInceptionDistance(feature=_Identity(), subsets=1,
                                                   subset_size=200)
    reference.update(real.double(), real=True)
    reference.update(fake.double(), real=False)
    expected = reference.compute()[0].item()  # one subset of everything: no randomness
    assert kernel_inception_distance(real, fake) == pytest.approx(expected, rel=1e-4)


def test_kid_subsets_are_seeded_and_unbiased_near_zero():
    real, fake = _features(count=120)
    first = kernel_inception_distance(real, fake, subsets=5, subset_size=50, seed=3)
    assert first == kernel_inception_distance(real, fake, subsets=5, subset_size=50, seed=3)
    assert first != kernel_inception_distance(real, fake, subsets=5, subset_size=50, seed=4)
    same = kernel_inception_distance(_standard(120, 32, 1), _standard(120, 32, 2))
    assert abs(same) < 0.1 * first


def test_inception_score_equals_torchmetrics_and_torch_fidelity():
    inception = pytest.importorskip("torchmetrics.image.inception",
                                    reason="torchmetrics (dev extra)")
    isc = pytest.importorskip("torch_fidelity.metric_isc", reason="torch-fidelity (metrics)")
    logits = 3 * torch.randn(200, 20, generator=torch.Generator().manual_seed(0))
    reference = inception.InceptionScore(feature=_Identity(), splits=1)  # no shuffle effect
    reference.update(logits.double())
    assert inception_score(logits, splits=1) == pytest.approx(reference.compute()[0].item(),
                                                              rel=1e-4)
    fidelity = isc.isc_features_to_metric(logits, splits=10, shuffle=False)
    assert inception_score(logits, seed=None) == pytest.approx(
        fidelity["inception_score_mean"], rel=1e-4)
    uniform = torch.zeros(50, 20)
    assert inception_score(uniform) == pytest.approx(1.0)
    confident = torch.eye(20).repeat(5, 1) * 100  # each class alike often, certainly
    assert inception_score(confident, splits=1) == pytest.approx(20, rel=1e-4)


def test_ids_from_the_definition():
    pytest.importorskip("sklearn", reason="scikit-learn (metrics extra)")
    real, fake = _features(count=200, dim=8)
    far = fake + 10  # trivially separable: every fake looks fake
    assert inception_discriminative_scores(real, far) == (0.0, 0.0)
    # fake drawn like real: the SVM is near chance, half the fakes beat their pair
    p_ids, u_ids = inception_discriminative_scores(_standard(2000, 8, 5), _standard(2000, 8, 6))
    assert 0.4 < p_ids < 0.6 and 0.4 < u_ids <= 0.5 + 0.02
    # a fake equal to its real has the same decision value: never "more real" (strict)
    p_same, u_same = inception_discriminative_scores(real, real.clone())
    assert p_same == 0.0 and u_same == pytest.approx(0.5)
    with pytest.raises(ValueError, match="paired"):
        inception_discriminative_scores(real, fake[:10])


def test_bad_feature_shapes_raise():
    with pytest.raises(ValueError):
        frechet_distance(torch.zeros(1, 4), torch.zeros(5, 4))
    with pytest.raises(ValueError):
        inception_score(torch.zeros(10))
