"""Servers the benchmarks start in child processes: redis-server, mqlog serve, tansu.

:class:`ServerProcess` starts one, drains its output (a full pipe would stall it),
waits for the line saying it is ready and stops it again; :func:`free_port` picks a
port on 127.0.0.1 for servers that cannot pick their own.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
KEPT_LINES = 200  # of the server's first output lines, for the error when it fails
TAIL_LINES = 5  # how many of them the error quotes


class ServerStartError(RuntimeError):
    """The server exited, or did not print its ready line in time; the message says
    which, with its exit code and the end of its output."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (another process may take it
    before the server binds it; the server then fails to start and says so)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server in a child process, running and ready once the constructor returns.

    ``cmd`` runs with stdout and stderr on one pipe that a daemon thread drains; the
    first line matching the regular expression ``ready`` means ready, and its match is
    kept in ``match`` (a server that prints its address there gives it in a group).
    Start and stop from one thread; :meth:`cpu_seconds` may be called from any.

    Raises:
        ServerStartError: from the constructor, when the process exits or prints no
            ready line within ``timeout`` seconds (it is stopped first).
        OSError: the command cannot be run at all.
    """

    def __init__(self, name: str, cmd: list[str], ready: str,
                 timeout: float = START_TIMEOUT_S, cwd: str | None = None) -> None:
        self.name = name
        self.match: re.Match[str] | None = None
        self._pattern = re.compile(ready)
        self._lines: list[str] = []
        self._ready = threading.Event()  # set at the ready line, or when output ends
        self._ended = False  # the output ended (set by the drain thread before _ready)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, cwd=cwd)
        threading.Thread(target=self._drain, name=f"{name}-output", daemon=True).start()
        if not self._ready.wait(timeout) or self.match is None or \
                self.proc.poll() is not None:
            code = self.proc.poll()
            if code is None and self._ended:  # its output ended: it is exiting
                try:
                    code = self.proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    pass
            self.stop()
            tail = "".join(self._lines[-TAIL_LINES:]).strip() or "(no output)"
            what = (f"did not report ready within {timeout:g} s" if code is None
                    else f"exited with code {code} before it reported ready")
            raise ServerStartError(f"{name} {what}: {tail}")

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if len(self._lines) < KEPT_LINES:
                self._lines.append(line)
            if self.match is None:
                m = self._pattern.search(line)
                if m:
                    self.match = m
                    self._ready.set()
        self._ended = True
        self._ready.set()  # exited: let the waiter see it

    def cpu_seconds(self) -> float | None:
        """User+system CPU time of the server process so far (Linux), else None."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Terminate the server (kill it if it outlives ``STOP_TIMEOUT_S``); idempotent."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
