"""The ring buffer and the audio callbacks, driven directly with NumPy buffers."""

from __future__ import annotations

import numpy as np

from rtsvc.engine.callbacks import PRIMING_CALLBACKS, AudioCallbacks
from rtsvc.engine.ringbuffer import RingBuffer


def test_ring_wraps_around_and_keeps_order():
    ring = RingBuffer(10)
    out = np.zeros(7, np.float32)
    src = np.arange(100, dtype=np.float32)
    pos = 0
    got = []
    for _ in range(12):  # write 7, read 7 repeatedly: crosses the end of the array many times
        assert ring.write(src[pos : pos + 7]) == 7
        pos += 7
        assert ring.read_into(out) == 7
        got.append(out.copy())
    assert np.array_equal(np.concatenate(got), src[:84])
    assert ring.write_count == ring.read_count == 84


def test_ring_overflow_writes_only_what_fits_and_underflow_reads_what_is_there():
    ring = RingBuffer(8)
    assert ring.write(np.ones(5, np.float32)) == 5
    assert ring.write(np.full(5, 2, np.float32)) == 3  # only 3 fit
    assert ring.writable() == 0
    out = np.full(12, -1, np.float32)
    assert ring.read_into(out) == 8
    assert np.array_equal(out[:8], [1, 1, 1, 1, 1, 2, 2, 2])
    assert np.all(out[8:] == -1)  # untouched
    assert ring.read_into(out) == 0


def test_ring_skip_and_zeros():
    ring = RingBuffer(6)
    ring.write(np.arange(4, dtype=np.float32))
    assert ring.skip(3) == 1 + 2
    assert ring.write_zeros(10) == 5
    out = np.zeros(6, np.float32)
    assert ring.read_into(out) == 6
    assert np.array_equal(out, [3, 0, 0, 0, 0, 0])


def _callbacks(cap_in=16, cap_out=16, monitor=False):
    return AudioCallbacks(RingBuffer(cap_in), RingBuffer(cap_out), RingBuffer(cap_out) if monitor else None)


def test_input_callback_copies_first_channel_and_counts_overflow():
    cb = _callbacks(cap_in=10)
    block = np.stack([np.arange(6, dtype=np.float32), -np.ones(6, np.float32)], axis=1)
    cb.input_callback(block, 6, None, None)
    cb.input_callback(block, 6, None, None)  # only 4 of 6 fit
    assert cb.input.overflow_samples == 2
    out = np.zeros(10, np.float32)
    assert cb.input_ring.read_into(out) == 10
    assert np.array_equal(out, [0, 1, 2, 3, 4, 5, 0, 1, 2, 3])


def test_output_callback_underflow_plays_silence_on_all_channels_and_counts():
    cb = _callbacks(cap_out=8)
    cb.output_ring.write(np.array([0.1, 0.2, 0.3], np.float32))
    outdata = np.full((5, 2), 9.0, np.float32)
    cb.output_callback(outdata, 5, None, None)
    assert np.allclose(outdata[:, 0], [0.1, 0.2, 0.3, 0, 0])
    assert np.array_equal(outdata[:, 0], outdata[:, 1])
    assert cb.output.underflow_samples == 2 and cb.output.underflow_events == 1


def test_output_callback_wraps_around():
    cb = _callbacks(cap_out=5)
    outdata = np.zeros((3, 1), np.float32)
    played = []
    for k in range(6):
        cb.output_ring.write(np.arange(3 * k, 3 * k + 3, dtype=np.float32))
        cb.output_callback(outdata, 3, None, None)
        played.append(outdata[:, 0].copy())
    assert np.array_equal(np.concatenate(played), np.arange(18))
    assert cb.output.underflow_samples == 0


def test_priming_flags_are_not_xruns_but_later_flags_are():
    cb = _callbacks(cap_in=4096)
    block = np.zeros((4, 1), np.float32)
    for _ in range(PRIMING_CALLBACKS):
        cb.input_callback(block, 4, None, "input overflow")
    assert cb.input.xruns == 0
    cb.input_callback(block, 4, None, "input overflow")
    cb.input_callback(block, 4, None, None)
    assert cb.input.xruns == 1


def test_duplex_and_monitor_callbacks():
    cb = _callbacks(monitor=True)
    cb.output_ring.write(np.ones(4, np.float32))
    cb.monitor_ring.write(np.full(4, 0.5, np.float32))
    ind = np.full((4, 1), 0.25, np.float32)
    outd = np.zeros((4, 2), np.float32)
    cb.duplex_callback(ind, outd, 4, None, None)
    assert np.all(outd == 1.0)
    mon = np.zeros((4, 1), np.float32)
    cb.monitor_callback(mon, 4, None, None)
    assert np.all(mon == 0.5)
    got = np.zeros(4, np.float32)
    assert cb.input_ring.read_into(got) == 4 and np.all(got == 0.25)
    assert cb.output.worst_ns > 0
