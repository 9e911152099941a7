"""Command-line options shared by several subcommands (one definition, one help text)."""

from __future__ import annotations

import argparse

from rtsvc.params import BACKEND_NAMES


def add_backend_options(group: argparse._ArgumentGroup, onnx: bool = True) -> None:
    """--backend, --threads, --onnx, --fp16, --cuda-graphs: how a SoVITS voice runs (see
    rtsvc.backends). ``onnx`` False leaves out --onnx (one exported file fits one model only)."""
    group.add_argument("--backend", choices=BACKEND_NAMES, default="auto",
                       help="inference backend for SoVITS voices: auto (onnxruntime when installed, else torch), "
                       "torch or onnxruntime (default auto; the choice and why is reported)")
    group.add_argument("--threads", type=int, default=0, metavar="N",
                       help="intra-op threads (default: library default)")
    if onnx:
        group.add_argument("--onnx", dest="onnx_path", metavar="MODEL.onnx",
                           help="synthesizer exported by `rtsvc export-onnx` (onnxruntime backend; default: export at load)")
    group.add_argument("--fp16", action="store_true",
                       help="run the synthesizer in half precision (torch on a CUDA --device; the encoder stays fp32)")
    group.add_argument("--cuda-graphs", choices=("auto", "on", "off"), default="auto",
                       help="replay repeated network calls (the live path's blocks) as CUDA graphs; torch on a CUDA "
                       "--device (auto: on there)")


def cuda_graphs_option(value: str) -> bool | None:
    """--cuda-graphs auto/on/off -> None/True/False."""
    return {"auto": None, "on": True, "off": False}[value]


def voice_options(args: argparse.Namespace) -> dict:
    """The VoiceSpec fields that --device and the backend options give every SoVITS voice loaded."""
    options = {"device": args.device, "backend": args.backend, "threads": args.threads, "fp16": args.fp16,
               "cuda_graphs": cuda_graphs_option(args.cuda_graphs)}
    if getattr(args, "onnx_path", None):
        options["onnx_path"] = args.onnx_path
    return options
