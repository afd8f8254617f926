"""confluent-kafka's ``AdminClient`` (``confluent_kafka.admin``) over an mqlog broker.

Each method returns what confluent-kafka's returns — a dict of
``concurrent.futures.Future`` keyed by topic, group, resource or partition (or one
future) — but the work is done before the method returns, so every future is already
resolved: ``result()`` returns at once or raises ``KafkaException``. Error codes are
Kafka's (``TOPIC_ALREADY_EXISTS``, ``UNKNOWN_TOPIC_OR_PART``, ``NON_EMPTY_GROUP``,
``GROUP_ID_NOT_FOUND``, ``INVALID_PARTITIONS``, ``INVALID_CONFIG``...).

The broker is presented as a one-node cluster (node 0, host ``mqlog``). ACL, SCRAM and
leader-election calls return futures failing with ``_NOT_IMPLEMENTED``.

Thread-safety: ``AdminClient`` is thread-safe.
"""

from __future__ import annotations

import functools
import logging
import re
from concurrent.futures import Future
from typing import Any, Callable, Iterable

from .. import errors as _errors
from .._bootstrap import resolve
from ..config import effective_config, validate_topic_config
from ..records import OffsetAndMetadata
from ..records import TopicPartition as _CoreTP
from . import _config
from ._admin_types import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ConsumerGroupDescription,
    ConsumerGroupListing,
    DeletedRecords,
    DescribeClusterResult,
    ListConsumerGroupsResult,
    ListOffsetsResultInfo,
    MemberAssignment,
    MemberDescription,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
    TopicDescription,
)
from ._metadata import (
    NODE_HOST,
    NODE_ID,
    NODE_PORT,
    BrokerMetadata,
    ClusterMetadata,
    GroupMember,
    GroupMetadata,
    PartitionMetadata,
    TopicMetadata,
    cluster_id,
    cluster_metadata,
    node,
)
from ._model import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    ConsumerGroupType,
    IsolationLevel,
    Node,
    TopicCollection,
    TopicPartitionInfo,
)
from ._types import OFFSET_END, OFFSET_INVALID, TopicPartition
from .error import KafkaError, KafkaException, error, to_kafka_error

__all__ = [
    "CONFIG_SOURCE_DEFAULT_CONFIG", "CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG",
    "CONFIG_SOURCE_UNKNOWN_CONFIG", "RESOURCE_ANY", "RESOURCE_BROKER", "RESOURCE_GROUP",
    "RESOURCE_TOPIC", "RESOURCE_UNKNOWN", "AdminClient", "AlterConfigOpType",
    "BrokerMetadata", "ClusterMetadata", "ConfigEntry", "ConfigResource", "ConfigSource",
    "ConsumerGroupDescription", "ConsumerGroupListing", "ConsumerGroupState",
    "ConsumerGroupTopicPartitions", "ConsumerGroupType", "DeletedRecords",
    "DescribeClusterResult", "GroupMember", "GroupMetadata", "IsolationLevel",
    "KafkaError", "KafkaException", "ListConsumerGroupsResult", "ListOffsetsResultInfo",
    "MemberAssignment", "MemberDescription", "NewPartitions", "NewTopic", "Node",
    "OffsetSpec", "PartitionMetadata", "ResourceType", "TopicCollection",
    "TopicDescription", "TopicMetadata", "TopicPartition", "TopicPartitionInfo",
]

log = logging.getLogger("mqlog.confluent")

RESOURCE_UNKNOWN = ResourceType.UNKNOWN
RESOURCE_ANY = ResourceType.ANY
RESOURCE_TOPIC = ResourceType.TOPIC
RESOURCE_GROUP = ResourceType.GROUP
RESOURCE_BROKER = ResourceType.BROKER
CONFIG_SOURCE_UNKNOWN_CONFIG = ConfigSource.UNKNOWN_CONFIG
CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG = ConfigSource.DYNAMIC_TOPIC_CONFIG
CONFIG_SOURCE_DEFAULT_CONFIG = ConfigSource.DEFAULT_CONFIG

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}\Z")
_STATES = {"Empty": ConsumerGroupState.EMPTY,
           "PreparingRebalance": ConsumerGroupState.PREPARING_REBALANCING,
           "CompletingRebalance": ConsumerGroupState.COMPLETING_REBALANCING,
           "Stable": ConsumerGroupState.STABLE, "Dead": ConsumerGroupState.DEAD}


