"""Fixtures for the panel tests: offscreen Qt, a real Controller on the virtual clock
(see gui_support.py for the test voice and loader)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported anywhere
sys.path.insert(0, str(Path(__file__).parent))  # gui_support

import pytest  # noqa: E402
from gui_support import TEST_RATE, loader_for_tests, tone, constant_f0  # noqa: E402

from rtsvc.engine.controller import Controller  # noqa: E402
from rtsvc.engine.drivers import VirtualClockDriver  # noqa: E402
from rtsvc.engine.voices import VoiceSpec  # noqa: E402
from rtsvc.presets import PresetStore  # noqa: E402


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own RTSVC_CONFIG_DIR (presets, settings, remote token)."""
    d = tmp_path / "config"
    monkeypatch.setenv("RTSVC_CONFIG_DIR", str(d))
    return d


@pytest.fixture
def driver() -> VirtualClockDriver:
    """Stepped virtual clock: ``driver.run()`` pushes the tone through the running engine."""
    return VirtualClockDriver(tone(), TEST_RATE, tail_seconds=0.0)  # the last block still holds the tone


@pytest.fixture
def controller(driver: VirtualClockDriver, config_dir: Path):
    ctl = Controller(driver=driver, voice_loader=loader_for_tests, estimator=constant_f0,
                     presets=PresetStore(config_dir / "presets"))
    yield ctl
    ctl.close()


@pytest.fixture
def opened_folders() -> list[Path]:
    return []


@pytest.fixture
def window(qtbot, controller: Controller, config_dir: Path, opened_folders: list[Path]):
    """The main window on the real controller; render voices are EchoVoices too."""
    from rtsvc.gui.main_window import MainWindow

    w = MainWindow(controller, config_dir / "gui.json",
                   render_voice_factory=lambda spec: loader_for_tests(VoiceSpec("world") if spec == "world"
                                                                 else VoiceSpec("sovits", *spec)),
                   open_folder=opened_folders.append)
    qtbot.addWidget(w)
    w.resize(1280, 820)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: not w.bridge.jobs.busy)  # the device listing queued at start-up
    yield w
    w.shutdown()
