"""Consumer groups: membership, generations, rebalancing, liveness, commit fencing.

The :class:`GroupCoordinator` lives in the broker and plays the role of Kafka's group
coordinator for the consumers of this process. Each group is an explicit state machine
(Kafka's states)::

    Empty --join--> PreparingRebalance --all members rejoined--> CompletingRebalance
      ^                    ^                                            |
      |                    +---- join / leave / eviction / metadata ----+-- Stable
      +---- last member leaves ----------------------------------------------+

A *round* starts whenever membership, subscriptions or the subscribed topics change.
Every member takes part in it from inside its own ``poll()``:

1. **Join.** With an eager protocol (``range``, ``roundrobin``, ``sticky``) the member
   first gives up every partition: auto-commit, then ``on_partitions_revoked``, then the
   partitions are released. With the cooperative protocol it keeps them.
2. **Complete.** When every member has joined (a member that does not join within its
   ``max_poll_interval_ms`` is evicted), the group's assignor computes the target
   assignment and the generation goes up (CompletingRebalance -> Stable).
3. **Sync.** Each member takes its target. A partition is *owned* by at most one member
   at any time: a member takes only partitions nobody owns. Under the cooperative
   protocol a member first releases what its target no longer holds (auto-commit,
   ``on_partitions_revoked``), which starts a second round in which the new owner takes
   those partitions. So revocation always happens before the new owner can fetch.

Fencing: a commit is accepted only from a live member, for partitions it owns now, with
the generation it last synced; otherwise ``CommitFailedError``.

Liveness: a member that has not polled for ``max_poll_interval_ms`` is evicted (its
partitions are *lost*: ``on_partitions_lost``), as is a closed or garbage-collected
consumer (it leaves). Static members (``group_instance_id``) keep their slot and
assignment across a close for ``session_timeout_ms``; a new consumer with the same id
takes the slot over without a rebalance.

Thread-safety: :class:`GroupCoordinator` is thread-safe. ``_lock`` (an RLock, because
a consumer's finaliser may run during a garbage collection inside a coordinator call)
guards every group; it is never held while calling user code (listeners), waiting, or
writing to the store. ``_round_cond`` (round changes, for waiters such as the wire
server's held JoinGroups) comes after it: taken inside ``_lock`` to notify, never the
other way round, and waited on without ``_lock``.
"""

from __future__ import annotations

import collections
import enum
import itertools
import logging
import re
import threading
import time
from typing import TYPE_CHECKING, Callable

import attrs

from .assignors import Assignor, MemberSubscription
from .errors import CommitFailedError, InconsistentGroupProtocolError
from .records import TopicPartition

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker

__all__ = [
    "GroupCoordinator",
    "GroupDescription",
    "GroupListing",
    "GroupState",
    "MemberDescription",
]

_monotonic = time.monotonic
log = logging.getLogger("mqlog.group")

# Member.evicted value of a static member whose slot a newer consumer took over.
FENCED = "a newer consumer with the same group_instance_id took its place"


def matching_topics(topics: frozenset[str], pattern: re.Pattern | None,
                    names: list[str]) -> set[str]:
    """The existing topics a subscription covers (a pattern matches with ``re.match``,
    as kafka-python does)."""
    if pattern is not None:
        return {t for t in names if pattern.match(t)}
    return {t for t in topics if t in names}


class GroupState(enum.Enum):
    """Kafka's consumer group states."""

    EMPTY = "Empty"
    """No members; the group may still hold committed offsets."""
    PREPARING_REBALANCE = "PreparingRebalance"
    """A round started: waiting for every member to rejoin."""
    COMPLETING_REBALANCE = "CompletingRebalance"
    """Every member rejoined; the assignment is being computed."""
    STABLE = "Stable"
    """Every member has its assignment for the current generation."""
    DEAD = "Dead"
    """The group was deleted."""


@attrs.frozen
class GroupListing:
    """One line of ``list_consumer_groups``."""

    group_id: str
    state: str