def _resolved(value: Any = None, exc: BaseException | None = None) -> Future:
    f: Future = Future()
    if exc is None:
        f.set_result(value)
    else:
        f.set_exception(exc)
    return f


def _failed(name: str, reason: str) -> Future:
    return _resolved(exc=KafkaException(error(name, reason)))


def _run(fn: Callable[[], Any]) -> Future:
    """A future with ``fn()``'s result, or its error as ``KafkaException``."""
    try:
        return _resolved(fn())
    except KafkaException as exc:
        return _resolved(exc=exc)
    except (_errors.MqlogError, ValueError, TypeError) as exc:
        return _resolved(exc=KafkaException(to_kafka_error(exc)))


def _check_list(items: Any, what: str, cls: type | tuple[type, ...] | None = None) -> list:
    if not isinstance(items, list):
        raise TypeError(f"Expected list of {what}")
    if not items:
        raise ValueError(f"Expected non-empty list of {what}")
    if cls is not None and not all(isinstance(i, cls) for i in items):
        raise TypeError(f"Expected list of {what}")
    return items


def _refused_after_close(cls: type) -> type:
    """Make every public method of ``cls`` raise ``RuntimeError`` once the client was
    closed (left its ``with`` block), as confluent-kafka's destroyed handle does."""
    for name, fn in list(vars(cls).items()):
        if name.startswith("_") or not callable(fn):
            continue

        def guarded(self: Any, *args: Any, __fn: Callable[..., Any] = fn, **kwargs: Any
                    ) -> Any:
            if self._closed:
                raise RuntimeError("Handle has been closed")
            return __fn(self, *args, **kwargs)

        functools.update_wrapper(guarded, fn)
        setattr(cls, name, guarded)
    return cls


