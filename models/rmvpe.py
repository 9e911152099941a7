"""RMVPE pitch estimator (inference only), for a user-supplied ``pretrain/rmvpe.pt``.

The network is the "E2E0" deep U-Net + BiGRU that so-vits-svc (and RVC) load from rmvpe.pt
(a dict ``{"model": state_dict}``). Module attribute names follow that file's key layout
(``unet.encoder.layers.0.conv.0.conv.0.weight`` ...) so the state dict loads strictly as it is;
the only keys skipped on purpose are ``unet.tf.*`` (a "timbre filter" the file carries but the
E2E0 forward pass never uses).

Pipeline (T = n // 160 + 1 frames of 10 ms for n samples at 16 kHz)::

    audio (B, n) --centred STFT (Hann 1024, hop 160, reflect)--> |X| (B, 513, T)
      --HTK mel, 128 bands 30..8000 Hz, Slaney area norm--> log(max(., 1e-5)) (B, 128, T)
      --reflect-pad T up to a multiple of 32--> U-Net on (B, 1, T', 128) --Conv2d -> 3 ch-->
      --(B, T', 384)--> BiGRU(256 x 2) -> Linear 512->360 -> sigmoid --> salience, cut to T
      --local average around the argmax--> f0 (B, T) Hz, 0 where the peak <= threshold

Bin k is 20 * k + 1997.38 cents above 10 Hz. The decoder averages the cents of bins
[peak - 4, peak + 4] that exist (truncated at the grid ends, unlike FCPE's clamping) weighted by
salience. Not checked against real RMVPE weights in this repository (none are shipped): the
tests check layout, shapes, strict loading and the decoder on a tiny random-weight network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rtsvc.errors import ModelFileError
from rtsvc.models.fcpe_mel import LOG_FLOOR, mel_filterbank

SAMPLE_RATE = 16000
HOP_LENGTH = 160
WINDOW_LENGTH = 1024
MEL_F_MIN = 30.0
MEL_F_MAX = 8000.0
#: Cents (above 10 Hz) of salience bin 0, and the spacing of the bins.
CENTS_OF_BIN0 = 1997.3794084376191
CENTS_PER_BIN = 20.0
LOCAL_HALF_WIDTH = 4
#: The U-Net halves time and frequency 5 times: frames are padded to a multiple of 2**5.
FRAME_MULTIPLE = 32
BN_MOMENTUM = 0.01
RMVPE_FILE_NAME = "rmvpe.pt"


@dataclass(frozen=True)
class RmvpeConfig:
    """Network sizes (defaults = the released rmvpe.pt). n_mels must be divisible by 2**levels."""

    n_mels: int = 128
    bins: int = 360
    levels: int = 5          # encoder/decoder stages
    inter_layers: int = 4    # bottleneck stages
    res_blocks: int = 4      # residual conv blocks per stage
    base_channels: int = 16  # channels of the first stage (doubling per stage)
    gru_hidden: int = 256


class ResConvBlock(nn.Module):
    """(conv3x3 -> BN -> ReLU) x 2 plus a residual (1x1 conv when channels change). (B, C, T, F)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM), nn.ReLU(),
        )
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + (self.shortcut(x) if self.shortcut is not None else x)


class ResStage(nn.Module):
    """``n`` ResConvBlocks; the first maps c_in -> c_out."""

    def __init__(self, c_in: int, c_out: int, n: int) -> None:
        super().__init__()
        self.conv = nn.ModuleList([ResConvBlock(c_in if i == 0 else c_out, c_out) for i in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.conv:
            x = block(x)
        return x


class UpStage(nn.Module):
    """Transposed conv (stride 2 in time and frequency) -> BN -> ReLU, concat the skip, ResStage."""

    def __init__(self, c_in: int, c_out: int, n: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM), nn.ReLU(),
        )
        self.conv2 = nn.ModuleList([ResConvBlock(2 * c_out if i == 0 else c_out, c_out) for i in range(n)])

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.conv1(x), skip], dim=1)
        for block in self.conv2:
            x = block(x)
        return x


