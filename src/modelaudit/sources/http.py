"""A small HTTP client for sources: manual redirects (credentials never leave their origin), streamed
downloads with a byte limit, and errors that carry status and headers but never the request's headers."""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TIMEOUT = float(os.environ.get("MODELAUDIT_HTTP_TIMEOUT", "60"))
_CHUNK = 1 << 20
_USER_AGENT = "modelaudit"


class SourceError(Exception):
    """A remote target could not be resolved; the message is for users (no secrets, no traceback)."""

    def __init__(self, message: str, rule_code: str = "MA-S010") -> None:
        super().__init__(message)
        self.rule_code = rule_code


@dataclass
class HttpError(Exception):
    status: int
    url: str
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"HTTP {self.status} from {redact_url(self.url)}"


def redact_url(url: str) -> str:
    """Drop userinfo and query string (signed URLs carry secrets there)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        return None


def _opener(url: str) -> urllib.request.OpenerDirector:
    handlers: list = [_NoRedirect()]
    if is_loopback(urllib.parse.urlsplit(url).hostname):
        handlers.append(urllib.request.ProxyHandler({}))  # loopback traffic never goes through a proxy
    return urllib.request.build_opener(*handlers)


def _origin(url: str) -> tuple[str, str, int | None]:
    p = urllib.parse.urlsplit(url)
    return p.scheme, (p.hostname or "").lower(), p.port


def open_url(url: str, method: str = "GET", token: str | None = None, data: bytes | None = None,
             max_redirects: int = 5, headers: dict[str, str] | None = None,
             timeout: float | None = None) -> http.client.HTTPResponse:
    """Open a URL, following redirects by hand; the bearer token and `headers` (credentials) are sent
    only to the first origin."""
    origin = _origin(url)
    for _ in range(max_redirects + 1):
        req = urllib.request.Request(url, method=method, data=data, headers={"User-Agent": _USER_AGENT})
        if token and _origin(url) == origin:
            req.add_unredirected_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            if _origin(url) == origin:
                req.add_unredirected_header(name, value)
        try:
            return _opener(url).open(req, timeout=timeout or TIMEOUT)
        except urllib.error.HTTPError as exc:
            headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
            exc.close()
            if exc.code in (301, 302, 303, 307, 308) and headers.get("location"):
                url = urllib.parse.urljoin(url, headers["location"])
                if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
                    raise SourceError(f"redirect to an unsupported scheme from {redact_url(exc.url)}") from None
                continue
            raise HttpError(exc.code, url, headers) from None
    raise SourceError(f"too many redirects fetching {redact_url(url)}")


def get_json(url: str, token: str | None = None) -> object:
    import json

    with open_url(url, token=token) as resp:
        return json.loads(resp.read(64 * 1024 * 1024))


@dataclass
class Downloaded:
    size: int
    sha256: str
    git_sha1: str | None
    #: the final response's headers, lower-cased names (checksums some servers send)
    headers: dict[str, str] = field(default_factory=dict)


def refuse_announced(length: int | str | None, max_bytes: int) -> None:
    """Stop before reading when the server announces more than --max-size (a Content-Length, as int or text)."""
    if isinstance(length, str):
        length = int(length) if length.isdigit() else None
    if max_bytes and length is not None and length > max_bytes:
        raise SourceError(f"File too large to download: {length} bytes (max: {max_bytes})", "MA-S001")


class LimitedWriter:
    """Writes a download into `out`, stopping past `max_bytes` (0: no limit); feeds the given hashes and
    `on_chunk(n)` (progress bars). Also the file object for clients that write into one."""

    def __init__(self, out: Any, max_bytes: int, on_chunk: Callable[[int], None] | None = None,
                 hashes: tuple[Any, ...] = (), note: str = "") -> None:
        self.out, self.max_bytes, self.on_chunk, self.hashes, self.note = out, max_bytes, on_chunk, hashes, note
        self.size = 0

    def write(self, chunk: bytes) -> int:
        self.size += len(chunk)
        if self.max_bytes and self.size > self.max_bytes:
            raise SourceError(f"File too large to download: more than {self.max_bytes} bytes "
                              f"(max: {self.max_bytes}){self.note}", "MA-S001")
        for digest in self.hashes:
            digest.update(chunk)
        self.out.write(chunk)
        if self.on_chunk is not None:
            self.on_chunk(len(chunk))
        return len(chunk)

    def copy(self, read: Callable[[int], bytes]) -> int:
        """Drain `read(n)` until it returns nothing; the number of bytes written."""
        while chunk := read(_CHUNK):
            self.write(chunk)
        return self.size


def download(url: str, dest: str, token: str | None = None, max_bytes: int = 0,
             expected_size: int | None = None, headers: dict[str, str] | None = None,
             on_chunk: Callable[[int], None] | None = None, timeout: float | None = None) -> Downloaded:
    """Stream a URL into `dest`; stops past `max_bytes` (0: no limit). Hashes as it goes;
    `on_chunk(n)` follows the bytes (progress bars)."""
    sha256 = hashlib.sha256()
    git = hashlib.sha1(f"blob {expected_size}\0".encode()) if expected_size is not None else None  # noqa: S324
    with open_url(url, token=token, headers=headers, timeout=timeout) as resp:
        answer = {k.lower(): v for k, v in resp.headers.items()}
        refuse_announced(resp.headers.get("Content-Length"), max_bytes)
        with open(dest, "wb") as out:
            hashes = (sha256,) if git is None else (sha256, git)
            size = LimitedWriter(out, max_bytes, on_chunk, hashes).copy(resp.read)
    return Downloaded(size, sha256.hexdigest(), git.hexdigest() if git is not None else None, answer)


def stall_timeout(limit: float) -> float:
    """Seconds one network read may wait: the HTTP default (MODELAUDIT_HTTP_TIMEOUT), or a smaller --timeout."""
    return min(TIMEOUT, limit)


def plain_http_target(target: str) -> bool:
    return target.startswith(("https://", "http://"))


def check_plain_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise SourceError(f"refusing plain http:// for {redact_url(url)}; use https://")
    name = urllib.parse.unquote(parts.path.rsplit("/", 1)[-1])
    if not name:
        raise SourceError(f"{redact_url(url)} does not name a file; give the URL of one model file")