@_refused_after_close
class AdminClient:
    """Administrative client with confluent-kafka's API (thread-safe).

    A context manager (confluent-kafka 2.13+): leaving the ``with`` block releases the
    client, and every later call raises ``RuntimeError``.

    Args:
        conf: librdkafka properties (``bootstrap.servers`` selects the broker).

    Raises:
        TypeError: ``conf`` is not a dict.
        KafkaException: ``_INVALID_ARG`` for an unknown property or a bad value.
    """

    def __init__(self, conf: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._conf = _config.parse(conf, kwargs, "A")
        try:
            self._broker = resolve(self._conf.get("metadata.broker.list"))
            self._admin = self._broker.admin()
            self._closed = False
        except _errors.MqlogError as exc:
            raise KafkaException(to_kafka_error(exc, "Failed to create admin client: ")) \
                from exc

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<mqlog.confluent.AdminClient{state} of {self._broker!r}>"

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if not self._closed:
            self._closed = True
            self._admin.close()

    # -- topics -----------------------------------------------------------------------

    def _validate_new_topic(self, t: NewTopic) -> None:
        if not _TOPIC_NAME.match(t.topic) or t.topic in (".", ".."):
            raise KafkaException(error("TOPIC_EXCEPTION", f"topic name {t.topic!r} is "
                                       "invalid: use 1-249 of [A-Za-z0-9._-], not . or .."))
        if t.topic in self._broker.topics():
            raise KafkaException(error("TOPIC_ALREADY_EXISTS",
                                       f"Topic '{t.topic}' already exists."))
        if t.num_partitions not in (-1,) and t.num_partitions < 1:
            raise KafkaException(error("INVALID_PARTITIONS", f"num_partitions="
                                       f"{t.num_partitions} must be >= 1 (or -1: default)"))
        validate_topic_config(t.config)

    def _partitions_of(self, t: NewTopic) -> int:
        if t.replica_assignment:
            return len(t.replica_assignment)
        return self._broker.num_partitions if t.num_partitions == -1 else t.num_partitions

    def create_topics(self, new_topics: list[NewTopic], operation_timeout: float = 0,
                      request_timeout: float | None = None, validate_only: bool = False
                      ) -> dict[str, Future]:
        """Create topics. Returns ``{topic: future}`` (result None).

        Raises:
            TypeError, ValueError: not a non-empty list of ``NewTopic``.
        """
        _check_list(new_topics, "NewTopic objects", NewTopic)
        out = {}
        for t in new_topics:
            def create(t: NewTopic = t) -> None:
                self._validate_new_topic(t)
                if not validate_only:
                    self._broker.create_topic(t.topic, self._partitions_of(t), t.config)
            out[t.topic] = _run(create)
        return out

    def delete_topics(self, topics: list[str], operation_timeout: float = 0,
                      request_timeout: float | None = None) -> dict[str, Future]:
        """Delete topics. Returns ``{topic: future}`` (result None)."""
        _check_list(topics, "topic strings", str)
        return {t: _run(lambda t=t: self._broker.delete_topic(t)) for t in topics}

    def create_partitions(self, new_partitions: list[NewPartitions],
                          operation_timeout: float = 0, request_timeout: float | None = None,
                          validate_only: bool = False) -> dict[str, Future]:
        """Grow topics to ``new_total_count`` partitions. Returns ``{topic: future}``."""
        _check_list(new_partitions, "NewPartitions objects", NewPartitions)
        out = {}
        for np_ in new_partitions:
            def grow(np_: NewPartitions = np_) -> None:
                info = self._broker.topics().get(np_.topic)
                if info is None:
                    raise _errors.UnknownTopicOrPartitionError(
                        f"topic {np_.topic!r} does not exist")
                if np_.new_total_count <= info.partitions:
                    raise _errors.InvalidPartitionsError(
                        f"Topic currently has {info.partitions} partitions, which is higher "
                        f"than or equal to the requested {np_.new_total_count}.")
                if not validate_only:
                    self._broker.create_partitions(np_.topic, np_.new_total_count)
            out[np_.topic] = _run(grow)
        return out

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        """Cluster metadata (every topic, or just ``topic``)."""
        try:
            return cluster_metadata(self._broker, topic)
        except _errors.MqlogError as exc:
            raise KafkaException(to_kafka_error(exc)) from exc

    def describe_topics(self, topics: TopicCollection, include_authorized_operations: bool = False,
                        request_timeout: float | None = None) -> dict[str, Future]:
        """``{topic: future(TopicDescription)}``."""
        if not isinstance(topics, TopicCollection):
            raise TypeError("Expected a TopicCollection")
        n = Node(NODE_ID, NODE_HOST, NODE_PORT)
        out = {}
        for name in topics.topic_names:
            def describe(name: str = name) -> TopicDescription:
                info = self._topic_info(name)
                return TopicDescription(name, None, False, [
                    TopicPartitionInfo(p, n, [n], [n]) for p in range(info.partitions)])
            out[name] = _run(describe)
        return out

    def describe_cluster(self, include_authorized_operations: bool = False,
                         request_timeout: float | None = None) -> Future:
        """One node, which is also the controller."""
        n = Node(NODE_ID, NODE_HOST, NODE_PORT)
        return _resolved(DescribeClusterResult(n, [n], cluster_id(self._broker)))

    def cluster_id(self, timeout: float = -1) -> str:
        return cluster_id(self._broker)

    # -- configs ------------------------------------------------------------------------

    def describe_configs(self, resources: list[ConfigResource], request_timeout: float | None = None
                         ) -> dict[ConfigResource, Future]:
        """``{resource: future({name: ConfigEntry})}`` for topic resources (values as
        strings; overrides have source ``DYNAMIC_TOPIC_CONFIG``). Broker and group
        resources describe no keys."""
        _check_list(resources, "ConfigResource objects", ConfigResource)
        out = {}
        for res in resources:
            def describe(res: ConfigResource = res) -> dict[str, ConfigEntry]:
                if res.restype is not ResourceType.TOPIC:
                    return {}
                overrides = self._topic_info(res.name).config
                entries = {}
                for k, v in effective_config(overrides).items():
                    dynamic = k in overrides
                    entries[k] = ConfigEntry(
                        k, _config_text(v), ConfigSource.DYNAMIC_TOPIC_CONFIG if dynamic
                        else ConfigSource.DEFAULT_CONFIG, is_default=not dynamic)
                return entries
            out[res] = _run(describe)
        return out

    def alter_configs(self, resources: list[ConfigResource], request_timeout: float | None = None,
                      validate_only: bool = False) -> dict[ConfigResource, Future]:
        """Replace a topic's config overrides with ``set_config`` values (keys not
        given return to their defaults, as Kafka's non-incremental alter)."""
        _check_list(resources, "ConfigResource objects", ConfigResource)
        out = {}
        for res in resources:
            def alter(res: ConfigResource = res) -> None:
                self._topic_resource(res)
                current = self._topic_info(res.name).config
                change: dict[str, Any] = dict.fromkeys(current)
                change.update(res.set_config_dict)
                if validate_only:
                    validate_topic_config(res.set_config_dict)
                else:
                    self._broker.alter_topic_config(res.name, change)
            out[res] = _run(alter)
        return out

    def incremental_alter_configs(self, resources: list[ConfigResource],
                                  request_timeout: float | None = None,
                                  validate_only: bool = False) -> dict[ConfigResource, Future]:
        """Apply ``SET``/``DELETE``/``APPEND``/``SUBTRACT`` entries to topic configs."""
        _check_list(resources, "ConfigResource objects", ConfigResource)
        out = {}
        for res in resources:
            def alter(res: ConfigResource = res) -> None:
                self._topic_resource(res)
                current = effective_config(self._topic_info(res.name).config)
                change: dict[str, Any] = {}
                for entry in res.incremental_configs:
                    op = entry.incremental_operation
                    if op is AlterConfigOpType.DELETE:
                        change[entry.name] = None
                    elif op is AlterConfigOpType.SET:
                        change[entry.name] = entry.value
                    elif op in (AlterConfigOpType.APPEND, AlterConfigOpType.SUBTRACT):
                        items = [x for x in _config_text(current.get(entry.name, "")).split(",")
                                 if x]
                        new = [x for x in str(entry.value).split(",") if x]
                        items = items + [x for x in new if x not in items] \
                            if op is AlterConfigOpType.APPEND else \
                            [x for x in items if x not in new]
                        change[entry.name] = ",".join(items)
                    else:
                        raise _errors.InvalidConfigError(
                            f"config entry {entry.name!r} needs an incremental_operation "
                            "(AlterConfigOpType.SET, DELETE, APPEND or SUBTRACT)")
                if validate_only:
                    validate_topic_config({k: v for k, v in change.items() if v is not None})
                else:
                    self._broker.alter_topic_config(res.name, change)
            out[res] = _run(alter)
        return out

    def _topic_info(self, name: str) -> Any:
        info = self._broker.topics().get(name)
        if info is None:
            raise _errors.UnknownTopicOrPartitionError(f"topic {name!r} does not exist")
        return info

    def _topic_resource(self, res: ConfigResource) -> None:
        if res.restype is not ResourceType.TOPIC:
            raise KafkaException(error("INVALID_REQUEST", f"{res.restype.name} configs cannot "
                                       "be altered here: only topic configs exist in mqlog"))

    # -- consumer groups ----------------------------------------------------------------

    def _group_exists(self, group_id: str) -> bool:
        return any(g.group_id == group_id for g in self._admin.list_consumer_groups())

    def list_consumer_groups(self, request_timeout: float | None = None, states: Any = None,
                             types: Any = None) -> Future:
        """``future(ListConsumerGroupsResult)``, optionally only groups in ``states``."""
        wanted = set(states) if states else None
        groups = []
        for g in self._admin.list_consumer_groups():
            state = _STATES.get(g.state, ConsumerGroupState.UNKNOWN)
            if wanted is None or state in wanted:
                groups.append(ConsumerGroupListing(g.group_id, False, state,
                                                   ConsumerGroupType.CLASSIC))
        return _resolved(ListConsumerGroupsResult(valid=groups, errors=[]))

    def describe_consumer_groups(self, group_ids: list[str],
                                 include_authorized_operations: bool = False,
                                 request_timeout: float | None = None) -> dict[str, Future]:
        """``{group_id: future(ConsumerGroupDescription)}`` (state ``DEAD`` for a group
        that does not exist, as Kafka describes it)."""
        _check_list(group_ids, "group ids", str)
        coordinator = Node(NODE_ID, NODE_HOST, NODE_PORT)
        out = {}
        for gid in group_ids:
            def describe(gid: str = gid) -> ConsumerGroupDescription:
                d = self._admin.describe_consumer_groups([gid])[gid]
                exists = self._group_exists(gid)
                members = [MemberDescription(
                    m.member_id, m.client_id, "/127.0.0.1",
                    MemberAssignment([TopicPartition(t, p) for t, p in m.assignment]),
                    m.group_instance_id) for m in d.members]
                state = _STATES.get(d.state, ConsumerGroupState.UNKNOWN) if exists \
                    else ConsumerGroupState.DEAD
                return ConsumerGroupDescription(gid, False, members, d.protocol, state,
                                                coordinator, None, ConsumerGroupType.CLASSIC)
            out[gid] = _run(describe)
        return out

    def delete_consumer_groups(self, group_ids: list[str], request_timeout: float | None = None
                               ) -> dict[str, Future]:
        """``{group_id: future(None)}``; ``NON_EMPTY_GROUP`` while it has members,
        ``GROUP_ID_NOT_FOUND`` if it does not exist."""
        _check_list(group_ids, "group ids", str)
        out = {}
        for gid in group_ids:
            def delete(gid: str = gid) -> None:
                if not self._group_exists(gid):
                    raise KafkaException(error("GROUP_ID_NOT_FOUND",
                                               f"Group {gid!r} does not exist"))
                try:
                    self._broker.delete_group(gid)
                except _errors.IllegalStateError as exc:
                    raise KafkaException(error("NON_EMPTY_GROUP", str(exc))) from exc
            out[gid] = _run(delete)
        return out

    def list_groups(self, group: str | None = None, timeout: float = -1) -> list[GroupMetadata]:
        """Deprecated confluent-kafka API: ``GroupMetadata`` per group."""
        out = []
        for g in self._admin.list_consumer_groups():
            if group is not None and g.group_id != group:
                continue
            d = self._admin.describe_consumer_groups([g.group_id])[g.group_id]
            gm = GroupMetadata()
            gm.broker, gm.id, gm.state = node(), g.group_id, g.state
            gm.protocol_type, gm.protocol = "consumer", d.protocol
            for m in d.members:
                member = GroupMember()
                member.id, member.client_id, member.client_host = \
                    m.member_id, m.client_id, "/127.0.0.1"
                gm.members.append(member)
            out.append(gm)
        return out

    def list_consumer_group_offsets(self, list_consumer_group_offsets_request: list[
            ConsumerGroupTopicPartitions], require_stable: bool = False,
            request_timeout: float | None = None) -> dict[str, Future]:
        """``{group_id: future(ConsumerGroupTopicPartitions)}``: the committed offsets of
        the listed partitions (``OFFSET_INVALID`` where none), or of every partition the
        group committed for."""
        requests = _check_list(list_consumer_group_offsets_request,
                               "ConsumerGroupTopicPartitions", ConsumerGroupTopicPartitions)
        if len(requests) != 1:
            raise ValueError("Currently we support listing offsets for a single consumer "
                             "group only")
        out = {}
        for req in requests:
            def offsets(req: ConsumerGroupTopicPartitions = req) -> ConsumerGroupTopicPartitions:
                committed = self._broker.group_offsets(req.group_id)
                if req.topic_partitions is None:
                    tps = [TopicPartition(t, p, om.offset, om.metadata or None)
                           for (t, p), om in sorted(committed.items())]
                else:
                    tps = []
                    for tp in req.topic_partitions:
                        om = committed.get((tp.topic, tp.partition))
                        tps.append(TopicPartition(tp.topic, tp.partition,
                                                  OFFSET_INVALID if om is None else om.offset,
                                                  None if om is None else om.metadata or None))
                return ConsumerGroupTopicPartitions(req.group_id, tps)
            out[req.group_id] = _run(offsets)
        return out

    def alter_consumer_group_offsets(self, alter_consumer_group_offsets_request: list[
            ConsumerGroupTopicPartitions], request_timeout: float | None = None
            ) -> dict[str, Future]:
        """Set a group's committed offsets; ``UNKNOWN_MEMBER_ID`` while the group has
        members (Kafka refuses to alter offsets of an active group)."""
        requests = _check_list(alter_consumer_group_offsets_request,
                               "ConsumerGroupTopicPartitions", ConsumerGroupTopicPartitions)
        out = {}
        for req in requests:
            def alter(req: ConsumerGroupTopicPartitions = req) -> ConsumerGroupTopicPartitions:
                tps = req.topic_partitions or []
                try:
                    self._admin.alter_consumer_group_offsets(req.group_id, {
                        _CoreTP(tp.topic, tp.partition): OffsetAndMetadata(
                            tp.offset, tp.metadata or "", -1) for tp in tps})
                except _errors.IllegalStateError as exc:
                    raise KafkaException(error("UNKNOWN_MEMBER_ID", str(exc))) from exc
                return ConsumerGroupTopicPartitions(req.group_id, [
                    TopicPartition(tp.topic, tp.partition, tp.offset) for tp in tps])
            out[req.group_id] = _run(alter)
        return out

    # -- records and offsets ------------------------------------------------------------

    def delete_records(self, topic_partition_offsets: list[TopicPartition],
                       request_timeout: float | None = None, operation_timeout: float = 0
                       ) -> dict[TopicPartition, Future]:
        """Delete records below each partition's ``offset`` (``OFFSET_END``: all).
        Returns ``{partition: future(DeletedRecords)}``."""
        _check_list(topic_partition_offsets, "TopicPartition objects", TopicPartition)
        out = {}
        for tp in topic_partition_offsets:
            def delete(tp: TopicPartition = tp) -> DeletedRecords:
                before = -1 if tp.offset == OFFSET_END else tp.offset
                low = self._broker.delete_records(_CoreTP(tp.topic, tp.partition), before)
                return DeletedRecords(low)
            out[tp] = _run(delete)
        return out

    def list_offsets(self, topic_partition_offsets: dict[TopicPartition, OffsetSpec],
                     isolation_level: IsolationLevel | None = None,
                     request_timeout: float | None = None) -> dict[TopicPartition, Future]:
        """``{partition: future(ListOffsetsResultInfo)}`` for earliest, latest (the last
        stable offset with ``READ_COMMITTED``), a timestamp, or the max timestamp.

        Cost: ``max_timestamp()`` reads the whole partition.
        """
        if not isinstance(topic_partition_offsets, dict):
            raise TypeError("Expected a dict of {TopicPartition: OffsetSpec}")
        committed = isolation_level is IsolationLevel.READ_COMMITTED
        reader = self._broker.consumer(
            isolation_level="read_committed" if committed else "read_uncommitted",
            enable_auto_commit=False)
        try:
            return {tp: _run(lambda tp=tp, spec=spec: _list_offset(reader, tp, spec))
                    for tp, spec in topic_partition_offsets.items()}
        finally:
            reader.close()

    # -- not supported ------------------------------------------------------------------

    def _unsupported(self, what: str, keys: Iterable[Any] | None) -> Any:
        reason = f"{what} is not supported by mqlog (no ACLs, users or leaders)"
        if keys is None:
            return _failed("_NOT_IMPLEMENTED", reason)
        return {k: _failed("_NOT_IMPLEMENTED", reason) for k in keys}

    def create_acls(self, acls: list, **kwargs: Any) -> dict:
        return self._unsupported("create_acls", acls)

    def describe_acls(self, acl_binding_filter: Any, **kwargs: Any) -> Future:
        return self._unsupported("describe_acls", None)

    def delete_acls(self, acl_binding_filters: list, **kwargs: Any) -> dict:
        return self._unsupported("delete_acls", acl_binding_filters)

    def describe_user_scram_credentials(self, users: list | None = None, **kwargs: Any) -> Any:
        return self._unsupported("describe_user_scram_credentials", users)

    def alter_user_scram_credentials(self, alterations: list, **kwargs: Any) -> dict:
        return self._unsupported("alter_user_scram_credentials", alterations)

    def elect_leaders(self, election_type: Any, partitions: list | None = None,
                      **kwargs: Any) -> Future:
        return self._unsupported("elect_leaders", None)

    def poll(self, timeout: float = -1) -> int:
        """Admin results are ready at once: nothing to serve."""
        return 0

    def set_sasl_credentials(self, username: str, password: str) -> None:
        """Accepted and ignored: mqlog has no authentication."""


def _config_text(value: Any) -> str:
    """A config value as Kafka's describe results show it (strings; "true"/"false")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _list_offset(reader: Any, tp: TopicPartition, spec: OffsetSpec) -> ListOffsetsResultInfo:
    core_tp = _CoreTP(tp.topic, tp.partition)
    kind = spec._value
    if kind == OffsetSpec.EARLIEST:
        return ListOffsetsResultInfo(reader.beginning_offsets([core_tp])[core_tp], -1, None)
    if kind == OffsetSpec.LATEST:
        return ListOffsetsResultInfo(reader.end_offsets([core_tp])[core_tp], -1, None)
    if kind == OffsetSpec.MAX_TIMESTAMP:
        reader.assign([core_tp])
        reader.seek_to_beginning(core_tp)
        end = reader.end_offsets([core_tp])[core_tp]
        best = ListOffsetsResultInfo(-1, -1, None)
        while reader.position(core_tp) < end:
            got = reader.poll(max_records=10000)
            if not got:
                break
            for recs in got.values():
                for r in recs:
                    if r.timestamp > best.timestamp:
                        best = ListOffsetsResultInfo(r.offset, r.timestamp, None)
        return best
    found = reader.offsets_for_times({core_tp: kind})[core_tp]
    if found is None:
        return ListOffsetsResultInfo(-1, -1, None)
    return ListOffsetsResultInfo(found.offset, found.timestamp, None)
