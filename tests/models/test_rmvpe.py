"""RMVPE (models/rmvpe.py) on tiny random weights: layout, strict loading, shapes, decoder rules.

No real rmvpe.pt ships with the repository, so agreement with so-vits-svc on real weights is NOT
checked here; these tests pin the parts that do not need it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtsvc.errors import ModelFileError
from rtsvc.models.rmvpe import CENTS_OF_BIN0, CENTS_PER_BIN, Rmvpe, RmvpeConfig, load_rmvpe

TINY = RmvpeConfig(n_mels=128, levels=2, inter_layers=1, res_blocks=1, base_channels=2, gru_hidden=4)


def _tiny(seed: int = 0) -> Rmvpe:
    torch.manual_seed(seed)
    model = Rmvpe(TINY)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                buf.normal_(0.0, 0.1)
    return model.eval()


def test_released_layout_key_names():
    keys = set(Rmvpe(RmvpeConfig()).state_dict())
    for key in ("unet.encoder.bn.running_var", "unet.encoder.layers.0.conv.0.shortcut.weight",
                "unet.encoder.layers.4.conv.3.conv.4.weight", "unet.intermediate.layers.3.conv.3.conv.0.weight",
                "unet.decoder.layers.0.conv1.0.weight", "unet.decoder.layers.4.conv2.0.shortcut.bias",
                "cnn.weight", "fc.0.gru.weight_hh_l0_reverse", "fc.1.weight"):
        assert key in keys, key
    assert not any(k.startswith("unet.tf.") for k in keys)
    assert sum(p.numel() for p in Rmvpe(RmvpeConfig()).parameters()) > 80_000_000


@pytest.mark.parametrize("n", [800, 5000, 16000])
def test_shapes(n):
    model = _tiny()
    audio = 0.1 * torch.randn(2, n)
    with torch.inference_mode():
        mel = model.log_mel(audio)
        sal = model.salience(mel)
    assert mel.shape == (2, 128, n // 160 + 1)
    assert sal.shape == (2, n // 160 + 1, 360) and torch.all((sal >= 0) & (sal <= 1))
    assert model(audio, 0.0).shape == (2, n // 160 + 1)


def test_strict_loading_and_named_skips(tmp_path):
    model = _tiny(1)
    state = dict(model.state_dict())
    state["unet.tf.layers.0.conv.0.weight"] = torch.zeros(1)  # present in real files, unused
    torch.save({"model": {k: v.half() if v.is_floating_point() else v for k, v in state.items()}}, tmp_path / "rmvpe.pt")
    loaded = load_rmvpe(tmp_path, config=TINY)
    audio = 0.1 * torch.randn(1, 4000)
    with torch.inference_mode():
        ref = Rmvpe(TINY)
        ref.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()})
        torch.testing.assert_close(loaded.salience(loaded.log_mel(audio)), ref.eval().salience(ref.log_mel(audio)))
    del state["cnn.bias"]
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ModelFileError, match="do not fit"):
        load_rmvpe(tmp_path, path=tmp_path / "bad.pt", config=TINY)
    with pytest.raises(ModelFileError, match="RMVPE weights not found"):
        load_rmvpe(tmp_path / "nowhere")


def test_decoder_truncates_window_at_grid_ends():
    model = _tiny()
    sal = torch.zeros(1, 3, 360)
    sal[0, 0, 100], sal[0, 0, 103], sal[0, 0, 95] = 0.9, 0.3, 0.8   # bin 95 is outside 100 +- 4
    sal[0, 1, 0], sal[0, 1, 2] = 0.6, 0.2                          # truncated, not clamped
    sal[0, 2, 200] = 0.05                                           # at the threshold: unvoiced
    f0 = model.decode(sal, 0.05)[0].numpy()

    def hz(c: float) -> float:
        return 10.0 * 2.0 ** (c / 1200.0)

    def cents(k: int) -> float:
        return CENTS_OF_BIN0 + CENTS_PER_BIN * k

    assert f0[0] == pytest.approx(hz((0.9 * cents(100) + 0.3 * cents(103)) / 1.2), rel=1e-5)
    assert f0[1] == pytest.approx(hz((0.6 * cents(0) + 0.2 * cents(2)) / 0.8), rel=1e-5)
    assert f0[2] == 0.0
    assert np.isfinite(f0).all()
