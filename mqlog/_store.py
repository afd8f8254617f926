"""LMDB storage: the only module that imports ``lmdb``.

Layout (named databases; keys fixed-width big-endian so byte order is numeric order)::

    meta     b"v"                      -> u32 on-disk format version
             b"M"                      -> marker (a store mqlog created and initialised)
             b"n" + name               -> u32 id counters (b"nt" topics, b"ng" groups)
             b"t" + u32 topic_id       -> JSON {name, partitions, config}
             b"p" + u32 topic_id + u32 partition -> u64 log start offset
             b"g" + u32 group_id       -> UTF-8 group name
    log      u32 topic_id | u32 partition | u64 base_offset -> record batch
    tindex   u32 topic_id | u32 partition | u64 max_timestamp -> u64 base_offset
    offsets  u32 group_id | u32 topic_id | u32 partition -> committed offset record

User strings (topic names, group ids) never appear in keys (LMDB keys are limited to
511 bytes): they get u32 ids in ``meta``.

Migration note: format version 1 is the first; a store with any other version is
refused with :class:`FormatVersionError` rather than misread. A future version bumps
``FORMAT_VERSION`` and adds an explicit migration step in :meth:`Store._init_or_check`.

Thread-safety: :class:`Store` is thread-safe. Writes are serialised by LMDB's writer
mutex (and in practice come from the broker's single writer thread); read transactions
may run in any thread. Lock order: ``_gate`` is a leaf lock, never held while taking
another lock or while waiting on anything but itself.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import lmdb

from .errors import (
    BrokerLockedError,
    CorruptStoreError,
    DiskFullError,
    FormatVersionError,
    MqlogError,
)

__all__ = ["FORMAT_VERSION", "ReadTxn", "Store", "WriteTxn"]

FORMAT_VERSION = 1
_MARKER = b"mqlog store"
LOCK_FILE = "mqlog.lock"
_DEFAULT_MAP_SIZE = 1 << 30  # address space only: the file grows with use

LOG_KEY = struct.Struct(">IIQ")
OFFSETS_KEY = struct.Struct(">III")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_PART = struct.Struct(">II")

T = TypeVar("T")

# Paths this process holds open for writing (flock also conflicts within one process,
# but this gives the clearer message). Guarded by _OPEN_LOCK.
_OPEN_PATHS: set[str] = set()
_OPEN_LOCK = threading.Lock()


def _translate(exc: Exception, path: str) -> MqlogError:
    """Turn an lmdb error into mqlog's tree (no lmdb type leaves this module)."""
    if isinstance(exc, (lmdb.DiskError, OSError)) or "No space" in str(exc) or (
        "Input/output" in str(exc)
    ):
        free = shutil.disk_usage(path).free if os.path.exists(path) else -1
        # LMDB reports ENOSPC as a generic EIO; a nearly full disk tells them apart.
        if getattr(exc, "errno", None) == errno.ENOSPC or 0 <= free < (64 << 20):
            return DiskFullError(
                f"the disk holding {path} is full ({free} bytes free): free space or "
                "apply retention; nothing committed earlier was touched"
            )
    if isinstance(exc, lmdb.CorruptedError):
        return CorruptStoreError(f"LMDB reports corruption in {path}: {exc}")
    return MqlogError(f"storage error in {path}: {exc}")


def check_data_file(path: str) -> None:
    """Refuse a damaged ``data.mdb`` before LMDB maps it.

    A truncated file kills the process with SIGBUS when LMDB touches a page past its end,
    and a 0-byte file opens as an empty store; both are caught here from the meta pages.

    Raises:
        CorruptStoreError: the file is empty, too short for its own meta pages, or not
            an LMDB file.
    """
    data = os.path.join(path, "data.mdb")
    try:
        size = os.path.getsize(data)
    except FileNotFoundError:
        return
    if size == 0:
        raise CorruptStoreError(
            f"{data} is empty (0 bytes): the store was lost or truncated; restore it from "
            "a copy, or remove the directory to start an empty store"
        )
    with open(data, "rb") as f:
        head = f.read(65536 * 2)
    best = None
    # Meta pages 0 and 1; the page size lives in the free-list DB record (md_pad).
    # MDB_meta after the 16-byte page header: magic u32, version u32, address, mapsize,
    # two 48-byte MDB_db records, last_pg, txnid.
    psize = struct.unpack_from("<I", head, 40)[0] if len(head) >= 44 else 0
    for page in (0, 1):
        off = page * psize
        if psize < 512 or len(head) < off + 152:
            break
        magic, _version = struct.unpack_from("<II", head, off + 16)
        if magic != 0xBEEFC0DE:
            continue
        last_pg, txnid = struct.unpack_from("<QQ", head, off + 136)
        if best is None or txnid > best[1]:
            best = (last_pg, txnid)
    if best is None:
        raise CorruptStoreError(
            f"{data} ({size} bytes) is not an LMDB data file (no valid meta page); restore "
            "the store from a copy"
        )
    need = (best[0] + 1) * psize
    if size < need:
        raise CorruptStoreError(
            f"{data} is truncated: {size} bytes, but its meta page needs {need}; restore "
            "the store from a copy"
        )


