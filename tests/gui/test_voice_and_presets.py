"""Voice loading (good folder, bad folder keeps the previous voice, speakers) and presets."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from gui_support import GOOD_MODEL, make_model_folder
from PySide6.QtCore import Qt

from rtsvc.engine.voices import VoiceSpec, default_voice_loader
from rtsvc.errors import RtsvcError


def tiny_module():
    """tests/models/tiny.py (loaded by path: a plain ``import models`` would find the package)."""
    path = Path(__file__).resolve().parents[1] / "models" / "tiny.py"
    spec = importlib.util.spec_from_file_location("rtsvc_tests_models_tiny", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_and_wait(window, qtbot, path: str) -> None:
    window.request_voice(path)
    qtbot.waitUntil(lambda: not window.bridge.jobs.busy, timeout=20000)


def test_good_model_folder_loads_and_lists_speakers(window, controller, qtbot, tmp_path: Path, monkeypatch):
    folder = make_model_folder(tmp_path / "voices", "alice", GOOD_MODEL)
    calls: list[dict] = []
    real = controller.update
    monkeypatch.setattr(controller, "update", lambda **c: (calls.append(c), real(**c))[1])
    load_and_wait(window, qtbot, str(folder))
    vp = window.voice_panel
    assert controller.voice.name == "alice"
    assert "alice" in vp.current.text() and "2 speakers" in vp.current.text()
    assert [vp.speaker.itemText(i) for i in range(vp.speaker.count())] == ["alto", "tenor"]
    assert window.settings.recent_voices == [str(folder)] and vp.choice.currentData() == str(folder)
    vp.speaker.setCurrentIndex(1)
    assert calls == [{"speaker": "tenor"}]
    vp.mix_table.cellWidget(0, 1).setValue(0.3)
    vp.mix_table.cellWidget(1, 1).setValue(0.7)
    qtbot.mouseClick(vp.apply_mix, Qt.MouseButton.LeftButton)
    assert controller.params.speaker_mix == (("alto", 0.3), ("tenor", 0.7))
    assert vp.use_mix.isChecked()
    vp.use_mix.setChecked(False)
    assert controller.params.speaker_mix == ()


def test_bad_model_folder_shows_the_error_and_keeps_the_previous_voice(window, controller, qtbot, tmp_path: Path):
    good = make_model_folder(tmp_path / "voices", "alice", GOOD_MODEL)
    load_and_wait(window, qtbot, str(good))
    before = controller.voice
    bad = tmp_path / "voices" / "broken"
    model, config = tiny_module().make_tiny_model(bad)  # a real so-vits-svc layout and config...
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])  # ...with a truncated G file
    with pytest.raises(RtsvcError) as expected:  # what rtsvc's own loader says about this file
        default_voice_loader(VoiceSpec("sovits", str(model), str(config)))
    load_and_wait(window, qtbot, str(bad))
    assert window.banner.isVisible()
    assert str(expected.value) in window.banner.text.text()
    assert controller.voice is before and not before.closed
    assert "alice" in window.voice_panel.current.text()
    assert window.voice_spec == (str(good / "G_100.pth"), str(good / "config.json"))
    assert window.settings.recent_voices == [str(good)]


def test_folder_without_generator_is_refused_before_loading(window, controller, qtbot, tmp_path: Path):
    folder = tmp_path / "empty_model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    window.request_voice(str(folder))
    assert window.banner.isVisible() and "G_<step>.pth" in window.banner.text.text()
    assert not window.bridge.jobs.busy  # nothing was sent to the controller


def test_presets_round_trip(window, controller, qtbot, config_dir: Path):
    pp, conv = window.presets_panel, window.conversion_panel
    conv.pitch_spin.setValue(3)
    window.timing_panel.block.setValue(60)
    pp.name.setText("warm")
    qtbot.mouseClick(pp.save, Qt.MouseButton.LeftButton)
    assert [pp.names.item(i).text() for i in range(pp.names.count())] == ["warm"]
    assert (config_dir / "presets" / "warm.json").is_file()

    conv.pitch_spin.setValue(-2)
    window.timing_panel.block.setValue(20)
    pp.names.setCurrentRow(0)
    qtbot.mouseClick(pp.load, Qt.MouseButton.LeftButton)
    assert controller.params.transpose == 3 and controller.params.block_ms == 60
    assert conv.pitch_slider.value() == 3 and window.timing_panel.block.value() == 60

    pp.names.setCurrentRow(0)
    pp.name.setText("warmer")
    qtbot.mouseClick(pp.rename, Qt.MouseButton.LeftButton)
    assert [pp.names.item(i).text() for i in range(pp.names.count())] == ["warmer"]
    pp.names.setCurrentRow(0)
    qtbot.mouseClick(pp.delete, Qt.MouseButton.LeftButton)
    assert pp.names.count() == 0 and controller.list_presets() == []


def test_bad_preset_name_is_a_message(window, qtbot):
    window.presets_panel.name.setText("../escape")
    qtbot.mouseClick(window.presets_panel.save, Qt.MouseButton.LeftButton)
    assert window.banner.isVisible() and "not allowed" in window.banner.text.text()


def test_real_sovits_folder_loads_through_the_panel(window, controller, qtbot, tmp_path: Path, monkeypatch,
                                                    fixtures_dir):
    """A real (tiny, random-weight) so-vits-svc folder through rtsvc's own loader, encoder from
    RTSVC_PRETRAIN: the panel shows it, lists its speakers and the engine holds a SoVITS voice."""
    from tiny_voice import make_tiny_voice

    model, config, pretrain = make_tiny_voice(tmp_path, fixtures_dir, n_speakers=2)
    monkeypatch.setenv("RTSVC_PRETRAIN", str(pretrain))
    load_and_wait(window, qtbot, str(model.parent))
    assert not window.banner.isVisible(), window.banner.text.text()
    assert type(controller.voice).__name__ == "SovitsVoice"
    vp = window.voice_panel
    assert [vp.speaker.itemText(i) for i in range(vp.speaker.count())] == ["speaker0", "speaker1"]


def test_dropping_a_folder_on_the_voice_box_requests_that_voice(window, qtbot, tmp_path: Path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    requested: list[str] = []
    window.voice_panel.voice_requested.connect(requested.append)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path))])
    drop = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    window.voice_panel.dropEvent(drop)  # Qt only delivers drops inside a real drag; call the handler
    assert requested == [str(tmp_path)] and drop.isAccepted()


def test_gui_device_options_reach_every_sovits_voice_spec(qtbot, controller, config_dir, tmp_path: Path, monkeypatch):
    """`rtsvc gui --device cuda --fp16 ...` gives the panel VoiceSpec fields for each model it loads."""
    from rtsvc.cmd_gui import voice_options
    from rtsvc.cli import build_parser
    from rtsvc.engine.voices import parse_voice_spec
    from rtsvc.gui.main_window import MainWindow

    args = build_parser().parse_args(["gui", "--device", "cuda", "--fp16", "--backend", "torch", "--cuda-graphs", "off"])
    options = voice_options(args)
    assert options == {"device": "cuda", "backend": "torch", "threads": 0, "fp16": True, "cuda_graphs": False}
    w = MainWindow(controller, config_dir / "gui.json", voice_options=options)
    qtbot.addWidget(w)
    asked = []
    monkeypatch.setattr(w.bridge, "load_voice", asked.append)
    folder = make_model_folder(tmp_path / "voices", "alice", GOOD_MODEL)
    w.request_voice(str(folder))
    spec = parse_voice_spec(asked[0])
    assert spec.kind == "sovits" and spec.device == "cuda" and spec.fp16 is True and spec.cuda_graphs is False
    assert spec.model_path.endswith(".pth") and spec.config_path.endswith("config.json")
