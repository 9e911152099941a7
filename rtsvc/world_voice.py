"""The built-in voice: WORLD analysis/resynthesis with pitch and formant shift.

Needs no downloaded weights (FCPE's weights ship inside the torchfcpe wheel), so a new user hears
something at once and the live engine has a light backend.

Per frame (hop ``hop_length`` samples at ``sample_rate``)::

    audio --estimate_f0 (FCPE)--> f0 --shift by 2^(transpose/12)-----------------> f0'
          --CheapTrick(f0)-----> spectral envelope sp(f) --warp f -> f / r------> sp'
          --D4C(f0)------------> aperiodicity ap -------------------------------> ap
                                                      WORLD synthesis(f0', sp', ap) -> audio'

with r = 2^(formant/12): r > 1 moves formants up (a smaller vocal tract), r < 1 down. Unvoiced
frames (f0 = 0) stay unvoiced and are resynthesised from their envelope as noise, unshifted in
pitch but with the same formant warp.

Live (``convert_window`` with ``window.start_frame`` set) the analysis is incremental: a
per-stream :class:`WorldStreamCache` keeps sp/ap per absolute frame. Each block analyses only

* frames whose analysis reach (CheapTrick: 1.5 periods, D4C: 2.25 periods around the frame) is
  inside the audio received so far and that are new (or whose f0 moved by more than
  :data:`F0_REUSE_TOLERANCE`): these are final, the same as the offline analysis;
* the newest frames whose reach is not complete yet: their envelope (CheapTrick, cheap) is
  analysed on what has arrived, like the offline analysis at a clip's end; their aperiodicity
  (D4C, ~1 ms per frame) holds the newest final voiced frame's (at a voicing onset, when there
  is nothing to hold, D4C runs on the first of them and the others hold that);

Aperiodicity changes slowly and D4C is the costly analysis (~1 ms per frame at 44.1 kHz), so
offline and live alike D4C analyses a voiced frame only when its absolute index is even or the
frame before it is unvoiced; every other voiced frame holds the aperiodicity of the frame
before it (a 10 ms aperiodicity grid under the 5 ms envelope grid). Unvoiced frames take D4C's
unvoiced row without running it (D4C returns that constant row for f0 = 0).

Synthesis runs unvoiced frames as noise pulses at :data:`UNVOICED_PULSE_HZ`.

Live, it synthesises only the frames the returned samples depend on (the output plus
:data:`SYNTHESIS_MARGIN_SECONDS` of pulse-response tail before it). Without ``start_frame``
(or when the window does not continue the cached stream) the whole window is analysed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from rtsvc._pyworld import import_pyworld
from rtsvc.params import VoiceParams
from rtsvc.pitch import estimate_f0
from rtsvc.voice import StreamWindow, Voice

#: Default rate of the built-in voice (Hz).
WORLD_SAMPLE_RATE = 44100
#: Samples per analysis frame at 44.1 kHz: 220 samples = 4.99 ms, WORLD's usual 5 ms frame.
WORLD_HOP = 220
#: CheapTrick's lowest f0 (Hz); it also sets the FFT size.
WORLD_F0_FLOOR = 71.0
#: D4C voicing threshold: 0 keeps every frame the pitch estimator called voiced voiced.
D4C_THRESHOLD = 0.0
#: How far (in pitch periods) each analysis reads around a frame: CheapTrick's 3-period Hann
#: window, D4C's 4-period Blackman windows centred a quarter period either side of the frame.
CHEAPTRICK_REACH_PERIODS = 1.5
D4C_REACH_PERIODS = 2.25
#: D4C analyses every D4C_STRIDE-th voiced frame (and each voicing onset); see the module docstring.
D4C_STRIDE = 2
#: Lowest f0 D4C analyses with (Hz): lower f0 is raised to this, so its reach is bounded.
D4C_F0_FLOOR = 40.0
#: Samples added to each reach for WORLD's rounding of window lengths and positions.
REACH_MARGIN_SAMPLES = 4
#: A cached frame is reused while its f0 stays within this relative distance of the f0 it was
#: analysed with (the live pitch cache re-estimates recent frames each block with more context;
#: envelopes barely change with such small moves). Voicing changes always re-analyse.
F0_REUSE_TOLERANCE = 0.01
#: Pulse rate (Hz) of unvoiced frames in synthesis. WORLD synthesises f0 = 0 frames as noise
#: pulses at 500 Hz; a voiced f0 with D4C's all-aperiodic row (ratio > 0.999 turns the periodic
#: response off) gives the same noise spectrum from 2.5x fewer pulses. Unvoiced blocks were the
#: live worst case (11 ms per 15 ms block at 500 Hz).
UNVOICED_PULSE_HZ = 200.0
#: Live synthesis starts this long before the returned samples, so that the pulses before them
#: ring into them: WORLD's minimum-phase pulse responses of vowel envelopes have lost > 40 dB of
#: their energy after 11.6 ms (512 samples at 44.1 kHz; -32 dB after 8.7 ms, -87 dB after 23 ms).
SYNTHESIS_MARGIN_SECONDS = 0.0116
#: Audio the stream cache keeps before the window, seconds (left reach of the oldest frames).
STREAM_HISTORY_SECONDS = 0.1


@lru_cache(maxsize=16)
def _warp_map(n_bins: int, ratio: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source positions for warping an envelope along frequency by ``ratio``.

    Output bin k takes the input envelope at bin k / ratio (linear interpolation between bins
    lo and lo + 1 with weight w); positions beyond the last bin hold the last bin.
    """
    pos = np.minimum(np.arange(n_bins, dtype=np.float64) / ratio, n_bins - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n_bins - 1)
    return lo, hi, pos - lo


