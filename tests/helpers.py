"""Helpers shared by the tests (subprocesses, threads)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code: str, *args: str, timeout: float = 60, check: bool = True,
               **kwargs) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with mqlog importable."""
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=timeout, env=child_env(), **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def finish(child: subprocess.Popen, timeout: float = 30) -> tuple[str, str]:
    """Wait for a child whose stdout was partly read line by line (``for line in
    child.stdout``); return the rest of its stdout and its stderr.

    Unlike ``communicate()``, which reads the raw pipe, this also returns the lines the
    text reader had already buffered but not yet handed out — after a ``break`` they
    would otherwise be lost (and a kill test would miscount what the child did).
    """
    timer = threading.Timer(timeout, child.kill)
    timer.start()
    try:
        rest = child.stdout.read()
        err = child.stderr.read() if child.stderr is not None else ""
        child.wait()
    finally:
        timer.cancel()
    return rest, err


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_in_thread(fn, *args, timeout: float = 10.0, name: str | None = None):
    """Run ``fn`` in a thread (named ``name``); return (thread, box) where box holds
    result/error."""
    box: dict = {}

    def target() -> None:
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True, name=name)
    t.start()
    return t, box


class FakeClock:
    """A monotonic clock that tests advance by hand (the coordinator's seam)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def in_one_transaction(broker, *calls) -> list:
    """Run ``calls`` (zero-argument callables that each submit one writer job) so that
    their jobs land in the same write transaction: the writer is held until every job
    is queued, in the order given. Returns each call's result or raised exception."""
    results: list = [None] * len(calls)

    def run(i, fn):
        try:
            results[i] = fn()
        except BaseException as exc:  # handed to the test
            results[i] = exc

    threads = []
    with broker._writer.paused():
        for i, fn in enumerate(calls):
            t = threading.Thread(target=run, args=(i, fn), daemon=True)
            t.start()
            threads.append(t)
            while len(broker._writer._jobs) < i + 1:  # queued before the next one starts
                t.join(0.01)
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    return results
