"""One voice's block pipeline: resample in, window, pitch, convert, SOLA, resample out.

Built once per (voice, stream configuration), off the audio thread; the worker swaps whole
pipelines at block boundaries. Data flow per block (sizes in :class:`BlockLayout`)::

    device input --StreamResampler--> voice FIFO --block_v--> window (W) --> pitch cache
                 \\--StreamResampler--> 16 kHz FIFO ---------> window_16k (voices with needs_16k)
    window, window_16k --voice.begin_window--> early (queued first: a GPU encoder runs beside pitch)
    window, early --voice.convert_window / dry / silence--> y (block+search+crossfade) --SOLA--> block_v
    block_v --StreamResampler--> output device samples

Timeline: the pipeline's output sample j (device output rate) carries the input content of
device input position ``start_in + j * rate_in / rate_out - (search + crossfade + right)`` (voice
samples converted), so the worker can place it on the output timeline exactly.
"""

from __future__ import annotations

import numpy as np

from rtsvc.engine.layout import BlockLayout
from rtsvc.engine.pitch_cache import F0Estimator, PitchCache
from rtsvc.engine.resampling import SampleFifo, StreamResampler
from rtsvc.engine.sola import SolaJoiner
from rtsvc.params import VoiceParams
from rtsvc.voice import ENCODER_RATE, StreamWindow, Voice

#: Pitch estimator calls on a live-sized silent segment before the first block (a CUDA
#: estimator captures its graph on the third call with one shape, see rtsvc.cuda_graphs).
PITCH_WARM_UP_RUNS = 3
#: Block sources the worker can ask for.
MODES = ("voice", "dry", "silence")


