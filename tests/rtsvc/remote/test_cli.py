"""``rtsvc remote`` against a real server, and ``rtsvc serve`` as a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtsvc.cli import main
from rtsvc.errors import RtsvcError
from rtsvc.remote.client import RemoteClient

TOKEN = "cli-test-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch) -> Path:
    cfg = tmp_path / "config"
    monkeypatch.setenv("RTSVC_CONFIG_DIR", str(cfg))
    monkeypatch.delenv("RTSVC_TOKEN", raising=False)
    return cfg


def remote(server, *args: str) -> int:
    return main(["remote", "--url", server.url, *args])


def test_set_get_with_aliases(server, controller, capsys):
    assert remote(server, "set", "pitch=5", "mix=0.5", "bypass=true") == 0
    assert controller.params.transpose == 5 and controller.params.cluster_ratio == 0.5 and controller.params.bypass
    assert capsys.readouterr().out.splitlines() == ["transpose = 5", "cluster_ratio = 0.5", "bypass = true"]
    assert remote(server, "get", "transpose") == 0
    assert capsys.readouterr().out.strip() == "transpose = 5"
    assert remote(server, "--json", "get") == 0
    assert json.loads(capsys.readouterr().out)["cluster_ratio"] == 0.5


def test_start_status_watch_stop(server, controller, capsys):
    assert remote(server, "start") == 0 and controller.running
    assert remote(server, "status", "--watch", "--count", "3", "--rate", "20") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "running" and len(lines) == 4 and all(line.startswith("in ") for line in lines[1:])
    assert remote(server, "--json", "status") == 0
    assert json.loads(capsys.readouterr().out)["running"] is True
    assert remote(server, "stop") == 0 and not controller.running


def test_voices_and_presets(server, controller, capsys):
    assert remote(server, "voices") == 0
    assert capsys.readouterr().out.split() == ["world", "alice", "bob"]
    assert remote(server, "load-voice", "bob") == 0 and controller.voice.name == "bob"
    assert remote(server, "set", "transpose=-2") == 0
    assert remote(server, "save-preset", "low") == 0
    assert remote(server, "set", "transpose=0") == 0
    assert remote(server, "load-preset", "low") == 0 and controller.params.transpose == -2
    capsys.readouterr()
    assert remote(server, "presets") == 0 and capsys.readouterr().out.strip() == "low"


@pytest.mark.parametrize("args, message", [
    (("load-voice", "../../etc"), "looks like a path"),
    (("set", "transpose=1e999"), "transpose must be a number"),
    (("set", "transpose=99"), "transpose must be a finite number in [-48, 48]"),
    (("set", "pitch"), "is not NAME=VALUE"),
    (("get", "colour"), "unknown parameter(s): colour"),
    (("load-preset", "nothing"), "no preset named 'nothing'"),
])
def test_bad_input_is_one_line_exit_2(server, capsys, args, message):
    assert remote(server, *args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_no_server_is_a_clear_error(capsys):
    assert main(["remote", "--url", "ws://127.0.0.1:9", "status"]) == 2
    assert "cannot connect to ws://127.0.0.1:9" in capsys.readouterr().err


def test_token_sources(make_server, tmp_path, config_dir, monkeypatch, capsys):
    server = make_server(host="127.0.0.2", token=TOKEN)
    assert remote(server, "get") == 2
    assert "requires a token" in capsys.readouterr().err
    token_file = tmp_path / "tok"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    assert remote(server, "--token-file", str(token_file), "get", "transpose") == 0
    monkeypatch.setenv("RTSVC_TOKEN", TOKEN)
    assert remote(server, "get", "transpose") == 0
    monkeypatch.delenv("RTSVC_TOKEN")
    config_dir.mkdir()
    (config_dir / "remote_token").write_text(TOKEN)
    (config_dir / "remote_token").chmod(0o600)
    assert remote(server, "get", "transpose") == 0  # the server's own token file, same machine


def _serve(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rtsvc", "serve", "--port", "0", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_url(proc: subprocess.Popen) -> tuple[str, list[str]]:
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        m = re.match(r"serving (wss?://\S+) ", line)
        if m:
            return m.group(1), lines
    raise AssertionError(f"serve did not start: {lines} {proc.stderr.read()}")


def test_serve_process_prints_new_token_and_stops_on_sigterm(tmp_path, config_dir):
    """One real process (the CLI imports torch, so each start costs seconds): non-local bind
    creates and prints the token, serves with it, and SIGTERM stops it cleanly."""
    wav = tmp_path / "in.wav"
    sf.write(wav, (0.1 * np.sin(np.arange(16000) / 10)).astype(np.float32), 16000)
    env = {**os.environ, "RTSVC_CONFIG_DIR": str(config_dir)}
    proc = _serve(["--host", "127.0.0.2", "--virtual-input", str(wav), "--voice-dir", str(tmp_path),
                   "--set", "pitch=4"], env)
    try:
        url, lines = _wait_url(proc)
        token = (config_dir / "remote_token").read_text().strip()
        assert lines[0].startswith("new remote token") and lines[1].strip() == token
        assert url.startswith("ws://127.0.0.2:")
        with RemoteClient(url, token=token) as rc:
            assert rc.request("get")["params"]["transpose"] == 4
        with pytest.raises(RtsvcError, match="requires a token"):
            RemoteClient(url)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.rstrip().endswith("stopped")


@pytest.mark.parametrize("args, message", [
    (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
    (["--allow-origin", "evil"], "is not an origin"),
    (["--voice", "../x"], "looks like a path"),
    (["--voice", "nobody"], "no voice named 'nobody'"),
    (["--set", "transpose=100"], "transpose must be a finite number"),
    (["--tls-cert", "c.pem", "--tls-key", "k.pem"], "TLS certificate file c.pem does not exist"),
])
def test_serve_bad_arguments_are_one_line_errors(args, message, capsys, tmp_path):
    assert main(["serve", "--port", "0", "--voice-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_serve_takes_the_backend_options_but_not_one_onnx_file(capsys):
    from rtsvc.cli import build_parser
    from rtsvc.cli_options import voice_options

    args = build_parser().parse_args(["serve", "--device", "cuda", "--backend", "torch", "--threads", "2", "--fp16",
                                      "--cuda-graphs", "off"])
    assert voice_options(args) == {"device": "cuda", "backend": "torch", "threads": 2, "fp16": True,
                                   "cuda_graphs": False}
    with pytest.raises(SystemExit):  # one exported synthesizer fits one model, not a voice folder
        build_parser().parse_args(["serve", "--onnx", "model.onnx"])
    assert "unrecognized arguments: --onnx" in capsys.readouterr().err


def test_serve_refuses_impossible_backend_options_at_start(capsys):
    assert main(["serve", "--fp16", "--port", "0"]) != 0  # fp16 needs CUDA: refused before serving
    err = capsys.readouterr().err
    assert "fp16" in err and "Fix:" in err
