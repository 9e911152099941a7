"""Who may connect: the access token, loopback rules, browser origins and TLS.

- The server binds to 127.0.0.1 by default and then needs no token. Any other bind address
  (including other loopback addresses such as 127.0.0.2, ``localhost`` or ``0.0.0.0``) requires
  one. The token is generated on first use, stored in ``<config dir>/remote_token`` with mode 0600
  and printed once; it is compared in constant time.
- Browser connections carry an ``Origin`` header that must be in an allow-list (the server's own
  page by default); clients that send no Origin (scripts) are not browsers and are allowed.
- TLS is optional, with a certificate and key the user provides.
"""

from __future__ import annotations

import hmac
import os
import secrets
import ssl
import stat
from pathlib import Path

from rtsvc.errors import RtsvcError

#: Bind addresses that need no token (the default loopback addresses).
TOKEN_FREE_HOSTS = frozenset({"127.0.0.1", "::1"})
#: File name of the token inside the user config dir.
TOKEN_FILE_NAME = "remote_token"
#: Random bytes in a generated token (URL-safe base64 text of ~43 characters).
TOKEN_BYTES = 32
#: Shortest token accepted from a file the user wrote.
MIN_TOKEN_CHARS = 16


def user_config_dir() -> Path:
    """rtsvc's per-user config folder, shared with presets (see :func:`rtsvc.presets.config_dir`;
    ``$RTSVC_CONFIG_DIR`` overrides). Not created here."""
    from rtsvc.presets import config_dir

    return config_dir()


def needs_token(host: str) -> bool:
    """True for every bind address except the default loopback ones."""
    return host not in TOKEN_FREE_HOSTS


def default_token_path() -> Path:
    return user_config_dir() / TOKEN_FILE_NAME


def read_token(path: Path) -> str:
    """Read a token file, refusing one that other users could read (POSIX) or that is too short."""
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RtsvcError(f"cannot read the remote token file {path}: {exc.strerror or exc}.",
                         fix="check the path, or delete the file to get a new token.") from None
    except UnicodeDecodeError:
        raise RtsvcError(f"the remote token file {path} is not text.", fix="delete it to get a new token.") from None
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise RtsvcError(f"the remote token file {path} can be read by other users (mode {stat.S_IMODE(st.st_mode):o}).",
                         fix=f"run: chmod 600 '{path}'")
    if len(text) < MIN_TOKEN_CHARS or any(c.isspace() for c in text):
        raise RtsvcError(f"the remote token in {path} is shorter than {MIN_TOKEN_CHARS} characters or has spaces.",
                         fix="delete the file to get a new random token.")
    return text


def load_or_create_token(path: Path | None = None) -> tuple[str, bool]:
    """The server token and whether it was just created (then the caller prints it, once).

    A new token is written with mode 0600 via O_EXCL, so an existing file is never overwritten
    and the secret is never readable by others, even briefly.
    """
    path = path or default_token_path()
    if path.exists():
        return read_token(path), False
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(path), False
    except OSError as exc:
        raise RtsvcError(f"cannot create the remote token file {path}: {exc.strerror or exc}.",
                         fix="set RTSVC_CONFIG_DIR to a writable folder.") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token, True


def token_matches(expected: str, given: str) -> bool:
    """Constant-time comparison (time does not depend on where the strings differ)."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def http_host(host: str) -> str:
    """Host as written in a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def default_origins(host: str, port: int, tls: bool) -> tuple[str, ...]:
    """Origins of the server's own page: ``http(s)://<host>:<port>`` (plus ``localhost`` for the
    loopback defaults). Wildcard binds (0.0.0.0, ::) add nothing: list the real names with
    ``--allow-origin``."""
    scheme = "https" if tls else "http"
    names = [] if host in ("0.0.0.0", "::", "") else [http_host(host)]
    if host in TOKEN_FREE_HOSTS:
        names.append("localhost")
    return tuple(f"{scheme}://{name}:{port}" for name in names)


def check_origin(value: str) -> str:
    """Validate an ``--allow-origin`` entry: ``scheme://host[:port]`` with no path."""
    scheme, sep, rest = value.partition("://")
    if scheme not in ("http", "https") or not sep or not rest or "/" in rest or any(c.isspace() for c in value):
        raise RtsvcError(f"--allow-origin {value!r} is not an origin.",
                         fix="give scheme://host[:port] with no path, e.g. http://192.168.1.20:8765")
    return value


def server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    """TLS (1.2 or newer) with the user's certificate chain and private key (PEM files)."""
    for label, p in (("certificate", cert), ("key", key)):
        if not Path(p).is_file():
            raise RtsvcError(f"TLS {label} file {p} does not exist.", fix="give --tls-cert and --tls-key PEM files.")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, ValueError) as exc:
        raise RtsvcError(f"cannot use TLS certificate {cert} with key {key}: {exc}.",
                         fix="give a PEM certificate and its matching unencrypted PEM private key.") from None
    return ctx


def client_ssl_context(cafile: Path | None) -> ssl.SSLContext:
    """TLS client context: system trust store, plus ``cafile`` (e.g. a self-signed server cert)."""
    ctx = ssl.create_default_context()
    if cafile is not None:
        try:
            ctx.load_verify_locations(str(cafile))
        except (OSError, ssl.SSLError) as exc:
            raise RtsvcError(f"cannot read CA file {cafile}: {exc}.", fix="give the server's PEM certificate.") from None
    return ctx


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)
