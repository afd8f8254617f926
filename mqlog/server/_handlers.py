"""Core Kafka API handlers: ApiVersions, Metadata, Produce, Fetch, ListOffsets,
InitProducerId (admin APIs are in ``_admin.py``).

One function per API, registered in :mod:`._apis` (its docstring explains the
contract). kio generates one class per API version; the helpers :func:`_build` and
:func:`_cls` let one function answer every version by keeping only the fields a
version has. Consumer groups and committed offsets live in ``_groups.py``,
transactions in ``_txn.py``.

Kafka facts these follow (one broker, node id 0, every partition led by it):

* Metadata lists the server's advertised address as the only broker and auto-creates
  unknown topics when the request allows it (v4+; always before v4) and the broker
  was opened with ``auto_create_topics=True``.
* Produce appends through the broker's writer keeping the client's producer id, epoch
  and base sequence (``_appender.py``); acks=0 gets no response at all; errors are per
  partition. Transactional produce is checked against the transactional id's current
  producer id and epoch (``_txn.py`` serves the other transaction APIs).
* Fetch never creates fetch sessions (it answers session id 0, which clients take as
  "full fetches only", as KIP-227 allows); it long-polls on the broker's data
  condition until ``min_bytes`` are available or ``max_wait_ms`` passes. Stored
  batches are re-encoded by ``_encoder.encode_stored``, which keeps recent encodings,
  and the batches wire producers just sent, in a cache keyed by store.
* ListOffsets: -1 latest (the last stable offset for read_committed), -2 earliest,
  -3 the record with the largest timestamp (v7+), -4 earliest local (= earliest),
  otherwise the first offset whose timestamp is >= the one given.

Thread-safety: handlers run in connection threads, concurrently; they share only the
broker (thread-safe) and the per-server :class:`WireAppender`.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import sys
import time
import uuid
from functools import lru_cache
from typing import Any

from .. import batch as _batch
from ..errors import (
    InvalidTopicError,
    MqlogError,
)
from ..log import offset_for_time
from ._apis import (
    ApiError,
    ApiKey,
    CloseConnection,
    ConnectionContext,
    ErrorCode,
    api_versions_response,
    error_code_for,
    register,
    response_class,
)
from ._appender import PendingBatch, WireAppender
from . import _decoder
from ._decoder import RecordError, decode_batches
from ._encoder import BatchKey, encode_stored, store_token
from ._txn import check_producer, init_transactional

__all__: list[str] = []

log = logging.getLogger("mqlog.server")

_ZERO = datetime.timedelta(0)
_NO_OPS = -2147483648  # "authorized operations not requested" (INT32_MIN)
#: Upper bound for how long a Produce waits for the writer (the request's own timeout
#: counts first; this guards against a client asking for days).
MAX_PRODUCE_WAIT_S = 120.0
MAX_FETCH_WAIT_S = 60.0


# -- helpers -----------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def _build(cls: type, **kwargs: Any) -> Any:
    """Instantiate a kio class with the keyword arguments it has (versions differ)."""
    names = _field_names(cls)
    return cls(**{k: v for k, v in kwargs.items() if k in names})


def _cls(response_cls: type, name: str) -> type:
    """A nested class (``name``) from the module of a kio response class."""
    return getattr(sys.modules[response_cls.__module__], name)


def _ms(delta: Any) -> float:
    """Seconds from kio's timedelta fields (or a plain number of ms)."""
    if isinstance(delta, datetime.timedelta):
        return delta.total_seconds()
    return float(delta) / 1000.0


def _topic_uuid(topic_id: int) -> uuid.UUID:
    """A stable, non-zero Kafka topic id for an mqlog topic id (a unique counter)."""
    return uuid.UUID(int=(0x6D716C6F67 << 64) | (topic_id & 0xFFFFFFFFFFFFFFFF))


