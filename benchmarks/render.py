"""Offline render speed: real-time factor and peak memory per voice and backend, CPU (and CUDA).

Each case renders the same synthetic sung signal (default 20 s: 4 s sung vowels with 0.5 s
rests, so the slicer cuts it into several clips) through :func:`rtsvc.render.render_file`, the
path ``rtsvc render`` takes (read, slice at silences, pad, convert, loudness mix, atomic write).
Cases, each in a fresh child process so that its peak RSS is its own:

* the built-in WORLD voice;
* the so-vits-svc fixture checkpoints (tiny random models): v41_vec256_novol and v40_vec256 with
  the tiny ContentVec-layout encoder (tests/support/tiny_voice.py), v41_vec768_vol with the
  full-size encoder;
* a full-size random so-vits-svc 4.1 model (template sizes, 52 M parameters) + a full-size
  ContentVec-shaped encoder (94.6 M), both written to disk by ``benchmarks/fullsize.py`` and
  loaded like user files.

SoVITS voices run once per backend (``load_sovits_voice(backend="torch" | "onnxruntime")``);
the pitch estimator (FCPE by default: the real bundled weights of the installed torchfcpe
distribution, run by rtsvc's own FCPE in torch in both columns) is the same in every case.
Weights are random: the output is not speech; the output is checked to be finite, not judged.

Figures: ``load`` = model loading (+ ONNX export for onnxruntime, done at load time);
``cold`` = the first render_file call's RTF, with first-use costs inside it (FCPE weights, ORT
and oneDNN first runs): what one ``rtsvc render`` of one file sees; ``warm`` = a second render of
the same file with the same loaded voice (what each further file of a batch sees); RTF = render
wall time / audio seconds (below 1 is faster than real time); ``py peak`` = tracemalloc peak of
Python/numpy allocations during the cold render (torch's and onnxruntime's own allocators are
not traced); ``RSS load`` / ``RSS peak`` = resource.getrusage max RSS of the child after loading
/ at the end (includes the interpreter, torch and the weights). On Linux ru_maxrss survives exec,
so a child starts from its parent's peak: the parent here never imports torch or builds models
(a separate ``--prepare`` child writes the model files), and the first line prints the floor.

Why rtsvc renders faster than so-vits-svc's ``inference_main.py`` (from reading the reference's
public source; it is not installed here, so no ratio is measured or claimed):

* Per slice, the reference writes the padded slice into an in-memory WAV file and decodes it
  again with librosa (which resamples to the model rate when they differ), then resamples the
  slice to 16 kHz with librosa for the content encoder. rtsvc keeps slices as float32 arrays, and
  resamples with soxr directly.
* The reference collects the whole output song in a Python list, one Python float object per
  sample (``list.extend``), and converts it to an array at the end; its slicer also reads the
  input file twice. rtsvc reads the input once (block-wise for long files), keeps float32 numpy
  throughout and writes each converted clip straight to the output file, so memory stays bounded.
* The reference keeps weight normalisation live at inference, recomputing g * v / ||v|| for every
  weight-normed conv of the decoder, flow and encoders on every forward call; rtsvc folds it into
  plain weights once at load.
* rtsvc can run the synthesizer and the content encoder in ONNX Runtime (the default backend
  when it is installed; on CPU it is the faster column below), with graph-level optimisation
  and fused kernels that eager PyTorch does not do.
* Pitch: rtsvc's FCPE runs without importing torchaudio/torchfcpe and its loaded model is cached
  across slices and files.

Usage: python benchmarks/render.py [--seconds 20] [--devices cpu,cuda] [--backends torch,onnxruntime]
       [--cases world,fixtures,full] [--f0 fcpe] [--threads N] [--fixtures DIR] [--layout PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path

# Run as a script, this folder would be sys.path[0] and its onnx.py would shadow the `onnx`
# package; drop it and import sibling modules by path instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _HERE]
ROOT = _HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

SAMPLE_RATE = 44100
#: Synthetic song: sung phrases of PHRASE_S seconds separated by REST_S of silence.
PHRASE_S = 4.0
REST_S = 0.5
RESULT_TAG = "RESULT "
KIB = 1024
FIXTURES_WITH_TINY_ENCODER = ("v41_vec256_novol", "v40_vec256")
FIXTURES_WITH_FULL_ENCODER = ("v41_vec768_vol",)


def _load_fullsize():
    spec = importlib.util.spec_from_file_location("rtsvc_bench_fullsize", _HERE / "fullsize.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Case:
    """One child run. kind "world" or "sovits"; paths as strings (JSON-able)."""

    label: str
    kind: str
    device: str
    backend: str
    source: str
    f0: str
    threads: int
    model: str = ""
    config: str = ""
    encoder: str = ""


def make_song(seconds: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n,) float32 sung vowels with rests: PHRASE_S sung, REST_S silent, repeated."""
    from signals import sung_vowel

    phrase = sung_vowel(seconds=PHRASE_S, sr=sample_rate)
    rest = np.zeros(int(REST_S * sample_rate), np.float32)
    reps = int(np.ceil(seconds / (PHRASE_S + REST_S)))
    return np.concatenate([np.concatenate([phrase, rest]) for _ in range(reps)])[: int(seconds * sample_rate)]


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB  # Linux: KiB


