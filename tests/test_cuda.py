"""The CUDA paths the CPU suite cannot reach: the layer on the GPU, autocast with fp16/bf16,
torch.compile and channels_last. Every test skips without CUDA (CI has none); the lead runs
them on a lent GPU with ``benchmarks/cuda_paths.sh``."""

import copy

import pytest
import torch
from partial_conv_reference import dense_reference

from inpainting.layers import PartialConv2d
from inpainting.models import PConvUNet
from inpainting.tasks.classification.models import build_classifier

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture
def exact_cuda_math():
    """cuDNN convolutions default to TF32 on Ampere and later; exact comparisons need fp32."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("multi_channel", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_layer_on_cuda_matches_the_definition(multi_channel, with_mask, exact_cuda_math):
    torch.manual_seed(0)
    layer = PartialConv2d(6, 8, 3, stride=2, padding=1, multi_channel=multi_channel,
                          return_mask=True).double()
    x = torch.randn(2, 6, 17, 20, dtype=torch.float64, requires_grad=True)
    mask = None
    if with_mask:
        mask = (torch.rand(2, 6 if multi_channel else 1, 17, 20) > 0.6).double()
    ref_out, ref_mask = dense_reference(layer, x, mask)
    grad = torch.randn_like(ref_out)
    ref_grads = torch.autograd.grad(ref_out, [x, layer.weight, layer.bias], grad)

    gpu = copy.deepcopy(layer).float().cuda()
    x_gpu = x.detach().float().cuda().requires_grad_()
    out, new_mask = gpu(x_gpu, None if mask is None else mask.float().cuda())
    grads = torch.autograd.grad(out, [x_gpu, gpu.weight, gpu.bias], grad.float().cuda())
    torch.testing.assert_close(out.double().cpu(), ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(new_mask.double().cpu(), ref_mask)
    for ours, theirs in zip(grads, ref_grads):
        torch.testing.assert_close(ours.double().cpu(), theirs, atol=1e-4, rtol=1e-4)


def _unet_and_batch():
    torch.manual_seed(0)
    model = PConvUNet(depth=4, base_channels=8).cuda()
    image = torch.rand(4, 3, 64, 64, device="cuda")
    mask = torch.ones(4, 1, 64, 64, device="cuda")
    mask[:, :, 16:48, 8:40] = 0
    return model, image, mask


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_unet_autocast_step_is_finite_and_close_to_fp32(dtype, exact_cuda_math):
    model, image, mask = _unet_and_batch()
    reference, _ = model(image, mask)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    with torch.autocast("cuda", dtype=dtype):
        output, final_mask = model(image, mask)
        loss = (output.float() - image).abs().mean()
    assert output.dtype == dtype and final_mask.dtype == torch.float32
    torch.testing.assert_close(output.float(), reference, atol=0.15, rtol=0.05)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_compiled_unet_matches_eager(exact_cuda_math):
    model, image, mask = _unet_and_batch()
    model.eval()
    with torch.no_grad():
        eager, eager_mask = model(image, mask)
        compiled, compiled_mask = torch.compile(model)(image, mask)
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(compiled_mask, eager_mask)


@pytest.mark.parametrize("padding", ["partial", "zero", "reflect", "replicate"])
def test_classifier_channels_last_bf16_matches_fp32(padding, exact_cuda_math):
    torch.manual_seed(0)
    model = build_classifier("resnet18", padding=padding, num_classes=10).cuda().eval()
    images = torch.rand(4, 3, 96, 96, device="cuda")
    with torch.no_grad():
        reference = model(images)
        fast = model.to(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = fast(images.contiguous(memory_format=torch.channels_last))
    assert torch.isfinite(logits).all()
    scale = reference.abs().max()
    assert (logits.float() - reference).abs().max() <= 0.05 * scale
