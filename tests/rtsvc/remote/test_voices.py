"""Voice folders: listing, checkpoint choice, lookup by name only."""

from __future__ import annotations

import pytest

from rtsvc.remote.protocol import RemoteError
from rtsvc.remote.voices import VoiceLibrary


def test_lists_usable_voices_only(voice_dir, tmp_path):
    lib = VoiceLibrary([voice_dir, tmp_path / "missing"])
    assert lib.names() == ["world", "alice", "bob"]


def test_highest_step_checkpoint_is_used(voice_dir):
    entry = VoiceLibrary([voice_dir]).resolve("alice")
    assert entry.model_path == voice_dir / "alice" / "G_1600.pth"
    assert entry.config_path == voice_dir / "alice" / "config.json"
    assert VoiceLibrary([voice_dir]).resolve("world") == "world"


def test_earlier_folder_wins(voice_dir, tmp_path):
    other = tmp_path / "other"
    (other / "alice").mkdir(parents=True)
    (other / "alice" / "config.json").write_text("{}")
    (other / "alice" / "G_5.pth").write_bytes(b"x")
    assert VoiceLibrary([other, voice_dir]).resolve("alice").model_path == other / "alice" / "G_5.pth"


@pytest.mark.parametrize("name", ["../voices/alice", "alice/../bob", "/etc", "..", "broken", "notes.txt", "carol"])
def test_only_names_from_the_scan_resolve(voice_dir, name):
    with pytest.raises(RemoteError) as info:
        VoiceLibrary([voice_dir]).resolve(name)
    assert info.value.code in ("bad_value", "not_found") and info.value.field == "name"


def test_folder_outside_names_is_never_reached(voice_dir, tmp_path):
    """A voice folder next to the configured one is invisible, even by a relative name."""
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    (outside / "G_1.pth").write_bytes(b"x")
    lib = VoiceLibrary([voice_dir])
    assert "secret" not in lib.names()
    with pytest.raises(RemoteError):
        lib.resolve("../secret")
