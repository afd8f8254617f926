"""A drop-in consumer's offset store and commits (librdkafka's model).

librdkafka keeps, per partition, a *stored* offset (set as messages are handed to the
application with ``enable.auto.offset.store``, or by ``store_offsets()``) and the
offset it last *committed*. ``commit()`` without arguments and the auto-commit timer
commit the stored offsets that differ from the committed ones; nothing new means
``_NO_OFFSET`` (silently skipped by the timer). Asynchronous commits report their
outcome to ``on_commit(err, partitions)`` from the consumer's next ``poll()``.

Thread-safety: owned by one consumer and used from its thread only.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable

from .. import errors as _errors
from ..records import OffsetAndMetadata
from ..records import TopicPartition as _CoreTP
from ._types import tp_with
from .error import KafkaException, to_kafka_error

__all__ = ["Commits"]

Key = tuple  # (topic, partition): equal to and hashed as mqlog's TopicPartition
Offsets = dict  # {Key: (offset, metadata or None)}


def _ignore(offsets: Any, exc: Any) -> None:
    """mqlog's own commit callback: the outcome is read from the job instead."""


class Commits:
    """Stored offsets, known committed offsets and pending asynchronous commits."""

    def __init__(self, core: Any, faults: Any, on_commit: Callable | None,
                 logger: logging.Logger) -> None:
        self._core = core
        self._faults = faults
        self._on_commit = on_commit
        self._logger = logger
        self.stored: Offsets = {}
        self.committed: dict[Key, int] = {}  # last committed by this consumer
        # Async commits awaiting on_commit: (mqlog job or None, error, offsets).
        self._pending: list[tuple[Any, BaseException | None, Offsets]] = []

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def forget(self, k: Key) -> None:
        self.stored.pop(k, None)
        self.committed.pop(k, None)

    def uncommitted(self, assigned: Iterable[Any], keys: Iterable[Key] | None = None
                    ) -> Offsets:
        """Stored offsets of ``assigned`` partitions (limited to ``keys``) that differ
        from what was committed."""
        wanted = {tuple(tp) for tp in assigned}
        if keys is not None:
            wanted &= set(keys)
        return {k: v for k, v in self.stored.items()
                if k in wanted and v[0] != self.committed.get(k)}

    def _injected(self) -> BaseException | None:
        if not self._faults.armed:
            return None
        err, latency = self._faults.take("commit")
        if latency:
            threading.Event().wait(latency)  # injected latency, not synchronisation
        return err

    @staticmethod
    def _core_offsets(offsets: Offsets) -> dict:
        return {_CoreTP(*k): OffsetAndMetadata(off, meta or "", -1)
                for k, (off, meta) in offsets.items()}

    def commit_now(self, offsets: Offsets) -> None:
        """Commit synchronously.

        Raises:
            KafkaException: the commit failed (or a failure was injected).
        """
        err = self._injected()
        if err is not None:
            raise KafkaException(to_kafka_error(err, "Commit failed: ")) from err
        try:
            self._core.commit(self._core_offsets(offsets))
        except (_errors.MqlogError, ValueError) as exc:
            raise KafkaException(to_kafka_error(exc, "Commit failed: ")) from exc
        for k, (off, _meta) in offsets.items():
            self.committed[k] = off

    def commit_later(self, offsets: Offsets) -> None:
        """Commit asynchronously; :meth:`serve` reports the outcome."""
        job, err = None, self._injected()
        if err is None:
            try:
                job = self._core.commit_async(self._core_offsets(offsets), callback=_ignore)
            except (_errors.MqlogError, ValueError) as exc:
                err = exc
        self._pending.append((job, err, offsets))

    def serve(self, wait: bool) -> None:
        """Report finished asynchronous commits to ``on_commit`` (waiting for the
        unfinished ones with ``wait``).

        Raises:
            Exception: whatever ``on_commit`` raised.
        """
        still, done = [], []
        for job, err, offsets in self._pending:
            if job is not None:
                if wait and not job.done:
                    try:
                        job.wait(30)
                    except Exception:  # its error is read below
                        pass
                if not job.done:
                    still.append((job, err, offsets))
                    continue
                err = job.error
            done.append((err, offsets))
        self._pending = still
        for err, offsets in done:
            kerr = None if err is None else to_kafka_error(err, "Commit failed: ")
            if kerr is None:
                for k, (off, _meta) in offsets.items():
                    self.committed[k] = off
            if self._on_commit is not None:
                self._on_commit(kerr, [tp_with(k[0], k[1], off, meta, error=kerr)
                                       for k, (off, meta) in sorted(offsets.items())])
            elif kerr is not None:
                self._logger.warning("offset commit failed: %s", kerr)
