"""JFrog Artifactory file and folder URLs, against an Artifactory REST subset of our own on 127.0.0.1
(tests/artifactory_server.py): API key and access token, flags, environment and .env, checksums."""

from __future__ import annotations

import pytest

from .artifactory_server import Artifactory
from .conftest import run_cli
from .servers import EVIL, LOOPBACK, MODEL_TREE, cache_env, cached_files, locations, scan, write_tree

API_KEY = "akey-0123456789-secret"
ACCESS = "atok-9876543210-secret"


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    root = tmp_path_factory.mktemp("artifactory")
    write_tree(root, {**{f"models/{path}": data for path, data in MODEL_TREE.items()},
                      "models/team/v1/logo.png": b"\x89PNG\r\n\x1a\n" + b"0" * 32,
                      "models/broken/model.pkl": EVIL, "models/slow/model.pkl": EVIL, "public/evil.pkl": EVIL})
    server = Artifactory(root, api_keys={API_KEY}, access_tokens={ACCESS}, anonymous_repos={"public"},
                         corrupt={"models/broken/model.pkl"}, stall={"models/slow/model.pkl": 5.0}).start()
    yield server
    server.stop()


@pytest.fixture
def env(tmp_path):
    return {**cache_env(tmp_path), "JFROG_API_TOKEN": "", "JFROG_ACCESS_TOKEN": "", **LOOPBACK}


def _no_secrets(result):
    for text in (result.stdout, result.stderr):
        assert API_KEY not in text and ACCESS not in text


def test_api_key_from_environment_finds_malicious_file(art, env, tmp_path):
    art.log.clear()
    r = scan({**env, "JFROG_API_TOKEN": API_KEY}, tmp_path, "-f", "json", "-v", art.url("models/evil.pkl"))
    assert r.code == 1, r.stdout + r.stderr
    assert locations(r) == {art.url("models/evil.pkl")}
    assert {a["path"] for a in r.json()["assets"]} == {art.url("models/evil.pkl")}
    assert any(i["rule_code"] == "MA-P001" for i in r.json()["issues"])
    assert {e["auth"] for e in art.log} == {"api"}  # X-JFrog-Art-Api on every request
    assert str(tmp_path) not in r.stdout and "/tmp/" not in r.stdout
    _no_secrets(r)


def test_access_token_from_environment_is_sent_as_bearer(art, env, tmp_path):
    art.log.clear()
    r = scan({**env, "JFROG_ACCESS_TOKEN": ACCESS}, tmp_path, "-f", "json", art.url("models/evil.pkl"))
    assert r.code == 1, r.stdout + r.stderr
    assert {e["auth"] for e in art.log} == {"bearer"}
    _no_secrets(r)


@pytest.mark.parametrize("flag, secret, kind", [("--jfrog-api-token", API_KEY, "api"),
                                                ("--jfrog-access-token", ACCESS, "bearer")])
def test_tokens_given_as_flags(art, env, tmp_path, flag, secret, kind):
    art.log.clear()
    r = scan(env, tmp_path, "-f", "sarif", flag, secret, art.url("models/evil.pkl"))
    assert r.code == 1, r.stdout + r.stderr
    assert {e["auth"] for e in art.log} == {kind}
    assert art.url("models/evil.pkl") in r.stdout
    _no_secrets(r)


def test_flag_wins_over_environment(art, env, tmp_path):
    art.log.clear()
    r = scan({**env, "JFROG_API_TOKEN": "stale-token"}, tmp_path, "--jfrog-access-token", ACCESS,
           art.url("models/ok.pkl"))
    assert r.code == 0, r.stdout + r.stderr
    assert {e["auth"] for e in art.log} == {"bearer"}


def test_token_from_dotenv_in_working_directory(art, env, tmp_path):
    (tmp_path / ".env").write_text(f"# CI secrets\nJFROG_API_TOKEN={API_KEY}\n")
    r = scan(env, tmp_path, "-f", "json", art.url("models/evil.pkl"))
    assert r.code == 1, r.stdout + r.stderr
    assert locations(r) == {art.url("models/evil.pkl")}
    _no_secrets(r)


def test_honest_file_is_clean(art, env, tmp_path):
    r = scan({**env, "JFROG_API_TOKEN": API_KEY}, tmp_path, "-f", "json", art.url("models/ok.pkl"))
    assert r.code == 0, r.stdout + r.stderr
    assert r.json()["files_scanned"] == 1


