"""Consumer groups and committed offsets over the Kafka protocol.

Handlers for FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
OffsetFetch, DescribeGroups, ListGroups and DeleteGroups (the transactional offset APIs
live in ``_txn.py``). Wire clients become members of the broker's
one :class:`~mqlog.group.GroupCoordinator`, so a kafka-python, a librdkafka and an
in-process ``broker.consumer(group_id=...)`` can share a group and split its partitions.

The bridge
----------
Kafka's classic protocol lets a *leader client* compute the assignment (it gets every
member's subscription in its JoinGroup answer and sends the result in its SyncGroup);
mqlog's coordinator assigns on the broker. So no client is ever the leader: every
JoinGroup answer names a leader id that belongs to no client (:data:`LEADER_ID`), which
makes every client a follower that sends an empty SyncGroup, and the assignment the
coordinator computed comes back in each member's SyncGroup answer, encoded as Kafka's
``ConsumerProtocolAssignment``. The protocol (assignor) is the one the coordinator chose
among the names every member offers (only mqlog's built-ins ``range``, ``roundrobin``,
``sticky`` and ``cooperative-sticky`` can run broker-side; other names are ignored).

A wire member's round, mapped onto the coordinator's (see :mod:`mqlog.group`):

* **JoinGroup** = the in-process consumer's ``must_join`` step: an eager client revoked
  everything before sending it, so the member releases all it owns; a cooperative one
  releases only what its last SyncGroup answer no longer held (it revoked those and
  rejoined). Then ``mark_joined``, and the request is held until the round completes
  (every live member joined), for at most the member's ``rebalance_timeout_ms``; the
  wait is on the broker's data condition (the coordinator notifies it on every round
  change), so it costs this connection's thread only. A known member that rejoins a
  settled group with an unchanged subscription gets its current generation back and no
  round starts (Kafka's answer to a follower; kafka-python rejoins like that after a
  join whose answer arrived while no ``poll()`` waited for it).
* **SyncGroup** = ``pending_sync`` + ``take``: the member takes the partitions of its
  target that nobody owns (cooperative: the ones still owned elsewhere come in a later
  round, after their owner revoked them), and gets exactly what it owns.
* **Heartbeat** = the liveness ``poll()`` gives an in-process member. A wire member's
  coordinator entry has ``max_poll_interval`` = its ``session_timeout_ms``, so one that
  stops heartbeating is evicted like a consumer that stops polling. When a round is
  open that it has not joined, the answer is ``REBALANCE_IN_PROGRESS``; a member that
  keeps heartbeating without rejoining for ``rebalance_timeout_ms`` is evicted, and so
  are the wire members that have not rejoined when a held JoinGroup reaches its own
  rebalance timeout (in-process members answer to their ``max_poll_interval_ms``).
* **LeaveGroup** removes the member at once (static members too: an explicit leave).
* **OffsetCommit** is fenced as in-process commits are (``check_commit`` inside the write
  transaction): an unknown member gets ``UNKNOWN_MEMBER_ID``, a stale generation
  ``ILLEGAL_GENERATION`` (``REBALANCE_IN_PROGRESS`` between JoinGroup and SyncGroup), a
  partition the member does not own ``REBALANCE_IN_PROGRESS`` during a round and
  ``ILLEGAL_GENERATION`` otherwise. A commit without a member (generation -1, the
  "simple" consumer with ``assign()``) is accepted only while the group has no members.

Static membership (``group.instance.id``): a JoinGroup with an empty member id and a known
instance id takes the old member's slot and partitions without a rebalance (the
coordinator's takeover); requests from the replaced member id get
``FENCED_INSTANCE_ID``. A static client sends no LeaveGroup at close, so its slot stays
until its session times out, as with Kafka.

Thread-safety: handlers run on connection threads, concurrently. :class:`WireGroups`
is thread-safe (its ``_lock`` guards the member table and is a leaf: never held while
calling the coordinator, the broker or waiting). The coordinator is thread-safe.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import logging
import threading
import time
import typing
import weakref
from functools import lru_cache
from typing import Any

from kio.schema.consumer_protocol_assignment.v0.data import (
    ConsumerProtocolAssignment,
    TopicPartition as _AssignedTopic,
)
from kio.schema.consumer_protocol_subscription.v0.data import (
    ConsumerProtocolSubscription as _SubscriptionV0,
)
from kio.schema.consumer_protocol_subscription.v1.data import (
    ConsumerProtocolSubscription as _SubscriptionV1,
)
from kio.schema.consumer_protocol_subscription.v2.data import (
    ConsumerProtocolSubscription as _SubscriptionV2,
)
from kio.schema.consumer_protocol_subscription.v3.data import (
    ConsumerProtocolSubscription as _SubscriptionV3,
)
from kio.serial import entity_reader, entity_writer

from ..assignors import ASSIGNORS
from ..errors import (
    CommitFailedError,
    IllegalStateError,
    InconsistentGroupProtocolError,
    MqlogError,
)
from ..group import FENCED, GroupState, Member
from ..records import OffsetAndMetadata, TopicPartition
from ._apis import ApiKey, ConnectionContext, ErrorCode, error_code_for, register, \
    response_class

__all__ = ["LEADER_ID", "PROTOCOL_TYPE", "WireGroups", "decode_subscription",
           "encode_assignment", "encode_subscription", "wire_groups"]

log = logging.getLogger("mqlog.server")

#: The leader named in every JoinGroup answer; no member has this id, so every client
#: is a follower and the coordinator's assignment is the one that counts.
LEADER_ID = "mqlog-coordinator"
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
#: Longest single wait of a held JoinGroup before it re-checks evictions (a safety net;
#: round changes notify the condition).
_RECHECK_S = 1.0
_ZERO = datetime.timedelta(0)


# -- the consumer protocol's embedded blobs ----------------------------------------------

_SUBSCRIPTIONS = (_SubscriptionV0, _SubscriptionV1, _SubscriptionV2, _SubscriptionV3)
_read_subscription = [entity_reader(cls) for cls in _SUBSCRIPTIONS]
_write_subscription = entity_writer(_SubscriptionV0)
_write_assignment = entity_writer(ConsumerProtocolAssignment)
_VERSION0 = b"\x00\x00"


def decode_subscription(blob: bytes) -> tuple[frozenset[str], frozenset[TopicPartition]]:
    """Topics and owned partitions of a ``ConsumerProtocolSubscription`` (JoinGroup
    protocol metadata: an int16 version, then that version's fields).

    Versions above 3 are read as 3 (later versions only append fields).

    Raises:
        ValueError: the blob is not a consumer subscription.
    """
    if len(blob) < 2:
        raise ValueError(f"consumer subscription of {len(blob)} bytes has no version")
    version = int.from_bytes(blob[:2], "big", signed=True)
    if version < 0:
        raise ValueError(f"consumer subscription version {version} is negative")
    try:
        sub, _ = _read_subscription[min(version, 3)](memoryview(blob)[2:], 0)
    except Exception as exc:  # kio's reader raises its own errors on short input
        raise ValueError(f"undecodable consumer subscription v{version}: {exc}") from None
    owned = frozenset(TopicPartition(t.topic, int(p))
                      for t in getattr(sub, "owned_partitions", ()) for p in t.partitions)
    return frozenset(sub.topics), owned


def encode_subscription(topics: typing.Iterable[str]) -> bytes:
    """A ``ConsumerProtocolSubscription`` v0 of ``topics`` (DescribeGroups member data)."""
    buf = io.BytesIO()
    buf.write(_VERSION0)
    _write_subscription(buf, _SubscriptionV0(topics=tuple(sorted(topics)), user_data=b""))
    return buf.getvalue()


def encode_assignment(partitions: typing.Iterable[TopicPartition]) -> bytes:
    """A ``ConsumerProtocolAssignment`` v0 (every client reads v0) of ``partitions``."""
    by_topic: dict[str, list[int]] = {}
    for t, p in sorted(partitions):
        by_topic.setdefault(t, []).append(p)
    buf = io.BytesIO()
    buf.write(_VERSION0)
    _write_assignment(buf, ConsumerProtocolAssignment(
        assigned_partitions=tuple(_AssignedTopic(topic=t, partitions=tuple(ps))
                                  for t, ps in by_topic.items()),
        user_data=b""))
    return buf.getvalue()


# -- building responses of any version ---------------------------------------------------

@lru_cache(maxsize=None)
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


@lru_cache(maxsize=None)
def _nested(cls: type, name: str) -> type:
    """The element class of the array field ``name`` of a kio class."""
    hint = typing.get_type_hints(cls)[name]
    for arg in typing.get_args(hint):  # unwrap Optional
        if typing.get_origin(arg) is tuple:
            hint = arg
    return typing.get_args(hint)[0]


def _make(cls: type, **values: Any) -> Any:
    """An instance of ``cls`` from the ``values`` its version has (others dropped)."""
    names = _field_names(cls)
    if "throttle_time" in names:
        values.setdefault("throttle_time", _ZERO)
    return cls(**{k: v for k, v in values.items() if k in names})


def _seconds(delta: Any, default: float) -> float:
    if delta is None:
        return default
    s = delta.total_seconds() if isinstance(delta, datetime.timedelta) else delta / 1000
    return s if s > 0 else default


# -- the coordinator adapter -------------------------------------------------------------

class WireMember:
    """What the server knows of one wire client's membership (beyond the coordinator's
    :class:`~mqlog.group.Member`). Fields change under :attr:`WireGroups._lock` or on the
    member's own requests (one client sends one group request at a time)."""

    __slots__ = ("member", "group_id", "session_timeout", "rebalance_timeout",
                 "protocols", "client_host", "granted", "asked_at")

    def __init__(self, member: Member, group_id: str, session_timeout: float,
                 rebalance_timeout: float, protocols: dict[str, bytes],
                 client_host: str) -> None:
        self.member = member
        self.group_id = group_id
        self.session_timeout = session_timeout
        self.rebalance_timeout = rebalance_timeout
        self.protocols = protocols  # protocol name -> the client's metadata blob
        self.client_host = client_host
        self.granted: frozenset[TopicPartition] | None = None  # last SyncGroup answer
        self.asked_at: float | None = None  # first REBALANCE_IN_PROGRESS of this round

    def __repr__(self) -> str:
        return f"WireMember({self.member.member_id!r}, group={self.group_id!r})"


