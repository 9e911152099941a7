"""PyTorch vs ONNX Runtime, side by side, on this machine: the full-size SoVITS synthesizer alone,
FCPE and the content encoder alone (ONNX Runtime), and the live chain FCPE + content encoder +
synthesizer, per live block size.

Models (random weights: this measures speed only): a SoVITS 4.1 synthesizer with so-vits-svc's
template sizes (hidden 192, filter 768, 6 layers, decoder 512 with upsampling 8-8-2-2-2,
ssl_dim 768, gin 768, loudness embedding, 44.1 kHz / hop 512), a ContentVec-shaped encoder with
the sizes of the fixtures' contentvec/layout_base.json (768 dim, 12 layers; vec768l12) and a
full-size FCPE network. FCPE's log-mel front end runs in torch in both columns; its network,
the encoder and the synthesizer run in the column's backend.

Per block the live engine converts a window of extra context + block + SOLA search + crossfade
(defaults 100 + block + 4 + 4 ms) and keeps its last block + 8 ms: the synthesizer skips the
decoder work that only the left context needs (``keep_samples``, see models.nsf_hifigan).
"synth ORT" decodes the whole window, "ORT tail" only what the live path keeps; the chains keep
the tail, as the live path does. A backend sustains real time at a block size when the median
chain time is below the block duration (RTF = time / block < 1), with room left for the audio
callback and jitter.

Load time: before the speed table it prints how long opening the full-size synthesizer +
encoder graphs takes cold (export, then written to the ONNX cache) and warm (opened from the
cache, rtsvc.onnx_cache), and how long computing the two cache keys takes. It uses a temporary
cache folder, so the user's cache is neither read nor filled with random-weight graphs.

Usage: python benchmarks/onnx.py [--blocks 50,100,150,200,300,500] [--repeats N] [--threads N]
       [--context-ms 100] [--layout PATH] [--load-only]
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

# Run as a script, this file's folder is sys.path[0] and this file would shadow the `onnx`
# package that the exporter imports; drop the folder from the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _HERE]

import torch

from rtsvc.backends import choose_backend, make_session
from rtsvc.ort_models import OrtContentEncoder, OrtSynthesizer
from rtsvc.encoders import SPEECH_ENCODERS, TorchContentEncoder
from rtsvc.onnx_cache import CACHE_DIR_ENV, graph_key
from rtsvc.onnx_export import ONNX_OPSET

SAMPLE_RATE = 44100
HOP = 512
ENCODER_RATE = 16000
SOLA_MS = 8.0

def _fullsize():
    spec = importlib.util.spec_from_file_location("rtsvc_bench_fullsize", _HERE / "fullsize.py")
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def full_size_synthesizer():
    """Template-size 4.1 synthesizer (benchmarks/fullsize.py), ready for CPU inference."""
    fullsize = _fullsize()
    return fullsize.inference_synthesizer(fullsize.build_full_size_synthesizer(seed=0), "cpu")


def full_size_encoder(layout: Path) -> TorchContentEncoder:
    return TorchContentEncoder(SPEECH_ENCODERS["vec768l12"], _fullsize().build_full_size_encoder(layout), "cpu", layout)


def full_size_fcpe():
    from rtsvc.models.fcpe import Fcpe, FcpeNetConfig
    from rtsvc.models.fcpe_mel import MelConfig

    return Fcpe(MelConfig(), FcpeNetConfig())


class OrtFcpeNetwork:
    """FCPE's network (mel -> salience) exported to ONNX; the mel front end and decoder stay torch."""

    def __init__(self, fcpe, choice) -> None:
        import io

        buffer = io.BytesIO()
        mel = torch.randn(1, 20, fcpe.network.config.n_mels)
        torch.onnx.export(fcpe.network, (mel,), buffer, input_names=["mel"], output_names=["salience"],
                          dynamic_axes={"mel": {1: "frames"}, "salience": {1: "frames"}}, opset_version=17, dynamo=False)
        self.session = make_session(buffer.getvalue(), choice)
        self.fcpe = fcpe

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            mel = self.fcpe.front_end(audio)
        (salience,) = self.session.run(None, {"mel": mel.numpy()})
        return self.fcpe.network.decode_local_argmax(torch.from_numpy(salience), 0.05)


