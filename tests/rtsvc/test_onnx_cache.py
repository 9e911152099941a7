"""The disk cache of exported ONNX graphs (rtsvc.onnx_cache) and its use by rtsvc.ort_models:
a second load opens the cached graph without exporting and runs identically, the key follows
weights, structure and facts, damaged or mismatched files are replaced, RTSVC_ONNX_CACHE=0
writes nothing, the LRU bound holds and the cache folder follows the environment.

Every test runs with RTSVC_CACHE_DIR in its own tmp_path (autouse fixture below): nothing here
touches the real user cache."""

from __future__ import annotations

import copy
import importlib.util
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra (onnxruntime) is not installed")
pytest.importorskip("onnx", reason="the onnx extra (onnx) is not installed")

from rtsvc import onnx_cache, ort_models  # noqa: E402
from rtsvc.backends import choose_backend, describe_backend  # noqa: E402
from rtsvc.ort_models import OrtContentEncoder, OrtSynthesizer  # noqa: E402
from rtsvc.errors import ParameterError  # noqa: E402
from rtsvc.onnx_cache import OnnxCache, graph_key  # noqa: E402
from rtsvc.onnx_export import ONNX_OPSET  # noqa: E402

#: Small model sizes (export takes well under a second).
SMALL = {"inter_channels": 8, "hidden_channels": 16, "filter_channels": 32, "upsample_initial_channel": 16,
         "gin_channels": 8, "n_layers": 2}


def _helpers():
    name = "rtsvc_test_onnx_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("test_onnx_helpers.py"))
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


H = _helpers()


@pytest.fixture(autouse=True)
def cache_root(tmp_path, monkeypatch) -> Path:
    """A private cache root per test (never the user's ~/.cache), cache switched on."""
    root = tmp_path / "cache"
    monkeypatch.setenv("RTSVC_CACHE_DIR", str(root))
    monkeypatch.delenv("RTSVC_ONNX_CACHE", raising=False)
    return root


@pytest.fixture(scope="module")
def small_model():
    return H.random_synthesizer(SMALL, ssl_dim=256, speech_encoder="vec256l9", n_speakers=2, seed=3)


@pytest.fixture
def export_calls(monkeypatch) -> list[str]:
    """Counts exports done through rtsvc.ort_models (names of the exported kinds)."""
    calls: list[str] = []
    synth_export, encoder_export = ort_models.synthesizer_onnx_bytes, ort_models.encoder_onnx_bytes

    def synth(*args, **kwargs):
        calls.append("synthesizer")
        return synth_export(*args, **kwargs)

    def encoder(*args, **kwargs):
        calls.append("encoder")
        return encoder_export(*args, **kwargs)

    monkeypatch.setattr(ort_models, "synthesizer_onnx_bytes", synth)
    monkeypatch.setattr(ort_models, "encoder_onnx_bytes", encoder)
    return calls


def _graphs(root: Path) -> list[str]:
    folder = root / "onnx"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _run(synth: OrtSynthesizer, model) -> torch.Tensor:
    c, f0, uv, vol = H.random_inputs(model, 20)
    return synth.infer(c, f0, uv, g=1, vol=vol, deterministic=True)[0]


def test_second_load_comes_from_the_cache_and_runs_identically(small_model, cache_root, export_calls):
    choice = choose_backend("onnxruntime")
    first = OrtSynthesizer.from_model(small_model, choice, speech_encoder="vec256l9")
    assert first.onnx_source == "export" and export_calls == ["synthesizer"]
    (name,) = _graphs(cache_root)
    assert name.startswith("synthesizer-") and name.endswith(".onnx")
    second = OrtSynthesizer.from_model(small_model, choice, speech_encoder="vec256l9")
    assert second.onnx_source == "cache" and export_calls == ["synthesizer"]  # no second export
    assert second.describe()["onnx_source"] == "cache"
    assert torch.equal(_run(first, small_model), _run(second, small_model))
    assert describe_backend(second, None, choice)["synthesizer_onnx_source"] == "cache"
    # other facts (speaker names) -> another graph (the names are in its metadata)
    third = OrtSynthesizer.from_model(small_model, choice, speakers=("a", "b"), speech_encoder="vec256l9")
    assert third.onnx_source == "export" and len(_graphs(cache_root)) == 2