def run_case(case: Case) -> dict:
    """Load the voice, render once under tracemalloc, return the figures (child process)."""
    import torch

    from rtsvc.errors import RtsvcError
    from rtsvc.params import VoiceParams
    from rtsvc.render import render_file

    if case.threads:
        torch.set_num_threads(case.threads)
    out: dict = {"rss_start_mib": _max_rss_mib()}
    try:
        t0 = time.perf_counter()
        if case.kind == "world":
            from rtsvc.world_voice import WorldVoice

            voice = WorldVoice(device=case.device)
        else:
            from rtsvc.sovits_voice import load_sovits_voice

            voice = load_sovits_voice(case.model, case.config, device=case.device, encoder_path=case.encoder,
                                      backend=case.backend, threads=case.threads)
        out["load_s"] = time.perf_counter() - t0
        out["rss_load_mib"] = _max_rss_mib()
        if case.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        params = VoiceParams(f0_method=case.f0)
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "out.wav"
            tracemalloc.start()
            cold = render_file(voice, Path(case.source), target, params)
            _, py_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            warm = render_file(voice, Path(case.source), target, params)
            audio, _ = sf.read(target, dtype="float32")
        out.update(audio_s=cold.audio_seconds, cold_s=cold.wall_seconds, warm_s=warm.wall_seconds,
                   py_peak_mib=py_peak / 2**20, rss_peak_mib=_max_rss_mib(), finite=bool(np.isfinite(audio).all()),
                   out_rms=float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))))
        if case.device.startswith("cuda"):
            out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    except RtsvcError as exc:
        out["error"] = str(exc)
    return out