class Pipeline:
    """Per-voice streaming state. voice: a loaded :class:`Voice`; layout: sizes for its rate."""

    def __init__(self, voice: Voice, layout: BlockLayout, estimator: F0Estimator) -> None:
        if layout.voice_rate != voice.sample_rate or layout.hop != voice.hop_length:
            raise ValueError("layout was made for another voice rate/hop")
        self.voice = voice
        self.layout = layout
        L = layout
        self.in_rs = StreamResampler(L.input_rate, L.voice_rate)
        self.out_rs = StreamResampler(L.voice_rate, L.output_rate)
        self.fifo = SampleFifo(4 * L.block_v)
        self.history = np.zeros(PitchCache.history_samples(L.window_v, L.block_v, L.hop, L.voice_rate), dtype=np.float32)
        self.window = self.history[len(self.history) - L.window_v :]  # view: the voice's window
        self.needs_16k = bool(voice.needs_16k)
        if self.needs_16k:
            self.in16_rs = StreamResampler(L.input_rate, ENCODER_RATE)
            self.fifo16 = SampleFifo(4 * L.block_v)
            self.window16_len = round(L.window_v * ENCODER_RATE / L.voice_rate)
            self.window16 = np.zeros(self.window16_len, dtype=np.float32)
            self.end16 = 0  # 16 kHz samples consumed into window16
        self.pitch = PitchCache(L.window_v // L.hop, L.hop, L.block_v // L.hop, estimator)
        self.sola = SolaJoiner(L.block_v, L.crossfade_v, L.search_v)
        self.consumed_v = 0  # voice-rate samples moved into the window
        self.last_mode = "silence"
        self.empty16 = np.zeros(0, dtype=np.float32)
        self.error: str | None = None  # last exception text from the voice
        #: raw input f0 (Hz, 0 = unvoiced or not estimated) of the newest frame the last block
        #: returned (the frame just before the right context); 0 for dry/silent blocks
        self.last_f0_hz = 0.0
        self._f0_index = max(0, (L.window_v - L.right_v) // L.hop - 1)

    def warm_up(self, f0_method: str, f0_threshold: float) -> None:
        """Pay the voice's and the pitch estimator's one-off costs (GPU kernels and graphs, first
        runs) with this layout's exact shapes, before the first block: the caller's thread, never
        the worker's. Failures are left for the worker's first block to report."""
        L = self.layout
        try:
            self.voice.warm_up(L.window_v, L.needed_v, L.right_v)
        except Exception:  # noqa: BLE001 - reported by the worker on its first block
            pass
        self.warm_up_pitch(f0_method, f0_threshold)

    def warm_up_pitch(self, f0_method: str, f0_threshold: float) -> None:
        """The pitch estimator's part of :meth:`warm_up` (also run when the f0 method changes):
        its model loads (FCPE's first call, ~1 s) and a GPU estimator captures its graph."""
        L = self.layout
        segment = np.zeros(self.pitch.segment_frames(len(self.history), L.voice_rate, f0_method) * L.hop, dtype=np.float32)
        for _ in range(PITCH_WARM_UP_RUNS):
            try:
                self.pitch.estimator(segment, L.voice_rate, L.hop, f0_method, f0_threshold)
            except Exception:  # noqa: BLE001 - reported by the worker on its first block
                return

    # -- input ------------------------------------------------------------------------------
    def push_input(self, x: np.ndarray) -> None:
        """x: (n,) float32 at the input device rate (gain already applied)."""
        self.fifo.push(self.in_rs.process(x))
        if self.needs_16k:
            self.fifo16.push(self.in16_rs.process(x))

    def ready(self) -> bool:
        """True when a whole block (and its 16 kHz span) is available."""
        if len(self.fifo) < self.layout.block_v:
            return False
        if self.needs_16k:
            end = self.consumed_v + self.layout.block_v
            need16 = round(end * ENCODER_RATE / self.layout.voice_rate) - self.end16
            return len(self.fifo16) >= need16
        return True

    def peek_block(self) -> np.ndarray:
        """The next block's input at the voice rate ((block_v,) view), for the noise gate."""
        return self.fifo.peek(self.layout.block_v)

    def _advance_window(self) -> np.ndarray:
        b = self.layout.block_v
        new = self.fifo.pop(b)
        h = self.history
        h[:-b] = h[b:].copy()
        h[-b:] = new
        self.consumed_v += b
        if self.needs_16k:
            end16 = round(self.consumed_v * ENCODER_RATE / self.layout.voice_rate)
            n16 = end16 - self.end16
            new16 = self.fifo16.pop(n16)
            w16 = self.window16
            if n16 >= len(w16):
                w16[:] = new16[-len(w16):]
            else:
                w16[:-n16] = w16[n16:].copy()
                w16[-n16:] = new16
            self.end16 = end16
        return new

    # -- one block --------------------------------------------------------------------------
    def next_block(self, vparams: VoiceParams, mode: str, fallback: str = "dry") -> tuple[np.ndarray, np.ndarray]:
        """Consume one block and produce its output.

        mode: "voice" (convert), "dry" (the input itself, same delay) or "silence". If the pitch
        estimator or the voice raises, the block uses ``fallback`` instead and the error text is left in ``self.error``.
        Returns (new input block (block_v,) at the voice rate, output (~block_out,) float32 at the
        output device rate).
        """
        L = self.layout
        new = self._advance_window()
        end = L.window_v - L.right_v
        self.last_f0_hz = 0.0
        if mode != "voice":
            self.pitch.advance(self.history, L.voice_rate, vparams.f0_method, vparams.f0_threshold, analyse=False)
        else:
            try:  # the pitch estimator and the voice may fail (missing weights, bad model)
                audio_16k = self.window16 if self.needs_16k else self.empty16
                early = self.voice.begin_window(self.window, audio_16k)  # a GPU voice's encoder runs beside pitch
                f0 = self.pitch.advance(self.history, L.voice_rate, vparams.f0_method, vparams.f0_threshold)
                self.last_f0_hz = float(f0[self._f0_index]) if len(f0) else 0.0
                win = StreamWindow(
                    audio=self.window, audio_16k=audio_16k, f0=f0, out_samples=L.needed_v, skip_tail=L.right_v,
                    start_frame=(self.consumed_v - L.window_v) // L.hop, early=early,
                )
                y = np.asarray(self.voice.convert_window(win, vparams), dtype=np.float32)
                if y.shape != (L.needed_v,):
                    raise RuntimeError(f"voice {self.voice.name!r} returned {y.shape} samples, expected ({L.needed_v},)")
            except Exception as exc:  # a failing voice must not stop the audio
                self.error = f"{type(exc).__name__}: {exc}"
                mode = fallback
        if mode == "dry":
            y = self.window[end - L.needed_v : end]
        elif mode == "silence":
            y = np.zeros(L.needed_v, dtype=np.float32)
        switching = mode != self.last_mode
        self.last_mode = mode
        joined = self.sola.join(y, align=not switching and mode != "silence")
        return new, self.out_rs.process(joined)

    def flush_tail(self) -> np.ndarray:
        """The pending crossfade tail faded out, at the output rate (when this pipeline is retired)."""
        from rtsvc.engine.sola import equal_power_curves

        fade_out, _ = equal_power_curves(len(self.sola.tail))
        return self.out_rs.process(self.sola.tail * fade_out)
