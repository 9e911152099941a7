"""Silence slicing: chunk layout, thresholds, the streamed envelope, and settings validation."""

from __future__ import annotations

import numpy as np
import pytest
from signals import sine

import rtsvc.slicer as slicer
from rtsvc.errors import ParameterError
from rtsvc.slicer import Chunk, FrameGrid, SlicerConfig, frame_count, padded_reader, rms_envelope, slice_audio

SR = 16000


def _tone_gap_tone(gap_s: float, tone_s: float = 6.0, gap_level: float = 0.0) -> tuple[np.ndarray, int, int]:
    a = sine(220.0, tone_s, SR, amp=0.5)
    gap = (gap_level * np.random.default_rng(0).standard_normal(int(gap_s * SR))).astype(np.float32)
    return np.concatenate([a, gap, a]), len(a), len(a) + len(gap)


def _covers(chunks: list[Chunk], n: int) -> bool:
    return chunks[0].start == 0 and chunks[-1].end == n and all(a.end == b.start for a, b in zip(chunks, chunks[1:]))


def test_pause_up_to_twice_max_kept_is_split_at_its_quietest_point():
    x, gap_start, gap_end = _tone_gap_tone(gap_s=2.0)  # <= 5 s: all of it stays with the clips
    chunks = slice_audio(x, SR)
    assert _covers(chunks, len(x)) and [c.silent for c in chunks] == [False, False]
    hop = FrameGrid.for_rate(SR, SlicerConfig()).hop
    assert gap_start - 4 * hop <= chunks[0].end <= gap_end + 4 * hop


def test_long_middle_silence_becomes_a_silent_chunk_between_voiced_ones():
    x, gap_start, gap_end = _tone_gap_tone(gap_s=12.0)  # > 2 x 5 s: the middle is dropped as silence
    chunks = slice_audio(x, SR)
    assert _covers(chunks, len(x)) and [c.silent for c in chunks] == [False, True, False]
    silent = chunks[1]
    keep = 5 * SR  # at most 5 s of silence stays beside each clip
    slack = 4 * FrameGrid.for_rate(SR, SlicerConfig()).hop  # window edges
    assert gap_start <= silent.start <= gap_start + keep and gap_end - keep - slack <= silent.end <= gap_end


def test_short_files_and_short_pauses_are_not_cut():
    x, _, _ = _tone_gap_tone(gap_s=0.2)  # 0.2 s < 300 ms minimum interval
    assert slice_audio(x, SR) == [Chunk(0, len(x), False)]
    y = np.concatenate([sine(220, 1.0, SR), np.zeros(SR, np.float32), sine(220, 1.0, SR)])  # clip < 5 s
    assert slice_audio(y, SR) == [Chunk(0, len(y), False)]


def test_long_leading_silence_is_cut_and_trailing_silence_is_silent():
    x = np.concatenate([np.zeros(7 * SR, np.float32), sine(220, 6.0, SR), np.zeros(2 * SR, np.float32)])
    chunks = slice_audio(x, SR)
    assert _covers(chunks, len(x))
    assert [c.silent for c in chunks] == [True, False, True]
    assert chunks[0].end <= 7 * SR and chunks[2].start >= 13 * SR - 4 * 320


def test_threshold_decides_what_counts_as_silence():
    x, _, _ = _tone_gap_tone(gap_s=12.0, gap_level=0.03)  # noise RMS 0.03 ~ -30 dB
    assert [c.silent for c in slice_audio(x, SR, SlicerConfig(threshold_db=-40))] == [False]
    assert [c.silent for c in slice_audio(x, SR, SlicerConfig(threshold_db=-20))] == [False, True, False]


def test_streamed_envelope_matches_direct_frames(monkeypatch):
    x = np.random.default_rng(1).standard_normal(SR * 3 + 123).astype(np.float32)
    grid = FrameGrid.for_rate(SR, SlicerConfig())
    monkeypatch.setattr(slicer, "ENVELOPE_BLOCK_FRAMES", 7)  # many block boundaries
    got = rms_envelope(padded_reader(x), len(x), grid)
    padded = np.pad(x.astype(np.float64), grid.win // 2)
    n = frame_count(len(x), grid)
    want = np.array([np.sqrt(np.mean(padded[i * grid.hop : i * grid.hop + grid.win] ** 2)) for i in range(n)])
    assert len(got) == n == 1 + len(x) // grid.hop
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kwargs", [dict(threshold_db=5.0), dict(min_length_ms=100, min_interval_ms=300),
                                    dict(max_sil_kept_ms=5), dict(hop_ms=0, min_interval_ms=0, min_length_ms=0)])
def test_inconsistent_settings_are_refused(kwargs):
    with pytest.raises(ParameterError):
        SlicerConfig(**kwargs)
