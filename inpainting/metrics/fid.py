"""Scores of a whole set of images from their Inception features: FID, KID, IS, P-IDS, U-IDS.

They compare distributions, so they are computed over a whole test set, never per hole-ratio
bin: FID fits a 2048x2048 covariance, which needs thousands of images (a paper bin of 1,000
masks per border mode is already too few for a stable estimate, and the table's bins differ in
size, which biases FID by itself). The features come from ``inpainting.metrics.inception``.

- FID (Heusel et al., NeurIPS 2017): the Frechet distance between Gaussians fitted to the real
  and the fake features. Lower is better.
- KID (Binkowski et al., ICLR 2018): the unbiased squared MMD with the kernel
  ``(x.y / d + 1)^3``, averaged over random subsets (torch-fidelity's 100 of 1,000). Lower is
  better; unbiased, so usable on small sets.
- IS (Salimans et al., NeurIPS 2016): ``exp E[KL(p(y|x) || p(y))]`` over 10 splits (mean), on
  the fakes alone. Higher is better. The paper's Table 1 reports it.
- P-IDS and U-IDS (Zhao et al., "Large Scale Image Completion via Co-Modulated Generative
  Adversarial Networks", ICLR 2021): a linear SVM is fitted to tell real from fake features;
  U-IDS is its misclassification rate on those features, P-IDS the share of pairs where the
  fake looks more real to it (a larger decision value) than its own ground truth. Higher is
  better, 0.5 at most for U-IDS. Implemented from that definition with scikit-learn's
  ``LinearSVC``. With fewer pairs than feature dimensions (2048) real and fake are always
  separable, so both are 0: use thousands of pairs.

All take (N, D) feature tensors and compute in float64 on the CPU.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
from torch import Tensor

from inpainting.engine.errors import EnvironmentProblem

__all__ = [
    "KID_SUBSETS",
    "IS_SPLITS",
    "KID_SUBSET_SIZE",
    "frechet_distance",
    "inception_discriminative_scores",
    "inception_score",
    "kernel_inception_distance",
]

logger = logging.getLogger(__name__)

KID_SUBSETS = 100  # torch-fidelity's and torchmetrics' defaults
KID_SUBSET_SIZE = 1000
IS_SPLITS = 10
_SVM_ITERATIONS = 10_000  # liblinear's default 1,000 often stops short on 2048-d features


def _as_float64(features: Tensor, name: str) -> Tensor:
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"{name} must be (N, D) with N >= 2, got {tuple(features.shape)}")
    return features.detach().to("cpu", torch.float64)


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID between two feature sets.

    ``|mu_r - mu_f|^2 + tr(S_r) + tr(S_f) - 2 tr((S_r S_f)^(1/2))`` with sample covariances
    (N - 1, as ``numpy.cov``); the last trace is the sum of the square roots of the eigenvalues
    of S_r S_f, taken from a symmetric matrix with the same non-zero eigenvalues (see
    :func:`_trace_sqrt_product`): no ``sqrtm``, no imaginary round-off.

    Args:
        real, fake: (N, D) and (M, D) features, N, M >= 2.

    Returns:
        The distance (>= 0 up to rounding).
    """
    real, fake = _as_float64(real, "real"), _as_float64(fake, "fake")
    real_centred, fake_centred = real - real.mean(dim=0), fake - fake.mean(dim=0)
    cov_real = real_centred.T @ real_centred / (len(real) - 1)  # (D, D)
    cov_fake = fake_centred.T @ fake_centred / (len(fake) - 1)
    trace_root = _trace_sqrt_product(real_centred, fake_centred, cov_real, cov_fake)
    distance = ((real.mean(dim=0) - fake.mean(dim=0)).square().sum() + cov_real.trace()
                + cov_fake.trace() - 2 * trace_root)
    return float(distance)


def _trace_sqrt_product(real_centred: Tensor, fake_centred: Tensor, cov_real: Tensor,
                        cov_fake: Tensor, method: str = "auto") -> Tensor:
    """tr((S_r S_f)^(1/2)) from the eigenvalues (only) of a symmetric matrix similar to S_r S_f.

    With X the centred samples of the smaller set (n rows), S = X^T X / (n - 1) and O the other
    covariance, the non-zero eigenvalues of S O are those of ``X O X^T / (n - 1)`` (n x n);
    with a Cholesky factor L L^T = S they are those of ``L^T O L`` (D x D). Eigenvalues alone
    cost a fraction of an eigendecomposition: at D = 2048 on 2 CPU cores ``eigvalsh`` takes
    about 4 s and ``eigh`` 9 s (more under load), and ``sqrtm`` of the product 55 s. So:
    ``samples`` when a set has no more rows than D, else ``cholesky`` of whichever covariance
    is positive definite, else ``root`` (S^(1/2) by ``eigh``, then S^(1/2) O S^(1/2)).
    ``method`` forces one, for the tests.
    """
    dim = cov_real.shape[0]
    smaller, other = ((real_centred, cov_fake) if len(real_centred) <= len(fake_centred)
                      else (fake_centred, cov_real))
    if method == "samples" or (method == "auto" and len(smaller) <= dim):
        middle = smaller @ other @ smaller.T / (len(smaller) - 1)
    else:
        middle = None
        if method in ("auto", "cholesky"):
            for cov, partner in ((cov_real, cov_fake), (cov_fake, cov_real)):
                factor, info = torch.linalg.cholesky_ex(cov)
                if info == 0:
                    middle = factor.T @ partner @ factor
                    break
        if middle is None:
            values, vectors = torch.linalg.eigh(cov_real)
            root = (vectors * values.clamp_min(0).sqrt()) @ vectors.T  # S_r^(1/2)
            middle = root @ cov_fake @ root
    eigen = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0)
    return eigen.sqrt().sum()


