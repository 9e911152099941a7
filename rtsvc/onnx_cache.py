"""A disk cache of exported ONNX graphs, so the second start of a voice skips the export.

Exporting a full-size synthesizer and its ContentVec encoder to ONNX takes seconds at every
start (6-18 s on a 2-core CPU). :func:`load_or_export` opens the graph from
``<cache>/onnx/<kind>-<key>.onnx`` when that file exists, else exports it, opens the fresh bytes
and writes them there for next time.

Where: ``$RTSVC_CACHE_DIR`` if set, else the platform's user cache folder + ``rtsvc``
(Linux and other Unix: ``$XDG_CACHE_HOME/rtsvc``, else ``~/.cache/rtsvc``; macOS:
``~/Library/Caches/rtsvc``; Windows: ``%LOCALAPPDATA%\\rtsvc\\Cache``). ``RTSVC_ONNX_CACHE=0``
turns the cache off (graphs are exported in memory at every start, nothing is written).

Key (:func:`graph_key`): SHA-256 over everything the exported graph depends on:

* every parameter and buffer of the torch module (name, dtype, shape, bytes) and every tensor or
  plain attribute of each submodule (conv strides and dilations, head counts, config dataclasses:
  settings that change the graph without changing any weight shape);
* the source files of the networks and the exporter (every file of the :data:`CODE_PACKAGES`,
  the :data:`CODE_MODULES`, and the module of any submodule class from elsewhere, torch's own
  excepted), so editing the model code or the exporter invalidates old graphs;
* the export facts given by the caller (speakers, speech encoder, flavour, ...), the kind,
  the ONNX opset, the torch and onnx versions and :data:`CACHE_FORMAT`.

The key is computed from the loaded module, so it works whatever file the weights came from.
Hashing is fast: 0.15 s for the full-size synthesizer (40 M parameters, 161 MB) and 0.27 s for
a ContentVec-size encoder (95 M parameters, 378 MB) on a 2-core AMD EPYC with SHA extensions
(benchmarks/onnx.py prints the figure; there a warm load of both graphs took 1.9 s against
16.1 s cold).

A cached file that onnxruntime cannot open, or whose metadata does not match what the caller
expects, is deleted and exported again, with one warning naming it. The cache holds at most
:data:`CACHE_MAX_FILES` graphs: a file's mtime is refreshed when it is used, and after each
write the least recently used files beyond that are deleted. Writing uses rtsvc.atomic, so a
reader never sees half a file; a cache that cannot be written costs one warning, never the load.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import importlib.util
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import numpy as np
import torch

from rtsvc.atomic import atomic_write
from rtsvc.errors import ParameterError, RtsvcError

log = logging.getLogger(__name__)

#: Bump when the graphs change in a way the key would not notice (edits to the code named by
#: CODE_PACKAGES / CODE_MODULES already change every key; a change elsewhere, such as in onnx
#: or onnxruntime handling, does not).
CACHE_FORMAT = 1
#: Graph files kept; older ones (by last use) are deleted after each write.
CACHE_MAX_FILES = 8
#: Environment variables: the cache root, and the on/off switch of the ONNX cache.
CACHE_DIR_ENV = "RTSVC_CACHE_DIR"
ONNX_CACHE_ENV = "RTSVC_ONNX_CACHE"
#: Values of RTSVC_ONNX_CACHE that turn the cache off / leave it on.
OFF_VALUES = ("0", "false", "no", "off")
ON_VALUES = ("1", "true", "yes", "on")
#: Sub-folder of the cache root that holds the graphs.
ONNX_SUBDIR = "onnx"
#: Graph kinds (the file name prefix).
KINDS = ("synthesizer", "encoder")
#: Hex characters of the key in file names (128 bits).
KEY_HEX_CHARS = 32
#: Leftover temp files of interrupted writes older than this (seconds) are removed on prune.
STALE_TEMP_SECONDS = 3600
#: Packages (every .py file in them) and modules whose source is part of every key: the
#: networks with their export wrappers, and the exporter.
CODE_PACKAGES = ("rtsvc.models",)
CODE_MODULES = ("rtsvc.onnx_export", "rtsvc.onnx_conv2d")
#: Where each graph came from, as status displays report it.
SOURCE_CACHE, SOURCE_EXPORT, SOURCE_FILE = "cache", "export", "file"

_GRAPH_NAME = re.compile(r"^(%s)-[0-9a-f]{%d}\.onnx$" % ("|".join(KINDS), KEY_HEX_CHARS))
_TEMP_NAME = re.compile(r"^\.(%s)-[0-9a-f]{%d}\.onnx\..*\.part$" % ("|".join(KINDS), KEY_HEX_CHARS))

Session = TypeVar("Session")


def cache_dir() -> Path:
    """The user cache dir of rtsvc (see module docstring)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "rtsvc"
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        return (Path(local) if local else Path.home() / "AppData" / "Local") / "rtsvc" / "Cache"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "rtsvc"


