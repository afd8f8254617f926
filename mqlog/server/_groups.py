"""Consumer groups and committed offsets over the Kafka protocol: the handlers.

Handlers for FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
OffsetFetch, OffsetDelete, DescribeGroups, ListGroups and DeleteGroups (the
transactional offset APIs live in ``_txn.py``). Wire clients become members of the broker's
one :class:`~mqlog.group.GroupCoordinator`, so a kafka-python, a librdkafka and an
in-process ``broker.consumer(group_id=...)`` can share a group and split its partitions.

The group requests are answered by :mod:`mqlog.server._group_bridge` (:class:`WireGroups`
drives the coordinator; its docstring maps each request onto the coordinator's round):
no client is ever the leader (every JoinGroup answer names :data:`LEADER_ID`, which
belongs to no client), and each member's SyncGroup answer carries the partitions the
coordinator assigned it, encoded as Kafka's ``ConsumerProtocolAssignment``. This module
decodes requests, checks what Kafka checks up front (group id, protocol type, session
timeout, offset metadata size), and builds the responses of every served version.
OffsetCommit v10 and OffsetFetch v10 name topics by id (KIP-516); an id the store does
not know is answered ``UNKNOWN_TOPIC_ID`` per partition.

Thread-safety: handlers run on connection threads, concurrently; they keep no state of
their own (the bridge and the coordinator are thread-safe).
"""

from __future__ import annotations

import datetime
import logging
import typing
import uuid
from functools import lru_cache
from typing import Any

from ..errors import CommitFailedError, IllegalStateError, MqlogError
from ..records import OffsetAndMetadata, TopicPartition
from ._apis import ApiKey, ConnectionContext, ErrorCode, error_code_for, register, \
    response_class
from ._group_bridge import LEADER_ID, Refused, encode_assignment, wire_groups
from ._handlers import _build, _topic_of_uuid, _topic_uuid

__all__ = ["LEADER_ID", "MAX_METADATA_BYTES", "MAX_SESSION_S", "PROTOCOL_TYPE"]

log = logging.getLogger("mqlog.server")

#: The only group protocol type served: Kafka's consumer protocol.
PROTOCOL_TYPE = "consumer"
#: Kafka's group.max.session.timeout.ms default, in seconds; longer sessions are refused
#: (INVALID_SESSION_TIMEOUT). There is no minimum: tests use short sessions.
MAX_SESSION_S = 1800.0
#: Kafka's offset.metadata.max.bytes default.
MAX_METADATA_BYTES = 4096
#: Kafka's DescribeGroups answer when authorized operations were not asked for.
_NO_OPERATIONS = -(2 ** 31)
#: READ (3), DELETE (6) and DESCRIBE (8): everything a group allows, as a bit set.
_GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
_ZERO = datetime.timedelta(0)


# -- building responses of any version ---------------------------------------------------

@lru_cache(maxsize=None)
def _nested(cls: type, name: str) -> type:
    """The element class of the array field ``name`` of a kio class."""
    hint = typing.get_type_hints(cls)[name]
    for arg in typing.get_args(hint):  # unwrap Optional
        if typing.get_origin(arg) is tuple:
            hint = arg
    return typing.get_args(hint)[0]


def _make(cls: type, **values: Any) -> Any:
    """An instance of ``cls`` from the ``values`` its version has (others dropped),
    with no throttling where the class has a throttle time."""
    values.setdefault("throttle_time", _ZERO)
    return _build(cls, **values)


def _seconds(delta: Any, default: float) -> float:
    if delta is None:
        return default
    s = delta.total_seconds() if isinstance(delta, datetime.timedelta) else delta / 1000
    return s if s > 0 else default


# -- handlers ----------------------------------------------------------------------------