def _poly_mmd(real: Tensor, fake: Tensor) -> float:
    """Unbiased MMD^2 with the kernel (x.y / d + 1)^3 (the diagonals left out)."""
    n, dim = real.shape
    k_rr = (real @ real.T / dim + 1) ** 3
    k_ff = (fake @ fake.T / dim + 1) ** 3
    k_rf = (real @ fake.T / dim + 1) ** 3
    within = (k_rr.sum() - k_rr.trace() + k_ff.sum() - k_ff.trace()) / (n * (n - 1))
    return float(within - 2 * k_rf.mean())


def kernel_inception_distance(
    real: Tensor, fake: Tensor, subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE, seed: int = 0,
) -> float:
    """KID: the mean unbiased MMD^2 over random subsets drawn without replacement.

    Args:
        real, fake: (N, D) and (M, D) features, N, M >= 2.
        subsets: Subsets to average over.
        subset_size: Samples per subset; when a set has no more than that, one subset of
            min(N, M) samples of each is used (more would repeat the same estimate).
        seed: Seed of the subsets (numpy's default generator).

    Returns:
        The mean MMD^2 (may be slightly negative: it is unbiased).
    """
    real, fake = _as_float64(real, "real"), _as_float64(fake, "fake")
    size = min(len(real), len(fake), subset_size)
    if size == len(real) == len(fake):
        return _poly_mmd(real, fake)
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(subsets if size == subset_size else 1):
        pick_real = torch.from_numpy(rng.choice(len(real), size, replace=False))
        pick_fake = torch.from_numpy(rng.choice(len(fake), size, replace=False))
        scores.append(_poly_mmd(real[pick_real], fake[pick_fake]))
    return float(np.mean(scores))


def inception_score(logits: Tensor, splits: int = IS_SPLITS, seed: int | None = 0) -> float:
    """IS: the mean over splits of ``exp(mean_x KL(p(y|x) || p(y)))``, p(y) within the split.

    Args:
        logits: (N, K) class logits (torch-fidelity's ``logits_unbiased``), N >= 2.
        splits: Contiguous splits after the shuffle; min(splits, N) are used.
        seed: Seed of the shuffle (the evaluation's pairs come sorted by hole-ratio bin, so
            unshuffled splits would each hold one bin); None keeps the order.

    Returns:
        The mean score over the splits (1 to K).
    """
    logits = _as_float64(logits, "logits")
    if seed is not None:
        logits = logits[torch.from_numpy(np.random.default_rng(seed).permutation(len(logits)))]
    log_p = logits.log_softmax(dim=1)
    count, splits = len(logits), min(splits, len(logits))
    scores = []
    for index in range(splits):
        chunk = log_p[index * count // splits:(index + 1) * count // splits]
        log_marginal = chunk.exp().mean(dim=0).log()  # log p(y) within the split
        kl = (chunk.exp() * (chunk - log_marginal)).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores))


def inception_discriminative_scores(real: Tensor, fake: Tensor, seed: int = 0
                                    ) -> tuple[float, float]:
    """P-IDS and U-IDS (Zhao et al., ICLR 2021) of paired features: fake i fills real i.

    A linear SVM (scikit-learn's ``LinearSVC``, default C = 1) learns real (1) vs fake (0) on
    all the features; both scores are then measured on those same features, as defined.

    Args:
        real, fake: (N, D) features, row i of ``fake`` the inpainted version of row i of
            ``real``.
        seed: The SVM's random state.

    Returns:
        ``(p_ids, u_ids)``: the share of pairs whose fake has the larger decision value, and
        the misclassification rate (a fake called real or a real called fake).

    Raises:
        EnvironmentProblem: scikit-learn is not installed.
        ValueError: the sets are not paired (different N).
    """
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.svm import LinearSVC
    except ImportError as error:
        raise EnvironmentProblem(f"p-ids and u-ids need scikit-learn ({error}); pip install "
                                 "-e '.[metrics]'") from error
    real, fake = _as_float64(real, "real").numpy(), _as_float64(fake, "fake").numpy()
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must be paired, got {real.shape} and {fake.shape}")
    count = len(real)
    samples = np.concatenate([real, fake])
    labels = np.concatenate([np.ones(count), np.zeros(count)])
    svm = LinearSVC(dual="auto", max_iter=_SVM_ITERATIONS, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        svm.fit(samples, labels)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        logger.warning("the P-IDS/U-IDS SVM did not converge in %d iterations; the scores are "
                       "approximate", _SVM_ITERATIONS)
    decision = svm.decision_function(samples)
    real_value, fake_value = decision[:count], decision[count:]
    p_ids = float(np.mean(fake_value > real_value))
    u_ids = float((np.sum(real_value <= 0) + np.sum(fake_value > 0)) / (2 * count))
    return p_ids, u_ids
