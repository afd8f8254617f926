"""Transactional producers over the wire: the broker's TransactionCoordinator, bridged.

Kafka's transaction protocol (KIP-98) asks a coordinator for a producer id and epoch
(InitProducerId with a ``transactional_id``), registers partitions and consumer groups
(AddPartitionsToTxn, AddOffsetsToTxn), stages offsets (TxnOffsetCommit) and ends with
EndTxn. mqlog's :class:`~mqlog._transactions.TransactionCoordinator` already does the
hard parts for in-process producers: it fences older epochs, checks every transactional
batch in the writer, and ends a transaction with one LMDB transaction holding the
markers and the offsets. The bridge:

* InitProducerId calls ``init_transactions`` with a :class:`WireTransaction` standing
  in for the producer object (it receives ``_fence`` when a newer client takes the id);
* AddPartitionsToTxn only validates: the coordinator notes a partition when the
  transaction's first batch there is written;
* TxnOffsetCommit validates and stages offsets (with the KIP-447 member check), which
  EndTxn(commit) stores atomically with the commit markers; EndTxn(abort) drops them.
  Until then an OffsetFetch with ``require_stable`` gets ``UNSTABLE_OFFSET_COMMIT`` for
  those partitions (:meth:`TxnRegistry.pending_offsets`, and the broker's own
  ``_pending_txn_offsets`` for in-process transactional producers; KIP-447), as from
  Kafka.

Staged offsets live in the server's memory (per transactional id), as Kafka's live in
the coordinator until the commit: a server restart aborts the open transaction anyway.

Limits, as Kafka's coordinator has them: InitProducerId refuses a transaction timeout
above :data:`MAX_TRANSACTION_TIMEOUT_S` (``transaction.max.timeout.ms``, 15 min) with
``INVALID_TRANSACTION_TIMEOUT``, so an abandoned transaction cannot hold back
``read_committed`` consumers for days; and the server forgets the state of a
transactional id none of whose requests came for ``transactional_id_expiration_s``
(``transactional.id.expiration.ms``, 7 days), so the registry does not grow with
every id ever used. A forgotten id's next TxnOffsetCommit is refused
(``INVALID_TXN_STATE``, as for an id this server never initialised); InitProducerId
starts it afresh. The store keeps its own record of the id (producer id and epoch)
regardless.

Thread-safety: handlers run in connection threads; :class:`TxnRegistry` has a lock for
its map, and each :class:`WireTransaction` a lock for its staged offsets.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from ..errors import (
    CommitFailedError,
    MqlogError,
    ProducerFencedError,
    UnknownTopicOrPartitionError,
)
from ..records import OffsetAndMetadata, TopicPartition
from ._apis import ApiKey, ConnectionContext, ErrorCode, error_code_for, register, \
    response_class

__all__ = ["MAX_TRANSACTION_TIMEOUT_S", "TxnRegistry", "WireTransaction",
           "check_producer"]

_ZERO = datetime.timedelta(0)
#: Kafka's transaction.max.timeout.ms default (15 min), in seconds.
MAX_TRANSACTION_TIMEOUT_S = 900.0


class WireTransaction:
    """The producer-side state of one wire ``transactional_id`` (see module doc)."""

    def __init__(self, name: str, timeout_s: float = 60.0) -> None:
        self.name = name
        self.fenced: str | None = None
        self.timeout_s = timeout_s  # its transactions' timeout (InitProducerId)
        self.last_used = 0.0  # registry clock; written under TxnRegistry._lock
        # Guards offsets and staged_at.
        self._lock = threading.Lock()
        self.offsets: dict[str, tuple[dict, Any]] = {}  # group -> (rows by tp, check)
        self.staged_at: float | None = None  # registry clock: first staging of the txn

    def _fence(self, reason: str) -> None:
        """Called by the coordinator when a newer producer took the id."""
        self.fenced = reason

    def stage(self, group: str, rows: dict, check: Any, now: float) -> None:
        """Stage offsets (``rows`` by TopicPartition) for ``group`` until EndTxn."""
        with self._lock:
            merged = dict(self.offsets.get(group, ({}, None))[0])
            merged.update(rows)
            self.offsets[group] = (merged, check)
            if self.staged_at is None:
                self.staged_at = now

    def take_offsets(self) -> tuple[dict[str, tuple[list, Any]], Callable[[], None]]:
        """Take the staged offsets for EndTxn: per group, the rows to store and the
        fencing check; and a function that puts them back, for an EndTxn that failed
        without ending the transaction (the client may retry it, and the retry must
        commit them too). Offsets staged meanwhile win over the ones put back."""
        with self._lock:
            taken, staged_at = self.offsets, self.staged_at
            self.offsets = {}
            self.staged_at = None

        def put_back() -> None:
            with self._lock:
                for group, (rows, check) in taken.items():
                    newer = self.offsets.get(group)
                    if newer is not None:
                        rows, check = {**rows, **newer[0]}, newer[1]
                    self.offsets[group] = (rows, check)
                if taken:
                    self.staged_at = staged_at  # the older staging

        return {g: (list(rows.values()), check) for g, (rows, check) in taken.items()}, \
            put_back

    def pending(self, group: str, now: float) -> set[TopicPartition]:
        """The partitions of ``group`` with offsets staged in a transaction that may
        still commit (staged less than its transaction timeout ago: past that, the
        store has aborted it, or its producer is gone)."""
        with self._lock:
            if self.staged_at is None or now - self.staged_at > self.timeout_s:
                return set()
            return set(self.offsets.get(group, ({}, None))[0])


class TxnRegistry:
    """The server's wire transactions by transactional id.

    Thread-safe. An id is forgotten once no request used it for ``expiration_s``
    seconds (Kafka's ``transactional.id.expiration.ms``); one whose offsets are still
    staged is kept at least as long as its transaction timeout, after which the store
    has aborted that transaction and fenced its producer anyway. Expiry runs on use,
    from the least recently used end: O(ids expired), nothing when none is due.

    Attributes:
        clock: the monotonic clock expiry reads (a seam: tests advance time).
    """

    def __init__(self, expiration_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.expiration_s = expiration_s
        self.clock = clock
        # Guards _by_name (least recently used first) and each entry's last_used.
        self._lock = threading.Lock()
        self._by_name: OrderedDict[str, WireTransaction] = OrderedDict()

    def fresh(self, name: str, timeout_s: float = 60.0) -> WireTransaction:
        """A new stand-in for ``name`` (each InitProducerId fences the previous one)."""
        wt = WireTransaction(name, timeout_s)
        with self._lock:
            now = self.clock()
            wt.last_used = now
            self._by_name[name] = wt
            self._by_name.move_to_end(name)
            self._expire(now)
        return wt

    def get(self, name: str | None) -> WireTransaction | None:
        """The stand-in for ``name`` (None if unknown or expired); counts as a use."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            wt = self._by_name.get(name) if name is not None else None
            if wt is not None:
                wt.last_used = now
                self._by_name.move_to_end(name)
            return wt

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_name)

    def now(self) -> float:
        """The registry's clock."""
        return self.clock()

    def pending_offsets(self, group: str) -> set[TopicPartition]:
        """The partitions of ``group`` whose offsets an open transaction has staged
        (KIP-447: an OffsetFetch with ``require_stable`` must not read them yet).

        Cost: a look at every transactional id the server holds.
        """
        with self._lock:
            stand_ins = list(self._by_name.values())
            now = self.clock()
        out: set[TopicPartition] = set()
        for wt in stand_ins:
            out |= wt.pending(group, now)
        return out

    def _expire(self, now: float) -> None:
        """Forget the ids idle for too long (lock held)."""
        kept = []
        while self._by_name:
            name, wt = next(iter(self._by_name.items()))
            idle = now - wt.last_used
            if idle <= self.expiration_s:
                break
            del self._by_name[name]
            if wt.offsets and idle <= wt.timeout_s:
                kept.append(wt)  # its transaction may still be open: not yet
        for wt in kept:  # at the recent end: looked at again when those before go
            self._by_name[wt.name] = wt