class _Refused(Exception):
    """A group request answered with an error code (internal control flow)."""

    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code)
        self.code = code


class WireGroups:
    """The wire members of one broker's groups, driving its coordinator.

    Thread-safe; one per broker (:func:`wire_groups`), shared by every connection and by
    every server started on that broker. ``_lock`` guards ``_members`` only.
    """

    def __init__(self, broker: Any) -> None:
        # Weak: this object is the value of a WeakKeyDictionary keyed by the broker, and
        # a strong reference (also through the coordinator) would keep the broker alive.
        self._broker_ref = weakref.ref(broker)
        self._lock = threading.Lock()  # guards _members (leaf)
        self._members: dict[str, dict[str, WireMember]] = {}  # group -> member id -> wm

    @property
    def _broker(self) -> Any:
        broker = self._broker_ref()
        if broker is None:  # pragma: no cover - a server keeps its broker alive
            raise ReferenceError("the broker of these wire groups was garbage-collected")
        return broker

    @property
    def _coord(self) -> Any:
        return self._broker._coordinator

    # -- member table -------------------------------------------------------------------

    def _add(self, wm: WireMember) -> None:
        with self._lock:
            self._members.setdefault(wm.group_id, {})[wm.member.member_id] = wm

    def _drop(self, group_id: str, member_id: str) -> None:
        with self._lock:
            table = self._members.get(group_id)
            if table is not None:
                table.pop(member_id, None)
                if not table:
                    del self._members[group_id]

    def wire_member(self, group_id: str, member_id: str) -> WireMember | None:
        """The wire member ``member_id`` of ``group_id`` (live or not), or None."""
        with self._lock:
            return self._members.get(group_id, {}).get(member_id)

    def wire_members(self, group_id: str) -> list[WireMember]:
        with self._lock:
            return list(self._members.get(group_id, {}).values())

    def _prune(self, group_id: str) -> None:
        """Forget wire members the coordinator removed (expired, evicted, left)."""
        for wm in self.wire_members(group_id):
            if self._coord.member(group_id, wm.member.member_id) is not wm.member:
                self._drop(group_id, wm.member.member_id)

    def live(self, group_id: str, member_id: str,
             instance_id: str | None = None) -> WireMember:
        """The live wire member for a request, or the error code Kafka answers.

        Raises:
            _Refused: FENCED_INSTANCE_ID (a newer client took this static member's
                slot, or the request's instance id is another member's) or
                UNKNOWN_MEMBER_ID.
        """
        wm = self.wire_member(group_id, member_id)
        current = self._coord.member(group_id, member_id)
        if wm is None or current is not wm.member:
            if wm is not None:
                self._drop(group_id, member_id)
                if wm.member.evicted == FENCED:
                    raise _Refused(ErrorCode.fenced_instance_id)
            if instance_id is not None and self._instance_taken(group_id, instance_id):
                raise _Refused(ErrorCode.fenced_instance_id)
            raise _Refused(ErrorCode.unknown_member_id)
        if instance_id is not None and wm.member.instance_id not in (None, instance_id):
            raise _Refused(ErrorCode.fenced_instance_id)
        return wm

    def _instance_taken(self, group_id: str, instance_id: str) -> bool:
        return any(m.group_instance_id == instance_id
                   for m in self._coord.describe(group_id).members)

    # -- JoinGroup ----------------------------------------------------------------------

    def join(self, ctx: ConnectionContext, group_id: str, member_id: str,
             instance_id: str | None, session_timeout: float, rebalance_timeout: float,
             protocols: list[tuple[str, bytes]]) -> tuple[WireMember, int, str]:
        """Join (or rejoin) ``group_id`` and wait for the round to complete.

        Returns:
            (member, generation, protocol name) for the JoinGroup answer.

        Raises:
            _Refused: with the Kafka error code to answer.
        """
        assignors = tuple(ASSIGNORS[name] for name, _ in protocols if name in ASSIGNORS)
        if not assignors:
            log.warning("group %r: client %s offers no assignor the broker can run (%s)",
                        group_id, ctx.client_id, ", ".join(n for n, _ in protocols))
            raise _Refused(ErrorCode.inconsistent_group_protocol)
        try:
            topics, _owned = decode_subscription(
                next(blob for name, blob in protocols if name in ASSIGNORS))
        except ValueError as exc:
            log.warning("group %r: client %s sent bad subscription metadata: %s",
                        group_id, ctx.client_id, exc)
            raise _Refused(ErrorCode.inconsistent_group_protocol) from None
        coord = self._coord
        self._prune(group_id)
        if member_id:
            wm = self.live(group_id, member_id, instance_id)
            member = wm.member
            wm.session_timeout, wm.rebalance_timeout = session_timeout, rebalance_timeout
            wm.protocols = dict(protocols)
            coord.heartbeat(group_id, member)
            if member.topics != topics or member.pattern is not None:
                self._release_revoked(wm)
                coord.resubscribe(group_id, member, topics, None)
            elif self._settled(group_id, member) and not coord.must_join(group_id, member):
                # A known member rejoining a settled group with the same subscription
                # (kafka-python does after a join whose answer came while no poll()
                # waited for it): as Kafka does for a follower, no new round; the answer
                # repeats the generation and SyncGroup hands back the same partitions.
                # Only partitions a cooperative client revoked must move: a round.
                revoked = set(member.owned) - wm.granted \
                    if coord.cooperative(group_id) and wm.granted is not None else set()
                if revoked:
                    coord.release(group_id, member, revoked, True)
        else:
            try:
                member = coord.join(
                    group_id, client_id=ctx.client_id or "consumer", topics=topics,
                    pattern=None, assignors=assignors, instance_id=instance_id,
                    max_poll_interval=session_timeout, session_timeout=session_timeout)
            except InconsistentGroupProtocolError as exc:
                log.warning("%s", exc)
                raise _Refused(ErrorCode.inconsistent_group_protocol) from None
            # After a static takeover the newcomer owns what the old member did and
            # no round is needed: the wait below returns at once, and SyncGroup hands
            # all of it to the new client.
            wm = WireMember(member, group_id, session_timeout, rebalance_timeout,
                            dict(protocols), _host(ctx))
            self._add(wm)
        log.debug("group %r: %s joins (owns %d)", group_id, wm.member.member_id,
                  len(wm.member.owned))
        generation = self._await_round(ctx, wm)
        protocol = coord.describe(group_id).protocol
        log.debug("group %r: %s joined generation %d (%s)", group_id,
                  wm.member.member_id, generation, protocol)
        return wm, generation, protocol

    def _settled(self, group_id: str, member: Member) -> bool:
        d = self._coord.describe(group_id)
        return d.state == GroupState.STABLE.value and member.generation == d.generation

    def _release_revoked(self, wm: WireMember) -> None:
        """Release what the client gave up before (re)joining: everything (eager), or
        what its last assignment no longer held (cooperative)."""
        member, coord, gid = wm.member, self._coord, wm.group_id
        if not member.owned:
            return
        if coord.cooperative(gid) and wm.granted is not None:
            gone = set(member.owned) - wm.granted
        elif coord.cooperative(gid):
            gone = set()
        else:
            gone = set(member.owned)
        if gone:
            coord.release(gid, member, gone, False)

    def _await_round(self, ctx: ConnectionContext, wm: WireMember) -> int:
        """Hold a JoinGroup until the member's round completes; return its generation.

        Raises:
            _Refused: UNKNOWN_MEMBER_ID (removed meanwhile), REBALANCE_IN_PROGRESS (the
                round did not complete within the rebalance timeout), or
                COORDINATOR_NOT_AVAILABLE (the server is stopping).
        """
        broker, coord, gid, member = self._broker, self._coord, wm.group_id, wm.member
        cond = broker._data_cond
        deadline = time.monotonic() + wm.rebalance_timeout
        evicted_stragglers = False
        while True:
            with cond:
                seq = broker._data_seq
            coord.heartbeat(gid, member)  # the held request keeps the member alive
            if coord.member(gid, member.member_id) is not member:
                self._drop(gid, member.member_id)
                raise _Refused(ErrorCode.fenced_instance_id if member.evicted == FENCED
                               else ErrorCode.unknown_member_id)
            if coord.must_join(gid, member):
                self._release_revoked(wm)
                coord.mark_joined(gid, member)
                wm.asked_at = None
            sync = coord.pending_sync(gid, member)
            if sync is not None:
                return sync[0]
            if self._settled(gid, member):
                return member.generation  # a static takeover: no round needed
            now = time.monotonic()
            if ctx.stopping.is_set():
                raise _Refused(ErrorCode.coordinator_not_available)
            if now >= deadline:
                if evicted_stragglers:
                    raise _Refused(ErrorCode.rebalance_in_progress)
                # Kafka removes members that did not rejoin within the rebalance
                # timeout; in-process members answer to their own max_poll_interval.
                evicted_stragglers = True
                for other in self.wire_members(gid):
                    if other is not wm and coord.must_join(gid, other.member):
                        coord.evict(gid, other.member.member_id, (
                            "it did not rejoin within rebalance_timeout_ms="
                            f"{wm.rebalance_timeout * 1000:g}"))
                continue
            wait = min(deadline - now, _RECHECK_S)
            nd = coord.next_deadline(gid)
            if nd is not None:
                wait = max(0.001, min(wait, nd - now + 0.001))
            with cond:
                ctx.wait(cond, lambda s=seq: broker._data_seq != s, wait)

    # -- SyncGroup / Heartbeat / LeaveGroup -------------------------------------------

    def sync(self, group_id: str, member_id: str, instance_id: str | None,
             generation: int) -> tuple[list[TopicPartition], str]:
        """Hand the member its partitions for ``generation``.

        Returns:
            (partitions, protocol name).

        Raises:
            _Refused: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS (a
                newer round opened) or ILLEGAL_GENERATION.
        """
        coord = self._coord
        wm = self.live(group_id, member_id, instance_id)
        member = wm.member
        coord.heartbeat(group_id, member)
        if coord.must_join(group_id, member):
            raise _Refused(ErrorCode.rebalance_in_progress)
        pending = coord.pending_sync(group_id, member)
        if pending is not None:
            target_gen, target = pending
            if generation != target_gen:
                raise _Refused(ErrorCode.illegal_generation)
            coord.take(group_id, member, target_gen, target)
            if coord.member(group_id, member_id) is not member:
                raise _Refused(ErrorCode.unknown_member_id)
            # Cooperative: what it owns outside the target is revoked by the client on
            # reading this answer, and released when it rejoins.
            granted = frozenset(member.owned) & frozenset(target)
        elif generation == member.generation and self._settled(group_id, member):
            owned = frozenset(member.owned)
            granted = owned if wm.granted is None else (wm.granted & owned)
        elif generation == member.generation:
            raise _Refused(ErrorCode.rebalance_in_progress)
        else:
            raise _Refused(ErrorCode.illegal_generation)
        wm.granted = granted
        log.debug("group %r: %s synced generation %d: %s", group_id, member_id,
                  generation, sorted(granted))
        return sorted(granted), coord.describe(group_id).protocol

    def heartbeat(self, group_id: str, member_id: str, instance_id: str | None,
                  generation: int) -> ErrorCode:
        """A wire member's heartbeat: liveness, and whether it must rejoin."""
        coord = self._coord
        try:
            wm = self.live(group_id, member_id, instance_id)
        except _Refused as r:
            return r.code
        member = wm.member
        coord.heartbeat(group_id, member)
        if coord.member(group_id, member_id) is not member:
            return ErrorCode.unknown_member_id
        if coord.must_join(group_id, member):
            now = time.monotonic()
            if wm.asked_at is None:
                wm.asked_at = now
            elif now - wm.asked_at > wm.rebalance_timeout:
                coord.evict(group_id, member_id, (
                    "it kept heartbeating but did not rejoin within rebalance_timeout_ms="
                    f"{wm.rebalance_timeout * 1000:g}"))
                self._drop(group_id, member_id)
                return ErrorCode.unknown_member_id
            return ErrorCode.rebalance_in_progress
        if generation == member.generation:
            return ErrorCode.none
        pending = coord.pending_sync(group_id, member)
        if pending is not None and generation == pending[0]:
            return ErrorCode.none  # between its JoinGroup and SyncGroup answers
        if member.joined_round >= 0 and not self._settled(group_id, member) and \
                pending is None:
            return ErrorCode.rebalance_in_progress  # joined; waiting for the others
        return ErrorCode.illegal_generation

    def leave(self, group_id: str, member_id: str, instance_id: str | None) -> ErrorCode:
        """Remove a member at once (an explicit LeaveGroup, static members included)."""
        if not member_id and instance_id is not None:
            for m in self._coord.describe(group_id).members:
                if m.group_instance_id == instance_id:
                    member_id = m.member_id
                    break
            else:
                return ErrorCode.unknown_member_id
        try:
            wm = self.live(group_id, member_id, instance_id)
        except _Refused as r:
            if r.code is ErrorCode.unknown_member_id:
                return self._leave_native(group_id, member_id, instance_id)
            return r.code
        self._coord.evict(group_id, member_id, "it left the group")
        self._drop(group_id, wm.member.member_id)
        return ErrorCode.none

    def _leave_native(self, group_id: str, member_id: str,
                      instance_id: str | None) -> ErrorCode:
        """LeaveGroup naming an in-process member (Kafka's admin "remove members")."""
        member = self._coord.member(group_id, member_id) if member_id else None
        if member is None:
            return ErrorCode.unknown_member_id
        if instance_id is not None and member.instance_id != instance_id:
            return ErrorCode.fenced_instance_id
        self._coord.evict(group_id, member_id, "it was removed from the group by an admin")
        return ErrorCode.none

    # -- OffsetCommit fencing -----------------------------------------------------------

    def commit_check(self, group_id: str, member_id: str, instance_id: str | None,
                     generation: int, partitions: list[TopicPartition]) -> Any:
        """The fencing check for a commit (run inside the write transaction).

        Raises:
            _Refused: the error code for a commit that must be refused up front.
        """
        coord = self._coord
        if not member_id and generation < 0:
            if coord.describe(group_id).members:
                raise _Refused(ErrorCode.unknown_member_id)
            return lambda: coord.check_commit(group_id, None, -1, partitions)
        member = coord.member(group_id, member_id)
        if member is None:
            self.live(group_id, member_id, instance_id)  # raises the right code
            raise _Refused(ErrorCode.unknown_member_id)  # pragma: no cover
        if instance_id is not None and member.instance_id not in (None, instance_id):
            raise _Refused(ErrorCode.fenced_instance_id)
        coord.heartbeat(group_id, member)  # a commit is a sign of life, as in Kafka
        self._refusal(group_id, member, generation, partitions)
        return lambda: coord.check_commit(group_id, member, generation, partitions)

    def _refusal(self, group_id: str, member: Member, generation: int,
                 partitions: list[TopicPartition]) -> None:
        coord = self._coord
        if generation != member.generation:
            pending = coord.pending_sync(group_id, member)
            if pending is not None and generation == pending[0]:
                raise _Refused(ErrorCode.rebalance_in_progress)
            raise _Refused(ErrorCode.illegal_generation)
        if any(tp not in member.owned for tp in partitions):
            raise _Refused(ErrorCode.rebalance_in_progress
                           if coord.must_join(group_id, member)
                           else ErrorCode.illegal_generation)

    def refusal_code(self, group_id: str, member_id: str, generation: int,
                     partitions: list[TopicPartition]) -> ErrorCode:
        """The code for a commit ``check_commit`` refused after the up-front checks
        passed (the group changed in between)."""
        member = self._coord.member(group_id, member_id) if member_id else None
        if member is None:
            return ErrorCode.unknown_member_id
        try:
            self._refusal(group_id, member, generation, partitions)
        except _Refused as r:
            return r.code
        return ErrorCode.illegal_generation

    # -- views --------------------------------------------------------------------------

    def member_blobs(self, group_id: str, member_id: str, protocol: str,
                     owned: typing.Iterable[TopicPartition]) -> tuple[bytes, bytes, str]:
        """(subscription metadata, assignment, client host) of any member."""
        wm = self.wire_member(group_id, member_id)
        assignment = encode_assignment(owned)
        if wm is not None:
            blob = wm.protocols.get(protocol) or next(iter(wm.protocols.values()), b"")
            return blob, assignment, wm.client_host
        member = self._coord.member(group_id, member_id)
        topics = member.topics if member is not None else ()
        return encode_subscription(topics), assignment, "/127.0.0.1"


