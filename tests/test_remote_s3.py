"""s3:// and r2:// targets against moto's S3 server on 127.0.0.1 (moto_server, started once per module)."""

from __future__ import annotations

import pytest

from .conftest import run_cli
from .servers import (EVIL, HONEST, aws_env, cache_env, locations, moto_server, no_local_paths, s3_client, scan,
                      tool, unavailable)

pytest.importorskip("boto3")
if not tool("moto_server"):
    pytest.skip("moto_server (moto[server]) is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    root = tmp_path_factory.mktemp("moto")
    with moto_server() as endpoint:
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket="models")
        s3.put_object(Bucket="models", Key="evil.pkl", Body=EVIL)
        s3.put_object(Bucket="models", Key="ok.pkl", Body=HONEST)
        s3.put_object(Bucket="models", Key="team/v1/model.pkl", Body=EVIL)
        s3.put_object(Bucket="models", Key="team/v1/sub/weights.pkl", Body=HONEST)
        s3.put_object(Bucket="models", Key="team/v1/", Body=b"")  # a folder marker
        s3.put_object(Bucket="models", Key="big.pkl", Body=HONEST + b"\0" * 4096)
        s3.create_bucket(Bucket="r2models")  # moto refuses CreateBucket from region "auto"
        s3.put_object(Bucket="r2models", Key="evil.pkl", Body=EVIL)
        yield {"env": aws_env(root, endpoint), "endpoint": endpoint}


@pytest.fixture
def env(moto, tmp_path):
    return {**moto["env"], **cache_env(tmp_path)}


def test_malicious_object_is_located_by_uri(env, tmp_path):
    r = scan(env, tmp_path, "-f", "json", "s3://models/evil.pkl")
    assert r.code == 1, r.stdout + r.stderr
    assert "s3://models/evil.pkl" in locations(r)
    assert {a["path"] for a in r.json()["assets"]} == {"s3://models/evil.pkl"}
    no_local_paths(r, tmp_path)


def test_honest_object_is_clean(env, tmp_path):
    r = scan(env, tmp_path, "-f", "json", "s3://models/ok.pkl")
    assert r.code == 0, r.stdout + r.stderr


@pytest.mark.parametrize("target", ["s3://models/team/v1/", "s3://models/team/v1"])
def test_prefix_scans_every_object_under_it(env, tmp_path, target):
    r = scan(env, tmp_path, "-f", "json", target)
    assert r.code == 1, r.stdout + r.stderr
    assert "s3://models/team/v1/model.pkl" in locations(r)
    assert {a["path"] for a in r.json()["assets"]} == {"s3://models/team/v1/model.pkl",
                                                       "s3://models/team/v1/sub/weights.pkl"}
    no_local_paths(r, tmp_path)


def test_r2_with_region_auto(env, tmp_path):
    r = scan(env, tmp_path, "-f", "json", "r2://r2models/evil.pkl")
    assert r.code == 1, r.stdout + r.stderr
    assert "r2://r2models/evil.pkl" in locations(r)
    no_local_paths(r, tmp_path)


