"""Admin Kafka API handlers: topics, configs, records deletion, cluster description.

CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, AlterConfigs,
IncrementalAlterConfigs, DeleteRecords and DescribeCluster, each a thin mapping onto the
broker's topic administration (``broker.create_topic``, ``alter_topic_config``...),
with per-topic error codes. Registered in :mod:`._apis` like the core handlers (see
its docstring); helpers shared with them come from :mod:`._handlers`.

Thread-safety: handlers run in connection threads, concurrently; the broker's
administration calls are thread-safe (each is one writer job).
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from ..config import TOPIC_DEFAULTS, validate_topic_config
from ..errors import (
    InvalidConfigError,
    InvalidPartitionsError,
    MqlogError,
    TopicExistsError,
    UnknownTopicOrPartitionError,
)
from ._apis import (
    ApiError,
    ApiKey,
    ConnectionContext,
    ErrorCode,
    error_code_for,
    register,
    response_class,
)
from ._handlers import _NO_OPS, _ZERO, _build, _cls, _message, _topic_of_uuid, _topic_uuid
from ._txn import MAX_TRANSACTION_TIMEOUT_S

__all__: list[str] = []


# -- CreateTopics / DeleteTopics / CreatePartitions -----------------------------------------

def _check_new_topic(broker: Any, name: str, count: int, config: dict) -> None:
    from ..broker import _check_topic_name

    _check_topic_name(name)
    if not 1 <= count <= 1_000_000:
        raise InvalidPartitionsError(f"num_partitions={count} must be from 1 to 1000000")
    validate_topic_config(config)
    if name in broker._topics:
        raise TopicExistsError(f"topic {name!r} already exists")


@register(ApiKey.create_topics, 2, 7)
def create_topics(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    broker = ctx.broker
    Response = response_class(ApiKey.create_topics, api_version)
    Result = _cls(Response, "CreatableTopicResult")
    Config = getattr(sys.modules[Response.__module__], "CreatableTopicConfigs", None)
    results = []
    seen: dict[str, int] = {}
    for t in request.topics:
        seen[t.name] = seen.get(t.name, 0) + 1
    for t in request.topics:
        code, message = ErrorCode.none, None
        count = t.num_partitions
        if count == -1:
            count = len(t.assignments) or broker.num_partitions
        config = {c.name: c.value for c in t.configs}
        tlog = None
        try:
            if seen[t.name] > 1:
                raise ApiError(ErrorCode.invalid_request,
                               f"topic {t.name!r} appears more than once in the request")
            if t.replication_factor not in (-1, 1):
                raise ApiError(ErrorCode.invalid_replication_factor,
                               f"replication factor {t.replication_factor} is larger than "
                               "the 1 broker available (mqlog serve is one broker)")
            if request.validate_only:
                _check_new_topic(broker, t.name, count, config)
            else:
                broker.create_topic(t.name, count, config or None)
                tlog = broker._topics.get(t.name)
        except ApiError as exc:
            code, message = exc.code, exc.message
        except (MqlogError, TypeError, ValueError) as exc:
            code, message = error_code_for(exc), _message(exc)
            if isinstance(exc, InvalidConfigError):
                code = ErrorCode.invalid_config
        configs = ()
        if code == ErrorCode.none and Config is not None:
            effective = {**TOPIC_DEFAULTS, **(dict(tlog.config) if tlog else config)}
            configs = tuple(Config(name=k, value=_config_text(v), read_only=False,
                                   config_source=1 if k in config else 5,
                                   is_sensitive=False)
                            for k, v in sorted(effective.items()))
        results.append(_build(
            Result, name=t.name,
            topic_id=_topic_uuid(tlog.topic_id) if tlog is not None else uuid.UUID(int=0),
            error_code=code, error_message=message,
            num_partitions=count if code == ErrorCode.none else -1,
            replication_factor=1 if code == ErrorCode.none else -1, configs=configs))
    return _build(Response, throttle_time=_ZERO, topics=tuple(results))


@register(ApiKey.delete_topics, 1, 6)
def delete_topics(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    broker = ctx.broker
    Response = response_class(ApiKey.delete_topics, api_version)
    Result = _cls(Response, "DeletableTopicResult")
    wanted: list[tuple[str | None, uuid.UUID | None]] = []
    if hasattr(request, "topics"):
        for t in request.topics:
            name = t.name
            if name is None:
                tlog = _topic_of_uuid(ctx, t.topic_id)
                name = tlog.name if tlog is not None else None
            wanted.append((name, t.topic_id))
    else:
        wanted = [(n, None) for n in request.topic_names]
    results = []
    for name, topic_id in wanted:
        code, message = ErrorCode.none, None
        tlog = broker._topics.get(name) if name else None
        if tlog is None:
            code = ErrorCode.unknown_topic_id if name is None else \
                ErrorCode.unknown_topic_or_partition
            message = f"topic {name or topic_id!s} does not exist"
        else:
            try:
                broker.delete_topic(name)
            except UnknownTopicOrPartitionError as exc:
                code, message = ErrorCode.unknown_topic_or_partition, _message(exc)
            except MqlogError as exc:
                code, message = error_code_for(exc), _message(exc)
        results.append(_build(
            Result, name=name,
            topic_id=_topic_uuid(tlog.topic_id) if tlog is not None else
            (topic_id or uuid.UUID(int=0)),
            error_code=code, error_message=message))
    return _build(Response, throttle_time=_ZERO, responses=tuple(results))


@register(ApiKey.create_partitions, 0, 3)
def create_partitions(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    broker = ctx.broker
    Response = response_class(ApiKey.create_partitions, api_version)
    Result = _cls(Response, "CreatePartitionsTopicResult")
    results = []
    for t in request.topics:
        code, message = ErrorCode.none, None
        try:
            tlog = broker._topic(t.name)
            if request.validate_only:
                if t.count <= len(tlog.partitions):
                    raise InvalidPartitionsError(
                        f"topic {t.name!r} has {len(tlog.partitions)} partitions; the new "
                        f"total {t.count} must be larger")
            else:
                broker.create_partitions(t.name, t.count)
        except MqlogError as exc:
            code, message = error_code_for(exc), _message(exc)
        results.append(_build(Result, name=t.name, error_code=code,
                              error_message=message))
    return _build(Response, throttle_time=_ZERO, results=tuple(results))


# -- DescribeConfigs -------------------------------------------------------------------------

_RESOURCE_TOPIC = 2
_RESOURCE_BROKER = 4
_SOURCE_TOPIC = 1  # DYNAMIC_TOPIC_CONFIG
_SOURCE_DEFAULT = 5  # DEFAULT_CONFIG
_CONFIG_TYPES = {bool: 1, str: 2, int: 5, float: 6}  # BOOLEAN, STRING, LONG, DOUBLE


def _ms(seconds: float) -> str:
    return str(round(seconds * 1000))


def _config_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@register(ApiKey.describe_configs, 1, 4)
def describe_configs(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    broker = ctx.broker
    Response = response_class(ApiKey.describe_configs, api_version)
    Result = _cls(Response, "DescribeConfigsResult")
    Entry = _cls(Response, "DescribeConfigsResourceResult")
    Synonym = _cls(Response, "DescribeConfigsSynonym")
    results = []
    for res in request.resources:
        code, message, entries = ErrorCode.none, None, []
        keys = res.configuration_keys
        if res.resource_type == _RESOURCE_TOPIC:
            tlog = broker._topics.get(res.resource_name)
            if tlog is None:
                code = ErrorCode.unknown_topic_or_partition
                message = f"topic {res.resource_name!r} does not exist"
            else:
                overrides = dict(tlog.config)
                for k, default in sorted(TOPIC_DEFAULTS.items()):
                    if keys is not None and k not in keys:
                        continue
                    value = overrides.get(k, default)
                    source = _SOURCE_TOPIC if k in overrides else _SOURCE_DEFAULT
                    synonyms = ()
                    if request.include_synonyms:
                        synonyms = tuple(
                            Synonym(name=k, value=_config_text(v), source=s)
                            for v, s in ((overrides.get(k), _SOURCE_TOPIC),
                                         (default, _SOURCE_DEFAULT))
                            if s == _SOURCE_DEFAULT or k in overrides)
                    entries.append(_build(
                        Entry, name=k, value=_config_text(value), read_only=False,
                        config_source=source, is_sensitive=False, synonyms=synonyms,
                        config_type=_CONFIG_TYPES.get(type(default), 0),
                        documentation=None))
        elif res.resource_type == _RESOURCE_BROKER:
            config = ctx.config
            facts = {"broker.id": str(config.node_id),
                     "num.partitions": str(broker.num_partitions),
                     "auto.create.topics.enable": _config_text(broker.auto_create_topics),
                     "socket.request.max.bytes": str(config.max_request_bytes),
                     "queued.max.request.bytes": str(config.queued_max_request_bytes),
                     "fetch.max.bytes": str(config.fetch_max_bytes),
                     "connections.max.idle.ms": _ms(config.idle_timeout_s),
                     "max.connections": str(config.max_connections),
                     "transactional.id.expiration.ms":
                         _ms(config.transactional_id_expiration_s),
                     "transaction.max.timeout.ms": _ms(MAX_TRANSACTION_TIMEOUT_S),
                     "log.dirs": broker.path}
            for k, v in sorted(facts.items()):
                if keys is None or k in keys:
                    entries.append(_build(
                        Entry, name=k, value=v, read_only=True,
                        config_source=4, is_sensitive=False, synonyms=(),
                        config_type=2, documentation=None))  # 4: STATIC_BROKER_CONFIG
        else:
            code = ErrorCode.invalid_request
            message = (f"resource type {res.resource_type} is not supported: only topics "
                       "(2) and brokers (4)")
        results.append(_build(Result, error_code=code, error_message=message,
                              resource_type=res.resource_type,
                              resource_name=res.resource_name, configs=tuple(entries)))
    return _build(Response, throttle_time=_ZERO, results=tuple(results))


# -- AlterConfigs / IncrementalAlterConfigs ----------------------------------------------------

_SET, _DELETE, _APPEND, _SUBTRACT = 0, 1, 2, 3


def _alter_topic(broker: Any, name: str, changes: dict[str, Any], replace: bool,
                 validate_only: bool) -> None:
    """Apply config changes (value None removes an override) to topic ``name``.

    ``replace``: AlterConfigs semantics, where the request is the complete set of
    overrides and every other override is removed.
    """
    tlog = broker._topic(name)
    if replace:
        changes = {**{k: None for k in tlog.config}, **changes}
    validate_topic_config({k: v for k, v in changes.items() if v is not None})
    if not validate_only:
        broker.alter_topic_config(name, changes)


def _alter_result(Result: type, res: Any, code: ErrorCode, message: str | None) -> Any:
    return _build(Result, error_code=code, error_message=message,
                  resource_type=res.resource_type, resource_name=res.resource_name)


def _alter_configs_common(ctx: ConnectionContext, request: Any, Response: type,
                          Result: type, incremental: bool) -> Any:
    results = []
    for res in request.resources:
        code, message = ErrorCode.none, None
        try:
            if res.resource_type != _RESOURCE_TOPIC:
                raise ApiError(ErrorCode.invalid_request,
                               f"only topic configs can be altered (resource type 2), "
                               f"not type {res.resource_type}")
            changes: dict[str, Any] = {}
            for c in res.configs:
                op = getattr(c, "config_operation", _SET) if incremental else _SET
                if op == _SET:
                    changes[c.name] = c.value
                elif op == _DELETE:
                    changes[c.name] = None
                else:
                    raise ApiError(ErrorCode.invalid_request,
                                   f"config operation {op} (APPEND/SUBTRACT) applies to "
                                   "list configs, which mqlog topics do not have")
            _alter_topic(ctx.broker, res.resource_name, changes, not incremental,
                         request.validate_only)
        except ApiError as exc:
            code, message = exc.code, exc.message
        except (MqlogError, TypeError, ValueError) as exc:
            code, message = error_code_for(exc), _message(exc)
            if isinstance(exc, InvalidConfigError):
                code = ErrorCode.invalid_config
        results.append(_alter_result(Result, res, code, message))
    return _build(Response, throttle_time=_ZERO, responses=tuple(results))


@register(ApiKey.alter_configs, 0, 2)
def alter_configs(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    Response = response_class(ApiKey.alter_configs, api_version)
    return _alter_configs_common(ctx, request, Response,
                                 _cls(Response, "AlterConfigsResourceResponse"), False)


@register(ApiKey.incremental_alter_configs, 0, 1)
def incremental_alter_configs(ctx: ConnectionContext, request: Any,
                              api_version: int) -> Any:
    Response = response_class(ApiKey.incremental_alter_configs, api_version)
    return _alter_configs_common(ctx, request, Response,
                                 _cls(Response, "AlterConfigsResourceResponse"), True)


# -- DeleteRecords -----------------------------------------------------------------------------

@register(ApiKey.delete_records, 0, 2)
def delete_records(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    from ..records import TopicPartition

    broker = ctx.broker
    Response = response_class(ApiKey.delete_records, api_version)
    TopicResult = _cls(Response, "DeleteRecordsTopicResult")
    PartResult = _cls(Response, "DeleteRecordsPartitionResult")
    topics = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            code, low = ErrorCode.none, -1
            try:
                low = broker.delete_records(TopicPartition(t.name, p.partition_index),
                                            p.offset)
            except MqlogError as exc:
                code = error_code_for(exc)
            parts.append(_build(PartResult, partition_index=p.partition_index,
                                low_watermark=low, error_code=code))
        topics.append(_build(TopicResult, name=t.name, partitions=tuple(parts)))
    return _build(Response, throttle_time=_ZERO, topics=tuple(topics))


# -- DescribeCluster ---------------------------------------------------------------------------

@register(ApiKey.describe_cluster, 0, 1)
def describe_cluster(ctx: ConnectionContext, request: Any, api_version: int) -> Any:
    Response = response_class(ApiKey.describe_cluster, api_version)
    Broker = _cls(Response, "DescribeClusterBroker")
    host, port = ctx.server.advertised_address()
    node = ctx.config.node_id
    if getattr(request, "endpoint_type", 1) != 1:  # 1: brokers; 2: controllers
        return _build(Response, throttle_time=_ZERO,
                      error_code=ErrorCode.unsupported_endpoint_type,
                      error_message="only the broker endpoint type (1) is served",
                      endpoint_type=request.endpoint_type, cluster_id=ctx.config.cluster_id,
                      controller_id=-1, brokers=(), cluster_authorized_operations=_NO_OPS)
    return _build(Response, throttle_time=_ZERO, error_code=ErrorCode.none,
                  error_message=None, endpoint_type=1, cluster_id=ctx.config.cluster_id,
                  controller_id=node,
                  brokers=(Broker(broker_id=node, host=host, port=port, rack=None),),
                  cluster_authorized_operations=_NO_OPS)
