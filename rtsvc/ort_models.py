"""ONNX Runtime models with the torch call contracts: the SoVITS synthesizer graph
(:class:`OrtSynthesizer`, ``infer(...)`` of ``models.synthesizer.SynthesizerTrn``) and the
content encoder graph (:class:`OrtContentEncoder`, ``encode(...)`` of
``rtsvc.encoders.ContentEncoder``), so the voice, the live engine and render do not care which
backend runs (:func:`rtsvc.backends.apply_backend` picks).

Their graphs come from :mod:`rtsvc.onnx_export`: exported at load and kept in the user's ONNX
cache (:mod:`rtsvc.onnx_cache`; the next load of the same voice opens them from disk), or read
from a file ``rtsvc export-onnx`` wrote. On CUDA, inputs and outputs go through IO binding and
the all-zero draw tensors of deterministic runs stay on the GPU.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rtsvc.backends import PROVIDERS, BackendChoice, make_session
from rtsvc.encoders import ContentEncoder
from rtsvc.errors import ModelFileError, ParameterError
from rtsvc.onnx_cache import SOURCE_EXPORT, SOURCE_FILE, default_cache, load_or_export
from rtsvc.onnx_export import (ENCODER_CONTRACT, META_PREFIX, ONNX_OPSET, SynthesizerFacts, encoder_onnx_bytes,
                               read_metadata, synthesizer_facts, synthesizer_onnx_bytes)

#: Distinct shapes of device-resident zero inputs kept per session (live blocks use one or two).
MAX_CACHED_ZEROS = 8


class HostZeros:
    """A reused all-zero float32 host buffer, viewed in any shape (readers must not write to it)."""

    def __init__(self) -> None:
        self._buffer = np.zeros(0, dtype=np.float32)

    def __call__(self, shape: tuple[int, ...]) -> np.ndarray:
        size = int(np.prod(shape))
        if self._buffer.size < size:
            self._buffer = np.zeros(size, dtype=np.float32)
        return self._buffer[:size].reshape(shape)


class _Runner:
    """Runs one session. With ``binding_device`` ("cuda", index) (set when the session runs
    on the CUDA provider) inputs and outputs go through IO binding and all-zero inputs are
    cached as device-resident OrtValues; otherwise plain ``session.run`` with a reused host
    zero buffer."""

    def __init__(self, session, device: str) -> None:
        self.session = session
        dev = torch.device(device)
        on_cuda = session.get_providers()[0] == PROVIDERS["cuda"]
        self.binding_device: tuple[str, int] | None = ("cuda", dev.index or 0) if on_cuda else None
        self._device_zeros: dict[tuple[int, ...], Any] = {}
        self._host_zeros = HostZeros()

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def zeros(self, shape: tuple[int, ...]):
        """All-zero float32 input of ``shape``."""
        if self.binding_device is not None:
            if shape not in self._device_zeros:
                import onnxruntime

                if len(self._device_zeros) >= MAX_CACHED_ZEROS:
                    self._device_zeros.clear()
                self._device_zeros[shape] = onnxruntime.OrtValue.ortvalue_from_numpy(
                    np.zeros(shape, dtype=np.float32), *self.binding_device)
            return self._device_zeros[shape]
        return self._host_zeros(shape)

    def run(self, feeds: dict[str, Any], output: str) -> np.ndarray:
        if self.binding_device is None:
            return self.session.run([output], feeds)[0]
        import onnxruntime

        binding = self.session.io_binding()
        for name, value in feeds.items():
            if isinstance(value, onnxruntime.OrtValue):
                binding.bind_ortvalue_input(name, value)
            else:
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
        binding.bind_output(output, *self.binding_device)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]


def _numpy(x, dtype) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu").numpy()
    return np.ascontiguousarray(x, dtype=dtype)


class OrtSynthesizer:
    """A SoVITS synthesizer graph run by ONNX Runtime with the ``infer`` contract of
    ``SynthesizerTrn`` (batch 1). ``torch_model`` (optional) serves ``predict_f0`` calls,
    which the graph does not contain. ``onnx_source``: where the graph came from ("cache",
    "export" or "file", see rtsvc.onnx_cache)."""

    def __init__(self, session, facts: SynthesizerFacts, choice: BackendChoice, torch_model=None,
                 onnx_source: str | None = SOURCE_EXPORT, runner=None) -> None:
        self.facts = facts
        self.choice = choice
        self.onnx_source = onnx_source
        self.runner = runner if runner is not None else _Runner(session, choice.device)
        self.torch_model = torch_model
        self.vol_embedding = facts.vol_embedding
        self.sampling_rate = facts.sampling_rate
        self.hop_length = facts.hop_length
        self.ssl_dim = facts.ssl_dim
        self.inter_channels = facts.inter_channels
        self.n_speakers = len(facts.speakers)
        self.use_automatic_f0_prediction = bool(getattr(torch_model, "use_automatic_f0_prediction", False))
        self.dtype = torch.float32
        self.device = torch.device("cpu")
        from rtsvc.models.draws import DrawMemo

        self._draws = DrawMemo()  # the live path's repeated (reseeded) draws, see DrawMemo

    @classmethod
    def from_model(cls, model, choice: BackendChoice, *, speakers: tuple[str, ...] | None = None,
                   speech_encoder: str = "", unit_interpolate_mode: str = "nearest") -> "OrtSynthesizer":
        """Open the graph of ``model`` (float32, inference-ready) from the ONNX cache, or export
        it in memory (and cache it) when it is not there."""
        facts = synthesizer_facts(model, speakers=speakers, speech_encoder=speech_encoder,
                                  unit_interpolate_mode=unit_interpolate_mode)
        session, source = load_or_export(
            "synthesizer", model, asdict(facts), opset=ONNX_OPSET, expected_metadata=facts.metadata(),
            export=lambda: synthesizer_onnx_bytes(model, facts), open_session=lambda g: make_session(g, choice),
            cache=default_cache())
        return cls(session, facts, choice, torch_model=model, onnx_source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike, choice: BackendChoice, torch_model=None) -> "OrtSynthesizer":
        """Open a graph written by ``rtsvc export-onnx`` (checked by its metadata)."""
        if not Path(path).is_file():
            raise ModelFileError(f"ONNX file {path} does not exist.", "check the path or export it with `rtsvc export-onnx`.")
        facts = SynthesizerFacts.from_metadata(read_metadata(path), str(path))
        return cls(make_session(path, choice), facts, choice, torch_model=torch_model, onnx_source=SOURCE_FILE)

    @property
    def provider(self) -> str:
        return self.runner.provider

    def describe(self) -> dict[str, Any]:
        return {**self.choice.describe(), "provider": self.provider, "onnx_flavour": self.facts.flavour,
                "onnx_source_draws": self.facts.source_draws, "onnx_source": self.onnx_source}

    def _speaker(self, g, frames: int, normalize: bool):
        n = self.n_speakers
        if g is None:
            g = 0
        if isinstance(g, torch.Tensor) and not torch.is_floating_point(g):
            if g.numel() != 1:
                raise ParameterError(f"the onnxruntime backend runs batch 1: pass one speaker id, got {g.numel()}.")
            g = int(g.reshape(-1)[0])
        if isinstance(g, bool):
            raise ParameterError(f"speaker must be an id or mix weights, got {g!r}.")
        if isinstance(g, (int, np.integer)):
            if not 0 <= int(g) < n:
                raise ParameterError(f"speaker id {g} is out of range; this model has {n} speaker(s) (ids 0..{n - 1}).")
            if not self.facts.speaker_mix:
                return np.array([int(g)], dtype=np.int64)
            weights = np.zeros((frames, n), dtype=np.float32)
            weights[:, int(g)] = 1.0
            return weights
        mix = _numpy(g, np.float32)
        if mix.shape[-1] != n or mix.ndim not in (1, 2) or (mix.ndim == 2 and mix.shape[0] != frames):
            raise ParameterError(f"speaker mix weights must have shape ({n},) or ({frames}, {n}), got {mix.shape}.")
        if not np.isfinite(mix).all() or (mix < 0).any():
            raise ParameterError("speaker mix weights must be finite and non-negative.")
        total = mix.sum(axis=-1, keepdims=True)
        if (total <= 0).any():
            raise ParameterError("speaker mix weights sum to 0; give at least one positive weight.")
        mix = np.broadcast_to(mix / total if normalize else mix, (frames, n)).astype(np.float32)
        if self.facts.speaker_mix:
            return np.ascontiguousarray(mix)
        if n == 1 and np.all(mix == 1.0):
            return np.zeros(1, dtype=np.int64)
        raise ParameterError("this ONNX graph takes one speaker id, not mix weights.",
                             "re-export it with `rtsvc export-onnx --speaker-mix on`, or pass a speaker id.")

    def infer(self, c, f0, uv, *, g=None, vol=None, noise_scale: float = 0.4, predict_f0: bool = False,
              deterministic: bool = False, generator: torch.Generator | None = None, normalize_mix: bool = True,
              keep_samples: int | None = None):
        """Same arguments and result as ``SynthesizerTrn.infer`` (batch 1): returns
        (wav (1, 1, T*hop or keep_samples) float32 CPU tensor, f0 used (1, T) float32). A graph
        without the ``keep`` input (older files, the MoeVoiceStudio flavour) decodes the whole
        window and the tail is sliced off."""
        if predict_f0:
            if self.torch_model is None or not self.use_automatic_f0_prediction:
                raise ParameterError("auto f0 needs the f0 predictor, which this ONNX graph does not contain.",
                                     "turn auto f0 off or use --backend torch.")
            return self.torch_model.infer(c, f0, uv, g=g, vol=vol, noise_scale=noise_scale, predict_f0=True,
                                          deterministic=deterministic, generator=generator, normalize_mix=normalize_mix,
                                          keep_samples=keep_samples)
        c, f0, uv = _numpy(c, np.float32), _numpy(f0, np.float32), _numpy(uv, np.float32)
        if c.ndim != 3 or c.shape[0] != 1 or c.shape[1] != self.ssl_dim:
            raise ParameterError(f"content features must have shape (1, {self.ssl_dim}, frames) for the onnxruntime "
                                 f"backend, got {c.shape}.")
        t = c.shape[2]
        for name, x in (("f0", f0), ("uv", uv)):
            if x.shape != (1, t):
                raise ParameterError(f"{name} must have shape (1, {t}) to match the content features, got {x.shape}.")
        h, hop = self.facts.harmonics, self.hop_length
        from rtsvc.models.synthesizer import check_keep_samples

        check_keep_samples(keep_samples, t, hop)
        feeds: dict[str, Any] = {"c": np.ascontiguousarray(c.transpose(0, 2, 1)), "f0": f0,
                                 "mel2ph": np.arange(1, t + 1, dtype=np.int64)[None], "uv": uv}
        if deterministic:
            feeds["noise"] = self.runner.zeros((1, self.inter_channels, t))
            if self.facts.source_draws:
                feeds["harmonic_phase"] = self.runner.zeros((1, h))
                feeds["source_noise"] = self.runner.zeros((1, t * hop, h))
        else:
            from rtsvc.models.draws import DEFAULT_SEED, RandomDraws

            if generator is None:
                generator = torch.Generator().manual_seed(DEFAULT_SEED)
            feeds.update(self._draws.draw(generator, (t, float(noise_scale)), lambda: self._random_feeds(
                RandomDraws(generator), t, noise_scale)))
        feeds["sid"] = self._speaker(g, t, normalize_mix)
        if self.vol_embedding:
            if vol is None:
                raise ParameterError("this model has a loudness embedding (vol_embedding); pass vol (batch, frames).")
            feeds["vol"] = _numpy(vol, np.float32).reshape(1, t)
        if self.facts.keep_input:
            feeds["keep"] = np.array([t * hop if keep_samples is None else keep_samples], dtype=np.int64)
        audio = self.runner.run(feeds, "audio")
        if keep_samples is not None and audio.shape[-1] != keep_samples:
            audio = np.ascontiguousarray(audio[..., audio.shape[-1] - keep_samples :])
        return torch.from_numpy(audio), torch.from_numpy(f0)

    def _random_feeds(self, draws, t: int, noise_scale: float) -> dict[str, np.ndarray]:
        """The graph's random inputs for ``t`` frames, drawn in so-vits-svc's order."""
        feeds = {"noise": (draws.normal((1, self.inter_channels, t)) * noise_scale).numpy()}
        if self.facts.source_draws:
            feeds["harmonic_phase"] = draws.uniform((1, self.facts.harmonics)).numpy()
            feeds["source_noise"] = draws.normal((1, t * self.hop_length, self.facts.harmonics)).numpy()
        return feeds

    def close(self) -> None:
        self.runner = None
        self.torch_model = None


class OrtContentEncoder(ContentEncoder):
    """A content encoder graph (``source`` (1, 1, samples) -> ``embed`` (1, frames, dim)) run
    by ONNX Runtime, with the ``encode`` contract of :class:`rtsvc.encoders.ContentEncoder`.
    ``onnx_source``: "cache" or "export" (see rtsvc.onnx_cache)."""

    def __init__(self, session, spec, dim: int, choice: BackendChoice, path: Path,
                 onnx_source: str = SOURCE_EXPORT) -> None:
        super().__init__(spec, dim, "cpu", path)
        self.choice = choice
        self.runner = _Runner(session, choice.device)
        self.onnx_source = onnx_source

    @classmethod
    def from_encoder(cls, encoder, choice: BackendChoice) -> "OrtContentEncoder":
        """Open the graph of a loaded torch encoder (rtsvc.encoders.TorchContentEncoder) from the
        ONNX cache, or export it in memory (and cache it)."""
        facts = {"speech_encoder": encoder.name, "output_layer": int(encoder.output_layer),
                 "final_proj": bool(encoder.spec.final_proj), "dim": int(encoder.dim),
                 "sample_rate": int(encoder.sample_rate), "hop": int(encoder.hop)}
        expected = {META_PREFIX + "contract": ENCODER_CONTRACT, META_PREFIX + "speech_encoder": encoder.name,
                    META_PREFIX + "dim": str(encoder.dim)}
        session, source = load_or_export(
            "encoder", encoder.model, facts, opset=ONNX_OPSET, expected_metadata=expected,
            export=lambda: encoder_onnx_bytes(encoder), open_session=lambda g: make_session(g, choice),
            cache=default_cache())
        return cls(session, encoder.spec, encoder.dim, choice, encoder.path, onnx_source=source)

    @property
    def provider(self) -> str:
        return self.runner.provider

    def _features(self, wave: torch.Tensor) -> torch.Tensor:
        source = np.ascontiguousarray(wave.numpy().reshape(1, 1, -1), dtype=np.float32)
        return torch.from_numpy(self.runner.run({"source": source}, "embed"))

    def close(self) -> None:
        self.runner = None
