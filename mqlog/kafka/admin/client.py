"""``KafkaAdminClient``: kafka-python's admin client on an mqlog broker.

Topics, partitions, topic configs, records and consumer groups, through one
:class:`mqlog.Admin`. Both generations of kafka-python's group methods exist: 2.x's
(``list_consumer_groups``, ``describe_consumer_groups``, ``list_consumer_group_offsets``,
``delete_consumer_groups``) with 2.x's return shapes, and 3.x's (``list_groups``,
``describe_groups``, ``list_group_offsets``, ``delete_groups``, ``alter_group_offsets``).
Topic methods return kafka-python 3.x's dicts (the broker responses as dicts, with the
fields that mean something in one process).

Errors: like kafka-python, a failed topic operation raises the broker's error class
(``TopicAlreadyExistsError``, ``UnknownTopicOrPartitionError``, ``InvalidPartitionsError``,
``InvalidConfigurationError``...) unless ``raise_errors=False``, which reports each
topic's ``error_code`` in the result instead.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from ... import errors as core
from ..._bootstrap import resolve as resolve_broker
from ...config import TOPIC_DEFAULTS, effective_config, validate_topic_config
from ...records import OffsetAndMetadata, TopicPartition
from .. import _config
from .. import errors as kafka
from .._translate import translate
from ._types import (
    AlterConfigOp,
    ConfigFilterType,
    ConfigResource,
    ConfigResourceType,
    GroupInformation,
    MemberAssignment,
    MemberInformation,
    NewPartitions,
    NewTopic,
)

__all__ = ["KafkaAdminClient"]

# Broker-side meanings of core errors (the clients' defaults are client-side ones).
_ADMIN = {core.InvalidConfigError: kafka.InvalidConfigurationError,
          core.IllegalStateError: kafka.NonEmptyGroupError}
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")  # Kafka's rule


def _error(exc: BaseException) -> BaseException:
    return translate(exc, _ADMIN)


def _code(exc: BaseException | None) -> tuple[int, str | None]:
    if exc is None:
        return 0, None
    return getattr(exc, "errno", None) or -1, str(exc)


def _config_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class KafkaAdminClient:
    """Administers topics and consumer groups (kafka-python's ``KafkaAdminClient``).

    ``KafkaAdminClient`` is thread-safe.

    Args:
        **configs: kafka-python 3.x's admin keyword arguments; ``bootstrap_servers``
            selects the broker as for ``KafkaProducer``. Network, security and metrics
            keys are accepted and ignored.

    Raises:
        KafkaConfigurationError: an unknown key.
        NoBrokersAvailable: the ``mqlog://`` store is owned by another process.
    """

    DEFAULT_CONFIG = _config.ADMIN_DEFAULTS

    def __init__(self, **configs: Any) -> None:
        self.config = _config.resolve("KafkaAdminClient", _config.ADMIN_DEFAULTS, configs)
        try:
            self._broker = resolve_broker(self.config["bootstrap_servers"])
            self._admin = self._broker.admin()
        except core.MqlogError as exc:
            raise translate(exc) from exc
        self._closed = False

    def __repr__(self) -> str:
        return f"<KafkaAdminClient of {self._broker!r}>"

    def __enter__(self) -> KafkaAdminClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Release the client. Idempotent."""
        if not self._closed:
            self._closed = True
            self._admin.close()

    def _check(self) -> None:
        if self._closed:
            raise kafka.IllegalStateError("KafkaAdminClient is closed")

    def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except core.MqlogError as exc:
            raise _error(exc) from exc

    @staticmethod
    def _finish(results: list[dict], errors: list[BaseException], raise_errors: bool) -> None:
        if errors and raise_errors:
            raise errors[0]

    # -- cluster and topics ---------------------------------------------------------

    def describe_cluster(self) -> dict[str, Any]:
        """The cluster: one broker (id 0), which is also the controller."""
        self._check()
        return {"cluster_id": f"mqlog:{self._broker.path}", "controller_id": 0,
                "brokers": [{"broker_id": 0, "host": "localhost", "port": 0, "rack": None}]}

    def list_topics(self) -> list[str]:
        """Every topic name."""
        self._check()
        return self._run(self._admin.list_topics)

    def describe_topics(self, topics: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Topic metadata as kafka-python's dicts; an unknown topic gets ``error_code`` 3
        and no partitions (as Kafka's metadata response), not an exception."""
        self._check()
        known = self._run(self._broker.topics)
        names = sorted(known) if topics is None else list(topics)
        out = []
        for name in names:
            info = known.get(name)
            n = 0 if info is None else info.partitions
            out.append({
                "error_code": 0 if info is not None else
                kafka.UnknownTopicOrPartitionError.errno,
                "name": name, "topic_id": None, "is_internal": False,
                "partitions": [{"error_code": 0, "partition_index": p, "leader_id": 0,
                                "leader_epoch": 0, "replica_nodes": [0], "isr_nodes": [0],
                                "offline_replicas": []} for p in range(n)],
            })
        return out

    def _new_topic(self, item: Any) -> NewTopic:
        if isinstance(item, NewTopic):
            return item
        if isinstance(item, str):
            return NewTopic(item)
        raise TypeError(f"create_topics() takes NewTopic objects, topic names or a dict "
                        f"{{name: {{num_partitions:, configs:}}}}, got {item!r}")

    def create_topics(self, new_topics: Any, timeout_ms: float | None = None,
                      validate_only: bool = False, raise_errors: bool = True,
                      wait_for_metadata: bool = False) -> dict[str, Any]:
        """Create topics: a list of :class:`NewTopic` (or names), or kafka-python 3's dict
        ``{name: {"num_partitions": n, "replication_factor": r, "configs": {...}}}``.

        ``num_partitions=-1`` takes the broker's default; ``replication_factor`` is
        accepted and ignored (one broker); ``validate_only`` checks without creating.

        Returns:
            ``{"topics": [{"name", "error_code", "error_message", "num_partitions",
            "replication_factor"}]}``.

        Raises:
            TopicAlreadyExistsError, InvalidTopicError, InvalidPartitionsError,
            InvalidReplicationFactorError, InvalidConfigurationError: the first failure
            (every other topic is still created), unless ``raise_errors=False``.
        """
        self._check()
        if isinstance(new_topics, dict):
            items = [NewTopic(name, d.get("num_partitions", -1), d.get("replication_factor", -1),
                              d.get("assignments"), d.get("configs"))
                     for name, d in new_topics.items()]
        else:
            items = [self._new_topic(t) for t in new_topics]
        if not items:
            raise ValueError(f"No valid topics found in new_topics: {new_topics!r}")
        results, errors = [], []
        for t in items:
            partitions = t.num_partitions
            if partitions == -1:
                partitions = len(t.replica_assignments) or self._broker.num_partitions
            error: BaseException | None = None
            try:
                self._validate_new_topic(t, partitions)
                if not validate_only:
                    self._broker.create_topic(t.name, partitions, dict(t.topic_configs))
            except (core.MqlogError, kafka.KafkaError) as exc:
                error = _error(exc)
                errors.append(error)
            code, text = _code(error)
            results.append({"name": t.name, "error_code": code, "error_message": text,
                            "num_partitions": partitions,
                            "replication_factor": 1 if t.replication_factor == -1
                            else t.replication_factor})
        self._finish(results, errors, raise_errors)
        return {"topics": results}

    def _validate_new_topic(self, t: NewTopic, partitions: Any) -> None:
        rf = t.replication_factor
        if not isinstance(rf, int) or isinstance(rf, bool) or not (rf == -1 or rf >= 1):
            raise kafka.InvalidReplicationFactorError(
                f"replication_factor={rf!r} for topic {t.name!r} must be -1 or >= 1 (mqlog "
                "is one broker: any valid value is accepted and has no effect)")
        if not isinstance(t.name, str) or t.name in (".", "..") or \
                not _TOPIC_NAME.fullmatch(t.name):
            raise kafka.InvalidTopicError(
                f"topic name {t.name!r} is invalid: use 1-249 characters of letters, "
                "digits, '.', '_' and '-' (not '.' or '..')")
        if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
            raise kafka.InvalidPartitionsError(
                f"num_partitions={partitions!r} for topic {t.name!r} must be >= 1 (or -1 "
                "for the broker default)")
        validate_topic_config(dict(t.topic_configs))
        if t.name in self._broker.topics():
            raise kafka.TopicAlreadyExistsError(
                f"topic {t.name!r} already exists: choose another name or delete it first")

    def delete_topics(self, topics: Iterable[str], timeout_ms: float | None = None,
                      raise_errors: bool = True) -> dict[str, Any]:
        """Delete topics with their records and committed offsets.

        Returns:
            ``{"topics": [{"name", "error_code", "error_message"}]}``.

        Raises:
            UnknownTopicOrPartitionError: the first unknown topic (the others are still
                deleted), unless ``raise_errors=False``.
        """
        self._check()
        results, errors = [], []
        for name in topics:
            error = None
            try:
                self._broker.delete_topic(name)
            except core.MqlogError as exc:
                error = _error(exc)
                errors.append(error)
            code, text = _code(error)
            results.append({"name": name, "error_code": code, "error_message": text})
        self._finish(results, errors, raise_errors)
        return {"topics": results}

    def create_partitions(self, topic_partitions: dict[str, Any],
                          timeout_ms: float | None = None, validate_only: bool = False,
                          raise_errors: bool = True) -> dict[str, Any]:
        """Grow topics: ``{name: total}`` (kafka-python 3), ``{name: NewPartitions(total)}``
        or ``{name: {"count": total}}``.

        Returns:
            ``{"results": [{"name", "error_code", "error_message"}]}``.

        Raises:
            InvalidPartitionsError: the new total is not larger than the current count.
            UnknownTopicOrPartitionError: no such topic.
        """
        self._check()
        results, errors = [], []
        for name, spec in topic_partitions.items():
            if isinstance(spec, NewPartitions):
                total = spec.total_count
            elif isinstance(spec, dict):
                total = spec.get("count")
            else:
                total = spec
            error = None
            try:
                info = self._broker.topics().get(name)
                if info is None:
                    raise kafka.UnknownTopicOrPartitionError(f"topic {name!r} does not exist")
                if not isinstance(total, int) or isinstance(total, bool) or \
                        total <= info.partitions:
                    raise kafka.InvalidPartitionsError(
                        f"topic {name!r} has {info.partitions} partitions; the new total "
                        f"{total!r} must be larger (partitions can only be added)")
                if not validate_only:
                    self._broker.create_partitions(name, total)
            except (core.MqlogError, kafka.KafkaError) as exc:
                error = _error(exc)
                errors.append(error)
            code, text = _code(error)
            results.append({"name": name, "error_code": code, "error_message": text})
        self._finish(results, errors, raise_errors)
        return {"results": results}

    def describe_configs(self, config_resources: list[ConfigResource],
                         include_synonyms: bool = False, config_filter: Any = "modified"
                         ) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
        """Topic configurations as kafka-python 3.x returns them:
        ``{"topic": {name: {key: {"value", "read_only", "config_source",
        "is_sensitive"}}}}``. Values are Kafka's strings.

        ``config_filter``: "modified" (default: keys set on the topic), "all", "dynamic"
        (every key: all topic keys are dynamic) or "default".

        Raises:
            UnknownTopicOrPartitionError: no such topic.
            InvalidRequestError: a resource that is not a topic.
        """
        self._check()
        flt = ConfigFilterType.build_from(config_filter)
        out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        for res in config_resources:
            if res.resource_type is not ConfigResourceType.TOPIC:
                raise kafka.InvalidRequestError(
                    f"{res!r}: mqlog has topic configurations only (ConfigResourceType.TOPIC)")
            info = self._run(lambda n=res.name: self._admin.describe_topics([n])[n])
            wanted = None if res.configs is None else set(res.configs)
            entries = {}
            for key, value in sorted(effective_config(info.config).items()):
                modified = key in info.config
                if wanted is not None and key not in wanted:
                    continue
                if (flt is ConfigFilterType.MODIFIED and not modified) or \
                        (flt is ConfigFilterType.DEFAULT and modified) or \
                        flt is ConfigFilterType.STATIC:
                    continue
                entry = {"value": _config_text(value), "read_only": False,
                         "config_source": "DYNAMIC_TOPIC_CONFIG" if modified
                         else "DEFAULT_CONFIG", "is_sensitive": False}
                if include_synonyms:
                    entry["synonyms"] = []
                entries[key] = entry
            out.setdefault("topic", {})[res.name] = entries
        return out

    def alter_configs(self, config_resources: list[ConfigResource],
                      validate_only: bool = False, raise_on_unknown: bool = True,
                      incremental: bool | None = None) -> dict[str, dict[str, str]]:
        """Change topic configs: ``ConfigResource(TOPIC, name, {key: value})``, or
        ``{key: (AlterConfigOp.DELETE, None)}`` to return a key to its default. Keys not
        named keep their values (Kafka's incremental alter).

        Returns:
            ``{"topic": {name: "OK" or the error text}}``.

        Raises:
            ValueError: an unknown config key (with ``raise_on_unknown``), or an
                operation other than SET/DELETE.
        """
        self._check()
        out: dict[str, dict[str, str]] = {}
        for res in config_resources:
            kind = res.resource_type.name.lower()
            changes: dict[str, Any] = {}
            for key, op_value in (res.configs or {}).items():
                op, value = op_value if isinstance(op_value, tuple) else \
                    (AlterConfigOp.SET, op_value)
                op = AlterConfigOp.build_from(op)
                if op not in (AlterConfigOp.SET, AlterConfigOp.DELETE):
                    raise ValueError(f"alter_configs operation {op.name} for {key!r} is not "
                                     "supported: use SET or DELETE")
                changes[key] = None if op is AlterConfigOp.DELETE else value
            try:
                if res.resource_type is not ConfigResourceType.TOPIC:
                    raise kafka.InvalidRequestError(
                        f"{res!r}: mqlog has topic configurations only")
                try:
                    unknown = [k for k, v in changes.items() if v is None and
                               k not in TOPIC_DEFAULTS]
                    if unknown:
                        raise core.InvalidConfigError(
                            f"unknown topic config key {unknown[0]!r}: use Kafka's topic "
                            "config names, e.g. retention.ms")
                    validate_topic_config({k: v for k, v in changes.items() if v is not None})
                except core.InvalidConfigError as exc:
                    if raise_on_unknown and str(exc).startswith("unknown topic config key"):
                        raise ValueError(str(exc)) from exc
                    raise
                if not validate_only:
                    self._admin.alter_topic_config(res.name, changes)
                result = "OK"
            except (core.MqlogError, kafka.KafkaError) as exc:
                result = str(_error(exc))
            out.setdefault(kind, {})[res.name] = result
        return out

    def delete_records(self, records_to_delete: dict[TopicPartition, int],
                       timeout_ms: float | None = None,
                       partition_leader_id: int | None = None) -> dict[TopicPartition, dict]:
        """Delete the records below the given offsets (-1: all); offsets are kept.

        Returns:
            ``{TopicPartition: {"partition_index", "low_watermark", "error_code"}}``.

        Raises:
            OffsetOutOfRangeError: an offset beyond the end of the log.
            UnknownTopicOrPartitionError: no such partition.
        """
        self._check()
        lows = self._run(self._admin.delete_records, dict(records_to_delete))
        return {tp: {"partition_index": tp.partition, "low_watermark": low, "error_code": 0}
                for tp, low in lows.items()}

    # -- consumer groups: kafka-python 2.x's methods -------------------------------------

    def list_consumer_groups(self, broker_ids: Any = None) -> list[tuple[str, str]]:
        """Every group with members or committed offsets: ``[(group_id, "consumer")]``."""
        self._check()
        return [(g.group_id, "consumer") for g in self._run(self._admin.list_consumer_groups)]

    def describe_consumer_groups(self, group_ids: Iterable[str],
                                 group_coordinator_id: Any = None,
                                 include_authorized_operations: bool = False
                                 ) -> list[GroupInformation]:
        """State, protocol and members (with their partitions) of each group, as
        kafka-python 2.x's ``GroupInformation`` tuples. A group without members has
        state "Empty" (or "Dead" if it never existed)."""
        self._check()
        out = []
        for gid in group_ids:
            d = self._run(lambda g=gid: self._admin.describe_consumer_groups([g])[g])
            members = []
            for m in d.members:
                by_topic: dict[str, list[int]] = {}
                for tp in m.assignment:
                    by_topic.setdefault(tp.topic, []).append(tp.partition)
                members.append(MemberInformation(
                    m.member_id, m.client_id, "localhost", None,
                    MemberAssignment(0, sorted((t, sorted(ps)) for t, ps in by_topic.items()),
                                     b"")))
            state = d.state if d.members or self._has_offsets(gid) else "Dead"
            out.append(GroupInformation(0, gid, state, "consumer" if d.protocol else "",
                                        d.protocol, members, None))
        return out

    def _has_offsets(self, group_id: str) -> bool:
        return bool(self._run(self._admin.list_consumer_group_offsets, group_id))

    def list_consumer_group_offsets(self, group_id: str, group_coordinator_id: Any = None,
                                    partitions: Iterable[TopicPartition] | None = None
                                    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """The group's committed offsets (only ``partitions``, if given)."""
        self._check()
        offsets = self._run(self._admin.list_consumer_group_offsets, group_id)
        if partitions is not None:
            wanted = set(partitions)
            offsets = {tp: om for tp, om in offsets.items() if tp in wanted}
        return offsets

    def delete_consumer_groups(self, group_ids: Iterable[str],
                               group_coordinator_id: Any = None) -> list[tuple[str, type]]:
        """Delete groups and their committed offsets.

        Returns:
            ``[(group_id, error_class)]``: ``NoError``, ``NonEmptyGroupError`` (it has
            members) or ``GroupIdNotFoundError``.
        """
        self._check()
        known = {g for g, _ in self.list_consumer_groups()}
        out: list[tuple[str, type]] = []
        for gid in group_ids:
            if gid not in known:
                out.append((gid, kafka.GroupIdNotFoundError))
                continue
            try:
                self._admin.delete_consumer_groups([gid])
                out.append((gid, kafka.NoError))
            except core.MqlogError as exc:
                out.append((gid, type(_error(exc))))
        return out

    # -- consumer groups: kafka-python 3.x's methods -------------------------------------

    def list_groups(self, broker_ids: Any = None, states_filter: Any = None,
                    types_filter: Any = None) -> list[dict[str, Any]]:
        """Every group as kafka-python 3's dicts (``group_id``, ``protocol_type``,
        ``group_state``, ``group_type``), optionally filtered by state."""
        self._check()
        wanted = None if not states_filter else {str(s).lower() for s in states_filter}
        return [{"group_id": g.group_id, "protocol_type": "consumer", "group_state": g.state,
                 "group_type": "classic"}
                for g in self._run(self._admin.list_consumer_groups)
                if wanted is None or g.state.lower() in wanted]

    def describe_groups(self, group_ids: Iterable[str], group_coordinator_id: Any = None,
                        include_authorized_operations: bool = False) -> dict[str, dict]:
        """Each group as kafka-python 3's dict: state, protocol and members (with
        ``member_assignment`` as ``{topic: [partitions]}``)."""
        self._check()
        out = {}
        for info in self.describe_consumer_groups(group_ids):
            out[info.group] = {
                "error": None, "group_id": info.group, "group_state": info.state,
                "protocol_type": info.protocol_type, "protocol_data": info.protocol,
                "members": [{"member_id": m.member_id, "group_instance_id": None,
                             "client_id": m.client_id, "client_host": m.client_host,
                             "member_metadata": None,
                             "member_assignment": dict(m.member_assignment.assignment)}
                            for m in info.members],
            }
        return out

    def list_group_offsets(self, group_specs: Any) -> dict[str, dict[TopicPartition,
                                                                    OffsetAndMetadata]]:
        """Committed offsets of several groups: ``{group_id: [tps] or None}``, a list of
        group ids, or one id. Returns ``{group_id: {TopicPartition: OffsetAndMetadata}}``."""
        if isinstance(group_specs, str):
            group_specs = {group_specs: None}
        elif not isinstance(group_specs, dict):
            group_specs = dict.fromkeys(group_specs)
        return {g: self.list_consumer_group_offsets(g, partitions=tps)
                for g, tps in group_specs.items()}

    def delete_groups(self, group_ids: Iterable[str], group_coordinator_id: Any = None
                      ) -> dict[str, str]:
        """Delete groups: ``{group_id: "OK" or the error class name}``."""
        return {g: "OK" if err is kafka.NoError else err.__name__
                for g, err in self.delete_consumer_groups(group_ids)}

    def alter_group_offsets(self, group_id: str,
                            offsets: dict[TopicPartition, OffsetAndMetadata],
                            group_coordinator_id: Any = None) -> dict[TopicPartition, type]:
        """Set a group's committed offsets (refused while it has members).

        Returns:
            ``{TopicPartition: NoError}``.

        Raises:
            NonEmptyGroupError: the group has active members.
        """
        self._check()
        self._run(self._admin.alter_consumer_group_offsets, group_id, dict(offsets))
        return {tp: kafka.NoError for tp in offsets}
