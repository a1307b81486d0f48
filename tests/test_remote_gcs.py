"""gs:// targets against gcp-storage-emulator on 127.0.0.1 (started once per session), plus a loopback
OAuth token endpoint of our own for GOOGLE_APPLICATION_CREDENTIALS (a service-account key file)."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import run_cli
from .servers import (EVIL, LOOPBACK, MODEL_TREE, QuietHandler, cache_env, cached_files, free_port, locations, scan,
                      serve_in_thread, server_process, stop_server, tool)

pytest.importorskip("google.cloud.storage")
EMULATOR = tool("gcp-storage-emulator")
if not EMULATOR:
    pytest.skip("gcp-storage-emulator is not installed", allow_module_level=True)

BUCKET = "gmodels"
ACCESS_TOKEN = "ya29.loopback-access-token-secret"
OBJECTS = {**MODEL_TREE, "team/v1/": b""}  # and a folder placeholder


@contextmanager
def gcs_emulator(log_path: Path):
    """gcp-storage-emulator on a free 127.0.0.1 port, in its own session; stopped by its process group."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with server_process([EMULATOR, "start", "-H", "127.0.0.1", "--port", str(port), "--in-memory",
                         "--default-bucket", BUCKET], f"{endpoint}/storage/v1/b", "gcp-storage-emulator",
                        log=log_path):
        yield endpoint


def base_env(endpoint: str, root: Path) -> dict[str, str]:
    """Only the emulator is reachable: no gcloud config, no metadata server off loopback."""
    gcloud = root / "gcloud-empty"
    gcloud.mkdir(exist_ok=True)
    return {"STORAGE_EMULATOR_HOST": endpoint, "GOOGLE_APPLICATION_CREDENTIALS": "", "CLOUDSDK_CONFIG": str(gcloud),
            "NO_GCE_CHECK": "True", "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9", **LOOPBACK}


@pytest.fixture(scope="session")
def gcs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gcs")
    log = root / "emulator.log"
    with gcs_emulator(log) as endpoint:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="test", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": endpoint})
        bucket = client.bucket(BUCKET)
        for name, data in OBJECTS.items():
            bucket.blob(name).upload_from_string(data)
        yield {"endpoint": endpoint, "env": base_env(endpoint, root), "log": log}


@pytest.fixture
def env(gcs, tmp_path):
    return {**gcs["env"], **cache_env(tmp_path)}


def _downloads(gcs, name: str) -> int:
    """Media downloads of one object the emulator logged."""
    return gcs["log"].read_text(errors="replace").count(f"/download/storage/v1/b/{BUCKET}/o/{name}?")


def test_malicious_object_is_located_by_uri(env, tmp_path):
    r = scan(env, tmp_path, "-f", "json", "gs://gmodels/evil.pkl")
    assert r.code == 1, r.stdout + r.stderr
    assert locations(r) == {"gs://gmodels/evil.pkl"}
    assert any(i["rule_code"] == "MA-P001" for i in r.json()["issues"])
    assert {a["path"] for a in r.json()["assets"]} == {"gs://gmodels/evil.pkl"}
    assert str(tmp_path) not in r.stdout and "/tmp/" not in r.stdout


def test_honest_object_is_clean(env, tmp_path):
    r = scan(env, tmp_path, "-f", "json", "gs://gmodels/ok.pkl")
    assert r.code == 0, r.stdout + r.stderr
    assert r.json()["files_scanned"] == 1


@pytest.mark.parametrize("target", ["gs://gmodels/team/v1/", "gs://gmodels/team/v1"])
def test_prefix_scans_scannable_objects_under_it(env, tmp_path, target):
    r = scan(env, tmp_path, "-f", "json", "-v", target)
    assert r.code == 1, r.stdout + r.stderr
    assert locations(r) == {"gs://gmodels/team/v1/model.pkl"}
    assert {a["path"] for a in r.json()["assets"]} == {"gs://gmodels/team/v1/model.pkl",
                                                       "gs://gmodels/team/v1/sub/weights.pkl",
                                                       "gs://gmodels/team/v1/config.json"}
    assert "not fetched (not a scannable file): gs://gmodels/team/v1/README.md" in r.stderr


