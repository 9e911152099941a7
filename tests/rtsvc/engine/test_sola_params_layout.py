"""SOLA joining, the live parameter set and the block layout / latency arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from rtsvc.engine.layout import LATENCY_DEFINITIONS, latency_breakdown, make_layout
from rtsvc.engine.params import HOT_FIELDS, STREAM_FIELDS, LiveParams
from rtsvc.engine.sola import SolaJoiner, best_offset, equal_power_curves
from rtsvc.errors import ParameterError
from rtsvc.params import VoiceParams


def test_equal_power_curves_sum_to_unit_power():
    fo, fi = equal_power_curves(64)
    assert np.allclose(fo**2 + fi**2, 1.0, atol=1e-6)
    assert fo[0] > 0.99 and fi[-1] > 0.99


def test_best_offset_finds_a_known_shift():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(400).astype(np.float32)
    tail = x[100:140]
    k, rho = best_offset(tail, x[93:], search=20)
    assert k == 7 and rho > 0.999
    assert best_offset(np.zeros(40, np.float32), x, 20) == (0, 0.0)


def test_sola_reassembles_a_shifted_stream_without_level_bump():
    """Blocks cut from one (aperiodic) signal, each starting a random 0..search samples early,
    come out as the continuous signal; the matching segments are identical, so the fade is
    equal-gain and adds no +3 dB bump at the seams."""
    b, c, s = 200, 40, 30
    rng = np.random.default_rng(3)
    x = np.convolve(rng.standard_normal(6000), np.hanning(9), mode="same").astype(np.float32)
    j = SolaJoiner(b, c, s)
    out = []
    for m in range(1, 25):
        d = 0 if m == 1 else int(rng.integers(0, s + 1))
        start = m * b - d
        out.append(j.join(x[start : start + j.needed]))
    offsets_seen = j.last_offset
    y = np.concatenate(out[1:])  # skip the first block (fade-in from silence)
    ref = x[2 * b : 2 * b + len(y)]
    assert np.max(np.abs(y - ref)) < 1e-4 * np.max(np.abs(x))
    assert 0 <= offsets_seen <= s


def test_sola_first_block_fades_in_from_silence_and_rejects_wrong_length():
    j = SolaJoiner(100, 20, 10)
    out = j.join(np.ones(j.needed, np.float32))
    assert out[0] < 0.1 and np.allclose(out[20:], 1.0)
    with pytest.raises(ValueError):
        j.join(np.ones(5, np.float32))


def test_params_validate_and_name_the_field():
    p = LiveParams()
    assert p.with_changes(transpose=5).transpose == 5.0
    for bad, field in ((dict(transpose=99), "transpose"), (dict(block_ms=1), "block_ms"), (dict(fallback="loud"), "fallback"),
                       (dict(f0_method="nope"), "f0_method"), (dict(bypass=1), "bypass"), (dict(sample_rate=44100.5), "sample_rate"),
                       (dict(crossfade_ms=50, block_ms=20), "crossfade_ms"), (dict(input_device=-3), "input_device")):
        with pytest.raises(ParameterError, match=field):
            p.with_changes(**bad)
    with pytest.raises(ParameterError, match="unknown live parameter.*nope"):
        p.with_changes(nope=1)
    assert p.with_changes(output_device="3").output_device == 3


def test_params_round_trip_and_voice_params():
    p = LiveParams(transpose=3, formant=-2, speaker_mix=(("a", 0.5), ("b", 0.5)), cluster_ratio=0.3, f0_method="dio")
    assert LiveParams.from_dict(p.to_dict()) == p
    v = p.voice_params()
    assert isinstance(v, VoiceParams) and v.transpose == 3 and v.formant == -2 and v.cluster_ratio == 0.3
    assert v.speaker_mix == (("a", 0.5), ("b", 0.5)) and v.f0_method == "dio"
    assert p.stream_changes(p.with_changes(block_ms=40, transpose=1)) == ["block_ms"]
    assert "transpose" in HOT_FIELDS and "block_ms" in STREAM_FIELDS and not HOT_FIELDS & STREAM_FIELDS


def test_layout_rounds_to_hops_and_latency_is_the_sum_of_its_terms():
    p = LiveParams(block_ms=21, crossfade_ms=4, sola_search_ms=3, right_context_ms=5, prefill_ms=10, extra_context_ms=50)
    L = make_layout(p, voice_rate=44100, hop=220, input_rate=48000, output_rate=32000)
    assert L.block_v % 220 == 0 and L.window_v % 220 == 0
    assert L.block_v == 880  # 21 ms = 926 samples -> 4 hops
    assert L.window_v >= L.block_v + L.search_v + L.crossfade_v + L.right_v + round(0.05 * 44100)
    lat = latency_breakdown(L, device_input_s=0.004, device_output_s=0.006)
    terms = lat.block_ms + lat.sola_search_ms + lat.crossfade_ms + lat.right_context_ms + lat.prefill_ms
    assert lat.algorithmic_ms == pytest.approx(terms, abs=0.05)
    assert lat.total_ms == pytest.approx(lat.algorithmic_ms + 10.0)
    assert lat.block_ms == pytest.approx(880 / 44.1) and lat.processing_ms == pytest.approx(10.0)
    assert lat.prefill_ms == pytest.approx(lat.processing_ms + lat.resample_ms + lat.period_ms, abs=0.05)
    assert lat.resample_ms > 0 and lat.period_ms == 0  # 48k -> 44.1k -> 32k resamplers; no period given
    same = make_layout(p, voice_rate=44100, hop=220, input_rate=44100, output_rate=44100, period=441)
    assert latency_breakdown(same).resample_ms == 0 and latency_breakdown(same).period_ms == pytest.approx(10.0)
    assert set(lat.to_dict()["definitions"]) == set(LATENCY_DEFINITIONS)