def warp_envelope(sp: np.ndarray, ratio: float) -> np.ndarray:
    """Warp spectral envelopes along frequency. sp: (frames, bins) power; returns the same shape.

    Interpolates in the log domain so formant peaks keep their shape.
    """
    if ratio == 1.0:
        return sp
    lo, hi, w = _warp_map(sp.shape[1], float(ratio))
    log_sp = np.log(np.maximum(sp, 1e-16))
    return np.ascontiguousarray(np.exp(log_sp[:, lo] * (1.0 - w) + log_sp[:, hi] * w))


class WorldStreamCache:
    """Analysis state of one live stream on the absolute frame grid (see the module docstring).

    audio: (m,) float64 input received so far (the last window plus up to
    STREAM_HISTORY_SECONDS before it), audio[0] at absolute sample ``audio_start``.
    Rows of f0/sp/ap/final belong to absolute frames ``first``, ``first + 1``, ...:
    f0 (rows,) Hz the row was analysed with; sp, ap (rows, bins); final (rows,) bool, True when
    the row's analysis reach was complete (it never changes while its f0 stays put).
    """

    def __init__(self, audio: np.ndarray, audio_start: int, bins: int) -> None:
        self.audio = audio
        self.audio_start = int(audio_start)
        self.first = 0
        self.f0 = np.zeros(0, dtype=np.float64)
        self.sp = np.zeros((0, bins), dtype=np.float64)
        self.ap = np.zeros((0, bins), dtype=np.float64)
        self.final = np.zeros(0, dtype=bool)

    @property
    def audio_end(self) -> int:
        return self.audio_start + len(self.audio)

    def continue_with(self, audio: np.ndarray, start: int, keep: int) -> bool:
        """Append a window ((n,) float32 starting at absolute sample ``start``) if it continues the
        stored audio (overlapping samples equal); keep at most ``keep`` samples. False if not."""
        end = start + len(audio)
        if not (self.audio_start <= start <= self.audio_end <= end):
            return False
        overlap = self.audio_end - start
        if not np.array_equal(self.audio[len(self.audio) - overlap :], audio[:overlap]):
            return False
        merged = np.concatenate((self.audio, audio[overlap:].astype(np.float64)))
        cut = max(0, len(merged) - keep)
        self.audio = merged[cut:]
        self.audio_start += cut
        return True

    def rows_for(self, first: int, count: int) -> None:
        """Re-index the rows to frames first .. first + count - 1, keeping what overlaps."""
        bins = self.sp.shape[1]
        f0 = np.zeros(count, dtype=np.float64)
        sp = np.zeros((count, bins), dtype=np.float64)
        ap = np.zeros((count, bins), dtype=np.float64)
        final = np.zeros(count, dtype=bool)
        lo, hi = max(first, self.first), min(first + count, self.first + len(self.f0))
        if hi > lo:
            src, dst = slice(lo - self.first, hi - self.first), slice(lo - first, hi - first)
            f0[dst], sp[dst], ap[dst], final[dst] = self.f0[src], self.sp[src], self.ap[src], self.final[src]
        self.first, self.f0, self.sp, self.ap, self.final = first, f0, sp, ap, final


