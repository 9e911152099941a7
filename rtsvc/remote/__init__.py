"""Remote control over websockets (``rtsvc serve`` / ``rtsvc remote``); see docs/remote.md.

Modules: :mod:`~rtsvc.remote.protocol` (message schema, strict parsing, encoding),
:mod:`~rtsvc.remote.server` (:class:`RemoteServer` on its own thread and loop, :class:`ServerConfig`),
:mod:`~rtsvc.remote.connection` (per-connection state, rate limit, status feed),
:mod:`~rtsvc.remote.ops` (what each op does to the controller), :mod:`~rtsvc.remote.voices`
(voices by name from the voice folders), :mod:`~rtsvc.remote.auth` (token, origins, TLS),
:mod:`~rtsvc.remote.static_http` (the browser page), :mod:`~rtsvc.remote.client` (blocking client).
"""
