"""Finding and loading FCPE weights (torchfcpe's checkpoint format) without importing torchfcpe.

Lookup order (:func:`find_fcpe_weights`):

1. an explicit path, if the caller gives one;
2. ``<pretrain_dir>/fcpe.pt`` (``pretrain_dir`` defaults to the repository's ``pretrain/``);
3. ``torchfcpe/assets/fcpe_c_v001.pt`` inside an installed torchfcpe distribution, located through
   ``importlib.metadata`` (its RECORD), so torchfcpe (and torchaudio) is never imported.

The file is read with ``torch.load(weights_only=True)``: a dict ``{"model": state_dict,
"config_dict": {...}, "global_step": int}``. The state dict is mapped onto
:class:`rtsvc.models.fcpe.Fcpe` key by key and loaded strictly. Keys skipped on purpose:

- ``net.encoder_layers.N.norm.*``: the LayerNorm in front of the attention branch, which the
  conv-only model does not have (torchfcpe builds and saves it but never calls it);
- ``gaussian_blurred_cent_mask``: a training-target constant.
"""

from __future__ import annotations

import importlib.metadata
import os
import pickle
import re
from pathlib import Path

import torch

from rtsvc.errors import ModelFileError, ParameterError
from rtsvc.models.fcpe import Fcpe, FcpeNetConfig, configs_from_checkpoint
from rtsvc.models.fcpe_mel import MelConfig

#: Where a user may put FCPE weights: <pretrain dir>/fcpe.pt.
PRETRAIN_FILE_NAME = "fcpe.pt"
#: The repository's pretrain/ folder (the default lookup dir).
REPO_PRETRAIN_DIR = Path(__file__).resolve().parents[1] / "pretrain"
#: The bundled model inside the torchfcpe distribution.
TORCHFCPE_DISTRIBUTION = "torchfcpe"
TORCHFCPE_WEIGHTS = "torchfcpe/assets/fcpe_c_v001.pt"
INSTALL_COMMAND = "pip install --no-deps torchfcpe==0.0.4"

#: Checkpoint keys deliberately not loaded (see the module docstring).
_SKIPPED_KEYS = re.compile(r"^(net\.encoder_layers\.\d+\.norm\.(weight|bias)|gaussian_blurred_cent_mask)$")
#: checkpoint key pattern -> our key template (named groups: layer index, parameter name).
_P = r"(?P<param>weight|bias)"
_L = r"(?P<layer>\d+)"
_KEY_MAP = (
    (re.compile(rf"^input_stack\.0\.{_P}$"), "mel_in_conv.{param}"),
    (re.compile(rf"^input_stack\.1\.{_P}$"), "mel_in_norm.{param}"),
    (re.compile(rf"^input_stack\.3\.{_P}$"), "mel_in_conv2.{param}"),
    (re.compile(rf"^net\.encoder_layers\.{_L}\.conformer\.net\.0\.{_P}$"), "blocks.{layer}.norm.{param}"),
    (re.compile(rf"^net\.encoder_layers\.{_L}\.conformer\.net\.2\.{_P}$"), "blocks.{layer}.pointwise_in.{param}"),
    (re.compile(rf"^net\.encoder_layers\.{_L}\.conformer\.net\.4\.conv\.{_P}$"), "blocks.{layer}.depthwise.{param}"),
    (re.compile(rf"^net\.encoder_layers\.{_L}\.conformer\.net\.6\.{_P}$"), "blocks.{layer}.pointwise_out.{param}"),
    (re.compile(rf"^norm\.{_P}$"), "out_norm.{param}"),
    (re.compile(r"^output_proj\.bias$"), "out_proj.bias"),
    (re.compile(r"^cent_table$"), "cent_table"),
)
#: Weight-normed output projection: (magnitude g, direction v) key pairs, legacy and new style.
_WEIGHT_NORM_PAIRS = (
    ("output_proj.weight_g", "output_proj.weight_v"),
    ("output_proj.parametrizations.weight.original0", "output_proj.parametrizations.weight.original1"),
)