def _registry(ctx: ConnectionContext) -> TxnRegistry:
    return ctx.server.transactions()


def _state(ctx: ConnectionContext, name: str | None) -> Any:
    """The coordinator's TransactionalId for ``name`` (None if unknown)."""
    if name is None:
        return None
    txns = ctx.broker._txns
    with txns._lock:
        return txns._ids.get(name)


def check_producer(ctx: ConnectionContext, name: str | None, producer_id: int,
                   epoch: int) -> tuple[ErrorCode, Any]:
    """Validate a transactional request's (id, producer id, epoch).

    Returns:
        (error code, coordinator state): ``none`` and the state when the caller holds
        the id's current epoch.
    """
    _registry(ctx).get(name)  # a use: keeps the id's stand-in from expiring
    state = _state(ctx, name)
    if state is None:
        return ErrorCode.invalid_producer_id_mapping, None
    if state.producer_id != producer_id:
        return ErrorCode.invalid_producer_id_mapping, state
    if state.epoch != epoch:
        return ErrorCode.producer_fenced, state
    return ErrorCode.none, state


# -- InitProducerId with a transactional id (called from _handlers.init_producer_id) --

def init_transactional(ctx: ConnectionContext, request: Any) -> tuple[ErrorCode, int, int]:
    """Fence older producers of the id, abort their transaction, bump the epoch."""
    name = request.transactional_id
    timeout = request.transaction_timeout
    timeout_ms = timeout.total_seconds() * 1000 if hasattr(timeout, "total_seconds") \
        else float(timeout)
    if not 0 < timeout_ms <= MAX_TRANSACTION_TIMEOUT_S * 1000:
        return ErrorCode.invalid_transaction_timeout, -1, -1
    stand_in = _registry(ctx).fresh(name, timeout_ms / 1000)
    try:
        _state_obj, pid, epoch = ctx.broker._txns.init_transactions(
            stand_in, name, timeout_ms)
    except ProducerFencedError:
        return ErrorCode.concurrent_transactions, -1, -1  # a racing init: retriable
    except MqlogError as exc:
        return error_code_for(exc), -1, -1
    return ErrorCode.none, pid, epoch


