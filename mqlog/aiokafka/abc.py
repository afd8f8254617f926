"""aiokafka's abstract base classes (``aiokafka.abc``).

:class:`ConsumerRebalanceListener` is what ``AIOKafkaConsumer.subscribe(listener=...)``
accepts: its two callbacks may be plain functions or coroutines; the drop-in runs them
on the consumer's event loop (never in a worker thread) and waits for them before the
consumer fetches again, as aiokafka does.
"""

from __future__ import annotations

import abc
from typing import Any

from .structs import TopicPartition

__all__ = ["AbstractTokenProvider", "ConsumerRebalanceListener"]


class ConsumerRebalanceListener(abc.ABC):
    """Callbacks around group rebalances; subclass and implement both.

    Either method may be ``async def``. They run on the event loop, in the order
    Kafka guarantees: every member's ``on_partitions_revoked`` before any member's
    ``on_partitions_assigned``. With ``enable_auto_commit`` the consumed offsets of the
    revoked partitions are committed just before ``on_partitions_revoked``. Neither is
    called by ``stop()``.

    Partitions taken away without a chance to commit (the member was expired) are
    reported to ``on_partitions_revoked`` too: aiokafka has no separate "lost" callback.
    """

    @abc.abstractmethod
    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> Any:
        """Called before a rebalance takes ``revoked`` away: commit or save state here."""

    @abc.abstractmethod
    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> Any:
        """Called after a rebalance, before fetching resumes: ``consumer.seek()`` here
        to start from offsets stored elsewhere."""


class AbstractTokenProvider(abc.ABC):
    """SASL OAUTHBEARER token source (accepted for compatibility; mqlog does not
    authenticate: everything is in-process)."""

    def __init__(self, **config: Any) -> None:  # noqa: B027 - takes aiokafka's keywords
        pass

    @abc.abstractmethod
    async def token(self) -> str:
        """An access token."""

    def extensions(self) -> dict[str, str]:
        """Optional SASL extensions."""
        return {}
