"""The server against the real controller (virtual clock) with real websockets clients."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from rtsvc.engine.params import LiveParams
from rtsvc.remote.protocol import MAX_MESSAGE_BYTES, PROTOCOL_VERSION


def test_hello_names_protocol_version_and_limits(peer):
    assert peer.hello["type"] == "hello"
    assert peer.hello["protocol"] == PROTOCOL_VERSION
    assert peer.hello["auth_required"] is False
    assert "set" in peer.hello["ops"] and peer.hello["limits"]["max_message_bytes"] == MAX_MESSAGE_BYTES


def test_set_get_round_trip_goes_through_the_controller(peer, controller):
    result = peer.ok("set", params={"transpose": 5, "cluster_ratio": 0.25, "bypass": True})
    assert result["params"]["transpose"] == 5 and result["params"]["cluster_ratio"] == 0.25
    assert controller.params.transpose == 5 and controller.params.bypass is True
    got = peer.ok("get")
    assert got["params"] == LiveParams.from_dict(got["params"]).to_dict()
    assert got["params"]["transpose"] == 5 and got["running"] is False


def test_two_clients_see_each_others_changes(server, open_peer):
    a, b = open_peer(server.url), open_peer(server.url)
    a.ok("set", params={"transpose": -7})
    push = b.recv()
    assert push["type"] == "params" and push["op"] == "set" and push["params"]["transpose"] == -7
    assert b.ok("get")["params"]["transpose"] == -7
    b.ok("set", params={"cluster_ratio": 0.5})
    push = a.recv()
    assert push["type"] == "params" and push["params"]["cluster_ratio"] == 0.5 and push["params"]["transpose"] == -7


def test_start_stop_drive_the_engine(peer, controller):
    assert peer.ok("start") == {"running": True}
    assert controller.running
    status = peer.ok("status")["status"]
    assert status["running"] is True and status["voice"]["name"] == "world"
    assert peer.ok("stop") == {"running": False}
    assert not controller.running


def test_status_stream_arrives_at_the_chosen_rate(peer):
    peer.ok("start")
    assert peer.ok("subscribe", rate_hz=20) == {"subscribed": True, "rate_hz": 20}
    first = peer.recv()
    t0 = time.monotonic()
    seqs = [first["seq"]]
    while time.monotonic() - t0 < 1.0:
        msg = peer.recv()
        assert msg["type"] == "status"
        seqs.append(msg["seq"])
    rate = (len(seqs) - 1) / (time.monotonic() - t0)
    assert 10 <= rate <= 30, rate  # 20 Hz asked; loose bounds, 2 busy cores
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    status = msg["status"]
    for key in ("running", "input_level_db", "output_level_db", "latency", "rtf", "xruns", "late_blocks"):
        assert key in status
    assert status["running"] is True and status["input_level_db"] > -30  # the sine is playing
    assert peer.ok("unsubscribe") == {"subscribed": False}


def test_default_status_rate_is_10_hz(peer):
    assert peer.ok("subscribe")["rate_hz"] == 10
    assert peer.error("subscribe", rate_hz=1000)["field"] == "rate_hz"


def test_preset_round_trip(peer, controller):
    peer.ok("set", params={"transpose": 3, "formant": 1.5})
    assert peer.ok("save_preset", name="stream night") == {"name": "stream night"}
    assert peer.ok("presets") == {"presets": ["stream night"]}
    peer.ok("set", params={"transpose": 0, "formant": 0})
    loaded = peer.ok("load_preset", name="stream night")
    assert loaded["params"]["transpose"] == 3 and loaded["params"]["formant"] == 1.5
    assert controller.params.transpose == 3
    assert peer.error("load_preset", name="missing")["code"] == "not_found"
    peer.ok("delete_preset", name="stream night")
    assert peer.ok("presets") == {"presets": []}


def test_voices_listed_and_loaded_by_name_only(peer, controller):
    assert peer.ok("voices") == {"voices": ["world", "alice", "bob"]}
    result = peer.ok("load_voice", name="alice")
    assert result["voice"] == "alice" and result["description"]["name"] == "alice"
    assert controller.voice.name == "alice"
    assert peer.error("load_voice", name="broken")["code"] == "not_found"


@pytest.mark.parametrize("name", ["../alice", "..", "/etc/passwd", "alice/../bob", "C:\\x", "a\\b", "~root", ".hidden", ""])
def test_traversal_and_odd_names_refused(peer, name):
    for op in ("load_voice", "save_preset", "load_preset", "delete_preset"):
        err = peer.error(op, name=name)
        assert err["code"] == "bad_value" and err["field"] == "name", err


def test_devices_listed(peer):
    assert peer.ok("devices") == {"devices": {"host_apis": [], "devices": []}}


@pytest.mark.parametrize("params, field", [
    ({"transpose": 100}, "params.transpose"),
    ({"transpose": "high"}, "params.transpose"),
    ({"cluster_ratio": -0.1}, "params.cluster_ratio"),
    ({"block_ms": 1e9}, "params.block_ms"),
    ({"bypass": 1}, "params.bypass"),
    ({"no_such_knob": 1}, "params.no_such_knob"),
    ({"f0_method": "guess"}, "params.f0_method"),
    ({"transpose": {"a": 1}}, "params.transpose"),
])
def test_bad_values_refused_with_field_named(peer, controller, params, field):
    before = controller.params
    err = peer.error("set", params=params)
    assert err["code"] == "bad_value" and err["field"] == field, err
    assert controller.params == before


@pytest.mark.parametrize("text, code", [
    ('{"op": "set", "params": {"transpose": NaN}}', "bad_json"),
    ('{"op": "set", "params": {"transpose": Infinity}}', "bad_json"),
    ('{"op": "set", "params": {"transpose": -Infinity}}', "bad_json"),
    ('{"op": "set", "params": {"transpose": 1e999}}', "bad_json"),
    ('{"op": "set", "params": {"transpose": 1' + "0" * 400 + '}}', "bad_json"),
    ('{"op": "get", "op": "get"}', "bad_json"),
    ("{not json", "bad_json"),
    ("[" * 5000 + "]" * 5000, "bad_json"),
    ("[1, 2]", "bad_message"),
    ('"get"', "bad_message"),
    ("{}", "bad_message"),
    ('{"op": "get", "extra": 1}', "bad_message"),
    ('{"op": 5}', "bad_message"),
    ('{"op": "set"}', "bad_message"),
    ('{"op": "set", "params": [1]}', "bad_message"),
    ('{"op": "subscribe", "rate_hz": "fast"}', "bad_message"),
    ('{"op": "get", "id": -1}', "bad_message"),
    ('{"op": "get", "id": true}', "bad_message"),
    ('{"op": "launch_missiles"}', "unknown_op"),
])
def test_malformed_messages_refused_and_connection_kept(peer, controller, text, code):
    before = controller.params
    peer.send(text)
    msg = peer.reply()
    assert msg["ok"] is False and msg["error"]["code"] == code, msg
    assert controller.params == before
    assert peer.ok("ping") == {"pong": True}


def test_unknown_field_is_named(peer):
    err = peer.error("get", colour="red")
    assert err == {"code": "bad_message", "field": "colour",
                   "message": "unknown field 'colour' for op 'get'; allowed: op, id."}


def test_reply_echoes_string_id(peer):
    peer.send({"id": "abc", "op": "ping"})
    assert peer.reply()["id"] == "abc"


def test_binary_frames_refused(peer):
    peer.send(b"\x00\x01binary")
    msg = peer.reply()
    assert msg["error"]["code"] == "binary_not_supported"
    assert peer.ok("ping") == {"pong": True}


def test_oversize_message_closes_only_that_connection(server, open_peer):
    big, other = open_peer(server.url), open_peer(server.url)
    big.send(json.dumps({"op": "set", "params": {"speaker": "x" * MAX_MESSAGE_BYTES}}))
    with pytest.raises(ConnectionClosed) as info:
        big.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    assert other.ok("ping") == {"pong": True}


def test_rate_limit_per_connection(make_server, open_peer):
    server = make_server(rate_per_s=1.0, rate_burst=5)
    flood, calm = open_peer(server.url), open_peer(server.url)
    for i in range(12):
        flood.send({"id": i, "op": "ping"})
    replies = [flood.reply() for _ in range(12)]
    limited = [r for r in replies if not r["ok"]]
    assert len(limited) >= 6 and all(r["error"]["code"] == "rate_limited" for r in limited)
    assert calm.ok("ping") == {"pong": True}


def test_idle_connection_is_closed(make_server, open_peer):
    server = make_server(idle_timeout_s=0.3)
    idle, subscribed = open_peer(server.url), open_peer(server.url)
    subscribed.ok("subscribe", rate_hz=5)
    with pytest.raises(ConnectionClosed) as info:
        while True:
            idle.recv(timeout=5)
    assert info.value.rcvd.code == 4408
    time.sleep(0.5)
    assert subscribed.ok("ping") == {"pong": True}  # a subscription is not idle


def test_disconnect_mid_stream_leaves_server_and_engine_fine(server, controller, open_peer):
    controller.start()
    leaver = open_peer(server.url)
    leaver.ok("subscribe", rate_hz=60)
    leaver.recv()
    leaver.ws.close_socket()  # vanish without a closing handshake
    for _ in range(50):
        if server.client_count() == 0:
            break
        time.sleep(0.05)
    assert server.client_count() == 0
    fresh = open_peer(server.url)
    assert fresh.ok("status")["status"]["running"] is True
    assert fresh.ok("set", params={"transpose": 2})["params"]["transpose"] == 2
    assert controller.status().last_error is None


def test_browser_origin_checked(server, open_peer):
    own = open_peer(server.url, origin=server.page_url)
    assert own.ok("ping") == {"pong": True}
    with pytest.raises(InvalidStatus) as info:
        open_peer(server.url, origin="http://evil.example")
    assert info.value.response.status_code == 403


def test_extra_allowed_origin(make_server, open_peer):
    server = make_server(allow_origins=("http://mybox.lan:8765",))
    assert open_peer(server.url, origin="http://mybox.lan:8765").ok("ping") == {"pong": True}


def test_connection_cap(make_server, open_peer):
    server = make_server(max_connections=2)
    open_peer(server.url), open_peer(server.url)
    with pytest.raises(InvalidStatus) as info:
        open_peer(server.url)
    assert info.value.response.status_code == 503


def test_page_served_over_http_and_nothing_else(server):
    with urllib.request.urlopen(server.page_url + "/", timeout=5) as resp:
        body = resp.read().decode()
        assert resp.headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert 'src="/app.js"' in body
    with urllib.request.urlopen(server.page_url + "/app.js", timeout=5) as resp:
        assert b"PROTOCOL = 1" in resp.read()
    for path in ("/../pyproject.toml", "/static/app.js", "/etc/passwd", "/%2e%2e/server.py", "/server.py"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(server.page_url + path, timeout=5)
        assert info.value.code == 404, path
        info.value.close()


def test_port_in_use_is_a_clear_error(server, controller, voice_dir):
    from rtsvc.errors import RtsvcError
    from rtsvc.remote.server import RemoteServer, ServerConfig
    from rtsvc.remote.voices import VoiceLibrary

    with pytest.raises(RtsvcError, match="cannot listen on 127.0.0.1"):
        RemoteServer(controller, ServerConfig(port=server.port), VoiceLibrary([voice_dir])).start()


def test_voices_load_with_the_servers_backend_options(voice_dir):
    """`rtsvc serve --device/--backend/--threads/--fp16/--cuda-graphs` reach every voice a client loads."""
    from concurrent.futures import Future

    from rtsvc.engine.voices import parse_voice_spec
    from rtsvc.remote.ops import PENDING, RemoteOps
    from rtsvc.remote.voices import VoiceLibrary

    class Recorder:
        def __init__(self) -> None:
            self.specs = []

        def load_voice(self, spec, device="cpu"):
            self.specs.append(parse_voice_spec(spec, device))
            return Future()

    recorder = Recorder()
    options = {"device": "cuda:1", "backend": "torch", "threads": 3, "fp16": True, "cuda_graphs": False}
    ops = RemoteOps(recorder, VoiceLibrary([voice_dir]), options)
    assert PENDING in ops._load_voice({"name": "alice"})
    ops._load_voice({"name": "world"})
    alice, world = recorder.specs
    assert (alice.kind, alice.device, alice.backend, alice.threads, alice.fp16, alice.cuda_graphs) == \
        ("sovits", "cuda:1", "torch", 3, True, False)
    assert alice.model_path.endswith("G_1600.pth") and world.kind == "world"