@attrs.frozen
class MemberDescription:
    """A member of a group and the partitions it owns."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    assignment: tuple[TopicPartition, ...]


@attrs.frozen
class GroupDescription:
    """What ``describe_consumer_groups`` says about one group."""

    group_id: str
    state: str
    protocol: str
    generation: int
    members: tuple[MemberDescription, ...]


class Member:
    """A consumer's membership in one group.

    Owned by the coordinator: fields change only under the coordinator's lock. The
    consumer reads ``owned``/``generation`` to know what it may fetch.
    """

    __slots__ = ("member_id", "instance_id", "client_id", "topics", "pattern",
                 "assignors", "joined_round", "generation", "owned", "last_poll",
                 "max_poll_interval", "session_timeout", "departed_at", "evicted",
                 "fenced_by", "__weakref__")

    def __init__(self, member_id: str, instance_id: str | None, client_id: str,
                 topics: frozenset[str], pattern: re.Pattern | None,
                 assignors: tuple[Assignor, ...], max_poll_interval: float,
                 session_timeout: float) -> None:
        self.member_id = member_id
        self.instance_id = instance_id
        self.client_id = client_id
        self.topics = topics
        self.pattern = pattern
        self.assignors = assignors
        self.joined_round = -1  # the last round this member joined
        self.generation = -1  # the generation whose assignment it last synced
        self.owned: set[TopicPartition] = set()
        self.last_poll = _monotonic()
        self.max_poll_interval = max_poll_interval
        self.session_timeout = session_timeout
        self.departed_at: float | None = None  # a closed static member, kept for a while
        self.evicted: str | None = None  # why the coordinator removed this member
        self.fenced_by: str | None = None  # the static id of the consumer that took over

    def __repr__(self) -> str:
        return f"Member({self.member_id!r}, gen={self.generation}, owned={len(self.owned)})"


class _Group:
    __slots__ = ("group_id", "state", "generation", "round", "protocol", "members",
                 "owners", "target", "subscribed", "round_started")

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.state = GroupState.EMPTY
        self.generation = 0
        self.round = 0
        self.protocol: Assignor | None = None
        self.members: dict[str, Member] = {}
        self.owners: dict[TopicPartition, str] = {}  # partition -> owning member id
        self.target: dict[str, list[TopicPartition]] = {}
        self.subscribed: dict[str, int] = {}  # topic -> partitions, as last assigned
        self.round_started = 0.0


def _common_protocol(group_id: str, offers: list[tuple[Assignor, ...]]) -> Assignor:
    """The first strategy of ``offers[0]`` that every offer lists.

    Raises:
        InconsistentGroupProtocolError: no strategy is common to all.
    """
    common = set.intersection(*({a.name for a in offer} for offer in offers))
    for a in offers[0]:
        if a.name in common:
            return a
    raise InconsistentGroupProtocolError(
        f"the members of group {group_id!r} share no partition_assignment_strategy "
        f"({', '.join(sorted({a.name for offer in offers for a in offer}))}): give "
        "every consumer of the group at least one strategy in common")


class GroupCoordinator:
    """The consumer groups of one broker (thread-safe; see the module docstring)."""

    def __init__(self, broker: Broker, clock: Callable[[], float] = _monotonic) -> None:
        self._broker = broker
        self._clock = clock
        self._lock = threading.RLock()  # guards _groups and every _Group and Member
        self._groups: dict[str, _Group] = {}
        self._ids = itertools.count(1)
        # Members of consumers collected without close(), queued by their finaliser
        # (which may run inside any lock during a garbage collection, so it only
        # appends here) and removed at the next coordinator call.
        self._collected: collections.deque[tuple[str, Member]] = collections.deque()
        # Guards _round_seqs; notified when a group's round, generation or membership
        # changes. Waiting for a round here, rather than on the broker's data
        # condition (which every append notifies), wakes a waiter only for its cause.
        self._round_cond = threading.Condition(threading.Lock())
        # Group id -> the value of _round_counter at its last change. One counter for
        # every group, so a group forgotten and created again never shows a value a
        # waiter saw before (a per-group count restarting at 0 could, and the waiter
        # would miss the change).
        self._round_seqs: dict[str, int] = {}
        self._round_counter = 0

    # -- helpers (lock held) ------------------------------------------------------

    def _group(self, group_id: str) -> _Group:
        g = self._groups.get(group_id)
        if g is None:
            g = self._groups[group_id] = _Group(group_id)
        return g

    def _topics_of(self, m: Member, names: list[str] | None = None) -> set[str]:
        if names is None:
            names = list(self._broker._topics)  # a C-level snapshot: safe to iterate
        return matching_topics(m.topics, m.pattern, names)

    def _subscribed(self, g: _Group) -> dict[str, int]:
        topics = dict(self._broker._topics)  # snapshot
        names = list(topics)
        wanted: set[str] = set()
        for m in list(g.members.values()):
            wanted |= self._topics_of(m, names)
        return {t: len(topics[t].partitions) for t in sorted(wanted)}

    def _start_round(self, g: _Group) -> None:
        g.round += 1
        g.round_started = self._clock()
        g.state = GroupState.PREPARING_REBALANCE if g.members else GroupState.EMPTY
        if g.members:
            g.protocol = self._choose_protocol(g)
        self._round_changed(g.group_id)
        self._broker._notify_data()  # wake members blocked in poll()

    def _round_changed(self, group_id: str, forget: bool = False) -> None:
        with self._round_cond:
            self._round_counter += 1
            self._round_seqs[group_id] = self._round_counter
            if forget:
                del self._round_seqs[group_id]  # the group is gone: waiters see 0
            self._round_cond.notify_all()

    @staticmethod
    def _choose_protocol(g: _Group) -> Assignor:
        """The first strategy (in the oldest member's order) that every member lists."""
        return _common_protocol(g.group_id, [m.assignors for m in g.members.values()])

    def _remove(self, g: _Group, m: Member, reason: str | None) -> None:
        g.members.pop(m.member_id, None)
        for tp in m.owned:
            if g.owners.get(tp) == m.member_id:
                del g.owners[tp]
        if reason is not None:
            m.evicted = reason
        self._start_round(g)
        if not g.members and self._groups.get(g.group_id) is g:
            # The last member left: forget the group, as Kafka removes empty groups
            # (its committed offsets stay in the store), or every group id ever used
            # would stay in memory (clients of `mqlog serve` make many).
            del self._groups[g.group_id]
            self._round_changed(g.group_id, forget=True)

    def _expire(self, g: _Group, now: float) -> None:
        """Evict members that stopped polling; drop departed static members."""
        for m in list(g.members.values()):
            if m.departed_at is not None:
                if now - m.departed_at > m.session_timeout:
                    self._remove(g, m, "its session timed out after close()")
            elif now - m.last_poll > m.max_poll_interval:
                self._remove(g, m, (
                    f"it did not call poll() within max_poll_interval_ms="
                    f"{m.max_poll_interval * 1000:g}"))

    def _maybe_complete(self, g: _Group) -> None:
        if g.state is not GroupState.PREPARING_REBALANCE:
            return
        live = [m for m in g.members.values() if m.departed_at is None]
        if any(m.joined_round < g.round for m in live):
            return
        g.state = GroupState.COMPLETING_REBALANCE
        g.subscribed = self._subscribed(g)
        subs = {m.member_id: MemberSubscription(
            frozenset(self._topics_of(m)), tuple(sorted(m.owned)))
            for m in g.members.values()}
        assert g.protocol is not None
        try:
            target = g.protocol.assign(subs, g.subscribed)
        except Exception:
            # A broken (custom) assignor must not wedge the group or break the member
            # whose poll got here: stay in PreparingRebalance, retry on the next poll.
            log.exception("assignor %r failed for group %r", g.protocol.name, g.group_id)
            g.state = GroupState.PREPARING_REBALANCE
            return
        for m in g.members.values():
            target.setdefault(m.member_id, [])
        g.target = {k: sorted(v) for k, v in target.items()}
        g.generation += 1
        g.state = GroupState.STABLE
        self._round_changed(g.group_id)
        self._broker._notify_data()

    def collected(self, group_id: str, member: Member) -> None:
        """Finaliser of a consumer dropped without close(): lock-free, queue only."""
        self._collected.append((group_id, member))

    def _current(self, group_id: str) -> _Group | None:
        """The group with collected consumers gone and stalled members expired, so a
        view or decision sees current membership even when nobody polls. Lock held."""
        self._leave_collected()
        g = self._groups.get(group_id)
        if g is not None:
            self._expire(g, self._clock())
        return g

    def _leave_collected(self) -> None:
        while self._collected:
            group_id, member = self._collected.popleft()
            self._leave(group_id, member)

    # -- membership (called by consumers) -----------------------------------------

    def join(self, group_id: str, *, client_id: str, topics: frozenset[str],
             pattern: re.Pattern | None, assignors: tuple[Assignor, ...],
             instance_id: str | None, max_poll_interval: float,
             session_timeout: float) -> Member:
        """Add a member to ``group_id`` (or take over a static member's slot)."""
        with self._lock:
            self._leave_collected()
            g = self._group(group_id)
            if instance_id is not None:
                for old in list(g.members.values()):
                    if old.instance_id == instance_id:
                        # Refused before the takeover, so the old member keeps its slot
                        # (Kafka checks a joining member's protocols first too).
                        _common_protocol(group_id, [
                            x.assignors for x in g.members.values() if x is not old
                        ] + [assignors])
                        # Static membership: the newcomer inherits the slot and what it
                        # owns, without a rebalance; the old consumer is fenced.
                        m = Member(f"{instance_id}-{next(self._ids)}", instance_id,
                                   client_id, topics, pattern, assignors,
                                   max_poll_interval, session_timeout)
                        m.joined_round, m.generation = old.joined_round, old.generation
                        m.owned = set(old.owned)
                        for tp in m.owned:
                            g.owners[tp] = m.member_id
                        del g.members[old.member_id]
                        old.evicted = FENCED
                        old.fenced_by = instance_id
                        g.members[m.member_id] = m
                        if old.member_id in g.target:
                            g.target[m.member_id] = g.target.pop(old.member_id)
                        # A new subscription, or a group protocol the newcomer does
                        # not offer (it came back with other assignors): a round, which
                        # chooses the protocol again among what every member offers.
                        if old.topics != topics or old.pattern != pattern or (
                                g.protocol is not None and
                                g.protocol.name not in {a.name for a in assignors}):
                            self._start_round(g)
                        return m
            m = Member(f"{client_id}-{next(self._ids)}", instance_id, client_id, topics,
                       pattern, assignors, max_poll_interval, session_timeout)
            g.members[m.member_id] = m
            try:
                self._start_round(g)
            except InconsistentGroupProtocolError:
                del g.members[m.member_id]
                self._start_round(g)
                raise
            return m

    def leave(self, group_id: str, member: Member) -> None:
        """Remove a member (close, unsubscribe); static members keep their slot for
        ``session_timeout_ms``."""
        with self._lock:
            self._leave(group_id, member)

    def _leave(self, group_id: str, member: Member) -> None:
        with self._lock:
            g = self._groups.get(group_id)
            if g is None or g.members.get(member.member_id) is not member:
                return
            if member.instance_id is not None and member.departed_at is None:
                member.departed_at = self._clock()
                self._maybe_complete(g)
                return
            self._remove(g, member, None)

    def resubscribe(self, group_id: str, member: Member, topics: frozenset[str],
                    pattern: re.Pattern | None,
                    assignors: tuple[Assignor, ...] | None = None) -> None:
        """Change a member's subscription (and assignors, when given) and start a
        round.

        Raises:
            InconsistentGroupProtocolError: the new assignors share none with another
                member (nothing changed).
        """
        with self._lock:
            g = self._groups.get(group_id)
            live = g is not None and member.member_id in g.members
            if assignors is not None and live:
                _common_protocol(group_id, [x.assignors for x in g.members.values()
                                            if x is not member] + [assignors])
            member.topics, member.pattern = topics, pattern
            if assignors is not None:
                member.assignors = assignors
            if live:
                self._start_round(g)

    def metadata_changed(self) -> None:
        """Topics were created, deleted or grown: start rounds where it matters."""
        with self._lock:
            for g in self._groups.values():
                if g.members and self._subscribed(g) != g.subscribed:
                    self._start_round(g)

    # -- the member's poll --------------------------------------------------------

    def heartbeat(self, group_id: str, member: Member) -> None:
        """Record that ``member`` polled; evict members that stopped polling."""
        with self._lock:
            self._leave_collected()
            member.last_poll = now = self._clock()
            g = self._groups.get(group_id)
            if g is not None:
                self._expire(g, now)
                self._maybe_complete(g)

    def must_join(self, group_id: str, member: Member) -> bool:
        """True when a round is open that ``member`` has not joined yet."""
        with self._lock:
            g = self._groups.get(group_id)
            return bool(g is not None and member.member_id in g.members
                        and member.joined_round < g.round)

    def cooperative(self, group_id: str) -> bool:
        with self._lock:
            g = self._groups.get(group_id)
            return bool(g and g.protocol and g.protocol.cooperative)

    def mark_joined(self, group_id: str, member: Member) -> None:
        with self._lock:
            # The group may be gone: its last member was evicted (e.g. while this
            # member's revoke listener ran) and the empty group forgotten.
            g = self._groups.get(group_id)
            if g is not None and member.member_id in g.members:
                member.joined_round = g.round
                self._maybe_complete(g)

    def release(self, group_id: str, member: Member, partitions: set[TopicPartition],
                new_round: bool) -> None:
        """The member gave up ``partitions`` (after its listener ran)."""
        with self._lock:
            g = self._groups.get(group_id)
            member.owned -= partitions
            if g is None:
                return
            for tp in partitions:
                if g.owners.get(tp) == member.member_id:
                    del g.owners[tp]
            if new_round and partitions and member.member_id in g.members:
                self._start_round(g)  # cooperative: let the new owners take them

    def pending_sync(self, group_id: str,
                     member: Member) -> tuple[int, list[TopicPartition]] | None:
        """``(generation, target)`` when a newer assignment awaits ``member``."""
        with self._lock:
            g = self._groups.get(group_id)
            if g is None or member.member_id not in g.members or \
                    g.state is not GroupState.STABLE or member.generation >= g.generation:
                return None
            return g.generation, list(g.target.get(member.member_id, []))

    def take(self, group_id: str, member: Member, generation: int,
             target: list[TopicPartition]) -> list[TopicPartition]:
        """Sync to ``generation``: take the target partitions nobody owns; return them."""
        with self._lock:
            g = self._groups.get(group_id)
            if g is None or g.members.get(member.member_id) is not member:
                return []  # evicted meanwhile (e.g. during its listener): take nothing
            added = []
            for tp in target:
                owner = g.owners.get(tp)
                if owner is None:
                    g.owners[tp] = member.member_id
                    member.owned.add(tp)
                    added.append(tp)
            member.generation = generation
            return added

    def next_deadline(self, group_id: str) -> float | None:
        """When the next eviction could happen (for timed waits), or None."""
        with self._lock:
            g = self._groups.get(group_id)
            if g is None or not g.members:
                return None
            return min((m.departed_at + m.session_timeout) if m.departed_at is not None
                       else (m.last_poll + m.max_poll_interval)
                       for m in g.members.values())

    # -- waiting for rounds ------------------------------------------------------

    def round_seq(self, group_id: str) -> int:
        """A number that changes whenever ``group_id``'s round, generation or
        membership changes. Read it before looking at the group, then pass it to
        :meth:`wait_round_change` so a change in between is not missed."""
        with self._round_cond:
            return self._round_seqs.get(group_id, 0)

    def wait_round_change(self, group_id: str, seq: int, timeout: float,
                          stop: Callable[[], bool] | None = None) -> bool:
        """Wait until ``round_seq(group_id)`` differs from ``seq``, ``stop()`` is true
        (checked when woken: see :meth:`wake_waiters`) or ``timeout`` seconds pass.
        Never call it holding a coordinator or broker lock.

        Returns:
            Whether the group changed.

        Cost: woken only by changes of groups (any group: the predicate filters),
        never by appends.
        """
        def done() -> bool:
            return self._round_seqs.get(group_id, 0) != seq or \
                (stop is not None and stop())

        with self._round_cond:
            self._round_cond.wait_for(done, timeout)
            return self._round_seqs.get(group_id, 0) != seq

    def wake_waiters(self) -> None:
        """Wake every :meth:`wait_round_change` so it checks its ``stop`` (shutdown)."""
        with self._round_cond:
            self._round_cond.notify_all()

    # -- fencing -------------------------------------------------------------------

    def evict(self, group_id: str, member_id: str | None = None,
              reason: str = "it was expired by fault injection") -> list[str]:
        """Remove a member (default: every member) as if its session had expired; its
        next ``poll()`` sees the loss (``on_partitions_lost``) and rejoins. Returns the
        member ids removed (tests and fault injection)."""
        with self._lock:
            g = self._current(group_id)
            if g is None:
                return []
            doomed = [m for m in g.members.values()
                      if member_id is None or m.member_id == member_id]
            for m in doomed:
                self._remove(g, m, reason)
        if doomed:
            self._broker._notify_data()
        return [m.member_id for m in doomed]

    def member(self, group_id: str, member_id: str) -> Member | None:
        """The live member ``member_id`` of ``group_id``, or None."""
        with self._lock:
            g = self._groups.get(group_id)
            return None if g is None else g.members.get(member_id)

    def check_commit(self, group_id: str, member: Member | None, generation: int,
                     partitions: list[TopicPartition]) -> None:
        """Refuse a commit from a stale member or for partitions it does not own.

        ``member`` None is a consumer with manual assignment: accepted only while the
        group has no members (Kafka's "simple" consumer commits).

        Raises:
            CommitFailedError: with the reason and what to do.
        """
        with self._lock:
            g = self._groups.get(group_id)
            if member is None:
                if g is not None and g.members:
                    raise CommitFailedError(
                        f"group {group_id!r} has active members (managed by subscribe()); "
                        "a consumer using assign() cannot commit for it: use another "
                        "group_id for manually assigned consumers")
                return
            why = None
            if member.evicted is not None or g is None or \
                    g.members.get(member.member_id) is not member:
                why = f"this consumer was removed from the group: {member.evicted or 'left'}"
            elif generation != member.generation:
                why = (f"the group rebalanced (generation {generation} is stale; current "
                       f"{member.generation})")
            else:
                foreign = sorted(tp for tp in partitions if tp not in member.owned)
                if foreign:
                    why = (f"it does not own {', '.join(f'{t}[{p}]' for t, p in foreign)} "
                           "(they were revoked or assigned to another member)")
            if why:
                raise CommitFailedError(
                    f"commit for group {group_id!r} cannot be completed since {why}. The "
                    "partitions were (or will be) reassigned and another member may "
                    "already process them; call poll() to rejoin and receive a new "
                    "assignment, and process records faster or raise "
                    "max_poll_interval_ms if this consumer was evicted")

    def mark_dead(self, group_id: str) -> bool:
        """Forget an empty group (it is being deleted); False if it has members."""
        with self._lock:
            g = self._current(group_id)
            if g is not None and g.members:
                return False
            if g is not None and self._groups.pop(group_id, None) is g:
                g.state = GroupState.DEAD
                self._round_changed(group_id, forget=True)
            return True

    # -- views ---------------------------------------------------------------------

    def describe(self, group_id: str) -> GroupDescription:
        with self._lock:
            g = self._current(group_id)
            if g is None:
                return GroupDescription(group_id, GroupState.EMPTY.value, "", 0, ())
            members = tuple(MemberDescription(m.member_id, m.instance_id, m.client_id,
                                              tuple(sorted(m.owned)))
                            for m in g.members.values())
            return GroupDescription(group_id, g.state.value,
                                    g.protocol.name if g.protocol else "", g.generation,
                                    members)

    def subscribed_topics(self, group_id: str, among: set[str]) -> set[str]:
        """Those of ``among`` that an active member of the group subscribes to (by name
        or pattern), as Kafka judges GROUP_SUBSCRIBED_TO_TOPIC. Members whose session
        ended are expired first. Thread-safe."""
        with self._lock:
            g = self._current(group_id)
            if g is None:
                return set()
            found: set[str] = set()
            for m in g.members.values():
                found |= matching_topics(m.topics, m.pattern, among)
            return found

    def active_groups(self) -> dict[str, str]:
        """Group id -> state name, for every group this coordinator has seen."""
        with self._lock:
            self._leave_collected()
            now = self._clock()
            for g in self._groups.values():
                self._expire(g, now)
            return {gid: g.state.value for gid, g in self._groups.items()}

    def _check(self) -> None:
        """Assert: each partition has at most one owner, consistent with members."""
        with self._lock:
            for g in self._groups.values():
                seen: dict[TopicPartition, str] = {}
                for m in g.members.values():
                    for tp in m.owned:
                        assert tp not in seen, f"{tp} owned by {seen[tp]} and {m.member_id}"
                        seen[tp] = m.member_id
                assert seen == g.owners, (seen, g.owners)
