"""The remote-control protocol: message schema, strict parsing and JSON encoding.

Every message is one JSON object in one text frame (see docs/remote.md for the full reference).

Client -> server::

    {"id": 7, "op": "set", "params": {"transpose": 5}}

``op`` is required; ``id`` (an integer 0..2**53-1 or a string of at most :data:`MAX_ID_CHARS`
characters) is optional and echoed in the reply. Each op has a fixed set of fields
(:data:`OP_FIELDS`); unknown fields, missing required fields and wrong types are refused with the
field named. NaN, Infinity, numbers that overflow to infinity, huge integers and duplicate keys are
refused while parsing.

Server -> client: ``{"type": "hello", ...}`` once on connect, ``{"type": "reply", "id": ..., "ok":
true, "result": {...}}`` or ``{"type": "reply", "id": ..., "ok": false, "error": {"code": ...,
"message": ..., "field": ...}}`` per request, and pushes ``{"type": "status", ...}`` /
``{"type": "params", ...}``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from rtsvc.errors import RtsvcError

#: Protocol version sent in the hello message. Bumped on any incompatible change.
PROTOCOL_VERSION = 1
#: Largest message (either direction) in bytes; bigger frames close the connection with 1009.
MAX_MESSAGE_BYTES = 64 * 1024
#: Longest string id a client may use.
MAX_ID_CHARS = 64
#: Largest integer id (JavaScript's safe-integer limit).
MAX_INT_ID = 2**53 - 1
#: Longest string value accepted anywhere in a request (tokens, names, parameter values).
MAX_STRING_CHARS = 256
#: Most entries in a ``set`` params object or in a list value.
MAX_ITEMS = 64
#: Longest integer literal (digits) accepted while parsing; longer ones are refused.
MAX_INT_DIGITS = 20
#: Status push rates a client may ask for, Hz.
MIN_RATE_HZ, MAX_RATE_HZ, DEFAULT_RATE_HZ = 0.5, 60.0, 10.0
#: Voice and preset names: 1-64 ASCII letters, digits, spaces and ``._-``; a letter or digit
#: first, no space last; never a separator (a subset of what the preset store accepts).
NAME_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ._\-]{0,62}[A-Za-z0-9._\-])?")

# Error codes (the "code" of an error reply).
BAD_JSON = "bad_json"
BAD_MESSAGE = "bad_message"
UNKNOWN_OP = "unknown_op"
BAD_VALUE = "bad_value"
NOT_FOUND = "not_found"
UNAUTHORIZED = "unauthorized"
RATE_LIMITED = "rate_limited"
BINARY_NOT_SUPPORTED = "binary_not_supported"
ENGINE_ERROR = "engine_error"
INTERNAL_ERROR = "internal_error"
ERROR_CODES = (BAD_JSON, BAD_MESSAGE, UNKNOWN_OP, BAD_VALUE, NOT_FOUND, UNAUTHORIZED, RATE_LIMITED,
               BINARY_NOT_SUPPORTED, ENGINE_ERROR, INTERNAL_ERROR)

# Field kinds of the op schema.
STR, NAME, NUMBER, PARAMS = "string", "name", "number", "params object"

#: op -> {field: (kind, required)}. ``op`` and ``id`` are allowed on every message.
OP_FIELDS: dict[str, dict[str, tuple[str, bool]]] = {
    "auth": {"token": (STR, True)},
    "ping": {},
    "get": {},
    "set": {"params": (PARAMS, True)},
    "start": {},
    "stop": {},
    "status": {},
    "subscribe": {"rate_hz": (NUMBER, False)},
    "unsubscribe": {},
    "devices": {},
    "voices": {},
    "load_voice": {"name": (NAME, True)},
    "presets": {},
    "save_preset": {"name": (NAME, True)},
    "load_preset": {"name": (NAME, True)},
    "delete_preset": {"name": (NAME, True)},
}
#: Ops that change what the engine does (their success is pushed to the other clients).
CHANGING_OPS = frozenset({"set", "start", "stop", "load_voice", "load_preset"})


class RemoteError(RtsvcError):
    """A remote-control request refused or failed; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str, field: str | None = None, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.request_id = request_id

    def to_error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field": self.field}


@dataclass(frozen=True)
class Request:
    """One parsed, schema-checked client message. ``args`` holds the op's fields only."""

    op: str
    id: int | str | None
    args: dict[str, Any]


def _refuse_constant(name: str) -> Any:
    raise RemoteError(BAD_JSON, f"{name} is not a valid number here; send finite numbers only.")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise RemoteError(BAD_JSON, f"number {text[:32]} is out of range; send finite numbers only.")
    return value


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise RemoteError(BAD_JSON, f"integer with {len(text)} digits is too long (at most {MAX_INT_DIGITS}).")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise RemoteError(BAD_JSON, f"key {key[:64]!r} appears twice in one object; send each key once.")
        out[key] = value
    return out


