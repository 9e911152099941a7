"""Widgets reflect the controller's parameters; user edits are exactly one validated update."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractSlider


def spy_updates(controller, monkeypatch) -> list[dict]:
    """Record every controller.update(**changes) call (still applying it)."""
    calls: list[dict] = []
    real = controller.update

    def update(**changes):
        calls.append(changes)
        return real(**changes)

    monkeypatch.setattr(controller, "update", update)
    return calls


def test_widgets_show_changes_made_elsewhere_without_echo(window, controller, monkeypatch):
    calls = spy_updates(controller, monkeypatch)
    # As remote control or a script would: straight to the controller.
    controller.update(transpose=5, bypass=True, block_ms=40, f0_method="dio", output_gain_db=-6, cluster_ratio=0.25)
    window.bridge.poll()
    conv, live, timing = window.conversion_panel, window.live_panel, window.timing_panel
    assert conv.pitch_slider.value() == 5 and conv.pitch_spin.value() == 5
    assert conv.f0_method.currentData() == "dio"
    assert conv.mix_ratio.value() == 0.25
    assert live.bypass.isChecked() and live.output_gain.value() == -6
    assert timing.block.value() == 40
    assert len(calls) == 1  # only the direct call above: showing params issued no update


def test_dragging_the_pitch_slider_is_one_validated_update(window, controller, monkeypatch):
    calls = spy_updates(controller, monkeypatch)
    slider, spin = window.conversion_panel.pitch_slider, window.conversion_panel.pitch_spin
    slider.setSliderDown(True)
    for pos in (1, 3, 5, 7):
        slider.setSliderPosition(pos)
        assert spin.value() == pos  # the box follows the handle while dragging
    assert calls == []
    slider.setSliderDown(False)  # release
    assert calls == [{"transpose": 7.0}]
    assert controller.params.transpose == 7.0 and spin.value() == 7


def test_a_pitch_step_is_one_update_and_the_spin_box_follows(window, controller, monkeypatch):
    calls = spy_updates(controller, monkeypatch)
    window.conversion_panel.pitch_slider.triggerAction(QAbstractSlider.SliderAction.SliderSingleStepSub)
    assert calls == [{"transpose": -1.0}]
    assert window.conversion_panel.pitch_spin.value() == -1
    window.conversion_panel.pitch_spin.setValue(4)
    assert calls == [{"transpose": -1.0}, {"transpose": 4.0}]
    assert window.conversion_panel.pitch_slider.value() == 4


def test_a_refused_value_shows_the_message_and_snaps_back(window, controller):
    window.show()
    crossfade = window.timing_panel.crossfade
    crossfade.setValue(50)  # block is 20 ms: the controller refuses a 50 ms crossfade
    assert window.banner.isVisible()
    assert "crossfade_ms" in window.banner.text.text() and "block_ms" in window.banner.text.text()
    assert controller.params.crossfade_ms == 4.0
    assert crossfade.value() == 4.0


def test_unexpected_errors_are_a_message_not_a_traceback(window, controller, monkeypatch):
    def broken(**changes):
        raise RuntimeError("device driver exploded")

    monkeypatch.setattr(controller, "update", broken)
    window.show()
    window.live_panel.monitor_gain.setValue(-3)
    text = window.banner.text.text()
    assert "Unexpected error (RuntimeError)" in text and "device driver exploded" in text
    assert "Traceback" not in text
    assert window.live_panel.monitor_gain.value() == 0.0


def test_auto_f0_warning_and_formant_follow_voice_and_params(window, controller):
    window.show()
    conv = window.conversion_panel
    assert not conv.auto_f0_warning.isVisible()
    controller.update(auto_f0=True)
    window.bridge.poll()
    assert conv.auto_f0_warning.isVisible() and "singing" in conv.auto_f0_warning.text()
    conv.set_voice({"kind": "WorldVoice"})
    assert conv.formant.isEnabled() and not conv.mix_ratio.isEnabled()
    conv.set_voice({"kind": "SovitsVoice"})
    assert not conv.formant.isEnabled() and conv.mix_ratio.isEnabled()


def test_latency_preview_follows_block_size_before_start(window, controller):
    label = window.timing_panel.latency
    before = label.text()
    assert "algorithmic" in before and "shown once started" in before
    window.timing_panel.block.setValue(200)
    assert controller.params.block_ms == 200
    after = label.text()
    assert after != before
    assert int(after.split(" ms")[0]) > int(before.split(" ms")[0]) + 150


def test_keyboard_shortcuts(window, controller, qtbot):
    window.show()
    window.windowHandle().requestActivate()  # shortcuts act in the active window
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert controller.params.transpose == 1.0
    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert controller.params.bypass is True
    assert window.live_panel.bypass.isChecked()