def onnx_cache_enabled() -> bool:
    """False when ``RTSVC_ONNX_CACHE`` is 0/false/no/off; unset or 1/true/yes/on: True."""
    value = os.environ.get(ONNX_CACHE_ENV, "").strip().lower()
    if not value or value in ON_VALUES:
        return True
    if value in OFF_VALUES:
        return False
    raise ParameterError(f"{ONNX_CACHE_ENV} must be 0 (no ONNX cache) or 1 (cache on), got {value!r}.",
                         f"set {ONNX_CACHE_ENV}=0 or =1, or unset it.")


# ---------------------------------------------------------------------------------------------
# key


def _canonical(value: Any, tensors: list[tuple[str, torch.Tensor]], where: str) -> Any:
    """A JSON-able, address-free description of an attribute value; tensors are collected in
    ``tensors`` (hashed by content) and described by their slot name."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return repr(value)  # keeps nan / inf and full precision
    if isinstance(value, torch.Tensor):
        tensors.append((where, value))
        return f"<tensor {where}>"
    if isinstance(value, np.generic):
        return _canonical(value.item(), tensors, where)
    if isinstance(value, np.ndarray):
        data = value.tobytes() if value.dtype != object else repr(value.tolist()).encode()
        return f"<ndarray {value.dtype} {value.shape} {hashlib.sha256(data).hexdigest()}>"
    if isinstance(value, (torch.dtype, torch.device)):
        return str(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__qualname__}.{value.name}"
    if isinstance(value, (tuple, list)):
        return [_canonical(v, tensors, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return {str(k): _canonical(v, tensors, f"{where}[{k!r}]") for k, v in items}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"dataclass": type(value).__qualname__,
                **{k: _canonical(v, tensors, f"{where}.{k}") for k, v in fields.items()}}
    # other objects (functions, callables, ...): only their type; their code is in the source part
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def _hash_tensor(digest, name: str, tensor: torch.Tensor) -> None:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
    if flat.numel():
        digest.update(flat.view(torch.uint8).numpy().data)  # the raw bytes, zero-copy for CPU tensors


def _code_files(module: torch.nn.Module) -> list[tuple[str, Path | None]]:
    """(label, file) of the code the graph depends on: every .py file of :data:`CODE_PACKAGES`,
    the :data:`CODE_MODULES`, and the modules of ``module``'s submodule classes that are in
    neither (torch's own excluded: torch's version is in the key). The file is None when it
    cannot be found (a frozen app)."""
    files: dict[str, Path | None] = {}
    for package in CODE_PACKAGES:
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec is not None else []:
            for path in sorted(Path(folder).rglob("*.py")):
                files[f"{package}/{path.relative_to(folder).as_posix()}"] = path
    names = {type(m).__module__ for m in module.modules()} | set(CODE_MODULES)
    for name in sorted(names):
        if name == "torch" or name.startswith("torch.") or any(name.startswith(p + ".") for p in CODE_PACKAGES):
            continue
        file = _module_file(name)
        files[name] = Path(file) if file else None
    return sorted(files.items())


def _module_file(name: str) -> str | None:
    """The source file of module ``name``, whether it was imported yet or not."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.has_location else None


def _hash_code(digest, module: torch.nn.Module) -> None:
    import rtsvc

    for label, path in _code_files(module):
        try:
            data = path.read_bytes() if path is not None else None
        except OSError:
            data = None
        digest.update(f"source|{label}|".encode())
        # without a readable file the package version stands in for the code
        digest.update(data if data is not None else f"rtsvc {rtsvc.__version__}".encode())


def _versions() -> dict[str, str]:
    try:
        import onnx

        onnx_version = onnx.__version__
    except ImportError:
        onnx_version = "none"
    return {"torch": torch.__version__, "onnx": onnx_version}