def spawn(flag: str, payload: str, echo: bool = False) -> dict:
    """Run this script with ``flag payload`` in a fresh interpreter; its RESULT line as a dict,
    or an error with the stderr tail. ``echo`` prints the child's other stdout lines."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), flag, payload],
                          capture_output=True, text=True, check=False)
    found = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            found = json.loads(line[len(RESULT_TAG):])
        elif echo:
            print(line, flush=True)
    if found is not None:
        return found
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"child exited with {proc.returncode}: {tail}"}


def format_row(case: Case, r: dict) -> str:
    head = f"{case.label:36s} {case.device:4s} {case.backend:11s}"
    if "error" in r:
        return f"{head} skipped: {r['error']}"
    cuda = f"  cuda peak {r['cuda_peak_mib']:6.0f} MiB" if "cuda_peak_mib" in r else ""
    sane = "" if r["finite"] else "  OUTPUT NOT FINITE"
    return (f"{head} load {r['load_s']:5.1f} s  RTF cold {r['cold_s'] / r['audio_s']:6.3f} warm "
            f"{r['warm_s'] / r['audio_s']:6.3f}  py peak {r['py_peak_mib']:6.1f} MiB  RSS load {r['rss_load_mib']:6.0f} / peak {r['rss_peak_mib']:6.0f} MiB"
            f"{cuda}{sane}")


def side_by_side(rows: list[tuple[Case, dict]]) -> list[str]:
    """One line per (voice, device): torch vs onnxruntime, warm RTF and load time."""
    table: dict[tuple[str, str], dict[str, dict]] = {}
    for case, r in rows:
        table.setdefault((case.label, case.device), {})[case.backend] = r

    def rtf(r: dict | None) -> str:
        return "     -" if not r or "error" in r else f"{r['warm_s'] / r['audio_s']:6.3f}"

    lines = [f"{'voice':36s} {'dev':4s} | warm RTF torch | ORT | load torch | load ORT",
             "-" * 80]
    for (label, device), by_backend in table.items():
        t, o = by_backend.get("torch"), by_backend.get("onnxruntime")
        if "world" in by_backend:
            t = by_backend["world"]
        load = lambda r: "     -" if not r or "error" in r else f"{r['load_s']:5.1f} s"  # noqa: E731
        lines.append(f"{label:36s} {device:4s} |         {rtf(t)} | {rtf(o)} |    {load(t)} |  {load(o)}")
    return lines


def build_cases(options: dict, tmp: Path, src: Path) -> list[Case]:
    """Write the needed model files into ``tmp`` and list the runs (``--prepare`` child)."""
    fullsize = _load_fullsize()
    wanted = set(options["cases"].split(","))
    devices, backends = options["devices"].split(","), options["backends"].split(",")
    cases: list[Case] = []
    common = dict(source=str(src), f0=options["f0"], threads=options["threads"])
    for device in devices:
        if "world" in wanted:
            cases.append(Case("world", "world", device, "world", **common))
    fixtures = Path(options["fixtures"]) / "sovits"
    need_full_encoder = "full" in wanted or ("fixtures" in wanted and any((fixtures / n).is_dir() for n in FIXTURES_WITH_FULL_ENCODER))
    full_encoder = ""
    if need_full_encoder:
        t0 = time.perf_counter()
        full_encoder = str(fullsize.write_full_size_encoder(tmp / "full_pretrain", Path(options["layout"])))
        print(f"wrote full-size encoder ({Path(full_encoder).stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    sovits: list[tuple[str, Path, Path, str]] = []
    if "fixtures" in wanted:
        from tiny_voice import make_tiny_encoder

        tiny_encoder = str(make_tiny_encoder(tmp / "tiny_pretrain", Path(options["fixtures"])))
        for name in FIXTURES_WITH_TINY_ENCODER + FIXTURES_WITH_FULL_ENCODER:
            folder = fixtures / name
            if not folder.is_dir():
                print(f"fixture {folder} not found: its rows are left out")
                continue
            encoder = tiny_encoder if name in FIXTURES_WITH_TINY_ENCODER else full_encoder
            which = "tiny" if name in FIXTURES_WITH_TINY_ENCODER else "full"
            sovits.append((f"fixture {name} + {which} enc", folder / "G_800.pth", folder / "config.json", encoder))
    if "full" in wanted:
        t0 = time.perf_counter()
        model, config = fullsize.write_full_size_model(tmp / "full_voice")
        print(f"wrote full-size 4.1 model ({model.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        sovits.append(("full-size 4.1 + full enc", model, config, full_encoder))
    for device in devices:
        for label, model, config, encoder in sovits:
            for backend in backends:
                cases.append(Case(label, "sovits", device, backend, model=str(model), config=str(config),
                                  encoder=encoder, **common))
    return cases


def prepare(options: dict) -> dict:
    """``--prepare`` child: environment line, model files, case list."""
    import torch

    try:
        import onnxruntime

        ort = f"onnxruntime {onnxruntime.__version__}"
    except ImportError:
        ort = "no onnxruntime"
    if not options["devices"]:
        options["devices"] = "cpu,cuda" if torch.cuda.is_available() else "cpu"
    env = (f"{os.cpu_count()} CPU cores, torch {torch.__version__} ({torch.get_num_threads()} threads), {ort}"
           + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"))
    print(env, flush=True)
    cases = build_cases(options, Path(options["tmp"]), Path(options["source"]))
    return {"cases": [asdict(c) for c in cases]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the test song (default 20)")
    parser.add_argument("--devices", default="", help="comma separated (default cpu, plus cuda when torch sees a GPU)")
    parser.add_argument("--backends", default="torch,onnxruntime", help="SoVITS backends (default torch,onnxruntime)")
    parser.add_argument("--cases", default="world,fixtures,full", help="any of world,fixtures,full (default all)")
    parser.add_argument("--f0", default="fcpe", help="pitch estimator for every voice (default fcpe)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads, torch and onnxruntime (0 = default)")
    parser.add_argument("--fixtures", default=os.environ.get("RTSVC_FIXTURES", str(ROOT.parent / "shared" / "fixtures")),
                        help="shared fixtures folder (default $RTSVC_FIXTURES or ../shared/fixtures)")
    parser.add_argument("--layout", type=Path, default=None, help="contentvec layout_base.json (default: fixtures')")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(RESULT_TAG + json.dumps(run_case(Case(**json.loads(args.child)))), flush=True)
        return
    if args.prepare is not None:
        print(RESULT_TAG + json.dumps(prepare(json.loads(args.prepare))), flush=True)
        return
    layout = args.layout or Path(args.fixtures) / "contentvec" / "layout_base.json"
    _load_fullsize().use_benchmark_cache()  # the models' ONNX graphs stay out of the user's cache
    load = os.getloadavg()
    print(f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; parent max RSS (children start from it) "
          f"{_max_rss_mib():.0f} MiB", flush=True)
    rows: list[tuple[Case, dict]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "song.wav"
        sf.write(src, make_song(args.seconds), SAMPLE_RATE)
        print(f"source: {args.seconds:g} s synthetic sung signal, {SAMPLE_RATE} Hz; f0 {args.f0}", flush=True)
        options = dict(cases=args.cases, devices=args.devices, backends=args.backends, f0=args.f0, threads=args.threads,
                       fixtures=args.fixtures, layout=str(layout), tmp=str(tmp), source=str(src))
        prepared = spawn("--prepare", json.dumps(options), echo=True)
        if "error" in prepared:
            raise SystemExit(f"preparing the models failed: {prepared['error']}")
        for fields in prepared["cases"]:
            case = Case(**fields)
            result = spawn("--child", json.dumps(asdict(case)))
            rows.append((case, result))
            print(format_row(case, result), flush=True)
    print()
    print("\n".join(side_by_side(rows)))
    load = os.getloadavg()
    print(f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (on {os.cpu_count()} cores; above "
          f"{os.cpu_count()} means other processes competed for the CPU)")


if __name__ == "__main__":
    main()
