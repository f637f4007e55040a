"""HTTP to a running server: health, served models, metrics text.

Every call has a timeout (the anchor's health check had none and could hang a status call
forever). URLs are built by editing the URL's path, never by replacing "v1" in the string: the
anchor turned host ``kv1-gpu03`` into ``khealth-gpu03``.

Environment proxies are ignored (``trust_env=False``): servers live on cluster-internal hosts,
and a login node's ``HTTP_PROXY`` cannot reach a compute node's port.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit, urlunsplit

from vec_inf_flows.errors import ServerError

if TYPE_CHECKING:
    import httpx

DEFAULT_TIMEOUT = 3.0
_KNOWN_TAILS = ("/v1", "/health", "/metrics")
T = TypeVar("T")


@dataclass(frozen=True)
class HealthResult:
    """One /health probe. ``error`` says why it is not ok, in a few words."""

    url: str  # the /health URL probed
    status_code: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code == 200


def _verify(urls: Sequence[str]) -> bool:
    """Load CA certificates only when some URL is https: for plain-http servers on a cluster's
    network that is 0.13 s of every CLI call spent for nothing."""
    return any(url.lower().startswith("https:") for url in urls)


def server_root(url: str) -> str:
    """``http://host:port`` part of a server URL, with a trailing ``/v1`` path removed.

    Raises ServerError for anything that is not an http(s) URL with a host.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServerError(f"Not a server URL: {url!r}")
    path = parts.path.rstrip("/")
    for tail in _KNOWN_TAILS:
        if path.endswith(tail):
            path = path[: -len(tail)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def health_url(url: str) -> str:
    return server_root(url) + "/health"


def metrics_url(url: str) -> str:
    return server_root(url) + "/metrics"


def models_url(url: str) -> str:
    return server_root(url) + "/v1/models"


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is anywhere in the chain (async httpx hides it behind a generic text)."""
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(error: httpx.HTTPError, timeout: float) -> str:
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(error, httpx.ConnectError):
        if _caused_by(error, ConnectionRefusedError) or "refused" in str(error).lower():
            return "connection refused"
        return f"cannot connect: {error}" if str(error) else "cannot connect"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _result(url: str, response: httpx.Response) -> HealthResult:
    code = response.status_code
    return HealthResult(url, code, None if code == 200 else f"HTTP {code}")


def check_health(url: str, timeout: float = DEFAULT_TIMEOUT) -> HealthResult:
    """Probe ``<server>/health``; ``url`` is the server's base URL (``.../v1`` or not).

    Only the status line matters, so plain http is one GET on a socket: ``status`` probes from
    a fresh CLI process, where importing an HTTP client costs more than the probe itself. It
    never goes through a proxy (like httpx with ``trust_env=False``). https uses the standard
    library's client.
    """
    try:
        target = health_url(url)
    except ServerError as error:
        return HealthResult(url, None, str(error))
    parts = urlsplit(target)
    try:
        if parts.scheme == "https" or not target.isascii():
            secure = parts.scheme == "https"
            code = _client_status(
                parts.hostname or "", parts.port, parts.path, timeout, secure=secure
            )
        else:
            code = _http_status(parts.hostname or "", parts.port or 80, parts.path, timeout)
    except TimeoutError:
        return HealthResult(target, None, f"no answer within {timeout:g} s")
    except ConnectionRefusedError:
        return HealthResult(target, None, "connection refused")
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        return HealthResult(target, None, f"cannot connect: {reason}")
    except ValueError as error:
        return HealthResult(target, None, f"not an HTTP answer: {error}")
    return HealthResult(target, code, None if code == 200 else f"HTTP {code}")


def _http_status(host: str, port: int, path: str, timeout: float) -> int:
    """The status code of ``GET path`` (HTTP/1.0, so the server closes the connection)."""
    deadline = time.monotonic() + timeout
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    request = f"GET {path or '/'} HTTP/1.0\r\nHost: {authority}\r\n\r\n".encode("ascii")
    with _connect(host, port, timeout) as connection:
        connection.sendall(request)
        head = b""
        while b"\r\n" not in head and len(head) < 4096:
            connection.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = connection.recv(4096)
            if not chunk:
                break
            head += chunk
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/") or not code.isdigit():
        raise ValueError(repr(status_line[:40]))
    return int(code)


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    """``socket.create_connection`` with the host resolved as ASCII bytes: a str would load the
    IDNA codec (and unicodedata) just to look up a cluster node's name."""
    error: OSError = OSError(f"cannot resolve {host}")
    for family, kind, proto, _, address in socket.getaddrinfo(
        host.encode("ascii"), port, type=socket.SOCK_STREAM
    ):
        connection = socket.socket(family, kind, proto)
        connection.settimeout(timeout)
        try:
            connection.connect(address)
        except OSError as failure:
            connection.close()
            error = failure
        else:
            return connection
    raise error


def _client_status(
    host: str, port: int | None, path: str, timeout: float, *, secure: bool = True
) -> int:
    import http.client

    kind = http.client.HTTPSConnection if secure else http.client.HTTPConnection
    connection = kind(host, port, timeout=timeout)
    try:
        connection.request("GET", path or "/")
        response = connection.getresponse()
        response.read(64 * 1024)
        return response.status
    except http.client.HTTPException as error:
        raise ValueError(f"{type(error).__name__}: {error}") from None
    finally:
        connection.close()


MAX_PROBE_THREADS = 32


def check_health_many(
    urls: Sequence[str], timeout: float = DEFAULT_TIMEOUT
) -> dict[str, HealthResult]:
    """Probe many servers at once from sync code, keyed by the URLs given.

    Threads with sync clients rather than an event loop: the total time is still about one
    timeout, and a CLI call does not pay for importing the async stack (~0.2 s) to probe one URL.
    """
    unique = list(dict.fromkeys(urls))
    if len(unique) <= 1:
        return {url: check_health(url, timeout) for url in unique}
    import concurrent.futures

    workers = min(MAX_PROBE_THREADS, len(unique))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda url: check_health(url, timeout), unique))
    return dict(zip(unique, results, strict=True))


def _get(url: str, timeout: float, headers: dict[str, str] | None = None) -> httpx.Response:
    import httpx

    try:
        with httpx.Client(timeout=timeout, trust_env=False, verify=_verify([url])) as client:
            return client.get(url, headers=headers)
    except httpx.HTTPError as error:
        raise ServerError(f"Cannot reach {url}: {_describe(error, timeout)}") from None


def list_served_models(
    base_url: str, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> list[str]:
    """Model ids the server answers to (``GET /v1/models``); proves the model is served."""
    url = models_url(base_url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    response = _get(url, timeout, headers)
    if response.status_code == 401:
        raise ServerError(f"{url} rejected the request: missing or wrong API key")
    if response.status_code != 200:
        raise ServerError(f"{url} answered HTTP {response.status_code}")
    try:
        data = response.json()["data"]
        return [str(entry["id"]) for entry in data]
    except (ValueError, KeyError, TypeError):
        raise ServerError(f"{url} did not return an OpenAI model list") from None


def fetch_metrics_text(url: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """The server's Prometheus text (``GET <server>/metrics``); ``url`` is its base URL."""
    target = metrics_url(url)
    response = _get(target, timeout)
    if response.status_code != 200:
        raise ServerError(f"{target} answered HTTP {response.status_code}")
    return response.text
