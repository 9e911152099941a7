"""Per-call time of rtsvc's FCPE against torchfcpe's, on 16 kHz audio (prints a table, asserts nothing).

    python benchmarks/pitch.py [--calls 60] [--warmup 5]

Rows: audio length (50 ms, 100 ms, 1 s), torch threads (2, 1), implementation:
``rtsvc`` = rtsvc.models.fcpe.Fcpe (mel + network + local-argmax decoder), ``torchfcpe`` = the
bundled torchfcpe 0.0.4 model called the same way (model(wav, 16000, 'local_argmax', 0.05)),
``estimate_f0`` = rtsvc.pitch.estimate_f0 on the same audio (adds the grid mapping). torchfcpe is
imported with stand-ins for torchaudio and hyper_connections (it imports them at package import
but does not use them for 16 kHz input); its rows are left out if it is not installed. The
implementations take turns call by call; on a shared machine compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import sys
import time
import types

import numpy as np
import torch

from rtsvc.models.fcpe_weights import load_fcpe
from rtsvc.pitch import estimate_f0

SR = 16000
LENGTHS_S = (0.05, 0.1, 1.0)
THREADS = (2, 1)


def _import_torchfcpe():
    """torchfcpe with stand-ins for modules it imports but does not use here (None if absent)."""
    if importlib.util.find_spec("torchfcpe") is None:
        return None

    def refuse(*_a, **_k):
        raise RuntimeError("stand-in called")

    transforms = types.ModuleType("torchaudio.transforms")
    transforms.Resample = refuse
    audio = types.ModuleType("torchaudio")
    audio.transforms = transforms
    hyper = types.ModuleType("hyper_connections")
    hyper.get_init_and_expand_reduce_stream_functions = refuse
    stubs = {"torchaudio": audio, "torchaudio.transforms": transforms, "hyper_connections": hyper}
    if importlib.util.find_spec("local_attention") is None:
        stubs["local_attention"] = types.ModuleType("local_attention")
        stubs["local_attention"].LocalAttention = refuse
    missing = [name for name in stubs if name not in sys.modules]
    sys.modules.update({name: stubs[name] for name in missing})
    try:
        return importlib.import_module("torchfcpe")
    finally:
        for name in missing:
            sys.modules.pop(name, None)


def _time_interleaved(fns: dict, calls: int, warmup: int) -> dict[str, tuple[float, float]]:
    """{name: (p50, p95) ms}. The implementations take turns call by call, so a load change on a
    shared machine hits all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(calls):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (float(np.percentile(np.array(t) * 1e3, 50)), float(np.percentile(np.array(t) * 1e3, 95)))
            for name, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60, help="timed calls per row (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls first (default 5)")
    args = parser.parse_args()

    ours = load_fcpe()
    torchfcpe = _import_torchfcpe()
    reference = torchfcpe.spawn_bundled_infer_model(device="cpu") if torchfcpe else None
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {'torchfcpe ' + importlib.metadata.version('torchfcpe') if reference else 'no torchfcpe'}")
    print(f"{'audio':>7} {'threads':>7} {'impl':>12} {'p50 ms':>8} {'p95 ms':>8}")
    for threads in THREADS:
        torch.set_num_threads(threads)
        for seconds in LENGTHS_S:
            x = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
            audio = torch.from_numpy(x)[None]
            rows = {"rtsvc": lambda: ours(audio, 0.05),
                    "estimate_f0": lambda: estimate_f0(x, SR, 160)}
            if reference is not None:
                wav = audio[..., None]
                rows["torchfcpe"] = lambda: reference(wav, SR, "local_argmax", 0.05)
            for name, (p50, p95) in _time_interleaved(rows, args.calls, args.warmup).items():
                print(f"{int(seconds * 1000):>5}ms {threads:>7} {name:>12} {p50:>8.2f} {p95:>8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
