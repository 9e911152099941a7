"""``rtsvc export-onnx``: write a So-VITS-SVC voice (and optionally its content encoder) as ONNX."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rtsvc.errors import ModelFileError, ParameterError

#: Largest ONNX-vs-torch difference the post-export check accepts (deterministic mode).
CHECK_TOLERANCE = 1e-3
#: Frames of the post-export check (about 0.3 s at 44.1 kHz / hop 512).
CHECK_FRAMES = 25

DESCRIPTION = """\
Export a So-VITS-SVC 4.0/4.1 synthesizer to ONNX with a dynamic frame axis.
Graph inputs follow so-vits-svc's ONNX export (what MoeVoiceStudio reads): c, f0, mel2ph, uv,
noise, sid and, for models with a loudness embedding, vol; output audio. By default two more
inputs carry the vocoder's random draws (harmonic_phase, source_noise) so runs are
reproducible, and keep (int64 (1,)) asks for only the window's last samples, skipping decoder
work the rest alone needs (the live path); --moevs leaves these out (deterministic
excitation, whole window). The f0 predictor (auto f0)
is not exported. After writing, the graph is run with onnxruntime beside PyTorch on a short
random input and the largest difference is printed (--no-check skips this).
With --encoder, the content encoder the config names (ContentVec / HuBERT-Soft) is exported
too, in so-vits-svc's ONNX encoder signature (source -> embed). See docs/onnx.md."""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("export-onnx", help="export a So-VITS-SVC voice (and its content encoder) to ONNX",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", "--model-path", required=True, metavar="G.pth", help="So-VITS-SVC 4.x checkpoint")
    p.add_argument("-c", "--config-path", metavar="config.json", help="its config.json (default: config.json beside the model)")
    p.add_argument("-o", "--output", required=True, metavar="model.onnx", help="ONNX file to write for the synthesizer")
    p.add_argument("--moevs", action="store_true",
                   help="MoeVoiceStudio input set only: no harmonic_phase/source_noise/keep inputs")
    p.add_argument("--speaker-mix", choices=("auto", "on", "off"), default="auto",
                   help="sid as per-frame speaker mix weights (frames, speakers) instead of an int64 id; "
                        "auto: when the model has 2+ speakers, as so-vits-svc does (default auto)")
    p.add_argument("--encoder", nargs="?", const="", default=None, metavar="PT",
                   help="also export the content encoder, from this weights file (bare --encoder: look in pretrain/)")
    p.add_argument("--encoder-output", metavar="PATH",
                   help="where to write the encoder (default: beside -o, named as so-vits-svc's ONNX encoder, "
                        "e.g. vec-768-layer-12.onnx)")
    p.add_argument("--pretrain-dir", metavar="DIR", help="folder holding encoder weights (default: pretrain/ or $RTSVC_PRETRAIN)")
    p.add_argument("--no-check", action="store_true", help="do not compare onnxruntime with PyTorch after export")
    return p


def _onnx_encoder_name(speech_encoder: str) -> str:
    from rtsvc.encoders import SPEECH_ENCODERS

    spec = SPEECH_ENCODERS.get(f"{speech_encoder}-onnx")
    return spec.default_file if spec else f"{speech_encoder}.onnx"


def _check_synthesizer(model, data: bytes, facts) -> float:
    """Largest |onnxruntime - torch| on a short random input, deterministic mode."""
    import torch

    from rtsvc.backends import choose_backend, make_session
    from rtsvc.ort_models import OrtSynthesizer

    choice = choose_backend("onnxruntime")
    synth = OrtSynthesizer(make_session(data, choice), facts, choice)
    gen = torch.Generator().manual_seed(0)
    c = torch.randn(1, facts.ssl_dim, CHECK_FRAMES, generator=gen)
    f0 = 150 + 200 * torch.rand(1, CHECK_FRAMES, generator=gen)
    uv = torch.ones(1, CHECK_FRAMES)
    vol = 0.1 * torch.rand(1, CHECK_FRAMES, generator=gen) if facts.vol_embedding else None
    g = len(facts.speakers) - 1
    expected, _ = model.infer(c, f0, uv, g=g, vol=vol, deterministic=True)
    got, _ = synth.infer(c, f0, uv, g=g, vol=vol, deterministic=True)
    return float((expected - got).abs().max())


