"""Partition assignors: who in a consumer group reads which partition.

Each assignor is a pure function of the group's members (their subscriptions and, for
the sticky ones, the partitions they own now) and the partition counts of the topics
involved. Names follow Kafka's: ``range``, ``roundrobin``, ``sticky``,
``cooperative-sticky``. Members are always taken in member-id order, so the result is
deterministic.

Every assignor guarantees: each partition of a subscribed topic goes to exactly one
member subscribed to that topic; a partition of a topic nobody subscribes to goes to
nobody.

A custom assignor is any object with a ``name`` (str) and
``assign(members, partitions_per_topic) -> {member_id: [TopicPartition, ...]}``; set
``cooperative = True`` on it to use the cooperative protocol.

Thread-safety: pure functions; thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .errors import InvalidConfigError
from .records import TopicPartition

__all__ = [
    "ASSIGNORS",
    "Assignor",
    "MemberSubscription",
    "cooperative_sticky",
    "range_assign",
    "resolve_assignors",
    "roundrobin_assign",
    "sticky_assign",
]


@attrs.frozen
class MemberSubscription:
    """What an assignor knows of one member: its topics and what it owns now."""

    topics: frozenset[str]
    owned: tuple[TopicPartition, ...] = ()


Assignment = dict[str, list[TopicPartition]]


def _empty(members: Mapping[str, Any]) -> Assignment:
    return {m: [] for m in members}


def range_assign(members: Mapping[str, MemberSubscription],
                 partitions_per_topic: Mapping[str, int]) -> Assignment:
    """Kafka's ``range``: per topic, consecutive partition ranges in member order.

    The first ``partitions % members`` members get one extra partition, topic by topic,
    so with several topics the first members carry more.

    Example: members ``a, b`` on topic ``t`` with 3 partitions gets
    ``a: t-0, t-1`` and ``b: t-2``; with topics ``t`` and ``u`` of 3 partitions each,
    ``a: t-0, t-1, u-0, u-1`` and ``b: t-2, u-2``.
    """
    out = _empty(members)
    for topic in sorted(partitions_per_topic):
        subscribers = sorted(m for m, s in members.items() if topic in s.topics)
        if not subscribers:
            continue
        n = partitions_per_topic[topic]
        per, extra = divmod(n, len(subscribers))
        start = 0
        for i, m in enumerate(subscribers):
            count = per + (1 if i < extra else 0)
            out[m].extend(TopicPartition(topic, p) for p in range(start, start + count))
            start += count
    return out


def roundrobin_assign(members: Mapping[str, MemberSubscription],
                      partitions_per_topic: Mapping[str, int]) -> Assignment:
    """Kafka's ``roundrobin``: all partitions, sorted, dealt to members in turn.

    A partition is dealt to the next member (in a circle) subscribed to its topic.

    Example: members ``a, b`` on topics ``t`` and ``u`` of 3 partitions each gets
    ``a: t-0, t-2, u-1`` and ``b: t-1, u-0, u-2``.
    """
    out = _empty(members)
    order = sorted(members)
    if not order:
        return out
    i = 0
    for tp in _all_partitions(members, partitions_per_topic):
        for step in range(len(order)):
            m = order[(i + step) % len(order)]
            if tp.topic in members[m].topics:
                out[m].append(tp)
                i = (i + step + 1) % len(order)
                break
    return out


def _all_partitions(members: Mapping[str, MemberSubscription],
                    partitions_per_topic: Mapping[str, int]) -> list[TopicPartition]:
    wanted = set().union(*(s.topics for s in members.values())) if members else set()
    return [TopicPartition(t, p) for t in sorted(wanted & set(partitions_per_topic))
            for p in range(partitions_per_topic[t])]


def sticky_assign(members: Mapping[str, MemberSubscription],
                  partitions_per_topic: Mapping[str, int]) -> Assignment:
    """Kafka's ``sticky``: balanced like ``roundrobin``, moving as few partitions as
    possible from the current owners.

    Steps: keep every owned partition that is still valid (topic subscribed, partition
    exists, not claimed twice); give each unowned partition to the eligible member with
    the fewest; then, while some member has two more than another eligible one, move a
    partition from the fuller to the emptier.

    Example: ``a`` owns ``t-0, t-1, t-2, t-3`` and ``b`` joins: ``a`` keeps
    ``t-0, t-1`` and ``b`` gets ``t-2, t-3`` (two moves; ``range`` would move the same
    here, but a third member joining later moves only what balance requires).
    """
    out = _empty(members)
    valid = set(_all_partitions(members, partitions_per_topic))
    taken: set[TopicPartition] = set()
    for m in sorted(members):
        for tp in members[m].owned:
            if tp in valid and tp not in taken and tp.topic in members[m].topics:
                out[m].append(tp)
                taken.add(tp)

    def eligible(tp: TopicPartition) -> list[str]:
        return [m for m in sorted(members) if tp.topic in members[m].topics]

    for tp in sorted(valid - taken):
        who = eligible(tp)
        target = min(who, key=lambda m: (len(out[m]), m))
        out[target].append(tp)
    # Rebalance: move from the most loaded to the least loaded eligible member.
    moved = True
    while moved:
        moved = False
        for heavy in sorted(out, key=lambda m: (-len(out[m]), m)):
            for tp in sorted(out[heavy], reverse=True):
                light = min(eligible(tp), key=lambda m: (len(out[m]), m))
                if len(out[heavy]) - len(out[light]) > 1:
                    out[heavy].remove(tp)
                    out[light].append(tp)
                    moved = True
                    break
            if moved:
                break
    for m in out:
        out[m].sort()
    return out


def cooperative_sticky(members: Mapping[str, MemberSubscription],
                       partitions_per_topic: Mapping[str, int]) -> Assignment:
    """Kafka's ``cooperative-sticky``: the ``sticky`` target, reached cooperatively.

    The assignment equals :func:`sticky_assign`'s; the cooperative protocol (in the
    group coordinator) revokes only the partitions that move, and hands them to their
    new owner in a second round, after the old owner released them.
    """
    return sticky_assign(members, partitions_per_topic)


@attrs.frozen
class Assignor:
    """A named assignment function; ``cooperative`` selects the rebalance protocol."""

    name: str
    assign: Any = attrs.field(eq=False)
    cooperative: bool = False


ASSIGNORS: dict[str, Assignor] = {
    "range": Assignor("range", range_assign),
    "roundrobin": Assignor("roundrobin", roundrobin_assign),
    "sticky": Assignor("sticky", sticky_assign),
    "cooperative-sticky": Assignor("cooperative-sticky", cooperative_sticky,
                                   cooperative=True),
}

# kafka-python's class names for the built-ins, accepted as aliases.
_ALIASES = {
    "RangePartitionAssignor": "range",
    "RoundRobinPartitionAssignor": "roundrobin",
    "StickyPartitionAssignor": "sticky",
    "CooperativeStickyAssignor": "cooperative-sticky",
}


def resolve_assignors(strategies: Iterable[Any] | str | None) -> tuple[Assignor, ...]:
    """Turn a ``partition_assignment_strategy`` setting into assignors, in order.

    Accepts names (``"range"``), kafka-python's assignor classes or their names, and
    custom objects with ``name`` and ``assign``.

    Raises:
        InvalidConfigError: an unknown name or an object without ``name``/``assign``.
    """
    if strategies is None:
        strategies = ("range", "roundrobin")
    if isinstance(strategies, str):
        strategies = [strategies]
    out = []
    for s in strategies:
        key = s if isinstance(s, str) else getattr(s, "__name__", None)
        key = _ALIASES.get(key, key) if key is not None else None
        if key in ASSIGNORS:
            out.append(ASSIGNORS[key])
        elif not isinstance(s, str) and isinstance(getattr(s, "name", None), str) and \
                callable(getattr(s, "assign", None)):
            out.append(Assignor(s.name, s.assign, bool(getattr(s, "cooperative", False))))
        else:
            raise InvalidConfigError(
                f"partition_assignment_strategy entry {s!r} is not known: use 'range', "
                "'roundrobin', 'sticky', 'cooperative-sticky' or an object with a name "
                "and assign(members, partitions_per_topic)")
    if not out:
        raise InvalidConfigError("partition_assignment_strategy is empty: name at least one")
    return tuple(out)
