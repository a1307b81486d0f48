"""A Hugging Face Hub API subset over a folder of repos, for tests (see remote-sources.md).

ROOT/repos.json maps repo ids to options: {"org/model": {"private": false, "gated": false}}; the files of a
repo are ROOT/<repo id>/…. Revisions are `main` and the repo's sha. LFS files (binary suffixes) answer
/resolve with a 302 to a CDN on a second port (another origin, HMAC-signed expiring URLs, no auth).
ROOT/raw/… is served as-is under /raw/ for plain-HTTP tests. Binds 127.0.0.1 only.

Run standalone: python tests/hub_server.py ROOT [--port P] [--cdn-port P] [--page-size N]
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

if __package__:
    from .servers import QuietHandler, serve_in_thread, stop_server
else:  # run as a script
    from servers import QuietHandler, serve_in_thread, stop_server

LFS_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".safetensors", ".zip", ".h5", ".onnx", ".npz", ".npy", ".png",
                ".gguf", ".ckpt", ".joblib")
_SECRET = os.urandom(16)


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324


@dataclass
class Repo:
    repo_id: str
    files: dict[str, bytes]
    private: bool = False
    gated: bool = False

    @property
    def sha(self) -> str:
        h = hashlib.sha1()  # noqa: S324
        for path in sorted(self.files):
            h.update(f"{path}\0{git_blob_sha(self.files[path])}\n".encode())
        return h.hexdigest()

    def sibling(self, path: str, blobs: bool) -> dict:
        data = self.files[path]
        out: dict = {"rfilename": path}
        if blobs:
            out |= {"size": len(data), "blobId": git_blob_sha(data)}
            if path.endswith(LFS_SUFFIXES):
                out["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return out


def load_repos(root: Path) -> dict[str, Repo]:
    meta = json.loads((root / "repos.json").read_text())
    repos = {}
    for repo_id, opts in meta.items():
        base = root / repo_id
        files = {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}
        repos[repo_id] = Repo(repo_id, files, bool(opts.get("private")), bool(opts.get("gated")))
    return repos


@dataclass
class Hub:
    root: Path
    tokens: set[str] = field(default_factory=lambda: {"hf_good_token"})
    page_size: int = 1000
    lfs_redirect: bool = True
    log: list[dict] = field(default_factory=list)
    _servers: list = field(default_factory=list)
    port: int = 0
    cdn_port: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def file_downloads(self) -> list[dict]:
        return [e for e in self.log if e["method"] == "GET" and e.get("bytes")]

    def start(self, port: int = 0, cdn_port: int = 0) -> Hub:
        self.repos = load_repos(self.root)
        hub = self
        cdn = serve_in_thread(type("Cdn", (_CdnHandler,), {"hub": hub}), cdn_port)
        api = serve_in_thread(type("Api", (_ApiHandler,), {"hub": hub}), port)
        self.port, self.cdn_port = api.server_address[1], cdn.server_address[1]
        self._servers += [api, cdn]
        return self

    def stop(self) -> None:
        for server in self._servers:
            stop_server(server)
        self._servers.clear()


class _Base(QuietHandler):
    hub: Hub

    def _record(self, status: int, nbytes: int = 0) -> None:
        self.hub.log.append({"method": self.command, "path": self.path, "status": status, "bytes": nbytes,
                             "auth": self.headers.get("Authorization"), "server": type(self).__name__})

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, ctype: str = "application/json"):
        self.send_body(status, body, headers, ctype)
        self._record(status, len(body) if self.command == "GET" and status in (200, 206) and
                     ctype == "application/octet-stream" else 0)

    def _error(self, status: int, code: str | None = None, message: str = "error") -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), headers)

    def _bytes(self, data: bytes, headers: dict) -> None:
        rng = self.headers.get("Range")
        headers = {**headers, "Accept-Ranges": "bytes"}
        if rng and rng.startswith("bytes="):
            start_s, _, end_s = rng[6:].partition("-")
            start = int(start_s or 0)
            end = int(end_s) if end_s else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._send(206, data[start:end + 1], headers, "application/octet-stream")
        return self._send(200, data, headers, "application/octet-stream")


class _CdnHandler(_Base):
    def do_GET(self) -> None:  # noqa: N802
        parts = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(parts.query)
        digest = parts.path.rsplit("/", 1)[-1]
        exp = q.get("exp", ["0"])[0]
        sig = hmac.new(_SECRET, f"{digest}:{exp}".encode(), "sha256").hexdigest()
        if not hmac.compare_digest(sig, q.get("sig", [""])[0]) or float(exp) < time.time():
            return self._error(403, None, "bad signature")
        for repo in self.hub.repos.values():
            for data in repo.files.values():
                if hashlib.sha256(data).hexdigest() == digest:
                    return self._bytes(data, {"ETag": f'"{digest}"'})
        return self._error(404, None, "no such object")

    do_HEAD = do_GET


class _ApiHandler(_Base):
    def _token(self) -> tuple[bool, str | None]:
        auth = self.headers.get("Authorization")
        if not auth:
            return True, None
        token = auth.removeprefix("Bearer ").strip()
        return token in self.hub.tokens, token

    def _repo(self, repo_id: str, rev: str | None) -> Repo | None:
        ok, token = self._token()
        if not ok:
            self._error(401, None, "Invalid credentials in Authorization header")
            return None
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not token):
            self._error(401 if not token else 404, "RepoNotFound", "Repository not found")
            return None
        if repo.gated:
            self._error(401 if not token else 403, "GatedRepo", "Access to this model is restricted")
            return None
        if rev is not None and rev not in ("main", repo.sha):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return None
        return repo

    def do_GET(self) -> None:  # noqa: N802
        parts = urllib.parse.urlsplit(self.path)
        segs = [urllib.parse.unquote(s) for s in parts.path.split("/") if s]
        query = urllib.parse.parse_qs(parts.query)
        if segs[:2] == ["api", "whoami-v2"]:
            ok, token = self._token()
            return self._send(200, b'{"name":"tester"}') if ok and token else self._error(401, None, "Unauthorized")
        if segs[:2] == ["api", "models"]:
            return self._api(segs[2:], query)
        if segs and segs[0] == "raw":
            path = self.hub.root.joinpath("raw", *segs[1:])
            if ".." in segs or not path.is_file():
                return self._error(404, None, "not found")
            return self._bytes(path.read_bytes(), {})
        kind_at = next((i for i in (1, 2) if len(segs) > i + 1 and segs[i] == "resolve"), None)
        if kind_at is None:
            return self._error(404, None, "not found")
        repo_id, rev, path = "/".join(segs[:kind_at]), segs[kind_at + 1], "/".join(segs[kind_at + 2:])
        repo = self._repo(repo_id, rev)
        if repo is None:
            return None
        if path not in repo.files:
            return self._error(404, "EntryNotFound", f"{path} does not exist on {rev}")
        data = repo.files[path]
        headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{git_blob_sha(data)}"'}
        if path.endswith(LFS_SUFFIXES) and self.hub.lfs_redirect:
            digest = hashlib.sha256(data).hexdigest()
            exp = str(int(time.time()) + 600)
            sig = hmac.new(_SECRET, f"{digest}:{exp}".encode(), "sha256").hexdigest()
            location = f"http://127.0.0.1:{self.hub.cdn_port}/cdn/{digest}?exp={exp}&sig={sig}"
            return self._send(302, b"", {**headers, "Location": location, "X-Linked-Etag": f'"{digest}"',
                                         "X-Linked-Size": str(len(data))})
        return self._bytes(data, headers)

    do_HEAD = do_GET

    def _api(self, segs: list[str], query: dict) -> None:
        at = next((i for i in (1, 2) if len(segs) > i and segs[i] in ("revision", "tree")), None)
        repo_id = "/".join(segs[:at] if at else segs[:2])
        kind = segs[at] if at else None
        rev = segs[at + 1] if at and len(segs) > at + 1 else None
        repo = self._repo(repo_id, rev)
        if repo is None:
            return None
        if kind == "tree":
            entries = [{"type": "file", "oid": git_blob_sha(d), "size": len(d), "path": p} for p, d in
                       sorted(repo.files.items())]
            cursor = int(query.get("cursor", ["0"])[0])
            page = entries[cursor:cursor + self.hub.page_size]
            headers = {}
            if cursor + self.hub.page_size < len(entries):
                nxt = f"{self.hub.endpoint}{urllib.parse.urlsplit(self.path).path}?recursive=true&expand=false" \
                      f"&cursor={cursor + self.hub.page_size}"
                headers["Link"] = f'<{nxt}>; rel="next"'
            return self._send(200, json.dumps(page).encode(), headers)
        blobs = query.get("blobs", [""])[0] == "true"
        info = {"id": repo.repo_id, "modelId": repo.repo_id, "sha": repo.sha, "private": repo.private,
                "gated": False, "siblings": [repo.sibling(p, blobs) for p in sorted(repo.files)]}
        return self._send(200, json.dumps(info).encode())


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cdn-port", type=int, default=0)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--no-lfs-redirect", action="store_true")
    args = parser.parse_args()
    hub = Hub(Path(args.root), page_size=args.page_size, lfs_redirect=not args.no_lfs_redirect)
    hub.start(args.port, args.cdn_port)
    print(hub.endpoint, flush=True)
    threading.Event().wait()
