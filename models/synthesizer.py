"""The So-VITS-SVC 4.x synthesizer (so-vits-svc ``SynthesizerTrn``), inference path.

State-dict names equal so-vits-svc's: ``emb_g``, ``emb_vol`` (vol_embedding), ``pre``,
``enc_p``, ``enc_q`` (posterior encoder, training only), ``flow``, ``dec``, ``f0_decoder``
(use_automatic_f0_prediction), ``emb_uv``.

Inference: content c (B, ssl_dim, T) at the model frame rate (sampling_rate / hop), f0 (B, T)
Hz, uv (B, T) voicing 0/1, optional loudness vol (B, T) -> waveform (B, 1, T * hop) in [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from rtsvc.errors import ParameterError

from .coarse_f0 import f0_to_coarse
from .draws import DEFAULT_SEED, RandomDraws, seeded_draws
from .f0_decoder import F0Decoder, f0_to_lf0, lf0_to_f0, normalize_lf0
from .flows import build_residual_flow, build_transformer_flow
from .modules import remove_weight_norm_everywhere
from .nsf_hifigan import VocoderShape, build_vocoder
from .text_encoder import PosteriorEncoder, PriorEncoder

#: so-vits-svc's default noise scale of its inference tool.
DEFAULT_NOISE_SCALE = 0.4
#: Kernel of the content projection ``pre``.
PRE_KERNEL = 5


@dataclass
class InferTrace:
    """Everything one inference call computed. Shapes for batch B, frames T, hop H:
    g (B, gin, 1 or T); pre_out / enc_p_in (B, hidden, T); f0 (B, T) Hz used; f0_coarse (B, T);
    m_p / logs_p / z_p / flow_out (B, inter, T); wav (B, 1, T*H)."""

    g: torch.Tensor
    pre_out: torch.Tensor
    enc_p_in: torch.Tensor
    f0: torch.Tensor
    f0_coarse: torch.Tensor
    m_p: torch.Tensor
    logs_p: torch.Tensor
    z_p: torch.Tensor
    flow_out: torch.Tensor
    wav: torch.Tensor



def check_keep_samples(keep_samples: int | None, frames: int, hop_length: int) -> None:
    """Refuse a ``keep_samples`` (see :meth:`SynthesizerTrn.infer`) outside 1..frames * hop_length."""
    if keep_samples is not None and not 1 <= keep_samples <= frames * hop_length:
        raise ParameterError(f"keep_samples must be 1..{frames * hop_length} for {frames} frames, got {keep_samples}.",
                             "ask for at most the window's samples, or None for all of them.")


class SynthesizerTrn(nn.Module):
    """SoVITS 4.0/4.1 generator. Argument names are so-vits-svc config.json ``model`` fields;
    ``spec_channels`` is filter_length // 2 + 1; ``coarse_f0_version`` "4.1" or "4.0" picks the
    pitch-index behaviour (see :mod:`models.coarse_f0`)."""

    def __init__(
        self,
        *,
        spec_channels: int,
        inter_channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        resblock: str,
        resblock_kernel_sizes: tuple[int, ...],
        resblock_dilation_sizes: tuple[tuple[int, ...], ...],
        upsample_rates: tuple[int, ...],
        upsample_initial_channel: int,
        upsample_kernel_sizes: tuple[int, ...],
        gin_channels: int,
        ssl_dim: int,
        n_speakers: int,
        sampling_rate: int,
        vol_embedding: bool,
        vocoder_name: str,
        use_depthwise_conv: bool,
        use_automatic_f0_prediction: bool,
        flow_share_parameter: bool,
        n_flow_layer: int,
        n_layers_trans_flow: int,
        use_transformer_flow: bool,
        coarse_f0_version: str = "4.1",
    ) -> None:
        super().__init__()
        self.ssl_dim = ssl_dim
        self.n_speakers = n_speakers
        self.gin_channels = gin_channels
        self.inter_channels = inter_channels
        self.sampling_rate = sampling_rate
        self.hop_length = math.prod(upsample_rates)
        self.vol_embedding = vol_embedding
        self.use_automatic_f0_prediction = use_automatic_f0_prediction
        self.coarse_f0_version = coarse_f0_version

        self.emb_g = nn.Embedding(n_speakers, gin_channels)
        if vol_embedding:
            self.emb_vol = nn.Linear(1, hidden_channels)
        self.pre = nn.Conv1d(ssl_dim, hidden_channels, PRE_KERNEL, padding=PRE_KERNEL // 2)
        self.enc_p = PriorEncoder(
            inter_channels, hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout=p_dropout
        )
        shape = VocoderShape(
            inter_channels=inter_channels,
            upsample_initial_channel=upsample_initial_channel,
            upsample_rates=tuple(upsample_rates),
            upsample_kernel_sizes=tuple(upsample_kernel_sizes),
            resblock=resblock,
            resblock_kernel_sizes=tuple(resblock_kernel_sizes),
            resblock_dilation_sizes=tuple(tuple(d) for d in resblock_dilation_sizes),
            gin_channels=gin_channels,
            sampling_rate=sampling_rate,
        )
        self.dec = build_vocoder(vocoder_name, shape)
        self.enc_q = PosteriorEncoder(
            spec_channels, inter_channels, hidden_channels, gin_channels=gin_channels, depthwise=use_depthwise_conv
        )
        if use_transformer_flow:
            self.flow = build_transformer_flow(
                inter_channels, hidden_channels, filter_channels, n_heads, n_layers_trans_flow,
                p_dropout=p_dropout, gin_channels=gin_channels, share=flow_share_parameter, n_couplings=n_flow_layer,
            )
        else:
            self.flow = build_residual_flow(
                inter_channels, hidden_channels, n_flow_layer, gin_channels=gin_channels,
                depthwise=use_depthwise_conv, share=flow_share_parameter,
            )
        if use_automatic_f0_prediction:
            self.f0_decoder = F0Decoder(
                hidden_channels, filter_channels, n_heads, n_layers, kernel_size,
                p_dropout=p_dropout, spk_channels=gin_channels,
            )
        self.emb_uv = nn.Embedding(2, hidden_channels)

    # ----------------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.pre.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.pre.weight.device

    def remove_weight_norm(self) -> int:
        """Fold every weight-normed layer into plain weights (once, for inference). Returns
        the number of layers folded. Training needs the unfolded model."""
        return remove_weight_norm_everywhere(self)

    def prepare_for_inference(self, device: str | torch.device = "cpu", fp16: bool = False) -> "SynthesizerTrn":
        """eval() + fold weight norm + move; ``fp16`` casts weights to float16 (CUDA only:
        the NSF phase stays float32/float64 inside :class:`models.vocoder_source.HarmonicSource`)."""
        self.eval()
        self.remove_weight_norm()
        self.to(device)
        if fp16:
            if torch.device(device).type != "cuda":
                raise ParameterError("fp16 inference is only supported on CUDA devices.")
            self.half()
        return self

    # ----------------------------------------------------------------------------------
    def speaker_embedding(self, g, batch: int, normalize: bool = True) -> torch.Tensor:
        """Speaker conditioning (batch, gin, 1) or (1, gin, T).

        g: None (speaker 0), an int id, an int tensor of ids (B,) / (B, 1), a float weight vector
        (n_speakers,) (static mix of the speaker embeddings; with ``normalize`` the weights are
        scaled to sum 1 (convex mix), without it they are used as given (linear mix)), or float
        weights (T, n_speakers) (per-frame mix, as so-vits-svc's character mix)."""
        weight = self.emb_g.weight
        if g is None:
            g = 0
        if isinstance(g, bool):
            raise ParameterError(f"speaker must be an id or mix weights, got {g!r}.")
        if isinstance(g, int):
            if not 0 <= g < self.n_speakers:
                raise ParameterError(f"speaker id {g} is out of range; this model has {self.n_speakers} speaker(s) (ids 0..{self.n_speakers - 1}).")
            return weight[g].view(1, -1, 1).expand(batch, -1, -1)
        g = torch.as_tensor(g, device=weight.device)
        if not torch.is_floating_point(g):
            ids = g.reshape(-1).long()
            if ids.numel() not in (1, batch) or bool(((ids < 0) | (ids >= self.n_speakers)).any()):
                raise ParameterError(f"speaker ids {ids.tolist()} are invalid for {self.n_speakers} speaker(s) and batch {batch}.")
            return weight[ids].unsqueeze(-1).expand(batch, -1, -1)
        if g.shape[-1] != self.n_speakers or g.dim() not in (1, 2):
            raise ParameterError(f"speaker mix weights must have shape ({self.n_speakers},) or (frames, {self.n_speakers}), got {tuple(g.shape)}.")
        mix = g.to(torch.float32)
        if bool((mix < 0).any()) or not bool(torch.isfinite(mix).all()):
            raise ParameterError("speaker mix weights must be finite and non-negative.")
        total = mix.sum(dim=-1, keepdim=True)
        if bool((total <= 0).any()):
            raise ParameterError("speaker mix weights sum to 0; give at least one positive weight.")
        mix = (mix / total if normalize else mix).to(weight.dtype)
        emb = mix @ weight  # (gin,) or (T, gin)
        if emb.dim() == 1:
            return emb.view(1, -1, 1).expand(batch, -1, -1)
        return emb.t().unsqueeze(0).expand(batch, -1, -1)

    def _check_inputs(self, c: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor, vol: torch.Tensor | None) -> None:
        if c.dim() != 3 or c.size(1) != self.ssl_dim:
            raise ParameterError(f"content features must have shape (batch, {self.ssl_dim}, frames), got {tuple(c.shape)}.")
        b, _, t = c.shape
        for name, x in (("f0", f0), ("uv", uv), ("vol", vol)):
            if x is not None and tuple(x.shape) != (b, t):
                raise ParameterError(f"{name} must have shape ({b}, {t}) to match the content features, got {tuple(x.shape)}.")
        if self.vol_embedding and vol is None:
            raise ParameterError("this model has a loudness embedding (vol_embedding); pass vol (batch, frames).")

    @torch.no_grad()
    def infer_trace(
        self,
        c: torch.Tensor,
        f0: torch.Tensor,
        uv: torch.Tensor,
        *,
        g=None,
        vol: torch.Tensor | None = None,
        noise_scale: float = DEFAULT_NOISE_SCALE,
        predict_f0: bool = False,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
        normalize_mix: bool = True,
        keep_samples: int | None = None,
    ) -> InferTrace:
        """:meth:`infer` returning every intermediate (see :class:`InferTrace`)."""
        self._check_inputs(c, f0, uv, vol)
        if predict_f0 and not self.use_automatic_f0_prediction:
            raise ParameterError("this model has no f0 predictor (use_automatic_f0_prediction is false); turn auto f0 off.")
        dtype, device = self.dtype, self.device
        draws: RandomDraws | None = None
        if not deterministic:
            draws = RandomDraws(generator) if generator is not None else seeded_draws(DEFAULT_SEED)
        b, _, t = c.shape
        c = c.to(device, dtype)
        f0 = f0.to(device, torch.float32)
        uv = uv.to(device)
        x_mask = torch.ones(b, 1, t, device=device, dtype=dtype)
        g_emb = self.speaker_embedding(g, b, normalize=normalize_mix)
        pre_out = self.pre(c) * x_mask
        x = pre_out + self.emb_uv(uv.long()).transpose(1, 2)
        if self.vol_embedding:
            x = x + self.emb_vol(vol.to(device, dtype)[:, :, None]).transpose(1, 2)
        if predict_f0:
            lf0 = f0_to_lf0(f0)
            norm_lf0 = normalize_lf0(lf0, x_mask.float(), uv.float())
            pred_lf0 = self.f0_decoder(x, norm_lf0.to(dtype), x_mask, spk_emb=g_emb).float()
            f0 = lf0_to_f0(pred_lf0)
        coarse = f0_to_coarse(f0, self.coarse_f0_version)
        noise = None
        if draws is not None:
            noise = draws.normal((b, self.inter_channels, t)).to(device, dtype)
        z_p, m_p, logs_p = self.enc_p(x, x_mask, coarse, noise=noise, noise_scale=noise_scale)
        z = self.flow(z_p, x_mask, g=g_emb, reverse=True)
        wav = self.dec(z * x_mask, f0, g_emb, draws=draws, keep=keep_samples)
        return InferTrace(
            g=g_emb, pre_out=pre_out, enc_p_in=x, f0=f0, f0_coarse=coarse, m_p=m_p, logs_p=logs_p,
            z_p=z_p, flow_out=z, wav=wav.float(),
        )

    @torch.no_grad()
    def infer(
        self,
        c: torch.Tensor,
        f0: torch.Tensor,
        uv: torch.Tensor,
        *,
        g=None,
        vol: torch.Tensor | None = None,
        noise_scale: float = DEFAULT_NOISE_SCALE,
        predict_f0: bool = False,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
        normalize_mix: bool = True,
        keep_samples: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Convert one batch. c (B, ssl_dim, T) content at frame rate; f0 (B, T) Hz (0 or any
        value where unvoiced; interpolated f0 is the realistic input); uv (B, T) 1 = voiced;
        g: speaker (see :meth:`speaker_embedding`); vol (B, T) RMS loudness (required when the
        model has vol_embedding, ignored otherwise); noise_scale: prior noise (so-vits-svc
        default 0.4); predict_f0: use the f0 predictor head (speech only).

        deterministic=True: prior mean, all harmonic phases 0, no sine-bank noise.
        Otherwise draws follow so-vits-svc's order from ``generator`` (None: a fresh CPU
        generator seeded with 52468, which is what upstream does on every call).
        normalize_mix: scale speaker-mix weights to sum 1 (convex); False uses them as given.
        keep_samples: return only the last ``keep_samples`` samples (1..T*hop), computed without
        the decoder work that only the rest depends on (a live window's left context; see
        models.nsf_hifigan): the same values as the tail of the whole output.

        Returns (wav (B, 1, T*hop or keep_samples) float32 in [-1, 1], f0_used (B, T) float32 Hz).
        """
        check_keep_samples(keep_samples, c.shape[-1], self.hop_length)
        trace = self.infer_trace(
            c, f0, uv, g=g, vol=vol, noise_scale=noise_scale, predict_f0=predict_f0,
            deterministic=deterministic, generator=generator, normalize_mix=normalize_mix, keep_samples=keep_samples,
        )
        return trace.wav, trace.f0
