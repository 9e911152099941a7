"""FCPE with its network in ONNX Runtime (rtsvc.pitch_onnx): the live path's lean FCPE.

Checks: the same f0 as torch FCPE on speech (voicing identical, < 0.01 cent apart; measured
~0.001), the live default estimator picks it for fcpe, and clear errors for impossible requests.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from rtsvc.audio_io import read_audio
from rtsvc.engine import pitch_cache
from rtsvc.errors import ParameterError
from rtsvc.pitch import PitchEstimators, estimate_f0
from rtsvc.pitch_onnx import OnnxFcpe, onnx_fcpe_available


@pytest.fixture(scope="module", autouse=True)
def _needs_onnx():
    if not onnx_fcpe_available():
        if os.environ.get("CI"):
            pytest.fail("onnx/onnxruntime missing on CI: `make test` installs the onnx extra")
        pytest.skip("needs the onnx extra (onnx + onnxruntime)")


def test_onnx_fcpe_matches_torch_fcpe_on_speech(repo_root):
    audio = read_audio(repo_root / "examples" / "speech.wav")
    torch_f0 = estimate_f0(audio.audio, audio.sample_rate, 256, "fcpe")
    ort_f0 = estimate_f0(audio.audio, audio.sample_rate, 256, "fcpe", fcpe_backend="onnxruntime")
    np.testing.assert_array_equal(torch_f0 > 0, ort_f0 > 0)
    voiced = torch_f0 > 0
    assert voiced.mean() > 0.3
    assert np.max(np.abs(1200 * np.log2(ort_f0[voiced] / torch_f0[voiced]))) < 0.01


def test_onnx_fcpe_is_built_once_and_keeps_the_torch_model():
    est = PitchEstimators()
    model = est.fcpe_model("cpu", "onnxruntime")
    assert isinstance(model, OnnxFcpe) and model is est.fcpe_model("cpu", "onnxruntime")
    assert model.fcpe is est.fcpe_model("cpu")
    assert next(model.parameters()).device.type == "cpu"


def test_live_default_estimator_runs_fcpe_in_onnxruntime(monkeypatch):
    seen = {}
    real = estimate_f0

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr("rtsvc.pitch.estimate_f0", spy)
    x = (0.3 * np.sin(2 * np.pi * 200 * np.arange(4410) / 44100)).astype(np.float32)
    f0 = pitch_cache.default_estimator(x, 44100, 220, "fcpe", 0.05)
    assert seen["fcpe_backend"] == "onnxruntime"
    assert abs(np.median(f0[5:-5]) - 200) < 3


@pytest.mark.parametrize("backend, device, words", [("tensorrt", "cpu", "fcpe_backend must be one of"),
                                                   ("onnxruntime", "cuda", "CPU only")])
def test_impossible_fcpe_backends_are_refused(backend, device, words):
    with pytest.raises(ParameterError, match=words):
        PitchEstimators().fcpe_model(device, backend)
