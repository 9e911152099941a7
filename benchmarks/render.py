"""Offline render speed: RTF (wall time / audio time) and peak memory per voice, CPU (and GPU).

Voices: the built-in WORLD voice and the shared fixture checkpoint v41_vec256_novol (with the
tiny ContentVec-layout encoder from tests/support/tiny_voice.py). Prints one line per (voice, device).
Run: python benchmarks/render.py [--seconds 20] [--device cuda]. (A full-size random 4.1 model
needs a template-size model builder; not included yet.)

The speed comes from: all slices of a file handled by one loaded model (no per-slice model
re-creation or re-seeding, no temp-file round trip per slice as the reference does), resamplers
and FCPE/encoder weights cached across slices, weight norm folded once, and fp16 on GPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))


def _song(seconds: float, sr: int = 44100) -> np.ndarray:
    from signals import sung_vowel

    part = sung_vowel(seconds=4.0, sr=sr)
    reps = int(np.ceil(seconds / 4.5))
    gap = np.zeros(int(0.5 * sr), np.float32)
    return np.concatenate([np.concatenate([part, gap]) for _ in range(reps)])[: int(seconds * sr)]


def _bench(label: str, voice, src: Path, params) -> None:
    from rtsvc.render import render_file

    with tempfile.TemporaryDirectory() as tmp:
        tracemalloc.start()
        t0 = time.perf_counter()
        r = render_file(voice, src, Path(tmp) / "out.wav", params)
        wall = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    gpu = ""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f", cuda peak {torch.cuda.max_memory_allocated() / 1e6:.0f} MB"
    except ImportError:
        pass
    print(f"{label:40s} audio {r.audio_seconds:6.1f} s  wall {wall:7.2f} s  RTF {wall / r.audio_seconds:6.3f}  "
          f"python peak {peak / 1e6:6.1f} MB{gpu}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--fixtures", default=str(ROOT.parent / "shared" / "fixtures"))
    args = ap.parse_args()

    from rtsvc.params import VoiceParams
    from rtsvc.sovits_voice import load_sovits_voice
    from rtsvc.world_voice import WorldVoice

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "song.wav"
        sf.write(src, _song(args.seconds), 44100)
        params = VoiceParams(f0_method="dio")
        _bench(f"world ({args.device})", WorldVoice(device=args.device), src, params)
        fixtures = Path(args.fixtures) / "sovits"
        from tiny_voice import make_tiny_encoder

        pretrain = Path(tmp) / "pretrain"
        make_tiny_encoder(pretrain, Path(args.fixtures))
        for name in ("v41_vec256_novol",):
            d = fixtures / name
            if d.is_dir():
                v = load_sovits_voice(d / "G_800.pth", d / "config.json", device=args.device,
                                      encoder_path=pretrain / "checkpoint_best_legacy_500.pt")
                _bench(f"fixture {name} ({args.device})", v, src, params)


if __name__ == "__main__":
    main()
