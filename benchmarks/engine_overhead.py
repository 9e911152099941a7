"""CPU work of the live engine around the networks: worker ms per block with instant networks.

On a GPU a small live block is a few milliseconds of network time; what the CPU does around it
(device-rate resampling in and out, windowing, the pitch cache, f0 fill and shift, frame
loudness, the synthesizer's feeds and random draws, SOLA, gains) adds to every block and cannot
overlap with it. This script measures that part alone: a full-size SoVITS 4.1 voice (44.1 kHz,
hop 512, 768-dim content, loudness embedding) whose content encoder, synthesizer graph and
pitch network are replaced by stubs that return zeros of the right shapes instantly, run by the
real engine on the stepped virtual clock at the GPU target layout (default: 23.2 ms block,
100 ms left context, SOLA search 2 ms, crossfade 3 ms, 48 kHz device, 256-frame period)::

    python benchmarks/engine_overhead.py                    # p50 / p95 per block, twice
    python benchmarks/engine_overhead.py --profile 20       # plus cProfile's top 20 by own time

Prints figures; asserts nothing. Seeded (noisy) conversion by default, as the live default.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import types
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _HERE]  # see live.py

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _live_module():
    spec = importlib.util.spec_from_file_location("rtsvc_bench_live", _HERE / "live.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["rtsvc_bench_live"] = module
    spec.loader.exec_module(module)
    return module


class InstantEncoder:
    """A 768-dim content encoder that returns zeros (50 frames per second of 16 kHz input)."""

    dim = 768

    def encode(self, audio_16k: np.ndarray) -> torch.Tensor:
        return torch.zeros(1, self.dim, len(audio_16k) // 320)

    def close(self) -> None:
        pass


class InstantRunner:
    """The synthesizer graph's runner contract (rtsvc.ort_models._Runner), returning silence."""

    provider = "instant stub"

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, np.float32)

    def run(self, feeds: dict, output: str) -> np.ndarray:
        return np.zeros((1, 1, feeds["f0"].shape[1] * 512), np.float32)


def stub_voice(live):
    """A SovitsVoice with the full-size config whose networks are instant stubs."""
    from rtsvc.backends import choose_backend
    from rtsvc.ort_models import OrtSynthesizer
    from rtsvc.sovits_config import parse_sovits_config
    from rtsvc.sovits_voice import SovitsVoice

    config = parse_sovits_config(live.benchmark_module("fullsize").full_size_config(), where="full-size config")
    facts = types.SimpleNamespace(harmonics=9, source_draws=True, speaker_mix=False, speakers=tuple(config.speakers),
                                  vol_embedding=True, sampling_rate=44100, hop_length=512, ssl_dim=768,
                                  inter_channels=192, flavour="rtsvc")
    synth = OrtSynthesizer(None, facts, choose_backend("torch", device="cpu"), runner=InstantRunner())
    return SovitsVoice(synth, config, InstantEncoder(), name="full-size config, instant networks")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--block-ms", type=float, default=23.2)
    ap.add_argument("--context-ms", type=float, default=100.0, help="left context, ms")
    ap.add_argument("--target-ms", type=float, default=50.0, help="algorithmic latency that sets the allowance, ms")
    ap.add_argument("--seconds", type=float, default=20.0, help="test signal length, s")
    ap.add_argument("--deterministic", action="store_true", help="no random draws (default: seeded, as live)")
    ap.add_argument("--profile", type=int, default=0, help="print cProfile's top N functions of the second run")
    args = ap.parse_args()
    live = _live_module()
    voice = stub_voice(live)
    pitch = live.fcpe_estimator(lambda x16: torch.zeros(1, x16.shape[-1] // 160 + 1), "cpu")
    settings = dict(live.LOW_LATENCY_SOLA, extra_context_ms=args.context_ms, deterministic=args.deterministic)
    allowance = max(1.0, live.allowance_for(voice, args.target_ms, args.block_ms, 256, **settings))
    print(f"engine CPU work per block with instant networks: {args.block_ms:g} ms block, left context "
          f"{args.context_ms:g} ms, {'deterministic' if args.deterministic else 'seeded draws'}, "
          f"{args.seconds:g} s stepped, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    profiler = None
    for run in (1, 2):
        if run == 2 and args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        st = live.run(voice, "fcpe", args.block_ms, args.seconds, False, allowance, pitch, 256, **settings)
        if profiler is not None:
            profiler.disable()
        print(f"run {run}{' (profiled)' if profiler is not None else ''}: {st.blocks} blocks, worker p50 "
              f"{st.worker_ms_p50:.3f} p95 {st.worker_ms_p95:.3f} worst {st.worker_ms_worst:.3f} ms per block "
              f"(RTF {st.rtf:.4f})", flush=True)
    if profiler is not None:
        import pstats

        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    main()
