"""Admin: topics and consumer groups, as Kafka's admin client sees them.

``broker.admin()`` returns an :class:`Admin`. Its views come from the broker's topic
metadata, the group coordinator (live membership) and the store (committed offsets).

Thread-safety: :class:`Admin` is thread-safe (it only calls thread-safe broker and
coordinator methods).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import attrs

from .config import effective_config
from .errors import ClosedError, IllegalStateError
from .group import GroupDescription, GroupListing
from .log import offset_for_time
from .records import OffsetAndMetadata, TopicInfo, TopicPartition

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker

__all__ = ["Admin", "GroupLag"]


@attrs.frozen
class GroupLag:
    """How far a group is behind on one partition: ``lag = end - committed``.

    ``committed`` is None when the group never committed for the partition; ``lag`` is
    then the whole retained partition (``end - log start``).
    """

    committed: int | None
    end: int
    lag: int


class Admin:
    """Administrative views and operations on one broker (thread-safe)."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._closed = False

    def __repr__(self) -> str:
        return f"<mqlog.Admin of {self._broker!r}>"

    def _check(self) -> None:
        if self._closed:
            raise ClosedError("the admin is closed: create a new one with broker.admin()")
        self._broker._check_open()

    def _mark_closed(self, reason: str) -> None:
        self._closed = True

    def close(self) -> None:
        """Release the admin handle. Idempotent."""
        self._closed = True
        self._broker._forget(self)

    # -- topics -----------------------------------------------------------------------

    def list_topics(self) -> list[str]:
        """Topic names, sorted."""
        self._check()
        return sorted(self._broker.topics())

    def describe_topics(self, topics: Iterable[str] | None = None) -> dict[str, TopicInfo]:
        """TopicInfo per topic (all topics when None).

        Raises:
            UnknownTopicOrPartitionError: a named topic does not exist.
        """
        self._check()
        known = self._broker.topics()
        if topics is None:
            return known
        return {t: self._broker._topic(t).info() for t in topics}

    def create_topics(self, new_topics: Iterable[TopicInfo | tuple]) -> list[TopicInfo]:
        """Create several topics: items are ``TopicInfo`` or ``(name, partitions[, config])``."""
        self._check()
        out = []
        for item in new_topics:
            if isinstance(item, TopicInfo):
                name, partitions, config = item.name, item.partitions, dict(item.config)
            else:
                name, partitions, *rest = item
                config = rest[0] if rest else None
            out.append(self._broker.create_topic(name, partitions, config))
        return out

    def delete_topics(self, topics: Iterable[str]) -> None:
        self._check()
        for t in topics:
            self._broker.delete_topic(t)

    def create_partitions(self, topic: str, total: int) -> TopicInfo:
        self._check()
        return self._broker.create_partitions(topic, total)

    def describe_configs(self, topic: str) -> dict[str, Any]:
        """Every config key of ``topic`` with its effective value (defaults included)."""
        self._check()
        return effective_config(self._broker._topic(topic).config)

    def alter_topic_config(self, topic: str, config: dict[str, Any]) -> TopicInfo:
        """Set config overrides (value None removes one), validated with Kafka's keys."""
        self._check()
        return self._broker.alter_topic_config(topic, config)

    def delete_records(self, offsets: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Delete records below the given offsets; returns the new log start per partition."""
        self._check()
        return {TopicPartition(*tp): self._broker.delete_records(tp, off)
                for tp, off in offsets.items()}

    # -- consumer groups -----------------------------------------------------------

    def list_consumer_groups(self) -> list[GroupListing]:
        """Every group with members or committed offsets, sorted by id."""
        self._check()
        states = self._broker._group_states()
        return [GroupListing(g, s) for g, s in sorted(states.items())]

    def describe_consumer_groups(self, group_ids: Iterable[str]) -> dict[str, GroupDescription]:
        """State, protocol, generation and members (with their partitions) per group."""
        self._check()
        return {g: self._broker._coordinator.describe(g) for g in group_ids}

    def list_consumer_group_offsets(self, group_id: str) -> dict[TopicPartition,
                                                                 OffsetAndMetadata]:
        """The group's committed offsets."""
        self._check()
        return self._broker.group_offsets(group_id)

    def alter_consumer_group_offsets(self, group_id: str,
                                     offsets: dict[TopicPartition, OffsetAndMetadata | int]
                                     ) -> None:
        """Set committed offsets; refused while the group has members (as Kafka does).

        Raises:
            IllegalStateError: the group has active members.
        """
        self._check()
        coord = self._broker._coordinator
        if coord.describe(group_id).members:
            raise IllegalStateError(
                f"group {group_id!r} has active members: stop its consumers before "
                "altering its offsets")
        tps = [TopicPartition(*tp) for tp in offsets]
        # Checked again inside the write, in case a member joined meanwhile.
        self._broker.commit_offsets(
            group_id, offsets, check=lambda: coord.check_commit(group_id, None, -1, tps))

    def delete_consumer_group_offsets(self, group_id: str,
                                      partitions: Iterable[TopicPartition]
                                      ) -> list[TopicPartition]:
        """Delete the group's committed offsets for ``partitions`` (Kafka's
        ``deleteConsumerGroupOffsets``); returns those that had one.

        Refused for a topic the group's active members subscribe to, as Kafka refuses
        it (``GROUP_SUBSCRIBED_TO_TOPIC``): their positions would jump to
        ``auto_offset_reset`` under them.

        Raises:
            IllegalStateError: an active member of the group subscribes to a topic of
                ``partitions``.
        """
        self._check()
        tps = [TopicPartition(*tp) for tp in partitions]
        coord = self._broker._coordinator
        topics = {tp.topic for tp in tps}

        def check() -> None:  # inside the write: a member may have joined meanwhile
            busy = sorted(coord.subscribed_topics(group_id, topics))
            if busy:
                raise IllegalStateError(
                    f"group {group_id!r} has active members subscribed to {busy}: stop "
                    "them (or unsubscribe) before deleting those offsets")

        return self._broker.delete_committed_offsets(group_id, tps, check=check)

    def delete_consumer_groups(self, group_ids: Iterable[str]) -> None:
        """Delete groups and their committed offsets (refused while members are active).

        Raises:
            IllegalStateError: a group still has members.
        """
        self._check()
        for g in group_ids:
            self._broker.delete_group(g)

    def reset_offsets(self, group_id: str, partitions: Iterable[TopicPartition], *,
                      to_earliest: bool = False, to_latest: bool = False,
                      to_offset: int | None = None, to_timestamp: int | None = None,
                      shift_by: int | None = None, execute: bool = True
                      ) -> dict[TopicPartition, int]:
        """Compute (and with ``execute``, commit) new offsets for a group, as
        ``kafka-consumer-groups --reset-offsets`` does; exactly one target option.

        Offsets are clamped to each partition's ``log start .. end``.

        Returns:
            The new offset per partition.

        Raises:
            ValueError: not exactly one target option.
            IllegalStateError: the group has active members (with ``execute``).
        """
        self._check()
        chosen = [to_earliest, to_latest, to_offset is not None, to_timestamp is not None,
                  shift_by is not None]
        if sum(map(bool, chosen)) != 1:
            raise ValueError("reset_offsets needs exactly one of to_earliest, to_latest, "
                             "to_offset, to_timestamp, shift_by")
        committed = self._broker.group_offsets(group_id)
        out = {}
        for tp in partitions:
            tp = TopicPartition(*tp)
            plog = self._broker._partition(tp)
            if to_earliest:
                new = plog.log_start
            elif to_latest:
                new = plog.end_offset
            elif to_offset is not None:
                new = to_offset
            elif to_timestamp is not None:
                with self._broker._store.read() as txn:
                    found = offset_for_time(txn, plog, to_timestamp)
                new = plog.end_offset if found is None else found[0]
            else:
                current = committed.get(tp)
                base = current.offset if current is not None else plog.log_start
                new = base + shift_by
            out[tp] = min(max(new, plog.log_start), plog.end_offset)
        if execute:
            self.alter_consumer_group_offsets(group_id, out)
        return out

    def lag(self, group_id: str) -> dict[TopicPartition, GroupLag]:
        """Per partition the group committed for or is assigned: committed vs log end."""
        self._check()
        committed = self._broker.group_offsets(group_id)
        tps = set(committed)
        for m in self._broker._coordinator.describe(group_id).members:
            tps.update(m.assignment)
        out = {}
        for tp in sorted(tps):
            try:
                plog = self._broker._partition(tp)
            except Exception:
                continue  # the topic was deleted
            om = committed.get(tp)
            end = plog.end_offset
            done = om.offset if om is not None else None
            out[tp] = GroupLag(done, end, end - (done if done is not None else plog.log_start))
        return out

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
