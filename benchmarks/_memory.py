"""A process's private memory, as compare.py and growth.py measure it (Linux only).

Issue #9 asks for memory as private memory: anonymous resident memory (``RssAnon`` in
/proc/self/status: the heap, buffers, the records held) and USS (``Private_Clean`` +
``Private_Dirty`` in /proc/self/smaps_rollup). LMDB's mapped file pages are page cache,
not the process's memory, yet USS counts those that no other process maps, so the
scripts judge memory on RssAnon and print USS beside it. Each figure comes from a
fresh child process running one workload (:func:`run_child`), so nothing an earlier
workload left behind is counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

SAMPLE_S = 0.005  # the peak sampler's period: spikes shorter than this can be missed
JOIN_TIMEOUT_S = 10.0


def available() -> str | None:
    """None when the figures can be read here, else why not."""
    if not os.path.exists("/proc/self/smaps_rollup"):
        return "no /proc/self/smaps_rollup (Linux 4.14+ only)"
    return None


def rss_anon_kib() -> int:
    """This process's anonymous resident memory (RssAnon), KiB.

    Raises:
        OSError: /proc/self/status is missing or has no RssAnon line (not Linux).
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise OSError("no RssAnon in /proc/self/status: private memory is measured on "
                  "Linux only")


def uss_kib() -> int:
    """This process's unique set size (private clean + dirty pages, file pages only
    this process maps included), KiB.

    Raises:
        OSError: no /proc/self/smaps_rollup (not Linux 4.14 or later).
    """
    total = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


class PeakSampler:
    """The peak RssAnon while it runs: a daemon thread reads it every ``SAMPLE_S``.

    Start it just before the workload, call :meth:`stop` right after. Not thread-safe:
    one owner starts and stops it; only its own thread writes ``peak`` until then.
    """

    def __init__(self, first: int | None = None) -> None:
        """``first``: a reading just taken (the workload's ``before``), else one now."""
        self.peak = rss_anon_kib() if first is None else first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.peak = max(self.peak, rss_anon_kib())

    def stop(self, last: int | None = None) -> int:
        """Stop sampling; the peak including ``last`` (a reading just taken, the
        workload's ``after``) or a final reading now. Idempotent."""
        self._stop.set()
        self._thread.join(JOIN_TIMEOUT_S)
        self.peak = max(self.peak, rss_anon_kib() if last is None else last)
        return self.peak


def run_child(script: str, args: list[str], what: str) -> dict:
    """Run ``python script *args`` (the script's hidden ``--memory-child`` mode) in a
    fresh interpreter and return the JSON object its last line of output holds.

    Raises:
        RuntimeError: the child exited non-zero; the message names ``what`` it ran and
            ends with its stderr.
    """
    proc = subprocess.run([sys.executable, os.path.abspath(script), *args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the memory child for {what} exited {proc.returncode}: "
                           f"{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
