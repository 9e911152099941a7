"""The main window screenshot (docs/screenshot.png), the `rtsvc gui` command, pure helpers."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from gui_support import GOOD_MODEL, make_model_folder
from PySide6.QtGui import QImage

from rtsvc.cli import main
from rtsvc.errors import ModelFileError
from rtsvc.gui.devices import DeviceEntry, device_hints
from rtsvc.gui.model_folder import find_model_files

ROOT = Path(__file__).resolve().parents[2]
#: Set to 1 to refresh the committed screenshot.
WRITE_ENV = "RTSVC_WRITE_SCREENSHOT"

DEVICES = {
    "host_apis": [{"index": 0, "name": "ALSA", "default_input": 1, "default_output": 0, "devices": [0, 1, 2]}],
    "devices": [
        {"index": 0, "name": "USB Audio Interface", "host_api": "ALSA", "inputs": 2,
         "outputs": 2, "default_samplerate": 48000.0},
        {"index": 1, "name": "Built-in Microphone", "host_api": "ALSA", "inputs": 1,
         "outputs": 0, "default_samplerate": 44100.0},
        {"index": 2, "name": "BlackHole 2ch", "host_api": "ALSA", "inputs": 2,
         "outputs": 2, "default_samplerate": 48000.0},
    ],
}


def test_screenshot_of_the_main_window(window, controller, driver, qtbot, monkeypatch, tmp_path: Path):
    monkeypatch.setattr(controller.driver, "devices", lambda: DEVICES)
    window.request_voice(str(make_model_folder(tmp_path / "voices", "alice", GOOD_MODEL)))
    qtbot.waitUntil(lambda: not window.bridge.jobs.busy, timeout=20000)
    window.bridge.refresh_devices()
    qtbot.waitUntil(lambda: window.audio_panel.output.count() > 1, timeout=5000)
    window.audio_panel.input.setCurrentIndex(1)  # USB Audio Interface
    window.audio_panel.output.setCurrentIndex(2)  # BlackHole: the virtual cable hint appears
    assert "virtual cable" in window.audio_panel.hint.text()
    window.conversion_panel.pitch_spin.setValue(5)
    window.presets_panel.name.setText("alto lift")
    window.presets_panel.save.click()
    window.bridge.start()
    qtbot.waitUntil(lambda: window.bridge.last_status.running and not window.bridge.jobs.busy, timeout=10000)
    driver.run()
    window.bridge.poll()
    image = window.grab().toImage()
    out = tmp_path / "screenshot.png"
    assert image.save(str(out))
    assert (image.width(), image.height()) == (1280, 820)
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 20  # a drawn window, not a blank surface
    if os.environ.get(WRITE_ENV) == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        assert image.save(str(ROOT / "docs" / "screenshot.png"))
    assert QImage(str(out)).size() == image.size()


def test_gui_help_and_missing_pyside6_message(capsys, monkeypatch):
    with pytest.raises(SystemExit) as done:
        main(["gui", "--help"])
    assert done.value.code == 0
    assert "PySide6" in capsys.readouterr().out
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "PySide6" else real(name, *a))
    assert main(["gui"]) == 2
    err = capsys.readouterr().err
    assert "needs PySide6" in err and "rtsvc[gui]" in err and "Traceback" not in err


def test_find_model_files_picks_the_newest_generator_and_extras(tmp_path: Path):
    folder = make_model_folder(tmp_path, "bob", GOOD_MODEL)
    (folder / "G_2000.pth").write_bytes(b"x")
    (folder / "G_300.pth").write_bytes(b"x")
    (folder / "D_2000.pth").write_bytes(b"x")
    (folder / "kmeans_10000.pt").write_bytes(b"x")
    files = find_model_files(folder)
    assert files.generator.name == "G_2000.pth" and files.config == folder / "config.json"
    assert [p.name for p in files.extras] == ["kmeans_10000.pt"]
    assert find_model_files(folder / "G_300.pth").generator.name == "G_300.pth"  # a dropped G file is used as is
    assert find_model_files(folder / "config.json").generator.name == "G_2000.pth"
    with pytest.raises(ModelFileError, match="no config.json"):
        find_model_files(tmp_path)
    with pytest.raises(ModelFileError, match="no such file"):
        find_model_files(tmp_path / "missing")


def test_device_hints():
    usb = DeviceEntry(0, "USB Audio", "ALSA", 2, 2, 48000.0)
    mic = DeviceEntry(1, "Built-in Microphone", "ALSA", 1, 0, 44100.0)
    cable = DeviceEntry(2, "CABLE Input (VB-Audio Virtual Cable)", "MME", 0, 2, 48000.0)
    assert device_hints(usb, usb, None) == []
    assert "virtual cable" in device_hints(usb, cable, None)[0]
    rate_hint = device_hints(mic, usb, None)
    assert len(rate_hint) == 1 and "44100 Hz" in rate_hint[0] and "48000 Hz" in rate_hint[0]
    assert device_hints(mic, usb, 48000) == []  # one rate set for both: nothing to say
