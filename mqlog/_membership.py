"""A subscribed consumer's side of the group protocol (see :mod:`mqlog.group`).

:class:`Membership` runs inside the consumer's own thread, at the start of every
``poll()``: it heartbeats, rejoins when a round is open (eager: auto-commit, then
``on_partitions_revoked``, then release everything), syncs to a new generation
(cooperative: release what moved, then take what is free) and calls the listener. It
never holds the coordinator's lock while calling the listener or committing.

Without a ``group_id`` a subscription is "solo": the consumer reads every partition of
the subscribed topics (kafka-python's behaviour for ``group_id=None``), following
topics created or grown later.

Thread-safety: used by one consumer thread at a time, like the consumer.
"""

from __future__ import annotations

import logging
import re
import weakref
from typing import TYPE_CHECKING, Any

from .errors import CommitFailedError, FencedInstanceIdError, MqlogError
from .group import FENCED, matching_topics
from .records import TopicPartition

if TYPE_CHECKING:  # pragma: no cover
    from .consumer import Consumer

__all__ = ["Membership"]

log = logging.getLogger("mqlog.consumer")


class Membership:
    """Subscription state and group steps of one consumer."""

    def __init__(self, consumer: Consumer, topics: frozenset[str],
                 pattern: re.Pattern | None, listener: Any) -> None:
        # A proxy, not a reference: no Consumer <-> Membership cycle, so a consumer
        # dropped without close() is freed (and leaves its group) promptly.
        self._consumer = weakref.proxy(consumer)
        self._owner = weakref.ref(consumer)
        self._broker = consumer._broker
        self.topics = topics
        self.pattern = pattern
        self.listener = listener
        self.group_id = consumer.group_id
        self._coordinator = self._broker._coordinator
        self.member = None
        self._finalizer: weakref.finalize | None = None
        self._solo_version = -1
        if self.group_id is not None:
            self._join()

    # -- membership ---------------------------------------------------------------

    def _join(self) -> None:
        c = self._consumer
        self.member = self._coordinator.join(
            self.group_id, client_id=c.client_id, topics=self.topics, pattern=self.pattern,
            assignors=c._assignors, instance_id=c.group_instance_id,
            max_poll_interval=c._max_poll_interval, session_timeout=c._session_timeout)
        if self._finalizer is not None:
            self._finalizer.detach()
        # A consumer dropped without close() leaves its group when collected; the
        # finaliser only queues (it may run inside any lock, during a collection).
        self._finalizer = weakref.finalize(self._owner(), self._coordinator.collected,
                                           self.group_id, self.member)
        if self.member.owned:  # a static member taking over its slot keeps what it owned
            c._set_assignment(sorted(self.member.owned))
            self._call("on_partitions_assigned", sorted(self.member.owned))

    def change(self, topics: frozenset[str], pattern: re.Pattern | None,
               listener: Any) -> None:
        """A new ``subscribe()`` on an existing subscription."""
        self.topics, self.pattern, self.listener = topics, pattern, listener
        if self.member is not None:
            self._coordinator.resubscribe(self.group_id, self.member, topics, pattern)
        self._solo_version = -1

    def subscribed_topics(self) -> set[str]:
        if self.pattern is None:
            return set(self.topics)
        return matching_topics(self.topics, self.pattern, list(self._broker._topics))

    # -- the poll step --------------------------------------------------------------

    def step(self) -> None:
        """Advance membership; called at the start of every poll (consumer thread)."""
        if self.member is None:
            self._solo_step()
            return
        coord, gid = self._coordinator, self.group_id
        coord.heartbeat(gid, self.member)
        if self.member.evicted == FENCED:
            raise FencedInstanceIdError(
                f"consumer {self._consumer.client_id} was fenced: another consumer joined "
                f"group {gid!r} with the same group_instance_id "
                f"{self.member.instance_id!r}; give each live consumer its own id, and "
                "close this one")
        if self.member.evicted is not None:
            lost = sorted(self.member.owned)
            self.member.owned.clear()
            self._consumer._set_assignment([])
            log.warning("consumer %s was removed from group %r (%s); rejoining",
                        self._consumer.client_id, gid, self.member.evicted)
            if lost:
                self._call("on_partitions_lost", lost)
            self._join()
            coord.heartbeat(gid, self.member)
        member = self.member
        if coord.must_join(gid, member):
            if not coord.cooperative(gid) and member.owned:
                self._revoke(set(member.owned), new_round=False)
            coord.mark_joined(gid, member)
        sync = coord.pending_sync(gid, member)
        if sync is not None:
            generation, target = sync
            cooperative = coord.cooperative(gid)
            if cooperative:
                moved = member.owned - set(target)
                if moved:
                    self._revoke(moved, new_round=True)
            added = coord.take(gid, member, generation, target)
            if member.evicted is not None:
                return  # evicted during the listener: the next poll rejoins
            self._consumer._set_assignment(sorted(member.owned))
            self._call("on_partitions_assigned",
                       sorted(added) if cooperative else sorted(member.owned))

    def _solo_step(self) -> None:
        version = self._broker._version
        if version == self._solo_version:
            return
        self._solo_version = version
        topics = dict(self._broker._topics)  # snapshot
        tps = [TopicPartition(t, p) for t in sorted(self.subscribed_topics())
               if t in topics for p in range(len(topics[t].partitions))]
        old = set(self._consumer._assignment)
        self._consumer._set_assignment(tps)
        added = sorted(set(tps) - old)
        if added:
            self._call("on_partitions_assigned", added)

    def _revoke(self, partitions: set, new_round: bool) -> None:
        """Auto-commit, tell the listener, then release ``partitions``."""
        ordered = sorted(partitions)
        self._consumer._auto_commit_partitions(ordered)
        self._call("on_partitions_revoked", ordered)
        self._coordinator.release(self.group_id, self.member, partitions, new_round)
        self._consumer._set_assignment(sorted(self.member.owned))

    def _call(self, name: str, partitions: list) -> None:
        fn = getattr(self.listener, name, None) if self.listener is not None else None
        if fn is None:
            return
        try:
            fn(partitions)
        except Exception:
            log.exception("rebalance listener %s(%s) raised", name, partitions)

    # -- commits and leaving ----------------------------------------------------------

    def commit_check(self, partitions: list[TopicPartition]) -> Any:
        """A fencing check to run inside the commit's write transaction."""
        member = self.member
        if member is None:
            return None
        generation = member.generation
        coord, gid = self._coordinator, self.group_id
        return lambda: coord.check_commit(gid, member, generation, partitions)

    def leave(self, revoke: bool) -> None:
        """Leave the group (close or unsubscribe)."""
        if self.member is None:
            return
        member = self.member
        if revoke and member.owned and member.evicted is None:
            self._consumer._auto_commit_partitions(sorted(member.owned))
            if member.instance_id is None:  # a static member keeps them for its successor
                self._call("on_partitions_revoked", sorted(member.owned))
        self._coordinator.leave(self.group_id, member)
        if self._finalizer is not None:
            self._finalizer.detach()
        self.member = None

    def deadline(self) -> float | None:
        if self.member is None:
            return None
        return self._coordinator.next_deadline(self.group_id)


def safe_auto_commit(consumer: Consumer, offsets: dict) -> None:
    """Commit before a revocation; a refused commit is logged, not raised."""
    try:
        consumer.commit(offsets)
    except (CommitFailedError, MqlogError) as exc:
        log.warning("auto-commit before rebalance failed for group %r: %s",
                    consumer.group_id, exc)
