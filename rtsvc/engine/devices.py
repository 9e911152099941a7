"""Audio devices through sounddevice/PortAudio: listing and resolving user device specs.

A device is given by index or by a case-insensitive name substring, optionally restricted to a
host API (``--host-api JACK``). Problems are :class:`DeviceError` with the list of what exists.
"""

from __future__ import annotations

from typing import Any

from rtsvc.errors import DeviceError

KINDS = ("input", "output")


def import_sounddevice() -> Any:
    """sounddevice, or DeviceError when PortAudio is missing."""
    try:
        import sounddevice as sd
    except (OSError, ImportError) as exc:
        raise DeviceError(
            f"PortAudio is not available ({exc}).",
            "install it: Debian/Ubuntu 'sudo apt install libportaudio2', Fedora 'sudo dnf install portaudio', "
            "macOS/Windows: 'pip install --force-reinstall sounddevice' (its wheel bundles PortAudio).",
        ) from None
    return sd


def list_devices(sd: Any | None = None) -> dict:
    """{"host_apis": [{index, name, default_input, default_output, devices}],
    "devices": [{index, name, host_api, inputs, outputs, default_samplerate,
    low_input_latency, low_output_latency}]} (empty lists when there is no device at all)."""
    sd = sd or import_sounddevice()
    apis = [
        {"index": i, "name": a["name"], "default_input": a["default_input_device"],
         "default_output": a["default_output_device"], "devices": list(a["devices"])}
        for i, a in enumerate(sd.query_hostapis())
    ]
    devs = [
        {"index": i, "name": d["name"], "host_api": apis[d["hostapi"]]["name"], "inputs": d["max_input_channels"],
         "outputs": d["max_output_channels"], "default_samplerate": d["default_samplerate"],
         "low_input_latency": d["default_low_input_latency"], "low_output_latency": d["default_low_output_latency"]}
        for i, d in enumerate(sd.query_devices())
    ]
    return {"host_apis": apis, "devices": devs}


def _describe(devs: list[dict], kind: str) -> str:
    key = "inputs" if kind == "input" else "outputs"
    usable = [f"{d['index']}: {d['name']} ({d['host_api']})" for d in devs if d[key] > 0]
    return "; ".join(usable) if usable else f"no {kind} devices at all"


def resolve_host_api(spec: str | None, listing: dict) -> dict | None:
    """The host API whose name contains ``spec`` (case-insensitive), or None for any."""
    if spec is None:
        return None
    hits = [a for a in listing["host_apis"] if spec.lower() in a["name"].lower()]
    if len(hits) == 1:
        return hits[0]
    names = ", ".join(a["name"] for a in listing["host_apis"]) or "none"
    if not hits:
        raise DeviceError(f"no host API matches {spec!r} (host APIs here: {names}).", "pick one of the listed names (rtsvc devices).")
    raise DeviceError(f"host API {spec!r} is ambiguous: {', '.join(a['name'] for a in hits)}.", "give more of the name.")


def resolve_device(spec: str | int | None, kind: str, host_api: str | None = None, listing: dict | None = None) -> dict:
    """The device dict (see :func:`list_devices`) for ``spec``: index, name substring or None
    (the default device of the host API, or the system default). DeviceError if none or several."""
    listing = listing or list_devices()
    devs = listing["devices"]
    key = "inputs" if kind == "input" else "outputs"
    api = resolve_host_api(host_api, listing)
    pool = [d for d in devs if d[key] > 0 and (api is None or d["host_api"] == api["name"])]
    where = f" on {api['name']}" if api else ""
    if not pool:
        raise DeviceError(f"there is no {kind} device{where} (devices: {_describe(devs, kind)}).",
                          "connect a device, start the audio server (JACK/PipeWire), or pick another --host-api.")
    if spec is None:
        default = api[f"default_{kind}"] if api else _system_default(kind)
        hits = [d for d in pool if d["index"] == default] or pool[:1]
        return hits[0]
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        idx = int(spec)
        hits = [d for d in pool if d["index"] == idx]
        if not hits:
            raise DeviceError(f"device {idx} is not an {kind} device{where} ({kind} devices: {_describe(pool, kind)}).",
                              "pick an index from 'rtsvc devices'.")
        return hits[0]
    exact = [d for d in pool if d["name"].lower() == spec.lower()]
    hits = exact or [d for d in pool if spec.lower() in d["name"].lower()]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise DeviceError(f"no {kind} device{where} matches {spec!r} ({kind} devices: {_describe(pool, kind)}).",
                          "give an index or part of a name from 'rtsvc devices'.")
    raise DeviceError(f"{kind} device {spec!r} is ambiguous{where}: {_describe(hits, kind)}.",
                      "give the index, more of the name, or --host-api.")


def _system_default(kind: str) -> int:
    """PortAudio's default device index for ``kind`` (-1 if none)."""
    pair = import_sounddevice().default.device
    idx = pair[0 if kind == "input" else 1]
    return int(idx) if idx is not None else -1