# -- AddPartitionsToTxn ---------------------------------------------------------------------

@register(ApiKey.add_partitions_to_txn, 0, 3)
def add_partitions_to_txn(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    Response = response_class(ApiKey.add_partitions_to_txn, api_version)
    module = __import__(Response.__module__, fromlist=["_"])
    TopicResult = module.AddPartitionsToTxnTopicResult
    PartResult = module.AddPartitionsToTxnPartitionResult
    code, _ = check_producer(ctx, request.v3_and_below_transactional_id,
                             request.v3_and_below_producer_id,
                             request.v3_and_below_producer_epoch)
    topics = []
    for t in request.v3_and_below_topics:
        tlog = ctx.broker._topics.get(t.name)
        parts = []
        for p in t.partitions:
            pcode = code
            if pcode == ErrorCode.none and (tlog is None or
                                            not 0 <= p < len(tlog.partitions)):
                pcode = ErrorCode.unknown_topic_or_partition
            parts.append(PartResult(partition_index=p, partition_error_code=pcode))
        topics.append(TopicResult(name=t.name, results_by_partition=tuple(parts)))
    return Response(throttle_time=_ZERO, results_by_topic_v3_and_below=tuple(topics))


# -- AddOffsetsToTxn ------------------------------------------------------------------------

@register(ApiKey.add_offsets_to_txn, 0, 3)
def add_offsets_to_txn(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    Response = response_class(ApiKey.add_offsets_to_txn, api_version)
    code, _ = check_producer(ctx, request.transactional_id, request.producer_id,
                             request.producer_epoch)
    if code == ErrorCode.none and not request.group_id:
        code = ErrorCode.invalid_group_id
    return Response(throttle_time=_ZERO, error_code=code)


# -- TxnOffsetCommit ------------------------------------------------------------------------

@register(ApiKey.txn_offset_commit, 0, 3)
def txn_offset_commit(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    broker = ctx.broker
    Response = response_class(ApiKey.txn_offset_commit, api_version)
    module = __import__(Response.__module__, fromlist=["_"])
    TopicResp = module.TxnOffsetCommitResponseTopic
    PartResp = module.TxnOffsetCommitResponsePartition
    code, _ = check_producer(ctx, request.transactional_id, request.producer_id,
                             request.producer_epoch)
    wire = _registry(ctx).get(request.transactional_id)
    if code == ErrorCode.none and wire is None:
        code = ErrorCode.invalid_txn_state  # initialised by another server instance
    rows: dict = {}
    results: list[tuple[str, list[list]]] = []
    for t in request.topics:
        parts: list[list] = []
        results.append((t.name, parts))
        for p in t.partitions:
            row = [p.partition_index, code]
            parts.append(row)
            if code != ErrorCode.none:
                continue
            tp = TopicPartition(t.name, p.partition_index)
            om = OffsetAndMetadata(p.committed_offset, p.committed_metadata or "",
                                   getattr(p, "committed_leader_epoch", -1))
            try:
                rows.update(broker._offset_rows({tp: om}))
            except UnknownTopicOrPartitionError:
                row[1] = ErrorCode.unknown_topic_or_partition
            except (MqlogError, TypeError, ValueError):
                row[1] = ErrorCode.invalid_commit_offset_size
    if code == ErrorCode.none and rows:
        member_id = getattr(request, "member_id", "") or ""
        generation = getattr(request, "generation_id", -1)
        check = broker._txns.check_group_member(request.group_id, generation, member_id,
                                                list(rows))
        failure = None
        if check is not None:
            try:
                check()  # now, so the client learns of a rebalance before EndTxn
            except CommitFailedError as exc:
                failure = ErrorCode.unknown_member_id if "no longer in the group" in \
                    str(exc) else ErrorCode.illegal_generation
        if failure is not None:
            for _, parts in results:
                for row in parts:
                    if row[1] == ErrorCode.none:
                        row[1] = failure
        else:
            assert wire is not None
            wire.stage(request.group_id, rows, check, _registry(ctx).now())
    return Response(throttle_time=_ZERO, topics=tuple(
        TopicResp(name=name, partitions=tuple(
            PartResp(partition_index=i, error_code=c) for i, c in parts))
        for name, parts in results))


# -- EndTxn -------------------------------------------------------------------------------

@register(ApiKey.end_txn, 0, 3)
def end_txn(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    Response = response_class(ApiKey.end_txn, api_version)
    code, state = check_producer(ctx, request.transactional_id, request.producer_id,
                                 request.producer_epoch)
    wire = _registry(ctx).get(request.transactional_id)
    if code != ErrorCode.none:
        return Response(throttle_time=_ZERO, error_code=code)
    offsets, put_back = wire.take_offsets() if wire is not None else ({}, None)
    try:
        flush_error = ctx.broker._txns.end_transaction(
            state, request.producer_epoch, bool(request.committed),
            offsets if request.committed else {})
    except ProducerFencedError:
        code = ErrorCode.producer_fenced  # a newer producer: its offsets go with it
    except MqlogError as exc:
        # Nothing was written and the transaction is still open: the client may retry
        # EndTxn, which must store the offsets too.
        if put_back is not None:
            put_back()
        if isinstance(exc, CommitFailedError):
            # The group moved on since TxnOffsetCommit: the client must abort
            # (Kafka's coordinator would have refused the offsets earlier).
            code = ErrorCode.invalid_txn_state
        else:
            code = error_code_for(exc)
    else:
        if flush_error is not None:
            code = ErrorCode.kafka_storage_error
    return Response(throttle_time=_ZERO, error_code=code)
