"""Grouped-convolution resblocks (the decoder's CUDA form) against the separate branches."""

import copy

import torch

from rtsvc.models.modules import remove_weight_norm_everywhere
from rtsvc.models.nsf_hifigan import NSFHiFiGAN, VocoderShape
from rtsvc.models.parallel_resblocks import can_fuse, fuse_parallel_resblocks

SHAPE = VocoderShape(inter_channels=8, upsample_initial_channel=32, upsample_rates=(4, 2, 2),
                     upsample_kernel_sizes=(8, 4, 4), resblock="1", resblock_kernel_sizes=(3, 7, 11),
                     resblock_dilation_sizes=((1, 3, 5),) * 3, gin_channels=8, sampling_rate=16000)


def _decoder(shape: VocoderShape = SHAPE) -> NSFHiFiGAN:
    torch.manual_seed(0)
    decoder = NSFHiFiGAN(shape).eval()
    remove_weight_norm_everywhere(decoder)
    return decoder


def test_fused_decoder_matches_separate_branches():
    decoder = _decoder()
    fused = copy.deepcopy(decoder)
    assert fuse_parallel_resblocks(fused)
    assert len(fused.parallel_resblocks) == len(SHAPE.upsample_rates)
    gen = torch.Generator().manual_seed(1)
    z, g = torch.randn(1, 8, 23, generator=gen), torch.randn(1, 8, 1, generator=gen)
    f0 = 100 + 200 * torch.rand(1, 23, generator=gen)
    with torch.no_grad():
        expected, got = decoder(z, f0, g), fused(z, f0, g)
    assert got.shape == expected.shape == (1, 1, 23 * SHAPE.hop_length)
    assert (got - expected).abs().max().item() < 1e-5
    # the grouped block really is the computation (not a fallback to the branches)
    with torch.no_grad():
        fused.parallel_resblocks[0].convs1[0].weight.mul_(0.5)
        assert (fused(z, f0, g) - expected).abs().max().item() > 1e-3


def test_fusion_refuses_what_it_cannot_fuse():
    unfolded = NSFHiFiGAN(SHAPE)  # weight norm not folded: the weights would go stale
    assert not can_fuse(unfolded) and not fuse_parallel_resblocks(unfolded)
    assert unfolded.parallel_resblocks is None
    mixed = _decoder(VocoderShape(**{**SHAPE.__dict__, "resblock_dilation_sizes": ((1, 3, 5), (1, 2, 4), (1, 3, 5))}))
    assert not fuse_parallel_resblocks(mixed)
    resblock2 = _decoder(VocoderShape(**{**SHAPE.__dict__, "resblock": "2"}))
    assert not fuse_parallel_resblocks(resblock2)


def test_backend_fuses_on_cuda_only_unless_asked():
    from rtsvc.backends import apply_backend, choose_backend, describe_backend

    choice = choose_backend("torch")
    holder = torch.nn.Module()
    holder.dec = _decoder()
    model, _ = apply_backend(holder, None, choice)  # CPU: the grouped form would be ~1.6x the arithmetic
    assert describe_backend(model, None, choice)["decoder_resblocks"] == "separate"
    model, _ = apply_backend(holder, None, choice, fuse_resblocks=True)
    assert describe_backend(model, None, choice)["decoder_resblocks"] == "grouped"
