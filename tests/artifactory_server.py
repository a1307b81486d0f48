"""A read-only JFrog Artifactory REST subset over a folder of repositories, for tests (see remote-sources.md).

ROOT/<repo>/<path> are the files. Under the /artifactory context path it answers:
  GET|HEAD /artifactory/{repo}/{path}            bytes with X-Checksum-Sha1/-Sha256/-Md5, ETag, Range → 206;
                                                 a folder gives an HTML index
  GET /artifactory/api/storage/{repo}/{path}     file info (size as a string, checksums) or folder children
  GET /artifactory/api/storage/{repo}/{folder}?list&deep=1   every file below, with size, sha1 and sha2
  GET /artifactory/api/system/ping               OK, without auth
  GET /artifactory/api/system/version, /api/repositories
Auth: `X-JFrog-Art-Api: KEY`, `Authorization: Bearer TOKEN` or Basic user:password; none → 401
"Authentication is required" (except for `anonymous_repos`), wrong → 401 "Bad credentials".
Paths in `corrupt` are served with one byte flipped while the checksums describe the stored file
(damage in transit); paths in `stall` wait before answering (a stuck server). Binds 127.0.0.1 only.

Run standalone: python tests/artifactory_server.py ROOT [--port P] [--api-key K] [--access-token T]
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

if __package__:
    from .servers import QuietHandler, serve_in_thread, stop_server
else:  # run as a script
    from servers import QuietHandler, serve_in_thread, stop_server

CONTEXT = "/artifactory"


@dataclass
class Artifactory:
    root: Path
    api_keys: set[str] = field(default_factory=set)
    access_tokens: set[str] = field(default_factory=set)
    users: dict[str, str] = field(default_factory=dict)  # Basic auth user -> password
    anonymous_repos: set[str] = field(default_factory=set)
    corrupt: set[str] = field(default_factory=set)  # "repo/path" served damaged
    stall: dict[str, float] = field(default_factory=dict)  # "repo/path" -> seconds to wait before answering
    log: list[dict] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}{CONTEXT}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def downloads(self) -> list[dict]:
        """File downloads that sent bytes (not storage API calls, not errors)."""
        return [e for e in self.log if e["kind"] == "download" and e["status"] in (200, 206)]

    def start(self, port: int = 0) -> Artifactory:
        self._server = serve_in_thread(type("Handler", (_Handler,), {"art": self}), port)
        self.port = self._server.server_address[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            stop_server(self._server)
            self._server = None


def _errors(status: int, message: str) -> bytes:
    return json.dumps({"errors": [{"status": status, "message": message}]}).encode()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


class _Handler(QuietHandler):
    art: Artifactory

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None,
              ctype: str = "application/json", kind: str = "api") -> None:
        try:
            self.send_body(status, body, headers, ctype)
        except (BrokenPipeError, ConnectionResetError):
            status = 499  # the client gave up (a stalled answer)
        self.art.log.append({"method": self.command, "path": self.path, "status": status, "kind": kind,
                             "auth": self._auth_kind()})

    def _auth_kind(self) -> str | None:
        if self.headers.get("X-JFrog-Art-Api"):
            return "api"
        auth = self.headers.get("Authorization") or ""
        return auth.split(" ", 1)[0].lower() or None

    def _authorized(self, repo: str | None) -> bool:
        """Sends the 401 itself when the request may not read `repo`."""
        key = self.headers.get("X-JFrog-Art-Api")
        auth = self.headers.get("Authorization") or ""
        if key is None and not auth:
            if repo is not None and repo in self.art.anonymous_repos:
                return True
            self._send(401, _errors(401, "Authentication is required"),
                       {"WWW-Authenticate": 'Basic realm="Artifactory Realm"'})
            return False
        ok = False
        if key is not None:
            ok = key in self.art.api_keys
        elif auth.startswith("Bearer "):
            ok = auth[7:] in self.art.access_tokens
        elif auth.startswith("Basic "):
            try:
                user, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, secret = "", ""
            ok = self.art.users.get(user) == secret or secret in self.art.access_tokens
        if not ok:
            self._send(401, _errors(401, "Bad credentials"))
        return ok

    def _local(self, repo: str, path: str) -> Path | None:
        segs = [s for s in path.split("/") if s]
        if not repo or repo in (".", "..") or any(s in (".", "..") for s in segs):
            return None
        return self.art.root.joinpath(repo, *segs)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        parts = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parts.path)
        if not path.startswith(CONTEXT + "/"):
            return self._send(404, _errors(404, "Not Found"))
        rest = path[len(CONTEXT) + 1:]
        if rest == "api/system/ping":
            return self._send(200, b"OK", ctype="text/plain")
        if rest.startswith("api/"):
            return self._api(rest[4:], urllib.parse.parse_qs(parts.query, keep_blank_values=True))
        repo, _, file_path = rest.partition("/")
        if not self._authorized(repo):
            return None
        return self._download(repo, file_path)

    # --- REST API ------------------------------------------------------------------------------------------

    def _api(self, call: str, query: dict) -> None:
        if call == "system/version":
            return self._send(200, json.dumps({"version": "7.77.0", "revision": "77700900", "addons": []}).encode()) \
                if self._authorized(None) else None
        if call == "repositories":
            if not self._authorized(None):
                return None
            repos = sorted(p.name for p in self.art.root.iterdir() if p.is_dir())
            return self._send(200, json.dumps([{"key": r, "type": "LOCAL", "packageType": "Generic",
                                                "url": f"{self.art.base}/{r}"} for r in repos]).encode())
        if not call.startswith("storage/"):
            return self._send(404, _errors(404, "Not Found"))
        repo, _, item = call[len("storage/"):].partition("/")
        if not self._authorized(repo):
            return None
        local = self._local(repo, item)
        if local is None or not local.exists():
            return self._send(404, _errors(404, "Unable to find item"))
        item = item.strip("/")
        if "list" in query:
            return self._deep_list(local, query)
        uri = f"{self.art.base}/api/storage/{repo}/{item}".rstrip("/")
        if local.is_dir():
            children = [{"uri": "/" + c.name, "folder": c.is_dir()} for c in sorted(local.iterdir())]
            return self._send(200, json.dumps({"repo": repo, "path": "/" + item, "created": _iso(0),
                                               "children": children, "uri": uri}).encode())
        data = local.read_bytes()
        sums = {"sha1": hashlib.sha1(data).hexdigest(), "md5": hashlib.md5(data).hexdigest(),  # noqa: S324
                "sha256": hashlib.sha256(data).hexdigest()}
        stamp = _iso(local.stat().st_mtime)
        info = {"repo": repo, "path": "/" + item, "created": stamp, "createdBy": "admin", "lastModified": stamp,
                "modifiedBy": "admin", "lastUpdated": stamp, "downloadUri": f"{self.art.base}/{repo}/{item}",
                "mimeType": "application/octet-stream", "size": str(len(data)), "checksums": sums,
                "originalChecksums": sums, "uri": uri}
        return self._send(200, json.dumps(info).encode())

    def _deep_list(self, local: Path, query: dict) -> None:
        if not local.is_dir():
            return self._send(400, _errors(400, "Expected a folder"))
        depth = int(query.get("depth", ["0"])[0] or 0)
        files = []
        for p in sorted(local.rglob("*")):
            rel = p.relative_to(local).as_posix()
            if depth and rel.count("/") >= depth:
                continue
            if p.is_dir():
                if query.get("listFolders", ["0"])[0] == "1":
                    files.append({"uri": "/" + rel, "size": -1, "lastModified": _iso(p.stat().st_mtime),
                                  "folder": True})
                continue
            data = p.read_bytes()
            files.append({"uri": "/" + rel, "size": len(data), "lastModified": _iso(p.stat().st_mtime),
                          "folder": False, "sha1": hashlib.sha1(data).hexdigest(),  # noqa: S324
                          "sha2": hashlib.sha256(data).hexdigest()})
        return self._send(200, json.dumps({"uri": self.path, "created": _iso(0), "files": files}).encode())

    # --- downloads -----------------------------------------------------------------------------------------

    def _download(self, repo: str, file_path: str) -> None:
        local = self._local(repo, file_path)
        if local is None or not local.exists():
            return self._send(404, _errors(404, "File not found."))
        if local.is_dir():
            names = "".join(f'<a href="{html.escape(c.name)}{"/" if c.is_dir() else ""}">{html.escape(c.name)}</a>\n'
                            for c in sorted(local.iterdir()))
            return self._send(200, f"<html><body><pre>{names}</pre></body></html>".encode(), ctype="text/html")
        data = local.read_bytes()
        headers = {"X-Checksum-Sha1": hashlib.sha1(data).hexdigest(),  # noqa: S324
                   "X-Checksum-Sha256": hashlib.sha256(data).hexdigest(),
                   "X-Checksum-Md5": hashlib.md5(data).hexdigest(),  # noqa: S324
                   "X-Artifactory-Filename": urllib.parse.quote(local.name),
                   "ETag": hashlib.sha1(data).hexdigest(),  # noqa: S324
                   "Content-Disposition": f"attachment; filename*=UTF-8''{urllib.parse.quote(local.name)}",
                   "Accept-Ranges": "bytes"}
        time.sleep(self.art.stall.get(f"{repo}/{file_path.strip('/')}", 0))
        if f"{repo}/{file_path.strip('/')}" in self.art.corrupt and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        status = 200
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and "," not in rng:
            start_s, _, end_s = rng[6:].partition("-")
            if start_s.isdigit():
                start = int(start_s)
                end = min(int(end_s), len(data) - 1) if end_s.isdigit() else len(data) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                data, status = data[start:end + 1], 206
        return self._send(status, data, headers, "application/octet-stream", kind="download")


def main() -> None:  # pragma: no cover - manual use
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--api-key", action="append", default=[])
    ap.add_argument("--access-token", action="append", default=[])
    args = ap.parse_args()
    art = Artifactory(Path(args.root), set(args.api_key), set(args.access_token)).start(args.port)
    print(f"serving {args.root} at {art.base}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    main()
