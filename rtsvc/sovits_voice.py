"""The SoVITS voice: so-vits-svc 4.0/4.1 models behind the :class:`rtsvc.voice.Voice` interface.

Per clip or live window (so-vits-svc 4.1's ``Svc.infer`` semantics)::

    audio @ model rate --estimate_f0--> f0 --fill unvoiced--> f0, uv --x 2^(t/12)--> f0'
    audio @ 16 kHz ----content encoder--> units (dim, 50 fps) --expand_frames--> c (dim, T)
                                                     (optional cluster / index mix, ratio r)
    audio @ model rate --frame loudness----> vol (T)            (models with vol_embedding)
    synthesizer.infer(c, f0', uv, speaker, vol, noise_scale, auto f0) -> T * hop samples

T = len(audio) // hop_length. The output is padded with zeros to the input length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rtsvc.audio_io import resample
from rtsvc.errors import ParameterError
from rtsvc.params import VoiceParams
from rtsvc.pitch import estimate_f0, interpolate_unvoiced, shift_f0
from rtsvc.voice import ENCODER_RATE, StreamWindow, Voice


class SovitsVoice(Voice):
    """A loaded so-vits-svc model with its content encoder (and optional cluster/index model).

    model: the synthesizer (rtsvc.models.synthesizer.SynthesizerTrn, inference-ready).
    config: its rtsvc.sovits_config.SovitsConfig. encoder: rtsvc.encoders.ContentEncoder.
    feature_model: optional rtsvc.cluster.ClusterModel / FeatureIndexSet for ``cluster_ratio``.
    """

    needs_16k = True

    def __init__(self, model, config, encoder, *, name: str, device: str = "cpu",
                 feature_model=None, info: dict[str, Any] | None = None, backend=None) -> None:
        self.backend = backend
        self.model = model
        self.config = config
        self.encoder = encoder
        self.feature_model = feature_model
        self.name = name
        self.device = device
        self.info = dict(info or {})
        self.sample_rate = int(config.sampling_rate)
        self.hop_length = int(config.hop_length)
        self.speakers = tuple(config.speakers)
        self.unit_interpolate_mode = config.data.unit_interpolate_mode if config.layout != "4.0" else "left"

    # -- speakers ---------------------------------------------------------------------------
    def speaker_id(self, speaker: str | int | None) -> int:
        """Speaker id from a name or id (None = the first speaker); lists the speakers if unknown."""
        if speaker is None:
            return 0
        if isinstance(speaker, str) and speaker in self.speakers:
            return self.speakers.index(speaker)
        text = str(speaker).strip()
        if text.lstrip("-").isdigit() and 0 <= int(text) < len(self.speakers):
            return int(text)
        listing = ", ".join(f"{i}={n}" for i, n in enumerate(self.speakers))
        raise ParameterError(f"speaker {speaker!r} does not exist in voice '{self.name}'; it has: {listing}.",
                             "pass one of these names or ids.")

    def _speaker_conditioning(self, params: VoiceParams, frame_weights: np.ndarray | None):
        if frame_weights is not None:
            return torch.from_numpy(np.ascontiguousarray(frame_weights, dtype=np.float32))
        if params.speaker_mix:
            w = np.zeros(len(self.speakers), dtype=np.float32)
            for name, weight in params.speaker_mix:
                w[self.speaker_id(name)] += weight
            return torch.from_numpy(w)
        return self.speaker_id(params.speaker)

    def _cluster_speaker(self, params: VoiceParams) -> str:
        if params.speaker_mix:
            name, _ = max(params.speaker_mix, key=lambda item: item[1])
            return self.speakers[self.speaker_id(name)]
        return self.speakers[self.speaker_id(params.speaker)]

    # -- the conversion ----------------------------------------------------------------------
    def _synthesize(self, audio: np.ndarray, audio_16k: np.ndarray, f0_raw: np.ndarray, params: VoiceParams,
                    frame_weights: np.ndarray | None = None, keep_samples: int | None = None,
                    units: torch.Tensor | None = None) -> np.ndarray:
        """audio (n,) at sample_rate, audio_16k the same span at 16 kHz, f0_raw (n // hop,) Hz;
        units: the encoder's output for audio_16k when already started (see :meth:`begin_window`).
        Returns (T * hop,) float32, or its last ``keep_samples`` (the decoder skips the rest)."""
        n_frames = len(audio) // self.hop_length
        if n_frames == 0:
            return np.zeros(0, dtype=np.float32)
        f0_raw = np.asarray(f0_raw, dtype=np.float32)[:n_frames]
        if len(f0_raw) < n_frames:
            f0_raw = np.pad(f0_raw, (0, n_frames - len(f0_raw)))
        f0, uv = interpolate_unvoiced(f0_raw)
        f0 = shift_f0(f0, params.transpose)
        if units is None:
            units = self.encoder.encode(audio_16k)  # (1, dim, frames50); on a GPU still running here
        from rtsvc.models.frames import expand_frames

        vol = None  # CPU work placed before the units' copy to the host, which waits for the GPU
        if self.model.vol_embedding:
            from rtsvc.models.loudness import frame_loudness

            vol = frame_loudness(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), self.hop_length)[None]
        c = expand_frames(units[0].float().cpu(), n_frames, self.unit_interpolate_mode)
        if self.feature_model is not None and params.cluster_ratio > 0:
            mixed = self.feature_model.mix_features(c.numpy(), self._cluster_speaker(params), params.cluster_ratio)
            c = torch.from_numpy(np.ascontiguousarray(mixed, dtype=np.float32))
        generator = None
        if not params.deterministic:
            generator = torch.Generator().manual_seed(params.seed)
        wav, _ = self.model.infer(
            c[None], torch.from_numpy(f0)[None], torch.from_numpy(uv)[None],
            g=self._speaker_conditioning(params, frame_weights), vol=vol, noise_scale=params.noise_scale,
            predict_f0=params.auto_f0, deterministic=params.deterministic, generator=generator,
            normalize_mix=params.speaker_mix_mode == "convex", keep_samples=keep_samples,
        )
        return wav[0, 0].float().cpu().numpy()

    def _f0(self, audio: np.ndarray, params: VoiceParams) -> np.ndarray:
        return estimate_f0(audio, self.sample_rate, self.hop_length, params.f0_method,
                           threshold=params.f0_threshold, device=self.device)

    def convert(self, audio: np.ndarray, params: VoiceParams, f0: np.ndarray | None = None) -> np.ndarray:
        return self.convert_with_speaker_weights(audio, params, None, f0)

    def convert_with_speaker_weights(self, audio: np.ndarray, params: VoiceParams, weights: np.ndarray | None,
                                     f0: np.ndarray | None = None) -> np.ndarray:
        """:meth:`convert` with per-frame speaker weights ((len(audio) // hop, n_speakers) float32,
        rows in speaker order; so-vits-svc's dynamic character mix), or None for ``params``'s speaker."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if f0 is None:
            f0 = self._f0(audio, params)
        y = self._synthesize(audio, resample(audio, self.sample_rate, ENCODER_RATE), f0, params, weights)
        out = np.zeros(len(audio), dtype=np.float32)
        out[: len(y)] = y[: len(audio)]
        return out

    def _window_16k(self, audio: np.ndarray, audio_16k: np.ndarray) -> np.ndarray:
        return audio_16k if len(audio_16k) else resample(audio, self.sample_rate, ENCODER_RATE)

    def begin_window(self, audio: np.ndarray, audio_16k: np.ndarray) -> torch.Tensor:
        """Queue the content encoder on the window's 16 kHz audio; on a GPU it runs while the
        engine estimates pitch (FCPE has its own CUDA stream, rtsvc.cuda_graphs.GraphedFcpe), and
        ``convert_window`` waits for it only when it needs the units. Returns the units
        ((1, dim, frames) on the voice's device, possibly still being computed)."""
        return self.encoder.encode(self._window_16k(audio, audio_16k))

    def convert_window(self, window: StreamWindow, params: VoiceParams) -> np.ndarray:
        units = window.early  # begin_window's units, if the caller started the encoder
        audio_16k = window.audio_16k if units is not None else self._window_16k(window.audio, window.audio_16k)
        # only the samples from `first` on are returned: the synthesizer skips the decoder work
        # that just the left context needs (exact; see models.nsf_hifigan)
        total = len(window.audio) // self.hop_length * self.hop_length
        end = len(window.audio) - window.skip_tail
        first = max(0, end - window.out_samples)
        keep = total - first if first < total else None
        y = self._synthesize(np.ascontiguousarray(window.audio, dtype=np.float32), audio_16k, window.f0, params,
                             keep_samples=keep, units=units)
        base = total - len(y)  # y holds the window's samples [base, total)
        out = np.zeros(window.out_samples, dtype=np.float32)
        seg = y[first - base : max(first, min(end, total)) - base]
        out[window.out_samples - len(seg):] = seg
        return out

    def warm_up(self, window_samples: int, out_samples: int, skip_tail: int = 0) -> None:
        """Convert a silent window of this size as the engine does (begin_window, then
        convert_window): once on the CPU (onnxruntime sets up its first run), three times on a
        GPU (kernels, cuDNN plans, memory pools; the third call captures the CUDA graphs, see
        rtsvc.cuda_graphs)."""
        frames = window_samples // self.hop_length
        audio = np.zeros(frames * self.hop_length, dtype=np.float32)
        audio_16k = np.zeros(round(len(audio) * ENCODER_RATE / self.sample_rate), dtype=np.float32)
        window = StreamWindow(audio, audio_16k, np.zeros(frames, dtype=np.float32), out_samples=out_samples,
                              skip_tail=skip_tail)
        runs = 1
        if str(self.device).startswith("cuda"):
            from rtsvc.cuda_graphs import EAGER_CALLS_BEFORE_CAPTURE

            runs = EAGER_CALLS_BEFORE_CAPTURE + 1
        for _ in range(runs):
            window.early = self.begin_window(audio, audio_16k)
            self.convert_window(window, VoiceParams())

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(kind="sovits", speech_encoder=self.config.speech_encoder, encoder_dim=self.encoder.dim,
                 vol_embedding=bool(self.model.vol_embedding), layout=self.config.layout,
                 device=self.device, feature_model=getattr(self.feature_model, "kind", None))
        if self.backend is not None:
            from rtsvc.backends import describe_backend

            d.update(describe_backend(self.model, self.encoder, self.backend))
        return d

    def close(self) -> None:
        self.encoder.close()
        self.model = None


def load_sovits_voice(model_path: str | Path, config_path: str | Path, *, device: str = "cpu",
                      encoder_path: str | Path | None = None, pretrain_dir: str | Path | None = None,
                      cluster_path: str | Path | None = None, feature_retrieval: bool | None = None,
                      backend: str = "auto", threads: int = 0, onnx_path: str | Path | None = None,
                      fp16: bool = False, cuda_graphs: bool | None = None) -> SovitsVoice:
    """Load a so-vits-svc voice: checks config vs checkpoint (one line per problem), then loads
    the synthesizer, its content encoder (from ``encoder_path`` or ``pretrain/``) and an optional
    cluster model / feature index.

    backend: "auto" (onnxruntime when installed — it is faster on CPU — else torch), "torch" or
    "onnxruntime" (see rtsvc.backends); threads: intra-op threads (0 = library default);
    onnx_path: a synthesizer exported by ``rtsvc export-onnx`` (else exported at load time).
    fp16: the synthesizer in half precision (torch on CUDA; "auto" then picks torch). The
    content encoder and the NSF source's phase stay float32. cuda_graphs: torch on CUDA replays
    the live path's repeated calls as CUDA graphs (None = auto: on where possible; see
    rtsvc.cuda_graphs).
    """
    from rtsvc.backends import apply_backend, choose_backend
    from rtsvc.checkpoint import load_sovits
    from rtsvc.encoders import load_content_encoder

    choice = choose_backend(backend, device=device, fp16=fp16, threads=threads, cuda_graphs=cuda_graphs)
    load_device = device if choice.name == "torch" else "cpu"  # onnxruntime places the graph itself
    model, config, info = load_sovits(model_path, config_path, device=load_device, fp16=choice.fp16)
    encoder = load_content_encoder(config.speech_encoder, path=encoder_path,
                                   pretrain_dir=Path(pretrain_dir) if pretrain_dir else None, device=load_device)
    if encoder.dim != config.model.ssl_dim:
        from rtsvc.errors import ModelFileError

        raise ModelFileError(
            f"{encoder.path}: the content encoder gives {encoder.dim}-dim features but {config_path} has "
            f"ssl_dim {config.model.ssl_dim} ({config.speech_encoder}).",
            "use the encoder file this model was trained with.")
    feature_model = None
    if cluster_path is not None:
        from rtsvc.cluster import load_feature_model

        feature_model = load_feature_model(cluster_path, feature_retrieval, speakers=tuple(config.speakers))
    mode = config.data.unit_interpolate_mode if config.layout != "4.0" else "left"
    model, encoder = apply_backend(model, encoder, choice, speakers=tuple(config.speakers),
                                   speech_encoder=config.speech_encoder, unit_interpolate_mode=mode,
                                   synth_onnx=onnx_path)
    name = Path(model_path).resolve().parent.name or Path(model_path).stem
    return SovitsVoice(model, config, encoder, name=name, device=device, feature_model=feature_model,
                       info=info if isinstance(info, dict) else {"load": info}, backend=choice)
