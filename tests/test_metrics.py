"""Tests for inpainting.metrics.image: agreement with scikit-image, special cases, input checks."""

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.transform import resize

from inpainting.metrics import image as metrics
from inpainting.metrics.image import l1, psnr, ssim, to_uint8_levels
from inpainting.tasks.classification.task import topk_correct

TOLERANCE = 1e-4  # the bar set by the issue
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "camera", "page")
SIZES = [(11, 11), (64, 64), (48, 80), (97, 131)]


def reference(pred: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """scikit-image PSNR and SSIM per image of (B, C, H, W) tensors, computed in float64."""
    pred_np = pred.double().permute(0, 2, 3, 1).numpy()
    target_np = target.double().permute(0, 2, 3, 1).numpy()
    psnrs = [peak_signal_noise_ratio(t, p, data_range=1) for p, t in zip(pred_np, target_np)]
    ssims = [
        structural_similarity(
            t, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=1, channel_axis=-1,
        )
        for p, t in zip(pred_np, target_np)
    ]
    return np.array(psnrs), np.array(ssims)


def load_photos() -> list[np.ndarray]:
    """The bundled sample photographs that load offline, as float64 RGB (H, W, 3) in [0, 1]."""
    photos = []
    for name in PHOTOS:
        try:
            image = getattr(skdata, name)()
        except Exception:  # a sample that needs a download is simply left out
            continue
        image = image.astype(np.float64) / 255
        photos.append(np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image)
    return photos


def degrade(target: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Three predictions per target: noisy, blurred + 8-bit, and a grey rectangular hole fill."""
    noisy = (target + 0.05 * torch.randn(target.shape, generator=generator)).clamp(0, 1)
    blurred = torch.nn.functional.avg_pool2d(target, 3, stride=1, padding=1,
                                             count_include_pad=False)
    holed = target.clone()
    height, width = target.shape[-2:]
    holed[..., height // 4: height // 2, width // 3: 2 * width // 3] = 0.5
    return torch.cat([noisy, to_uint8_levels(blurred), holed])


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    found = load_photos()
    if len(found) < 3:
        pytest.skip("fewer than three scikit-image sample photographs load offline")
    return found


@pytest.mark.parametrize("size", SIZES)
def test_matches_skimage_on_photographs(photos, size):
    generator = torch.Generator().manual_seed(1)
    # Half of the photos are resized to the target size (whole scene), half cropped from the
    # centre at full resolution (fine texture).
    targets = []
    for index, photo in enumerate(photos):
        if index % 2:
            top, left = (photo.shape[0] - size[0]) // 2, (photo.shape[1] - size[1]) // 2
            photo = photo[top:top + size[0], left:left + size[1]]
        else:
            photo = resize(photo, size, anti_aliasing=True)
        targets.append(torch.from_numpy(photo).permute(2, 0, 1).float())
    target = torch.stack(targets)
    pred = degrade(target, generator)
    target = target.repeat(3, 1, 1, 1)
    expected_psnr, expected_ssim = reference(pred, target)
    np.testing.assert_allclose(psnr(pred, target).numpy(), expected_psnr, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(ssim(pred, target).numpy(), expected_ssim, rtol=0, atol=TOLERANCE)
    # In float64 the arithmetic is the reference's, up to rounding.
    np.testing.assert_allclose(ssim(pred.double(), target.double()).numpy(), expected_ssim,
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape", [(2, 3, 11, 11), (3, 3, 32, 32), (2, 1, 40, 23),
                                   (2, 3, 75, 140), (1, 4, 150, 66)])
@pytest.mark.parametrize("noise", [0.01, 0.3])
def test_matches_skimage_on_random_images(shape, noise):
    generator = torch.Generator().manual_seed(2)
    target = torch.rand(shape, generator=generator)
    pred = (target + noise * torch.randn(shape, generator=generator)).clamp(0, 1)
    expected_psnr, expected_ssim = reference(pred, target)
    np.testing.assert_allclose(psnr(pred, target).numpy(), expected_psnr, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(ssim(pred, target).numpy(), expected_ssim, rtol=0, atol=TOLERANCE)


def test_nearly_flat_images_stay_accurate_in_float32():
    # Flat regions make the variances tiny, where E[x^2] - E[x]^2 in float32 is most fragile.
    generator = torch.Generator().manual_seed(3)
    target = torch.full((3, 3, 40, 40), 0.95) + 0.002 * torch.rand((3, 3, 40, 40),
                                                                   generator=generator)
    pred = target + 0.001 * torch.randn(target.shape, generator=generator)
    _, expected_ssim = reference(pred, target)
    np.testing.assert_allclose(ssim(pred, target).numpy(), expected_ssim, rtol=0, atol=TOLERANCE)


def test_identical_images():
    image = torch.rand(3, 3, 24, 37)
    assert torch.isinf(psnr(image, image)).all() and (psnr(image, image) > 0).all()
    torch.testing.assert_close(ssim(image, image), torch.ones(3), rtol=0, atol=1e-6)
    assert (l1(image, image) == 0).all()


def test_psnr_analytic_mse():
    target = torch.zeros(2, 3, 8, 8)
    pred = target.clone()
    pred[0] = 0.1  # MSE 0.01 -> 20 dB
    pred[1, :, :4] = 0.5  # half the pixels off by 0.5: MSE 0.125 -> 10 log10(8) dB
    expected = torch.tensor([20.0, 10 * np.log10(8.0)], dtype=torch.float32)
    torch.testing.assert_close(psnr(pred, target), expected, rtol=0, atol=1e-5)


def test_ssim_of_a_batch_equals_ssim_of_each_image_across_chunks(monkeypatch):
    target = torch.rand(5, 3, 30, 26)
    pred = (target + 0.1 * torch.randn(target.shape)).clamp(0, 1)
    whole = ssim(pred, target)
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS_CPU", 2 * 4 * 3 * 30 * 26)  # chunks of 2
    chunked = ssim(pred, target)
    singles = torch.cat([ssim(pred[i:i + 1], target[i:i + 1]) for i in range(5)])
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-7)
    torch.testing.assert_close(singles, whole, rtol=0, atol=1e-7)
    assert whole.shape == (5,) and len(set(whole.tolist())) == 5


def test_l1_whole_image_and_hole_by_hand():
    target = torch.zeros(2, 2, 2, 2)
    pred = torch.tensor([[[[0.1, 0.2], [0.3, 0.4]], [[0.0, 0.0], [0.0, 0.8]]],
                         [[[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]]]])
    mask = torch.ones(2, 1, 2, 2)
    mask[0, 0, 1, 1] = 0  # image 0: one hole pixel, errors 0.4 and 0.8 there
    mask[1, 0, 0] = 0  # image 1: top row is the hole, all errors 0.5
    torch.testing.assert_close(l1(pred, target), torch.tensor([22.5, 50.0]))
    torch.testing.assert_close(l1(pred, target, mask), torch.tensor([60.0, 50.0]))


def test_l1_without_holes_is_nan():
    image = torch.rand(2, 3, 8, 8)
    assert torch.isnan(l1(image, image * 0.5, torch.ones(2, 1, 8, 8))).all()


def test_output_dtypes():
    x = torch.rand(2, 3, 16, 16)
    y = torch.rand(2, 3, 16, 16)
    for fn in (psnr, ssim, l1):
        assert fn(x, y).dtype == torch.float32
        assert fn(x.double(), y.double()).dtype == torch.float64
        assert fn(x.half(), y.half()).dtype == torch.float32


@pytest.mark.parametrize("fn", [psnr, ssim, l1])
def test_bad_shapes_raise(fn):
    image = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="shapes differ"):
        fn(image, torch.rand(2, 3, 16, 17))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        fn(image[0], image[0])
    with pytest.raises(ValueError, match="floating"):
        fn((image * 255).to(torch.uint8), (image * 255).to(torch.uint8))


def test_ssim_rejects_images_smaller_than_the_window():
    ssim(torch.rand(1, 3, 11, 11), torch.rand(1, 3, 11, 11))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 10, 40), torch.rand(1, 3, 10, 40))


def test_l1_rejects_a_mask_of_the_wrong_shape():
    image = torch.rand(2, 3, 8, 8)
    for bad in (torch.ones(2, 3, 8, 8), torch.ones(1, 1, 8, 8), torch.ones(2, 8, 8)):
        with pytest.raises(ValueError, match="mask must have shape"):
            l1(image, image, bad)


def test_to_uint8_levels_matches_an_8bit_round_trip():
    x = torch.rand(2, 3, 9, 9) * 1.2 - 0.1  # includes values outside [0, 1]
    quantised = to_uint8_levels(x)
    as_bytes = np.clip(np.round(x.numpy() * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(quantised.numpy(), as_bytes.astype(np.float32) / 255)
    torch.testing.assert_close(to_uint8_levels(quantised), quantised, rtol=0, atol=0)
    assert quantised.dtype == x.dtype and quantised.min() >= 0 and quantised.max() <= 1
    with pytest.raises(ValueError, match="floating"):
        to_uint8_levels(torch.ones(2, dtype=torch.uint8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    target = torch.rand(3, 3, 40, 52)
    pred = (target + 0.1 * torch.randn(target.shape)).clamp(0, 1)
    for fn in (psnr, ssim, l1):
        torch.testing.assert_close(fn(pred.cuda(), target.cuda()).cpu(), fn(pred, target),
                                   rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# topk_correct
def test_topk_correct_equals_a_hand_count():
    logits = torch.tensor([
        [0.1, 0.9, 0.0, 0.3, 0.2, 0.5, 0.4],  # ranking 1, 5, 6, 3, 4, 0, 2
        [2.0, 1.0, 0.0, -1.0, -2.0, -3.0, -4.0],  # ranking 0, 1, 2, 3, 4, 5, 6
        [0.0, 0.1, 1.0, 0.2, 0.3, 0.4, 0.5],  # ranking 2, 6, 5, 4, 3, 1, 0
        [0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],  # ranking 0, 1, ..., 6
    ])
    target = torch.tensor([1, 4, 5, 6])  # true class at ranks 1, 5, 3 and 7
    correct = topk_correct(logits, target, ks=(1, 2, 3, 5, 7))
    assert correct.dtype == torch.int64 and correct.tolist() == [1, 1, 2, 3, 4]
    assert topk_correct(logits, target).tolist() == [1, 3]  # the default (1, 5)


def test_topk_correct_caps_k_at_the_number_of_classes():
    logits = torch.tensor([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])
    target = torch.tensor([0, 2])  # ranks 3 and 2 (tie at the bottom)
    assert topk_correct(logits, target).tolist() == [0, 2]  # Prec@5 is top-3 here
    assert topk_correct(logits, target, ks=(3, 5, 1)).tolist() == [2, 2, 0]
    assert topk_correct(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)).tolist() == [0, 0]


def test_topk_correct_rejects_bad_input():
    logits = torch.rand(4, 6)
    with pytest.raises(ValueError, match="logits must be"):
        topk_correct(logits[0], torch.tensor(1))
    with pytest.raises(ValueError, match="target must be an integer"):
        topk_correct(logits, torch.zeros(4))
    with pytest.raises(ValueError, match="target must be"):
        topk_correct(logits, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"outside \[0, 6\)"):
        topk_correct(logits, torch.tensor([0, 1, 2, 6]))
    with pytest.raises(ValueError, match="ks must be positive"):
        topk_correct(logits, torch.tensor([0, 1, 2, 3]), ks=(0, 5))
