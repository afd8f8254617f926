"""The interface of the systems that benchmarks/compare.py puts side by side.

Each :class:`System` names itself, says which workloads it has an API for, checks that
it can run here (:meth:`System.start` raises :class:`Unavailable` with the reason when
not: a package is missing, a server binary is not installed) and opens fresh stores.
A system is one configuration: a durable flavour (fsync before a write is acknowledged:
mqlog with ``acks="all"``, SQLite with ``synchronous=FULL``, Redis with an fsync-always
append-only file) is a system of its own, in the same ``family``.

A :class:`Store` is one empty queue, log, table or stream in its own directory; the
benchmark times exactly one call on it:

- ``send(values, keys)``: hand over the records one call per record, the way a user
  of that system produces, and return once the system holds all of them (flushed,
  committed or acknowledged, as the system defines it);
- ``send_batch(values)``: the system's batched write, 1,000 records per call or
  transaction (``BATCH``; the floor packs and commits as ``LmdbFloor`` says);
- ``poll(n)``: read back the ``n`` records the previous ``send(values, None)`` wrote,
  in order, the way a consumer of that system reads; returns ``(count, first value,
  last value)`` so the caller can check the result;
- ``send_threads(values, threads, wait)``: ``threads`` threads, each with its own
  share of ``values`` (contiguous slices); each sends its records one call per record
  and either pipelines them, waiting at the end (``wait=False``: mqlog flushes; SQLite
  commits every ``BATCH``; Redis executes a pipeline every ``BATCH``), or waits for
  each record's acknowledgement before the next (``wait=True``); ``count()`` then says
  how many records the store holds;
- ``consume_group(n, consumers)``: after ``fill(values, partitions)`` (untimed: the
  records spread over ``partitions`` partitions of a source topic, or one stream),
  ``consumers`` threads in one consumer group read until the group has read all ``n``;
  returns the number of records read (more than ``n`` only if a rebalance re-delivered
  some);
- ``transform(n, guarantee)``: after ``fill(values, 1)``, consume the ``n`` source
  records, upper-case each value and write it to a sink, in transactions of ``BATCH``
  inputs with the named delivery guarantee; ``read_output(n)`` (untimed) reads the
  sink back as ``poll`` does.

Stores are used from the thread that opened them; ``send_threads`` and
``consume_group`` start and join their own threads (each with its own client or
connection where the system needs one). Nothing here measures time; compare.py does.

The systems: mqlog and the raw py-lmdb floor in _lmdb_systems.py; SQLite, mockafka-py,
lmdb-queue and persist-queue in _peers.py; Redis Streams in _redis.py. compare.py's
``all_systems()`` lists them in the order of its tables.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the systems' modules import mqlog from this checkout
    sys.path.insert(0, ROOT)

TOPIC = "bench"
SOURCE = "source"  # consume_group and transform read this topic / stream / table
SINK = "sink"  # transform writes this one
GROUP = "bench-group"
BATCH = 1000  # records per batched call / transaction, for every system that batches
READ = 500  # records per read call (mqlog's max_poll_records default)
THREAD_TIMEOUT_S = 600.0  # a watchdog for benchmark threads, never reached in a good run
GUARANTEES = ("at_least_once", "exactly_once")

Result = tuple[int, bytes | None, bytes | None]  # (count, first value, last value)


class Unavailable(Exception):
    """The system cannot run on this machine; the message says why."""


def dist_version(dist: str) -> str:
    """The installed version of the distribution ``dist``, or ``?``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def require(module: str, dist: str, pip: str | None = None) -> ModuleType:
    """Import ``module`` for a system's :meth:`System.start`.

    Raises:
        Unavailable: it is not installed; the message names the distribution ``dist``
            and the ``pip install`` (of ``pip``, by default ``dist``) that fixes it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(f"{dist} is not installed ({exc}); pip install {pip or dist}") \
            from None


def chunks(seq: Sequence, size: int) -> list[Sequence]:
    """``seq`` cut into consecutive slices of ``size`` (the last one may be shorter)."""
    return [seq[i:i + size] for i in range(0, len(seq), size)]


def shares(seq: Sequence, parts: int) -> list[Sequence]:
    """``seq`` cut into ``parts`` contiguous slices whose lengths differ by at most 1."""
    bounds = [len(seq) * i // parts for i in range(parts + 1)]
    return [seq[a:b] for a, b in zip(bounds, bounds[1:])]


def run_threads(target: Callable[[Any], None], args: Sequence[Any]) -> None:
    """Run ``target(arg)`` in one thread per arg, join them all, re-raise the first error.

    Raises:
        RuntimeError: a thread was still running after ``THREAD_TIMEOUT_S`` (a hang).
    """
    errors: list[BaseException] = []

    def guarded(arg: Any) -> None:
        try:
            target(arg)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(a,), daemon=True) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(THREAD_TIMEOUT_S)
        if t.is_alive():
            raise RuntimeError(f"a benchmark thread ran over {THREAD_TIMEOUT_S:g} s")
    if errors:
        raise errors[0]


def start_each(candidates: Iterable[Any], progress: Callable[[str], None]
               ) -> tuple[list[Any], dict[str, str]]:
    """Start each candidate (a :class:`System`, or anything with a ``name``, ``start()``
    and ``stop()``) in order.

    Returns the started ones, and by name the reason each other one cannot run here
    (its :class:`Unavailable`, also printed with ``progress``). Any other error stops
    the ones started so far and propagates.
    """
    running: list[Any] = []
    skipped: dict[str, str] = {}
    try:
        for candidate in candidates:
            try:
                candidate.start()
            except Unavailable as exc:
                skipped[candidate.name] = str(exc)
                progress(f"skipping {candidate.name}: {exc}")
                continue
            running.append(candidate)
    except BaseException:
        for candidate in running:
            candidate.stop()
        raise
    return running, skipped


def upper(value: bytes) -> bytes:
    """The pipelines' transform: every system applies exactly this to each value."""
    return value.upper()


