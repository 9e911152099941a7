"""Run the ``rtsvc`` CLI in-process for tests (``from cli_run import run_cli``)."""

from __future__ import annotations

from rtsvc.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``rtsvc ARGV``; argparse's SystemExit becomes its code."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err