def test_sarif_locates_findings_at_the_uri(env, tmp_path):
    r = scan(env, tmp_path, "-f", "sarif", "gs://gmodels/evil.pkl")
    assert r.code == 1, r.stdout + r.stderr
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"] for run in r.json()["runs"]
            for result in run["results"] for loc in result["locations"]}
    assert uris == {"gs://gmodels/evil.pkl"}


@pytest.mark.parametrize("target, expected", [
    ("gs://gmodels/nope.pkl", "no such object: gs://gmodels/nope.pkl (HTTP 404)"),
    ("gs://no-such-bucket/x.pkl", "no such bucket: no-such-bucket (HTTP 404)"),
    ("gs://no-such-bucket/", "no such bucket: no-such-bucket (HTTP 404)"),
    ("gs://gmodels/empty-prefix/", "no objects under gs://gmodels/empty-prefix/"),
    ("gs://gmodels/docs/", "no scannable files under gs://gmodels/docs/ (1 other object(s) not fetched)"),
])
def test_missing_objects_are_coverage_findings(env, tmp_path, target, expected):
    r = scan(env, tmp_path, "-f", "json", target)
    assert r.code == 2, r.stdout + r.stderr
    issues = r.json()["issues"]
    assert [i["rule_code"] for i in issues] == ["MA-S010"], issues
    assert expected in issues[0]["message"] and issues[0]["location"] == target
    assert "Traceback" not in r.stderr


def test_dry_run_lists_sizes_and_downloads_nothing(env, tmp_path):
    r = run_cli("scan", "--dry-run", "-f", "json", "gs://gmodels/team/v1/", cwd=tmp_path, env=env)
    assert r.code == 0, r.stdout + r.stderr
    files = {f["path"]: f for f in r.json()["files"]}
    assert files["gs://gmodels/team/v1/model.pkl"]["size"] == len(EVIL)
    assert files["gs://gmodels/team/v1/model.pkl"]["download"] is True
    assert files["gs://gmodels/team/v1/README.md"]["skipped"] == "not a scannable file; not fetched"
    assert r.json()["download_files"] == 3
    assert cached_files(tmp_path) == []
    text = run_cli("scan", "--dry-run", "gs://gmodels/evil.pkl", cwd=tmp_path, env=env)
    assert text.code == 0 and f"gs://gmodels/evil.pkl  -  {len(EVIL)} bytes  download" in text.stdout, text.stdout


def test_cache_second_scan_downloads_nothing(gcs, env, tmp_path):
    cache = tmp_path / "cache"
    before = _downloads(gcs, "ok.pkl")
    first = scan(env, tmp_path, "-f", "json", "--cache-dir", str(cache), "gs://gmodels/ok.pkl")
    assert first.code == 0, first.stdout + first.stderr
    blobs = list((cache / "blobs").iterdir())
    assert len(blobs) == 1 and blobs[0].name.startswith("gcsgen-")
    deadline = time.monotonic() + 10  # the emulator logs a request just after answering it
    while _downloads(gcs, "ok.pkl") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    after_first = _downloads(gcs, "ok.pkl")
    assert after_first == before + 1
    dry = run_cli("scan", "--dry-run", "-f", "json", "--cache-dir", str(cache), "gs://gmodels/ok.pkl",
                  cwd=tmp_path, env=env)
    assert dry.json()["download_files"] == 0 and dry.json()["files"][0]["cached"] is True
    second = scan(env, tmp_path, "-f", "json", "--cache-dir", str(cache), "gs://gmodels/ok.pkl")
    assert second.code == 0 and {a["path"] for a in second.json()["assets"]} == {"gs://gmodels/ok.pkl"}
    marker = run_cli("scan", "--dry-run", "gs://gmodels/evil.pkl", cwd=tmp_path, env=env)  # a later request
    assert marker.code == 0
    assert _downloads(gcs, "ok.pkl") == after_first


