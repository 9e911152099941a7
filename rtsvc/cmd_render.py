"""``rtsvc render``: convert audio files offline."""

from __future__ import annotations

import argparse
import sys
import time

from rtsvc.errors import RtsvcError
from rtsvc.params import F0_METHODS, VoiceParams
from rtsvc.render import collect_inputs, plan_outputs, render_file


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "render",
        help="convert audio files offline",
        description="Convert audio files (wav, flac, ogg, mp3...) with the built-in WORLD voice. "
        "Inputs may be files, folders (searched recursively) or glob patterns. "
        "Stereo is downmixed and any sample rate is resampled to the voice's rate (said once per file).",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files, folders or glob patterns")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file for one input (.wav or .flac), or a folder for several (default: results/)")
    p.add_argument("-t", "--transpose", type=float, default=0.0, metavar="SEMITONES",
                   help="pitch shift in semitones, like so-vits-svc's -t (default 0)")
    p.add_argument("--formant", type=float, default=0.0, metavar="SHIFT",
                   help="formant shift in semitones for the built-in voice: >0 brighter/smaller, <0 darker (default 0)")
    p.add_argument("--f0-method", choices=F0_METHODS, default="fcpe", help="pitch estimator (default fcpe)")
    p.add_argument("--format", choices=("wav", "flac"), default="wav", help="output format for folder outputs (default wav)")
    p.add_argument("--sr", type=int, default=None, metavar="HZ", help="output sample rate (default: the voice's rate)")
    p.add_argument("--device", default="cpu", help="torch device for the pitch estimator (default cpu)")
    return p


def run(args: argparse.Namespace) -> int:
    from rtsvc.world_voice import WorldVoice

    params = VoiceParams(transpose=args.transpose, formant=args.formant, f0_method=args.f0_method)
    inputs = collect_inputs(args.inputs)
    voice = WorldVoice(device=args.device)
    outputs = plan_outputs(inputs, args.output, params, voice, args.format)
    results, failures = [], []
    t_all = time.perf_counter()
    for i, (src, dst) in enumerate(zip(inputs, outputs), 1):
        try:
            r = render_file(voice, src, dst, params, out_rate=args.sr)
        except RtsvcError as exc:
            if len(inputs) == 1:
                raise  # one input: one clear message from the CLI, exit 2
            failures.append((src, str(exc)))
            print(f"[{i}/{len(inputs)}] {src}: FAILED: {exc}", file=sys.stderr)
            continue
        results.append(r)
        notes = f" ({'; '.join(r.notes)})" if r.notes else ""
        print(f"[{i}/{len(inputs)}] {src} -> {r.output}: {r.audio_seconds:.2f} s of audio in "
              f"{r.wall_seconds:.2f} s, RTF {r.rtf:.3f}{notes}")
    audio_s = sum(r.audio_seconds for r in results)
    wall_s = time.perf_counter() - t_all
    print(f"rendered {len(results)}/{len(inputs)} file(s) with voice '{voice.name}' "
          f"(transpose {params.transpose:+g}, formant {params.formant:+g}): {audio_s:.2f} s of audio in "
          f"{wall_s:.2f} s, RTF {wall_s / audio_s if audio_s else float('nan'):.3f}")
    if failures:
        print(f"{len(failures)} of {len(inputs)} file(s) failed; their outputs were not written.", file=sys.stderr)
        return 1
    return 0