class WorldVoice(Voice):
    """WORLD resynthesis with pitch shift (semitones) and formant shift (semitones)."""

    needs_16k = False

    def __init__(self, sample_rate: int = WORLD_SAMPLE_RATE, hop_length: int | None = None, device: str = "cpu"):
        self.pw = import_pyworld()
        self.name = "world"
        self.sample_rate = int(sample_rate)
        self.hop_length = int(hop_length or round(WORLD_HOP * self.sample_rate / WORLD_SAMPLE_RATE))
        self.speakers = ("world",)
        self.device = device
        self.fft_size = int(self.pw.get_cheaptrick_fft_size(self.sample_rate, WORLD_F0_FLOOR))
        self._stream: WorldStreamCache | None = None
        self._history = round(STREAM_HISTORY_SECONDS * self.sample_rate)
        self._synthesis_margin = round(SYNTHESIS_MARGIN_SECONDS * self.sample_rate)
        # D4C's aperiodicity of an unvoiced frame (a constant row, ~1 everywhere)
        probe = np.zeros(4 * self.hop_length, dtype=np.float64)
        self._unvoiced_ap = self.pw.d4c(probe, np.zeros(1), np.zeros(1), self.sample_rate,
                                        threshold=D4C_THRESHOLD, fft_size=self.fft_size)[0].copy()

    # -- analysis / synthesis --------------------------------------------------------------
    def _frame_f0(self, f0: np.ndarray, frames: int) -> np.ndarray:
        """Raw f0 ((m,) Hz) -> (frames,) float64: cut or extended by holding the last value; NaN/inf -> 0."""
        f0 = np.asarray(f0, dtype=np.float64)
        f0_full = np.zeros(frames, dtype=np.float64)
        f0_full[: min(len(f0), frames)] = f0[:frames]
        if len(f0) and len(f0) < frames:
            f0_full[len(f0):] = f0[-1]
        f0_full[~np.isfinite(f0_full)] = 0.0
        return f0_full

    def _synthesize(self, f0: np.ndarray, sp: np.ndarray, ap: np.ndarray, params: VoiceParams) -> np.ndarray:
        """Frames ((k,) Hz, (k, bins) x2) -> ((k - 1) * hop + 1,) float64, shifted and warped."""
        f0_out = f0 * (2.0 ** (params.transpose / 12.0))
        # unvoiced frames: noise pulses at UNVOICED_PULSE_HZ (their all-aperiodic rows silence the
        # periodic part) instead of WORLD's 500 Hz for f0 = 0
        f0_out[f0_out <= 0] = UNVOICED_PULSE_HZ
        sp = warp_envelope(np.ascontiguousarray(sp), 2.0 ** (params.formant / 12.0))
        return self.pw.synthesize(f0_out, sp, np.ascontiguousarray(ap), self.sample_rate,
                                  frame_period=1000.0 * self.hop_length / self.sample_rate)

    @staticmethod
    def _d4c_anchors(voiced: np.ndarray, first: int) -> np.ndarray:
        """(k,) bool voicing of absolute frames first.. -> (k,) bool: the frames D4C analyses
        (voiced, and an even absolute index or an unvoiced frame before; row 0 always)."""
        before = np.concatenate(([False], voiced[:-1]))
        on_grid = (first + np.arange(len(voiced))) % D4C_STRIDE == 0
        anchor = voiced & (on_grid | ~before)
        anchor[:1] = voiced[:1]
        return anchor

    @staticmethod
    def _hold_aperiodicity(ap: np.ndarray, hold: np.ndarray) -> None:
        """ap: (k, bins); hold: (k,) bool rows (never row 0) that copy the row before them.
        With D4C_STRIDE = 2 the row before a held row is always an analysed one."""
        rows = np.flatnonzero(hold)
        if len(rows):
            ap[rows] = ap[rows - 1]

    def _resynthesize(self, audio: np.ndarray, f0: np.ndarray, params: VoiceParams) -> np.ndarray:
        """audio: (n,) float32; f0: (n // hop,) Hz. Returns (n,) float32."""
        n = len(audio)
        hop = self.hop_length
        frames = n // hop + 1
        f0_full = self._frame_f0(f0, frames)
        t = np.arange(frames, dtype=np.float64) * hop / self.sample_rate
        x = audio.astype(np.float64)
        pw = self.pw
        sp = pw.cheaptrick(x, f0_full, t, self.sample_rate, fft_size=self.fft_size)
        voiced = f0_full > 0
        anchor = self._d4c_anchors(voiced, 0)
        ap = np.tile(self._unvoiced_ap, (frames, 1))
        rows = np.flatnonzero(anchor)
        if len(rows):
            ap[rows] = pw.d4c(x, f0_full[rows], t[rows], self.sample_rate, threshold=D4C_THRESHOLD, fft_size=self.fft_size)
        self._hold_aperiodicity(ap, voiced & ~anchor)
        y = self._synthesize(f0_full, sp, ap, params)
        out = np.zeros(n, dtype=np.float32)
        m = min(n, len(y))
        out[:m] = y[:m]
        return out

    def convert(self, audio: np.ndarray, params: VoiceParams, f0: np.ndarray | None = None) -> np.ndarray:
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if f0 is None:
            f0 = estimate_f0(
                audio, self.sample_rate, self.hop_length, params.f0_method,
                threshold=params.f0_threshold, device=self.device,
            )
        return self._resynthesize(audio, f0, params)

    def convert_window(self, window: StreamWindow, params: VoiceParams) -> np.ndarray:
        audio = np.ascontiguousarray(window.audio, dtype=np.float32)
        if window.start_frame is None:
            y = self._resynthesize(audio, window.f0, params)
        else:
            y = self._convert_incremental(audio, window, params)
        end = len(y) - window.skip_tail
        return y[end - window.out_samples : end]

    # -- live: incremental analysis -----------------------------------------------------------
    def reset_stream(self) -> None:
        """Forget the live analysis cache (the next window starts a new stream)."""
        self._stream = None

    def _reach(self, f0: np.ndarray) -> np.ndarray:
        """(k,) Hz -> (k,) int64 samples each frame's analyses read on either side of it."""
        sr = self.sample_rate
        ct = CHEAPTRICK_REACH_PERIODS * sr / np.maximum(f0, WORLD_F0_FLOOR)
        ct = np.where(f0 > 0, ct, CHEAPTRICK_REACH_PERIODS * sr / WORLD_F0_FLOOR)
        d4c = np.where(f0 > 0, D4C_REACH_PERIODS * sr / np.maximum(f0, D4C_F0_FLOOR), 0.0)
        return np.ceil(np.maximum(ct, d4c)).astype(np.int64) + REACH_MARGIN_SAMPLES

    def _stream_for(self, audio: np.ndarray, start: int) -> WorldStreamCache:
        keep = len(audio) + self._history
        st = self._stream
        if st is None or not st.continue_with(audio, start, keep):
            st = WorldStreamCache(audio.astype(np.float64), start, self.fft_size // 2 + 1)
            self._stream = st
        return st

    def _convert_incremental(self, audio: np.ndarray, window: StreamWindow, params: VoiceParams) -> np.ndarray:
        """Like :meth:`_resynthesize` on the window, reusing the stream's final frames."""
        n, hop, sr = len(audio), self.hop_length, self.sample_rate
        frames = n // hop + 1  # frame `frames - 1` sits on the window's last sample + 1, as offline
        first = int(window.start_frame)
        st = self._stream_for(audio, first * hop)
        st.rows_for(first, frames)
        f0 = self._frame_f0(window.f0, frames)
        pos = (first + np.arange(frames, dtype=np.int64)) * hop  # absolute sample of each frame
        complete = pos + self._reach(f0) <= st.audio_end - 1
        voiced = f0 > 0
        same = (voiced == (st.f0 > 0)) & (np.abs(f0 - st.f0) <= F0_REUSE_TOLERANCE * st.f0)
        valid = st.final & same
        new_final = complete & ~valid
        provisional = ~complete  # analysed on what has arrived; recomputed next block
        # aperiodicity of final frames: D4C on anchors, held rows copy the row before them;
        # of provisional voiced frames: hold the newest final voiced frame before them, or at a
        # voicing onset (none before) D4C the first provisional voiced frame and hold that
        anchor = self._d4c_anchors(voiced, first)
        final_now = valid | new_final
        final_voiced = np.flatnonzero(final_now & voiced)
        prov_voiced = np.flatnonzero(provisional & voiced)
        onset = prov_voiced[prov_voiced < final_voiced[0]] if len(final_voiced) else prov_voiced
        sp_rows = np.flatnonzero(new_final | provisional)
        ap_rows = np.flatnonzero(new_final & anchor)
        ap_rows = np.union1d(ap_rows, onset[:1])
        x = st.audio
        t = (pos - st.audio_start) / sr
        if len(sp_rows):
            st.sp[sp_rows] = self.pw.cheaptrick(x, f0[sp_rows], t[sp_rows], sr, fft_size=self.fft_size)
        if len(ap_rows):
            st.ap[ap_rows] = self.pw.d4c(x, f0[ap_rows], t[ap_rows], sr, threshold=D4C_THRESHOLD, fft_size=self.fft_size)
        st.ap[(new_final | provisional) & ~voiced] = self._unvoiced_ap
        self._hold_aperiodicity(st.ap, final_now & voiced & ~anchor)
        st.f0[:] = f0
        st.final = final_now
        for k in prov_voiced:  # after the new final rows are in place
            src = final_voiced[final_voiced < k]
            st.ap[k] = st.ap[src[-1] if len(src) else onset[0]]
        # synthesis: the returned samples and the pulse-response tail reaching into them
        out_start = n - window.skip_tail - window.out_samples
        a = max(0, (out_start - self._synthesis_margin) // hop - 1)
        y = self._synthesize(f0[a:], st.sp[a:], st.ap[a:], params)
        out = np.zeros(n, dtype=np.float32)
        m = min(n - a * hop, len(y))
        out[a * hop : a * hop + m] = y[:m]
        return out

    def describe(self) -> dict:
        d = super().describe()
        d.update(kind="world", backend="pyworld", fft_size=self.fft_size)
        return d
