"""ONNX export of the SoVITS synthesizer and of the content encoders.

* :func:`export_synthesizer` writes the synthesizer graph (so-vits-svc / MoeVoiceStudio input
  names ``c, f0, mel2ph, uv, noise, sid[, vol]``, output ``audio``; the rtsvc flavour adds the
  NSF random draws ``harmonic_phase`` and ``source_noise`` as inputs so runs are reproducible).
* :func:`export_content_encoder` writes a ContentVec/HuBERT encoder in so-vits-svc's ONNX
  encoder signature (``source`` (1, 1, samples) -> ``embed`` (1, frames, dim)), which
  rtsvc's ``*-onnx`` speech encoders and MoeVoiceStudio read.

Both use the TorchScript exporter (``dynamo=False``: the dynamo exporter needs onnxscript)
with a dynamic frame axis, and store facts about the model in the file's metadata
(``rtsvc.*`` keys, see :data:`META_PREFIX`) so a loader can check the file fits. Graph details:
docs/onnx.md.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from rtsvc.errors import ModelFileError, ParameterError, RtsvcError

#: Opset of every exported graph (ONNX Runtime >= 1.14 runs it; Trilu/CumSum need >= 14).
ONNX_OPSET = 17
#: Metadata key prefix; values are strings (JSON for lists).
META_PREFIX = "rtsvc."
#: Contract id written to the synthesizer file (bump when inputs change meaning).
SYNTH_CONTRACT = "sovits-synthesizer/1"
ENCODER_CONTRACT = "content-encoder/1"
#: Flavours: "rtsvc" (draw inputs, reproducible) or "moevs" (MoeVoiceStudio's input set only).
FLAVOURS = ("rtsvc", "moevs")
#: Frames of the example input used for tracing (any length works at run time).
EXAMPLE_FRAMES = 8
#: Seconds of example audio traced for encoders.
EXAMPLE_ENCODER_SECONDS = 0.25


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise RtsvcError("ONNX export needs the onnx package, which is not installed.",
                         "pip install 'rtsvc[onnx]' (CPU) or 'rtsvc[gpu]' (NVIDIA).") from None


@dataclass(frozen=True)
class SynthesizerFacts:
    """What a synthesizer graph needs from its model (stored as metadata).

    speakers: names in id order. speaker_mix: ``sid`` is (T, n_speakers) float mix weights
    (else an int64 id (1,)). source_draws: the graph takes harmonic_phase / source_noise.
    keep_input: the graph takes ``keep`` and returns the window's last ``keep`` samples (rtsvc
    flavour; files without the key, written before it existed, have none).
    """

    sampling_rate: int
    hop_length: int
    ssl_dim: int
    inter_channels: int
    harmonics: int
    vol_embedding: bool
    speakers: tuple[str, ...]
    speaker_mix: bool
    source_draws: bool
    speech_encoder: str
    unit_interpolate_mode: str
    flavour: str
    keep_input: bool = False

    def metadata(self) -> dict[str, str]:
        values = {
            "contract": SYNTH_CONTRACT, "flavour": self.flavour, "sampling_rate": str(self.sampling_rate),
            "hop_length": str(self.hop_length), "ssl_dim": str(self.ssl_dim),
            "inter_channels": str(self.inter_channels), "harmonics": str(self.harmonics),
            "vol_embedding": json.dumps(self.vol_embedding), "speakers": json.dumps(list(self.speakers)),
            "speaker_mix": json.dumps(self.speaker_mix), "source_draws": json.dumps(self.source_draws),
            "speech_encoder": self.speech_encoder, "unit_interpolate_mode": self.unit_interpolate_mode,
            "keep_input": json.dumps(self.keep_input),
        }
        return {META_PREFIX + k: v for k, v in values.items()}

    @classmethod
    def from_metadata(cls, meta: dict[str, str], where: str) -> "SynthesizerFacts":
        values = {k[len(META_PREFIX):]: v for k, v in meta.items() if k.startswith(META_PREFIX)}
        if values.get("contract") != SYNTH_CONTRACT:
            raise ModelFileError(
                f"{where} is not an rtsvc SoVITS synthesizer graph (metadata rtsvc.contract is "
                f"{values.get('contract')!r}, expected {SYNTH_CONTRACT!r}).",
                "export it with `rtsvc export-onnx -m G.pth -c config.json -o model.onnx`.")
        try:
            return cls(
                sampling_rate=int(values["sampling_rate"]), hop_length=int(values["hop_length"]),
                ssl_dim=int(values["ssl_dim"]), inter_channels=int(values["inter_channels"]),
                harmonics=int(values["harmonics"]), vol_embedding=bool(json.loads(values["vol_embedding"])),
                speakers=tuple(json.loads(values["speakers"])), speaker_mix=bool(json.loads(values["speaker_mix"])),
                source_draws=bool(json.loads(values["source_draws"])), speech_encoder=values["speech_encoder"],
                unit_interpolate_mode=values["unit_interpolate_mode"], flavour=values["flavour"],
                keep_input=bool(json.loads(values.get("keep_input", "false"))),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelFileError(f"{where}: rtsvc metadata is incomplete or damaged ({exc}).",
                                 "export the model again with `rtsvc export-onnx`.") from None


def synthesizer_facts(model, *, speakers: tuple[str, ...] | None = None, flavour: str = "rtsvc",
                      speech_encoder: str = "", unit_interpolate_mode: str = "nearest",
                      speaker_mix: bool | None = None) -> SynthesizerFacts:
    """Facts for ``model`` (a loaded SynthesizerTrn). ``speaker_mix`` None: so-vits-svc's rule
    (mix weights when the model has 2+ speakers)."""
    if flavour not in FLAVOURS:
        raise ParameterError(f"ONNX flavour must be one of {', '.join(FLAVOURS)}, got {flavour!r}.")
    n = int(model.n_speakers)
    names = tuple(speakers) if speakers else tuple(f"speaker{i}" for i in range(n))
    if len(names) != n:
        raise ParameterError(f"{len(names)} speaker names given for a model with {n} speaker(s).")
    return SynthesizerFacts(
        sampling_rate=int(model.sampling_rate), hop_length=int(model.hop_length), ssl_dim=int(model.ssl_dim),
        inter_channels=int(model.inter_channels), harmonics=int(model.dec.m_source.dim),
        vol_embedding=bool(model.vol_embedding), speakers=names,
        speaker_mix=(n >= 2) if speaker_mix is None else bool(speaker_mix), source_draws=flavour == "rtsvc",
        speech_encoder=speech_encoder, unit_interpolate_mode=unit_interpolate_mode, flavour=flavour,
        keep_input=flavour == "rtsvc",
    )


def example_synth_inputs(facts: SynthesizerFacts, frames: int = EXAMPLE_FRAMES) -> dict[str, torch.Tensor]:
    """Named example inputs for ``frames`` frames (batch 1), in graph order."""
    gen = torch.Generator().manual_seed(0)
    n_spk = len(facts.speakers)
    inputs = {
        "c": torch.randn(1, frames, facts.ssl_dim, generator=gen),
        "f0": 100 + 300 * torch.rand(1, frames, generator=gen),
        "mel2ph": torch.arange(1, frames + 1, dtype=torch.int64)[None],
        "uv": torch.ones(1, frames),
        "noise": torch.zeros(1, facts.inter_channels, frames),
        "sid": torch.full((frames, n_spk), 1.0 / n_spk) if facts.speaker_mix else torch.zeros(1, dtype=torch.int64),
    }
    if facts.vol_embedding:
        inputs["vol"] = torch.full((1, frames), 0.1)
    if facts.source_draws:
        inputs["harmonic_phase"] = torch.zeros(1, facts.harmonics)
        inputs["source_noise"] = torch.zeros(1, frames * facts.hop_length, facts.harmonics)
    if facts.keep_input:
        inputs["keep"] = torch.tensor([frames * facts.hop_length // 2], dtype=torch.int64)
    return inputs


def _dynamic_axes(names: list[str], speaker_mix: bool) -> dict[str, dict[int, str]]:
    axes = {"c": {1: "units"}, "f0": {1: "frames"}, "mel2ph": {1: "frames"}, "uv": {1: "frames"},
            "noise": {2: "frames"}, "vol": {1: "frames"}, "source_noise": {1: "samples"}, "audio": {2: "samples"}}
    if speaker_mix:
        axes["sid"] = {0: "frames"}
    return {k: v for k, v in axes.items() if k in names or k == "audio"}


def _to_bytes(module: torch.nn.Module, args: tuple, names: list[str], outputs: list[str],
              axes: dict[str, dict[int, str]], opset: int) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-derived Python ints are expected
        torch.onnx.export(module, args, buffer, input_names=names, output_names=outputs, dynamic_axes=axes,
                          opset_version=opset, dynamo=False, do_constant_folding=True)
    return buffer.getvalue()


def _with_metadata(data: bytes, meta: dict[str, str]) -> bytes:
    """The exported graph with its metadata, its 1-D convolutions as 2-D ones (faster in
    onnxruntime on the CPU, see rtsvc.onnx_conv2d) and rtsvc as producer."""
    import onnx

    from rtsvc.onnx_conv2d import conv1d_as_conv2d

    proto = onnx.load_from_string(data)
    conv1d_as_conv2d(proto)
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "rtsvc"
    return proto.SerializeToString()


def synthesizer_onnx_bytes(model, facts: SynthesizerFacts, *, opset: int = ONNX_OPSET) -> bytes:
    """The synthesizer graph of ``model`` (eval mode, weight norm folded, float32) as bytes."""
    _require_onnx()
    from rtsvc.models.onnx_wrappers import AUDIO_OUTPUT, SynthesizerForExport

    if getattr(model, "dtype", torch.float32) != torch.float32:
        raise ParameterError("ONNX export needs a float32 model; load it without fp16.")
    wrapper = SynthesizerForExport(model, speaker_mix=facts.speaker_mix, source_draws=facts.source_draws,
                                   keep_input=facts.keep_input).eval()
    names = wrapper.input_names()
    inputs = example_synth_inputs(facts)
    if list(inputs) != names:
        raise AssertionError(f"example inputs {list(inputs)} do not match graph inputs {names}")
    with torch.no_grad():
        data = _to_bytes(wrapper, tuple(inputs.values()), names, [AUDIO_OUTPUT],
                         _dynamic_axes(names, facts.speaker_mix), opset)
    return _with_metadata(data, facts.metadata())


def encoder_onnx_bytes(encoder, *, opset: int = ONNX_OPSET) -> bytes:
    """The graph of a loaded torch content encoder (rtsvc.encoders.TorchContentEncoder) in
    so-vits-svc's encoder signature: ``source`` (1, 1, samples) float32 16 kHz ->
    ``embed`` (1, frames, dim)."""
    _require_onnx()
    from rtsvc.models.hubert import UnitsForExport

    model = getattr(encoder, "model", None)
    if model is None or not hasattr(model, "units"):
        raise ParameterError(f"content encoder {getattr(encoder, 'name', encoder)!r} is not a torch network; "
                             "only ContentVec/HuBERT torch encoders can be exported.")
    wrapper = UnitsForExport(model.float().cpu(), encoder.output_layer, encoder.spec.final_proj).eval()
    source = torch.zeros(1, 1, int(EXAMPLE_ENCODER_SECONDS * encoder.sample_rate))
    source.normal_(generator=torch.Generator().manual_seed(0)).mul_(0.1)
    with torch.no_grad():
        data = _to_bytes(wrapper, (source,), ["source"], ["embed"],
                         {"source": {2: "samples"}, "embed": {1: "frames"}}, opset)
    meta = {"contract": ENCODER_CONTRACT, "speech_encoder": encoder.name, "dim": str(encoder.dim),
            "sample_rate": str(encoder.sample_rate), "hop": str(encoder.hop)}
    return _with_metadata(data, {META_PREFIX + k: v for k, v in meta.items()})


def write_onnx(path: str | os.PathLike, data: bytes) -> Path:
    """Write ONNX bytes to ``path`` atomically (a .partial file renamed into place)."""
    out = Path(path)
    if out.is_dir():
        raise ParameterError(f"output {out} is a folder; give a file name such as {out / 'model.onnx'}.")
    if not out.parent.is_dir():
        raise ParameterError(f"the folder of output {out} does not exist.", "create it first or choose another path.")
    tmp = out.with_name(out.name + ".partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ParameterError(f"cannot write {out}: {exc.strerror or exc}.", "choose a writable path.") from None
    return out


def export_synthesizer(model, path: str | os.PathLike, facts: SynthesizerFacts, *, opset: int = ONNX_OPSET) -> Path:
    """Write the synthesizer graph of ``model`` to ``path`` (atomically). Returns the path."""
    return write_onnx(path, synthesizer_onnx_bytes(model, facts, opset=opset))


def export_content_encoder(encoder, path: str | os.PathLike, *, opset: int = ONNX_OPSET) -> Path:
    """Write the content encoder graph to ``path`` (atomically). Returns the path."""
    return write_onnx(path, encoder_onnx_bytes(encoder, opset=opset))


def read_metadata(path_or_bytes: str | os.PathLike | bytes) -> dict[str, str]:
    """The metadata_props of an ONNX file (without loading the weights into memory twice)."""
    _require_onnx()
    import onnx

    try:
        if isinstance(path_or_bytes, bytes):
            proto = onnx.load_from_string(path_or_bytes)
        else:
            proto = onnx.load(str(path_or_bytes), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for non-ONNX files
        raise ModelFileError(f"{path_or_bytes if not isinstance(path_or_bytes, bytes) else 'ONNX data'} is not an "
                             f"ONNX model ({type(exc).__name__}).", "pass a file written by `rtsvc export-onnx`.") from None
    return {p.key: p.value for p in proto.metadata_props}
