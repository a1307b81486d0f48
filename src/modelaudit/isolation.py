"""Scan files in worker processes: a memory cap per worker and a deadline the parent enforces.

A parser stuck in native code (h5py, protobuf, zlib) never reaches a cooperative deadline check
(ScanContext.check_deadline), and one that exhausts memory takes its process with it. So each file is
read by one of a few long-lived worker processes:

* Workers are forked on Linux, so scanners registered at run time (SCANNER_REGISTRY.append, entry
  points) are inherited. Elsewhere they are spawned when every registered scanner can be imported by
  name; otherwise files are scanned in this process (a note says so).
* Each worker caps what a scan may allocate at Limits.max_memory on top of what it held at start, with
  RLIMIT_DATA (heap; files mapped for reading do not count) and, as a backstop, RLIMIT_AS (address
  space, with room for the mapped file and spooled archive members). Running out raises MemoryError
  in the scanner (MA-S015, and the worker is replaced) or kills the worker (MA-S014).
* The parent gives each file the per-file timeout plus a grace period (the cooperative deadline fires
  first when it can). Past it the worker is killed with SIGKILL, the file is reported as
  "Scan timeout after N seconds" (MA-S003) and a new worker takes the next file.
* A worker that dies (segfault, abort, out-of-memory killer, os._exit) costs its file a MA-S014 finding;
  the scan goes on.
* Nothing crosses the process boundary as a pickle: the parent sends each task as JSON and the worker
  answers with the FileResult as JSON (result_to_dict / result_from_dict).
* Each worker gets a private temporary directory, removed by the parent when the worker ends, so files
  spooled by a killed worker do not outlive the scan.

Results come back in input order whatever the number of workers; budgets that span files
(max_total_size) were decided by the parent before dispatch (engine.plan).

Who uses it: the command line, by default (`--jobs N`, `--max-memory`; `--no-isolation` scans in
process for debugging), since a stuck parser there hangs a CI job. The Python API
(scan_model_directory_or_file) scans in its caller's process unless asked with `isolation=True` or
`jobs=N`: a library call should not fork behind its caller's back (threads, audit hooks, embedding
applications), and for a single small file a worker only adds start-up time.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from .config import Limits, ScanConfig
from .engine import Planned, ProgressHook, Task, scan_task, unfinished_result
from .errors import ScanTimeout
from .model import Asset, Check, CheckStatus, FileResult, Issue, IssueSeverity

log = logging.getLogger("modelaudit")

#: how long a new worker may take to start (spawned workers import modelaudit first)
START_ALLOWANCE = 60.0
#: how long a worker may take to exit after being asked to
STOP_WAIT = 2.0


def deadline_grace(timeout: float) -> float:
    """Time past the per-file timeout before the parent kills the worker: 10%, between 1 and 10 seconds."""
    return max(1.0, min(10.0, timeout * 0.1))


# --- JSON form of results (the only thing workers send back) -------------------------------------------


def result_to_dict(result: FileResult) -> dict[str, Any]:
    return {
        "path": result.path, "format": result.format, "scanners": list(result.scanners),
        "issues": [issue_to_dict(i) for i in result.issues], "checks": [check_to_dict(c) for c in result.checks],
        "bytes_scanned": result.bytes_scanned, "complete": result.complete,
        "assets": [a.to_dict() for a in result.assets],
        "duration": result.duration,
    }


def result_from_dict(data: dict[str, Any]) -> FileResult:
    return FileResult(
        path=data["path"], format=data["format"], scanners=tuple(data["scanners"]),
        issues=tuple(issue_from_dict(i) for i in data["issues"]),
        checks=tuple(check_from_dict(c) for c in data["checks"]),
        bytes_scanned=int(data["bytes_scanned"]), complete=bool(data["complete"]),
        assets=tuple(Asset.from_dict(a) for a in data["assets"]),
        duration=float(data["duration"]),
    )


def issue_to_dict(issue: Issue) -> dict[str, Any]:
    return {"message": issue.message, "severity": issue.severity.value, "rule_code": issue.rule_code,
            "location": issue.location, "details": issue.details, "why": issue.why, "scanner": issue.scanner,
            "timestamp": issue.timestamp}


def issue_from_dict(data: dict[str, Any]) -> Issue:
    return Issue(message=data["message"], severity=IssueSeverity(data["severity"]), rule_code=data["rule_code"],
                 location=data["location"], details=dict(data["details"]), why=data["why"],
                 scanner=data["scanner"], timestamp=float(data["timestamp"]))


def check_to_dict(check: Check) -> dict[str, Any]:
    return {"name": check.name, "status": check.status.value, "message": check.message,
            "location": check.location, "rule_code": check.rule_code, "timestamp": check.timestamp}


def check_from_dict(data: dict[str, Any]) -> Check:
    return Check(name=data["name"], status=CheckStatus(data["status"]), message=data["message"],
                 location=data["location"], rule_code=data["rule_code"], timestamp=float(data["timestamp"]))


def _dumps(data: Any) -> bytes:
    return json.dumps(data, default=_fallback, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _fallback(value: Any) -> Any:  # the same conversions as the JSON report
    if isinstance(value, (bytes, bytearray)):
        return value.decode("latin-1")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _task_to_wire(index: int, task: Task) -> bytes:
    return _dumps({"index": index, "path": task.path, "explicit": task.explicit, "size": task.size,
                   "over_total": task.over_total})


def _task_from_wire(data: bytes) -> tuple[int, Task]:
    raw = json.loads(data)
    return raw["index"], Task(raw["path"], raw["explicit"], raw["size"], raw["over_total"])


# --- the worker process --------------------------------------------------------------------------------


def _worker_main(tasks: Connection, results: Connection, config: ScanConfig, tmpdir: str, parent: int,
                 inherited: list[Connection], registry: list[tuple[str, str]] | None) -> None:
    """Scan the files the parent sends, one at a time, until told to stop or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it kills workers
    for other in inherited:  # the parent's ends of pipes, copied by fork: hold none, so EOF means EOF
        other.close()
    tempfile.tempdir = tmpdir
    os.environ["TMPDIR"] = tmpdir
    _die_with_parent(parent)
    if registry is not None:
        _restore_registry(registry)
    baseline = _memory_in_use()
    results.send_bytes(b'{"ready":true}')
    while True:
        try:
            data = tasks.recv_bytes()
        except (EOFError, OSError):
            return
        if not data:
            return
        index, task = _task_from_wire(data)
        _cap_memory(config.limits, baseline, task.size)
        started = time.monotonic()
        try:
            result = scan_task(task, config)
        except MemoryError:
            result = unfinished_result(task, config, "MA-S015", _memory_message(config),
                                       {"max_memory": config.limits.max_memory}, time.monotonic() - started)
        recycle = any(i.rule_code == "MA-S015" for i in result.issues)
        try:
            payload = _dumps({"index": index, "result": result_to_dict(result), "recycle": recycle})
        except (TypeError, ValueError, RecursionError) as exc:  # details that JSON cannot carry
            result = unfinished_result(task, config, "MA-S005", f"Could not report the scan result: {exc}",
                                       {"exception": type(exc).__name__})
            payload = _dumps({"index": index, "result": result_to_dict(result), "recycle": True})
        try:
            results.send_bytes(payload)
        except OSError:
            return
        if recycle:
            return  # a fresh worker after memory ran out: the heap of this one may stay fragmented