def decode_json(text: str) -> Any:
    """Strict JSON: no NaN/Infinity, no overflowing floats, no huge integers, no duplicate keys."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_parse_float,
                          parse_int=_parse_int, object_pairs_hook=_unique_keys)
    except RemoteError:
        raise
    except RecursionError:
        raise RemoteError(BAD_JSON, "message is nested too deeply; send a flat JSON object.") from None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise RemoteError(BAD_JSON, f"message is not valid JSON ({exc}); send one JSON object per text frame.") from None


def validate_name(field: str, value: Any) -> str:
    """A voice or preset name: one path component made of safe characters, never a path."""
    if not isinstance(value, str):
        raise RemoteError(BAD_MESSAGE, f"{field} must be a string, got {_kind(value)}.", field)
    if "/" in value or "\\" in value or ".." in value or PurePath(value).is_absolute() or ":" in value:
        raise RemoteError(BAD_VALUE, f"{field} {value[:80]!r} looks like a path; give a plain name "
                          "(list them with the 'voices' or 'presets' op).", field)
    if not NAME_PATTERN.fullmatch(value):
        raise RemoteError(BAD_VALUE, f"{field} {value[:80]!r} is not a valid name: use 1-64 letters, digits, "
                          "spaces or ._- (a letter or digit first, no space last).", field)
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _check_param_value(name: str, value: Any) -> None:
    """Shape check of one ``set`` value (ranges are the controller's job)."""
    field = f"params.{name}"
    if value is None or isinstance(value, (bool, int, float)):
        return
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            raise RemoteError(BAD_VALUE, f"{field} is longer than {MAX_STRING_CHARS} characters.", field)
        return
    if isinstance(value, list):  # speaker_mix: [[name, weight], ...]
        if len(value) > MAX_ITEMS:
            raise RemoteError(BAD_VALUE, f"{field} has more than {MAX_ITEMS} entries.", field)
        for item in value:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                    and len(item[0]) <= MAX_STRING_CHARS
                    and isinstance(item[1], (int, float)) and not isinstance(item[1], bool)):
                raise RemoteError(BAD_VALUE, f"{field} entries must be [name, weight] pairs, got {_kind(item)}.", field)
        return
    raise RemoteError(BAD_VALUE, f"{field} must be a number, boolean, string, null or a list of "
                      f"[name, weight] pairs, got {_kind(value)}.", field)


def _check_field(op: str, field: str, kind: str, value: Any) -> Any:
    if kind == NAME:
        return validate_name(field, value)
    if kind == STR:
        if not isinstance(value, str) or len(value) > MAX_STRING_CHARS:
            raise RemoteError(BAD_MESSAGE, f"{field} of '{op}' must be a string of at most "
                              f"{MAX_STRING_CHARS} characters, got {_kind(value)}.", field)
        return value
    if kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RemoteError(BAD_MESSAGE, f"{field} of '{op}' must be a number, got {_kind(value)}.", field)
        return float(value)
    # PARAMS
    if not isinstance(value, dict):
        raise RemoteError(BAD_MESSAGE, f"params of '{op}' must be an object like {{\"transpose\": 5}}, "
                          f"got {_kind(value)}.", field)
    if not value:
        raise RemoteError(BAD_MESSAGE, f"params of '{op}' is empty; name at least one parameter.", field)
    if len(value) > MAX_ITEMS:
        raise RemoteError(BAD_MESSAGE, f"params of '{op}' has more than {MAX_ITEMS} entries.", field)
    for name, item in value.items():
        _check_param_value(name[:64], item)
    return dict(value)


def _check_id(value: Any) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT_ID:
        return value
    if isinstance(value, str) and len(value) <= MAX_ID_CHARS:
        return value
    raise RemoteError(BAD_MESSAGE, f"id must be an integer in [0, 2^53-1] or a string of at most "
                      f"{MAX_ID_CHARS} characters, got {_kind(value)}.", "id")


def parse_request(text: str) -> Request:
    """Parse and schema-check one client text frame. Raises :class:`RemoteError` (with the
    request id when it could be read) naming the offending field."""
    data = decode_json(text)
    if not isinstance(data, dict):
        raise RemoteError(BAD_MESSAGE, f"a message must be a JSON object like {{\"op\": \"get\"}}, got {_kind(data)}.")
    request_id = _check_id(data.get("id"))
    try:
        op = data.get("op")
        if op is None:
            raise RemoteError(BAD_MESSAGE, "message has no 'op'; say what to do, e.g. {\"op\": \"get\"}.", "op")
        if not isinstance(op, str):
            raise RemoteError(BAD_MESSAGE, f"op must be a string, got {_kind(op)}.", "op")
        schema = OP_FIELDS.get(op)
        if schema is None:
            raise RemoteError(UNKNOWN_OP, f"unknown op {op[:64]!r}; known ops: {', '.join(OP_FIELDS)}.", "op")
        args: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("op", "id"):
                continue
            if key not in schema:
                allowed = ", ".join(["op", "id", *schema])
                raise RemoteError(BAD_MESSAGE, f"unknown field {key[:64]!r} for op '{op}'; allowed: {allowed}.", key[:64])
            args[key] = _check_field(op, key, schema[key][0], value)
        for key, (_, required) in schema.items():
            if required and key not in args:
                raise RemoteError(BAD_MESSAGE, f"op '{op}' needs the field {key!r}.", key)
        return Request(op=op, id=request_id, args=args)
    except RemoteError as exc:
        exc.request_id = request_id
        raise


def jsonable(value: Any, depth: int = 0) -> Any:
    """Plain JSON data from controller results: dataclasses, tuples, numpy scalars and arrays,
    paths; non-finite floats become null (JSON has no NaN)."""
    if depth > 16:
        return None
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict"):
            return jsonable(value.to_dict(), depth + 1)
        return {f.name: jsonable(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, depth + 1) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return jsonable(value.tolist(), depth + 1)
    return str(value)


def encode(message: dict[str, Any]) -> str:
    """One server message as compact JSON text."""
    return json.dumps(jsonable(message), allow_nan=False, separators=(",", ":"))


def reply(request_id: Any, result: Any) -> dict[str, Any]:
    return {"type": "reply", "id": request_id, "ok": True, "result": result}


def error_reply(request_id: Any, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"type": "reply", "id": request_id, "ok": False,
            "error": {"code": code, "message": message, "field": field}}