def test_no_cache_leaves_nothing(env, tmp_path):
    r = scan(env, tmp_path, "-f", "json", "--no-cache", "gs://gmodels/evil.pkl")
    assert r.code == 1
    assert not (tmp_path / "xdg" / "modelaudit").exists()


def test_stream_gives_the_same_findings_and_keeps_nothing(env, tmp_path):
    plain = scan(env, tmp_path, "-f", "json", "--no-cache", "gs://gmodels/team/")
    streamed = scan(env, tmp_path, "-f", "json", "--stream", "gs://gmodels/team/")
    assert plain.code == streamed.code == 1
    key = lambda r: sorted((i["location"], i["rule_code"]) for i in r.json()["issues"])  # noqa: E731
    assert key(streamed) == key(plain)
    assert cached_files(tmp_path) == []  # --stream keeps no copy in the cache


def test_max_size_skips_before_download(gcs, env, tmp_path):
    r = scan(env, tmp_path, "-f", "json", "--max-size", "1000", "gs://gmodels/big.pkl")
    assert r.code == 2, r.stdout
    issue = r.json()["issues"][0]
    assert issue["rule_code"] == "MA-S001" and issue["location"] == "gs://gmodels/big.pkl"
    assert cached_files(tmp_path) == []
    assert _downloads(gcs, "big.pkl") == 0


# --- credentials ----------------------------------------------------------------------------------------------


class _TokenHandler(QuietHandler):
    grants: list[bytes]
    reject = False

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.grants.append(body)
        if self.reject:
            status, answer = 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        else:
            status, answer = 200, {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
        self.send_body(status, json.dumps(answer).encode())


@contextmanager
def _token_server(reject: bool):
    grants: list[bytes] = []
    server = serve_in_thread(type("Token", (_TokenHandler,), {"grants": grants, "reject": reject}))
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token", grants
    finally:
        stop_server(server)


def _service_account_file(path: Path, token_uri: str) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({"type": "service_account", "project_id": "demo", "private_key_id": "k1",
                                "private_key": pem, "client_email": "scanner@demo.iam.gserviceaccount.com",
                                "client_id": "1", "token_uri": token_uri}))
    return path


def test_service_account_credentials_are_used(env, tmp_path):
    with _token_server(reject=False) as (token_uri, grants):
        key_file = _service_account_file(tmp_path / "sa.json", token_uri)
        r = scan({**env, "GOOGLE_APPLICATION_CREDENTIALS": str(key_file)}, tmp_path, "-f", "json", "-v",
               "gs://gmodels/evil.pkl")
    assert r.code == 1, r.stdout + r.stderr
    assert locations(r) == {"gs://gmodels/evil.pkl"}
    assert grants and all(b"grant_type=urn" in g and b"assertion=" in g for g in grants)
    assert ACCESS_TOKEN not in r.stdout and ACCESS_TOKEN not in r.stderr


def test_rejected_credentials_are_a_clear_finding(env, tmp_path):
    with _token_server(reject=True) as (token_uri, grants):
        key_file = _service_account_file(tmp_path / "sa.json", token_uri)
        r = scan({**env, "GOOGLE_APPLICATION_CREDENTIALS": str(key_file)}, tmp_path, "-f", "json",
               "gs://gmodels/evil.pkl")
    assert r.code == 2, r.stdout + r.stderr
    issue = r.json()["issues"][0]
    assert issue["rule_code"] == "MA-S010" and issue["location"] == "gs://gmodels/evil.pkl"
    assert "Google Cloud rejected the credentials" in issue["message"]
    assert "GOOGLE_APPLICATION_CREDENTIALS" in issue["message"] and grants
    assert "Traceback" not in r.stderr and "PRIVATE KEY" not in r.stdout