def _memory_message(config: ScanConfig) -> str:
    cap = config.limits.max_memory
    return f"Scan ran out of memory (worker memory cap: {cap} bytes)" if cap else "Scan ran out of memory"


def _memory_in_use() -> tuple[int, int]:
    """(address space, data) of this process in bytes: VmSize and VmData, or zeros where /proc is missing."""
    sizes = {"VmSize": 0, "VmData": 0}
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in sizes:
                    sizes[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return sizes["VmSize"], sizes["VmData"]


def _cap_memory(limits: Limits, baseline: tuple[int, int], file_size: int | None) -> None:
    """Cap what the next scan may allocate: max_memory on top of what the worker held at start.

    RLIMIT_DATA (heap and private writable mappings; Linux 4.7+) is the cap that bites: file mappings, such
    as the scanned file or a decompressed archive member spooled to disk, are not heap and do not count.
    RLIMIT_AS bounds the whole address space as a backstop, leaving room for those mappings: the file's
    size plus the decompression budget. Only soft limits are lowered, so the next file may get more.
    """
    cap = limits.max_memory
    if not cap:
        return
    try:
        import resource
    except ImportError:  # Windows
        return
    space, data = baseline
    wanted = [(resource.RLIMIT_AS, space + cap + (file_size or 0) + limits.max_decompressed)]
    if hasattr(resource, "RLIMIT_DATA"):
        wanted.append((resource.RLIMIT_DATA, data + cap))
    for which, soft in wanted:
        try:
            _old, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                soft = min(soft, hard)
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):  # not supported here (macOS enforces neither)
            log.debug("could not cap worker memory", exc_info=True)