@register(ApiKey.find_coordinator, 0, 6)
def find_coordinator(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """This broker coordinates every group and transactional id."""
    Response = response_class(ApiKey.find_coordinator, api_version)
    host, port = ctx.server.advertised_address()
    node = ctx.config.node_id

    key_type = getattr(request, "key_type", 0)

    def answer(key: str) -> tuple[ErrorCode, str | None]:
        if key_type not in (0, 1):
            return ErrorCode.invalid_request, (
                f"key type {key_type} is not served: 0 (group) and 1 (transaction) are")
        if not key:
            return ErrorCode.invalid_request, "the coordinator key is empty"
        return ErrorCode.none, None

    if api_version < 4:
        code, message = answer(request.key)
        ok = code is ErrorCode.none
        return _make(Response, error_code=code, error_message=message,
                     node_id=node if ok else -1, host=host if ok else "",
                     port=port if ok else -1)
    Coordinator = _nested(Response, "coordinators")
    out = []
    for key in request.coordinator_keys:
        code, message = answer(key)
        ok = code is ErrorCode.none
        out.append(_make(Coordinator, key=key, node_id=node if ok else -1,
                         host=host if ok else "", port=port if ok else -1,
                         error_code=code, error_message=message))
    return _make(Response, coordinators=tuple(out))


def _join_error(ctx: ConnectionContext, request: Any, api_version: int,
                code: ErrorCode) -> Any:
    Response = response_class(ApiKey.join_group, api_version)
    return _make(Response, error_code=code, generation_id=-1, protocol_type=None,
                 protocol_name=None if api_version >= 7 else "", leader="",
                 member_id=request.member_id, members=())


@register(ApiKey.join_group, 0, 9, error_response=_join_error)
def join_group(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """Join a group; held until the round completes. Every client is a follower."""
    Response = response_class(ApiKey.join_group, api_version)
    if not request.group_id:
        return _join_error(ctx, request, api_version, ErrorCode.invalid_group_id)
    if request.protocol_type != PROTOCOL_TYPE:
        log.warning("group %r: protocol type %r is not served (only %r)",
                    request.group_id, request.protocol_type, PROTOCOL_TYPE)
        return _join_error(ctx, request, api_version,
                           ErrorCode.inconsistent_group_protocol)
    session = _seconds(request.session_timeout, 0.0)
    if not 0 < session <= MAX_SESSION_S:
        return _join_error(ctx, request, api_version, ErrorCode.invalid_session_timeout)
    # Capped here, so the hold and the eviction of members that do not rejoin (in
    # Heartbeat too) both count with the cap.
    rebalance = min(_seconds(getattr(request, "rebalance_timeout", None), session),
                    ctx.config.max_rebalance_timeout_s)
    protocols = [(p.name, bytes(p.metadata)) for p in request.protocols]
    try:
        wm, generation, protocol = wire_groups(ctx.broker).join(
            ctx, request.group_id, request.member_id,
            getattr(request, "group_instance_id", None), session, rebalance, protocols)
    except Refused as r:
        return _join_error(ctx, request, api_version, r.code)
    return _make(Response, error_code=ErrorCode.none, generation_id=generation,
                 protocol_type=PROTOCOL_TYPE, protocol_name=protocol, leader=LEADER_ID,
                 skip_assignment=False, member_id=wm.member.member_id, members=())


def _sync_error(ctx: ConnectionContext, request: Any, api_version: int,
                code: ErrorCode) -> Any:
    Response = response_class(ApiKey.sync_group, api_version)
    return _make(Response, error_code=code, protocol_type=None, protocol_name=None,
                 assignment=b"")


@register(ApiKey.sync_group, 0, 5, error_response=_sync_error)
def sync_group(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """Answer each (follower) member with its partitions from the coordinator."""
    Response = response_class(ApiKey.sync_group, api_version)
    ptype = getattr(request, "protocol_type", None)
    if ptype is not None and ptype != PROTOCOL_TYPE:
        return _sync_error(ctx, request, api_version, ErrorCode.inconsistent_group_protocol)
    try:
        partitions, protocol = wire_groups(ctx.broker).sync(
            request.group_id, request.member_id,
            getattr(request, "group_instance_id", None), request.generation_id)
    except Refused as r:
        return _sync_error(ctx, request, api_version, r.code)
    return _make(Response, error_code=ErrorCode.none, protocol_type=PROTOCOL_TYPE,
                 protocol_name=protocol, assignment=encode_assignment(partitions))


@register(ApiKey.heartbeat, 0, 4)
def heartbeat(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """Liveness; REBALANCE_IN_PROGRESS when the member must rejoin."""
    Response = response_class(ApiKey.heartbeat, api_version)
    code = wire_groups(ctx.broker).heartbeat(
        request.group_id, request.member_id, getattr(request, "group_instance_id", None),
        request.generation_id)
    return _make(Response, error_code=code)


@register(ApiKey.leave_group, 0, 5)
def leave_group(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """Remove members at once; their partitions go to the others in a new round."""
    Response = response_class(ApiKey.leave_group, api_version)
    wg = wire_groups(ctx.broker)
    if api_version < 3:
        return _make(Response, error_code=wg.leave(request.group_id, request.member_id,
                                                   None))
    MemberResponse = _nested(Response, "members")
    out = []
    for m in request.members:
        code = wg.leave(request.group_id, m.member_id, m.group_instance_id)
        out.append(_make(MemberResponse, member_id=m.member_id,
                         group_instance_id=m.group_instance_id, error_code=code))
    return _make(Response, error_code=ErrorCode.none, members=tuple(out))


def _topic_name(ctx: ConnectionContext, t: Any) -> str | None:
    """The name of a request's topic, given by name or (v10+) by topic id; None for an
    id the store does not know."""
    name = getattr(t, "name", None)
    if name is None:
        tlog = _topic_of_uuid(ctx, getattr(t, "topic_id", None))
        name = tlog.name if tlog is not None else None
    return name


@register(ApiKey.offset_commit, 2, 10)
def offset_commit(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """Store committed offsets, fenced by member and generation."""
    Response = response_class(ApiKey.offset_commit, api_version)
    Topic = _nested(Response, "topics")
    Partition = _nested(Topic, "partitions")
    broker, group = ctx.broker, request.group_id
    topics = dict(broker._topics)  # snapshot
    codes: dict[TopicPartition, ErrorCode] = {}
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    names = [_topic_name(ctx, t) for t in request.topics]
    for t, name in zip(request.topics, names):
        tlog = topics.get(name) if name is not None else None
        for p in t.partitions:
            tp = TopicPartition(name, int(p.partition_index))
            meta = p.committed_metadata or ""
            if name is None:
                codes[tp] = ErrorCode.unknown_topic_id
            elif tlog is None or not 0 <= tp.partition < len(tlog.partitions):
                codes[tp] = ErrorCode.unknown_topic_or_partition
            elif len(meta.encode()) > MAX_METADATA_BYTES:
                codes[tp] = ErrorCode.offset_metadata_too_large
            elif p.committed_offset < 0:
                codes[tp] = ErrorCode.invalid_request
            else:
                offsets[tp] = OffsetAndMetadata(
                    int(p.committed_offset), meta,
                    int(getattr(p, "committed_leader_epoch", -1)))
    if offsets:
        wg = wire_groups(ctx.broker)
        generation = int(request.generation_id_or_member_epoch)
        member_id = request.member_id
        tps = sorted(offsets)
        code = ErrorCode.none
        try:
            if not group:
                raise Refused(ErrorCode.invalid_group_id)
            check = wg.commit_check(group, member_id,
                                    getattr(request, "group_instance_id", None),
                                    generation, tps)
            broker.commit_offsets(group, offsets, check=check)
        except Refused as r:
            code = r.code
        except CommitFailedError:
            code = wg.refusal_code(group, member_id, generation, tps)
        except MqlogError as exc:
            code = error_code_for(exc)
        for tp in tps:
            codes[tp] = code
    out = []
    for t, name in zip(request.topics, names):  # answer in the request's order
        parts = tuple(_make(Partition, partition_index=int(p.partition_index),
                            error_code=codes[TopicPartition(name, int(p.partition_index))])
                      for p in t.partitions)
        out.append(_make(Topic, name=name or "", topic_id=getattr(t, "topic_id", None),
                         partitions=parts))
    return _make(Response, topics=tuple(out))


def _fetched_topics(ctx: ConnectionContext, group: str, requested: Any,
                    Topic: type, require_stable: bool) -> tuple:
    """OffsetFetch topics of one group: committed offsets, -1 where none.

    ``require_stable`` (KIP-447, v7+): partitions whose offsets a transaction has
    staged but not yet committed or aborted are answered ``UNSTABLE_OFFSET_COMMIT``
    (the client asks again), so a read_committed consumer taking over a partition
    does not start from an offset that an open transaction is about to move.
    """
    broker = ctx.broker
    Partition = _nested(Topic, "partitions")
    unstable = ctx.server.transactions().pending_offsets(group) | \
        broker._pending_txn_offsets(group) if require_stable and group else set()
    committed = broker.group_offsets(group) if group else {}
    # (name or None for an unknown topic id, topic id for v10+ answers, partitions)
    wanted: list[tuple[str | None, Any, list[int]]] = []
    if requested is None:  # every partition the group committed for
        by_name: dict[str, list[int]] = {}
        for tp in sorted(committed):
            by_name.setdefault(tp.topic, []).append(tp.partition)
        for name, parts in by_name.items():
            tlog = broker._topics.get(name)
            # A topic deleted since (a race with DeleteTopics): the zero id, as v10's
            # non-nullable field needs one.
            wanted.append((name, _topic_uuid(tlog.topic_id) if tlog is not None else
                           uuid.UUID(int=0), parts))
    else:
        for t in requested:
            wanted.append((_topic_name(ctx, t), getattr(t, "topic_id", None),
                           [int(p) for p in t.partition_indexes]))
    out = []
    for name, topic_id, parts in wanted:
        ps = []
        for p in parts:
            om = committed.get(TopicPartition(name, p)) if name is not None else None
            code = ErrorCode.none
            if name is None:
                code = ErrorCode.unknown_topic_id
            elif TopicPartition(name, p) in unstable:
                code, om = ErrorCode.unstable_offset_commit, None
            ps.append(_make(Partition, partition_index=p,
                            committed_offset=-1 if om is None else om.offset,
                            committed_leader_epoch=-1 if om is None or om.leader_epoch is None
                            else om.leader_epoch,
                            metadata="" if om is None else (om.metadata or ""),
                            error_code=code))
        out.append(_make(Topic, name=name or "", topic_id=topic_id, partitions=tuple(ps)))
    return tuple(out)


@register(ApiKey.offset_fetch, 1, 10)
def offset_fetch(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """Committed offsets (-1 where the group committed none); v8+ for many groups."""
    Response = response_class(ApiKey.offset_fetch, api_version)
    stable = bool(getattr(request, "require_stable", False))
    if api_version < 8:
        Topic = _nested(Response, "topics")
        return _make(Response, error_code=ErrorCode.none, topics=_fetched_topics(
            ctx, request.group_id, request.topics, Topic, stable))
    Group = _nested(Response, "groups")
    Topic = _nested(Group, "topics")
    groups = tuple(_make(Group, group_id=g.group_id, error_code=ErrorCode.none,
                         topics=_fetched_topics(ctx, g.group_id, g.topics, Topic, stable))
                   for g in request.groups)
    return _make(Response, groups=groups)


def _offset_delete_error(ctx: ConnectionContext, request: Any, api_version: int,
                         code: ErrorCode) -> Any:
    return _make(response_class(ApiKey.offset_delete, api_version), error_code=code,
                 topics=())


@register(ApiKey.offset_delete, 0, 0, error_response=_offset_delete_error)
def offset_delete(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """Delete a group's committed offsets of some partitions (Kafka's admin
    ``deleteConsumerGroupOffsets``); refused per partition with
    ``GROUP_SUBSCRIBED_TO_TOPIC`` for topics the group's members subscribe to."""
    Response = response_class(ApiKey.offset_delete, api_version)
    Topic = _nested(Response, "topics")
    Partition = _nested(Topic, "partitions")
    broker, group = ctx.broker, request.group_id
    if not group:
        return _offset_delete_error(ctx, request, api_version, ErrorCode.invalid_group_id)
    if group not in broker._group_states():
        return _offset_delete_error(ctx, request, api_version,
                                    ErrorCode.group_id_not_found)
    codes: dict[TopicPartition, ErrorCode] = {}
    doomed: list[TopicPartition] = []
    for t in request.topics:
        tlog = broker._topics.get(t.name)
        for p in t.partitions:
            tp = TopicPartition(t.name, int(p.partition_index))
            if tlog is None or not 0 <= tp.partition < len(tlog.partitions):
                codes[tp] = ErrorCode.unknown_topic_or_partition
            else:
                doomed.append(tp)
    if doomed:
        try:
            refused = _delete_offsets(broker, group, doomed)
        except MqlogError as exc:
            return _offset_delete_error(ctx, request, api_version, error_code_for(exc))
        for tp in doomed:
            codes[tp] = ErrorCode.group_subscribed_to_topic if tp in refused \
                else ErrorCode.none
    return _make(Response, error_code=ErrorCode.none, topics=tuple(
        _make(Topic, name=t.name, partitions=tuple(
            _make(Partition, partition_index=int(p.partition_index),
                  error_code=codes[TopicPartition(t.name, int(p.partition_index))])
            for p in t.partitions))
        for t in request.topics))


def _delete_offsets(broker: Any, group: str,
                    doomed: list[TopicPartition]) -> set[TopicPartition]:
    """Delete ``group``'s committed offsets of ``doomed`` partitions in one write,
    except those of topics its members subscribe to (judged inside the write, so a
    member joining meanwhile is seen); returns the refused ones."""
    coord = broker._coordinator
    topics = {tp.topic for tp in doomed}
    refused: set[TopicPartition] = set()

    def spare() -> set[TopicPartition]:
        subscribed = coord.subscribed_topics(group, topics)
        refused.clear()  # the write may run more than once
        refused.update(tp for tp in doomed if tp.topic in subscribed)
        return refused

    broker.delete_committed_offsets(group, doomed, spare=spare)
    return refused


@register(ApiKey.describe_groups, 0, 6)
def describe_groups(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """State, protocol and members (subscription and assignment blobs) per group."""
    Response = response_class(ApiKey.describe_groups, api_version)
    Group = _nested(Response, "groups")
    Member_ = _nested(Group, "members")
    wg = wire_groups(ctx.broker)
    known = ctx.broker._group_states()
    include_ops = getattr(request, "include_authorized_operations", False)
    out = []
    for gid in request.groups:
        if gid not in known:
            dead = api_version >= 6
            out.append(_make(
                Group, error_code=ErrorCode.group_id_not_found if dead else ErrorCode.none,
                error_message=f"group {gid!r} does not exist" if dead else None,
                group_id=gid, group_state="Dead", protocol_type="", protocol_data="",
                members=(), authorized_operations=_NO_OPERATIONS))
            continue
        d = ctx.broker._coordinator.describe(gid)
        members = []
        for m in d.members:
            meta, assignment, host = wg.member_blobs(gid, m.member_id, d.protocol,
                                                     m.assignment)
            members.append(_make(Member_, member_id=m.member_id,
                                 group_instance_id=m.group_instance_id,
                                 client_id=m.client_id, client_host=host,
                                 member_metadata=meta, member_assignment=assignment))
        out.append(_make(Group, error_code=ErrorCode.none, error_message=None,
                         group_id=gid, group_state=d.state,
                         protocol_type=_protocol_type(d),
                         protocol_data=d.protocol, members=tuple(members),
                         authorized_operations=_GROUP_OPERATIONS if include_ops
                         else _NO_OPERATIONS))
    return _make(Response, groups=tuple(out))


@register(ApiKey.list_groups, 0, 5)
def list_groups(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """Every group with members or committed offsets (all classic consumer groups)."""
    Response = response_class(ApiKey.list_groups, api_version)
    Listed = _nested(Response, "groups")
    states = {s.lower() for s in getattr(request, "states_filter", ())}
    types = {t.lower() for t in getattr(request, "types_filter", ())}
    out = []
    if not types or "classic" in types:
        coord = ctx.broker._coordinator
        for gid, state in sorted(ctx.broker._group_states().items()):
            if states and state.lower() not in states:
                continue
            out.append(_make(Listed, group_id=gid,
                             protocol_type=_protocol_type(coord.describe(gid)),
                             group_state=state, group_type="classic"))
    return _make(Response, error_code=ErrorCode.none, groups=tuple(out))


def _protocol_type(described: Any) -> str:
    """A group's protocol type as Kafka reports it: ``"consumer"`` once members joined
    with the consumer protocol, ``""`` for a group that only has committed offsets
    (which clients call a *simple* consumer group), in ListGroups and DescribeGroups
    alike."""
    return PROTOCOL_TYPE if described.members or described.protocol else ""


@register(ApiKey.delete_groups, 0, 2)
def delete_groups(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """Delete groups and their committed offsets; refused while a group has members."""
    Response = response_class(ApiKey.delete_groups, api_version)
    Result = _nested(Response, "results")
    broker = ctx.broker
    known = set(broker._group_states())  # once: a request may name a million groups
    out = []
    for gid in request.groups_names:
        if gid not in known:
            code = ErrorCode.group_id_not_found
        else:
            try:
                broker.delete_group(gid)
                known.discard(gid)  # named twice: deleted once
                code = ErrorCode.none
            except IllegalStateError:
                code = ErrorCode.non_empty_group
            except MqlogError as exc:
                code = error_code_for(exc)
        out.append(_make(Result, group_id=gid, error_code=code))
    return _make(Response, results=tuple(out))