def _topic_of_uuid(ctx: ConnectionContext, topic_uuid: uuid.UUID | None) -> Any:
    if topic_uuid is None:
        return None
    value = topic_uuid.int
    if value >> 64 != 0x6D716C6F67:
        return None
    return ctx.broker._topics_by_id.get(value & 0xFFFFFFFFFFFFFFFF)


def _appender(ctx: ConnectionContext) -> WireAppender:
    return ctx.server.appender()


def _message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


# -- ApiVersions ---------------------------------------------------------------------------

@register(ApiKey.api_versions, 0, 4)
def api_versions(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    if api_version >= 3:
        ctx.client_software = (request.client_software_name,
                               request.client_software_version)
    return api_versions_response(api_version)


# -- Metadata --------------------------------------------------------------------------------

@register(ApiKey.metadata, 0, 12)
def metadata(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    broker = ctx.broker
    Response = response_class(ApiKey.metadata, api_version)
    Broker = _cls(Response, "MetadataResponseBroker")
    Topic = _cls(Response, "MetadataResponseTopic")
    Partition = _cls(Response, "MetadataResponsePartition")
    host, port = ctx.server.advertised_address()
    node = ctx.config.node_id

    requested = request.topics
    # (name, None) per topic to describe, or (None, topic id) for an unknown id.
    wanted: list[tuple[str | None, Any]]
    if requested is None or (api_version == 0 and not requested):
        wanted = [(name, None) for name in sorted(broker._topics)]  # every topic
    else:
        wanted = []
        for t in requested:
            name = getattr(t, "name", None)
            if name is None:
                tlog = _topic_of_uuid(ctx, getattr(t, "topic_id", None))
                wanted.append((tlog.name, None) if tlog is not None else
                              (None, getattr(t, "topic_id", None)))
            else:
                wanted.append((name, None))
    auto = getattr(request, "allow_auto_topic_creation", True)
    topics = []
    for name, unknown_id in wanted:
        if name is None:
            topics.append(_build(Topic, error_code=ErrorCode.unknown_topic_id, name=None,
                                 topic_id=unknown_id, is_internal=False, partitions=(),
                                 topic_authorized_operations=_NO_OPS))
            continue
        tlog = broker._topics.get(name)
        code = ErrorCode.none
        if tlog is None and auto and broker.auto_create_topics and not broker.readonly:
            try:
                broker._ensure_topic(name)
            except InvalidTopicError:
                code = ErrorCode.invalid_topic_exception
            except MqlogError as exc:
                code = error_code_for(exc)
            tlog = broker._topics.get(name)
        if tlog is None:
            if code == ErrorCode.none:
                code = ErrorCode.unknown_topic_or_partition
            topics.append(_build(Topic, error_code=code, name=name,
                                 topic_id=uuid.UUID(int=0), is_internal=False,
                                 partitions=(), topic_authorized_operations=_NO_OPS))
            continue
        parts = tuple(
            _build(Partition, error_code=ErrorCode.none, partition_index=p,
                   leader_id=node, leader_epoch=0, replica_nodes=(node,),
                   isr_nodes=(node,), offline_replicas=())
            for p in range(len(tlog.partitions)))
        topics.append(_build(Topic, error_code=ErrorCode.none, name=tlog.name,
                             topic_id=_topic_uuid(tlog.topic_id), is_internal=False,
                             partitions=parts, topic_authorized_operations=_NO_OPS))
    return _build(
        Response, throttle_time=_ZERO,
        brokers=(_build(Broker, node_id=node, host=host, port=port, rack=None),),
        cluster_id=ctx.config.cluster_id, controller_id=node, topics=tuple(topics),
        cluster_authorized_operations=_NO_OPS)


# -- Produce -------------------------------------------------------------------------------

_RECORD_CODES = {
    "corrupt_message": ErrorCode.corrupt_message,
    "invalid_record": ErrorCode.invalid_record,
    "unsupported_for_message_format": ErrorCode.unsupported_for_message_format,
    "unsupported_compression_type": ErrorCode.unsupported_compression_type,
    "message_too_large": ErrorCode.message_too_large,
}


def _produce_error_code(exc: BaseException, transactional: bool) -> ErrorCode:
    from ..errors import ProducerFencedError

    if isinstance(exc, ProducerFencedError):
        # Kafka answers a stale epoch on Produce with INVALID_PRODUCER_EPOCH for
        # idempotent producers and PRODUCER_FENCED for transactional ones.
        return ErrorCode.producer_fenced if transactional else \
            ErrorCode.invalid_producer_epoch
    return error_code_for(exc)


def _produce_response(api_version: int, results: list[tuple[str, list[tuple]]]) -> Any:
    Response = response_class(ApiKey.produce, api_version)
    Topic = _cls(Response, "TopicProduceResponse")
    Part = _cls(Response, "PartitionProduceResponse")
    topics = []
    for name, parts in results:
        out = []
        for index, code, base, append_ms, log_start, message in parts:
            out.append(_build(
                Part, index=index, error_code=code, base_offset=base,
                log_append_time=None if append_ms is None else
                datetime.datetime.fromtimestamp(append_ms / 1000, datetime.timezone.utc),
                log_start_offset=log_start, record_errors=(),
                error_message=message if code != ErrorCode.none else None))
        topics.append(_build(Topic, name=name, partition_responses=tuple(out)))
    return _build(Response, responses=tuple(topics), throttle_time=_ZERO)


def _produce_error_response(ctx: ConnectionContext, request: Any, api_version: int,
                            code: ErrorCode) -> Any:
    if request.acks == 0:
        return None
    return _produce_response(api_version, [
        (t.name, [(p.index, code, -1, None, -1, code.name) for p in t.partition_data])
        for t in request.topic_data])


@register(ApiKey.produce, 3, 11, error_response=_produce_error_response)
def produce(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    broker = ctx.broker
    acks = request.acks
    if acks not in (0, 1, -1):
        raise ApiError(ErrorCode.invalid_required_acks, f"acks={acks} is not 0, 1 or -1")
    if broker.readonly:
        raise ApiError(ErrorCode.kafka_storage_error, "the store is open read-only")
    transactional_id = getattr(request, "transactional_id", None)
    results: list[tuple[str, list[list]]] = []
    pending: list[tuple[list, PendingBatch, Any]] = []
    expand_budget = _decoder.MAX_EXPANDED_BYTES  # for the whole request
    for t in request.topic_data:
        parts: list[list] = []
        results.append((t.name, parts))
        tlog = broker._topics.get(t.name)
        for pd in t.partition_data:
            row = [pd.index, ErrorCode.none, -1, None, -1, None]
            parts.append(row)
            if tlog is None or not 0 <= pd.index < len(tlog.partitions):
                row[1] = ErrorCode.unknown_topic_or_partition
                row[5] = f"topic {t.name!r} partition {pd.index} does not exist"
                continue
            plog = tlog.partitions[pd.index]
            row[4] = plog.log_start
            data = pd.records
            if not data:
                row[1] = ErrorCode.invalid_record
                row[5] = "the partition's records are empty"
                continue
            try:
                # Kafka compares each whole (compressed) batch with max.message.bytes,
                # before anything else is checked or decompressed.
                batches = decode_batches(bytes(data), max_expanded=expand_budget,
                                         max_batch_bytes=tlog.max_message_bytes)
            except RecordError as exc:
                row[1] = _RECORD_CODES[exc.code]
                row[5] = exc.message
                continue
            expand_budget -= sum(wb.expanded for wb in batches)
            if any(wb.transactional for wb in batches) != (transactional_id is not None):
                row[1] = ErrorCode.invalid_record
                row[5] = ("transactional batches need the request's transactional id, "
                          "and a transactional id needs transactional batches")
                continue
            if transactional_id is not None:
                code, _state = check_producer(ctx, transactional_id,
                                              batches[0].producer_id,
                                              batches[0].producer_epoch)
                if code != ErrorCode.none:
                    row[1] = code
                    row[5] = (f"producer id {batches[0].producer_id} epoch "
                              f"{batches[0].producer_epoch} does not hold transactional "
                              f"id {transactional_id!r}")
                    continue
            for wb in batches:
                pb = PendingBatch(
                    _appender(ctx), t.name, pd.index, acks, wb.codec, wb.values, wb.keys,
                    wb.timestamps, wb.headers, wb.producer_id, wb.producer_epoch,
                    wb.base_sequence if wb.producer_id >= 0 else -1, wb.transactional,
                    source=wb if wb.servable else None, topic_id=plog.topic_id)
                pending.append((row, pb, plog))
    if pending:
        _appender(ctx).append([pb for _, pb, _ in pending])
    if acks == 0:
        failed = [f"{name}[{row[0]}]: {row[1].name}" for name, parts in results
                  for row in parts if row[1] != ErrorCode.none]
        if failed:
            # No answer can tell the client (acks=0), so Kafka closes the connection:
            # the client reconnects and refreshes its metadata. What the writer
            # refuses later (idempotence checks) is not waited for, as acks=0 asks.
            raise CloseConnection(f"an acks=0 Produce failed: {', '.join(failed)}")
        return None
    deadline = time.monotonic() + min(max(_ms(request.timeout), 1.0), MAX_PRODUCE_WAIT_S)
    for row, pb, plog in pending:
        if row[1] != ErrorCode.none:
            continue  # an earlier batch of the partition failed
        try:
            base = pb.wait(max(0.0, deadline - time.monotonic()))
        except Exception as exc:
            row[1] = _produce_error_code(exc, pb.transactional)
            row[5] = _message(exc)
            continue
        if row[2] < 0:
            row[2] = base
            row[3] = pb.log_append_ms
        row[4] = plog.log_start
    return _produce_response(api_version, [
        (name, [tuple(r) for r in parts]) for name, parts in results])


# -- Fetch ---------------------------------------------------------------------------------

def _requested_partitions(broker: Any, topics: Any) -> tuple:
    """The PartitionLogs a Fetch asks for (unknown ones left out)."""
    plogs = []
    for ft in topics:
        tlog = broker._topics.get(ft.topic)
        if tlog is not None:
            n = len(tlog.partitions)
            plogs.extend(tlog.partitions[fp.partition] for fp in ft.partitions
                         if 0 <= fp.partition < n)
    return tuple(plogs)


def _fetch_partition(ctx: ConnectionContext, txn: Any, topic: str, fp: Any,
                     read_committed: bool, budget: int,
                     first: bool, store: int) -> tuple[dict, int]:
    """One partition's answer as keyword arguments, and the bytes of records in it.

    ``budget`` is what is left of the request's ``max_bytes``; ``first`` says no
    earlier partition of the response has records, so one batch may exceed the limits
    (KIP-74: only the first batch of the first non-empty partition may; the rest of the
    response stays within ``max_bytes``). ``store`` is the broker's
    :func:`~._encoder.store_token` (encoded-batch cache keys).
    """
    broker = ctx.broker
    p = fp.partition
    out: dict[str, Any] = {"partition_index": p, "error_code": ErrorCode.none,
                           "high_watermark": -1, "last_stable_offset": -1,
                           "log_start_offset": -1, "aborted_transactions": None,
                           "preferred_read_replica": -1, "records": None}
    tlog = broker._topics.get(topic)
    if tlog is None or not 0 <= p < len(tlog.partitions):
        out["error_code"] = ErrorCode.unknown_topic_or_partition
        return out, 0
    plog = tlog.partitions[p]
    end = plog.end_offset  # read before stable_end(): see mqlog.log
    stable = plog.stable_end()
    log_start = plog.log_start
    out["high_watermark"] = end
    out["last_stable_offset"] = stable
    out["log_start_offset"] = log_start
    offset = fp.fetch_offset
    if offset < log_start or offset > end:
        out["error_code"] = ErrorCode.offset_out_of_range
        return out, 0
    upper = stable if read_committed else end
    if read_committed:
        out["aborted_transactions"] = ()
    if offset >= upper:
        out["records"] = b""
        return out, 0
    limit = min(fp.partition_max_bytes, budget)
    if limit <= 0 and not first:
        out["records"] = b""
        return out, 0
    try:
        chunks, size, last = _read_batches(txn, plog, offset, upper, limit, first, store)
    except MqlogError as exc:
        # A batch that cannot be read (a damaged store) fails its partition only, as
        # Kafka answers a storage failure per partition: the others are still served.
        log.error("fetch of %s[%d] at offset %d failed: %s", topic, p, offset, exc)
        out["error_code"] = error_code_for(exc)
        return out, 0
    if read_committed and chunks:
        aborted = []
        for pid, ranges in plog.aborted.items():  # the writer replaces the dict whole
            for first_offset, marker in ranges:
                if marker >= offset and first_offset <= last:
                    aborted.append((pid, first_offset))
        out["aborted_transactions"] = aborted
    out["records"] = b"".join(chunks)
    return out, size


def _read_batches(txn: Any, plog: Any, offset: int, upper: int, limit: int, first: bool,
                  store: int) -> tuple[list[bytes], int, int]:
    """The partition's batches from ``offset`` (below ``upper``) as Kafka bytes, within
    ``limit`` bytes unless ``first`` (see :func:`_fetch_partition`); returns (the
    encoded batches, their total size, the last offset they hold).

    Raises:
        CorruptStoreError: a stored batch is damaged.
    """
    chunks: list[bytes] = []
    size = 0
    last = offset
    for base, raw in txn.batches(plog.topic_id, plog.partition, offset):
        if base >= upper:
            break
        head = _batch.header_fields(raw)
        last_offset = base + head[4]
        if last_offset < offset:
            continue  # a batch ending before the offset (compaction left a gap)
        wire = encode_stored(raw, 0, BatchKey(store, plog.topic_id, plog.partition, base,
                                              head[1], len(raw)))
        if (chunks or not first) and size + len(wire) > limit:
            break  # the response's first batch always goes, even if larger (KIP-74)
        chunks.append(wire)
        size += len(wire)
        last = last_offset
        if size >= limit:
            break
    return chunks, size, last


@register(ApiKey.fetch, 4, 12)
def fetch(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    broker = ctx.broker
    Response = response_class(ApiKey.fetch, api_version)
    TopicResp = _cls(Response, "FetchableTopicResponse")
    PartResp = _cls(Response, "PartitionData")
    Aborted = _cls(Response, "AbortedTransaction")
    if getattr(request, "session_id", 0) != 0:
        # We never create sessions, so an incremental fetch names an unknown one.
        return _build(Response, throttle_time=_ZERO,
                      error_code=ErrorCode.fetch_session_id_not_found, session_id=0,
                      responses=())
    read_committed = getattr(request, "isolation_level", 0) == 1
    wait_s = min(max(_ms(request.max_wait), 0.0), MAX_FETCH_WAIT_S)
    deadline = time.monotonic() + wait_s
    min_bytes = max(request.min_bytes, 0)
    # Kafka's fetch.max.bytes: the server's cap wins over what the client asks for.
    max_bytes = min(request.max_bytes, ctx.config.fetch_max_bytes)
    store = store_token(broker)
    waiter = None
    while True:
        if waiter is not None:
            seen = waiter.wakes  # before looking: a later commit changes it
        total = 0
        errors = False
        topics = []
        with broker._store.read() as txn:
            for ft in request.topics:
                parts = []
                for fp in ft.partitions:
                    kwargs, size = _fetch_partition(ctx, txn, ft.topic, fp,
                                                    read_committed, max_bytes - total,
                                                    total == 0, store)
                    total += size
                    errors = errors or kwargs["error_code"] != ErrorCode.none
                    parts.append(kwargs)
                topics.append((ft.topic, parts))
        now = time.monotonic()
        if total >= min_bytes or errors or now >= deadline or ctx.stopping.is_set() \
                or total >= max_bytes:
            break
        watched = _requested_partitions(broker, request.topics)
        if waiter is None or waiter.watched != watched:
            # A long poll (or its topics were re-created): watch the partitions asked
            # for, then look again before waiting (records may have come since).
            waiter = ctx.data_waiter(watched)
            continue
        with waiter:
            if not ctx.stopping.is_set():
                waiter.wait(seen, deadline - now)
    responses = []
    for name, parts in topics:
        built = []
        for kw in parts:
            aborted = kw["aborted_transactions"]
            if aborted is not None:
                kw["aborted_transactions"] = tuple(
                    Aborted(producer_id=pid, first_offset=first) for pid, first in aborted)
            built.append(_build(PartResp, **kw))
        responses.append(_build(TopicResp, topic=name, partitions=tuple(built)))
    return _build(Response, throttle_time=_ZERO, error_code=ErrorCode.none,
                  session_id=0, responses=tuple(responses))


# -- ListOffsets ------------------------------------------------------------------------------

_LATEST, _EARLIEST, _MAX_TIMESTAMP, _EARLIEST_LOCAL = -1, -2, -3, -4


def _max_timestamp(ctx: ConnectionContext, plog: Any) -> tuple[int, int]:
    """(offset, timestamp) of the record with the partition's largest timestamp (the
    first such record), or (-1, -1) when it holds no record with a timestamp >= 0.

    Cost: one time-index lookup and one batch decoded. The index keeps the running
    maximum, so its last entry names the batch holding the answer unless retention or
    DeleteRecords removed that record since; then a scan of the batch headers (each
    carries its max timestamp; no payload is decoded, and the values are read in
    place) and at most two batches decoded: the first one, which may start before the
    log start, and the winner.
    """
    tid, p = plog.topic_id, plog.partition
    with ctx.broker._store.read(buffers=True) as txn:
        top = txn.time_last(tid, p)
        if top is not None:
            base = txn.time_lookup(tid, p, top)
            if base is not None:
                found = _first_record_at(txn, plog, base, top)
                if found is not None:
                    return found
        start, end = plog.log_start, plog.end_offset
        best, best_base = (-1, -1), -1  # (offset, ts) found; base of a better header
        best_head = -1
        for base, raw in txn.batches(tid, p, start):
            if base >= end:
                break
            head = _batch.header_fields(raw)
            if head[3] & _batch.ATTR_CONTROL or base + head[4] < start:
                continue
            if base < start:  # straddles the log start: only its kept records count
                best = _best_record(_batch.decode(bytes(raw)), start, end, best)
            elif head[6] > max(best[1], best_head):
                best_base, best_head = base, head[6]
        if best_base >= 0:
            found = _first_record_at(txn, plog, best_base, best_head)
            if found is None:  # a header claiming more than its records: decode all
                return _max_timestamp_by_decoding(txn, plog)
            best = found
    return best


def _first_record_at(txn: Any, plog: Any, base: int, ts: int) -> tuple[int, int] | None:
    """(offset, ts) of the first kept record with timestamp ``ts`` in the data batch at
    ``base``, or None."""
    for b, raw in txn.batches(plog.topic_id, plog.partition, base):
        if b != base:
            return None
        batch = _batch.decode(bytes(raw))
        if batch.is_control:
            return None
        for i, off in enumerate(batch.offsets):
            if plog.log_start <= off < plog.end_offset and batch.timestamp_at(i) == ts:
                return off, ts
        return None
    return None


def _best_record(batch: Any, start: int, end: int,
                 best: tuple[int, int]) -> tuple[int, int]:
    """``best`` or a record of ``batch`` (offsets in [start, end)) with a larger ts."""
    for i, off in enumerate(batch.offsets):
        if start <= off < end and batch.timestamp_at(i) > best[1]:
            best = (off, batch.timestamp_at(i))
    return best


def _max_timestamp_by_decoding(txn: Any, plog: Any) -> tuple[int, int]:
    """The answer of :func:`_max_timestamp` from every record (a safety net)."""
    best = (-1, -1)
    for base, raw in txn.batches(plog.topic_id, plog.partition, plog.log_start):
        if base >= plog.end_offset:
            break
        batch = _batch.decode(bytes(raw))
        if not batch.is_control and batch.max_timestamp > best[1]:
            best = _best_record(batch, plog.log_start, plog.end_offset, best)
    return best


def _list_offset(ctx: ConnectionContext, plog: Any, want: int, read_committed: bool
                 ) -> tuple[ErrorCode, int, int]:
    """(error code, offset, timestamp) answering ListOffsets ``want`` for a partition.

    Raises:
        CorruptStoreError: a stored batch it had to read is damaged.
    """
    stable = plog.stable_end() if read_committed else None
    if want == _LATEST:
        return ErrorCode.none, plog.end_offset if stable is None else stable, -1
    if want in (_EARLIEST, _EARLIEST_LOCAL):
        return ErrorCode.none, plog.log_start, -1
    if want == _MAX_TIMESTAMP:
        off, ts = _max_timestamp(ctx, plog)
    elif want < 0:
        return ErrorCode.invalid_request, -1, -1
    else:
        with ctx.broker._store.read() as txn:
            found = offset_for_time(txn, plog, want)
        off, ts = found if found is not None else (-1, -1)
    if stable is not None and off >= stable:
        off, ts = -1, -1  # past the last stable offset: not visible to read_committed
    return ErrorCode.none, off, ts


@register(ApiKey.list_offsets, 1, 8)
def list_offsets(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    broker = ctx.broker
    Response = response_class(ApiKey.list_offsets, api_version)
    TopicResp = _cls(Response, "ListOffsetsTopicResponse")
    PartResp = _cls(Response, "ListOffsetsPartitionResponse")
    read_committed = getattr(request, "isolation_level", 0) == 1
    topics = []
    for t in request.topics:
        tlog = broker._topics.get(t.name)
        parts = []
        for lp in t.partitions:
            p = lp.partition_index
            code, ts, off = ErrorCode.none, -1, -1
            if tlog is None or not 0 <= p < len(tlog.partitions):
                code = ErrorCode.unknown_topic_or_partition
            else:
                try:
                    code, off, ts = _list_offset(ctx, tlog.partitions[p], lp.timestamp,
                                                 read_committed)
                except MqlogError as exc:  # a damaged batch fails its partition only
                    log.error("ListOffsets of %s[%d] failed: %s", t.name, p, exc)
                    code = error_code_for(exc)
            parts.append(_build(PartResp, partition_index=p, error_code=code,
                                timestamp=ts, offset=off, leader_epoch=0 if off >= 0
                                else -1))
        topics.append(_build(TopicResp, name=t.name, partitions=tuple(parts)))
    return _build(Response, throttle_time=_ZERO, topics=tuple(topics))


# -- InitProducerId ---------------------------------------------------------------------------

@register(ApiKey.init_producer_id, 0, 4)
def init_producer_id(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    Response = response_class(ApiKey.init_producer_id, api_version)
    if request.transactional_id is not None:
        code, pid, epoch = init_transactional(ctx, request)
        return _build(Response, throttle_time=_ZERO, error_code=code, producer_id=pid,
                      producer_epoch=epoch)
    # Without a transactional id Kafka always hands out a new producer id, also to a
    # KIP-360 request naming the client's current id and epoch (the client resets its
    # sequence numbers either way). Bumping the named id's epoch instead would let a
    # client claim an id this store never gave it (one kept from another server or
    # data directory), and fence the producer that gets that id later.
    pid, epoch = ctx.broker._txns.new_producer_id(), 0
    return _build(Response, throttle_time=_ZERO, error_code=ErrorCode.none,
                  producer_id=pid, producer_epoch=epoch)