def test_r2_without_endpoint_is_a_clear_finding(env, tmp_path):
    r = scan({k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL"}, tmp_path, "r2://r2models/evil.pkl")
    assert r.code == 2 and "AWS_ENDPOINT_URL" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("target, expected", [
    ("s3://models/nope.pkl", "no such key: s3://models/nope.pkl"),
    ("s3://no-such-bucket/x.pkl", "no such bucket: no-such-bucket"),
    ("s3://models/empty-prefix/", "no objects under s3://models/empty-prefix/"),
])
def test_missing_objects_are_coverage_findings(env, tmp_path, target, expected):
    unavailable(scan(env, tmp_path, "-f", "json", target), expected)


def test_dry_run_lists_sizes_and_downloads_nothing(env, tmp_path):
    r = run_cli("scan", "--dry-run", "-f", "json", "s3://models/team/v1/", cwd=tmp_path, env=env)
    assert r.code == 0, r.stdout + r.stderr
    files = {f["path"]: f for f in r.json()["files"]}
    assert set(files) == {"s3://models/team/v1/model.pkl", "s3://models/team/v1/sub/weights.pkl"}
    assert files["s3://models/team/v1/model.pkl"]["size"] == len(EVIL)
    assert r.json()["download_files"] == 2
    assert not (tmp_path / "xdg" / "modelaudit" / "blobs").exists() or \
        not any((tmp_path / "xdg" / "modelaudit" / "blobs").iterdir())
    text = run_cli("scan", "--dry-run", "s3://models/evil.pkl", cwd=tmp_path, env=env)
    assert text.code == 0 and f"s3://models/evil.pkl  -  {len(EVIL)} bytes  download" in text.stdout, text.stdout


def test_cache_by_etag_second_scan_downloads_nothing(env, tmp_path):
    cache = tmp_path / "cache"
    first = scan(env, tmp_path, "-f", "json", "--cache-dir", str(cache), "s3://models/evil.pkl")
    assert first.code == 1
    blobs = list((cache / "blobs").iterdir())
    assert len(blobs) == 1 and blobs[0].name.startswith("s3etag-")
    dry = run_cli("scan", "--dry-run", "-f", "json", "--cache-dir", str(cache), "s3://models/evil.pkl",
                  cwd=tmp_path, env=env)
    assert dry.json()["download_files"] == 0 and dry.json()["files"][0]["cached"] is True
    second = scan(env, tmp_path, "-f", "json", "--cache-dir", str(cache), "s3://models/evil.pkl")
    assert second.code == 1 and "s3://models/evil.pkl" in locations(second)


def test_no_cache_leaves_nothing(env, tmp_path):
    r = scan(env, tmp_path, "-f", "json", "--no-cache", "s3://models/evil.pkl")
    assert r.code == 1
    assert not (tmp_path / "xdg" / "modelaudit").exists()


def test_max_size_skips_before_download(env, tmp_path):
    r = scan(env, tmp_path, "-f", "json", "--max-size", "1000", "s3://models/big.pkl")
    assert r.code == 2, r.stdout
    issue = r.json()["issues"][0]
    assert issue["rule_code"] == "MA-S001" and issue["location"] == "s3://models/big.pkl"
    assert not (tmp_path / "xdg" / "modelaudit" / "blobs").exists() or \
        not any((tmp_path / "xdg" / "modelaudit" / "blobs").iterdir())
    dry = run_cli("scan", "--dry-run", "-f", "json", "--max-size", "1000", "s3://models/big.pkl", cwd=tmp_path,
                  env=env)
    assert "too large" in dry.json()["files"][0]["skipped"]


def test_access_denied_is_a_clear_finding(tmp_path):
    """A real 403: moto enforces SigV4 after the first two calls, and key "testing" is unknown to its IAM."""
    with moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "2"}) as endpoint:
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket="locked")
        s3.put_object(Bucket="locked", Key="evil.pkl", Body=EVIL)
        env = {**aws_env(tmp_path, endpoint), **cache_env(tmp_path)}
        for target in ("s3://locked/evil.pkl", "s3://locked/"):
            r = scan(env, tmp_path, "-f", "json", target)
            assert r.code == 2, r.stdout + r.stderr
            issue = r.json()["issues"][0]
            assert issue["rule_code"] == "MA-S010" and issue["location"] == target
            assert "access denied" in issue["message"] and "check credentials" in issue["message"], issue
            assert "Traceback" not in r.stderr and "testing" not in r.stdout


def test_missing_boto3_is_a_clear_incomplete_finding(env, tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "boto3.py").write_text("raise ImportError('boto3 hidden for this test')\n")
    r = scan({**env, "PYTHONPATH": str(shadow)}, tmp_path, "-f", "json", "s3://models/evil.pkl")
    assert r.code == 2, r.stdout + r.stderr
    issue = r.json()["issues"][0]
    assert issue["rule_code"] == "MA-S006" and "pip install 'modelaudit[cloud]'" in issue["message"]
    assert "Traceback" not in r.stderr