def _refuse_symlinks(path: str) -> None:
    """Refuse store files that are symbolic links (they could point anywhere).

    Raises:
        CorruptStoreError: naming the link.
    """
    for name in ("data.mdb", "lock.mdb", LOCK_FILE):
        full = os.path.join(path, name)
        if os.path.islink(full):
            raise CorruptStoreError(
                f"{full} is a symbolic link (to {os.readlink(full)!r}); mqlog refuses "
                "linked store files: replace it with the real file")


class _DirectoryLock:
    """An exclusive OS lock (``flock``) on ``DIR/mqlog.lock`` holding the owner's pid."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = None

    def acquire(self) -> None:
        real = os.path.realpath(self.path)
        with _OPEN_LOCK:
            if real in _OPEN_PATHS:
                raise BrokerLockedError(
                    f"{self.path} is already open in this process (pid {os.getpid()}): "
                    "share that broker instead of opening the directory twice"
                )
            lock_path = os.path.join(self.path, LOCK_FILE)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            f = os.fdopen(fd, "r+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = f.read().strip() or "unknown"
                f.close()
                raise BrokerLockedError(
                    f"{self.path} is owned for writing by process {owner}: open it with "
                    "readonly=True to inspect it, or stop that process (`mqlog serve` lets "
                    "other processes produce and consume through the owner)"
                ) from None
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            self._file = f
            _OPEN_PATHS.add(real)
            self._real = real

    def release(self) -> None:
        if self._file is None:
            return
        with _OPEN_LOCK:
            _OPEN_PATHS.discard(self._real)
            try:
                self._file.close()  # closing the descriptor releases the flock
            finally:
                self._file = None


def _seek_last(cur: Any, topic_id: int, partition: int) -> bool:
    """Position ``cur`` on the last key of ``(topic_id, partition)``; False if none."""
    if cur.set_range(LOG_KEY.pack(topic_id, partition + 1, 0)):
        ok = cur.prev()
    else:
        ok = cur.last()
    return ok and cur.key()[:8] == _PART.pack(topic_id, partition)


class _Reading:
    """What :meth:`Store.read` returns: enters the store as a reader and begins a read
    transaction on ``with``; aborts it and leaves on exit. (A class rather than a
    generator-based context manager: reads are on every poll, and this costs a third.)
    """

    __slots__ = ("_store", "_buffers", "_txn")

    def __init__(self, store: Store, buffers: bool) -> None:
        self._store = store
        self._buffers = buffers
        self._txn: Any = None

    def __enter__(self) -> ReadTxn:
        store = self._store
        store._enter_reader()
        try:
            self._txn = store._begin_read(self._buffers)
        except BaseException:
            store._exit_reader()
            raise
        return ReadTxn(self._txn, store)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        store = self._store
        try:
            self._txn.abort()
        except lmdb.Error as abort_exc:
            if exc is None:
                raise _translate(abort_exc, store.path) from abort_exc
        finally:
            self._txn = None
            store._exit_reader()
        if exc is not None and isinstance(exc, lmdb.Error):
            raise _translate(exc, store.path) from exc


class ReadTxn:
    """A short read transaction; bytes returned are copies, valid after it ends."""

    __slots__ = ("_txn", "_store")

    def __init__(self, txn: Any, store: Store) -> None:
        self._txn = txn
        self._store = store

    def batches(self, topic_id: int, partition: int, from_offset: int) -> Iterator[
            tuple[int, bytes]]:
        """Yield ``(base_offset, batch)`` from the batch holding ``from_offset`` on.

        Starts at the last batch whose base offset is <= ``from_offset`` (it may end
        before ``from_offset`` when compaction left a gap; callers skip such records).
        """
        cur = self._txn.cursor(self._store._log)
        prefix = _PART.pack(topic_id, partition)
        found = cur.set_range(LOG_KEY.pack(topic_id, partition, from_offset))
        if found:
            key = cur.key()
            if key[:8] != prefix or _U64.unpack_from(key, 8)[0] > from_offset:
                found = cur.prev() and cur.key()[:8] == prefix
                if not found:
                    found = cur.set_range(LOG_KEY.pack(topic_id, partition, from_offset))
        elif cur.last():
            found = cur.key()[:8] == prefix
        while found:
            key = cur.key()
            if key[:8] != prefix:
                return
            yield _U64.unpack_from(key, 8)[0], cur.value()
            found = cur.next()

    def batches_newest_first(self, topic_id: int, partition: int) -> Iterator[
            tuple[int, bytes]]:
        """Yield ``(base_offset, batch)`` from the partition's newest batch backwards."""
        cur = self._txn.cursor(self._store._log)
        prefix = _PART.pack(topic_id, partition)
        found = _seek_last(cur, topic_id, partition)
        while found:
            key = cur.key()
            if key[:8] != prefix:
                return
            yield _U64.unpack_from(key, 8)[0], cur.value()
            found = cur.prev()

    def last_batch(self, topic_id: int, partition: int) -> tuple[int, bytes] | None:
        """The partition's newest batch, or None when it holds none."""
        cur = self._txn.cursor(self._store._log)
        if _seek_last(cur, topic_id, partition):
            return _U64.unpack_from(cur.key(), 8)[0], cur.value()
        return None

    def time_lookup(self, topic_id: int, partition: int, timestamp: int) -> int | None:
        """Base offset of the first batch whose running max timestamp is >= ``timestamp``."""
        cur = self._txn.cursor(self._store._tindex)
        if cur.set_range(LOG_KEY.pack(topic_id, partition, max(timestamp, 0))) and \
                cur.key()[:8] == _PART.pack(topic_id, partition):
            return _U64.unpack(cur.value())[0]
        return None

    def time_last(self, topic_id: int, partition: int) -> int | None:
        """The partition's largest indexed timestamp, or None."""
        cur = self._txn.cursor(self._store._tindex)
        if _seek_last(cur, topic_id, partition):
            return _U64.unpack_from(cur.key(), 8)[0]
        return None

    def get_offset(self, group_id: int, topic_id: int, partition: int) -> bytes | None:
        return self._txn.get(OFFSETS_KEY.pack(group_id, topic_id, partition),
                             db=self._store._offsets)

    def group_offsets(self, group_id: int) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(topic_id, partition, value)`` for every offset committed by a group."""
        cur = self._txn.cursor(self._store._offsets)
        prefix = _U32.pack(group_id)
        ok = cur.set_range(prefix)
        while ok and cur.key()[:4] == prefix:
            _, tid, part = OFFSETS_KEY.unpack(cur.key())
            yield tid, part, cur.value()
            ok = cur.next()

    def meta(self, key: bytes) -> bytes | None:
        return self._txn.get(key, db=self._store._meta)

    def get_meta(self, key: bytes) -> bytes | None:
        return self._txn.get(key, db=self._store._meta)

    def meta_items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        cur = self._txn.cursor(self._store._meta)
        ok = cur.set_range(prefix)
        while ok and cur.key().startswith(prefix):
            yield cur.key(), cur.value()
            ok = cur.next()

    def last_txn_id(self) -> int:
        return self._txn.id()


class WriteTxn(ReadTxn):
    """A write transaction; used only inside :meth:`Store.write`."""

    __slots__ = ("scratch",)

    def __init__(self, txn: Any, store: Store) -> None:
        super().__init__(txn, store)
        # Facts decided earlier in this transaction but not yet applied in memory (e.g.
        # a topic created by the previous job); reset when the transaction is retried.
        self.scratch: dict[str, Any] = {}

    def put_batch(self, topic_id: int, partition: int, base_offset: int, data: bytes) -> None:
        """Store a batch. A key that already exists means offsets were reused: corruption."""
        if not self._txn.put(LOG_KEY.pack(topic_id, partition, base_offset), data,
                             overwrite=False, db=self._store._log):
            raise CorruptStoreError(
                f"offset {base_offset} of topic id {topic_id} partition {partition} is "
                "already stored: the in-memory log end disagrees with the store; run "
                "`mqlog check`"
            )

    def put_time_index(self, topic_id: int, partition: int, timestamp: int,
                       base_offset: int) -> None:
        self._txn.put(LOG_KEY.pack(topic_id, partition, max(timestamp, 0)),
                      _U64.pack(base_offset), db=self._store._tindex)

    def put_offset(self, group_id: int, topic_id: int, partition: int, value: bytes) -> None:
        self._txn.put(OFFSETS_KEY.pack(group_id, topic_id, partition), value,
                      db=self._store._offsets)

    def put_meta(self, key: bytes, value: bytes) -> None:
        self._txn.put(key, value, db=self._store._meta)

    def delete_meta(self, key: bytes) -> None:
        self._txn.delete(key, db=self._store._meta)

    def next_id(self, counter: bytes) -> int:
        """Allocate the next u32 id from a counter in meta (ids are never reused)."""
        key = b"n" + counter
        raw = self._txn.get(key, db=self._store._meta)
        value = _U32.unpack(raw)[0] + 1 if raw else 1
        self._txn.put(key, _U32.pack(value), db=self._store._meta)
        return value

    def get_batch(self, topic_id: int, partition: int, base_offset: int) -> bytes | None:
        return self._txn.get(LOG_KEY.pack(topic_id, partition, base_offset),
                             db=self._store._log)

    def replace_batch(self, topic_id: int, partition: int, base_offset: int,
                      data: bytes) -> None:
        """Overwrite an existing batch (compaction keeps its base offset)."""
        self._txn.put(LOG_KEY.pack(topic_id, partition, base_offset), data,
                      db=self._store._log)

    def delete_batch(self, topic_id: int, partition: int, base_offset: int) -> bool:
        return self._txn.delete(LOG_KEY.pack(topic_id, partition, base_offset),
                                db=self._store._log)

    def delete_time_index_below(self, topic_id: int, partition: int, offset: int) -> None:
        """Drop time-index entries pointing below ``offset`` (they form a prefix: the
        index is ascending in both timestamp and offset).

        The newest dropped entry is kept, re-pointed at ``offset``: kept batches may
        hold records older than the next entry's timestamp, and lookups must still
        start there.
        """
        cur = self._txn.cursor(self._store._tindex)
        prefix = _PART.pack(topic_id, partition)
        ok = cur.set_range(prefix)
        last_key = None
        while ok and cur.key()[:8] == prefix and _U64.unpack(cur.value())[0] < offset:
            last_key = cur.key()
            cur.delete()
            ok = bool(cur.key())
        if last_key is not None:
            self._txn.put(last_key, _U64.pack(offset), db=self._store._tindex)

    def delete_offset(self, group_id: int, topic_id: int, partition: int) -> bool:
        """Delete one committed offset; False if there was none."""
        return self._txn.delete(OFFSETS_KEY.pack(group_id, topic_id, partition),
                                db=self._store._offsets)

    def delete_group_offsets(self, group_id: int) -> None:
        cur = self._txn.cursor(self._store._offsets)
        prefix = _U32.pack(group_id)
        ok = cur.set_range(prefix)
        while ok and cur.key()[:4] == prefix:
            cur.delete()
            ok = bool(cur.key())

    def delete_topic_data(self, topic_id: int) -> None:
        """Delete every batch, time-index entry and committed offset of a topic."""
        prefix = _U32.pack(topic_id)
        for db in (self._store._log, self._store._tindex):
            cur = self._txn.cursor(db)
            ok = cur.set_range(prefix)
            while ok and cur.key()[:4] == prefix:
                cur.delete()  # moves to the next entry; key() is b"" past the end
                ok = bool(cur.key())
        cur = self._txn.cursor(self._store._offsets)
        ok = cur.first()
        while ok:
            if cur.key()[4:8] == prefix:
                cur.delete()
                ok = bool(cur.key())
            else:
                ok = cur.next()


class Store:
    """The LMDB environment of one broker directory.

    Thread-safe. Opening for writing takes an exclusive OS lock on the directory.

    Args:
        path: the broker directory (created 0700 if missing, unless readonly).
        readonly: open for inspection; no lock taken, writes refused.
        map_size: initial LMDB map size in bytes; it grows on demand.
        sync: flush on every commit (``fsync=True``); otherwise only :meth:`sync` flushes.

    Raises:
        BrokerLockedError: another process owns the directory for writing.
        FormatVersionError: the store was written by an incompatible format version.
        CorruptStoreError: the data file is damaged.
    """

    def __init__(self, path: str, *, readonly: bool = False, map_size: int | None = None,
                 sync: bool = False, max_readers: int = 510) -> None:
        self.path = path
        self.readonly = readonly
        self._lock: _DirectoryLock | None = None
        # Guards _readers and _resizing: read transactions register so a map resize
        # (which invalidates open transactions) waits for them to finish.
        # The plain lock is taken directly on the hot path (Condition.__enter__ is a
        # Python-level call); the condition is for waiting on a resize.
        self._gate_lock = threading.Lock()
        self._gate = threading.Condition(self._gate_lock)
        self._readers = 0
        self._quiet_epoch = 0  # times the count of open reads fell to zero
        self._resizing = False
        self._local = threading.local()  # per thread: depth of open reads
        if readonly:
            if os.path.realpath(path) in _OPEN_PATHS:
                raise BrokerLockedError(
                    f"{path} is already open in this process: LMDB allows one environment "
                    "per process; use that broker instead of a readonly one")
            if not os.path.exists(os.path.join(path, "data.mdb")):
                raise CorruptStoreError(
                    f"{path} holds no mqlog store (no data.mdb): check the path"
                )
        else:
            os.makedirs(path, mode=0o700, exist_ok=True)
            _refuse_symlinks(path)  # before the lock file is opened through a link
            self._lock = _DirectoryLock(path)
            self._lock.acquire()
        try:
            _refuse_symlinks(path)
            check_data_file(path)
            self._env = lmdb.open(
                # Readonly: map what the owner set (LMDB takes the larger of this and
                # the size recorded in the file) and adopt growth as it happens.
                path, map_size=(map_size or _DEFAULT_MAP_SIZE) if not readonly else 1 << 20,
                subdir=True,
                readonly=readonly, max_dbs=8, mode=0o600, sync=sync, metasync=sync,
                readahead=False, max_readers=max_readers, lock=True,
            )
            self._env.reader_check()  # clear slots left by dead reader processes
            if not readonly and map_size and self._env.info()["map_size"] < map_size:
                self._env.set_mapsize(map_size)
            open_db = self._env.open_db
            create = not readonly
            try:
                self._meta = open_db(b"meta", create=create)
                self._log = open_db(b"log", create=create)
                self._tindex = open_db(b"tindex", create=create)
                self._offsets = open_db(b"offsets", create=create)
            except lmdb.NotFoundError:
                raise CorruptStoreError(
                    f"{path} is not an mqlog store (its named databases are missing)"
                ) from None
            self._init_or_check()
        except lmdb.Error as exc:
            self._release_lock()
            raise _translate(exc, path) from exc
        except BaseException:
            self._release_lock()
            raise

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _init_or_check(self) -> None:
        with self._env.begin(db=self._meta) as txn:
            version = txn.get(b"v", db=self._meta)
            marker = txn.get(b"M", db=self._meta)
        if version is None:
            if self.readonly:
                raise CorruptStoreError(f"{self.path} holds no initialised mqlog store")
            with self._env.begin(write=True) as txn:
                txn.put(b"v", _U32.pack(FORMAT_VERSION), db=self._meta)
                txn.put(b"M", _MARKER, db=self._meta)
            self._env.sync(True)
            return
        found = _U32.unpack(version)[0]
        if found != FORMAT_VERSION:
            raise FormatVersionError(
                f"{self.path} uses on-disk format version {found}; this mqlog reads "
                f"version {FORMAT_VERSION}: use the mqlog release that wrote it"
            )
        if marker != _MARKER:
            raise CorruptStoreError(f"{self.path} lacks mqlog's store marker")

    # -- transactions ---------------------------------------------------------------

    def read(self, buffers: bool = False) -> _Reading:
        """A short read transaction, as a context manager giving a :class:`ReadTxn`.
        Never hold it across a wait.

        Args:
            buffers: values are zero-copy views valid only inside the transaction
                (for scans that read headers and lengths); default: bytes copies.

        LMDB errors raised inside the block come out as :mod:`mqlog.errors` types.
        """
        return _Reading(self, buffers)

    def _begin_read(self, buffers: bool) -> Any:
        """Begin an LMDB read transaction (the caller has entered as a reader)."""
        try:
            try:
                return self._env.begin(buffers=buffers)
            except lmdb.MapResizedError:
                # Another process (the owner) grew the map: adopt its size and retry.
                if self._local.depth > 1:
                    raise MqlogError(
                        f"the map of {self.path} was resized by its owner during a nested "
                        "read; retry the call") from None
                self._exit_reader()
                try:
                    self._resize(0)
                finally:  # the caller leaves as a reader if this raises
                    self._enter_reader()
                return self._env.begin(buffers=buffers)
            except lmdb.ReadersFullError:
                # Slots held by dead processes fill the table: clear them and retry.
                self._env.reader_check()
                return self._env.begin(buffers=buffers)
        except lmdb.Error as exc:
            raise _translate(exc, self.path) from exc

    def _enter_reader(self) -> None:
        local = self._local
        depth = getattr(local, "depth", 0)
        with self._gate_lock:
            # A thread already inside a read never waits for a resize: the resize is
            # waiting for that outer read to end.
            while self._resizing and not depth:
                self._gate.wait()
            self._readers += 1
        local.depth = depth + 1

    def _exit_reader(self) -> None:
        self._local.depth -= 1
        with self._gate_lock:
            self._readers -= 1
            if not self._readers:
                self._quiet_epoch += 1
                if self._resizing:  # only a resize waits for zero
                    self._gate.notify_all()

    def reader_token(self) -> int | None:
        """A mark of the reads open in this process now: None when there are none,
        else a token for :meth:`readers_done`. For memory that must outlive every
        snapshot older than a commit (what a reader of that snapshot still consults)."""
        with self._gate_lock:
            return self._quiet_epoch if self._readers else None

    def readers_done(self, token: int | None) -> bool:
        """Whether every read that was open when ``token`` was taken has ended (the
        count of open reads has been zero since)."""
        return token is None or self._quiet_epoch != token

    def write(self, fn: Callable[[WriteTxn], T]) -> T:
        """Run ``fn`` in one write transaction and commit it.

        ``fn`` may run more than once (the map is grown and the transaction retried when
        it fills), so it must not have effects outside the transaction.

        Raises:
            DiskFullError: the disk is full (the transaction is rolled back).
        """
        while True:
            txn = self._env.begin(write=True)
            try:
                result = fn(WriteTxn(txn, self))
                txn.commit()
                return result
            except lmdb.MapFullError:
                txn.abort()
                self._grow()
            except lmdb.Error as exc:
                txn.abort()
                raise _translate(exc, self.path) from exc
            except BaseException:
                txn.abort()
                raise

    def _grow(self) -> None:
        self._resize(self._env.info()["map_size"] * 2)

    def _resize(self, new_size: int) -> None:
        """Change the map size (0: adopt the size another process set).

        LMDB requires that no transaction of this process is open: new readers wait at
        the gate and the resize waits for the running ones to finish.
        """
        with self._gate:
            self._resizing = True
            try:
                while self._readers:
                    self._gate.wait()
                self._env.set_mapsize(new_size)
            finally:
                self._resizing = False
                self._gate.notify_all()

    def sync(self) -> None:
        """Flush committed transactions to stable storage (fsync).

        Raises:
            DiskFullError: the flush failed for lack of space.
        """
        try:
            self._env.sync(True)
        except lmdb.Error as exc:
            raise _translate(exc, self.path) from exc

    def map_size(self) -> int:
        return self._env.info()["map_size"]

    def stat(self) -> dict[str, Any]:
        """Sizes for inspection: map size, last page, entries per database."""
        info = self._env.info()
        with self._env.begin() as txn:
            entries = {name: txn.stat(db)["entries"] for name, db in (
                ("log", self._log), ("tindex", self._tindex), ("offsets", self._offsets),
                ("meta", self._meta))}
        return {"map_size": info["map_size"], "last_pgno": info["last_pgno"],
                "last_txnid": info["last_txnid"], "entries": entries}

    def close(self) -> None:
        """Close the environment and release the directory lock. Idempotent."""
        env = getattr(self, "_env", None)
        if env is not None:
            self._env = None
            env.close()
        self._release_lock()


def dumps_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def loads_json(raw: bytes) -> Any:
    return json.loads(raw)
