"""The Broker: one LMDB store and everything shared on it.

``mqlog.open(path)`` returns a :class:`Broker`. It owns the store, the topic metadata,
the single writer thread (group commit), the wake-ups of blocked consumers (by
partition, :mod:`mqlog._wakeups`) and the registry of its producers and consumers.
Producers, consumers and the admin are thin handles on a broker; nothing else opens
LMDB.

Lock order (outermost first): ``LogWriter._cond`` -> ``Producer._lock``;
``Broker._lock`` and ``Broker._data_lock`` (shared by ``_data_cond`` and every
waiter's condition) are leaves: never held while waiting for the writer or calling
user code.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import struct
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any, Callable

from . import _store
from ._store import Store
from ._writer import LogWriter
from .config import is_read_committed, validate_topic_config
from .batch import header_fields
from .errors import (
    ClosedError,
    IllegalStateError,
    InvalidPartitionsError,
    InvalidTopicError,
    OffsetOutOfRangeError,
    TopicExistsError,
    UnknownTopicOrPartitionError,
)
from .cleaner import Cleaner, CleanerStats, delete_prefix
from .group import GroupCoordinator, GroupState
from .log import PartitionLog, TopicLog, fetch, load_partition
from ._transactions import TransactionCoordinator
from ._wakeups import Wakeups
from .records import (
    ConsumerRecord,
    FrozenConfig,
    OffsetAndMetadata,
    TopicInfo,
    TopicPartition,
)

__all__ = ["Broker", "open"]

log = logging.getLogger("mqlog")

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_U32 = struct.Struct(">I")
_OFFSET_VALUE = struct.Struct(">qqi")  # offset, commit time ms, leader epoch; + metadata
_MAX_PARTITIONS = 1_000_000

# Every open broker of this process, so a fork can mark them unusable in the child.
_BROKERS: weakref.WeakSet[Broker] = weakref.WeakSet()
_FORK_REASON = ("this broker was opened in process {pid} before a fork(); LMDB cannot be "
                "used across fork: open a new broker in the child process")


def _after_fork_in_child() -> None:
    for broker in list(_BROKERS):
        broker._mark_forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _check_topic_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"topic name must be str, got {type(name).__name__}")
    if name in (".", "..") or not _TOPIC_NAME.fullmatch(name):
        raise InvalidTopicError(
            f"topic name {name!r} is invalid: use 1-249 characters of letters, digits, "
            "'.', '_' and '-' (not '.' or '..')")
    return name


def open(  # noqa: A001 - mirrors the built-in on purpose: mqlog.open(path)
    path: str | os.PathLike | None = None,
    *,
    auto_create_topics: bool = True,
    num_partitions: int = 1,
    fsync: bool | None = None,
    map_size: int | None = None,
    readonly: bool = False,
    cleaner_interval_ms: float | None = 300_000,
) -> Broker:
    """Open (or create) a broker directory; with no path, a temporary broker.

    Args:
        path: directory of the store; None for a fresh temporary directory deleted on
            ``close()`` (flushes skipped: nothing there outlives the process).
        auto_create_topics: create unknown topics on first produce.
        num_partitions: partitions of auto-created topics and the default of
            ``create_topic``.
        fsync: None = flush exactly when a producer's ``acks="all"`` asks for it (never
            for temporary brokers); True = flush every commit; False = never.
        map_size: initial LMDB map size in bytes (it grows on demand).
        readonly: open for inspection only; another process may own the store.
        cleaner_interval_ms: how often the background cleaner applies retention and
            compaction (Kafka's ``log.retention.check.interval.ms``, default 5
            minutes); None: only when ``run_cleaner()`` is called.

    Returns:
        A :class:`Broker` (also a context manager).

    Raises:
        BrokerLockedError: another process (or this one) has the directory open for
            writing.
        FormatVersionError, CorruptStoreError: the store cannot be read safely.
    """
    return Broker(path, auto_create_topics=auto_create_topics, num_partitions=num_partitions,
                  fsync=fsync, map_size=map_size, readonly=readonly,
                  cleaner_interval_ms=cleaner_interval_ms)


class Broker:
    """An embedded Kafka-like broker on one LMDB directory.

    ``Broker`` is thread-safe: share one per process and directory; create producers,
    consumers and admins from it in any thread. Use :func:`mqlog.open` to create one.
    After ``close()`` every method (and every handle made from it) raises
    ``ClosedError``; so does use in a child process after ``fork()``.
    """

    #: What using the broker (or a handle from it) after ``close()`` raises with;
    #: subclasses (the pytest plugin's) say where their brokers go.
    _closed_message = "the broker is closed: open it again with mqlog.open()"

    def __init__(self, path: str | os.PathLike | None = None, *,
                 auto_create_topics: bool = True, num_partitions: int = 1,
                 fsync: bool | None = None, map_size: int | None = None,
                 readonly: bool = False, cleaner_interval_ms: float | None = 300_000
                 ) -> None:
        if not isinstance(num_partitions, int) or isinstance(num_partitions, bool) or \
                not 1 <= num_partitions <= _MAX_PARTITIONS:
            raise InvalidPartitionsError(
                f"num_partitions={num_partitions!r} must be an int from 1 to {_MAX_PARTITIONS}")
        if fsync not in (None, True, False):
            raise TypeError(f"fsync must be None, True or False, got {fsync!r}")
        if cleaner_interval_ms is not None and (
                not isinstance(cleaner_interval_ms, (int, float)) or cleaner_interval_ms <= 0):
            raise ValueError(f"cleaner_interval_ms={cleaner_interval_ms!r} must be a number "
                             "> 0, or None for no background cleaner")
        self.temporary = path is None
        if self.temporary:
            if readonly:
                raise ValueError("readonly=True needs the path of an existing store")
            path = tempfile.mkdtemp(prefix="mqlog-")
        self.path = os.fspath(path)
        self.readonly = readonly
        self.auto_create_topics = auto_create_topics
        self.num_partitions = num_partitions
        self._pid = os.getpid()
        self._closed: str | None = None
        # Guards _topics, _topics_by_id, _groups, _handles and _version changes.
        self._lock = threading.RLock()
        # Consumers blocked in poll() and parked wire Fetches wait on their own waiter,
        # woken for the partitions they read (_wakeups). _data_cond wakes anyone
        # waiting for any change (wait_for_messages); _data_seq counts the changes
        # (read under the lock to avoid lost wake-ups).
        self._data_lock = threading.Lock()
        self._data_cond = threading.Condition(self._data_lock)
        self._data_seq = 0
        self._wakeups = Wakeups(self._data_lock)
        # Aborted-index changes waiting for older reads to end (cleaner.py; writer
        # thread only).
        self._aborted_changes: list[tuple[int, Callable[[], None]]] = []
        self._topics: dict[str, TopicLog] = {}
        self._topics_by_id: dict[int, TopicLog] = {}
        self._groups: dict[str, int] = {}
        self._version = 0  # bumped on every topic change; producers re-route on change
        self._handles: weakref.WeakSet[Any] = weakref.WeakSet()
        self._readonly_txn_id = -1
        self._txns = TransactionCoordinator(self)
        self._faults: Any = None  # created on first use (broker.faults)
        if fsync is None:
            sync_mode = False if self.temporary else None
        else:
            sync_mode = fsync
        try:
            self._store = Store(self.path, readonly=readonly, map_size=map_size,
                                sync=sync_mode is True)
        except BaseException:
            if self.temporary:
                shutil.rmtree(self.path, ignore_errors=True)
            raise
        try:
            self._load()
        except BaseException:
            self._store.close()  # release the directory lock: the open failed
            raise
        self._writer = None if readonly else LogWriter(self, sync_mode)
        self._coordinator = GroupCoordinator(self)
        if self._writer is not None:
            try:
                self._txns.recover()  # abort what a killed process left open
            except BaseException:
                self._writer.stop()
                self._store.close()
                raise
        self._cleaner = None if readonly else Cleaner(
            self, None if cleaner_interval_ms is None else cleaner_interval_ms / 1000.0)
        if self.temporary:
            self._finalizer = weakref.finalize(self, shutil.rmtree, self.path, True)
        _BROKERS.add(self)

    def __repr__(self) -> str:
        kind = "temporary" if self.temporary else ("readonly" if self.readonly else "")
        state = "closed" if self._closed else "open"
        return (f"<mqlog.Broker {self.path!r} {kind + ' ' if kind else ''}{state} "
                f"topics={len(self._topics)}>")

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- state --------------------------------------------------------------------

    def _load(self) -> None:
        """Read topics, partitions and groups from the store."""
        topics: dict[str, TopicLog] = {}
        by_id: dict[int, TopicLog] = {}
        groups: dict[str, int] = {}
        with self._store.read() as txn:
            for key, raw in txn.meta_items(b"t"):
                tid = _U32.unpack_from(key, 1)[0]
                doc = _store.loads_json(raw)
                parts = [load_partition(txn, doc["name"], tid, p)
                         for p in range(doc["partitions"])]
                tlog = TopicLog(doc["name"], tid, FrozenConfig(doc["config"]), parts)
                topics[tlog.name] = tlog
                by_id[tid] = tlog
            for key, raw in txn.meta_items(b"g"):
                groups[raw.decode()] = _U32.unpack_from(key, 1)[0]
            self._txns.load(txn, by_id)
            self._readonly_txn_id = txn.last_txn_id()
        with self._lock:
            self._topics = topics
            self._topics_by_id = by_id
            self._groups = groups
            self._version += 1

    def _refresh_readonly(self) -> bool:
        """Readonly brokers: reload metadata if another process committed since."""
        with self._store.read() as txn:
            txn_id = txn.last_txn_id()
        if txn_id == self._readonly_txn_id:
            return False
        self._load()
        return True

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(self._closed)

    def _check_writable(self) -> None:
        self._check_open()
        if self._writer is None:
            raise IllegalStateError(
                f"broker {self.path!r} was opened with readonly=True: open it without "
                "readonly to write (only one process may own it)")

    def _notify_data(self, partitions: Iterable[PartitionLog] | None = None) -> None:
        """Wake threads waiting for records: those watching ``partitions`` (whose
        records or offsets just changed), or every one (None: a broker-wide change, such
        as a rebalance, a deleted topic or closing). Call after the change is visible."""
        with self._data_lock:
            self._data_seq += 1
            self._data_cond.notify_all()
            self._wakeups.notify(partitions)

    def _register(self, handle: Any) -> None:
        with self._lock:
            self._handles.add(handle)

    def _forget(self, handle: Any) -> None:
        with self._lock:
            self._handles.discard(handle)

    def _mark_forked(self) -> None:
        reason = _FORK_REASON.format(pid=self._pid)
        self._closed = reason
        for handle in list(self._handles):
            handle._mark_closed(reason)
        lock = getattr(self._store, "_lock", None)
        if lock is not None and lock._file is not None:
            # Drop the child's copy of the lock descriptor so the parent's close frees
            # the directory; never touch the LMDB environment here.
            _store._OPEN_PATHS.discard(lock._real)
            lock._file.close()
            lock._file = None
        self._store._env = None

    def _topic(self, name: str) -> TopicLog:
        tlog = self._topics.get(name)
        if tlog is None:
            self._check_open()
            raise UnknownTopicOrPartitionError(
                f"topic {name!r} does not exist: create it with broker.create_topic("
                f"{name!r}) or produce to it with auto_create_topics=True")
        return tlog

    def _partition(self, tp: TopicPartition) -> PartitionLog:
        tlog = self._topic(tp[0])
        p = tp[1]
        if not isinstance(p, int) or not 0 <= p < len(tlog.partitions):
            raise UnknownTopicOrPartitionError(
                f"partition {p!r} does not exist in topic {tp[0]!r} (partitions "
                f"0..{len(tlog.partitions) - 1})")
        return tlog.partitions[p]

    # -- topics -------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int | None = None,
                     config: dict[str, Any] | None = None) -> TopicInfo:
        """Create a topic.

        Args:
            name: 1-249 characters of ``[A-Za-z0-9._-]``, not ``.`` or ``..``.
            partitions: partition count (default: the broker's ``num_partitions``).
            config: topic config overrides with Kafka's keys (``retention.ms``...).

        Returns:
            The new topic's :class:`TopicInfo`.

        Raises:
            InvalidTopicError: bad name. TopicExistsError: the name is taken.
            InvalidPartitionsError: partitions < 1. InvalidConfigError: bad config.
        Durability: the topic is committed (and flushed unless fsync=False) on return.
        """
        self._check_writable()
        _check_topic_name(name)
        count = self.num_partitions if partitions is None else partitions
        if not isinstance(count, int) or isinstance(count, bool) or \
                not 1 <= count <= _MAX_PARTITIONS:
            raise InvalidPartitionsError(
                f"partitions={partitions!r} for topic {name!r} must be an int from 1 to "
                f"{_MAX_PARTITIONS}")
        overrides = FrozenConfig(validate_topic_config(config))

        def prepare(txn: Any) -> int:
            created = txn.scratch.setdefault("created", set())
            if name in self._topics or name in created:
                raise TopicExistsError(
                    f"topic {name!r} already exists: use it, or delete_topic({name!r}) "
                    "first")
            created.add(name)
            tid = txn.next_id(b"t")
            txn.put_meta(b"t" + _U32.pack(tid), _store.dumps_json(
                {"name": name, "partitions": count, "config": dict(overrides)}))
            return tid

        def apply(tid: int) -> TopicInfo:
            tlog = TopicLog(name, tid, overrides,
                            [PartitionLog(name, tid, p) for p in range(count)])
            with self._lock:
                self._topics[name] = tlog
                self._topics_by_id[tid] = tlog
                self._version += 1
            self._coordinator.metadata_changed()
            self._notify_data()  # a poll waiting on a deleted topic of this name
            return tlog.info()

        return self._writer.run(prepare, apply, sync=True)

    def _ensure_topic(self, name: str) -> None:
        """Auto-create ``name`` with the defaults unless it exists (race-free)."""
        try:
            self.create_topic(name)
        except TopicExistsError:
            pass

    def topics(self) -> dict[str, TopicInfo]:
        """Every topic by name.

        Raises:
            ClosedError: the broker is closed.
        """
        self._check_open()
        if self.readonly:
            self._refresh_readonly()
        with self._lock:
            return {name: t.info() for name, t in sorted(self._topics.items())}

    def delete_topic(self, name: str) -> None:
        """Delete a topic with all its records and committed offsets.

        Raises:
            UnknownTopicOrPartitionError: no such topic.
        """
        self._check_writable()
        tlog = self._topic(name)

        def prepare(txn: Any) -> None:
            deleted = txn.scratch.setdefault("deleted", set())
            if self._topics.get(name) is not tlog or name in deleted:
                raise UnknownTopicOrPartitionError(
                    f"topic {name!r} does not exist (deleted meanwhile): nothing to delete")
            deleted.add(name)
            txn.delete_meta(b"t" + _U32.pack(tlog.topic_id))
            for p in range(len(tlog.partitions)):
                txn.delete_meta(b"p" + struct.pack(">II", tlog.topic_id, p))
            txn.delete_topic_data(tlog.topic_id)
            for key, _ in list(txn.meta_items(b"a" + _U32.pack(tlog.topic_id))):
                txn.delete_meta(key)  # its aborted-transaction index

        def apply(_: None) -> None:
            with self._lock:
                self._topics.pop(name, None)
                self._topics_by_id.pop(tlog.topic_id, None)
                self._version += 1
            self._coordinator.metadata_changed()
            self._notify_data()

        self._writer.run(prepare, apply, sync=True)

    def create_partitions(self, name: str, total: int) -> TopicInfo:
        """Grow a topic to ``total`` partitions (Kafka never shrinks a topic).

        Keyed records may map to different partitions afterwards, as in Kafka.

        Raises:
            UnknownTopicOrPartitionError: no such topic.
            InvalidPartitionsError: ``total`` is not larger than the current count.
        """
        self._check_writable()
        tlog = self._topic(name)
        if not isinstance(total, int) or isinstance(total, bool) or total > _MAX_PARTITIONS:
            raise InvalidPartitionsError(f"total={total!r} must be an int <= {_MAX_PARTITIONS}")

        def prepare(txn: Any) -> int:
            doc = self._stored_topic(txn, tlog)
            current = doc["partitions"]  # as this transaction sees it (earlier jobs too)
            if total <= current:
                raise InvalidPartitionsError(
                    f"topic {name!r} has {current} partitions; the new total {total} must "
                    "be larger (partitions can only be added)")
            doc["partitions"] = total
            txn.put_meta(b"t" + _U32.pack(tlog.topic_id), _store.dumps_json(doc))
            return current

        def apply(current: int) -> TopicInfo:
            with self._lock:
                assert len(tlog.partitions) == current, (tlog, current)
                tlog.partitions = tlog.partitions + [
                    PartitionLog(name, tlog.topic_id, p) for p in range(current, total)]
                self._version += 1
            self._coordinator.metadata_changed()
            self._notify_data()  # polls assigned partitions that did not exist yet
            return tlog.info()

        return self._writer.run(prepare, apply, sync=True)

    def messages(self, topic: str, isolation_level: str = "read_uncommitted"
                 ) -> list[ConsumerRecord]:
        """Every stored record of ``topic``, ordered by (partition, offset).

        Meant for assertions in tests. Cost: reads the whole topic into memory.

        Args:
            isolation_level: "read_committed" leaves out records of aborted and open
                transactions. Transaction markers are never included.

        Raises:
            UnknownTopicOrPartitionError: no such topic.
            InvalidConfigError: an unknown isolation level.
        """
        committed = is_read_committed(isolation_level)
        self._check_open()
        if self.readonly:
            self._refresh_readonly()
        tlog = self._topic(topic)
        out: list[ConsumerRecord] = []
        with self._store.read() as txn:
            for plog in tlog.partitions:
                position = plog.log_start
                while position < plog.end_offset:
                    recs, position, _ = fetch(txn, plog, position, 1 << 30,
                                              read_committed=committed)
                    out.extend(recs)
                    if not recs:
                        break
        return out

    def alter_topic_config(self, name: str, config: dict[str, Any]) -> TopicInfo:
        """Set (or, with value None, remove) topic config overrides.

        Raises:
            UnknownTopicOrPartitionError: no such topic.
            InvalidConfigError: an unknown key or a bad value (nothing changes).
        """
        self._check_writable()
        tlog = self._topic(name)
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        removed = [k for k, v in config.items() if v is None]
        updates = validate_topic_config({k: v for k, v in config.items() if v is not None})

        def prepare(txn: Any) -> FrozenConfig:
            # Merge into the stored config, so concurrent alters and partition growth
            # in the same transaction are not lost.
            doc = self._stored_topic(txn, tlog)
            merged = {k: v for k, v in doc["config"].items() if k not in removed}
            merged.update(updates)
            doc["config"] = merged
            txn.put_meta(b"t" + _U32.pack(tlog.topic_id), _store.dumps_json(doc))
            return FrozenConfig(merged)

        def apply(new: FrozenConfig) -> TopicInfo:
            with self._lock:
                tlog.set_config(new)
                self._version += 1  # producers pick up max.message.bytes
            return tlog.info()

        return self._writer.run(prepare, apply, sync=True)

    def _stored_topic(self, txn: Any, tlog: TopicLog) -> dict[str, Any]:
        """The topic's metadata as ``txn`` sees it; refuses a topic deleted meanwhile."""
        raw = txn.meta(b"t" + _U32.pack(tlog.topic_id))
        if self._topics.get(tlog.name) is not tlog or raw is None or \
                tlog.name in txn.scratch.get("deleted", ()):
            raise UnknownTopicOrPartitionError(
                f"topic {tlog.name!r} was deleted meanwhile: create it again first")
        return _store.loads_json(raw)

    # -- retention, compaction, delete_records ------------------------------------

    def run_cleaner(self) -> CleanerStats:
        """Apply retention and compaction to every partition now (and forget
        transactional ids unused for 7 days, Kafka's transactional.id.expiration.ms).

        Returns:
            A :class:`~mqlog.cleaner.CleanerStats`: batches deleted, records removed by
            compaction, bytes reclaimed, partitions cleaned.
        """
        self._check_writable()
        return self._cleaner.run()

    def delete_records(self, tp: TopicPartition, before_offset: int) -> int:
        """Make ``before_offset`` the partition's log start: records below it are gone.

        Whole batches below it are deleted; offsets are never renumbered. -1 means the
        end of the log (delete everything), as in Kafka.

        Returns:
            The new log start offset (Kafka's low watermark).

        Raises:
            OffsetOutOfRangeError: ``before_offset`` is beyond the end of the log.
        """
        self._check_writable()
        tlog = self._topic(tp[0])
        plog = self._partition(tp)
        if before_offset == -1:
            before_offset = plog.end_offset
        if not isinstance(before_offset, int) or isinstance(before_offset, bool) or \
                not 0 <= before_offset <= plog.end_offset:
            raise OffsetOutOfRangeError(
                f"delete_records offset {before_offset!r} for {tp[0]}[{tp[1]}] is outside "
                f"0..{plog.end_offset}: pass an offset up to the end of the log, or -1",
                {TopicPartition(*tp): plog.end_offset})
        if before_offset <= plog.log_start:
            return plog.log_start
        doomed = []
        first_kept = before_offset
        with self._store.read(buffers=True) as txn:
            for base, raw in txn.batches(plog.topic_id, plog.partition, plog.log_start):
                fields = header_fields(raw)
                if base + fields[4] + 1 > before_offset:
                    first_kept = min(base, before_offset)
                    break
                doomed.append((base, len(raw)))
        delete_prefix(self, tlog, plog, doomed, before_offset, first_kept)
        return plog.log_start

    # -- groups and committed offsets ----------------------------------------------

    def _group_id_in(self, txn: Any, group: str) -> int:
        """The u32 id of ``group``, allocated in ``txn`` if it is new."""
        gid = self._groups.get(group)
        if gid is None or group in txn.scratch.get("deleted_groups", ()):
            new = txn.scratch.setdefault("groups", {})
            gid = new.get(group)
            if gid is None:
                gid = new[group] = txn.next_id(b"g")
                txn.put_meta(b"g" + _U32.pack(gid), group.encode())
        return gid

    def _adopt_groups(self, txn_groups: dict[str, int]) -> None:
        with self._lock:
            self._groups.update(txn_groups)

    def commit_offsets(self, group: str,
                       offsets: dict[TopicPartition, OffsetAndMetadata | int],
                       *, sync: bool = False, check: Callable[[], None] | None = None
                       ) -> None:
        """Store committed offsets for ``group`` (the *next* offset to read).

        Used by consumers (``Consumer.commit``) and the admin.

        Args:
            check: run inside the write transaction before anything is written (the
                group coordinator's fencing); raising refuses the commit.

        Raises:
            UnknownTopicOrPartitionError: a partition does not exist.
            ValueError/TypeError: an offset is not an int >= 0.
            CommitFailedError: ``check`` refused it.
        """
        self.commit_offsets_async(group, offsets, sync=sync, check=check).wait()

    def commit_offsets_async(self, group: str,
                             offsets: dict[TopicPartition, OffsetAndMetadata | int],
                             *, sync: bool = False,
                             check: Callable[[], None] | None = None) -> Any:
        """Queue an offset commit; returns a job whose ``wait()`` gives the outcome."""
        self._check_writable()
        rows = list(self._offset_rows(offsets).values())

        def prepare(txn: Any) -> dict[str, int]:
            if check is not None:
                check()
            gid = self._group_id_in(txn, group)
            for tid, part, value in rows:
                txn.put_offset(gid, tid, part, value)
            return dict(txn.scratch.get("groups", {}))  # a copy: later jobs may change it

        return self._writer.submit(prepare, self._adopt_groups, sync=sync)

    def _pending_txn_offsets(self, group: str) -> set[TopicPartition]:
        """Partitions of ``group`` whose offsets an open transaction of an in-process
        producer staged (``send_offsets_to_transaction``) and has not yet committed or
        aborted (KIP-447's unstable offsets; ``mqlog serve`` adds its wire clients')."""
        with self._lock:
            handles = list(self._handles)
        out: set[TopicPartition] = set()
        for handle in handles:
            staged = getattr(handle, "_txn_offsets", None)  # producers only
            entry = staged.get(group) if staged else None
            if entry:
                out.update(entry[0])  # replaced whole, never changed in place
        return out

    def _offset_rows(self, offsets: dict[TopicPartition, OffsetAndMetadata | int]
                     ) -> dict[TopicPartition, tuple[int, int, bytes]]:
        """Validate offsets to commit; per partition its ``offsets`` row.

        Raises:
            UnknownTopicOrPartitionError: a partition does not exist.
            ValueError: an offset is not an int >= 0.
        """
        if not isinstance(offsets, dict):
            raise TypeError(f"offsets must be a dict {{TopicPartition: offset}}, got "
                            f"{type(offsets).__name__}")
        rows = {}
        now = time.time_ns() // 1_000_000
        for tp, om in offsets.items():
            plog = self._partition(tp)
            if isinstance(om, int) and not isinstance(om, bool):
                om = OffsetAndMetadata(om, "", -1)
            if not isinstance(om, tuple) or not isinstance(om[0], int) or om[0] < 0:
                raise ValueError(f"offset {om!r} for {tp} is invalid: commit an int >= 0 "
                                 "(the next offset to read) or OffsetAndMetadata")
            meta = (om[1] or "") if len(om) > 1 else ""
            epoch = om[2] if len(om) > 2 and om[2] is not None else -1
            rows[TopicPartition(*tp)] = (
                plog.topic_id, plog.partition,
                _OFFSET_VALUE.pack(om[0], now, epoch) + str(meta).encode())
        return rows

    def committed_offset(self, group: str, tp: TopicPartition) -> OffsetAndMetadata | None:
        """The offset ``group`` committed for ``tp``, or None."""
        self._check_open()
        if self.readonly:
            self._refresh_readonly()
        plog = self._partition(tp)
        gid = self._groups.get(group)
        if gid is None:
            return None
        with self._store.read() as txn:
            raw = txn.get_offset(gid, plog.topic_id, plog.partition)
        if raw is None:
            return None
        offset, _when, epoch = _OFFSET_VALUE.unpack_from(raw)
        return OffsetAndMetadata(offset, raw[_OFFSET_VALUE.size:].decode(), epoch)

    def group_offsets(self, group: str) -> dict[TopicPartition, OffsetAndMetadata]:
        """Every offset ``group`` committed, for partitions that still exist."""
        self._check_open()
        if self.readonly:
            self._refresh_readonly()
        gid = self._groups.get(group)
        if gid is None:
            return {}
        out = {}
        with self._store.read() as txn:
            for tid, part, raw in txn.group_offsets(gid):
                tlog = self._topics_by_id.get(tid)
                if tlog is None or part >= len(tlog.partitions):
                    continue
                offset, _when, epoch = _OFFSET_VALUE.unpack_from(raw)
                out[TopicPartition(tlog.name, part)] = OffsetAndMetadata(
                    offset, raw[_OFFSET_VALUE.size:].decode(), epoch)
        return out

    def delete_committed_offsets(
            self, group: str, partitions: Iterable[TopicPartition], *,
            check: Callable[[], None] | None = None,
            spare: Callable[[], set[TopicPartition]] | None = None,
    ) -> list[TopicPartition]:
        """Delete ``group``'s committed offsets for ``partitions`` (one atomic write);
        returns the partitions that had one. Unknown groups and partitions of deleted
        topics have nothing to delete.

        Args:
            check: run inside the write transaction first; raising refuses it all.
            spare: run inside the write transaction (perhaps more than once); the
                partitions it returns keep their offsets.
        """
        self._check_writable()
        wanted = [TopicPartition(*tp) for tp in partitions]

        def prepare(txn: Any) -> list[TopicPartition]:
            if check is not None:
                check()
            spared = spare() if spare is not None else set()
            gid = txn.scratch.get("groups", {}).get(group, self._groups.get(group))
            if gid is None:
                return []
            deleted = []
            for tp in wanted:
                if tp in spared:
                    continue
                tlog = self._topics.get(tp.topic)
                if tlog is not None and 0 <= tp.partition < len(tlog.partitions) and \
                        txn.delete_offset(gid, tlog.topic_id, tp.partition):
                    deleted.append(tp)
            return deleted

        return self._writer.run(prepare, sync=True)

    def _group_states(self) -> dict[str, str]:
        """Group id -> state of every group with members or committed offsets."""
        states = self._coordinator.active_groups()
        for gid in self._group_names():
            states.setdefault(gid, GroupState.EMPTY.value)
        return states

    def delete_group(self, group: str) -> None:
        """Delete a group's committed offsets; refused while it has members.

        Raises:
            IllegalStateError: the group has active members. (Deleting a group that
                does not exist does nothing.)
        """
        self._check_writable()
        if not self._coordinator.mark_dead(group):
            raise IllegalStateError(
                f"group {group!r} has active members: close its consumers before "
                "deleting it")

        def prepare(txn: Any) -> int | None:
            gid = txn.scratch.get("groups", {}).get(group, self._groups.get(group))
            txn.scratch.setdefault("deleted_groups", set()).add(group)
            txn.scratch.get("groups", {}).pop(group, None)
            if gid is None:
                return None
            txn.delete_group_offsets(gid)
            txn.delete_meta(b"g" + _U32.pack(gid))
            return gid

        def apply(gid: int | None) -> None:
            with self._lock:
                if gid is not None and self._groups.get(group) == gid:
                    del self._groups[group]

        self._writer.run(prepare, apply, sync=True)

    def _group_names(self) -> list[str]:
        with self._lock:
            return list(self._groups)

    # -- handles ------------------------------------------------------------------

    @property
    def faults(self) -> Any:
        """This broker's :class:`~mqlog.faults.Faults` registry: failures and latency
        injected into the drop-in clients (tests)."""
        faults = self._faults
        if faults is None:
            from .faults import Faults

            with self._lock:
                if self._faults is None:
                    self._faults = Faults(self)
                faults = self._faults
        return faults

    def admin(self) -> Any:
        """A new :class:`~mqlog.admin.Admin` for topics and consumer groups."""
        from .admin import Admin

        self._check_open()
        a = Admin(self)
        self._register(a)
        return a

    def producer(self, **config: Any) -> Any:
        """A new :class:`~mqlog.producer.Producer` (keyword config as kafka-python's).

        Raises:
            IllegalStateError: the broker is readonly. ClosedError: it is closed.
            InvalidConfigError: a bad setting.
        """
        from .producer import Producer

        self._check_writable()
        p = Producer(self, **config)
        self._register(p)
        return p

    def consumer(self, *topics: str, **config: Any) -> Any:
        """A new :class:`~mqlog.consumer.Consumer` (keyword config as kafka-python's).

        With topics given, the consumer subscribes to them (group management).
        """
        from .consumer import Consumer

        self._check_open()
        c = Consumer(self, *topics, **config)
        self._register(c)
        return c

    def serve(self, host: str = "127.0.0.1", port: int = 9092, **opts: Any) -> Any:
        """Serve this broker over the Kafka protocol, in background threads.

        Any Kafka client connects to ``handle.bootstrap_servers``; see docs/serve.md.

        Args:
            host: address to bind; loopback by default, another needs
                ``allow_remote=True``.
            port: port to bind; 0 picks a free one (``handle.port``).
            **opts: the other fields of :class:`mqlog.server.ServerConfig`.

        Returns:
            A :class:`mqlog.server.ServerHandle`; ``close()`` it (or close the broker)
            to stop serving.

        Raises:
            ImportError: the ``kio`` package is missing: ``pip install 'mqlog[serve]'``.
            ValueError: a bad option. OSError: the address cannot be bound.
            IllegalStateError: the broker is readonly. ClosedError: it is closed.
        """
        from .server import serve

        return serve(self, host, port, **opts)

    # -- lifecycle ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return bool(self._closed)

    def close(self) -> None:
        """Flush producers, close consumers, stop the writer, close the store. Idempotent.

        A temporary broker's directory is deleted.
        """
        if self._closed:
            return
        if os.getpid() != self._pid:
            self._mark_forked()
            return
        with self._lock:
            handles = list(self._handles)
        for handle in handles:
            try:
                handle.close()
            except Exception:
                log.exception("closing %r failed", handle)
        self._closed = self._closed_message
        for handle in handles:
            handle._mark_closed(self._closed)
        if self._cleaner is not None:
            self._cleaner.stop()
        if self._writer is not None:
            self._writer.stop()
        self._notify_data()
        self._store.close()
        _BROKERS.discard(self)
        if self.temporary:
            self._finalizer()

    def _check(self) -> None:
        """Assert every partition's invariants against the store (tests, `mqlog check`)
        and the groups' ownership invariant."""
        for tlog in list(self._topics.values()):
            dense = "compact" not in tlog.config.get("cleanup.policy", "delete")
            for plog in tlog.partitions:
                plog._check(self._store, dense)
        self._coordinator._check()
