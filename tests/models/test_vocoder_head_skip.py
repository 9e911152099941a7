"""The vocoder's head skip: ``keep`` returns the tail of the whole-window output, computing less."""

from __future__ import annotations

import pytest
import torch

from rtsvc.errors import ParameterError
from rtsvc.models.nsf_hifigan import VocoderShape, build_vocoder

#: Float rounding only (convolutions over different lengths may block their sums differently).
TOLERANCE = 1e-5


def _vocoder(name: str = "nsf-hifigan", resblock: str = "1", rates=(8, 4, 2), kernels=(16, 8, 4),
             res_kernels=(3, 7, 11), dilations=((1, 3, 5),) * 3):
    torch.manual_seed(0)
    shape = VocoderShape(inter_channels=8, upsample_initial_channel=32, upsample_rates=tuple(rates),
                         upsample_kernel_sizes=tuple(kernels), resblock=resblock,
                         resblock_kernel_sizes=tuple(res_kernels), resblock_dilation_sizes=tuple(dilations),
                         gin_channels=4, sampling_rate=16000)
    return build_vocoder(name, shape).eval()


def _inputs(frames: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(1, 8, frames, generator=gen), 120 + 200 * torch.rand(1, frames, generator=gen),
            torch.randn(1, 4, 1, generator=gen))


@pytest.mark.parametrize("build", [
    dict(),
    dict(resblock="2", dilations=((1, 3),) * 3),
    dict(rates=(5, 4, 3), kernels=(5, 8, 3)),  # odd rates: kernel == stride, no padding
])
def test_keep_gives_the_tail_of_the_whole_output_and_skips_the_head(build):
    dec = _vocoder(**build)
    hop = dec.upp
    for frames, keep in ((40, 7 * hop), (40, 1), (40, 40 * hop), (9, 3 * hop + 5), (64, 10 * hop)):
        x, f0, g = _inputs(frames)
        with torch.no_grad():
            har = dec.excitation(f0)
            whole = dec.decode(x, har, g)
            tail = dec.decode(x, har, g, keep)
        assert tail.shape == (1, 1, keep)
        assert (tail - whole[..., -keep:]).abs().max().item() <= TOLERANCE, (frames, keep)
    starts = dec.keep_starts(64 * hop, 10 * hop)
    assert all(s > 0 for s in starts[1:]), starts  # a long window's head is really skipped


def test_a_plan_that_reads_too_little_is_caught():
    """The exactness check above can fail: shrink the resblocks' reach and the tail differs."""
    dec = _vocoder()
    x, f0, g = _inputs(48)
    keep = 6 * dec.upp
    with torch.no_grad():
        har = dec.excitation(f0)
        whole = dec.decode(x, har, g)
        dec.stage_reach = tuple(r // 3 for r in dec.stage_reach)
        wrong = dec.decode(x, har, g, keep)
    assert (wrong - whole[..., -keep:]).abs().max().item() > 100 * TOLERANCE


def test_the_snake_vocoder_decodes_all_and_slices():
    dec = _vocoder("nsf-snake-hifigan", res_kernels=(3,), dilations=((1, 3, 5),))
    assert not dec.head_skip
    x, f0, g = _inputs(20)
    with torch.no_grad():
        har = dec.excitation(f0)
        whole, tail = dec.decode(x, har, g), dec.decode(x, har, g, 50)
    assert torch.equal(tail, whole[..., -50:])


def test_synthesizer_keep_samples_is_checked_and_matches():
    from tests.rtsvc.test_onnx_helpers import random_inputs, random_synthesizer  # noqa: PLC0415

    model = random_synthesizer({}, ssl_dim=256, speech_encoder="vec256l9", vol_embedding=False)
    c, f0, uv, _ = random_inputs(model, 16)
    whole, _ = model.infer(c, f0, uv, deterministic=True)
    tail, _ = model.infer(c, f0, uv, deterministic=True, keep_samples=3 * model.hop_length)
    assert (tail - whole[..., -3 * model.hop_length:]).abs().max().item() <= TOLERANCE
    for bad in (0, 16 * model.hop_length + 1):
        with pytest.raises(ParameterError, match="keep_samples"):
            model.infer(c, f0, uv, deterministic=True, keep_samples=bad)
