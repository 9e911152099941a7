"""`rtsvc devices`, `rtsvc live` and `rtsvc latency` without a sound card: device resolution,
clear errors (no traceback), and the no-device / no-PortAudio messages."""

from __future__ import annotations

import sys

import pytest

from rtsvc import cli
from rtsvc.engine import devices as devmod
from rtsvc.errors import DeviceError

LISTING = {
    "host_apis": [
        {"index": 0, "name": "ALSA", "default_input": 0, "default_output": 1, "devices": [0, 1, 2]},
        {"index": 1, "name": "JACK Audio Connection Kit", "default_input": 3, "default_output": 3, "devices": [3]},
    ],
    "devices": [
        {"index": 0, "name": "USB Mic", "host_api": "ALSA", "inputs": 1, "outputs": 0, "default_samplerate": 48000.0,
         "low_input_latency": 0.005, "low_output_latency": 0.0},
        {"index": 1, "name": "Speakers", "host_api": "ALSA", "inputs": 0, "outputs": 2, "default_samplerate": 44100.0,
         "low_input_latency": 0.0, "low_output_latency": 0.01},
        {"index": 2, "name": "USB Headset", "host_api": "ALSA", "inputs": 1, "outputs": 2, "default_samplerate": 48000.0,
         "low_input_latency": 0.005, "low_output_latency": 0.005},
        {"index": 3, "name": "system", "host_api": "JACK Audio Connection Kit", "inputs": 2, "outputs": 2,
         "default_samplerate": 48000.0, "low_input_latency": 0.005, "low_output_latency": 0.005},
    ],
}
EMPTY = {"host_apis": [{"index": 0, "name": "ALSA", "default_input": -1, "default_output": -1, "devices": []}],
         "devices": []}


def test_resolve_device_by_index_substring_default_and_host_api():
    r = devmod.resolve_device
    assert r(2, "input", listing=LISTING)["name"] == "USB Headset"
    assert r("3", "output", listing=LISTING)["name"] == "system"
    assert r("speak", "output", listing=LISTING)["index"] == 1
    assert r("usb mic", "input", listing=LISTING)["index"] == 0  # exact name wins over substring
    assert r(None, "input", host_api="jack", listing=LISTING)["index"] == 3
    with pytest.raises(DeviceError, match="ambiguous.*USB Mic.*USB Headset"):
        r("usb", "input", listing=LISTING)
    with pytest.raises(DeviceError, match="no output device matches 'cable'.*Speakers"):
        r("cable", "output", listing=LISTING)
    with pytest.raises(DeviceError, match="device 1 is not an input device"):
        r(1, "input", listing=LISTING)
    with pytest.raises(DeviceError, match="no host API matches 'wasapi'.*ALSA"):
        r(None, "input", host_api="wasapi", listing=LISTING)
    with pytest.raises(DeviceError, match="there is no input device"):
        r(None, "input", listing=EMPTY)


def test_devices_command_lists_and_says_when_there_is_nothing(monkeypatch, capsys):
    monkeypatch.setattr("rtsvc.cmd_devices.list_devices", lambda: LISTING)
    assert cli.main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "JACK Audio Connection Kit / system" in out and "USB Headset" in out
    monkeypatch.setattr("rtsvc.cmd_devices.list_devices", lambda: EMPTY)
    assert cli.main(["devices"]) == 0
    assert "No audio devices found" in capsys.readouterr().out
    assert cli.main(["devices", "--json"]) == 0
    assert '"devices": []' in capsys.readouterr().out


def test_missing_portaudio_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as without libportaudio
    assert cli.main(["devices"]) == 2
    err = capsys.readouterr().err
    assert "PortAudio is not available" in err and "libportaudio2" in err and "Traceback" not in err


def test_live_refuses_bad_input_without_traceback(monkeypatch, capsys):
    monkeypatch.setattr("rtsvc.engine.sd_driver.list_devices", lambda sd=None: LISTING)
    monkeypatch.setattr("rtsvc.engine.sd_driver.import_sounddevice", lambda: object())
    assert cli.main(["live", "-m", "model.pth"]) == 2
    assert "needs both -m" in capsys.readouterr().err
    assert cli.main(["live", "--input", "nothing-like-this"]) == 2
    err = capsys.readouterr().err
    assert "no input device matches 'nothing-like-this'" in err and "USB Mic" in err
    assert cli.main(["live", "--transpose", "99"]) == 2
    assert "transpose must be" in capsys.readouterr().err
    assert cli.main(["live", "--preset", "missing"]) == 2
    assert "no preset named 'missing'" in capsys.readouterr().err


def test_latency_command_reports_missing_devices(monkeypatch, capsys):
    monkeypatch.setattr("rtsvc.engine.sd_driver.list_devices", lambda sd=None: EMPTY)
    monkeypatch.setattr("rtsvc.engine.sd_driver.import_sounddevice", lambda: object())
    assert cli.main(["latency"]) == 2
    assert "there is no input device" in capsys.readouterr().err