class _Encoder(nn.Module):
    def __init__(self, cfg: RmvpeConfig) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(1, momentum=BN_MOMENTUM)
        chans = [1] + [cfg.base_channels * 2 ** i for i in range(cfg.levels)]
        self.layers = nn.ModuleList([ResStage(chans[i], chans[i + 1], cfg.res_blocks) for i in range(cfg.levels)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        x = self.bn(x)
        for stage in self.layers:
            x = stage(x)
            skips.append(x)
            x = F.avg_pool2d(x, 2)
        return x, skips


class _Intermediate(nn.Module):
    def __init__(self, cfg: RmvpeConfig) -> None:
        super().__init__()
        c = cfg.base_channels * 2 ** (cfg.levels - 1)
        self.layers = nn.ModuleList([ResStage(c if i == 0 else 2 * c, 2 * c, cfg.res_blocks)
                                     for i in range(cfg.inter_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.layers:
            x = stage(x)
        return x


class _Decoder(nn.Module):
    def __init__(self, cfg: RmvpeConfig) -> None:
        super().__init__()
        c = cfg.base_channels * 2 ** cfg.levels
        self.layers = nn.ModuleList([UpStage(c // 2 ** i, c // 2 ** (i + 1), cfg.res_blocks) for i in range(cfg.levels)])

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for stage, skip in zip(self.layers, reversed(skips)):
            x = stage(x, skip)
        return x


class _UNet(nn.Module):
    def __init__(self, cfg: RmvpeConfig) -> None:
        super().__init__()
        self.encoder = _Encoder(cfg)
        self.intermediate = _Intermediate(cfg)
        self.decoder = _Decoder(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.encoder(x)
        return self.decoder(self.intermediate(x), skips)


class _GruHead(nn.Module):
    def __init__(self, cfg: RmvpeConfig) -> None:
        super().__init__()
        self.gru = nn.GRU(3 * cfg.n_mels, cfg.gru_hidden, batch_first=True, bidirectional=True)


class Rmvpe(nn.Module):
    """RMVPE: forward(audio (B, n) float32 at 16 kHz, threshold) -> (B, n // 160 + 1) f0 Hz (0 = unvoiced)."""

    def __init__(self, config: RmvpeConfig) -> None:
        super().__init__()
        self.config = config
        self.unet = _UNet(config)
        self.cnn = nn.Conv2d(config.base_channels, 3, 3, padding=1)
        self.fc = nn.ModuleList([_GruHead(config), nn.Linear(2 * config.gru_hidden, config.bins)])
        bank = mel_filterbank(SAMPLE_RATE, WINDOW_LENGTH, config.n_mels, MEL_F_MIN, MEL_F_MAX, True)
        self.register_buffer("filterbank", torch.from_numpy(bank.copy()), persistent=False)
        self.register_buffer("window", torch.hann_window(WINDOW_LENGTH), persistent=False)
        cents = CENTS_OF_BIN0 + CENTS_PER_BIN * torch.arange(config.bins, dtype=torch.float32)
        self.register_buffer("bin_cents", cents, persistent=False)
        self.eval()

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, n) -> (B, n_mels, n // 160 + 1) natural-log HTK mel magnitudes (centred frames)."""
        spec = torch.stft(audio, WINDOW_LENGTH, hop_length=HOP_LENGTH, win_length=WINDOW_LENGTH, window=self.window,
                          center=True, pad_mode="reflect", return_complex=True)
        magnitude = torch.sqrt(spec.real.square() + spec.imag.square())
        return torch.log(torch.clamp(torch.matmul(self.filterbank, magnitude), min=LOG_FLOOR))

    def salience(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) -> (B, T, bins) in [0, 1]."""
        frames = mel.shape[-1]
        padded = -(-frames // FRAME_MULTIPLE) * FRAME_MULTIPLE
        # Reflection needs more frames than the pad; shorter inputs (< 0.16 s, where so-vits-svc
        # fails) repeat their last frame instead.
        mode = "reflect" if padded - frames < frames else "replicate"
        mel = F.pad(mel, (0, padded - frames), mode=mode)
        x = self.cnn(self.unet(mel.transpose(1, 2).unsqueeze(1)))  # (B, 3, T', n_mels)
        x = x.transpose(1, 2).flatten(-2)                             # (B, T', 3 * n_mels)
        x = self.fc[0].gru(x)[0]
        return torch.sigmoid(self.fc[1](x))[:, :frames]

    def decode(self, salience: torch.Tensor, threshold: float) -> torch.Tensor:
        """(B, T, bins) -> (B, T) Hz: salience-weighted cents of the existing bins within 4 of the peak."""
        peak, peak_bin = salience.max(dim=-1, keepdim=True)
        offsets = torch.arange(-LOCAL_HALF_WIDTH, LOCAL_HALF_WIDTH + 1, device=salience.device)
        idx = peak_bin + offsets
        inside = (idx >= 0) & (idx < self.config.bins)
        idx = idx.clamp(0, self.config.bins - 1)
        weights = torch.gather(salience, -1, idx) * inside
        cents = (self.bin_cents[idx] * weights).sum(-1) / weights.sum(-1)
        f0 = 10.0 * torch.pow(2.0, cents / 1200.0)
        return torch.where(peak.squeeze(-1) > threshold, f0, torch.zeros_like(f0))

    def forward(self, audio: torch.Tensor, threshold: float = 0.05) -> torch.Tensor:
        with torch.inference_mode():
            return self.decode(self.salience(self.log_mel(audio)), threshold)


def load_rmvpe(pretrain_dir: str | os.PathLike, device: str = "cpu", path: str | os.PathLike | None = None,
               config: RmvpeConfig = RmvpeConfig()) -> Rmvpe:
    """Load ``<pretrain_dir>/rmvpe.pt`` (or ``path``) strictly with weights_only=True; keys
    ``unet.tf.*`` are skipped on purpose (unused by the forward pass). Returns an eval-mode model."""
    file = Path(path) if path is not None else Path(pretrain_dir) / RMVPE_FILE_NAME
    if not file.is_file():
        raise ModelFileError(f"RMVPE weights not found at {file}.",
                             f"download rmvpe.pt (the so-vits-svc/RVC release) and put it at {file}.")
    try:
        ckpt = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling/format failure is a bad file
        raise ModelFileError(f"{file}: not a loadable RMVPE weights file ({type(exc).__name__}).",
                             "use the released rmvpe.pt.") from None
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{file}: expected a state dict (or {{'model': state_dict}}) of tensors.")
    kept = {k: v.float() if v.is_floating_point() else v for k, v in state.items() if not k.startswith("unet.tf.")}
    model = Rmvpe(config)
    try:
        model.load_state_dict(kept, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{file}: RMVPE weights do not fit the network ({str(exc).splitlines()[0][:200]}).",
                             "use the released rmvpe.pt.") from None
    return model.to(device)