def test_the_key_follows_weights_structure_and_facts(small_model):
    facts = {"flavour": "rtsvc", "speakers": ["a", "b"]}
    key = graph_key("synthesizer", small_model, facts, opset=ONNX_OPSET)
    assert len(key) == onnx_cache.KEY_HEX_CHARS and int(key, 16) >= 0
    twin = copy.deepcopy(small_model)
    assert graph_key("synthesizer", twin, facts, opset=ONNX_OPSET) == key  # same content, other object
    with torch.no_grad():
        twin.emb_g.weight[0, 0] += 1e-6  # one weight, slightly
    assert graph_key("synthesizer", twin, facts, opset=ONNX_OPSET) != key
    other = copy.deepcopy(small_model)
    conv = next(m for m in other.modules() if type(m).__name__ == "WeightNormConv1d" and m.dilation == 1)
    conv.dilation = 3  # structure only: no weight changes shape
    assert graph_key("synthesizer", other, facts, opset=ONNX_OPSET) != key
    for attribute in (np.float32(0.5), np.arange(3), torch.ones(2)):  # plain attributes count too
        other.dec.probe = attribute
        probed = graph_key("synthesizer", other, facts, opset=ONNX_OPSET)
        other.dec.probe = attribute * 2
        assert graph_key("synthesizer", other, facts, opset=ONNX_OPSET) != probed
    assert graph_key("synthesizer", small_model, {**facts, "speakers": ["a", "c"]}, opset=ONNX_OPSET) != key
    assert graph_key("synthesizer", small_model, facts, opset=ONNX_OPSET + 1) != key
    assert graph_key("encoder", small_model, facts, opset=ONNX_OPSET) != key


def test_key_covers_versions_and_cache_format(small_model, monkeypatch):
    key = graph_key("synthesizer", small_model, {}, opset=ONNX_OPSET)
    monkeypatch.setattr(onnx_cache, "CACHE_FORMAT", onnx_cache.CACHE_FORMAT + 1)
    bumped = graph_key("synthesizer", small_model, {}, opset=ONNX_OPSET)
    monkeypatch.setattr(onnx_cache, "_versions", lambda: {"torch": "0.0", "onnx": "0.0"})
    assert len({key, bumped, graph_key("synthesizer", small_model, {}, opset=ONNX_OPSET)}) == 3