def graph_key(kind: str, module: torch.nn.Module, facts: Mapping[str, Any], *, opset: int) -> str:
    """The cache key (:data:`KEY_HEX_CHARS` hex characters) of exporting ``module`` as ``kind``
    with ``facts`` (JSON-able export settings) at ``opset`` (see module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"graph kind must be one of {KINDS}, got {kind!r}")
    digest = hashlib.sha256()
    header = {"format": CACHE_FORMAT, "kind": kind, "opset": opset, "versions": _versions(), "facts": facts}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    tensors: list[tuple[str, torch.Tensor]] = []
    structure = {}
    for name, sub in module.named_modules():
        attrs = {k: v for k, v in vars(sub).items() if not k.startswith("_")}
        structure[name] = {"class": f"{type(sub).__module__}.{type(sub).__qualname__}",
                           "attrs": _canonical(attrs, tensors, f"{name}:attr")}
    digest.update(json.dumps(structure, sort_keys=True).encode())
    for name, tensor in module.named_parameters():
        _hash_tensor(digest, f"param|{name}", tensor)
    for name, tensor in module.named_buffers():
        _hash_tensor(digest, f"buffer|{name}", tensor)
    for name, tensor in tensors:
        _hash_tensor(digest, f"attr|{name}", tensor)
    _hash_code(digest, module)
    return digest.hexdigest()[:KEY_HEX_CHARS]


# ---------------------------------------------------------------------------------------------
# files


class OnnxCache:
    """Graph files ``<kind>-<key>.onnx`` in ``root``, at most ``max_files`` of them (least
    recently used deleted first). Only file names of that pattern are ever deleted."""

    def __init__(self, root: str | os.PathLike, max_files: int = CACHE_MAX_FILES) -> None:
        if isinstance(max_files, bool) or not isinstance(max_files, int) or max_files < 1:
            raise ParameterError(f"the ONNX cache must keep at least 1 file, got max_files={max_files!r}.")
        self.root = Path(root)
        self.max_files = max_files

    def path_for(self, kind: str, key: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"graph kind must be one of {KINDS}, got {kind!r}")
        return self.root / f"{kind}-{key}.onnx"

    def graphs(self) -> list[Path]:
        """The cached graph files, most recently used first."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            if _GRAPH_NAME.match(path.name):
                try:
                    found.append((path.stat().st_mtime, path.name, path))
                except OSError:  # deleted meanwhile by another process
                    continue
        return [p for _, _, p in sorted(found, reverse=True)]

    def touch(self, path: Path) -> None:
        """Mark ``path`` as just used (mtime now); a read-only cache is left as it is."""
        try:
            os.utime(path)
        except OSError:
            pass

    def store(self, kind: str, key: str, data: bytes) -> Path | None:
        """Write ``data`` atomically as the graph of ``kind``/``key`` and prune; on failure log one
        warning and return None (the caller goes on with the bytes in memory)."""
        path = self.path_for(kind, key)
        try:
            with atomic_write(path) as fh:
                fh.write(data)
        except OSError as exc:
            log.warning("cannot write the ONNX cache file %s (%s); continuing without caching it.",
                        path, exc.strerror or exc)
            return None
        self.prune(keep=path)
        return path

    def remove(self, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot delete the ONNX cache file %s (%s).", path, exc.strerror or exc)

    def prune(self, keep: Path | None = None) -> list[Path]:
        """Delete graphs beyond :attr:`max_files` (least recently used first, never ``keep``)
        and temp files of interrupted writes older than :data:`STALE_TEMP_SECONDS`.
        Returns the graphs deleted."""
        graphs = self.graphs()
        if keep is not None and keep in graphs:
            graphs.remove(keep)
            graphs.insert(0, keep)
        dropped = graphs[self.max_files:]
        for path in dropped:
            self.remove(path)
        now = time.time()
        for path in self.root.iterdir() if self.root.is_dir() else ():
            try:
                if _TEMP_NAME.match(path.name) and now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                    path.unlink()
            except OSError:
                continue
        return dropped


def default_cache() -> OnnxCache | None:
    """The user's ONNX cache (``cache_dir()/onnx``), or None when ``RTSVC_ONNX_CACHE=0``."""
    return OnnxCache(cache_dir() / ONNX_SUBDIR) if onnx_cache_enabled() else None


# ---------------------------------------------------------------------------------------------
# load


def metadata_problem(session, expected: Mapping[str, str]) -> str | None:
    """None when the opened ONNX Runtime ``session``'s metadata has every ``expected`` key with
    that value, else what differs (first few keys)."""
    found = dict(session.get_modelmeta().custom_metadata_map)
    wrong = [k for k, v in expected.items() if found.get(k) != v]
    if not wrong:
        return None
    shown = ", ".join(f"{k}={found.get(k)!r} (expected {expected[k]!r})" for k in wrong[:3])
    return f"metadata does not match: {shown}" + (f" and {len(wrong) - 3} more" if len(wrong) > 3 else "")


def load_or_export(kind: str, module: torch.nn.Module, facts: Mapping[str, Any], *, opset: int,
                   expected_metadata: Mapping[str, str], export: Callable[[], bytes],
                   open_session: Callable[[bytes | Path], Session], cache: OnnxCache | None) -> tuple[Session, str]:
    """(session, source) of the graph of ``module``: opened from the cache when its file is there
    and fits (source "cache"), else ``export()``-ed, opened from the bytes and then stored
    (source "export"; the session is opened before storing, so a graph that cannot run is
    never cached).

    facts: the export settings (JSON-able) that, with the module, decide the graph (see
    :func:`graph_key`). expected_metadata: ``rtsvc.*`` metadata a cached file must carry.
    open_session: bytes or a path -> ONNX Runtime session (raises RtsvcError when it cannot).
    cache: where to look and store (usually :func:`default_cache`); None: export, store nothing.
    """
    if cache is None:
        return open_session(export()), SOURCE_EXPORT
    key = graph_key(kind, module, facts, opset=opset)
    path = cache.path_for(kind, key)
    if path.is_file():
        try:
            session = open_session(path)
            problem = metadata_problem(session, expected_metadata)
        except RtsvcError as exc:
            problem = exc.message
        if problem is None:
            cache.touch(path)
            return session, SOURCE_CACHE
        log.warning("ONNX cache file %s cannot be used (%s); deleting it and exporting again.", path, problem)
        cache.remove(path)
    data = export()
    session = open_session(data)
    cache.store(kind, key, data)
    return session, SOURCE_EXPORT
