"""The controller: the only way into the live engine (CLI, Qt panel, websocket server).

Typical use::

    ctl = Controller(driver=SoundDeviceDriver())         # or VirtualClockDriver(audio, rate)
    ctl.update(input_device="USB", output_device="CABLE Input", transpose=5)
    ctl.start()                                           # loads "world" if no voice is loaded
    unsubscribe = ctl.subscribe(lambda st: print(st.rtf), rate_hz=15)
    ctl.load_voice(("model.pth", "config.json"))          # loads off-thread, switches at a block
    ctl.update(transpose=7)                               # hot: next block, no click
    ctl.update(block_ms=40)                               # stream field: restarts with a fade
    ctl.start_recording("take.wav"); ...; ctl.stop_recording()
    ctl.stop()

Front ends (panel, websocket server, ``rtsvc render --streaming``) need only this class:

* parameters: :attr:`params` (frozen :class:`LiveParams`; ``params.to_dict()`` is JSON-able),
  :meth:`update` (returns the new params; ParameterError names the field);
* voices: :meth:`load_voice` ("world", a SoVITS (model, config) pair or a
  :class:`~rtsvc.engine.voices.VoiceSpec` with backend/threads/encoder/cluster/ONNX files;
  returns a Future), :attr:`voice` (``voice.describe()`` for display, also in status),
  :attr:`voice_spec` (how the current voice was loaded: hand it to ``default_voice_loader``
  to load the same voice again, e.g. for an offline render);
* state: :meth:`status` -> :class:`EngineStatus` (``to_dict()`` JSON-able, ``line()`` one-line
  text; a latency preview while stopped; pitch in ``extra``), :meth:`subscribe` (callback at
  ``rate_hz`` from a status thread, on a fixed schedule; returns unsubscribe);
* devices: :meth:`devices` ({"host_apis": [...], "devices": [...]}); presets: save/load/list/
  delete/rename_preset; recording: start_recording/stop_recording; :meth:`measure_latency`;
* offline streaming: ``drv = VirtualClockDriver(audio, rate); Controller(driver=drv, ...)``,
  ``start()``, then ``drv.run()`` returns the streamed output (stepped, deterministic).

Threading: every public method may be called from any thread (they serialise on one lock); none
runs on the audio thread. ``update`` validates before anything changes (ParameterError naming
the field; unknown names refused) and swaps the whole :class:`LiveParams`. Errors a user can cause
are :class:`rtsvc.errors.RtsvcError` subclasses.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rtsvc.engine.callbacks import AudioCallbacks
from rtsvc.engine.drivers import Driver, StreamConfig
from rtsvc.engine.layout import latency_breakdown, make_layout
from rtsvc.engine.measure import LatencyMeasurement
from rtsvc.engine.params import LiveParams
from rtsvc.engine.pipeline import Pipeline
from rtsvc.engine.pitch_cache import F0Estimator, estimator_for_device
from rtsvc.engine.recorder import Recorder
from rtsvc.engine.ringbuffer import RingBuffer
from rtsvc.engine.status import PUBLISH_POLL_SECONDS, EngineStatus, ErrorLog, build_status, next_due, stopped_preview
from rtsvc.engine.voices import VoiceLoader, VoiceSpec, default_voice_loader, parse_voice_spec
from rtsvc.engine.worker import Worker, freeze_heap
from rtsvc.errors import ParameterError, RtsvcError
from rtsvc.presets import PresetStore
from rtsvc.voice import Voice

#: Ring capacity in blocks (input and output), and at least this many seconds; the worker keeps
#: the input under two blocks, so a full ring means the worker stalled for that long.
RING_BLOCKS = 16
RING_MIN_SECONDS = 2.0
#: Fade length used when a stream restarts or stops (seconds of output muted before closing).
RESTART_FADE_SECONDS = 0.05
#: Allowed subscription rates (Hz).
SUBSCRIBE_RATE_RANGE = (0.5, 60.0)


class Controller:
    """Owns the driver, the voice, the worker and the parameters.

    driver: a :class:`Driver` (default: :class:`rtsvc.engine.sd_driver.SoundDeviceDriver`).
    params: initial :class:`LiveParams`. voice: an already loaded voice (else "world" at start).
    voice_loader: VoiceSpec -> Voice (default loads WORLD or ``rtsvc.sovits_voice``).
    estimator: f0 estimator for the pitch cache (default ``rtsvc.pitch.estimate_f0`` with the
    live settings, on the voice's device).
    presets: where presets live (default: the user config dir, see :mod:`rtsvc.presets`).
    """

    def __init__(self, driver: Driver | None = None, params: LiveParams | None = None, voice: Voice | None = None,
                 voice_loader: VoiceLoader | None = None, estimator: F0Estimator | None = None,
                 presets: PresetStore | None = None) -> None:
        if driver is None:
            from rtsvc.engine.sd_driver import SoundDeviceDriver

            driver = SoundDeviceDriver()
        self.driver = driver
        self._params = params or LiveParams()
        self._voice = voice
        self._voice_spec = VoiceSpec("world") if voice is None else None
        self._loader = voice_loader or default_voice_loader
        self._custom_estimator = estimator
        self.presets = presets or PresetStore()
        self._lock = threading.RLock()
        self._worker: Worker | None = None
        self._config: StreamConfig | None = None
        self._loading: Future | None = None
        self._errors = ErrorLog()
        self._recording: Path | None = None
        self._subs: dict[int, tuple[Callable[[EngineStatus], None], float]] = {}
        self._sub_thread: threading.Thread | None = None
        self._sub_stop = threading.Event()
        self._next_sub = 0

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._worker is not None

    def start(self) -> None:
        """Open the streams and start converting (loads the WORLD voice first if none is loaded).
        Raises DeviceError for devices that do not exist or refuse the settings."""
        with self._lock:
            if self._worker is not None:
                return
            config = self.driver.configure(self._params)  # device errors before a slow voice load
            if self._voice is None:
                self._voice = self._loader(self._voice_spec or VoiceSpec("world"))
            self._open(self._params, config)  # warms the voice and the pitch estimator up first

    def _estimator_for(self, voice: Voice) -> F0Estimator:
        """The estimator given to the constructor, else the default one on the voice's device."""
        return self._custom_estimator or estimator_for_device(getattr(voice, "device", "cpu"))

    def _open(self, params: LiveParams, config: StreamConfig | None = None) -> None:
        config = config or self.driver.configure(params)
        voice = self._voice
        layout = make_layout(params, voice.sample_rate, voice.hop_length, config.input_rate, config.output_rate,
                             config.period, voice.needs_16k)
        cap_in = int(max(RING_BLOCKS * layout.block_in, RING_MIN_SECONDS * config.input_rate)) + 4 * config.period
        cap_out = int(max(RING_BLOCKS * layout.block_out, RING_MIN_SECONDS * config.output_rate)) + layout.prefill_out + 4 * config.period
        monitor = RingBuffer(cap_out) if config.monitor_name is not None else None
        callbacks = AudioCallbacks(RingBuffer(cap_in), RingBuffer(cap_out), monitor)
        pipeline = Pipeline(voice, layout, self._estimator_for(voice))
        pipeline.warm_up(params.f0_method, params.f0_threshold)
        worker = Worker(callbacks, pipeline, params, period_in=config.period,
                        realtime=not self.driver.steps_worker)
        worker.on_block = lambda: self._errors.observe(worker)  # worker thread, after every block
        self.driver.open(config, callbacks, worker.process_available)
        if self.driver.steps_worker:
            freeze_heap()  # as start_thread does: stepped runs (benchmarks) see the live path's collector
        else:
            worker.start_thread()
        try:
            self.driver.start()
        except BaseException:
            worker.stop_thread()
            self.driver.close()
            raise
        self._worker, self._config = worker, config

    def _close(self, fade: bool) -> None:
        worker = self._worker
        if worker is None:
            return
        if fade and not self.driver.steps_worker:
            worker.muted = True
            time.sleep(RESTART_FADE_SECONDS + worker.pipeline.layout.block_seconds)
        self.driver.stop()
        worker.stop_thread()
        self.driver.close()
        self._errors.observe(worker)
        self._worker = None

    def stop(self) -> None:
        """Fade out, close the streams, finalize a running recording. Safe to call twice."""
        with self._lock:
            self._finish_recording()
            self._close(fade=True)
            self._stop_subscriptions_thread()

    # -- parameters -------------------------------------------------------------------------
    @property
    def params(self) -> LiveParams:
        """The current parameters (frozen; use :meth:`update` to change them)."""
        return self._params

    def update(self, **changes: Any) -> LiveParams:
        """Validate and apply ``changes``; returns the new :class:`LiveParams`.

        Hot fields apply at the next block. Stream fields (block size, rates, devices, ...)
        restart a running stream with a short fade; if the new stream cannot open, the old
        parameters are restored and reopened and the DeviceError is raised.
        """
        with self._lock:
            new = self._params.with_changes(**changes)
            if new.f0_method != self._params.f0_method and self._worker is not None:
                # here, not in the worker's next block: FCPE's first call loads its network (~1 s)
                self._worker.pipeline.warm_up_pitch(new.f0_method, new.f0_threshold)
            restart = self._worker is not None and bool(new.stream_changes(self._params))
            old = self._params
            self._params = new
            if self._worker is None:
                return new
            if not restart:
                self._worker.params = new
                return new
            self._close(fade=True)
            try:
                self._open(new)
            except RtsvcError:
                self._params = old
                self._open(old)
                raise
            return new

    # -- voices -----------------------------------------------------------------------------
    def load_voice(self, spec: Any, device: str = "cpu") -> Future:
        """Load a voice off-thread and switch to it at a block boundary.

        spec: "world", (model_path, config_path), {"model_path": ..., "config_path": ...} or a
        VoiceSpec. Returns a Future resolving to the loaded Voice (its exception is the loader's
        error, e.g. ModelFileError); the current voice keeps playing until the new one is ready.
        """
        vspec = parse_voice_spec(spec, device)
        fut: Future = Future()
        with self._lock:
            self._loading = fut

        def run() -> None:
            try:
                voice = self._loader(vspec)
                with self._lock:
                    params, config = self._params, self._config
                pipeline = None
                if config is not None:  # a stream is open: warm up for its layout, here, off the worker
                    pipeline = Pipeline(voice, make_layout(params, voice.sample_rate, voice.hop_length, config.input_rate,
                                                           config.output_rate, config.period, voice.needs_16k),
                                        self._estimator_for(voice))
                    pipeline.warm_up(params.f0_method, params.f0_threshold)
                self._install_voice(voice, vspec, pipeline)
                fut.set_result(voice)
            except BaseException as exc:  # reported through the future and status()
                self._errors.record(str(exc), self._worker)
                fut.set_exception(exc)

        threading.Thread(target=run, name="rtsvc-voice-loader", daemon=True).start()
        return fut

    def _install_voice(self, voice: Voice, vspec: VoiceSpec, pipeline: Pipeline | None = None) -> None:
        with self._lock:
            worker, config = self._worker, self._config
            old = self._voice
            self._voice, self._voice_spec = voice, vspec
            if worker is None or config is None:
                if old is not None and old is not voice:
                    old.close()
                return
            layout = make_layout(self._params, voice.sample_rate, voice.hop_length, config.input_rate,
                                 config.output_rate, config.period, voice.needs_16k)
            if pipeline is None or pipeline.layout != layout:  # none warmed up, or the settings changed since
                pipeline = Pipeline(voice, layout, self._estimator_for(voice))
            worker.pending_pipeline = pipeline  # the worker closes the old voice

    @property
    def voice(self) -> Voice | None:
        return self._voice

    @property
    def voice_spec(self) -> VoiceSpec | None:
        """The spec the current voice was loaded from (before start: the one :meth:`start` will
        load); None when the voice was handed to the constructor as an object."""
        return self._voice_spec

    # -- devices, status --------------------------------------------------------------------
    def devices(self) -> dict:
        """{"host_apis": [...], "devices": [...]} as listed by the driver."""
        return self.driver.devices()

    def status(self) -> EngineStatus:
        """A snapshot: running state, levels, latency breakdown (a preview while stopped),
        worker times, counters, errors, pitch."""
        with self._lock:
            worker, config = self._worker, self._config
            loading = self._loading is not None and not self._loading.done()
            latency = preview = None
            if worker is not None:
                self._errors.observe(worker)
                latency = latency_breakdown(worker.pipeline.layout, self.driver.latency_in, self.driver.latency_out)
            else:
                preview = stopped_preview(self._params, self._voice, self._voice_spec)
            return build_status(worker, config, latency, self._voice, loading, self._errors, self._recording, preview)

    def subscribe(self, callback: Callable[[EngineStatus], None], rate_hz: float = 15.0) -> Callable[[], None]:
        """Call ``callback(status)`` about ``rate_hz`` times a second from a status thread.
        Returns a function that unsubscribes. Exceptions in callbacks are swallowed and
        left in status().last_error."""
        lo, hi = SUBSCRIBE_RATE_RANGE
        if isinstance(rate_hz, bool) or not isinstance(rate_hz, (int, float)) or not lo <= rate_hz <= hi:
            raise ParameterError(f"rate_hz must be a number in [{lo:g}, {hi:g}], got {rate_hz!r}.")
        with self._lock:
            key = self._next_sub
            self._next_sub += 1
            self._subs[key] = (callback, float(rate_hz))
            if self._sub_thread is None:
                self._sub_stop.clear()
                self._sub_thread = threading.Thread(target=self._publish, name="rtsvc-status", daemon=True)
                self._sub_thread.start()

        def unsubscribe() -> None:
            with self._lock:
                self._subs.pop(key, None)

        return unsubscribe

    def _publish(self) -> None:
        due: dict[int, float] = {}
        while not self._sub_stop.wait(PUBLISH_POLL_SECONDS):
            now = time.monotonic()
            subs = list(self._subs.items())
            for key in set(due) - {key for key, _ in subs}:
                del due[key]
            snapshot = None
            for key, (cb, rate) in subs:
                if key in due and now < due[key]:
                    continue
                due[key] = next_due(due.get(key), now, rate)
                snapshot = snapshot or self.status()
                try:
                    cb(snapshot)
                except Exception as exc:  # a subscriber must not stop the others
                    self._errors.record(f"status subscriber failed: {type(exc).__name__}: {exc}", self._worker)

    def _stop_subscriptions_thread(self) -> None:
        if self._sub_thread is not None and not self._subs:
            self._sub_stop.set()
            if self._sub_thread is not threading.current_thread():
                self._sub_thread.join(1.0)
            self._sub_thread = None

    def close(self) -> None:
        """Stop everything, including status subscriptions, and release the voice."""
        self.stop()
        with self._lock:
            self._subs.clear()
            self._stop_subscriptions_thread()
            if self._voice is not None:
                self._voice.close()
                self._voice = None

    # -- presets ----------------------------------------------------------------------------
    def save_preset(self, name: str) -> Path:
        return self.presets.save(name, self._params)

    def load_preset(self, name: str) -> LiveParams:
        """Apply a saved preset (as one :meth:`update`)."""
        return self.update(**self.presets.load(name).to_dict())

    def list_presets(self) -> list[str]:
        return self.presets.list()

    def delete_preset(self, name: str) -> None:
        self.presets.delete(name)

    def rename_preset(self, old: str, new: str) -> Path:
        return self.presets.rename(old, new)

    # -- latency measurement ----------------------------------------------------------------
    def measure_latency(self, settle_seconds: float = 0.5, listen_seconds: float = 1.5) -> "LatencyMeasurement":
        """Measure the real latency with a chirp (see :mod:`rtsvc.engine.measure`); the output must
        be routed back to the input. Bypass and a lower output gain are used meanwhile, then the
        previous parameters are restored. Needs a running, wall-clock driven engine."""
        from rtsvc.engine.measure import LOOP_GAIN_DB, analyse, arm_probe

        if self._worker is None or self.driver.steps_worker:
            raise RtsvcError("cannot measure latency: the engine is not running on a real-time driver.", "start it first.")
        old = self._params
        self.update(bypass=True, output_gain_db=LOOP_GAIN_DB, threshold_db=-120.0)
        try:
            time.sleep(settle_seconds)
            worker, st = self._worker, self.status()
            probe = arm_probe(worker, st.output_rate)
            time.sleep(listen_seconds)
            lat = st.latency or {}
            result = analyse(worker, probe, st.input_rate, st.output_rate, lat.get("algorithmic_ms", 0.0),
                             lat.get("device_input_ms", 0.0) + lat.get("device_output_ms", 0.0))
            worker.capture = None
            return result
        finally:
            self.update(bypass=old.bypass, output_gain_db=old.output_gain_db, threshold_db=old.threshold_db)

    # -- recording --------------------------------------------------------------------------
    def start_recording(self, path: str | Path) -> Path:
        """Record the output (after output gain, output device rate) until stop_recording/stop."""
        with self._lock:
            if self._worker is None or self._config is None:
                raise RtsvcError("cannot record: the engine is not running.", "start the engine first.")
            self._finish_recording()
            rec = Recorder(path, self._config.output_rate)
            self._worker.recorder = rec
            self._recording = rec.path
            return rec.path

    def stop_recording(self) -> Path | None:
        """Finalize the recording (atomic rename); returns its path, or None if none was running."""
        with self._lock:
            return self._finish_recording()

    def _finish_recording(self) -> Path | None:
        worker = self._worker
        rec = worker.recorder if worker is not None else None
        if rec is None:
            return None
        worker.recorder = None
        self._recording = None
        return rec.finish()
