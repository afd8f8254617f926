"""aiokafka's ``AIOKafkaAdminClient`` (``aiokafka.admin``) over an mqlog broker.

Applications create their topics at start-up with it (``await admin.create_topics([
NewTopic("orders", 3, 1)])``), so code importing ``aiokafka.admin`` runs unchanged
under the pytest plugin's aliases. Each coroutine runs the work of
:class:`mqlog.kafka.KafkaAdminClient` in the loop's default executor (the store is
blocking), and returns what aiokafka returns: the broker's response for the topic
calls (``create_topics`` reports an existing topic in ``response.topic_errors``, it does
not raise, as aiokafka), plain lists and dicts for the others.

Not provided: ``describe_configs``, ``alter_configs``, ``describe_consumer_groups``
(their aiokafka results are raw protocol structures).

Thread-safety: as aiokafka's, use a client from the event loop that started it.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, NamedTuple

from ..errors import MqlogError
from ..kafka.admin import KafkaAdminClient, NewPartitions, NewTopic
from ._bridge import reraise
from .errors import IllegalStateError
from .structs import OffsetAndMetadata, TopicPartition

__all__ = ["AIOKafkaAdminClient", "NewPartitions", "NewTopic", "RecordsToDelete"]


class RecordsToDelete:
    """For ``delete_records``: delete every record below ``before_offset``."""

    def __init__(self, before_offset: int) -> None:
        self.before_offset = before_offset

    def __repr__(self) -> str:
        return f"RecordsToDelete(before_offset={self.before_offset})"


class CreateTopicsResponse(NamedTuple):
    """What ``create_topics`` returns: ``topic_errors`` is ``[(topic, error_code,
    error_message)]``, error_code 0 for a created topic (36: it existed already)."""

    throttle_time_ms: int
    topic_errors: list[tuple[str, int, str | None]]


class DeleteTopicsResponse(NamedTuple):
    """What ``delete_topics`` returns: ``topic_error_codes`` is ``[(topic, error_code)]``
    (3: no such topic)."""

    throttle_time_ms: int
    topic_error_codes: list[tuple[str, int]]


class CreatePartitionsResponse(NamedTuple):
    """What ``create_partitions`` returns (errors are raised first)."""

    throttle_time_ms: int
    topic_errors: list[tuple[str, int, str | None]]


# Keywords aiokafka's constructor takes that mean nothing in one process.
_IGNORED = frozenset({
    "loop", "client_id", "request_timeout_ms", "connections_max_idle_ms",
    "retry_backoff_ms", "metadata_max_age_ms", "security_protocol", "ssl_context",
    "api_version", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
    "sasl_kerberos_service_name", "sasl_kerberos_domain_name",
    "sasl_oauth_token_provider"})


class AIOKafkaAdminClient:
    """aiokafka's admin client on an mqlog broker.

    Use it from one event loop (as aiokafka's); the blocking work runs in that loop's
    default executor.

    Args:
        bootstrap_servers: selects the broker, as for the other clients
            (``"mqlog:///path"``, ``MQLOG_BOOTSTRAP``, or the test's / process's
            temporary broker).
        **configs: aiokafka's other keywords (accepted and ignored).

    Raises:
        TypeError: a keyword aiokafka's constructor does not take.
    """

    def __init__(self, *, bootstrap_servers: str | list[str] = "localhost",
                 **configs: Any) -> None:
        unknown = sorted(set(configs) - _IGNORED)
        if unknown:
            raise TypeError(f"AIOKafkaAdminClient.__init__() got an unexpected keyword "
                            f"argument {unknown[0]!r}")
        self._bootstrap_servers = bootstrap_servers
        self._client_id = configs.get("client_id")
        self._admin: KafkaAdminClient | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("started" if self._admin else "new")
        return f"<mqlog.aiokafka.AIOKafkaAdminClient {state}>"

    async def start(self) -> None:
        """Resolve the broker (off the loop). Idempotent.

        Raises:
            NoBrokersAvailable: the ``mqlog://`` directory is owned by another process.
        """
        if self._closed:
            raise IllegalStateError("the admin client was closed: create a new one")
        if self._admin is None:
            kwargs: dict[str, Any] = {"bootstrap_servers": self._bootstrap_servers}
            if self._client_id is not None:
                kwargs["client_id"] = self._client_id
            loop = asyncio.get_running_loop()
            self._admin = await loop.run_in_executor(
                None, functools.partial(KafkaAdminClient, **kwargs))

    async def close(self) -> None:
        """Release the client. Idempotent."""
        if not self._closed:
            self._closed = True
            if self._admin is not None:
                self._admin.close()

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise IllegalStateError("the admin client was closed: create a new one")
        if self._admin is None:
            raise IllegalStateError("call `await admin.start()` before using the admin "
                                    "client")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                None, functools.partial(fn, self._admin, *args, **kwargs))
        except MqlogError as exc:
            reraise(exc)

    # -- topics ---------------------------------------------------------------------

    async def create_topics(self, new_topics: list[NewTopic], timeout_ms: int | None = None,
                            validate_only: bool = False) -> CreateTopicsResponse:
        """Create topics. A topic that cannot be created is reported in
        ``topic_errors`` with its error code (36: it exists), not raised, as aiokafka.
        """
        result = await self._call(KafkaAdminClient.create_topics, new_topics,
                                  validate_only=validate_only, raise_errors=False)
        return CreateTopicsResponse(0, [(t["name"], t["error_code"], t["error_message"])
                                        for t in result["topics"]])

    async def delete_topics(self, topics: list[str], timeout_ms: int | None = None
                            ) -> DeleteTopicsResponse:
        """Delete topics with their records; an unknown one is reported (code 3)."""
        result = await self._call(KafkaAdminClient.delete_topics, topics,
                                  raise_errors=False)
        return DeleteTopicsResponse(0, [(t["name"], t["error_code"])
                                        for t in result["topics"]])

    async def list_topics(self) -> list[str]:
        """Every topic name."""
        return await self._call(KafkaAdminClient.list_topics)

    async def describe_topics(self, topics: list[str] | None = None) -> list[dict[str, Any]]:
        """Topic metadata as aiokafka's dicts (``error_code``, ``topic``,
        ``is_internal``, ``partitions``: ``error_code``, ``partition``, ``leader``,
        ``replicas``, ``isr``); an unknown topic has ``error_code`` 3."""
        found = await self._call(KafkaAdminClient.describe_topics, topics)
        return [{"error_code": t["error_code"], "topic": t["name"],
                 "is_internal": t["is_internal"],
                 "partitions": [{"error_code": p["error_code"],
                                 "partition": p["partition_index"],
                                 "leader": p["leader_id"], "replicas": p["replica_nodes"],
                                 "isr": p["isr_nodes"],
                                 "offline_replicas": p["offline_replicas"]}
                                for p in t["partitions"]]}
                for t in found]

    async def describe_cluster(self) -> dict[str, Any]:
        """The cluster: one broker (node 0), also the controller."""
        c = await self._call(KafkaAdminClient.describe_cluster)
        return {"brokers": [{"node_id": b["broker_id"], "host": b["host"],
                             "port": b["port"], "rack": b["rack"]} for b in c["brokers"]],
                "cluster_id": c["cluster_id"], "controller_id": c["controller_id"]}

    async def create_partitions(self, topic_partitions: dict[str, NewPartitions],
                                timeout_ms: int | None = None, validate_only: bool = False
                                ) -> CreatePartitionsResponse:
        """Grow topics to ``NewPartitions(total_count)``.

        Raises:
            InvalidPartitionsError: a total not larger than the current count.
            UnknownTopicOrPartitionError: no such topic.
        """
        result = await self._call(KafkaAdminClient.create_partitions, topic_partitions,
                                  validate_only=validate_only)
        return CreatePartitionsResponse(0, [(t["name"], t["error_code"], t["error_message"])
                                            for t in result["results"]])

    async def delete_records(self, records_to_delete: dict[TopicPartition, RecordsToDelete],
                             timeout_ms: int | None = None) -> dict[TopicPartition, int]:
        """Delete the records below each offset; returns the new low watermarks.

        Raises:
            OffsetOutOfRangeError: an offset beyond the end of the log.
            UnknownTopicOrPartitionError: no such partition.
        """
        offsets = {tp: getattr(r, "before_offset", r) for tp, r in records_to_delete.items()}
        result = await self._call(KafkaAdminClient.delete_records, offsets)
        return {tp: r["low_watermark"] for tp, r in result.items()}

    # -- groups ---------------------------------------------------------------------

    async def list_consumer_groups(self, broker_ids: list[int] | None = None
                                   ) -> list[tuple[str, str]]:
        """``[(group_id, protocol_type)]`` for every group with members or offsets."""
        return await self._call(KafkaAdminClient.list_consumer_groups)

    async def find_coordinator(self, group_id: str, coordinator_type: int = 0) -> int:
        """The coordinator's node id: always 0 (one broker)."""
        return 0

    async def list_consumer_group_offsets(
            self, group_id: str, group_coordinator_id: int | None = None,
            partitions: list[TopicPartition] | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """The group's committed offsets (only ``partitions``, if given)."""
        return await self._call(KafkaAdminClient.list_consumer_group_offsets, group_id,
                                partitions=partitions)

    async def delete_consumer_groups(self, group_ids: list[str],
                                     group_coordinator_id: int | None = None
                                     ) -> list[tuple[str, int]]:
        """Delete groups with their offsets: ``[(group_id, error_code)]`` (0, or 68 /
        69 for a group with members / an unknown group)."""
        result = await self._call(KafkaAdminClient.delete_consumer_groups, group_ids)
        return [(gid, getattr(err, "errno", 0) or 0) for gid, err in result]
