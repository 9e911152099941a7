// rtsvc remote page: speaks the same JSON protocol as `rtsvc remote` (docs/remote.md).
"use strict";

const PROTOCOL = 1;
const STATUS_RATE_HZ = 10;
const SET_INTERVAL_MS = 40;    // sliders send at most this often (latest value wins)
const RECONNECT_MS = 2000;
const CLOSE_UNAUTHORIZED = 4401;
const SLIDERS = ["transpose", "cluster_ratio"];

const $ = (id) => document.getElementById(id);
let ws = null;
let nextId = 1;
let pending = new Map();
let queued = {};
let setTimer = null;
let statusCount = 0;
let askToken = false;

function setState(state, text) {
  const el = $("state");
  el.dataset.state = state;
  el.textContent = text || state;
}

function showError(err) {
  $("error").textContent = err ? `${err.code || "error"}: ${err.message || err}` : "";
}

function tokenFromHash() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : "";
}

function enable(on) {
  for (const id of ["start", "stop", ...SLIDERS]) $(id).disabled = !on;
}

function request(op, fields) {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    ws.send(JSON.stringify(Object.assign({ id, op }, fields || {})));
  });
}

function showRunning(running) {
  const el = $("running");
  el.dataset.running = String(Boolean(running));
  el.textContent = running ? "running" : "stopped";
}

function showParams(params, running) {
  for (const name of SLIDERS) {
    const el = $(name);
    if (params && name in params && document.activeElement !== el) {
      el.value = params[name];
      $(`${name}-value`).textContent = name === "transpose" ? String(params[name]) : Number(params[name]).toFixed(2);
    }
  }
  if (running !== undefined) showRunning(running);
}

function level(id, db) {
  const v = typeof db === "number" ? db : -120;
  $(id).value = Math.max(-60, Math.min(0, v));
  $(`${id}-value`).textContent = v.toFixed(1);
}

function showStatus(st) {
  statusCount += 1;
  level("in-level", st.input_level_db);
  level("out-level", st.output_level_db);
  showRunning(st.running);
  const lat = st.latency ? ` | latency ${Number(st.latency.total_ms || st.latency.algorithmic_ms || 0).toFixed(0)} ms` : "";
  const stats = $("stats");
  stats.dataset.statusCount = String(statusCount);
  stats.textContent = `RTF ${Number(st.rtf || 0).toFixed(2)}${lat} | xruns ${st.xruns} | late ${st.late_blocks}`
    + ` | dropped ${st.dropped_blocks}` + (st.last_error ? ` | error: ${st.last_error}` : "");
}

async function flushSet() {
  setTimer = null;
  const params = queued;
  queued = {};
  try {
    const result = await request("set", { params });
    showParams(result.params);
    showError(null);
  } catch (err) {
    showError(err);
  }
}

function queueSet(name, value) {
  queued[name] = value;
  $(`${name}-value`).textContent = name === "transpose" ? String(value) : value.toFixed(2);
  if (!setTimer) setTimer = setTimeout(flushSet, SET_INTERVAL_MS);
}

async function onHello(hello) {
  if (hello.protocol !== PROTOCOL) {
    setState("error", `server speaks protocol ${hello.protocol}, this page ${PROTOCOL}`);
    return;
  }
  try {
    if (hello.auth_required) {
      const token = $("token").value || tokenFromHash();
      if (!token) {
        askToken = true;
        $("auth").hidden = false;
        setState("needs-token", "token needed");
        ws.close();
        return;
      }
      await request("auth", { token });
    }
    const got = await request("get");
    showParams(got.params, got.running);
    await request("subscribe", { rate_hz: STATUS_RATE_HZ });
    $("auth").hidden = true;
    enable(true);
    setState("ready", "connected");
  } catch (err) {
    showError(err);
    setState("error", "refused");
  }
}

function onMessage(ev) {
  let msg;
  try { msg = JSON.parse(ev.data); } catch (e) { return; }
  if (msg.type === "hello") {
    onHello(msg);
  } else if (msg.type === "reply") {
    const p = pending.get(msg.id);
    if (p) {
      pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result); else p.reject(msg.error);
    } else if (!msg.ok) {
      showError(msg.error);
    }
  } else if (msg.type === "status") {
    showStatus(msg.status);
  } else if (msg.type === "params") {
    showParams(msg.params, msg.running);
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  setState("connecting", "connecting…");
  ws = new WebSocket(`${scheme}//${location.host}/`);
  ws.onmessage = onMessage;
  ws.onclose = (ev) => {
    enable(false);
    for (const p of pending.values()) p.reject({ code: "closed", message: "connection closed" });
    pending = new Map();
    if (askToken) return;
    if (ev.code === CLOSE_UNAUTHORIZED) {
      $("auth").hidden = false;
      setState("needs-token", "wrong token");
      return;
    }
    setState("closed", `disconnected${ev.reason ? ": " + ev.reason : ""}; retrying`);
    setTimeout(connect, RECONNECT_MS);
  };
}

function init() {
  for (const name of SLIDERS) {
    $(name).addEventListener("input", (ev) => queueSet(name, Number(ev.target.value)));
  }
  $("start").addEventListener("click", () => request("start").then((r) => showRunning(r.running), showError));
  $("stop").addEventListener("click", () => request("stop").then((r) => showRunning(r.running), showError));
  $("auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    askToken = false;
    if (ws) {
      ws.onclose = null;  // this connection is replaced: no reconnect from it
      ws.close();
    }
    connect();
  });
  connect();
}

document.addEventListener("DOMContentLoaded", init);