class Store:
    """One fresh, empty store of a system in ``path`` (see the module docstring)."""

    def send(self, values: Sequence[bytes], keys: Sequence[bytes] | None) -> None:
        raise NotImplementedError

    def send_batch(self, values: Sequence[bytes]) -> None:
        raise NotImplementedError

    def poll(self, n: int) -> Result:
        raise NotImplementedError

    def send_threads(self, values: Sequence[bytes], threads: int, wait: bool) -> None:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def fill(self, values: Sequence[bytes], partitions: int) -> None:
        raise NotImplementedError

    def consume_group(self, n: int, consumers: int) -> int:
        raise NotImplementedError

    def transform(self, n: int, guarantee: str) -> None:
        raise NotImplementedError

    def read_output(self, n: int) -> Result:
        raise NotImplementedError

    def close(self) -> None:
        """Release everything the store holds (idempotent)."""


class System:
    """A system under comparison, in one configuration.

    Attributes:
        name: the row label (unique).
        family: the product, shared by its configurations ("SQLite" for both of its).
        durable: True when a write is on disk (fsynced) before it is acknowledged;
            compare.py puts durable systems in the acks=all tables.
        workloads: which workloads it has an API for (keys of compare.py's HEADERS).
        how: one line per workload saying what the store calls (for the docs).
        absent: per table of compare.py (by key), why the family is not in it.
        scaled: whether the benchmark may run it on fewer records than mqlog to bound
            its time (slow peers).
    """

    name = ""
    family = ""
    durable = False
    workloads: tuple[str, ...] = ()
    how: dict[str, str] = {}
    absent: dict[str, str] = {}
    scaled = True

    def start(self) -> None:
        """Check that the system can run here (and start its server).

        Raises:
            Unavailable: it cannot; the message says why and what would fix it.
        """

    def stop(self) -> None:
        """Stop whatever :meth:`start` started (idempotent)."""

    def versions(self) -> list[tuple[str, str]]:
        """``(component, version)`` pairs to print; called after :meth:`start`."""
        return []

    def open(self, path: str) -> Store:
        """A fresh, empty store in the existing, empty directory ``path``."""
        raise NotImplementedError