def _die_with_parent(parent: int) -> None:
    """On Linux, have the kernel kill this worker when the parent dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(0)


def _registry_spec() -> list[tuple[str, str]] | None:
    """The registered scanners by import name, or None when one cannot be imported by a fresh process."""
    from .scanners import SCANNER_REGISTRY

    spec = [(cls.__module__, cls.__qualname__) for cls in SCANNER_REGISTRY]
    if any(module == "__main__" or "<locals>" in qualname for module, qualname in spec):
        return None
    return spec


def _restore_registry(spec: list[tuple[str, str]]) -> None:
    import importlib

    from .scanners import SCANNER_REGISTRY

    classes = []
    for module, qualname in spec:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        classes.append(obj)
    SCANNER_REGISTRY[:] = classes


def start_method() -> str | None:
    """'fork' on Linux, 'spawn' where every scanner can be imported by name, else None (in process)."""
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods:
        return "fork"
    if "spawn" in methods and _registry_spec() is not None:
        return "spawn"
    return None


# --- the parent side -----------------------------------------------------------------------------------


@dataclass
class _Worker:
    process: Any  # multiprocessing.Process
    tasks: Connection  # write end: tasks for the worker
    results: Connection  # read end: its answers (pipes, not sockets: a local scan opens no socket)
    tmpdir: str
    ready: bool = False
    index: int | None = None  # position of the file being scanned
    task: Task | None = None
    sent: float = 0.0
    deadline: float = field(default_factory=lambda: time.monotonic() + START_ALLOWANCE)


class _Pool:
    """Up to `size` workers, started when work needs them and replaced when killed."""

    def __init__(self, config: ScanConfig, method: str, size: int) -> None:
        self.config = config
        self.method = method
        self.size = size
        self.context = multiprocessing.get_context(method)
        self.workers: list[_Worker] = []
        self.budget = config.limits.timeout + deadline_grace(config.limits.timeout)

    def busy(self) -> bool:
        return any(w.task is not None for w in self.workers)

    def can_take(self) -> bool:
        return len(self.workers) < self.size or any(w.task is None for w in self.workers)

    def submit(self, index: int, task: Task) -> None:
        worker = next((w for w in self.workers if w.task is None), None) or self._start()
        worker.index, worker.task, worker.sent = index, task, time.monotonic()
        if worker.ready:
            worker.deadline = worker.sent + self.budget
        try:
            worker.tasks.send_bytes(_task_to_wire(index, task))
        except OSError:
            pass  # it died while idle: the next collect() sees that and reports the file

    def collect(self) -> list[tuple[int, FileResult]]:
        """Wait for results (or deadlines); returns the finished files."""
        busy = [w for w in self.workers if w.task is not None]
        timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
        ready = wait([w.results for w in busy] + [w.process.sentinel for w in busy], timeout)
        done = []
        for worker in busy:
            if any(obj is worker.results or obj == worker.process.sentinel for obj in ready):
                finished = self._receive(worker)
            elif time.monotonic() >= worker.deadline:
                finished = self._expire(worker)
            else:
                continue
            if finished is not None:
                done.append(finished)
        return done

    def close(self) -> None:
        """Stop idle workers, kill busy ones, reap all and remove their temporary directories."""
        for worker in self.workers:
            if worker.task is None:
                try:
                    worker.tasks.send_bytes(b"")
                except OSError:
                    pass
            else:
                worker.process.kill()
        for worker in list(self.workers):
            self._retire(worker, wait_for=STOP_WAIT)

    # -- internals

    def _start(self) -> _Worker:
        sys.stdout.flush()  # a forked child flushes its copy of unwritten output when it exits
        sys.stderr.flush()
        task_reader, task_writer = self.context.Pipe(duplex=False)
        result_reader, result_writer = self.context.Pipe(duplex=False)
        tmpdir = tempfile.mkdtemp(prefix="modelaudit-worker-")
        if self.method == "fork":
            ours = [task_writer, result_reader, *(c for w in self.workers for c in (w.tasks, w.results))]
            inherited, registry = ours, None
        else:
            inherited, registry = [], _registry_spec()
        process = self.context.Process(target=_worker_main, name="modelaudit-worker", daemon=True,
                                       args=(task_reader, result_writer, self.config, tmpdir, os.getpid(),
                                             inherited, registry))
        try:
            process.start()
        except BaseException:
            for end in (task_writer, result_reader):
                end.close()
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        finally:
            task_reader.close()
            result_writer.close()
        worker = _Worker(process, task_writer, result_reader, tmpdir)
        self.workers.append(worker)
        return worker

    def _receive(self, worker: _Worker) -> tuple[int, FileResult] | None:
        try:
            if not worker.results.poll(0):
                raise EOFError
            message = json.loads(worker.results.recv_bytes())
        except (EOFError, OSError, ValueError):
            return self._died(worker)
        if message.get("ready"):
            worker.ready = True
            worker.deadline = time.monotonic() + self.budget
            return None
        assert worker.task is not None and message["index"] == worker.index
        finished = (message["index"], result_from_dict(message["result"]))
        worker.index, worker.task = None, None
        if message.get("recycle"):
            self._retire(worker, wait_for=STOP_WAIT)
        return finished

    def _expire(self, worker: _Worker) -> tuple[int, FileResult]:
        worker.process.kill()
        assert worker.task is not None and worker.index is not None
        index, task, elapsed = worker.index, worker.task, time.monotonic() - worker.sent
        self._retire(worker, wait_for=STOP_WAIT)
        timeout = self.config.limits.timeout
        if not worker.ready:
            message = f"Scan worker did not start within {START_ALLOWANCE:g} seconds"
            return index, unfinished_result(task, self.config, "MA-S014", message, {"killed": True}, elapsed)
        return index, unfinished_result(task, self.config, "MA-S003", str(ScanTimeout(timeout)),
                                        {"timeout": timeout, "killed": True, "deadline": self.budget}, elapsed)

    def _died(self, worker: _Worker) -> tuple[int, FileResult]:
        worker.process.join(STOP_WAIT)
        exitcode = worker.process.exitcode
        assert worker.task is not None and worker.index is not None
        index, task, elapsed = worker.index, worker.task, time.monotonic() - worker.sent
        self._retire(worker, wait_for=0)
        details: dict[str, Any] = {"exitcode": exitcode}
        if exitcode is not None and exitcode < 0:
            details["signal"] = _signal_name(-exitcode)
        return index, unfinished_result(task, self.config, "MA-S014", death_message(exitcode), details, elapsed)

    def _retire(self, worker: _Worker, wait_for: float) -> None:
        worker.process.join(wait_for)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.tasks.close()
        worker.results.close()
        worker.process.close()
        shutil.rmtree(worker.tmpdir, ignore_errors=True)
        self.workers.remove(worker)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


_CAUSES = {
    "SIGSEGV": "a crash in native parser code (segmentation fault)",
    "SIGBUS": "a crash in native parser code (bus error)",
    "SIGILL": "a crash in native parser code (illegal instruction)",
    "SIGFPE": "a crash in native parser code (arithmetic error)",
    "SIGABRT": "an abort in native parser code",
    "SIGKILL": "killed from outside, most likely by the out-of-memory killer",
}


def death_message(exitcode: int | None) -> str:
    """Why a worker ended without reporting, in words."""
    if exitcode is None:
        return "Scan worker stopped responding while scanning this file"
    if exitcode < 0:
        name = _signal_name(-exitcode)
        return f"Scan worker died while scanning this file: {name}, {_CAUSES.get(name, 'killed by a signal')}"
    return f"Scan worker died while scanning this file: it exited with status {exitcode}"


# --- the scan ------------------------------------------------------------------------------------------


def scan_isolated(planned: list[Planned], config: ScanConfig, progress: ProgressHook | None = None,
                  notes: list[str] | None = None, method: str | None = None) -> list[FileResult]:
    """Scan the planned files in up to config.jobs worker processes; results in the order of `planned`."""
    method = method or start_method()
    todo = deque(i for i, item in enumerate(planned) if isinstance(item, Task))
    if method is None and todo:
        if notes is not None:
            notes.append("worker processes are not available here: files were scanned in this process")
        log.warning("scanning in this process: worker processes are not available on this platform")
    pool = _Pool(config, method, min(config.jobs, len(todo))) if method and todo else None
    with _sigterm_unwinds():
        try:
            return _dispatch(planned, todo, pool, config, progress)
        finally:
            if pool is not None:
                pool.close()


def _dispatch(planned: list[Planned], todo: deque[int], pool: _Pool | None, config: ScanConfig,
              progress: ProgressHook | None) -> list[FileResult]:
    results = [item if isinstance(item, FileResult) else None for item in planned]
    reported = 0
    while todo or (pool is not None and pool.busy()):
        while todo and (pool is None or pool.can_take()):
            index = todo.popleft()
            for position in range(reported, index + 1):  # progress follows input order
                if progress:
                    progress(position, len(planned), planned[position].path)
            reported = index + 1
            task = planned[index]
            assert isinstance(task, Task)
            if pool is None:
                results[index] = scan_task(task, config)
            else:
                pool.submit(index, task)
        if pool is not None and pool.busy():
            for index, result in pool.collect():
                results[index] = result
    for position in range(reported, len(planned)):
        if progress:
            progress(position, len(planned), planned[position].path)
    done = [r for r in results if r is not None]
    assert len(done) == len(planned)
    return done


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Let SIGTERM unwind the stack, so workers are killed and their temporary files removed."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def unwind(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