def test_unreadable_credentials_file(env, tmp_path):
    r = scan({**env, "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing.json")}, tmp_path, "-f", "json",
           "gs://gmodels/evil.pkl")
    assert r.code == 2
    assert "GOOGLE_APPLICATION_CREDENTIALS" in r.json()["issues"][0]["message"]
    assert "cannot be used" in r.json()["issues"][0]["message"]


def test_denied_messages_name_the_fix():
    """Messages for the exceptions the client raises on 401/403 answers (real answers: the tests below)."""
    from google.api_core import exceptions as gexc

    from modelaudit.sources.gcs import Client, explain, parse

    t = parse("gs://private/model.pkl")
    anonymous = Client(None, True, None, (1.0, 1.0))
    signed_in = Client(None, False, None, (1.0, 1.0))
    assert "not public" in explain(gexc.Unauthorized("login required"), t, anonymous)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in explain(gexc.Unauthorized("login required"), t, anonymous)
    message = explain(gexc.Forbidden("no access"), t, signed_in)
    assert "access denied to gs://private/model.pkl (HTTP 403)" in message and "storage.objects.get" in message


def test_missing_client_library_is_a_clear_incomplete_finding(env, tmp_path):
    shadow = tmp_path / "shadow" / "google" / "cloud" / "storage"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('google-cloud-storage hidden for this test')\n")
    r = scan({**env, "PYTHONPATH": str(tmp_path / "shadow")}, tmp_path, "-f", "json", "gs://gmodels/evil.pkl")
    assert r.code == 2, r.stdout + r.stderr
    issue = r.json()["issues"][0]
    assert issue["rule_code"] == "MA-S006" and "pip install 'modelaudit[cloud]'" in issue["message"]
    assert "Traceback" not in r.stderr


# --- a server that denies: 401 without credentials, 403 with them (the emulator checks no auth) ---------------


class _DenyingHandler(QuietHandler):
    seen: list[str]

    def _deny(self) -> None:
        auth = self.headers.get("Authorization", "")
        self.seen.append(auth)
        status, reason = (403, "forbidden") if auth.startswith("Bearer ") else (401, "required")
        error = {"error": {"code": status, "message": "Anonymous caller does not have storage.objects.get access"
                           if status == 401 else "scanner@demo does not have storage.objects.get access",
                           "errors": [{"domain": "global", "reason": reason, "message": "denied"}]}}
        self.send_body(status, json.dumps(error).encode())

    do_GET = do_HEAD = do_POST = _deny  # noqa: N815


@contextmanager
def _denying_server():
    seen: list[str] = []
    server = serve_in_thread(type("Deny", (_DenyingHandler,), {"seen": seen}))
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        stop_server(server)


def test_401_from_the_server_is_a_clear_finding(env, tmp_path):
    with _denying_server() as (endpoint, seen):
        r = scan({**env, "STORAGE_EMULATOR_HOST": endpoint}, tmp_path, "-f", "json", "gs://private/model.pkl")
    assert r.code == 2, r.stdout + r.stderr
    issue = r.json()["issues"][0]
    assert issue["location"] == "gs://private/model.pkl" and seen and not any(seen)
    assert "not public" in issue["message"] and "GOOGLE_APPLICATION_CREDENTIALS" in issue["message"]
    assert "Traceback" not in r.stderr


def test_403_from_the_server_names_the_permission(env, tmp_path):
    with _token_server(reject=False) as (token_uri, _grants), _denying_server() as (endpoint, seen):
        key_file = _service_account_file(tmp_path / "sa.json", token_uri)
        r = scan({**env, "STORAGE_EMULATOR_HOST": endpoint, "GOOGLE_APPLICATION_CREDENTIALS": str(key_file)},
                 tmp_path, "-f", "json", "gs://private/model.pkl")
    assert r.code == 2, r.stdout + r.stderr
    issue = r.json()["issues"][0]
    assert seen and all(auth == f"Bearer {ACCESS_TOKEN}" for auth in seen)
    assert "access denied to gs://private/model.pkl (HTTP 403)" in issue["message"]
    assert "storage.objects.get" in issue["message"] and ACCESS_TOKEN not in r.stdout + r.stderr