def torchfcpe_weights_path() -> Path | None:
    """The bundled weights file of an installed torchfcpe distribution, or None (not imported)."""
    try:
        dist = importlib.metadata.distribution(TORCHFCPE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if str(entry).replace("\\", "/") == TORCHFCPE_WEIGHTS:
            path = Path(str(dist.locate_file(entry)))
            return path if path.is_file() else None
    path = Path(str(dist.locate_file(TORCHFCPE_WEIGHTS)))
    return path if path.is_file() else None


def find_fcpe_weights(path: str | os.PathLike | None = None, pretrain_dir: str | os.PathLike = REPO_PRETRAIN_DIR) -> Path:
    """Return the FCPE weights file to use (see the module docstring for the order).

    Raises :class:`ModelFileError` naming every place looked at and how to install the weights.
    """
    if path is not None:
        explicit = Path(path)
        if not explicit.is_file():
            raise ModelFileError(f"{explicit}: FCPE weights file not found.",
                                 "check the path, or leave it out to use pretrain/fcpe.pt or torchfcpe's bundled file.")
        return explicit
    in_pretrain = Path(pretrain_dir) / PRETRAIN_FILE_NAME
    if in_pretrain.is_file():
        return in_pretrain
    bundled = torchfcpe_weights_path()
    if bundled is not None:
        return bundled
    raise ModelFileError(
        f"FCPE weights not found: no {in_pretrain}, and no {TORCHFCPE_WEIGHTS} from an installed torchfcpe package.",
        f"run `{INSTALL_COMMAND}` (--no-deps keeps your torch; rtsvc only reads the weights file), "
        f"or copy fcpe_c_v001.pt from that package to {in_pretrain}.",
    )


def _fold_weight_norm(magnitude: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Weight norm over dim 0: w[i] = g[i] * v[i] / ||v[i]||. (out, in) float32."""
    norm = direction.norm(dim=tuple(range(1, direction.dim())), keepdim=True)
    return magnitude * direction / norm


def map_state_dict(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """torchfcpe CFNaiveMelPE state dict -> :class:`FcpeNetwork` state dict (float32).

    Kernel-1 Conv1d weights become Linear weights, the weight-normed output projection is folded.
    Any key that is neither mapped nor in the named skip list raises :class:`ModelFileError`.
    """
    out: dict[str, torch.Tensor] = {}
    consumed: set[str] = set()
    for g_key, v_key in _WEIGHT_NORM_PAIRS:
        if g_key in state and v_key in state:
            out["out_proj.weight"] = _fold_weight_norm(state[g_key].float(), state[v_key].float())
            consumed.update((g_key, v_key))
    if "output_proj.weight" in state:
        out["out_proj.weight"] = state["output_proj.weight"].float()
        consumed.add("output_proj.weight")
    unknown = []
    for key, tensor in state.items():
        if key in consumed or _SKIPPED_KEYS.match(key):
            continue
        for pattern, template in _KEY_MAP:
            m = pattern.match(key)
            if m:
                new_key = template.format(**m.groupdict())
                value = tensor.float()
                if ".pointwise_" in new_key and new_key.endswith(".weight"):
                    value = value.squeeze(-1)  # Conv1d (out, in, 1) -> Linear (out, in)
                out[new_key] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ModelFileError(f"{source}: unexpected FCPE weights {', '.join(sorted(unknown)[:6])}"
                             f"{' ...' if len(unknown) > 6 else ''} ({len(unknown)} keys).",
                             "use torchfcpe 0.0.4's assets/fcpe_c_v001.pt.")
    return out


def read_fcpe_checkpoint(path: str | os.PathLike) -> tuple[MelConfig, FcpeNetConfig, dict[str, torch.Tensor]]:
    """Load a torchfcpe checkpoint safely; returns (mel config, network config, raw state dict)."""
    source = str(path)
    try:
        ckpt = torch.load(source, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{source}: not a loadable FCPE weights file ({detail[:200]}).",
                             "use torchfcpe 0.0.4's assets/fcpe_c_v001.pt (or a copy of it).") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ModelFileError(f"{source}: expected a torchfcpe checkpoint (a dict with 'model' and 'config_dict').",
                             "use torchfcpe 0.0.4's assets/fcpe_c_v001.pt.")
    if "config_dict" not in ckpt:
        hint = " This looks like the older so-vits-svc FCPE file (a 'config' entry), which is not supported." \
            if "config" in ckpt else ""
        raise ModelFileError(f"{source}: FCPE checkpoint has no 'config_dict'.{hint}",
                             f"use torchfcpe 0.0.4's assets/fcpe_c_v001.pt (`{INSTALL_COMMAND}`).")
    state = ckpt["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{source}: FCPE 'model' entry is not a state dict of tensors.")
    mel_cfg, net_cfg = configs_from_checkpoint(ckpt["config_dict"], source)
    return mel_cfg, net_cfg, state


def check_device(device: str) -> torch.device:
    """``device`` as a torch.device; ParameterError if malformed or (CUDA) not available."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(f"device must be a torch device name like 'cpu' or 'cuda:0', got {device!r}.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} is not available: this torch has no usable CUDA GPU.", "use device='cpu'.")
    return dev


def load_fcpe(path: str | os.PathLike | None = None, pretrain_dir: str | os.PathLike = REPO_PRETRAIN_DIR,
              device: str = "cpu") -> Fcpe:
    """Find (see :func:`find_fcpe_weights`), load strictly and return an eval-mode :class:`Fcpe` on ``device``."""
    dev = check_device(device)
    file = find_fcpe_weights(path, pretrain_dir)
    mel_cfg, net_cfg, state = read_fcpe_checkpoint(file)
    model = Fcpe(mel_cfg, net_cfg)
    mapped = map_state_dict(state, str(file))
    try:
        model.network.load_state_dict(mapped, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelFileError(f"{file}: FCPE weights do not fit the network its config describes "
                             f"({' '.join(first[:3])[:300]}).", "use torchfcpe 0.0.4's assets/fcpe_c_v001.pt.") from None
    return model.to(dev)
