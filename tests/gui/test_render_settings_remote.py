"""Render tab, remembered settings, remote control toggle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from gui_support import GOOD_MODEL, TEST_RATE, make_model_folder, tone
from PySide6.QtCore import Qt

from rtsvc.gui.main_window import MainWindow
from rtsvc.remote.client import RemoteClient


def test_render_tab_renders_a_file(window, qtbot, tmp_path: Path, opened_folders: list[Path]):
    src = tmp_path / "in" / "take.wav"
    src.parent.mkdir()
    sf.write(str(src), tone(0.5), TEST_RATE)
    tab = window.render_tab
    tab.add_paths([str(src)])
    tab.output_dir.setText(str(tmp_path / "out"))
    tab.open_when_done.setChecked(True)
    window.conversion_panel.pitch_spin.setValue(2)
    qtbot.mouseClick(tab.render_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: opened_folders == [tmp_path / "out"], timeout=20000)
    outputs = list((tmp_path / "out").glob("*.wav"))
    assert [p.name for p in outputs] == ["take_2key_world_fcpe.wav"]  # so-vits-svc style name, pitch from the panel
    audio, rate = sf.read(str(outputs[0]), dtype="float32")
    assert rate == TEST_RATE and len(audio) == len(tone(0.5))
    np.testing.assert_allclose(audio, 0.5 * tone(0.5), atol=1e-4)  # the echo voice halves the input
    assert tab.table.cellWidget(0, 1).value() == 100
    assert tab.table.item(0, 2).text().startswith("take_2key_world_fcpe.wav")


def test_render_tab_reports_an_unreadable_file_per_row(window, qtbot, tmp_path: Path):
    bad = tmp_path / "broken.wav"
    bad.write_text("not audio")
    tab = window.render_tab
    tab.add_paths([str(bad)])
    tab.output_dir.setText(str(tmp_path / "out"))
    qtbot.mouseClick(tab.render_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.table.item(0, 2).text().startswith("failed"), timeout=20000)
    assert "broken.wav" in tab.table.item(0, 2).text()
    assert not list((tmp_path / "out").glob("*.wav")) if (tmp_path / "out").exists() else True


def test_settings_are_remembered_between_runs(qtbot, controller, config_dir: Path, tmp_path: Path):
    folder = make_model_folder(tmp_path / "voices", "alice", GOOD_MODEL)
    first = MainWindow(controller, config_dir / "gui.json")
    qtbot.addWidget(first)
    first.conversion_panel.pitch_spin.setValue(-5)
    first.render_tab.output_dir.setText(str(tmp_path / "renders"))
    first.request_voice(str(folder))
    qtbot.waitUntil(lambda: not first.bridge.jobs.busy and controller.voice is not None, timeout=20000)
    first.shutdown()
    assert (config_dir / "gui.json").is_file()

    controller.update(transpose=0)
    second = MainWindow(controller, config_dir / "gui.json")
    qtbot.addWidget(second)
    qtbot.waitUntil(lambda: not second.bridge.jobs.busy, timeout=20000)
    assert controller.params.transpose == -5 and second.conversion_panel.pitch_spin.value() == -5
    assert second.render_tab.output_dir.text() == str(tmp_path / "renders")
    assert second.settings.recent_voices == [str(folder)]
    assert second.voice_spec == (str(folder / "G_100.pth"), str(folder / "config.json"))
    second.shutdown()


def test_broken_settings_file_is_a_message_and_defaults(qtbot, controller, config_dir: Path):
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "gui.json").write_text('{"voice": "world", "colour": "blue"}')
    w = MainWindow(controller, config_dir / "gui.json")
    qtbot.addWidget(w)
    w.show()
    assert w.banner.isVisible() and "colour" in w.banner.text.text()
    w.shutdown()


def test_remote_control_toggle_shows_the_address_and_drives_the_panel(window, controller, qtbot):
    rp = window.remote_panel
    rp.port.setValue(0)  # any free port
    rp.enabled.setChecked(True)
    assert rp.server is not None, window.banner.text.text()
    url = rp.address.text().split()[0]
    assert url.startswith("ws://127.0.0.1:") and rp.token.text() == ""  # no token on this computer only
    with RemoteClient(url) as client:
        client.request("set", params={"transpose": 4})
    qtbot.waitUntil(lambda: window.conversion_panel.pitch_slider.value() == 4, timeout=5000)
    rp.enabled.setChecked(False)
    assert rp.server is None and rp.address.text() == ""
