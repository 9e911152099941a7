"""The browser page, answered from the websocket port for plain HTTP GETs.

Only the fixed files in :data:`PAGES` (shipped inside the package, read once at start-up) are
served; every other path is 404. No path from the request ever touches the file system.
"""

from __future__ import annotations

import http
from importlib import resources

from websockets.datastructures import Headers
from websockets.http11 import Response

#: URL path -> (file in rtsvc/remote/static, content type).
PAGES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
#: Security headers on every page response.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self' ws: wss:; img-src 'self'; frame-ancestors 'none'",
}


def load_pages() -> dict[str, tuple[bytes, str]]:
    """URL path -> (body, content type), read from the package."""
    root = resources.files("rtsvc.remote") / "static"
    cache: dict[str, bytes] = {}
    pages = {}
    for url, (name, ctype) in PAGES.items():
        if name not in cache:
            cache[name] = (root / name).read_bytes()
        pages[url] = (cache[name], ctype)
    return pages


def is_websocket_upgrade(headers: Headers) -> bool:
    return "websocket" in headers.get("Upgrade", "").lower()


def page_response(pages: dict[str, tuple[bytes, str]], path: str) -> Response:
    """200 with the page for ``path`` (query string ignored), else 404."""
    url = path.split("?", 1)[0]
    found = pages.get(url)
    if found is None:
        return text_response(http.HTTPStatus.NOT_FOUND, "Not found. The remote-control page is at /.\n")
    body, ctype = found
    headers = Headers({"Content-Type": ctype, "Content-Length": str(len(body)), **PAGE_HEADERS})
    return Response(200, "OK", headers, body)


def text_response(status: http.HTTPStatus, text: str) -> Response:
    body = text.encode("utf-8")
    headers = Headers({"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body)), **PAGE_HEADERS})
    return Response(status.value, status.phrase, headers, body)
