"""Generators: any-size inference, the frequency branch learns, losses by name all run."""

from __future__ import annotations

import pytest
import torch

from gir.nn import build_discriminator, build_generator, for_inference, generator_names, losses
from tests.helpers import TINY_ARGS

# Tiny widths (tests/helpers.py TINY_ARGS): the architectures, not their capacity, are under test.


def test_every_registered_generator_is_covered():
    assert set(generator_names()) == set(TINY_ARGS)


@pytest.mark.parametrize("name", sorted(TINY_ARGS))
@pytest.mark.parametrize("hw", [(32, 32), (37, 53), (17, 64)])
def test_any_size_in_same_size_out(name, hw):
    torch.manual_seed(0)
    g = build_generator(name, TINY_ARGS[name]).eval()
    x = torch.rand(2, 3, *hw)
    with torch.no_grad():
        y = g(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("name", sorted(TINY_ARGS))
def test_the_inference_form_computes_the_same_and_leaves_the_model_alone(name):
    """for_inference (what the Deblurrer, ONNX export and bench run) equals the trained model
    at odd sizes and batch 2, and the trained model keeps its parameters and state dict."""
    torch.manual_seed(0)
    g = build_generator(name, TINY_ARGS[name]).eval()
    with torch.no_grad():   # non-zero output scales, so a lost beta/gamma would show
        for p_name, p in g.named_parameters():
            if p_name.endswith(("beta", "gamma")):
                p.uniform_(0.5, 1.5)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    fast = for_inference(g)
    x = torch.rand(2, 3, 37, 53)
    with torch.no_grad():
        want, got = g(x), fast(x)
    assert (want - x).abs().max() > 1e-3                 # not the identity on both sides
    assert torch.allclose(got, want, atol=1e-5)
    with torch.no_grad():   # the inference form of the inference form is the same function
        assert torch.allclose(for_inference(fast)(x), want, atol=1e-5)
    after = g.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    if name == "nafnet":   # folded: no PixelShuffle and no output scales left in the copy
        assert not any(isinstance(m, torch.nn.PixelShuffle) for m in fast.modules())
        assert not any(k.endswith(("beta", "gamma")) for k in fast.state_dict())


def test_resnet_has_global_skip():
    """With its last conv zeroed the DeblurGAN generator returns its input exactly."""
    g = build_generator("resnet", TINY_ARGS["resnet"]).eval()
    last = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    x = torch.rand(1, 3, 21, 30)
    assert torch.equal(g(x), x)


def test_fourier_branch_changes_output_and_learns():
    from gir.nn.fourier_unet import SpectralBlock

    torch.manual_seed(0)
    g = build_generator("fourier_unet", TINY_ARGS["fourier_unet"])
    x, target = torch.rand(2, 3, 40, 36), torch.rand(2, 3, 40, 36)
    blocks = [m for m in g.modules() if isinstance(m, SpectralBlock)]
    assert len(blocks) == 1 + 2 * 2  # bottleneck + every level of encoder and decoder

    loss = losses.l1_loss(g(x), target)
    loss.backward()
    for b in blocks:
        for p in b.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, "no gradient in the branch"

    with torch.no_grad():
        before = g(x)
        for b in blocks:  # what the seed's abs(ifft2(fft2(x))) branch amounted to: nothing
            b.forward = lambda t: t
        without = g(x)
    assert (before - without).abs().max() > 1e-4


def test_spectral_block_is_not_the_seed_noop():
    """The branch acts on the spectrum: it mixes frequencies a 1x1 spatial conv cannot."""
    from gir.nn.fourier_unet import SpectralBlock

    torch.manual_seed(0)
    b = SpectralBlock(4)
    x = torch.rand(1, 4, 16, 16)
    y = b(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    assert not torch.allclose(y, x.abs())


@pytest.mark.parametrize("kind", ["bce", "lsgan", "wgan-gp"])
def test_adversarial_losses_give_gradients(kind):
    torch.manual_seed(0)
    d = build_discriminator("patchgan", {"base": 8, "layers": 2, "spectral_norm": kind != "bce"})
    adv = losses.Adversarial(kind, gp_weight=10.0)
    blurred, real = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    fake = torch.rand(2, 3, 32, 32, requires_grad=True)
    l_d = adv.discriminator(d, blurred, real, fake.detach())
    l_d.backward()
    assert torch.isfinite(l_d) and all(p.grad is not None for p in d.parameters())
    l_g = adv.generator(d(blurred, fake))
    l_g.backward()
    assert torch.isfinite(l_g) and fake.grad.abs().sum() > 0


def test_content_and_fft_losses_are_zero_on_identity():
    x = torch.rand(1, 3, 16, 16)
    for fn in (losses.l1_loss, losses.fft_loss):
        assert fn(x, x).item() == 0
    assert losses.charbonnier_loss(x, x).item() == pytest.approx(1e-3)
    assert losses.fft_loss(x, x.roll(3, -1)).item() > 0


def test_psnr_loss_is_minus_the_mean_per_image_psnr():
    x = torch.rand(2, 3, 16, 16)
    off = torch.tensor([0.1, 0.01]).view(2, 1, 1, 1)  # MSE 1e-2 and 1e-4: PSNR 20 and 40 dB
    assert losses.psnr_loss(x + off, x).item() == pytest.approx(-30.0, abs=1e-3)
    # Each image counts once, as in the evaluation's mean PSNR (the pooled MSE would give -23).
    each = [losses.psnr_loss(x[i:i + 1] + off[i], x[i:i + 1]).item() for i in range(2)]
    assert each == pytest.approx([-20.0, -40.0], abs=1e-3)


def test_unknown_adversarial_loss_is_a_clear_error():
    from gir.errors import GirError

    with pytest.raises(GirError, match="unknown loss"):
        losses.Adversarial("hinge")