def test_anonymous_repository_needs_no_token(art, env, tmp_path):
    art.log.clear()
    r = scan(env, tmp_path, "-f", "json", art.url("public/evil.pkl"))
    assert r.code == 1, r.stdout + r.stderr
    assert {e["auth"] for e in art.log} == {None}


@pytest.mark.parametrize("suffix", ["models/team/v1/", "models/team/v1"])
def test_folder_scans_scannable_files_recursively(art, env, tmp_path, suffix):
    art.log.clear()
    r = scan({**env, "JFROG_ACCESS_TOKEN": ACCESS}, tmp_path, "-f", "json", "-v", art.url(suffix))
    assert r.code == 1, r.stdout + r.stderr
    base = art.url("models/team/v1/")
    assert {a["path"] for a in r.json()["assets"]} == {base + "model.pkl", base + "sub/weights.pkl",
                                                       base + "config.json"}
    assert locations(r) == {base + "model.pkl"}
    downloaded = {e["path"] for e in art.downloads()}
    assert downloaded <= {"/artifactory/models/team/v1/model.pkl", "/artifactory/models/team/v1/sub/weights.pkl",
                          "/artifactory/models/team/v1/config.json"}
    assert any("list&deep=1" in e["path"] for e in art.log)
    # what was left out is said in verbose output
    assert f"not fetched (not a scannable file): {base}README.md" in r.stderr
    assert f"{base}logo.png" in r.stderr
    _no_secrets(r)


def test_folder_without_scannable_files(art, env, tmp_path):
    r = scan({**env, "JFROG_API_TOKEN": API_KEY}, tmp_path, "-f", "json", art.url("models/docs/"))
    assert r.code == 2, r.stdout + r.stderr
    assert "no scannable files under" in r.json()["issues"][0]["message"]


def test_missing_token_is_a_clear_finding(art, env, tmp_path):
    r = scan(env, tmp_path, "-f", "json", art.url("models/evil.pkl"))
    assert r.code == 2, r.stdout + r.stderr
    issue = r.json()["issues"][0]
    assert issue["rule_code"] == "MA-S010" and issue["location"] == art.url("models/evil.pkl")
    assert "requires authentication" in issue["message"] and "JFROG_API_TOKEN" in issue["message"]
    assert "HTTP 401" in issue["message"] and "Traceback" not in r.stderr


@pytest.mark.parametrize("var", ["JFROG_API_TOKEN", "JFROG_ACCESS_TOKEN"])
def test_wrong_token_is_rejected_and_never_printed(art, env, tmp_path, var):
    wrong = "wrong-token-abcdef-123456"
    r = scan({**env, var: wrong}, tmp_path, "-f", "json", "-v", art.url("models/team/v1/"))
    assert r.code == 2, r.stdout + r.stderr
    issue = r.json()["issues"][0]
    assert "rejected the token from " + var in issue["message"] and "HTTP 401" in issue["message"]
    assert wrong not in r.stdout and wrong not in r.stderr


def test_missing_file_and_repository(art, env, tmp_path):
    for path in ("models/nope.pkl", "nosuchrepo/x.pkl"):
        r = scan({**env, "JFROG_API_TOKEN": API_KEY}, tmp_path, "-f", "json", art.url(path))
        assert r.code == 2, r.stdout + r.stderr
        issue = r.json()["issues"][0]
        assert issue["message"] == f"not found in Artifactory: {art.url(path)} (HTTP 404)"


def test_corrupted_download_is_an_integrity_finding_not_a_clean_file(art, env, tmp_path):
    r = scan({**env, "JFROG_API_TOKEN": API_KEY}, tmp_path, "-f", "json", art.url("models/broken/model.pkl"))
    assert r.code == 2, r.stdout + r.stderr
    issues = r.json()["issues"]
    assert [i["rule_code"] for i in issues] == ["MA-S016"], issues
    assert "checksum mismatch" in issues[0]["message"] and issues[0]["location"] == art.url("models/broken/model.pkl")
    assert r.json()["files_scanned"] == 0 or art.url("models/broken/model.pkl") in r.json()["incomplete_files"]
    assert cached_files(tmp_path) == []  # the damaged bytes never enter the cache


