"""The bridge between Kafka's classic group protocol and mqlog's :class:`GroupCoordinator`.

:class:`WireGroups` makes wire clients members of the broker's one
:class:`~mqlog.group.GroupCoordinator` (the handlers in ``_groups.py`` call it), so a
kafka-python, a librdkafka and an in-process ``broker.consumer(group_id=...)`` can share
a group and split its partitions. It also encodes and decodes the consumer protocol's
embedded blobs: the ``ConsumerProtocolSubscription`` a client sends as JoinGroup
protocol metadata, and the ``ConsumerProtocolAssignment`` it gets back in SyncGroup.

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
  (every live member joined). The hold is bounded: the member's rebalance timeout
  (``rebalance_timeout_ms``, capped by the server's ``max_rebalance_timeout_s``) counts
  from when it joined the round; then the wire members that have not rejoined are
  removed (Kafka's rule) and the round gets one more chance; a hold that still cannot
  complete is answered ``REBALANCE_IN_PROGRESS`` (the client rejoins at once). The
  wait is on the coordinator's round condition (:meth:`~mqlog.group.GroupCoordinator.
  wait_round_change`, notified by round changes only, not by appends), so it costs
  this connection's thread only. A client that closes its connection while held is
  removed at once (a static member keeps its slot until its session times out): its
  answer would go nowhere, and holding on to it would give it partitions nobody
  consumes. A known member that rejoins a settled group with an unchanged subscription
  gets its current generation back and no round starts (Kafka's answer to a follower;
  kafka-python rejoins like that after a join whose answer arrived while no ``poll()``
  waited for it).
* **SyncGroup** = ``pending_sync`` + ``take``: the member takes the partitions of its
  target that nobody owns (cooperative: the ones still owned elsewhere come in a later
  round, after their owner revoked them), and gets exactly what it owns.
* **Heartbeat** = the liveness ``poll()`` gives an in-process member. A wire member's
  coordinator entry has ``max_poll_interval`` = its ``session_timeout_ms``, so one that
  stops heartbeating is evicted like a consumer that stops polling. When a round is
  open that it has not joined, the answer is ``REBALANCE_IN_PROGRESS``; a member that
  keeps heartbeating without rejoining for ``rebalance_timeout_ms`` is evicted, and so
  are the wire members that have not rejoined when a held JoinGroup's member reaches
  its rebalance timeout (in-process members answer to their ``max_poll_interval_ms``).
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
until its session times out, as with Kafka. One that comes back offering other
assignors starts a round (the protocol is chosen again, so its answer never names one
it does not know), and is refused with ``INCONSISTENT_GROUP_PROTOCOL``, before the
takeover, when another member offers none of them; the coordinator does both checks,
so in-process static members get the same. A known member that rejoins offering other
assignors has them changed, with the same check, and starts a round.

The member table forgets members the coordinator removed when their group is touched
again, and in a sweep of every group whenever the table has doubled, so clients that
vanish from one-off groups do not accumulate.

Untrusted blobs: a subscription is opaque bytes inside a JoinGroup request, so the
request's own length check (``_guard``) does not see into it. :func:`decode_subscription`
runs :func:`~mqlog.server._guard.check_entity` on it before kio's reader: kio's native
decoder allocates whatever element count a blob claims, so an 8-byte subscription
claiming two billion topics asks for 17 GB at once, and where that allocation fails the
process aborts (not an exception: every other client would lose the server).

Thread-safety: :class:`WireGroups` is thread-safe (its ``_lock`` guards the member table
and is a leaf: never held while calling the coordinator, the broker or waiting); its
methods run on connection threads, concurrently. The coordinator is thread-safe. The
blob functions are pure.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import typing
import weakref
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
from ..errors import InconsistentGroupProtocolError
from ..group import FENCED, GroupState, Member
from ..records import TopicPartition
from ._apis import ConnectionContext, ErrorCode
from ._guard import GuardError, check_entity

__all__ = ["LEADER_ID", "Refused", "WireGroups", "WireMember", "decode_subscription",
           "encode_assignment", "encode_subscription", "wire_groups"]

log = logging.getLogger("mqlog.server")

#: The leader named in every JoinGroup answer; no member has this id, so every client
#: is a follower and the coordinator's assignment is the one that counts.
LEADER_ID = "mqlog-coordinator"
#: Longest single wait of a held JoinGroup: how soon it notices that its client closed
#: the connection (round changes and evictions wake it at once).
_RECHECK_S = 1.0
#: The member table is swept (see WireGroups._sweep) when it reaches this many entries,
#: or twice what the last sweep left, whichever is more.
_SWEEP_AT = 64


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
        ValueError: the blob is not a consumer subscription, or a length or count in it
            claims more than the blob holds (checked before kio reads it).
    """
    if len(blob) < 2:
        raise ValueError(f"consumer subscription of {len(blob)} bytes has no version")
    version = int.from_bytes(blob[:2], "big", signed=True)
    if version < 0:
        raise ValueError(f"consumer subscription version {version} is negative")
    index = min(version, 3)
    try:
        # kio's native reader would allocate what the blob's counts claim: check first.
        check_entity(_SUBSCRIPTIONS[index], blob, 2)
    except GuardError as exc:
        raise ValueError(f"consumer subscription v{version} is malformed: {exc}") from None
    try:
        sub, _ = _read_subscription[index](memoryview(blob)[2:], 0)
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


