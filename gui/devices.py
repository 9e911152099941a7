"""Audio device lists for the pickers, and the hints shown under them.

Hints (pure functions, tested without widgets):

* the output is a known virtual cable (VB-CABLE, BlackHole, a PipeWire/PulseAudio virtual
  sink or source, Loopback): the converted voice goes to another program (Discord, OBS...),
  so pick that cable as the *microphone* there and use the monitor to hear yourself;
* input and output run at different default rates: both are resampled, which adds a little
  CPU; setting one sample rate for both (in the OS mixer) avoids it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Name fragments (lower case) of virtual audio cables.
VIRTUAL_CABLE_MARKERS = ("vb-audio", "cable input", "cable output", "voicemeeter", "blackhole", "loopback",
                         "virtual", "null sink", "null-sink", "pipewire virtual", "soundflower")


@dataclass(frozen=True)
class DeviceEntry:
    """One audio device as the pickers show it.

    index: the device index the engine takes. inputs/outputs: channel counts. default_rate: Hz.
    """

    index: int
    name: str
    host_api: str
    inputs: int
    outputs: int
    default_rate: float

    @property
    def label(self) -> str:
        return f"{self.index}: {self.name} ({self.host_api})"


def entry_from_dict(d: dict[str, Any]) -> DeviceEntry:
    """One entry of ``Controller.devices()["devices"]`` (see :func:`rtsvc.engine.devices.list_devices`)."""
    return DeviceEntry(index=int(d["index"]), name=str(d["name"]), host_api=str(d["host_api"]),
                       inputs=int(d["inputs"]), outputs=int(d["outputs"]), default_rate=float(d["default_samplerate"]))


def host_apis(devices: list[DeviceEntry]) -> list[str]:
    """Host API names in first-seen order."""
    seen: list[str] = []
    for d in devices:
        if d.host_api not in seen:
            seen.append(d.host_api)
    return seen


def is_virtual_cable(name: str) -> bool:
    low = name.lower()
    return any(m in low for m in VIRTUAL_CABLE_MARKERS)


def device_hints(input_dev: DeviceEntry | None, output_dev: DeviceEntry | None, sample_rate: int | None) -> list[str]:
    """The hints to show for this choice of devices (empty when there is nothing to say)."""
    hints = []
    if output_dev is not None and is_virtual_cable(output_dev.name):
        hints.append(f"Output '{output_dev.name}' is a virtual cable: choose it as the microphone in the other "
                     "program (Discord, OBS, ...) and use the monitor device to hear yourself.")
    if sample_rate is None and input_dev is not None and output_dev is not None \
            and input_dev.default_rate and output_dev.default_rate and input_dev.default_rate != output_dev.default_rate:
        hints.append(f"Input runs at {input_dev.default_rate:g} Hz and output at {output_dev.default_rate:g} Hz: "
                     "both are resampled. Set one sample rate for both (here or in the system mixer) to save CPU.")
    return hints