def test_dry_run_lists_sizes_and_skipped_files_and_downloads_nothing(art, env, tmp_path):
    art.log.clear()
    r = run_cli("scan", "--dry-run", "-f", "json", art.url("models/team/v1/"), cwd=tmp_path,
                env={**env, "JFROG_API_TOKEN": API_KEY})
    assert r.code == 0, r.stdout + r.stderr
    files = {f["path"]: f for f in r.json()["files"]}
    base = art.url("models/team/v1/")
    assert files[base + "model.pkl"]["size"] == len(EVIL) and files[base + "model.pkl"]["download"] is True
    assert files[base + "README.md"]["skipped"] == "not a scannable file; not fetched"
    assert files[base + "logo.png"]["size"] == 40
    assert r.json()["download_files"] == 3
    assert art.downloads() == []
    text = run_cli("scan", "--dry-run", art.url("models/evil.pkl"), cwd=tmp_path,
                   env={**env, "JFROG_API_TOKEN": API_KEY})
    assert f"{art.url('models/evil.pkl')}  -  {len(EVIL)} bytes  download" in text.stdout, text.stdout
    _no_secrets(text)


def test_cache_second_scan_downloads_nothing(art, env, tmp_path):
    env = {**env, "JFROG_API_TOKEN": API_KEY}
    art.log.clear()
    first = scan(env, tmp_path, "-f", "json", art.url("models/team/v1/"))
    assert first.code == 1 and len(art.downloads()) == 3
    assert {b.name[:7] for b in cached_files(tmp_path)} == {"sha256-"}
    art.log.clear()
    second = scan(env, tmp_path, "-f", "json", art.url("models/team/v1/"))
    assert second.code == 1 and art.downloads() == []
    assert locations(second) == locations(first)
    dry = run_cli("scan", "--dry-run", "-f", "json", art.url("models/team/v1/"), cwd=tmp_path, env=env)
    assert dry.json()["download_files"] == 0


def test_max_size_skips_before_download(art, env, tmp_path):
    art.log.clear()
    r = scan({**env, "JFROG_API_TOKEN": API_KEY}, tmp_path, "-f", "json", "--max-size", "1000",
           art.url("models/big.pkl"))
    assert r.code == 2, r.stdout
    issue = r.json()["issues"][0]
    assert issue["rule_code"] == "MA-S001" and issue["location"] == art.url("models/big.pkl")
    assert art.downloads() == []


def test_stalled_download_gives_up_after_timeout(art, env, tmp_path):
    r = scan({**env, "JFROG_API_TOKEN": API_KEY}, tmp_path, "-f", "json", "--timeout", "1",
           art.url("models/slow/model.pkl"))
    assert r.code == 2, r.stdout + r.stderr
    issue = r.json()["issues"][0]
    assert issue["rule_code"] == "MA-S010" and "timed out" in issue["message"], issue
    assert cached_files(tmp_path) == []


def test_plain_http_off_loopback_is_refused_before_any_request(env, tmp_path):
    r = scan({**env, "JFROG_API_TOKEN": API_KEY}, tmp_path, "-f", "json",
           "http://artifacts.example.invalid/artifactory/models/evil.pkl")
    assert r.code == 2
    assert "refusing plain http://" in r.json()["issues"][0]["message"]
    _no_secrets(r)


def test_python_api_with_token_keyword(art, env, tmp_path, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    from modelaudit.core import scan_model_directory_or_file

    result = scan_model_directory_or_file(art.url("models/evil.pkl"), jfrog_access_token=ACCESS)
    assert result["summary"]["exit_code"] == 1
    assert {i["location"].split(" (pos ")[0] for i in result["issues"]} == {art.url("models/evil.pkl")}


def test_target_recognition():
    from modelaudit.sources.jfrog import is_jfrog_target, parse

    assert is_jfrog_target("https://acme.jfrog.io/artifactory/models/model.pkl")
    assert is_jfrog_target("https://host/prefix/artifactory/repo/")
    assert not is_jfrog_target("https://acme.jfrog.io/artifactory/api/storage/models")
    assert not is_jfrog_target("https://acme.jfrog.io/artifactory/")
    assert not is_jfrog_target("https://example.com/models/model.pkl")
    t = parse("https://host/prefix/artifactory/repo/a/b%20c.pkl?x=1")
    assert (t.base, t.repo, t.path) == ("https://host/prefix/artifactory", "repo", "a/b c.pkl")
    assert t.uri(t.path) == "https://host/prefix/artifactory/repo/a/b%20c.pkl"
