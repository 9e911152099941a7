"""FCPE (Fast Context-based Pitch Estimation) inference, in plain PyTorch.

This is the network of torchfcpe's bundled model (``assets/fcpe_c_v001.pt``, a conv-only
"CFNaiveMelPE"), re-written for inference only so that rtsvc never imports torchfcpe (which
imports torchaudio at package import and, installed with its dependencies, would replace the
user's torch). Only the weights file is read; see :mod:`rtsvc.models.fcpe_weights`.

Pipeline (T = n // 160 + 1 frames of 10 ms for n samples at 16 kHz)::

    audio (B, n) --LogMelFrontEnd--> mel (B, T, 128)
      --Conv1d k3 -> GroupNorm(4) -> LeakyReLU -> Conv1d k3--> (B, T, 512)
      --6 x ConvBlock (x + pointwise(SiLU(depthwise k31(GLU(pointwise(LayerNorm(x))))))) -->
      --LayerNorm -> Linear 512->360 -> sigmoid--> salience (B, T, 360) over a cent grid
      --local-argmax decoder--> f0 (B, T) Hz, 0 where max salience <= threshold

The 360 salience bins are equally spaced in cents (relative to 10 Hz) from f0_min to f0_max
(32.70 .. 1975.5 Hz). The decoder takes the bin with the highest salience, and returns the
salience-weighted mean of the cents of the 9 bins centred on it. Near the grid ends the window
indices are clamped, so the end bin is counted once per clamped index (as torchfcpe does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rtsvc.errors import ModelFileError
from rtsvc.models.fcpe_mel import LogMelFrontEnd, MelConfig

#: Reference frequency of FCPE's cent scale: cents = 1200 * log2(f0 / 10 Hz).
CENT_REFERENCE_HZ = 10.0
#: Bins either side of the peak used by the local-argmax decoder (9 bins in all).
LOCAL_ARGMAX_HALF_WIDTH = 4
#: Input stack: GroupNorm groups and LeakyReLU slope (torch's default, as trained).
INPUT_GROUPS = 4
LRELU_SLOPE = 0.01
#: ConvBlock: pointwise expansion factor and depthwise kernel size.
CONV_EXPANSION = 2
DEPTHWISE_KERNEL = 31
#: Default voicing threshold on the peak salience (so-vits-svc's default for FCPE).
DEFAULT_THRESHOLD = 0.05


@dataclass(frozen=True)
class FcpeNetConfig:
    """Network sizes. n_mels: input bands; bins: salience bins; hidden: channels;
    n_layers: ConvBlocks; f0_min/f0_max: Hz range of the salience grid."""

    n_mels: int = 128
    bins: int = 360
    hidden: int = 512
    n_layers: int = 6
    f0_min: float = 32.70
    f0_max: float = 1975.5


#: Keys of torchfcpe's checkpoint ``config_dict`` sections that rtsvc reads or knowingly ignores.
_MEL_KEYS = {"sr", "num_mels", "n_fft", "win_size", "hop_size", "fmin", "fmax", "type"}
_MODEL_KEYS = {
    "type", "out_dims", "hidden_dims", "n_layers", "n_heads", "f0_min", "f0_max", "use_fa_norm",
    "residual_dropout", "attention_dropout", "conv_only", "conv_dropout", "atten_dropout", "use_harmonic_emb",
}


def configs_from_checkpoint(config_dict: Any, source: str) -> tuple[MelConfig, FcpeNetConfig]:
    """Read the ``config_dict`` stored in a torchfcpe checkpoint.

    Only the ``mel`` and ``model`` sections matter for inference (``data``, ``train``, ``loss``,
    ``env``, ``device`` are training records). Unknown keys in those two sections, and models this
    implementation does not cover (with attention, harmonic embedding, STFT input), raise
    :class:`ModelFileError` naming ``source``.
    """
    if not isinstance(config_dict, dict) or not isinstance(config_dict.get("mel"), dict) \
            or not isinstance(config_dict.get("model"), dict):
        raise ModelFileError(f"{source}: FCPE config_dict lacks its 'mel'/'model' sections.",
                             "use torchfcpe 0.0.4's assets/fcpe_c_v001.pt.")
    mel, model = config_dict["mel"], config_dict["model"]
    for name, section, known in (("mel", mel, _MEL_KEYS), ("model", model, _MODEL_KEYS)):
        unknown = sorted(set(section) - known)
        if unknown:
            raise ModelFileError(f"{source}: unknown FCPE {name} setting(s) {', '.join(unknown)}; "
                                 f"this FCPE implementation knows {', '.join(sorted(known))}.",
                                 "use torchfcpe 0.0.4's assets/fcpe_c_v001.pt.")
    unsupported = []
    if model.get("type") != "CFNaiveMelPE":
        unsupported.append(f"model type {model.get('type')!r} (expected 'CFNaiveMelPE')")
    if not model.get("conv_only", False):
        unsupported.append("attention layers (conv_only is false)")
    if model.get("use_harmonic_emb", False):
        unsupported.append("harmonic embedding")
    if str(mel.get("type", "default")).lower() not in ("default", "none"):
        unsupported.append(f"mel type {mel.get('type')!r}")
    if unsupported:
        raise ModelFileError(f"{source}: unsupported FCPE variant: {'; '.join(unsupported)}.",
                             "use torchfcpe 0.0.4's bundled conv-only model assets/fcpe_c_v001.pt.")
    sr = int(mel.get("sr", 16000))
    mel_cfg = MelConfig(sample_rate=sr, n_mels=int(mel["num_mels"]), n_fft=int(mel.get("n_fft", 1024)),
                        win_length=int(mel.get("win_size", 1024)), hop_length=int(mel.get("hop_size", 160)),
                        f_min=float(mel.get("fmin", 0.0) or 0.0), f_max=float(mel.get("fmax") or sr / 2))
    net_cfg = FcpeNetConfig(n_mels=mel_cfg.n_mels, bins=int(model["out_dims"]), hidden=int(model["hidden_dims"]),
                            n_layers=int(model["n_layers"]), f0_min=float(model["f0_min"]),
                            f0_max=float(model["f0_max"]))
    return mel_cfg, net_cfg


class ConvBlock(nn.Module):
    """Residual conformer-style convolution block, (B, T, C) -> (B, T, C).

    x + pointwise_out(SiLU(depthwise(GLU(pointwise_in(LayerNorm(x)))))), where pointwise_in
    maps C -> 2 * expansion * C, GLU halves it, depthwise is a per-channel k=31 conv over time
    with 'same' zero padding, and pointwise_out maps back to C. Pointwise convs are Linear layers
    on the channel axis (the same maths as kernel-1 Conv1d).
    """

    def __init__(self, channels: int, expansion: int = CONV_EXPANSION, kernel_size: int = DEPTHWISE_KERNEL) -> None:
        super().__init__()
        inner = channels * expansion
        self.norm = nn.LayerNorm(channels)
        self.pointwise_in = nn.Linear(channels, 2 * inner)
        self.depthwise = nn.Conv1d(inner, inner, kernel_size, padding=kernel_size // 2, groups=inner)
        self.pointwise_out = nn.Linear(inner, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.glu(self.pointwise_in(self.norm(x)), dim=-1)
        # The depthwise conv runs as a (k, 1) conv2d: same maths, and on CPU several times faster
        # than torch's grouped conv1d for these shapes (0.14 vs 0.8 ms at 6 frames, 2 threads).
        dw = self.depthwise
        h = F.conv2d(h.transpose(1, 2).unsqueeze(-1), dw.weight.unsqueeze(-1), dw.bias,
                     padding=(dw.padding[0], 0), groups=dw.groups).squeeze(-1)
        return x + self.pointwise_out(F.silu(h).transpose(1, 2))


class FcpeNetwork(nn.Module):
    """Mel frames -> pitch salience. forward(mel: (B, T, n_mels)) -> (B, T, bins) in [0, 1].

    ``cent_table`` (bins,) holds each bin's pitch in cents above 10 Hz; it is loaded from the
    checkpoint (torchfcpe stores it) and initialised to the same float32 linspace here.
    """

    def __init__(self, config: FcpeNetConfig) -> None:
        super().__init__()
        self.config = config
        c = config.hidden
        self.mel_in_conv = nn.Conv1d(config.n_mels, c, 3, padding=1)
        self.mel_in_norm = nn.GroupNorm(INPUT_GROUPS, c)
        self.mel_in_conv2 = nn.Conv1d(c, c, 3, padding=1)
        self.blocks = nn.ModuleList([ConvBlock(c) for _ in range(config.n_layers)])
        self.out_norm = nn.LayerNorm(c)
        self.out_proj = nn.Linear(c, config.bins)
        lo, hi = (1200.0 * torch.log2(torch.tensor([f / CENT_REFERENCE_HZ])) for f in (config.f0_min, config.f0_max))
        self.register_buffer("cent_table", torch.linspace(lo.item(), hi.item(), config.bins))
        offsets = torch.arange(-LOCAL_ARGMAX_HALF_WIDTH, LOCAL_ARGMAX_HALF_WIDTH + 1)
        self.register_buffer("local_offsets", offsets, persistent=False)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.mel_in_conv(mel.transpose(1, 2))
        x = F.leaky_relu(self.mel_in_norm(x), LRELU_SLOPE)
        x = self.mel_in_conv2(x).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return torch.sigmoid(self.out_proj(self.out_norm(x)))

    def decode_local_argmax(self, salience: torch.Tensor, threshold: float) -> torch.Tensor:
        """Salience (B, T, bins) -> f0 (B, T) Hz; frames whose peak salience is <= threshold give 0."""
        peak, peak_bin = salience.max(dim=-1, keepdim=True)
        idx = (peak_bin + self.local_offsets).clamp_(0, self.config.bins - 1)  # (B, T, 9)
        weights = torch.gather(salience, -1, idx)
        cents = (self.cent_table[idx] * weights).sum(-1) / weights.sum(-1)
        f0 = CENT_REFERENCE_HZ * torch.pow(2.0, cents / 1200.0)
        return torch.where(peak.squeeze(-1) > threshold, f0, torch.zeros_like(f0))


class Fcpe(nn.Module):
    """FCPE pitch estimator: 16 kHz audio -> f0 every 10 ms.

    forward(audio: (B, n) float32 at ``mel_config.sample_rate``, threshold) ->
    (B, n // hop + 1) float32 f0 in Hz (0 = unvoiced); frame t is centred at sample t * hop.
    Build with :func:`rtsvc.models.fcpe_weights.load_fcpe`; the module is in eval mode and every
    call runs under ``torch.inference_mode``.
    """

    def __init__(self, mel_config: MelConfig, net_config: FcpeNetConfig) -> None:
        super().__init__()
        self.mel_config = mel_config
        self.front_end = LogMelFrontEnd(mel_config)
        self.network = FcpeNetwork(net_config)
        self.eval()

    @property
    def sample_rate(self) -> int:
        return self.mel_config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.mel_config.hop_length

    def forward(self, audio: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> torch.Tensor:
        with torch.inference_mode():
            salience = self.network(self.front_end(audio))
            return self.network.decode_local_argmax(salience, threshold)
