"""The real driver: PortAudio streams through sounddevice.

Input and output may be different devices at different rates (the worker resamples both ways).
When input and output are the same device at one rate, one duplex stream is opened (one clock,
no drift). A monitor device gets its own output stream at the output rate. Streams use
PortAudio's host-chosen period (blocksize 0) and 'low' latency; the latency PortAudio reports
for the open streams is :attr:`latency_in` / :attr:`latency_out`.
"""

from __future__ import annotations

from typing import Any, Callable

from rtsvc.engine.callbacks import AudioCallbacks
from rtsvc.engine.devices import import_sounddevice, list_devices, resolve_device
from rtsvc.engine.drivers import Driver, StreamConfig
from rtsvc.engine.params import LiveParams
from rtsvc.errors import DeviceError

#: Output channels opened (mono is copied to each); virtual cables are usually stereo.
MAX_OUTPUT_CHANNELS = 2
#: Period assumed for the queue-age bound when the device reports no low latency (frames).
FALLBACK_PERIOD = 512


class SoundDeviceDriver(Driver):
    """Opens sounddevice streams for the devices named in :class:`LiveParams`."""

    steps_worker = False

    def __init__(self) -> None:
        self.sd: Any = None
        self.streams: list[Any] = []
        self._ids: tuple[int, int, int | None] = (-1, -1, None)
        self._channels: tuple[int, int] = (1, 1)
        self.latency_in = self.latency_out = 0.0

    def _sd(self) -> Any:
        if self.sd is None:
            self.sd = import_sounddevice()
        return self.sd

    def devices(self) -> dict:
        return list_devices(self._sd())

    def configure(self, params: LiveParams) -> StreamConfig:
        sd = self._sd()
        listing = list_devices(sd)
        din = resolve_device(params.input_device, "input", params.host_api, listing)
        dout = resolve_device(params.output_device, "output", params.host_api, listing)
        dmon = None
        if params.monitor_device is not None:
            dmon = resolve_device(params.monitor_device, "output", params.host_api, listing)
        in_rate = int(params.sample_rate or din["default_samplerate"])
        out_rate = int(params.sample_rate or dout["default_samplerate"])
        out_ch = min(MAX_OUTPUT_CHANNELS, dout["outputs"])
        self._check(lambda: sd.check_input_settings(device=din["index"], channels=1, dtype="float32", samplerate=in_rate),
                    din, in_rate)
        self._check(lambda: sd.check_output_settings(device=dout["index"], channels=out_ch, dtype="float32", samplerate=out_rate),
                    dout, out_rate)
        if dmon is not None:
            self._check(lambda: sd.check_output_settings(device=dmon["index"], channels=1, dtype="float32", samplerate=out_rate),
                        dmon, out_rate)
        self._ids = (din["index"], dout["index"], dmon["index"] if dmon else None)
        self._channels = (1, out_ch)
        period = round(max(din["low_input_latency"], 0.0) * in_rate) or FALLBACK_PERIOD
        return StreamConfig(in_rate, out_rate, int(period), din["name"], dout["name"],
                            dmon["name"] if dmon else None, din["host_api"])

    @staticmethod
    def _check(check: Callable[[], None], dev: dict, rate: int) -> None:
        try:
            check()
        except Exception as exc:  # PortAudioError / ValueError from sounddevice
            raise DeviceError(f"device {dev['index']} ({dev['name']}) refuses {rate} Hz mono float32: {exc}.",
                              "pick another --sample-rate (the device default is "
                              f"{dev['default_samplerate']:g} Hz) or another device.") from None

    def open(self, config: StreamConfig, callbacks: AudioCallbacks, step: Callable[[], int]) -> None:
        sd = self._sd()
        din, dout, dmon = self._ids
        try:
            if din == dout and config.input_rate == config.output_rate:
                self.streams = [sd.Stream(device=(din, dout), channels=self._channels, samplerate=config.input_rate,
                                          dtype="float32", latency="low", callback=callbacks.duplex_callback)]
                self.latency_in, self.latency_out = self.streams[0].latency
            else:
                si = sd.InputStream(device=din, channels=1, samplerate=config.input_rate, dtype="float32",
                                    latency="low", callback=callbacks.input_callback)
                so = sd.OutputStream(device=dout, channels=self._channels[1], samplerate=config.output_rate,
                                     dtype="float32", latency="low", callback=callbacks.output_callback)
                self.streams = [si, so]
                self.latency_in, self.latency_out = float(si.latency), float(so.latency)
            if dmon is not None:
                self.streams.append(sd.OutputStream(device=dmon, channels=1, samplerate=config.output_rate,
                                                    dtype="float32", latency="low", callback=callbacks.monitor_callback))
        except Exception as exc:
            self.close()
            raise DeviceError(f"cannot open the audio streams ({exc}).", "check the devices with 'rtsvc devices'.") from None

    def start(self) -> None:
        try:
            for s in self.streams:
                s.start()
        except Exception as exc:
            self.close()
            raise DeviceError(f"cannot start the audio streams ({exc}).", "check the devices with 'rtsvc devices'.") from None

    def stop(self) -> None:
        for s in self.streams:
            try:
                s.stop()
            except Exception:  # stopping a dead stream must not hide the real error
                pass

    def close(self) -> None:
        for s in self.streams:
            try:
                s.close()
            except Exception:
                pass
        self.streams = []
