"""Content encoders: so-vits-svc ``speech_encoder`` names -> loaded encoders.

A so-vits-svc 4.x voice's ``config.json`` names its content encoder in ``model.speech_encoder``.
:data:`SPEECH_ENCODERS` lists the names rtsvc runs, with the layer, projection, feature size and
the file so-vits-svc expects in ``pretrain/``. :func:`load_content_encoder` turns a name into a
:class:`ContentEncoder`, which maps 16 kHz mono audio to features at 50 frames/s in so-vits-svc
orientation, (1, dim, frames).

Weight files are never downloaded: users put them in the pretrain folder (the repository's
``pretrain/``, or the folder named by ``RTSVC_PRETRAIN``), or pass a path.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rtsvc.errors import ModelFileError, ParameterError, RtsvcError

#: Environment variable naming the folder that holds encoder weight files.
PRETRAIN_ENV = "RTSVC_PRETRAIN"
#: Encoder input rate (Hz) and samples per output frame (50 frames/s).
ENCODER_SAMPLE_RATE = 16000
ENCODER_HOP = 320

_CONTENTVEC_FILE = "checkpoint_best_legacy_500.pt"
_CONTENTVEC_WHAT = (
    "ContentVec legacy 500 checkpoint used by vec768l12 and vec256l9 (RVC's hubert_base.pt is the same "
    "network and is used when checkpoint_best_legacy_500.pt is absent)"
)
_ONNX_WHAT = "ONNX ContentVec/HuBERT encoder from the MoeSS-SUBModel collection, as so-vits-svc uses it"


@dataclass(frozen=True)
class SpeechEncoderSpec:
    """One so-vits-svc speech encoder.

    dim: feature size the real weights give (the voice's ``ssl_dim``).
    output_layer: 1-based transformer layer taken (torch backends); None = the last layer, whatever
        the file's depth (HuBERT-Soft runs every layer).
    final_proj: whether the final projection is applied (torch backends).
    backend: "contentvec" (fairseq checkpoint), "hubert_soft" (bshall state dict) or "onnx".
    default_file: file name so-vits-svc loads from ``pretrain/``.
    alternate_files: other names of the same weights, tried in order when ``default_file`` is absent.
    what: what the file is, for messages.
    min_samples: shortest input at 16 kHz that gives one frame.
    """

    name: str
    dim: int
    output_layer: int | None
    final_proj: bool
    backend: str
    default_file: str
    what: str
    alternate_files: tuple[str, ...] = ()
    min_samples: int = 400


SPEECH_ENCODERS: dict[str, SpeechEncoderSpec] = {
    spec.name: spec
    for spec in (
        SpeechEncoderSpec("vec768l12", 768, 12, False, "contentvec", _CONTENTVEC_FILE, _CONTENTVEC_WHAT, ("hubert_base.pt",)),
        SpeechEncoderSpec("vec256l9", 256, 9, True, "contentvec", _CONTENTVEC_FILE, _CONTENTVEC_WHAT, ("hubert_base.pt",)),
        SpeechEncoderSpec(
            "hubertsoft", 256, None, True, "hubert_soft", "hubert-soft-0d54a1f4.pt",
            "HuBERT-Soft checkpoint (bshall/hubert release v0.1) used by hubertsoft", min_samples=320,
        ),
        SpeechEncoderSpec("vec768l12-onnx", 768, 12, False, "onnx", "vec-768-layer-12.onnx", _ONNX_WHAT),
        SpeechEncoderSpec("vec256l9-onnx", 256, 9, True, "onnx", "vec-256-layer-9.onnx", _ONNX_WHAT),
        SpeechEncoderSpec("vec256l12-onnx", 256, 12, True, "onnx", "vec-256-layer-12.onnx", _ONNX_WHAT),
        SpeechEncoderSpec("vec768l9-onnx", 768, 9, False, "onnx", "vec-768-layer-9.onnx", _ONNX_WHAT),
        SpeechEncoderSpec(
            "hubertsoft-onnx", 256, 12, True, "onnx", "hubert-soft.onnx",
            "ONNX HuBERT-Soft encoder from the MoeSS-SUBModel collection", min_samples=320,
        ),
    )
}

#: so-vits-svc 4.1 encoder names rtsvc does not run, with what they are.
UNSUPPORTED_SPEECH_ENCODERS = {
    "whisper-ppg": "Whisper (medium) PPG",
    "whisper-ppg-large": "Whisper (large-v2) PPG",
    "cnhubertlarge": "Chinese HuBERT large",
    "dphubert": "DPHuBERT",
    "wavlmbase+": "WavLM base+",
}


def default_pretrain_dir() -> Path:
    """``$RTSVC_PRETRAIN`` if set, else the repository's ``pretrain/`` folder."""
    env = os.environ.get(PRETRAIN_ENV)
    return Path(env) if env else Path(__file__).resolve().parent.parent / "pretrain"


def speech_encoder_spec(name: str) -> SpeechEncoderSpec:
    """The spec for a so-vits-svc ``speech_encoder`` name; :class:`ModelFileError` otherwise."""
    if name in SPEECH_ENCODERS:
        return SPEECH_ENCODERS[name]
    supported = ", ".join(SPEECH_ENCODERS)
    if name in UNSUPPORTED_SPEECH_ENCODERS:
        raise ModelFileError(
            f"speech encoder {name!r} ({UNSUPPORTED_SPEECH_ENCODERS[name]}) is not supported by rtsvc; "
            f"supported: {supported}.",
            "use a voice trained with one of the supported encoders (vec768l12 is so-vits-svc's default).",
        )
    raise ModelFileError(
        f"unknown speech encoder {name!r}; rtsvc supports {supported}.",
        "check model.speech_encoder in the voice's config.json.",
    )


class ContentEncoder(ABC):
    """16 kHz mono audio -> content features, 50 frames/s.

    name: the so-vits-svc speech_encoder name. dim: feature size of the loaded weights (the real
    files give ``SPEECH_ENCODERS[name].dim``; compare it with the voice's ``ssl_dim``).
    device: where :meth:`encode` returns its tensor.
    """

    sample_rate: int = ENCODER_SAMPLE_RATE
    hop: int = ENCODER_HOP

    def __init__(self, spec: SpeechEncoderSpec, dim: int, device: str, path: Path) -> None:
        self.name = spec.name
        self.spec = spec
        self.dim = dim
        self.device = device
        self.path = path

    def num_frames(self, samples: int) -> int:
        """Frames :meth:`encode` returns for ``samples`` input samples (0 if too short)."""
        if samples < self.spec.min_samples:
            return 0
        return (samples - self.spec.min_samples) // self.hop + 1

    def encode(self, audio_16k: np.ndarray | torch.Tensor) -> torch.Tensor:
        """audio_16k: (samples,) float in [-1, 1] at 16 kHz, used as is (no normalisation),
        at least ``spec.min_samples`` long (25 ms; 20 ms for HuBERT-Soft).
        Returns (1, dim, frames) float32 on ``device``, frames = :meth:`num_frames`."""
        if isinstance(audio_16k, torch.Tensor):
            wave = audio_16k.detach().to("cpu", torch.float32)
        else:
            wave = torch.from_numpy(np.ascontiguousarray(audio_16k, dtype=np.float32))
        if wave.dim() != 1:
            raise ParameterError(f"{self.name} encoder input must be mono audio shaped (samples,), got shape {tuple(wave.shape)}.")
        if wave.shape[0] < self.spec.min_samples:
            raise ParameterError(
                f"{self.name} encoder input is {wave.shape[0]} samples at 16 kHz; it needs at least "
                f"{self.spec.min_samples} ({1000 * self.spec.min_samples // ENCODER_SAMPLE_RATE} ms) for one frame."
            )
        features = self._features(wave)  # (1, frames, dim)
        return features.transpose(1, 2).to(self.device)

    @abstractmethod
    def _features(self, wave: torch.Tensor) -> torch.Tensor:
        """wave: (samples,) float32 CPU. Returns (1, frames, dim) float32."""

    def close(self) -> None:
        """Release the weights or the ONNX session."""


class TorchContentEncoder(ContentEncoder):
    """A :class:`~rtsvc.models.hubert.HubertModel` run with PyTorch."""

    def __init__(self, spec: SpeechEncoderSpec, model: torch.nn.Module, device: str, path: Path) -> None:
        config = model.config
        dim = config.proj_dim if spec.final_proj else config.embed_dim
        super().__init__(spec, dim, device, path)
        if spec.final_proj and not config.proj_dim:
            raise ModelFileError(f"{path}: has no final projection, which {spec.name} needs.", "use the original file.")
        self.output_layer = spec.output_layer or config.num_layers
        if self.output_layer > config.num_layers:
            raise ModelFileError(
                f"{path}: has {config.num_layers} transformer layers, {spec.name} takes layer {spec.output_layer}.",
                "use the original file.",
            )
        self.model = model.to(device).eval()

    def _features(self, wave: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.units(wave.to(self.device)[None], self.output_layer, self.spec.final_proj)

    def close(self) -> None:
        self.model = None


class OnnxContentEncoder(ContentEncoder):
    """An ONNX encoder file run with onnxruntime, as so-vits-svc's ``*_Onnx`` encoders do.

    The session's first input takes the wave as (1, 1, samples) float32 (so-vits-svc exports it
    as ``source``; a rank-2 input gets (1, samples)); its first output (``embed``) is
    (1, frames, dim). Runs on the CUDA provider when ``device`` is CUDA and onnxruntime offers
    it, else on the CPU provider; :attr:`provider` says which.
    """

    def __init__(self, spec: SpeechEncoderSpec, path: Path, device: str) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise RtsvcError(
                f"speech encoder {spec.name} needs onnxruntime, which is not installed.",
                "pip install 'rtsvc[onnx]' (CPU) or 'rtsvc[gpu]' (NVIDIA), or use the non-ONNX encoder "
                f"{spec.name.removesuffix('-onnx')}.",
            ) from None
        providers: list = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            index = torch.device(device).index or 0
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        try:
            session = onnxruntime.InferenceSession(str(path), providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(
                f"{path}: not a usable ONNX model, expected the {spec.what} ({detail}).",
                "the file is damaged or not an ONNX encoder; download it again.",
            ) from None
        self.session = session
        self.provider = session.get_providers()[0]
        source = session.get_inputs()[0]
        self._input_name = source.name
        self._input_rank = len(source.shape) if source.shape is not None else 3
        if self._input_rank not in (2, 3):
            raise ModelFileError(
                f"{path}: ONNX input {source.name!r} has shape {source.shape}, expected (1, 1, samples) "
                f"or (1, samples) audio; it is not a so-vits-svc content encoder."
            )
        out_shape = session.get_outputs()[0].shape
        static_dim = out_shape[-1] if out_shape and isinstance(out_shape[-1], int) else None
        super().__init__(spec, 0, device, path)
        self.dim = static_dim if static_dim else int(self._features(torch.zeros(spec.min_samples)).shape[-1])

    def _features(self, wave: torch.Tensor) -> torch.Tensor:
        shape = (1, 1, -1) if self._input_rank == 3 else (1, -1)
        (out, *_) = self.session.run(None, {self._input_name: wave.numpy().reshape(shape)})
        if out.ndim != 3 or out.shape[0] != 1:
            raise ModelFileError(
                f"{self.path}: ONNX encoder output has shape {out.shape}, expected (1, frames, dim)."
            )
        if self.dim and out.shape[2] != self.dim:
            raise ModelFileError(f"{self.path}: ONNX encoder output has {out.shape[2]} channels, expected {self.dim}.")
        return torch.from_numpy(np.asarray(out, dtype=np.float32))

    def close(self) -> None:
        self.session = None


def _check_device(device: str) -> str:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(f"device {device!r} is not a torch device name ({exc}).", "use 'cpu' or 'cuda'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} requested but this PyTorch has no usable CUDA GPU.", "use device 'cpu'.")
    if dev.type not in ("cpu", "cuda"):
        raise ParameterError(f"device {device!r} is not supported for content encoders.", "use 'cpu' or 'cuda'.")
    return str(dev)


def _resolve_file(spec: SpeechEncoderSpec, path: str | Path | None, pretrain_dir: Path | None) -> Path:
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ModelFileError(f"{p}: no such file; expected the {spec.what}.", "check the path.")
        return p
    folder = Path(pretrain_dir) if pretrain_dir is not None else default_pretrain_dir()
    for candidate in (spec.default_file, *spec.alternate_files):
        if (folder / candidate).is_file():
            return folder / candidate
    raise ModelFileError(
        f"speech encoder {spec.name}: weight file {folder / spec.default_file} not found. "
        f"It is the {spec.what}.",
        f"put {spec.default_file} in {folder} (pretrain/{spec.default_file}), or set {PRETRAIN_ENV} to the "
        "folder that holds it.",
    )


def load_content_encoder(
    name: str, *, path: str | Path | None = None, pretrain_dir: Path | None = None, device: str = "cpu"
) -> ContentEncoder:
    """Load the content encoder a so-vits-svc voice names.

    name: ``speech_encoder`` value (see :data:`SPEECH_ENCODERS`).
    path: the weight file; default ``<pretrain_dir>/<spec.default_file>``.
    pretrain_dir: default :func:`default_pretrain_dir`.
    device: "cpu" or "cuda[:n]" (ONNX: CUDA provider when onnxruntime has it, else CPU).
    Raises :class:`ModelFileError` (unknown/unsupported name, missing/unsafe/corrupt file) or
    :class:`ParameterError` (bad device).
    """
    spec = speech_encoder_spec(name)
    dev = _check_device(device)
    file = _resolve_file(spec, path, pretrain_dir)
    if spec.backend == "onnx":
        return OnnxContentEncoder(spec, file, dev)
    from rtsvc.models.hubert_weights import load_fairseq_hubert, load_hubert_soft

    model = load_fairseq_hubert(file, spec.what) if spec.backend == "contentvec" else load_hubert_soft(file, spec.what)
    return TorchContentEncoder(spec, model, dev, file)


__all__ = [
    "ContentEncoder",
    "ENCODER_HOP",
    "ENCODER_SAMPLE_RATE",
    "OnnxContentEncoder",
    "PRETRAIN_ENV",
    "SPEECH_ENCODERS",
    "SpeechEncoderSpec",
    "TorchContentEncoder",
    "UNSUPPORTED_SPEECH_ENCODERS",
    "default_pretrain_dir",
    "load_content_encoder",
    "speech_encoder_spec",
]