def test_editing_the_model_code_changes_the_key(small_model, tmp_path, monkeypatch):
    package = tmp_path / "rtsvc_cache_probe"
    package.mkdir()
    (package / "__init__.py").write_text("SLOPE = 0.1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(onnx_cache, "CODE_PACKAGES", ("rtsvc_cache_probe",))
    key = graph_key("synthesizer", small_model, {}, opset=ONNX_OPSET)
    assert graph_key("synthesizer", small_model, {}, opset=ONNX_OPSET) == key
    (package / "__init__.py").write_text("SLOPE = 0.2\n")
    assert graph_key("synthesizer", small_model, {}, opset=ONNX_OPSET) != key


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other graph"])
def test_a_damaged_or_mismatched_cache_file_is_replaced(small_model, cache_root, export_calls, caplog, damage):
    choice = choose_backend("onnxruntime")
    expected = _run(OrtSynthesizer.from_model(small_model, choice), small_model)
    path = cache_root / "onnx" / _graphs(cache_root)[0]
    good = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not an onnx file")
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    else:  # a valid graph whose metadata names other speakers
        other = OrtSynthesizer.from_model(small_model, choice, speakers=("x", "y"))
        assert other.onnx_source == "export"
        other_path = next(p for p in (cache_root / "onnx").iterdir() if p != path)
        os.replace(other_path, path)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rtsvc.onnx_cache"):
        again = OrtSynthesizer.from_model(small_model, choice)
    assert again.onnx_source == "export"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()
    assert path.read_bytes() == good  # rewritten with the fresh export
    assert torch.equal(_run(again, small_model), expected)
    assert OrtSynthesizer.from_model(small_model, choice).onnx_source == "cache"


def test_cache_switched_off_writes_nothing(small_model, cache_root, export_calls, monkeypatch):
    monkeypatch.setenv("RTSVC_ONNX_CACHE", "0")
    choice = choose_backend("onnxruntime")
    for _ in range(2):
        assert OrtSynthesizer.from_model(small_model, choice).onnx_source == "export"
    assert export_calls == ["synthesizer", "synthesizer"] and not cache_root.exists()


@pytest.mark.parametrize("value, enabled", [("", True), ("1", True), ("On", True), ("0", False), ("off", False),
                                            ("False", False), (" no ", False)])
def test_switch_values(monkeypatch, value, enabled):
    monkeypatch.setenv("RTSVC_ONNX_CACHE", value)
    assert onnx_cache.onnx_cache_enabled() is enabled


def test_a_bad_switch_value_is_refused(monkeypatch):
    monkeypatch.setenv("RTSVC_ONNX_CACHE", "sometimes")
    with pytest.raises(ParameterError, match="RTSVC_ONNX_CACHE must be 0 .* or 1"):
        onnx_cache.onnx_cache_enabled()


KEY_IN_A_FRESH_PROCESS = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("h", sys.argv[1])
H = importlib.util.module_from_spec(spec)
spec.loader.exec_module(H)
from rtsvc.onnx_cache import graph_key
from rtsvc.onnx_export import ONNX_OPSET
model = H.random_synthesizer(dict(zip(sys.argv[2::2], map(int, sys.argv[3::2]))), ssl_dim=256,
                             speech_encoder="vec256l9", n_speakers=2, seed=3)
print(graph_key("synthesizer", model, {"speakers": ["a", "b"]}, opset=ONNX_OPSET))
"""


def test_the_key_is_the_same_in_another_process(small_model):
    """The point of the cache is the next start: nothing in the key may depend on object
    addresses, import order or hash seeds."""
    import subprocess

    sizes = [str(x) for item in SMALL.items() for x in item]
    support = Path(H.__file__).resolve().parents[1] / "support"  # test_onnx_helpers imports tiny_voice
    env = {**os.environ, "PYTHONHASHSEED": "123",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(support), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", KEY_IN_A_FRESH_PROCESS, str(Path(H.__file__)), *sizes],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == graph_key("synthesizer", small_model, {"speakers": ["a", "b"]}, opset=ONNX_OPSET)


def test_an_unwritable_cache_costs_one_warning_not_the_load(small_model, cache_root, caplog):
    cache_root.parent.mkdir(parents=True, exist_ok=True)
    cache_root.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="rtsvc.onnx_cache"):
        synth = OrtSynthesizer.from_model(small_model, choose_backend("onnxruntime"))
    assert synth.onnx_source == "export"
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "cannot write the ONNX cache file" in caplog.records[0].getMessage()


def _fake_graph(cache: OnnxCache, kind: str, index: int, mtime: float) -> Path:
    path = cache.path_for(kind, f"{index:0{onnx_cache.KEY_HEX_CHARS}x}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"graph %d" % index)
    os.utime(path, (mtime, mtime))
    return path


def test_lru_bound_keeps_the_most_recently_used_files(tmp_path):
    cache = OnnxCache(tmp_path / "onnx", max_files=3)
    base = 1_700_000_000.0
    paths = [_fake_graph(cache, "synthesizer" if i % 2 else "encoder", i, base + i) for i in range(5)]
    foreign = tmp_path / "onnx" / "my-notes.onnx"
    foreign.write_bytes(b"not ours")
    stale = tmp_path / "onnx" / f".encoder-{'a' * onnx_cache.KEY_HEX_CHARS}.onnx.x1y2.part"
    stale.write_bytes(b"half")
    os.utime(stale, (base, base))
    os.utime(paths[0], (base + 10, base + 10))  # the oldest one was just used
    dropped = cache.prune()
    assert sorted(dropped) == sorted([paths[1], paths[2]])
    assert cache.graphs() == [paths[0], paths[4], paths[3]]
    assert foreign.exists() and not stale.exists()
    new = cache.store("synthesizer", "f" * onnx_cache.KEY_HEX_CHARS, b"new graph")
    assert new is not None and new.read_bytes() == b"new graph"
    assert cache.graphs()[0] == new and len(cache.graphs()) == 3 and not paths[3].exists()
    with pytest.raises(ParameterError, match="at least 1"):
        OnnxCache(tmp_path, max_files=0)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path, cache_root):
    assert onnx_cache.cache_dir() == cache_root
    assert onnx_cache.default_cache().root == cache_root / "onnx"
    monkeypatch.delenv("RTSVC_CACHE_DIR")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_cache.cache_dir() == tmp_path / "xdg" / "rtsvc"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert onnx_cache.cache_dir() == tmp_path / "home" / ".cache" / "rtsvc"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert onnx_cache.cache_dir() == tmp_path / "home" / "Library" / "Caches" / "rtsvc"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert onnx_cache.cache_dir() == tmp_path / "local" / "rtsvc" / "Cache"
    monkeypatch.setenv("RTSVC_ONNX_CACHE", "0")
    assert onnx_cache.default_cache() is None


def test_encoder_graph_is_cached_too(tmp_path, fixtures_dir, cache_root, export_calls):
    from rtsvc.encoders import load_content_encoder
    from tiny_voice import make_tiny_encoder

    path = make_tiny_encoder(tmp_path / "pretrain", fixtures_dir)
    choice = choose_backend("onnxruntime")
    encoder = load_content_encoder("vec256l9", path=path)
    first = OrtContentEncoder.from_encoder(encoder, choice)
    second = OrtContentEncoder.from_encoder(load_content_encoder("vec256l9", path=path), choice)
    assert (first.onnx_source, second.onnx_source) == ("export", "cache") and export_calls == ["encoder"]
    assert [n.split("-")[0] for n in _graphs(cache_root)] == ["encoder"]
    audio = 0.1 * torch.randn(8000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(first.encode(audio), second.encode(audio))
    assert describe_backend(None, second, choice)["encoder_onnx_source"] == "cache"
