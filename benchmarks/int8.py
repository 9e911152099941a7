"""What int8 would buy on this CPU: the full-size SoVITS synthesizer and ContentVec-shaped
encoder quantized with ONNX Runtime's own tooling, against their float32 graphs, at one live
window (left context + block + SOLA, the decoder keeping the block's tail as the live path does).

Variants: synthesizer, every Conv: static QDQ (int8 weights per output channel, uint8
activations calibrated on 8 windows with seeded draws) and dynamic (ConvInteger); encoder:
dynamic int8 MatMul, and static QDQ of Conv + MatMul (calibrated on 6 windows of noise). FCPE
stays float32. Prints each graph's median time (runs alternated) and its SNR against the
float32 graph's output on the same input, then the chain FCPE + encoder + synthesizer per
combination, with its RTF at the block.

The models have random weights (benchmarks/onnx.py builds them): the times are what a trained
model of these sizes takes; the SNRs only hint at the loss (a trained model's activations have
other ranges, and what a listener hears of the error is not measured here). rtsvc does not run
int8 graphs: this measures whether a lossy int8 CPU mode is worth building (README, Speed).

Usage: python benchmarks/int8.py [--block-ms 150] [--context-ms 100] [--threads 2] [--repeats 8]
       [--layout PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _HERE]  # see onnx.py

import numpy as np  # noqa: E402
import torch  # noqa: E402

SOLA_MS = 8.0
SAMPLE_RATE, HOP, ENCODER_RATE = 44100, 512, 16000
#: Calibration windows of the static variants (synthesizer, encoder).
SYNTH_CALIBRATION, ENCODER_CALIBRATION = 8, 6


def _onnx_bench():
    spec = importlib.util.spec_from_file_location("rtsvc_bench_onnx", _HERE / "onnx.py")
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


class _Feeds:
    """onnxruntime.quantization's CalibrationDataReader over a list of feed dicts."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)


def snr_db(ref: np.ndarray, x: np.ndarray) -> float:
    noise = float(np.sum((ref.astype(np.float64) - x) ** 2))
    return 10.0 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / max(noise, 1e-30))


def alternated_ms(cases: dict, repeats: int) -> dict[str, float]:
    """Median ms per case, the cases run in turn (so a load change hits them all alike)."""
    for fn in cases.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(v) for name, v in times.items()}


