"""Message parsing, names and encoding (no server)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtsvc.remote.protocol import (MAX_INT_ID, RemoteError, decode_json, encode, jsonable, parse_request,
                                   validate_name)


def test_valid_request_parsed():
    req = parse_request('{"id": 3, "op": "set", "params": {"transpose": 5, "bypass": false}}')
    assert (req.op, req.id, req.args) == ("set", 3, {"params": {"transpose": 5, "bypass": False}})
    assert parse_request('{"op": "subscribe"}').args == {}
    assert parse_request('{"op": "subscribe", "rate_hz": 5}').args == {"rate_hz": 5.0}
    assert parse_request(json.dumps({"op": "get", "id": MAX_INT_ID})).id == MAX_INT_ID


@pytest.mark.parametrize("text, code, field", [
    ('{"op": "get", "id": 9007199254740992}', "bad_message", "id"),
    ('{"op": "get", "id": "' + "x" * 65 + '"}', "bad_message", "id"),
    ('{"op": "set", "params": {}}', "bad_message", "params"),
    ('{"op": "set", "params": {"speaker": "' + "x" * 300 + '"}}', "bad_value", "params.speaker"),
    ('{"op": "set", "params": {"speaker_mix": [["a", "b"]]}}', "bad_value", "params.speaker_mix"),
    ('{"op": "set", "params": {"speaker_mix": [["a", true]]}}', "bad_value", "params.speaker_mix"),
    ('{"op": "auth", "token": 5}', "bad_message", "token"),
    ('{"op": "auth"}', "bad_message", "token"),
    ('{"op": "load_voice", "name": 5}', "bad_message", "name"),
    ('{"op": "subscribe", "rate_hz": true}', "bad_message", "rate_hz"),
    ('{"op": "stop", "force": true}', "bad_message", "force"),
])
def test_schema_errors_name_the_field(text, code, field):
    with pytest.raises(RemoteError) as info:
        parse_request(text)
    assert (info.value.code, info.value.field) == (code, field)


def test_error_keeps_the_request_id():
    with pytest.raises(RemoteError) as info:
        parse_request('{"id": 12, "op": "nope"}')
    assert info.value.request_id == 12 and info.value.code == "unknown_op"


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", "-Infinity", "1e400", "-1e400", "1" * 25, '{"a": 1, "a": 2}',
                                  "[" * 100000, "", "{", "\x00"])
def test_strict_json(text):
    with pytest.raises(RemoteError) as info:
        decode_json(text)
    assert info.value.code == "bad_json"


def test_plain_json_still_decodes():
    assert decode_json('{"a": [1, 2.5, -3e2, true, null, "x"]}') == {"a": [1, 2.5, -300.0, True, None, "x"]}


@pytest.mark.parametrize("name", ["alice", "Bob 2", "v1.0", "my-voice_x", "world", "a", "x" * 64, "end."])
def test_plain_names_accepted(name):
    assert validate_name("name", name) == name


@pytest.mark.parametrize("name", ["../a", "..", "a/b", "a\\b", "/abs", "C:\\x", "C:x", ".hidden", " lead", "",
                                  "x" * 65, "a\x00b", "é", "-dash", "a..b", "a+b", "trailing "])
def test_paths_and_odd_names_refused(name):
    with pytest.raises(RemoteError) as info:
        validate_name("name", name)
    assert info.value.code == "bad_value" and info.value.field == "name"


def test_encode_is_strict_json():
    status = {"rtf": float("nan"), "levels": np.array([1.5, -np.inf], dtype=np.float32), "n": np.int64(3),
              "pair": (1, 2), "nested": {1: float("inf")}}
    text = encode({"type": "status", "status": status})
    assert json.loads(text) == {"type": "status", "status": {"rtf": None, "levels": [1.5, None], "n": 3,
                                                             "pair": [1, 2], "nested": {"1": None}}}
    assert "NaN" not in text and "Infinity" not in text


def test_jsonable_dataclass_uses_to_dict():
    from rtsvc.engine.params import LiveParams

    assert jsonable(LiveParams(transpose=2))["transpose"] == 2
