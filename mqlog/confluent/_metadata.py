"""Cluster metadata as confluent-kafka returns it from ``list_topics()``.

An mqlog broker is presented as a one-node cluster: node 0 (host ``"mqlog"``), which
leads every partition and is its only replica. The cluster id is derived from the
store's directory, so it is stable across restarts of the same store.

Thread-safety: the classes are plain values; :func:`cluster_metadata` only calls
thread-safe broker methods.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import TYPE_CHECKING

from .. import errors as _errors
from .error import KafkaError, error

if TYPE_CHECKING:  # pragma: no cover
    from ..broker import Broker

__all__ = ["BrokerMetadata", "ClusterMetadata", "GroupMember", "GroupMetadata",
           "PartitionMetadata", "TopicMetadata", "cluster_metadata"]

NODE_ID = 0
NODE_HOST = "mqlog"
NODE_PORT = 0


class BrokerMetadata:
    """A broker of the cluster: ``id``, ``host``, ``port``."""

    def __init__(self) -> None:
        self.id = -1
        self.host: str | None = None
        self.port = -1

    def __repr__(self) -> str:
        return f"BrokerMetadata({self.id}, {self.host}:{self.port})"

    __str__ = __repr__


class PartitionMetadata:
    """A partition: ``id``, ``leader``, ``replicas``, ``isrs``, ``error``."""

    def __init__(self) -> None:
        self.id = -1
        self.leader = -1
        self.replicas: list[int] = []
        self.isrs: list[int] = []
        self.error: KafkaError | None = None

    def __repr__(self) -> str:
        if self.error is not None:
            return f"PartitionMetadata({self.id}, {self.error})"
        return f"PartitionMetadata({self.id})"

    __str__ = __repr__


class TopicMetadata:
    """A topic: ``topic``, ``partitions`` (``{id: PartitionMetadata}``), ``error``."""

    def __init__(self) -> None:
        self.topic: str | None = None
        self.partitions: dict[int, PartitionMetadata] = {}
        self.error: KafkaError | None = None

    def __repr__(self) -> str:
        if self.error is not None:
            return (f"TopicMetadata({self.topic}, {len(self.partitions)} partitions, "
                    f"{self.error})")
        return f"TopicMetadata({self.topic}, {len(self.partitions)} partitions)"

    __str__ = __repr__


class ClusterMetadata:
    """The cluster: ``cluster_id``, ``controller_id``, ``brokers``, ``topics``,
    ``orig_broker_id``, ``orig_broker_name``."""

    def __init__(self) -> None:
        self.cluster_id: str | None = None
        self.controller_id = -1
        self.brokers: dict[int, BrokerMetadata] = {}
        self.topics: dict[str, TopicMetadata] = {}
        self.orig_broker_id = -1
        self.orig_broker_name: str | None = None

    def __repr__(self) -> str:
        return f"ClusterMetadata({self.cluster_id})"

    __str__ = __repr__


class GroupMember:
    """A member of a group (``AdminClient.list_groups``)."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.client_id: str | None = None
        self.client_host: str | None = None
        self.metadata: bytes | None = None
        self.assignment: bytes | None = None


class GroupMetadata:
    """A group (``AdminClient.list_groups``): ``broker``, ``id``, ``error``, ``state``,
    ``protocol_type``, ``protocol``, ``members``."""

    def __init__(self) -> None:
        self.broker: BrokerMetadata | None = None
        self.id: str | None = None
        self.error: KafkaError | None = None
        self.state: str | None = None
        self.protocol_type: str | None = None
        self.protocol: str | None = None
        self.members: list[GroupMember] = []

    def __repr__(self) -> str:
        return f"GroupMetadata({self.id})"

    __str__ = __repr__


def cluster_id(broker: Broker) -> str:
    """A Kafka-style (22 character base64) id, stable for the broker's directory."""
    digest = hashlib.sha1(os.path.realpath(broker.path).encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def node() -> BrokerMetadata:
    b = BrokerMetadata()
    b.id, b.host, b.port = NODE_ID, NODE_HOST, NODE_PORT
    return b


def _topic(name: str, partitions: int, err: KafkaError | None = None) -> TopicMetadata:
    t = TopicMetadata()
    t.topic = name
    t.error = err
    for p in range(partitions):
        pm = PartitionMetadata()
        pm.id, pm.leader, pm.replicas, pm.isrs = p, NODE_ID, [NODE_ID], [NODE_ID]
        t.partitions[p] = pm
    return t


def cluster_metadata(broker: Broker, topic: str | None = None,
                     auto_create: bool = False) -> ClusterMetadata:
    """``list_topics()``: every topic, or only ``topic`` (created first when
    ``auto_create`` and the broker allows it, as a broker with
    ``auto.create.topics.enable`` does for a producer's metadata request).

    Raises:
        ClosedError: the broker is closed.
    """
    md = ClusterMetadata()
    md.cluster_id = cluster_id(broker)
    md.controller_id = NODE_ID
    md.brokers = {NODE_ID: node()}
    md.orig_broker_id = NODE_ID
    md.orig_broker_name = f"{NODE_HOST}:{NODE_PORT}/{NODE_ID}"
    topics = broker.topics()
    if topic is None:
        md.topics = {name: _topic(name, info.partitions) for name, info in topics.items()}
        return md
    info = topics.get(topic)
    if info is None and auto_create and broker.auto_create_topics:
        try:
            info = broker.create_topic(topic)
        except _errors.TopicExistsError:  # created meanwhile by another client
            info = broker.topics().get(topic)
        except _errors.InvalidTopicError as exc:
            md.topics[topic] = _topic(topic, 0, error("TOPIC_EXCEPTION", str(exc)))
            return md
    if info is None:
        md.topics[topic] = _topic(topic, 0, error("UNKNOWN_TOPIC_OR_PART"))
    else:
        md.topics[topic] = _topic(topic, info.partitions)
    return md