def _check_encoder(encoder, data: bytes) -> float:
    import torch

    from rtsvc.backends import choose_backend, make_session
    from rtsvc.ort_models import OrtContentEncoder

    choice = choose_backend("onnxruntime")
    ort_encoder = OrtContentEncoder(make_session(data, choice), encoder.spec, encoder.dim, choice, encoder.path)
    wave = 0.1 * torch.randn(encoder.sample_rate // 2, generator=torch.Generator().manual_seed(0))
    return float((encoder.encode(wave).cpu() - ort_encoder.encode(wave)).abs().max())


def _report_check(what: str, diff: float) -> bool:
    ok = diff <= CHECK_TOLERANCE
    print(f"check {what}: onnxruntime vs PyTorch max abs difference {diff:.2e} "
          f"({'ok' if ok else 'FAILED'}, tolerance {CHECK_TOLERANCE:g})")
    return ok


def run(args: argparse.Namespace) -> int:
    from rtsvc.backends import available_providers
    from rtsvc.checkpoint import load_sovits
    from rtsvc.onnx_export import encoder_onnx_bytes, synthesizer_facts, synthesizer_onnx_bytes, write_onnx

    model_path = Path(args.model_path)
    config_path = Path(args.config_path) if args.config_path else model_path.parent / "config.json"
    output = Path(args.output)
    if output.resolve() in (model_path.resolve(), config_path.resolve()):
        raise ParameterError(f"output {output} would overwrite an input file.", "choose another -o path.")
    if not output.parent.is_dir():
        raise ParameterError(f"the folder of output {output} does not exist.", "create it first or choose another -o path.")
    model, config, _ = load_sovits(model_path, config_path, device="cpu")
    mix = {"auto": None, "on": True, "off": False}[args.speaker_mix]
    facts = synthesizer_facts(model, speakers=tuple(config.speakers), flavour="moevs" if args.moevs else "rtsvc",
                              speech_encoder=config.speech_encoder,
                              unit_interpolate_mode=config.data.unit_interpolate_mode if config.layout != "4.0" else "left",
                              speaker_mix=mix)
    encoder = None
    if args.encoder is not None:  # resolved before anything is written
        from rtsvc.encoders import load_content_encoder

        encoder = load_content_encoder(config.speech_encoder, path=args.encoder or None,
                                       pretrain_dir=Path(args.pretrain_dir) if args.pretrain_dir else None)
        if not hasattr(getattr(encoder, "model", None), "units"):
            raise ModelFileError(f"speech encoder {config.speech_encoder} is already an ONNX file ({encoder.path}); "
                                 "there is nothing to export.", "drop --encoder.")
        enc_out = Path(args.encoder_output) if args.encoder_output else output.parent / _onnx_encoder_name(config.speech_encoder)
        if enc_out.resolve() == output.resolve():
            raise ParameterError(f"--encoder-output {enc_out} is the synthesizer's output file.", "choose another path.")
    started = time.perf_counter()
    data = synthesizer_onnx_bytes(model, facts)
    write_onnx(output, data)
    inputs = ["c", "f0", "mel2ph", "uv", "noise", "sid"] + (["vol"] if facts.vol_embedding else []) + (
        ["harmonic_phase", "source_noise"] if facts.source_draws else []) + (["keep"] if facts.keep_input else [])
    print(f"wrote {output} ({len(data) / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s): inputs {', '.join(inputs)}; "
          f"sid is {'mix weights (frames, ' + str(len(facts.speakers)) + ')' if facts.speaker_mix else 'an int64 speaker id'}; "
          f"{facts.sampling_rate} Hz, hop {facts.hop_length}")
    checks_ok = True
    can_check = not args.no_check and "CPUExecutionProvider" in available_providers()
    if not args.no_check and not can_check:
        print("check skipped: onnxruntime is not installed (pip install 'rtsvc[onnx]').")
    if can_check:
        checks_ok = _report_check("synthesizer", _check_synthesizer(model, data, facts))
    if encoder is not None:
        enc_data = encoder_onnx_bytes(encoder)
        write_onnx(enc_out, enc_data)
        print(f"wrote {enc_out} ({len(enc_data) / 1e6:.1f} MB): {config.speech_encoder}, input source (1, 1, samples) "
              f"16 kHz -> embed (1, frames, {encoder.dim})")
        if can_check:
            checks_ok = _report_check("encoder", _check_encoder(encoder, enc_data)) and checks_ok
    return 0 if checks_ok else 1
