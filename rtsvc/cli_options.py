"""Command-line options shared by several subcommands (one definition, one help text)."""

from __future__ import annotations

import argparse

from rtsvc.params import BACKEND_NAMES


def add_backend_options(group: argparse._ArgumentGroup) -> None:
    """--backend, --threads, --onnx: how a SoVITS voice runs (see rtsvc.backends)."""
    group.add_argument("--backend", choices=BACKEND_NAMES, default="auto",
                       help="inference backend for SoVITS voices: auto (onnxruntime when installed, else torch), "
                       "torch or onnxruntime (default auto; the choice and why is reported)")
    group.add_argument("--threads", type=int, default=0, metavar="N",
                       help="intra-op threads (default: library default)")
    group.add_argument("--onnx", dest="onnx_path", metavar="MODEL.onnx",
                       help="synthesizer exported by `rtsvc export-onnx` (onnxruntime backend; default: export at load)")
