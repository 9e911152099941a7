"""The browser page in headless Chromium, driven over the DevTools protocol (--remote-debugging-pipe).

The page is loaded from the server itself, connects with the same protocol as every client and
writes its state into the DOM; the test reads the DOM, moves sliders and clicks buttons in the
page, and checks the engine (the real controller) did what the page asked.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from typing import Any, Callable

import pytest

#: Seconds to wait for the page to reach a state.
PAGE_TIMEOUT = 30.0
TOKEN = "browser-test-token-0123456789abcdef"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    msg = "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


class Browser:
    """Headless Chromium with the DevTools protocol on fds 3 (commands in) and 4 (replies out)."""

    def __init__(self, url: str, profile: str) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()
        argv = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--remote-debugging-pipe", url]
        # bash moves our two pipe ends onto fds 3 and 4, where Chromium expects them
        self.proc = subprocess.Popen(["bash", "-c", f'exec "$@" 3<&{cmd_r} 4>&{out_w} {cmd_r}<&- {out_w}>&-', "chromium", *argv],
                                     pass_fds=(cmd_r, out_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(out_w)
        self._replies: queue.Queue = queue.Queue()
        self._next = 0
        threading.Thread(target=self._reader, daemon=True).start()
        self.session = self._attach()

    def _reader(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._out_r, 65536)
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    self._replies.put(msg)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict:
        self._next += 1
        msg: dict = {"id": self._next, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._replies.get(timeout=PAGE_TIMEOUT)
            if reply["id"] == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def _attach(self) -> str:
        deadline = time.monotonic() + PAGE_TIMEOUT
        while time.monotonic() < deadline:
            pages = [t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page"]
            if pages:
                return self.call("Target.attachToTarget", targetId=pages[0]["targetId"], flatten=True)["sessionId"]
            time.sleep(0.1)
        raise TimeoutError("Chromium opened no page")

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", self.session, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)


def wait_for(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + PAGE_TIMEOUT
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def browser(tmp_path):
    opened: list[Browser] = []

    def open_page(url: str) -> Browser:
        b = Browser(url, str(tmp_path / f"profile{len(opened)}"))
        opened.append(b)
        return b

    yield open_page
    for b in opened:
        b.close()


def state(page: Browser) -> str:
    """The page's connection state (None until the page has loaded)."""
    return page.js("(document.getElementById('state') || {dataset: {}}).dataset.state")


def test_page_connects_controls_engine_and_shows_levels(server, controller, browser, open_peer):
    controller.update(transpose=3)
    page = browser(server.page_url + "/")
    wait_for(lambda: state(page) == "ready", "the page to connect (get + subscribe round trip)")
    assert page.js("document.getElementById('transpose').value") == "3"  # from the page's 'get'

    page.js("const s = document.getElementById('transpose'); s.value = '7'; s.dispatchEvent(new Event('input'));")
    wait_for(lambda: controller.params.transpose == 7, "the pitch slider to reach the engine")
    page.js("const m = document.getElementById('cluster_ratio'); m.value = '0.35'; m.dispatchEvent(new Event('input'));")
    wait_for(lambda: controller.params.cluster_ratio == 0.35, "the mix slider to reach the engine")

    page.js("document.getElementById('start').click()")
    wait_for(lambda: controller.running, "the start button to start the engine")
    wait_for(lambda: page.js("document.getElementById('running').dataset.running") == "true", "the page to show running")
    count = int(page.js("document.getElementById('stats').dataset.statusCount"))
    wait_for(lambda: int(page.js("document.getElementById('stats').dataset.statusCount")) >= count + 5, "status pushes")
    wait_for(lambda: page.js("document.getElementById('in-level').value") > -30, "the input meter to show the sine")

    other = open_peer(server.url)  # another client's change shows up in the page
    other.ok("set", params={"transpose": -5})
    wait_for(lambda: page.js("document.getElementById('transpose').value") == "-5", "a pushed change in the page")

    page.js("document.getElementById('stop').click()")
    wait_for(lambda: not controller.running, "the stop button to stop the engine")
    assert page.js("document.getElementById('error').textContent") == ""


def test_page_with_token_in_fragment(make_server, controller, browser):
    server = make_server(token=TOKEN)
    page = browser(server.page_url + "/#token=" + TOKEN)
    wait_for(lambda: state(page) == "ready", "the page to authenticate")
    page.js("const s = document.getElementById('transpose'); s.value = '2'; s.dispatchEvent(new Event('input'));")
    wait_for(lambda: controller.params.transpose == 2, "the slider to reach the engine")


def test_page_without_token_asks_for_it(make_server, controller, browser):
    server = make_server(token=TOKEN)
    page = browser(server.page_url + "/")
    wait_for(lambda: state(page) == "needs-token", "the page to ask for the token")
    assert page.js("document.getElementById('auth').hidden") is False
    assert page.js("document.getElementById('transpose').disabled") is True
    page.js(f"document.getElementById('token').value = '{TOKEN}';"
            "document.getElementById('auth').requestSubmit();")
    wait_for(lambda: state(page) == "ready", "the page to connect with the typed token")
