"""Long files: block-wise rendering gives the in-memory result, and memory stays bounded (10 min 40 s)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import soundfile as sf
from render_fakes import RecordingVoice

from rtsvc.params import VoiceParams
from rtsvc.render import LONG_FILE_MAX_CLIP_SECONDS, long_file_options, render_file
from rtsvc.render_core import RenderOptions

SR = 16000
#: 10 min 40 s (a multiple of the 20 s pattern): past the 10-minute threshold.
LONG_SECONDS = 640


def _write_long(path, seconds: int, stereo: bool = False) -> None:
    """Tone bursts (7 s) with 13 s pauses, plus 40 s without any pause, written block by block."""
    t_block = np.arange(20 * SR) / SR
    with sf.SoundFile(path, "w", SR, 2 if stereo else 1, subtype="PCM_16") as f:
        for k in range(seconds // 20):
            x = np.where(t_block < 7.0, 0.4 * np.sin(2 * np.pi * (200 + 10 * (k % 7)) * t_block), 0.0)
            if k % 10 == 3:  # a long stretch with no silence: clips are capped there
                x = 0.3 * np.sin(2 * np.pi * 250 * t_block)
            x = x.astype(np.float32)
            f.write(np.stack([x, 0.5 * x], 1) if stereo else x)


def test_blockwise_render_equals_in_memory_render(tmp_path):
    src = tmp_path / "song.wav"
    _write_long(src, 100, stereo=True)
    opts = RenderOptions(pad_seconds=0.2)
    params = VoiceParams()
    streamed = render_file(RecordingVoice(), src, tmp_path / "a.wav", params, options=opts,
                           long_file_seconds=60)
    assert any("block-wise" in n for n in streamed.notes) and any("downmixed 2 channels" in n for n in streamed.notes)
    whole = render_file(RecordingVoice(), src, tmp_path / "b.wav", params, options=long_file_options(opts))
    a, _ = sf.read(tmp_path / "a.wav", dtype="float32")
    b, _ = sf.read(tmp_path / "b.wav", dtype="float32")
    assert not any("block-wise" in n for n in whole.notes)
    assert len(a) == len(b) == 100 * SR
    np.testing.assert_array_equal(a, b)


def test_ten_minute_file_renders_in_bounded_memory(tmp_path):
    src = tmp_path / "long.wav"
    _write_long(src, LONG_SECONDS)
    voice = RecordingVoice()
    whole_file_bytes = LONG_SECONDS * SR * 4  # the file as float32 in memory: ~40 MB
    tracemalloc.start()
    try:
        result = render_file(voice, src, tmp_path / "out.flac", VoiceParams())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert any("block-wise" in n for n in result.notes)
    # clips of <= 30 s (+ padding) are the only large buffers: well under the whole file
    assert peak < whole_file_bytes / 3, f"peak {peak / 1e6:.1f} MB"
    assert max(n for n, _ in voice.calls) <= (LONG_FILE_MAX_CLIP_SECONDS + 2 * 0.5 + 1) * SR  # clips capped
    info = sf.info(tmp_path / "out.flac")
    assert info.frames == LONG_SECONDS * SR and info.samplerate == SR
    assert not list(tmp_path.glob("*.part"))