def load_times(synth, encoder, choice):
    """(ORT synthesizer, ORT encoder) opened cold then warm through a temporary ONNX cache;
    prints the cold / warm / key-hashing seconds. Returns the warm pair."""
    previous = os.environ.get(CACHE_DIR_ENV)
    with tempfile.TemporaryDirectory(prefix="rtsvc-bench-cache-") as folder:
        os.environ[CACHE_DIR_ENV] = folder
        try:
            times = {}
            for run in ("cold", "warm"):
                start = time.perf_counter()
                pair = OrtSynthesizer.from_model(synth, choice), OrtContentEncoder.from_encoder(encoder, choice)
                times[run] = time.perf_counter() - start
                sources = f"{pair[0].onnx_source}/{pair[1].onnx_source}"
                times[run + "_sources"] = sources
        finally:
            if previous is None:
                os.environ.pop(CACHE_DIR_ENV, None)
            else:
                os.environ[CACHE_DIR_ENV] = previous
    start = time.perf_counter()
    graph_key("synthesizer", synth, {}, opset=ONNX_OPSET)
    synth_hash = time.perf_counter() - start
    start = time.perf_counter()
    graph_key("encoder", encoder.model, {}, opset=ONNX_OPSET)
    encoder_hash = time.perf_counter() - start
    megabytes = sum(t.numel() * t.element_size() for m in (synth, encoder.model)
                    for t in (*m.parameters(), *m.buffers())) / 1e6
    print(f"load synthesizer + encoder graphs: cold {times['cold']:.1f} s ({times['cold_sources']}, incl. writing "
          f"the cache), warm {times['warm']:.1f} s ({times['warm_sources']}); cache keys {synth_hash:.2f} s "
          f"+ {encoder_hash:.2f} s for {megabytes:.0f} MB of tensors", flush=True)
    return pair


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (first-shape allocations, ORT arena growth)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return 1000 * statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", default="50,100,150,200,300,500", help="block sizes in ms (comma separated)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case after one warm-up (default 5)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads for both backends (0 = default)")
    parser.add_argument("--context-ms", type=float, default=100.0, help="left context of the live window (default 100)")
    parser.add_argument("--layout", type=Path, default=None, help="contentvec layout_base.json (default: shared fixtures)")
    parser.add_argument("--load-only", action="store_true", help="print the cold/warm load line and stop")
    args = parser.parse_args()
    root = os.environ.get("RTSVC_FIXTURES")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "fixtures"
    layout = args.layout or base / "contentvec" / "layout_base.json"
    if args.threads:
        torch.set_num_threads(args.threads)
    choice = choose_backend("onnxruntime", threads=args.threads)
    load_before = os.getloadavg()
    print(f"CPU: {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"onnxruntime threads {args.threads or 'default'}; load average before {load_before[0]:.2f} "
          f"{load_before[1]:.2f} {load_before[2]:.2f}")
    t0 = time.perf_counter()
    synth = full_size_synthesizer()
    encoder = full_size_encoder(layout)
    fcpe = full_size_fcpe()
    print(f"models: synthesizer {sum(p.numel() for p in synth.parameters()) / 1e6:.1f} M params, encoder "
          f"{sum(p.numel() for p in encoder.model.parameters()) / 1e6:.1f} M, FCPE "
          f"{sum(p.numel() for p in fcpe.parameters()) / 1e6:.1f} M (random weights)")
    ort_synth, ort_encoder = load_times(synth, encoder, choice)
    if args.load_only:
        return
    ort_fcpe = OrtFcpeNetwork(fcpe, choice)
    print(f"built and exported in {time.perf_counter() - t0:.0f} s")
    gen = torch.Generator().manual_seed(0)
    header = (f"{'block':>6} {'window':>7} | {'synth torch':>11} {'synth ORT':>9} {'ORT tail':>8} | {'FCPE ORT':>8} "
              f"{'encoder ORT':>11} | "
              f"{'chain torch':>11} {'RTF':>5} | {'chain ORT':>9} {'RTF':>5}")
    print(header)
    print("-" * len(header))
    for block_ms in (float(b) for b in args.blocks.split(",")):
        window_ms = args.context_ms + block_ms + SOLA_MS
        frames = int(round(window_ms / 1000 * SAMPLE_RATE / HOP))
        audio_16k = 0.1 * torch.randn(int(frames * HOP * ENCODER_RATE / SAMPLE_RATE), generator=gen)
        c = torch.randn(1, 768, frames, generator=gen)
        f0, uv, vol = torch.full((1, frames), 220.0), torch.ones(1, frames), torch.full((1, frames), 0.1)
        keep = min(frames * HOP, round((block_ms + SOLA_MS) / 1000 * SAMPLE_RATE))

        def synth_only(model, keep_samples=None):
            return lambda: model.infer(c, f0, uv, vol=vol, deterministic=True, keep_samples=keep_samples)

        def chain(model, enc, pitch):
            def run():
                pitch(audio_16k[None])
                enc.encode(audio_16k)
                model.infer(c, f0, uv, vol=vol, deterministic=True, keep_samples=keep)
            return run

        st = median_ms(synth_only(synth), args.repeats)
        so = median_ms(synth_only(ort_synth), args.repeats)
        sk = median_ms(synth_only(ort_synth, keep), args.repeats)
        ct = median_ms(chain(synth, encoder, fcpe), args.repeats)
        co = median_ms(chain(ort_synth, ort_encoder, ort_fcpe), args.repeats)
        po = median_ms(lambda: ort_fcpe(audio_16k[None]), args.repeats)
        eo = median_ms(lambda: ort_encoder.encode(audio_16k), args.repeats)
        print(f"{block_ms:4.0f}ms {window_ms:5.0f}ms | {st:9.0f}ms {so:7.0f}ms {sk:6.0f}ms | {po:6.0f}ms {eo:9.0f}ms | "
              f"{ct:9.0f}ms {ct / block_ms:5.2f} | {co:7.0f}ms {co / block_ms:5.2f}", flush=True)
    load_after = os.getloadavg()
    print(f"load average after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} "
          f"(on {os.cpu_count()} cores; above {os.cpu_count()} means other processes competed for the CPU)")


if __name__ == "__main__":
    main()
