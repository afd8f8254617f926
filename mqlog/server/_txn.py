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

Staged offsets live in the server's memory (per transactional id), as Kafka's live in
the coordinator until the commit: a server restart aborts the open transaction anyway.

Thread-safety: handlers run in connection threads; :class:`TxnRegistry` has a lock for
its map, and each :class:`WireTransaction` a lock for its staged offsets.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

from ..errors import (
    CommitFailedError,
    MqlogError,
    ProducerFencedError,
    UnknownTopicOrPartitionError,
)
from ..records import OffsetAndMetadata, TopicPartition
from ._apis import ApiKey, ConnectionContext, ErrorCode, error_code_for, register, \
    response_class

__all__ = ["TxnRegistry", "WireTransaction", "check_producer"]

_ZERO = datetime.timedelta(0)


class WireTransaction:
    """The producer-side state of one wire ``transactional_id`` (see module doc)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fenced: str | None = None
        # Guards offsets.
        self._lock = threading.Lock()
        self.offsets: dict[str, tuple[dict, Any]] = {}  # group -> (rows by tp, check)

    def _fence(self, reason: str) -> None:
        """Called by the coordinator when a newer producer took the id."""
        self.fenced = reason

    def stage(self, group: str, rows: dict, check: Any) -> None:
        with self._lock:
            merged = dict(self.offsets.get(group, ({}, None))[0])
            merged.update(rows)
            self.offsets[group] = (merged, check)

    def take_offsets(self) -> dict[str, tuple[list, Any]]:
        with self._lock:
            out = {g: (list(rows.values()), check) for g, (rows, check) in
                   self.offsets.items()}
            self.offsets = {}
        return out


class TxnRegistry:
    """The server's wire transactions by transactional id (thread-safe)."""

    def __init__(self) -> None:
        # Guards _by_name.
        self._lock = threading.Lock()
        self._by_name: dict[str, WireTransaction] = {}

    def fresh(self, name: str) -> WireTransaction:
        """A new stand-in for ``name`` (each InitProducerId fences the previous one)."""
        wt = WireTransaction(name)
        with self._lock:
            self._by_name[name] = wt
        return wt

    def get(self, name: str) -> WireTransaction | None:
        with self._lock:
            return self._by_name.get(name)


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
    if timeout_ms <= 0:
        return ErrorCode.invalid_transaction_timeout, -1, -1
    stand_in = _registry(ctx).fresh(name)
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
            wire.stage(request.group_id, rows, check)
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
    offsets = wire.take_offsets() if wire is not None else {}
    try:
        flush_error = ctx.broker._txns.end_transaction(
            state, request.producer_epoch, bool(request.committed),
            offsets if request.committed else {})
    except ProducerFencedError:
        code = ErrorCode.producer_fenced
    except CommitFailedError:
        # The group moved on since TxnOffsetCommit: nothing was written; the client
        # must abort (Kafka's coordinator would have refused the offsets earlier).
        code = ErrorCode.invalid_txn_state
    except MqlogError as exc:
        code = error_code_for(exc)
    else:
        if flush_error is not None:
            code = ErrorCode.kafka_storage_error
    return Response(throttle_time=_ZERO, error_code=code)