_ADAPTERS: weakref.WeakKeyDictionary[Any, WireGroups] = weakref.WeakKeyDictionary()
_adapters_lock = threading.Lock()  # guards _ADAPTERS


def wire_groups(broker: Any) -> WireGroups:
    """The :class:`WireGroups` of ``broker`` (created on first use)."""
    with _adapters_lock:
        wg = _ADAPTERS.get(broker)
        if wg is None:
            wg = _ADAPTERS[broker] = WireGroups(broker)
        return wg


def _host(ctx: ConnectionContext) -> str:
    return f"/{ctx.peer[0]}" if ctx.peer else ""


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
    rebalance = _seconds(getattr(request, "rebalance_timeout", None), session)
    protocols = [(p.name, bytes(p.metadata)) for p in request.protocols]
    try:
        wm, generation, protocol = wire_groups(ctx.broker).join(
            ctx, request.group_id, request.member_id,
            getattr(request, "group_instance_id", None), session, rebalance, protocols)
    except _Refused as r:
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
    except _Refused as r:
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


@register(ApiKey.offset_commit, 2, 9)
def offset_commit(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """Store committed offsets, fenced by member and generation."""
    Response = response_class(ApiKey.offset_commit, api_version)
    Topic = _nested(Response, "topics")
    Partition = _nested(Topic, "partitions")
    broker, group = ctx.broker, request.group_id
    topics = dict(broker._topics)  # snapshot
    codes: dict[TopicPartition, ErrorCode] = {}
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for t in request.topics:
        tlog = topics.get(t.name)
        for p in t.partitions:
            tp = TopicPartition(t.name, int(p.partition_index))
            meta = p.committed_metadata or ""
            if tlog is None or not 0 <= tp.partition < len(tlog.partitions):
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
                raise _Refused(ErrorCode.invalid_group_id)
            check = wg.commit_check(group, member_id,
                                    getattr(request, "group_instance_id", None),
                                    generation, tps)
            broker.commit_offsets(group, offsets, check=check)
        except _Refused as r:
            code = r.code
        except CommitFailedError:
            code = wg.refusal_code(group, member_id, generation, tps)
        except MqlogError as exc:
            code = error_code_for(exc)
        for tp in tps:
            codes[tp] = code
    by_topic: dict[str, list] = {}
    for t in request.topics:  # answer in the request's order
        for p in t.partitions:
            tp = TopicPartition(t.name, int(p.partition_index))
            by_topic.setdefault(t.name, []).append(
                _make(Partition, partition_index=tp.partition, error_code=codes[tp]))
    return _make(Response, topics=tuple(_make(Topic, name=n, partitions=tuple(ps))
                                        for n, ps in by_topic.items()))


def _fetched_topics(broker: Any, group: str, requested: Any, Topic: type) -> tuple:
    """OffsetFetch topics of one group: committed offsets, -1 where none."""
    Partition = _nested(Topic, "partitions")
    committed = broker.group_offsets(group) if group else {}
    if requested is None:  # every partition the group committed for
        wanted: dict[str, list[int]] = {}
        for tp in sorted(committed):
            wanted.setdefault(tp.topic, []).append(tp.partition)
    else:
        wanted = {}
        for t in requested:
            wanted.setdefault(t.name, []).extend(int(p) for p in t.partition_indexes)
    out = []
    for name, parts in wanted.items():
        ps = []
        for p in parts:
            om = committed.get(TopicPartition(name, p))
            ps.append(_make(Partition, partition_index=p,
                            committed_offset=-1 if om is None else om.offset,
                            committed_leader_epoch=-1 if om is None or om.leader_epoch is None
                            else om.leader_epoch,
                            metadata="" if om is None else (om.metadata or ""),
                            error_code=ErrorCode.none))
        out.append(_make(Topic, name=name, partitions=tuple(ps)))
    return tuple(out)


@register(ApiKey.offset_fetch, 1, 9)
def offset_fetch(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """Committed offsets (-1 where the group committed none)."""
    Response = response_class(ApiKey.offset_fetch, api_version)
    if api_version < 8:
        Topic = _nested(Response, "topics")
        return _make(Response, error_code=ErrorCode.none, topics=_fetched_topics(
            ctx.broker, request.group_id, request.topics, Topic))
    Group = _nested(Response, "groups")
    Topic = _nested(Group, "topics")
    groups = tuple(_make(Group, group_id=g.group_id, error_code=ErrorCode.none,
                         topics=_fetched_topics(ctx.broker, g.group_id, g.topics, Topic))
                   for g in request.groups)
    return _make(Response, groups=groups)


def _group_names(broker: Any) -> dict[str, str]:
    """Group id -> state of every group with members or committed offsets."""
    states = broker._coordinator.active_groups()
    for gid in broker._group_names():
        states.setdefault(gid, GroupState.EMPTY.value)
    return states


@register(ApiKey.describe_groups, 0, 6)
def describe_groups(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """State, protocol and members (subscription and assignment blobs) per group."""
    Response = response_class(ApiKey.describe_groups, api_version)
    Group = _nested(Response, "groups")
    Member_ = _nested(Group, "members")
    wg = wire_groups(ctx.broker)
    known = _group_names(ctx.broker)
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
                         protocol_type=PROTOCOL_TYPE if d.members or d.protocol else "",
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
        for gid, state in sorted(_group_names(ctx.broker).items()):
            if states and state.lower() not in states:
                continue
            out.append(_make(Listed, group_id=gid, protocol_type=PROTOCOL_TYPE,
                             group_state=state, group_type="classic"))
    return _make(Response, error_code=ErrorCode.none, groups=tuple(out))


@register(ApiKey.delete_groups, 0, 2)
def delete_groups(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    """Delete groups and their committed offsets; refused while a group has members."""
    Response = response_class(ApiKey.delete_groups, api_version)
    Result = _nested(Response, "results")
    broker = ctx.broker
    out = []
    for gid in request.groups_names:
        if gid not in _group_names(broker):
            code = ErrorCode.group_id_not_found
        else:
            try:
                broker.delete_group(gid)
                code = ErrorCode.none
            except IllegalStateError:
                code = ErrorCode.non_empty_group
            except MqlogError as exc:
                code = error_code_for(exc)
        out.append(_make(Result, group_id=gid, error_code=code))
    return _make(Response, results=tuple(out))