# -- the coordinator adapter -------------------------------------------------------------

class WireMember:
    """What the server knows of one wire client's membership (beyond the coordinator's
    :class:`~mqlog.group.Member`). Fields change under :attr:`WireGroups._lock` or on the
    member's own requests (one client sends one group request at a time)."""

    __slots__ = ("member", "group_id", "session_timeout", "rebalance_timeout",
                 "protocols", "client_host", "granted", "asked_at", "round",
                 "round_deadline", "stragglers_removed")

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
        # The coordinator round this member last joined through a held JoinGroup, when
        # its rebalance timeout ends, and whether the stragglers were removed then.
        self.round = -1
        self.round_deadline = 0.0
        self.stragglers_removed = False

    def __repr__(self) -> str:
        return f"WireMember({self.member.member_id!r}, group={self.group_id!r})"


class Refused(Exception):
    """A group request answered with an error code (internal control flow)."""

    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code)
        self.code = code


class WireGroups:
    """The wire members of one broker's groups, driving its coordinator.

    Thread-safe; one per broker (:func:`wire_groups`), shared by every connection and by
    every server started on that broker. ``_lock`` guards the member table only.
    """

    def __init__(self, broker: Any) -> None:
        # Weak: this object is the value of a WeakKeyDictionary keyed by the broker, and
        # a strong reference (also through the coordinator) would keep the broker alive.
        self._broker_ref = weakref.ref(broker)
        # Guards _members, _count and _kept (leaf).
        self._lock = threading.Lock()
        self._members: dict[str, dict[str, WireMember]] = {}  # group -> member id -> wm
        self._count = 0  # entries in _members
        self._kept = 0  # entries left by the last sweep (see _add)

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
        """Remember a new wire member; sweep the table when it has doubled since the
        last sweep (amortised O(1) per join)."""
        with self._lock:
            table = self._members.setdefault(wm.group_id, {})
            if wm.member.member_id not in table:
                self._count += 1
            table[wm.member.member_id] = wm
            sweep = self._count >= max(_SWEEP_AT, 2 * self._kept)
        if sweep:
            self._sweep()

    def _drop(self, group_id: str, member_id: str) -> None:
        with self._lock:
            table = self._members.get(group_id)
            if table is not None and table.pop(member_id, None) is not None:
                self._count -= 1
                if not table:
                    del self._members[group_id]

    def _sweep(self) -> None:
        """Forget the wire members the coordinator removed, in every group.

        An entry is otherwise dropped only when its group is touched again (a join, or
        a request naming the member): a client that vanished without a LeaveGroup from
        a group nobody returns to (one-off group ids) would stay forever, with its
        subscription blobs. Describing a group makes the coordinator expire members
        whose session ended. Cost: O(wire members).
        """
        with self._lock:
            groups = list(self._members)
        for gid in groups:
            self._coord.describe(gid)  # expires members whose session ended
            self._prune(gid)
        with self._lock:
            self._kept = self._count

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
            Refused: FENCED_INSTANCE_ID (a newer client took this static member's
                slot, or the request's instance id is another member's) or
                UNKNOWN_MEMBER_ID.
        """
        wm = self.wire_member(group_id, member_id)
        current = self._coord.member(group_id, member_id)
        if wm is None or current is not wm.member:
            if wm is not None:
                self._drop(group_id, member_id)
                if wm.member.evicted == FENCED:
                    raise Refused(ErrorCode.fenced_instance_id)
            if instance_id is not None and self._instance_taken(group_id, instance_id):
                raise Refused(ErrorCode.fenced_instance_id)
            raise Refused(ErrorCode.unknown_member_id)
        if instance_id is not None and wm.member.instance_id not in (None, instance_id):
            raise Refused(ErrorCode.fenced_instance_id)
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
            Refused: with the Kafka error code to answer.
        """
        assignors = tuple(ASSIGNORS[name] for name, _ in protocols if name in ASSIGNORS)
        if not assignors:
            log.warning("group %r: client %s offers no assignor the broker can run (%s)",
                        group_id, ctx.client_id, ", ".join(n for n, _ in protocols))
            raise Refused(ErrorCode.inconsistent_group_protocol)
        try:
            topics, _owned = decode_subscription(
                next(blob for name, blob in protocols if name in ASSIGNORS))
        except ValueError as exc:
            log.warning("group %r: client %s sent bad subscription metadata: %s",
                        group_id, ctx.client_id, exc)
            raise Refused(ErrorCode.inconsistent_group_protocol) from None
        coord = self._coord
        self._prune(group_id)
        if member_id:
            wm = self.live(group_id, member_id, instance_id)
            member = wm.member
            wm.session_timeout, wm.rebalance_timeout = session_timeout, rebalance_timeout
            wm.protocols = dict(protocols)
            coord.heartbeat(group_id, member)
            new_assignors = [a.name for a in assignors] != [a.name for a in member.assignors]
            if member.topics != topics or member.pattern is not None or new_assignors:
                self._release_revoked(wm)
                try:
                    coord.resubscribe(group_id, member, topics, None,
                                      assignors if new_assignors else None)
                except InconsistentGroupProtocolError as exc:
                    log.warning("%s", exc)
                    raise Refused(ErrorCode.inconsistent_group_protocol) from None
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
            try:  # a static takeover is refused before it happens, as Kafka does
                member = coord.join(
                    group_id, client_id=ctx.client_id or "consumer", topics=topics,
                    pattern=None, assignors=assignors, instance_id=instance_id,
                    max_poll_interval=session_timeout, session_timeout=session_timeout)
            except InconsistentGroupProtocolError as exc:
                log.warning("%s", exc)
                raise Refused(ErrorCode.inconsistent_group_protocol) from None
            # After a static takeover the newcomer owns what the old member did and
            # no round is needed (unless its subscription or assignors made the
            # coordinator start one): the wait below returns at once, and SyncGroup
            # hands all of it to the new client.
            wm = WireMember(member, group_id, session_timeout, rebalance_timeout,
                            dict(protocols), _host(ctx))
            self._add(wm)
        log.debug("group %r: %s joins (owns %d)", group_id, wm.member.member_id,
                  len(wm.member.owned))
        try:
            generation = self._await_round(ctx, wm)
        except Refused as r:
            if not member_id and r.code is ErrorCode.rebalance_in_progress:
                # The error answer cannot carry the new member's id, so the client
                # rejoins as a newcomer: remove this one, or it would stay in the group
                # (and be assigned partitions) until its session timed out.
                coord.evict(group_id, wm.member.member_id,
                            "its first JoinGroup did not complete in time")
                self._drop(group_id, wm.member.member_id)
            raise
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

        Answered within ``min(rebalance timeout, max_rebalance_timeout_s)`` of its
        arrival (plus the time to complete the round once the stragglers are gone).

        Raises:
            Refused: UNKNOWN_MEMBER_ID (removed meanwhile, or the client closed the
                connection), FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS (the round did
                not complete in time) or COORDINATOR_NOT_AVAILABLE (the server is
                stopping).
        """
        coord, gid, member = self._coord, wm.group_id, wm.member
        timeout = min(wm.rebalance_timeout, ctx.config.max_rebalance_timeout_s)
        hold_until = time.monotonic() + timeout
        while True:
            seq = coord.round_seq(gid)  # before looking: a change after it wakes us
            if ctx.stopping.is_set():  # first: shutdown also makes the peer look gone
                raise Refused(ErrorCode.coordinator_not_available)
            if ctx.peer_gone():
                self._vanished(wm)
                raise Refused(ErrorCode.unknown_member_id)  # nobody reads it
            coord.heartbeat(gid, member)  # the held request keeps the member alive
            if coord.member(gid, member.member_id) is not member:
                self._drop(gid, member.member_id)
                raise Refused(ErrorCode.fenced_instance_id if member.evicted == FENCED
                               else ErrorCode.unknown_member_id)
            if coord.must_join(gid, member):
                self._release_revoked(wm)
                coord.mark_joined(gid, member)
                wm.asked_at = None
            now = time.monotonic()
            if wm.round != member.joined_round:  # its rebalance timeout starts now
                wm.round, wm.round_deadline = member.joined_round, now + timeout
                wm.stragglers_removed = False
            sync = coord.pending_sync(gid, member)
            if sync is not None:
                return sync[0]
            if self._settled(gid, member):
                return member.generation  # a static takeover: no round needed
            if now >= wm.round_deadline and not wm.stragglers_removed:
                # Kafka removes members that did not rejoin within the rebalance
                # timeout; in-process members answer to their own max_poll_interval.
                wm.stragglers_removed = True
                for other in self.wire_members(gid):
                    if other is not wm and coord.must_join(gid, other.member):
                        coord.evict(gid, other.member.member_id, (
                            "it did not rejoin within rebalance_timeout_ms="
                            f"{timeout * 1000:g}"))
                continue
            if now >= hold_until:
                raise Refused(ErrorCode.rebalance_in_progress)
            wake_at = min(hold_until, now + _RECHECK_S)
            if not wm.stragglers_removed:
                wake_at = min(wake_at, wm.round_deadline)
            nd = coord.next_deadline(gid)  # an eviction may complete the round
            if nd is not None:
                wake_at = max(now + 0.001, min(wake_at, nd + 0.001))
            coord.wait_round_change(gid, seq, wake_at - now, stop=ctx.stopping.is_set)

    def _vanished(self, wm: WireMember) -> None:
        """The client of a held JoinGroup closed its connection: a dynamic member is
        removed now; a static one keeps its slot (its client may come back with the
        same instance id) until its session times out."""
        member = wm.member
        log.info("group %r: %s closed its connection while its JoinGroup was held",
                 wm.group_id, member.member_id)
        if member.instance_id is None:
            self._coord.evict(wm.group_id, member.member_id,
                              "its client closed the connection while joining")
            self._drop(wm.group_id, member.member_id)

    # -- SyncGroup / Heartbeat / LeaveGroup -------------------------------------------

    def sync(self, group_id: str, member_id: str, instance_id: str | None,
             generation: int) -> tuple[list[TopicPartition], str]:
        """Hand the member its partitions for ``generation``.

        Returns:
            (partitions, protocol name).

        Raises:
            Refused: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS (a
                newer round opened) or ILLEGAL_GENERATION.
        """
        coord = self._coord
        wm = self.live(group_id, member_id, instance_id)
        member = wm.member
        coord.heartbeat(group_id, member)
        if coord.must_join(group_id, member):
            raise Refused(ErrorCode.rebalance_in_progress)
        pending = coord.pending_sync(group_id, member)
        if pending is not None:
            target_gen, target = pending
            if generation != target_gen:
                raise Refused(ErrorCode.illegal_generation)
            coord.take(group_id, member, target_gen, target)
            if coord.member(group_id, member_id) is not member:
                raise Refused(ErrorCode.unknown_member_id)
            # Cooperative: what it owns outside the target is revoked by the client on
            # reading this answer, and released when it rejoins.
            granted = frozenset(member.owned) & frozenset(target)
        elif generation == member.generation and self._settled(group_id, member):
            owned = frozenset(member.owned)
            granted = owned if wm.granted is None else (wm.granted & owned)
        elif generation == member.generation:
            raise Refused(ErrorCode.rebalance_in_progress)
        else:
            raise Refused(ErrorCode.illegal_generation)
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
        except Refused as r:
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
        except Refused as r:
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
            Refused: the error code for a commit that must be refused up front.
        """
        coord = self._coord
        if not member_id and generation < 0:
            if coord.describe(group_id).members:
                raise Refused(ErrorCode.unknown_member_id)
            return lambda: coord.check_commit(group_id, None, -1, partitions)
        member = coord.member(group_id, member_id)
        if member is None:
            self.live(group_id, member_id, instance_id)  # raises the right code
            raise Refused(ErrorCode.unknown_member_id)  # pragma: no cover
        if instance_id is not None and member.instance_id not in (None, instance_id):
            raise Refused(ErrorCode.fenced_instance_id)
        coord.heartbeat(group_id, member)  # a commit is a sign of life, as in Kafka
        self._refusal(group_id, member, generation, partitions)
        return lambda: coord.check_commit(group_id, member, generation, partitions)

    def _refusal(self, group_id: str, member: Member, generation: int,
                 partitions: list[TopicPartition]) -> None:
        coord = self._coord
        if generation != member.generation:
            pending = coord.pending_sync(group_id, member)
            if pending is not None and generation == pending[0]:
                raise Refused(ErrorCode.rebalance_in_progress)
            raise Refused(ErrorCode.illegal_generation)
        if any(tp not in member.owned for tp in partitions):
            raise Refused(ErrorCode.rebalance_in_progress
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
        except Refused as r:
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