def main() -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    from rtsvc.backends import choose_backend, make_session
    from rtsvc.onnx_export import encoder_onnx_bytes, synthesizer_facts, synthesizer_onnx_bytes
    from rtsvc.ort_models import OrtSynthesizer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--block-ms", type=float, default=150.0)
    ap.add_argument("--context-ms", type=float, default=100.0, help="left context of the live window")
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    ap.add_argument("--repeats", type=int, default=8, help="timed runs per graph")
    ap.add_argument("--layout", type=Path, default=None, help="contentvec layout_base.json (default: shared fixtures)")
    args = ap.parse_args()
    bench = _onnx_bench()
    root = os.environ.get("RTSVC_FIXTURES")
    layout = args.layout or (Path(root) if root else _HERE.parents[1] / "shared" / "fixtures") / "contentvec" / "layout_base.json"
    choice = choose_backend("onnxruntime", threads=args.threads)
    window_ms = args.context_ms + args.block_ms + SOLA_MS
    frames = round(window_ms / 1000 * SAMPLE_RATE / HOP)
    keep = min(frames * HOP, round((args.block_ms + SOLA_MS) / 1000 * SAMPLE_RATE))
    n16 = int(frames * HOP * ENCODER_RATE / SAMPLE_RATE)
    print(f"int8 vs float32 at a {args.block_ms:g} ms block ({frames} frames = {window_ms:.0f} ms window, "
          f"{keep} samples kept), onnxruntime {args.threads} threads, {os.cpu_count()} cores")

    synth, encoder, fcpe = bench.full_size_synthesizer(), bench.full_size_encoder(layout), bench.full_size_fcpe()
    facts = synthesizer_facts(synth, speakers=("speaker0",), speech_encoder="vec768l12", unit_interpolate_mode="nearest")
    gen = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="rtsvc-int8-") as folder:
        tmp = Path(folder)
        t0 = time.perf_counter()
        (tmp / "synth.onnx").write_bytes(synthesizer_onnx_bytes(synth, facts))
        (tmp / "encoder.onnx").write_bytes(encoder_onnx_bytes(encoder))
        fp32 = OrtSynthesizer(make_session(str(tmp / "synth.onnx"), choice), facts, choice, torch_model=synth)

        calibration, real_run = [], fp32.runner.run
        fp32.runner.run = lambda feeds, output: (calibration.append(dict(feeds)), real_run(feeds, output))[1]
        for i in range(SYNTH_CALIBRATION):  # pitch 110..392 Hz, loudness and draws varied
            c = torch.randn(1, 768, frames, generator=gen)
            fp32.infer(c, torch.full((1, frames), 110.0 * 2 ** (i / 4)), torch.ones(1, frames),
                       vol=torch.full((1, frames), 0.02 * (i + 1)), generator=torch.Generator().manual_seed(i),
                       keep_samples=keep)
        fp32.runner.run = real_run
        quantize_static(str(tmp / "synth.onnx"), str(tmp / "synth_static.onnx"), _Feeds(calibration),
                        quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"], per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        quantize_dynamic(str(tmp / "synth.onnx"), str(tmp / "synth_dynamic.onnx"), op_types_to_quantize=["Conv"],
                         per_channel=True, weight_type=QuantType.QUInt8)
        sources = [{"source": (0.1 * torch.randn(1, 1, n16, generator=gen)).numpy()} for _ in range(ENCODER_CALIBRATION)]
        quantize_dynamic(str(tmp / "encoder.onnx"), str(tmp / "encoder_dynamic.onnx"), op_types_to_quantize=["MatMul"],
                         per_channel=True, weight_type=QuantType.QInt8)
        quantize_static(str(tmp / "encoder.onnx"), str(tmp / "encoder_static.onnx"), _Feeds(sources),
                        quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv", "MatMul"], per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        synths = {"float32": fp32}
        for name in ("static", "dynamic"):
            session = make_session(str(tmp / f"synth_{name}.onnx"), choice)
            synths[f"int8 {name}"] = OrtSynthesizer(session, facts, choice, torch_model=synth)
        encoders = {name: make_session(str(tmp / f"encoder{suffix}.onnx"), choice)
                    for name, suffix in (("float32", ""), ("int8 dynamic MatMul", "_dynamic"),
                                         ("int8 static Conv+MatMul", "_static"))}
        print(f"exported and quantized in {time.perf_counter() - t0:.0f} s")

    c = torch.randn(1, 768, frames, generator=gen)
    f0, uv, vol = torch.full((1, frames), 220.0), torch.ones(1, frames), torch.full((1, frames), 0.1)
    source = (0.1 * torch.randn(1, 1, n16, generator=gen)).numpy()
    synth_out = {name: m.infer(c, f0, uv, vol=vol, deterministic=True, keep_samples=keep)[0].reshape(-1).numpy()
                 for name, m in synths.items()}
    enc_out = {name: s.run(None, {"source": source})[0] for name, s in encoders.items()}
    synth_ms = alternated_ms({name: (lambda m=m: m.infer(c, f0, uv, vol=vol, deterministic=True, keep_samples=keep))
                              for name, m in synths.items()}, args.repeats)
    enc_ms = alternated_ms({name: (lambda s=s: s.run(None, {"source": source})) for name, s in encoders.items()},
                           args.repeats)
    ort_fcpe = bench.OrtFcpeNetwork(fcpe, choice)
    audio = torch.from_numpy(source.reshape(1, -1))
    fcpe_ms = alternated_ms({"fcpe": lambda: ort_fcpe(audio)}, args.repeats)["fcpe"]
    for title, outs, ms in (("synthesizer", synth_out, synth_ms), ("content encoder", enc_out, enc_ms)):
        for name in outs:
            print(f"{title:15s} {name:24s} {ms[name]:6.1f} ms   SNR vs float32 {snr_db(outs['float32'], outs[name]):6.1f} dB")
    print(f"FCPE (float32, network in onnxruntime) {fcpe_ms:.1f} ms")
    print(f"chain FCPE + encoder + synthesizer at a {args.block_ms:g} ms block (sum of medians; the engine adds ~1-2 ms):")
    for e in enc_ms:
        for s in synth_ms:
            total = fcpe_ms + enc_ms[e] + synth_ms[s]
            print(f"  encoder {e:24s} synthesizer {s:14s} {total:6.1f} ms   RTF {total / args.block_ms:.2f}")


if __name__ == "__main__":
    main()
