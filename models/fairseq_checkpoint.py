"""Safe reading of fairseq checkpoint files (ContentVec ``checkpoint_best_legacy_500.pt``, RVC's
``hubert_base.pt``) and of other ``torch.save`` weight files, without fairseq.

Model files are untrusted. Every file is read with ``torch.load(..., weights_only=True)``, whose
unpickler builds only tensors, containers and plain builtin values. The one non-builtin object a
fairseq HuBERT/ContentVec checkpoint holds is ``task_state["dictionaries"][i]``, an instance of
``fairseq.data.dictionary.Dictionary`` (the label vocabulary, unused for feature extraction). It is
allowlisted by mapping that dotted name to :class:`FairseqDictionaryStub`, an empty class of ours
that only receives the pickled attribute dict. Nothing from fairseq is imported or run; any other
non-builtin global in a file (a class, ``os.system`` in a ``__reduce__`` payload, ...) stops the load
before it is called, and is reported as a :class:`~rtsvc.errors.ModelFileError` naming it.

``cfg["model"]["conv_feature_layers"]`` is a Python expression that fairseq ``eval()``s. Here it is
parsed by :func:`parse_conv_feature_layers`, a tiny grammar that accepts only lists of integer
3-tuples joined by ``+`` and repeated by ``* n``.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rtsvc.errors import ModelFileError

#: The dotted name under which fairseq pickles its label dictionary.
FAIRSEQ_DICTIONARY_NAME = "fairseq.data.dictionary.Dictionary"

#: fairseq ``_name`` of the HuBERT model family (ContentVec legacy checkpoints use it too).
HUBERT_MODEL_NAME = "hubert"

_UNSUPPORTED_GLOBAL = re.compile(r"GLOBAL ([A-Za-z_][\w.]*)")
_CONV_TOKEN = re.compile(r"\s*(?:(\d+)|(.))")


class FairseqDictionaryStub:
    """Receives the attributes of a pickled fairseq ``Dictionary`` (``symbols``, ``indices``, ...).

    Deliberately empty: no ``__init__``, ``__setstate__`` or ``__slots__``. The weights-only
    unpickler creates it with ``__new__`` and fills ``__dict__``; nothing reads it afterwards.
    """


@dataclass
class FairseqModelFile:
    """The parts of a fairseq checkpoint that inference needs.

    model_cfg: ``cfg["model"]`` as a plain dict (sizes, layout switches).
    task_cfg: ``cfg["task"]`` as a plain dict (``sample_rate``, ``normalize``).
    state_dict: parameter name -> tensor, in file order, dtype as stored (float32 or float16).
    """

    path: Path
    model_cfg: dict[str, Any]
    task_cfg: dict[str, Any]
    state_dict: dict[str, torch.Tensor]


def load_weights_only(path: str | Path, what: str) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with only the fairseq
    Dictionary stub allowlisted (scoped to this call, not process-wide).

    what: a few words saying what the file is, used in error messages.
    Raises :class:`ModelFileError` for a missing file, a folder, a file carrying any other
    non-builtin Python object (named in the message), or a file that is not a readable
    PyTorch checkpoint (truncated, corrupt, wrong format).
    """
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{p}: no such file ({what}).", "check the path.")
    if p.is_dir():
        raise ModelFileError(f"{p}: is a folder, expected the {what} file.", "give the path of the file itself.")
    try:
        with torch.serialization.safe_globals([(FairseqDictionaryStub, FAIRSEQ_DICTIONARY_NAME)]):
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _UNSUPPORTED_GLOBAL.search(str(exc))
        if found:
            raise ModelFileError(
                f"{p}: refused to load the {what}: the file contains the Python object "
                f"{found.group(1)!r}, which is not weight data (the only object allowed besides tensors "
                f"and plain values is {FAIRSEQ_DICTIONARY_NAME}). Loading it could run code from the file.",
                "use the original file from its official source; do not load files of unknown origin.",
            ) from None
        raise _corrupt(p, what, exc) from None
    except (RuntimeError, EOFError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise _corrupt(p, what, exc) from None


def _corrupt(p: Path, what: str, exc: BaseException) -> ModelFileError:
    detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
    return ModelFileError(
        f"{p}: not a readable PyTorch checkpoint, expected the {what} ({type(exc).__name__}: {detail}).",
        "the file is damaged or incomplete; download it again and compare its size with the original.",
    )


def read_fairseq_hubert(path: str | Path, what: str = "fairseq HuBERT/ContentVec checkpoint") -> FairseqModelFile:
    """Read a fairseq HuBERT/ContentVec checkpoint (a trainer checkpoint with optimizer state, or
    a model-only file) and return its config and state dict.

    Raises :class:`ModelFileError` when the file is unsafe or unreadable (see
    :func:`load_weights_only`), is not a fairseq checkpoint, or holds another model family.
    """
    p = Path(path)
    ckpt = load_weights_only(p, what)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise ModelFileError(
            f"{p}: not a fairseq checkpoint (expected a dict with a 'model' state dict, got "
            f"{type(ckpt).__name__}{' with keys ' + ', '.join(map(str, list(ckpt)[:8])) if isinstance(ckpt, dict) else ''}).",
            f"give the {what} (e.g. checkpoint_best_legacy_500.pt or hubert_base.pt).",
        )
    cfg = ckpt.get("cfg")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
        raise ModelFileError(
            f"{p}: the fairseq checkpoint has no cfg['model'] section (a pre-2021 argparse-style checkpoint?); "
            "rtsvc reads hydra-era HuBERT/ContentVec checkpoints only.",
            "use checkpoint_best_legacy_500.pt or hubert_base.pt.",
        )
    model_cfg = dict(cfg["model"])
    task_cfg = dict(cfg["task"]) if isinstance(cfg.get("task"), dict) else {}
    name = model_cfg.get("_name")
    if name != HUBERT_MODEL_NAME:
        raise ModelFileError(
            f"{p}: holds a fairseq {name!r} model, expected {HUBERT_MODEL_NAME!r} (HuBERT / ContentVec).",
            "use checkpoint_best_legacy_500.pt or hubert_base.pt.",
        )
    state: dict[str, torch.Tensor] = {}
    for key, value in ckpt["model"].items():
        if not isinstance(value, torch.Tensor):
            raise ModelFileError(f"{p}: model entry {key!r} is a {type(value).__name__}, expected a tensor.")
        state[str(key)] = value
    return FairseqModelFile(path=p, model_cfg=model_cfg, task_cfg=task_cfg, state_dict=state)


def parse_conv_feature_layers(text: str) -> tuple[tuple[int, int, int], ...]:
    """Parse fairseq's ``conv_feature_layers`` string without ``eval``.

    Grammar: ``expr := term ('+' term)*``, ``term := list ('*' INT)?``,
    ``list := '[' triple (',' triple)* ','? ']'``, ``triple := '(' INT ',' INT ',' INT ')'``.
    Example: ``"[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"`` ->
    ``((512, 10, 5), (512, 3, 2), (512, 3, 2), (512, 3, 2), (512, 3, 2), (512, 2, 2), (512, 2, 2))``,
    each ``(channels, kernel, stride)``. Raises ``ValueError`` on anything else.
    """
    tokens: list[str | int] = []
    for number, symbol in _CONV_TOKEN.findall(text.strip()):
        if number:
            tokens.append(int(number))
        elif symbol in "[](),+*":
            tokens.append(symbol)
        elif not symbol.isspace():
            raise ValueError(f"unexpected character {symbol!r} in conv_feature_layers {text!r}")
    parser = _ConvSpecParser(tokens, text)
    layers = parser.expr()
    if not layers:
        raise ValueError(f"conv_feature_layers {text!r} describes no layers")
    return tuple(layers)


class _ConvSpecParser:
    """Recursive-descent parser over the tokens of a conv_feature_layers string."""

    def __init__(self, tokens: list[str | int], text: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.text = text

    def _fail(self, expected: str) -> ValueError:
        got = self.tokens[self.pos] if self.pos < len(self.tokens) else "end of text"
        return ValueError(f"conv_feature_layers {self.text!r}: expected {expected}, got {got!r}")

    def _take(self, symbol: str) -> None:
        if self.pos >= len(self.tokens) or self.tokens[self.pos] != symbol:
            raise self._fail(repr(symbol))
        self.pos += 1

    def _int(self) -> int:
        if self.pos >= len(self.tokens) or not isinstance(self.tokens[self.pos], int):
            raise self._fail("an integer")
        value = self.tokens[self.pos]
        self.pos += 1
        return int(value)

    def _peek(self, symbol: str) -> bool:
        return self.pos < len(self.tokens) and self.tokens[self.pos] == symbol

    def expr(self) -> list[tuple[int, int, int]]:
        layers = self.term()
        while self._peek("+"):
            self.pos += 1
            layers += self.term()
        if self.pos != len(self.tokens):
            raise self._fail("'+' or end of text")
        return layers

    def term(self) -> list[tuple[int, int, int]]:
        items = self.list_()
        if self._peek("*"):
            self.pos += 1
            repeat = self._int()
            if not 0 < repeat <= 64:
                raise ValueError(f"conv_feature_layers {self.text!r}: repeat count {repeat} out of range 1..64")
            items = items * repeat
        return items

    def list_(self) -> list[tuple[int, int, int]]:
        self._take("[")
        items = [self.triple()]
        while self._peek(","):
            self.pos += 1
            if self._peek("]"):
                break
            items.append(self.triple())
        self._take("]")
        return items

    def triple(self) -> tuple[int, int, int]:
        self._take("(")
        channels = self._int()
        self._take(",")
        kernel = self._int()
        self._take(",")
        stride = self._int()
        self._take(")")
        if min(channels, kernel, stride) <= 0:
            raise ValueError(f"conv_feature_layers {self.text!r}: (channels, kernel, stride) must be positive")
        return (channels, kernel, stride)
