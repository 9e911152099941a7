"""The live pitch settings: decimated dio gives the offline f0 on the frames the cache writes
(StoneMask skips the context before them), FCPE runs on one torch thread
and leaves the thread count as it found it, and dio_speed is validated."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from signals import sung_vowel

from rtsvc.engine.pitch_cache import LIVE_DIO_SPEED, context_frames, default_estimator
from rtsvc.errors import ParameterError
from rtsvc.pitch import estimate_f0

SR = 44100
HOP = 220


@pytest.mark.parametrize("f0", [110.0, 330.0])
def test_live_dio_matches_offline_dio(f0):
    x = sung_vowel(f0=f0, seconds=0.6, sr=SR)
    k = context_frames("dio", SR, HOP)
    live = default_estimator(x, SR, HOP, "dio", 0.05)[k:]
    offline = estimate_f0(x, SR, HOP, "dio")[k:]
    assert LIVE_DIO_SPEED > 1
    assert np.mean((live > 0) == (offline > 0)) > 0.98
    both = (live > 0) & (offline > 0)
    assert both.mean() > 0.8
    cents = np.abs(1200 * np.log2(live[both] / offline[both]))
    assert np.percentile(cents, 98) < 0.2 and np.max(cents) < 3.0  # the clip's last frame moves ~1 cent


def test_fcpe_runs_on_one_thread_and_restores_the_count(monkeypatch):
    seen = []
    import rtsvc.pitch as pitch

    real = pitch.estimate_f0

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(pitch, "estimate_f0", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x = sung_vowel(f0=220.0, seconds=0.2, sr=SR)
        f = default_estimator(x, SR, HOP, "fcpe", 0.05)
        assert seen == [1] and torch.get_num_threads() == 2
        assert f.shape == (len(x) // HOP,) and np.median(f[f > 0]) == pytest.approx(220.0, rel=0.03)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, 13, 2.0, True])
def test_dio_speed_is_validated(bad):
    with pytest.raises(ParameterError, match="dio_speed"):
        estimate_f0(np.zeros(4410, np.float32), SR, HOP, "dio", dio_speed=bad)
