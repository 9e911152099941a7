"""Inference backend switch: PyTorch (CPU/CUDA, fp32/fp16) or ONNX Runtime (CPU, CUDA EP).

:func:`choose_backend` turns a request ("auto", "torch", "onnxruntime") plus device and
precision into a :class:`BackendChoice` (or one clear :class:`ParameterError`).
:func:`apply_backend` wraps a loaded synthesizer and content encoder for that choice; the
ONNX Runtime objects keep the torch call contracts (``infer(...)`` of
``models.synthesizer.SynthesizerTrn``, ``encode(...)`` of ``rtsvc.encoders.ContentEncoder``)
so the voice, the live engine and render do not care which one runs.

The ONNX Runtime models themselves (:class:`rtsvc.ort_models.OrtSynthesizer`,
:class:`rtsvc.ort_models.OrtContentEncoder`) live in :mod:`rtsvc.ort_models`; this module
opens their sessions (:func:`make_session`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import torch

from rtsvc.errors import ModelFileError, ParameterError
from rtsvc.params import BACKEND_NAMES  # noqa: F401  (re-exported: the names --backend accepts)

#: Provider per device type.
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
#: What "auto" picks per device type when ONNX Runtime offers the provider (measured with
#: benchmarks/onnx.py; see docs/onnx.md).
AUTO_PREFERS_ORT = {"cpu": True, "cuda": True}


def available_providers() -> tuple[str, ...]:
    """ONNX Runtime execution providers installed here (empty without onnxruntime)."""
    try:
        import onnxruntime
    except ImportError:
        return ()
    return tuple(onnxruntime.get_available_providers())


@dataclass(frozen=True)
class BackendChoice:
    """name: "torch" or "onnxruntime"; device: "cpu" / "cuda[:n]"; fp16: half precision
    (torch on CUDA only); threads: intra-op threads (0 = the library's default);
    reason: why this backend (for status displays); cuda_graphs: torch on CUDA replays
    repeated calls as CUDA graphs (rtsvc.cuda_graphs)."""

    name: str
    device: str
    fp16: bool
    threads: int
    reason: str
    cuda_graphs: bool = False

    @property
    def provider(self) -> str | None:
        return PROVIDERS[torch.device(self.device).type] if self.name == "onnxruntime" else None

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": self.device, "precision": "fp16" if self.fp16 else "fp32",
                "provider": self.provider, "threads": self.threads or "default", "backend_reason": self.reason,
                "cuda_graphs": "requested" if self.cuda_graphs else "off"}


def choose_backend(requested: str = "auto", *, device: str = "cpu", fp16: bool = False, threads: int = 0,
                   cuda_graphs: bool | None = None) -> BackendChoice:
    """Resolve a backend request. "auto": ONNX Runtime when it has a provider for ``device``
    and fp32 is wanted, else torch. cuda_graphs: None = on for torch on CUDA where PyTorch can
    capture graphs (:data:`AUTO_CUDA_GRAPHS`), True = required, False = off. Impossible
    requests raise :class:`ParameterError`."""
    choice = _choose_backend(requested, device=device, fp16=fp16, threads=threads)
    possible = choice.name == "torch" and torch.device(choice.device).type == "cuda"
    if cuda_graphs is not None and not isinstance(cuda_graphs, bool):
        raise ParameterError(f"cuda_graphs must be true, false or null (auto), got {cuda_graphs!r}.")
    if cuda_graphs and not possible:
        raise ParameterError(f"CUDA graphs need the torch backend on a CUDA device; this voice runs {choice.name} on "
                             f"{choice.device}.", "use --device cuda --backend torch, or leave CUDA graphs off.")
    if cuda_graphs is None:
        from rtsvc.cuda_graphs import cuda_graphs_supported

        cuda_graphs = AUTO_CUDA_GRAPHS and possible and cuda_graphs_supported(choice.device)
    return replace(choice, cuda_graphs=bool(cuda_graphs))


#: Whether "auto" turns CUDA graphs on for torch on CUDA (measured with benchmarks/live.py).
AUTO_CUDA_GRAPHS = True


def _choose_backend(requested: str, *, device: str, fp16: bool, threads: int) -> BackendChoice:
    if requested not in BACKEND_NAMES:
        raise ParameterError(f"backend must be one of {', '.join(BACKEND_NAMES)}, got {requested!r}.")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(f"device {device!r} is not a device name.", "use 'cpu' or 'cuda'.") from None
    if dev.type not in PROVIDERS:
        raise ParameterError(f"device {device!r} is not supported.", "use 'cpu' or 'cuda'.")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ParameterError(f"threads must be a non-negative integer (0 = default), got {threads!r}.")
    providers = available_providers()
    has_provider = PROVIDERS[dev.type] in providers
    if dev.type == "cuda" and not torch.cuda.is_available() and not has_provider:
        raise ParameterError(f"device {device!r} requested but neither PyTorch nor ONNX Runtime can use a CUDA GPU here.",
                             "use device 'cpu', or install a CUDA build of torch / onnxruntime-gpu.")
    if fp16 and dev.type != "cuda":
        raise ParameterError("fp16 inference needs a CUDA device.", "drop fp16 on CPU (it would be slower and less exact).")
    if requested == "onnxruntime":
        if not providers:
            raise ParameterError("backend onnxruntime requested but onnxruntime is not installed.",
                                 "pip install 'rtsvc[onnx]' (CPU) or 'rtsvc[gpu]' (NVIDIA), or use --backend torch.")
        if not has_provider:
            raise ParameterError(f"backend onnxruntime on {device} needs {PROVIDERS[dev.type]}; this onnxruntime has "
                                 f"{', '.join(providers)}.", "install onnxruntime-gpu (rtsvc[gpu]) or use --backend torch.")
        if fp16:
            raise ParameterError("fp16 is not available with the onnxruntime backend (the exported graphs are fp32).",
                                 "use --backend torch with fp16, or drop fp16.")
        return BackendChoice("onnxruntime", str(dev), False, threads, "requested")
    if requested == "torch":
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ParameterError("backend torch on CUDA requested but this PyTorch has no usable CUDA GPU.",
                                 "use device 'cpu' or --backend onnxruntime.")
        return BackendChoice("torch", str(dev), fp16, threads, "requested")
    if has_provider and not fp16 and AUTO_PREFERS_ORT[dev.type]:
        return BackendChoice("onnxruntime", str(dev), False, threads, f"auto: onnxruntime has {PROVIDERS[dev.type]}")
    why = "fp16 requested" if fp16 else ("onnxruntime not installed" if not providers else
                                         f"onnxruntime lacks {PROVIDERS[dev.type]}" if not has_provider else "faster here")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"no backend can run on {device}: {why} and this PyTorch has no CUDA.", "use device 'cpu'.")
    return BackendChoice("torch", str(dev), fp16, threads, f"auto: {why}")


def make_session(model: bytes | str | os.PathLike, choice: BackendChoice):
    """An onnxruntime.InferenceSession for ``choice`` (threads, provider, full graph optimisation;
    on the CPU its threads sleep instead of spinning between runs)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if choice.threads:
        options.intra_op_num_threads = choice.threads
    dev = torch.device(choice.device)
    if dev.type == "cpu":
        # A live block runs several sessions back to back (pitch, encoder, synthesizer) beside
        # the audio thread. A spinning pool keeps its cores busy after its run and starves the
        # next session: on 2 cores the full-size chain took ~1.4x the sum of its parts.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers: list = ["CPUExecutionProvider"]
    if dev.type == "cuda":
        providers = [("CUDAExecutionProvider", {"device_id": dev.index or 0}), "CPUExecutionProvider"]
    source = model if isinstance(model, bytes) else str(model)
    try:
        return onnxruntime.InferenceSession(source, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        what = "ONNX data" if isinstance(model, bytes) else str(model)
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{what} cannot be run by onnxruntime ({detail}).",
                             "export it again with `rtsvc export-onnx`.") from None


def configure_torch_threads(choice: BackendChoice) -> None:
    """Apply ``choice.threads`` to torch's intra-op pool (0 leaves torch's default)."""
    if choice.threads:
        torch.set_num_threads(choice.threads)


def apply_backend(model, encoder, choice: BackendChoice, *, speakers: tuple[str, ...] | None = None,
                  speech_encoder: str = "", unit_interpolate_mode: str = "nearest",
                  synth_onnx: str | os.PathLike | None = None):
    """(synthesizer, encoder) to use for ``choice``.

    torch: the inputs themselves (fp16 models must be loaded with ``fp16=True``); threads applied.
    onnxruntime: an :class:`OrtSynthesizer` (from ``synth_onnx`` when given, else from the ONNX
    cache or exported from ``model`` now) and an :class:`OrtContentEncoder` for torch encoders
    (likewise cached; ONNX encoders are kept as they are). Both keep the torch call contracts.
    """
    from rtsvc.ort_models import OrtContentEncoder, OrtSynthesizer

    configure_torch_threads(choice)
    if choice.name == "torch":
        if choice.cuda_graphs:
            from rtsvc.cuda_graphs import graphed_backend

            return graphed_backend(model, encoder, choice, speakers=speakers, speech_encoder=speech_encoder,
                                   unit_interpolate_mode=unit_interpolate_mode)
        return model, encoder
    if synth_onnx is not None:
        synth = OrtSynthesizer.from_file(synth_onnx, choice, torch_model=model)
        if synth.ssl_dim != int(model.ssl_dim) or synth.hop_length != int(model.hop_length):
            raise ModelFileError(f"{synth_onnx} was exported from another model (ssl_dim {synth.ssl_dim}, hop "
                                 f"{synth.hop_length}; this voice has {model.ssl_dim}, {model.hop_length}).",
                                 "export this voice with `rtsvc export-onnx`.")
    else:
        synth = OrtSynthesizer.from_model(model, choice, speakers=speakers, speech_encoder=speech_encoder,
                                          unit_interpolate_mode=unit_interpolate_mode)
    if encoder is not None and hasattr(getattr(encoder, "model", None), "units"):
        encoder = OrtContentEncoder.from_encoder(encoder, choice)
    return synth, encoder


def describe_backend(synth, encoder, choice: BackendChoice) -> dict[str, Any]:
    """Status facts: backend, device, precision, provider(s), threads, why chosen, and where each
    ONNX graph came from (``*_onnx_source``: "cache", "export", "file"; None for torch models)."""
    facts = choice.describe()
    facts["synthesizer_provider"] = getattr(synth, "provider", None) or f"torch {choice.device}"
    facts["encoder_provider"] = getattr(encoder, "provider", None) or f"torch {choice.device}"
    facts["synthesizer_onnx_source"] = getattr(synth, "onnx_source", None)
    facts["encoder_onnx_source"] = getattr(encoder, "onnx_source", None)
    call = getattr(getattr(synth, "runner", None), "call", None)
    facts["cuda_graphs"] = call.describe() if call is not None else "off"
    return facts
