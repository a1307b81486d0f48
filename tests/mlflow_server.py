"""A real `mlflow server` on 127.0.0.1 for the models:/ tests, started once per test run.

It takes 15-20 s to start, so the pytest workers of one run share it: under a file lock the first worker
starts it (own process session, bounded readiness poll) and registers the test models; each worker adds its
pid to the state file and removes it at the end of its session, and the last one stops the server by its
process group (SIGTERM, SIGKILL after 10 s). Pids of workers that died are pruned, so a crashed worker
cannot keep it alive for the others' release.

With `mlflow[auth]` installed the server runs the basic-auth app, so the same server also answers 401s.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from .servers import LOOPBACK, free_port, start_process, stop_group, wait_ready

BIN = Path(sys.executable).parent
ADMIN = ("admin", "Adm1n-pass-4-tests")
START_DEADLINE = 180.0  # seconds; it takes 15-40 s on two cores, much longer when they are busy

SEED = r'''
import os, pickle, sys, tempfile
import numpy as np
import mlflow
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression


class Payload:  # unpickling it would run `echo`; nothing here unpickles it
    def __reduce__(self):
        return (os.system, ("echo modelaudit-test",))


mlflow.set_experiment("audit")
X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
with mlflow.start_run():  # version 1: an honest scikit-learn model as mlflow writes it
    mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model", registered_model_name="Fraud",
                             pip_requirements=["scikit-learn"], serialization_format="pickle")
folder = tempfile.mkdtemp(dir=sys.argv[1])
with open(os.path.join(folder, "model.pkl"), "wb") as fh:
    pickle.dump(Payload(), fh, protocol=2)
with open(os.path.join(folder, "MLmodel"), "w") as fh:
    fh.write("artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
             "    model_path: model.pkl\n  sklearn:\n    pickled_model: model.pkl\n"
             "    serialization_format: pickle\n")
with mlflow.start_run() as run:  # version 2: a pickle that runs a command when loaded
    mlflow.log_artifacts(folder, artifact_path="model")
mlflow.register_model(f"runs:/{run.info.run_id}/model", "Fraud")
client = MlflowClient()
client.set_registered_model_alias("Fraud", "champion", "1")
client.set_registered_model_alias("Fraud", "challenger", "2")
client.create_registered_model("Empty")
'''


def auth_available() -> bool:
    try:
        import flask_wtf  # noqa: F401 - what `mlflow[auth]` adds
    except ImportError:
        return False
    return True


def client_env(endpoint: str | None, auth: bool) -> dict[str, str]:
    env = {"MLFLOW_TRACKING_URI": endpoint or "", **LOOPBACK, "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
           "MLFLOW_TRACKING_USERNAME": "", "MLFLOW_TRACKING_PASSWORD": "", "MLFLOW_REGISTRY_URI": ""}
    if auth:
        env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"] = ADMIN
    return env


def _start(root: Path, auth: bool) -> tuple[int, str]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **client_env(None, False)}
    args = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1"]
    if auth:
        ini = root / "auth.ini"
        ini.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{root / 'auth.db'}\n"
                       f"admin_username = {ADMIN[0]}\nadmin_password = {ADMIN[1]}\n")
        env.update(MLFLOW_AUTH_CONFIG_PATH=str(ini), MLFLOW_FLASK_SERVER_SECRET_KEY="modelaudit-tests-only")
        args[2:2] = ["--app-name", "basic-auth"]
    proc = start_process(args, root / "server.log", cwd=root, env=env)
    try:
        wait_ready(proc, f"{endpoint}/health", "mlflow server", START_DEADLINE, 0.25, log=root / "server.log")
    except BaseException:
        stop_group(proc.pid)
        raise
    return proc.pid, endpoint


def _seed(root: Path, endpoint: str, auth: bool) -> None:
    work = root / "seed"
    work.mkdir()
    env = {**os.environ, **client_env(endpoint, auth), "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    proc = subprocess.run([sys.executable, "-c", SEED, str(work)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    if proc.returncode:
        raise RuntimeError(f"registering the test models failed:\n{proc.stderr[-3000:]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def shared_server(root: Path):
    """The run's server as (endpoint, auth, its folder: artifacts/ holds the stored files); `root` is a
    folder every worker of this run sees."""
    root.mkdir(parents=True, exist_ok=True)
    state_file, me = root / "state.json", os.getpid()
    with open(root / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = json.loads(state_file.read_text()) if state_file.exists() else None
            if state is None or not _alive(state["pgid"]):
                auth = auth_available()
                server = root / f"server-{me}"
                server.mkdir()
                pgid, endpoint = _start(server, auth)
                state = {"pgid": pgid, "endpoint": endpoint, "auth": auth, "folder": str(server), "users": []}
                try:
                    _seed(server, endpoint, auth)
                except BaseException:
                    stop_group(pgid)
                    raise
            state["users"] = [p for p in state["users"] if _alive(p)] + [me]
            state_file.write_text(json.dumps(state))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    try:
        yield state["endpoint"], state["auth"], Path(state["folder"])
    finally:
        with open(root / "lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = json.loads(state_file.read_text())
                current["users"] = [p for p in current["users"] if p != me and _alive(p)]
                if current["users"]:
                    state_file.write_text(json.dumps(current))
                else:
                    stop_group(current["pgid"])
                    state_file.unlink()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
