"""Property-based fuzz: thousands of random frames against a real server and engine.

Whatever arrives, the server answers every frame with exactly one well-formed reply (checked by
the ``Peer`` helper), echoes valid ids, keeps serving, and the engine's parameters stay a valid
:class:`LiveParams`. Examples are bounded so the test stays well under a minute.
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtsvc.engine.params import LiveParams
from rtsvc.remote.ops import PARAM_NAMES
from rtsvc.remote.protocol import OP_FIELDS

#: Examples (batches of frames) per fuzz test; with batches of 10-30 frames this sends thousands.
MAX_EXAMPLES = 120

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
field_names = st.one_of(st.sampled_from(sorted({f for fs in OP_FIELDS.values() for f in fs} | {"id", "op"})),
                        st.text(max_size=10))
param_values = st.one_of(json_scalars, st.lists(st.tuples(st.text(max_size=6), st.floats()).map(list), max_size=3),
                         st.floats(min_value=-60, max_value=60))
names = st.one_of(st.sampled_from(["world", "alice", "bob", "../alice", "/etc/passwd", "p1", "a\\b", ".."]),
                  st.text(max_size=12))
ids = st.one_of(st.none(), st.integers(min_value=-5, max_value=2**60), st.text(max_size=70), st.booleans())


@st.composite
def structured(draw) -> dict:
    """A message that looks like the protocol, with random mistakes."""
    op = draw(st.one_of(st.sampled_from(sorted(OP_FIELDS)), st.text(max_size=12)))
    msg: dict = {"op": op}
    if draw(st.booleans()):
        msg["id"] = draw(ids)
    if op == "set" or draw(st.integers(0, 5)) == 0:
        keys = st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=10))
        msg["params"] = draw(st.dictionaries(keys, param_values, max_size=4))
    if op in ("load_voice", "save_preset", "load_preset", "delete_preset") or draw(st.integers(0, 8)) == 0:
        msg["name"] = draw(names)
    if op == "subscribe":
        msg["rate_hz"] = draw(st.one_of(st.floats(0, 100), json_scalars))
    if draw(st.integers(0, 6)) == 0:
        msg[draw(field_names)] = draw(json_values)
    return msg


def _dumps(msg: object) -> str:
    return json.dumps(msg)  # allow_nan: NaN/Infinity tokens go on the wire on purpose


@st.composite
def mutated(draw) -> str:
    """A valid message text with characters replaced, inserted or deleted."""
    text = _dumps(draw(structured()))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        ch = draw(st.sampled_from(list('{}[]":,.-eE0123456789 \\nN') + ["Infinity", "NaN", "\x00", "é"]))
        if action == "insert" or i == len(text):
            text = text[:i] + ch + text[i:]
        elif action == "replace":
            text = text[:i] + ch + text[i + 1:]
        else:
            text = text[:i] + text[i + 1:]
    return text


frames = st.one_of(  # protocol-shaped messages listed three times to weigh them up
    structured().map(_dumps), structured().map(_dumps), structured().map(_dumps), mutated(),
    json_values.map(_dumps), st.text(max_size=60), st.binary(max_size=40),
)


def _check_engine_params(controller) -> None:
    params = controller.params
    assert isinstance(params, LiveParams)
    again = LiveParams.from_dict(json.loads(json.dumps(params.to_dict())))  # re-validates every field
    assert again == params
    for value in params.to_dict().values():
        assert not (isinstance(value, float) and not math.isfinite(value))


def test_random_frames_never_break_the_server(make_server, open_peer, controller):
    server = make_server(rate_per_s=1e6, rate_burst=10**6)
    peer = open_peer(server.url)
    sent_total, codes = [0], {}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(frames, min_size=10, max_size=30))
    def run(batch: list) -> None:
        for frame in batch:
            peer.send(frame)
        for frame in batch:
            reply = peer.reply(timeout=10)  # Peer.reply asserts the reply is well-formed
            code = "ok" if reply["ok"] else reply["error"]["code"]
            assert code != "internal_error", (frame, reply)
            codes[code] = codes.get(code, 0) + 1
            sent_id = _valid_id(frame)
            if reply["id"] is not None:
                assert reply["id"] == sent_id, (frame, reply)
        for push in peer.pushes:
            assert push["type"] in ("status", "params") and isinstance(push.get("status", push.get("params")), dict)
        peer.pushes.clear()
        sent_total[0] += len(batch)
        _check_engine_params(controller)

    run()
    assert sent_total[0] >= 2000, sent_total
    # the fuzz reached past the parser: accepted requests and every kind of refusal
    assert codes.get("ok", 0) >= 50 and codes.get("bad_value", 0) >= 25, codes  # coverage, not exact counts
    assert {"bad_json", "bad_message", "unknown_op", "binary_not_supported"} <= set(codes), codes
    assert peer.ok("ping") == {"pong": True}
    assert server.client_count() == 1


def _valid_id(frame: object) -> object:
    if not isinstance(frame, str):
        return None
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError):
        return None
    return data.get("id") if isinstance(data, dict) else None
