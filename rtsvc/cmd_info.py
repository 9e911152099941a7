"""``rtsvc info``: what a so-vits-svc model file is, and whether a config matches it."""

from __future__ import annotations

import argparse



def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "info",
        help="describe a so-vits-svc G_*.pth (and check it against a config.json)",
        description="Read a so-vits-svc 4.0/4.1 G_*.pth safely (tensors only, no code runs) and print what "
        "it is: layout, speech encoder and ssl_dim, speakers, vol embedding, vocoder, f0 predictor, "
        "parameter count, full or compressed, fp16 or fp32. With -c, also check the config against the "
        "weights and print one line per disagreement with its fix. Exit status: 0 when everything "
        "agrees (or no config was given), 1 when the config disagrees, 2 for unreadable files.",
    )
    p.add_argument("-m", "--model", required=True, metavar="G.pth", help="the so-vits-svc generator checkpoint")
    p.add_argument("-c", "--config", metavar="config.json", help="the so-vits-svc config.json to check against it")
    return p


def run(args: argparse.Namespace) -> int:
    from rtsvc.checkpoint import inspect_checkpoint  # torch: imported only when info runs

    report = inspect_checkpoint(args.model, args.config)
    for line in report.lines():
        print(line)
    return 0 if report.agrees else 1
