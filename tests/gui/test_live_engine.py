"""Start/stop, meters, counters and recording against the real controller on the virtual clock."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf
from PySide6.QtCore import Qt

from gui_support import TEST_RATE, TEST_SECONDS


def test_start_run_record_stop(window, controller, driver, qtbot, tmp_path: Path):
    live = window.live_panel
    window.render_tab.output_dir.setText(str(tmp_path / "takes"))  # recordings go to the output folder
    assert live.start_button.text() == "Start" and not live.record.isEnabled()
    qtbot.mouseClick(live.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.bridge.last_status.running, timeout=10000)
    assert controller.running
    qtbot.waitUntil(lambda: live.start_button.text() == "Stop" and live.start_button.isEnabled())
    assert live.record.isEnabled()

    qtbot.mouseClick(live.record, Qt.MouseButton.LeftButton)
    assert window.bridge.last_status.recording
    driver.run()  # the virtual clock pushes the 1 s tone through the engine (stepped, deterministic)
    status = window.bridge.poll()
    assert status.blocks > 0
    assert live.input_meter.level_db > -10.0  # the tone peaks at -6 dBFS
    assert -20.0 < live.output_meter.level_db < live.input_meter.level_db  # echo voice at half gain
    assert "RTF" in live.performance.text() and f"late {status.late_blocks}" in live.counters.text()
    qtbot.mouseClick(live.record, Qt.MouseButton.LeftButton)
    takes = list((tmp_path / "takes").glob("rtsvc-take-*.wav"))
    assert len(takes) == 1
    info = sf.info(str(takes[0]))
    assert info.samplerate == TEST_RATE and info.frames > 0.5 * TEST_SECONDS * TEST_RATE

    qtbot.mouseClick(live.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.bridge.last_status.running, timeout=10000)
    assert not controller.running
    qtbot.waitUntil(lambda: live.start_button.text() == "Start")


def test_start_failure_is_shown_and_the_window_stays_usable(window, controller, qtbot, monkeypatch):
    from rtsvc.errors import DeviceError

    def refuse(params):
        raise DeviceError("output device 'Speakers' cannot open at 96000 Hz.", "pick another rate.")

    monkeypatch.setattr(controller.driver, "configure", refuse)
    window.show()
    qtbot.mouseClick(window.live_panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(window.banner.isVisible, timeout=10000)
    assert "cannot open at 96000 Hz" in window.banner.text.text() and "pick another rate" in window.banner.text.text()
    assert not controller.running
    qtbot.waitUntil(lambda: window.live_panel.start_button.isEnabled())
    assert window.live_panel.start_button.text() == "Start"


def test_start_stop_shortcut(window, controller, qtbot):
    window.show()
    window.windowHandle().requestActivate()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.bridge.last_status.running, timeout=10000)
    qtbot.waitUntil(lambda: not window.bridge.jobs.busy)
    qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.bridge.last_status.running, timeout=10000)
