"""models:/ versions whose files live in S3 (the common production layout: the tracking server records an
s3:// artifact location, clients read and write the bucket directly), against the shared real
`mlflow server` and moto's S3 server on 127.0.0.1: found, located by URI, cached by the objects' ETags."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from .mlflow_server import client_env
from .servers import cache_env, locations, moto_server, s3_client
from .test_remote_mlflow import blobs, findings, ma

pytest.importorskip("mlflow")
pytest.importorskip("boto3")

SEED = r'''
import os, pickle, sys, tempfile
import mlflow
from mlflow import MlflowClient


class Payload:  # unpickling it would run `echo`; nothing here unpickles it
    def __reduce__(self):
        return (os.system, ("echo modelaudit-test",))


name, location = sys.argv[1], sys.argv[2]
experiment = mlflow.create_experiment(name, artifact_location=location)
folder = tempfile.mkdtemp()
with open(os.path.join(folder, "model.pkl"), "wb") as fh:
    pickle.dump(Payload(), fh, protocol=2)
with mlflow.start_run(experiment_id=experiment) as run:
    mlflow.log_artifacts(folder, artifact_path="model")
client = MlflowClient()
artifact_uri = client.get_run(run.info.run_id).info.artifact_uri
client.create_registered_model(name)
client.create_model_version(name, f"{artifact_uri}/model", run.info.run_id)  # the version's files stay in S3
print(artifact_uri)
'''


def _aws(endpoint: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint, "MLFLOW_S3_ENDPOINT_URL": endpoint, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


@pytest.fixture(scope="module")
def s3_version(mlflow_server, tmp_path_factory):
    endpoint, auth, _folder = mlflow_server
    with moto_server() as s3:
        s3_client(s3).create_bucket(Bucket="models")
        name = f"S3Fraud{uuid.uuid4().hex[:8]}"
        work = tmp_path_factory.mktemp("mlflow-s3-seed")
        env = {**os.environ, **client_env(endpoint, auth), **_aws(s3), "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        proc = subprocess.run([sys.executable, "-c", SEED, name, f"s3://models/{name}"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr[-3000:]
        artifact_uri = proc.stdout.strip().splitlines()[-1]
        assert artifact_uri.startswith(f"s3://models/{name}/")
        yield name, s3, artifact_uri, {**client_env(endpoint, auth), **_aws(s3)}


@pytest.fixture
def cwd(tmp_path):
    path = tmp_path / "cwd"
    path.mkdir()
    return path


def test_version_in_s3_is_scanned_and_cached_by_etag(s3_version, cwd, tmp_path):
    name, s3, artifact_uri, env = s3_version
    env = {**env, **cache_env(tmp_path)}
    cache = tmp_path / "cache"
    args = ("-f", "json", "--cache-dir", str(cache), f"models:/{name}/1")
    first = ma(env, cwd, *args)
    assert first.code == 1, first.stdout + first.stderr
    assert f"models:/{name}/1/model.pkl" in locations(first)
    kept = blobs(cache)
    assert len(kept) == 1 and next(iter(kept)).startswith("mlflow-"), kept

    second = ma(env, cwd, *args)
    assert second.code == 1 and blobs(cache) == kept  # served from the cache: the same file, never replaced
    assert findings(second) == findings(first)
    dry = ma(env, cwd, "--dry-run", *args)
    assert [(f["path"], f["cached"]) for f in dry.json()["files"]] == [(f"models:/{name}/1/model.pkl", True)]

    # a rewritten object (new ETag) is downloaded again and kept under a new key
    bucket, _, prefix = artifact_uri[len("s3://"):].partition("/")
    client = s3_client(s3)
    key = f"{prefix}/model/model.pkl"
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    client.put_object(Bucket=bucket, Key=key, Body=body + b"\n")
    third = ma(env, cwd, *args)
    assert third.code == 1, third.stdout + third.stderr
    now = blobs(cache)
    assert len(now) == 2 and set(kept) < set(now)


def test_no_cache_keeps_nothing_for_s3(s3_version, cwd, tmp_path):
    name, _s3, _uri, env = s3_version
    cache = tmp_path / "cache"
    r = ma({**env, **cache_env(tmp_path)}, cwd, "-f", "json", "--no-cache", "--cache-dir", str(cache),
           f"models:/{name}/1")
    assert r.code == 1, r.stdout + r.stderr
    assert f"models:/{name}/1/model.pkl" in locations(r)
    assert blobs(cache) == {}
