"""What ``Controller.load_voice`` accepts, and the default loader.

A voice spec is "world" (the built-in WORLD voice) or a SoVITS model: ``(model_path,
config_path)``, a dict with the :class:`VoiceSpec` field names (``{"model_path": ...,
"config_path": ..., "backend": "onnxruntime", ...}``) or a :class:`VoiceSpec`. The SoVITS fields
are the ones ``rtsvc render`` / ``rtsvc live`` take on the command line (``-e``, ``-cm``, ``-fr``,
``--backend``, ``--threads``, ``--onnx``, ``--fp16``, ``--cuda-graphs``) and are passed to
:func:`rtsvc.sovits_voice.load_sovits_voice` unchanged. Loading runs off the audio and worker
threads; the SoVITS loader module is imported only when needed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

from rtsvc.errors import ModelFileError, ParameterError
from rtsvc.params import BACKEND_NAMES
from rtsvc.voice import Voice

#: Voice kinds.
VOICE_KINDS = ("world", "sovits")
#: VoiceSpec fields that hold file or folder paths (kept as strings).
PATH_FIELDS = ("model_path", "config_path", "encoder_path", "pretrain_dir", "cluster_path", "onnx_path")


@dataclass(frozen=True)
class VoiceSpec:
    """Which voice to load and how (frozen; ``to_dict()`` is JSON-able and ``parse_voice_spec``
    reads it back).

    kind: "world" or "sovits". model_path / config_path: the SoVITS checkpoint and config.json.
    device: torch device ("cpu", "cuda", ...).
    encoder_path: content-encoder weights (None: looked up in ``pretrain_dir``).
    pretrain_dir: where encoder weights are looked up (None: the default pretrain/ folder).
    cluster_path: cluster model / feature index for ``cluster_ratio`` (None: none loaded).
    feature_retrieval: True if cluster_path must be a feature index, False a cluster model,
    None either. backend: one of :data:`rtsvc.params.BACKEND_NAMES`.
    threads: intra-op threads (0 = the library default). onnx_path: synthesizer exported by
    ``rtsvc export-onnx`` (onnxruntime backend; None: exported at load). fp16: run the
    synthesizer in half precision (torch backend on CUDA only). cuda_graphs: replay the live
    path as CUDA graphs (torch on CUDA; None = auto).
    """

    kind: str = "world"
    model_path: str | None = None
    config_path: str | None = None
    device: str = "cpu"
    encoder_path: str | None = None
    pretrain_dir: str | None = None
    cluster_path: str | None = None
    feature_retrieval: bool | None = None
    backend: str = "auto"
    threads: int = 0
    onnx_path: str | None = None
    fp16: bool = False
    cuda_graphs: bool | None = None

    def __post_init__(self) -> None:
        if self.kind not in VOICE_KINDS:
            raise ParameterError(f"voice kind must be one of {', '.join(VOICE_KINDS)}, got {self.kind!r}.")
        for name in PATH_FIELDS:
            value = getattr(self, name)
            if isinstance(value, Path):
                object.__setattr__(self, name, str(value))
            elif value is not None and not isinstance(value, str):
                raise ParameterError(f"voice {name} must be a path (string) or null, got {value!r}.")
        if not isinstance(self.device, str) or not self.device.strip():
            raise ParameterError(f"voice device must be a device name such as 'cpu' or 'cuda', got {self.device!r}.")
        if self.backend not in BACKEND_NAMES:
            raise ParameterError(f"backend must be one of {', '.join(BACKEND_NAMES)}, got {self.backend!r}.")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise ParameterError(f"threads must be an integer >= 0 (0 = library default), got {self.threads!r}.")
        if not isinstance(self.fp16, bool):
            raise ParameterError(f"fp16 must be true or false, got {self.fp16!r}.")
        if self.cuda_graphs is not None and not isinstance(self.cuda_graphs, bool):
            raise ParameterError(f"cuda_graphs must be true, false or null (auto), got {self.cuda_graphs!r}.")
        if self.feature_retrieval is not None and not isinstance(self.feature_retrieval, bool):
            raise ParameterError(f"feature_retrieval must be true, false or null, got {self.feature_retrieval!r}.")
        if self.kind == "sovits" and (not self.model_path or not self.config_path):
            raise ParameterError("a SoVITS voice needs both model_path and config_path.")

    def describe(self) -> str:
        return "world" if self.kind == "world" else f"sovits {Path(str(self.model_path)).name}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Loads a voice for a spec (blocking; the controller calls it in a loader thread).
VoiceLoader = Callable[[VoiceSpec], Voice]

_SPEC_KEYS = tuple(f.name for f in fields(VoiceSpec))


def parse_voice_spec(spec: Any, device: str = "cpu") -> VoiceSpec:
    """Normalise the accepted spec forms (``device`` applies where the spec names none);
    ParameterError for anything else."""
    if isinstance(spec, VoiceSpec):
        return spec
    if isinstance(spec, str) and spec.strip().lower() == "world":
        return VoiceSpec("world", device=device)
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and all(isinstance(p, (str, Path)) for p in spec):
        return VoiceSpec("sovits", str(spec[0]), str(spec[1]), device)
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - set(_SPEC_KEYS))
        if unknown:
            raise ParameterError(f"unknown voice spec key(s): {', '.join(unknown)}; known: {', '.join(_SPEC_KEYS)}.")
        values = dict(spec)
        values.setdefault("kind", "sovits" if values.get("model_path") else "world")
        values.setdefault("device", device)
        if values["kind"] == "world":
            return VoiceSpec("world", device=str(values["device"]))
        return VoiceSpec(**values)
    raise ParameterError(
        f"voice must be \"world\" or a SoVITS (model_path, config_path) pair, got {spec!r}."
    )


def default_voice_loader(spec: VoiceSpec) -> Voice:
    """The built-in WORLD voice, or ``rtsvc.sovits_voice.load_sovits_voice`` (imported lazily)
    with every field of ``spec`` passed through."""
    if spec.kind == "world":
        from rtsvc.world_voice import WorldVoice

        return WorldVoice()
    for label, path in (("model", spec.model_path), ("config", spec.config_path)):
        if not path or not Path(path).is_file():
            raise ModelFileError(f"{path}: SoVITS {label} file not found.", "give the .pth model with -m and its config.json with -c.")
    try:
        from rtsvc.sovits_voice import load_sovits_voice
    except ModuleNotFoundError as exc:
        if exc.name != "rtsvc.sovits_voice":
            raise
        raise ModelFileError("SoVITS voices are not available in this build of rtsvc (rtsvc.sovits_voice is missing).",
                             "use the built-in voice (world) or update rtsvc.") from None
    return load_sovits_voice(spec.model_path, spec.config_path, device=spec.device, encoder_path=spec.encoder_path,
                             pretrain_dir=spec.pretrain_dir, cluster_path=spec.cluster_path,
                             feature_retrieval=spec.feature_retrieval, backend=spec.backend, threads=spec.threads,
                             onnx_path=spec.onnx_path, fp16=spec.fp16,
                             cuda_graphs=spec.cuda_graphs)
