"""librdkafka's configuration properties, validated as librdkafka validates them.

The drop-in clients take confluent-kafka's config dict (dotted librdkafka keys). Every
property librdkafka 2.x knows is accepted, so a production config runs unchanged; the
ones with a meaning in one process are used (see docs/dropin-confluent-kafka.md), the
network, security and tuning ones are checked for type and otherwise ignored. As in
librdkafka, an unknown property or a bad value raises ``KafkaException`` with
``_INVALID_ARG`` at construction, and a property of the other client kind (a consumer
property given to a producer) is accepted with a warning.

Thread-safety: pure functions over the caller's dict.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .error import exception

__all__ = ["parse"]

log = logging.getLogger("mqlog.confluent")

_INT32_MAX = 2147483647

# Kinds: "b" bool, "i" int (lo, hi), "f" float (lo, hi), "e" enum (values), "s" str,
# "c" CSV flags (values). Roles: "*" any client, "P" producer, "C" consumer.
_B, _S = ("b",), ("s",)


def _i(lo: int = -_INT32_MAX - 1, hi: int = _INT32_MAX) -> tuple:
    return ("i", lo, hi)


def _e(*values: str) -> tuple:
    return ("e", values)


_PROPS: dict[str, tuple[tuple, str]] = {
    # -- used by mqlog -------------------------------------------------------------
    "metadata.broker.list": (_S, "*"),
    "client.id": (_S, "*"),
    "message.max.bytes": (_i(1000, 1000000000), "*"),
    "allow.auto.create.topics": (_B, "*"),
    "request.required.acks": (_i(-1, 1000), "P"),
    "queue.buffering.max.ms": (("f", 0, 900000), "P"),
    "queue.buffering.max.messages": (_i(0, _INT32_MAX), "P"),
    "queue.buffering.max.kbytes": (_i(1, _INT32_MAX), "P"),
    "batch.size": (_i(1, _INT32_MAX), "P"),
    "compression.codec": (_e("none", "gzip", "snappy", "lz4", "zstd", "inherit"), "P"),
    "partitioner": (_e("random", "consistent", "consistent_random", "murmur2",
                       "murmur2_random", "fnv1a", "fnv1a_random"), "P"),
    "sticky.partitioning.linger.ms": (_i(0, 900000), "P"),
    "enable.idempotence": (_B, "P"),
    "transactional.id": (_S, "P"),
    "transaction.timeout.ms": (_i(1000, _INT32_MAX), "P"),
    "group.id": (_S, "C"),
    "group.instance.id": (_S, "C"),
    "session.timeout.ms": (_i(1, 3600000), "C"),
    "heartbeat.interval.ms": (_i(1, 3600000), "C"),
    "max.poll.interval.ms": (_i(1, 86400000), "C"),
    "partition.assignment.strategy": (_S, "C"),
    "enable.auto.commit": (_B, "C"),
    "auto.commit.interval.ms": (_i(0, 86400000), "C"),
    "enable.auto.offset.store": (_B, "C"),
    "auto.offset.reset": (_e("smallest", "earliest", "beginning", "largest", "latest",
                             "end", "error"), "C"),
    "enable.partition.eof": (_B, "C"),
    "isolation.level": (_e("read_uncommitted", "read_committed"), "C"),
    # -- accepted, no meaning in one process ---------------------------------------
    "builtin.features": (("c", ("gzip", "snappy", "ssl", "sasl", "regex", "lz4",
                                "sasl_gssapi", "sasl_plain", "sasl_scram", "plugins",
                                "zstd", "sasl_oauthbearer", "http", "oidc")), "*"),
    "debug": (("c", ("generic", "broker", "topic", "metadata", "feature", "queue", "msg",
                     "protocol", "cgrp", "security", "fetch", "interceptor", "plugin",
                     "consumer", "admin", "eos", "mock", "assignor", "conf",
                     "telemetry", "all")), "*"),
    "log_level": (_i(0, 7), "*"),
    "log.queue": (_B, "*"), "log.thread.name": (_B, "*"), "log.connection.close": (_B, "*"),
    "enable.random.seed": (_B, "*"), "enabled_events": (_i(0, _INT32_MAX), "*"),
    "message.copy.max.bytes": (_i(0, 1000000000), "*"),
    "receive.message.max.bytes": (_i(1000, _INT32_MAX), "*"),
    "max.in.flight.requests.per.connection": (_i(1, 1000000), "*"),
    "metadata.recovery.strategy": (_e("none", "rebootstrap"), "*"),
    "metadata.recovery.rebootstrap.trigger.ms": (_i(0, _INT32_MAX), "*"),
    "topic.metadata.refresh.interval.ms": (_i(-1, 3600000), "*"),
    "metadata.max.age.ms": (_i(1, 86400000), "*"),
    "metadata.request.timeout.ms": (_i(), "*"),
    "topic.metadata.refresh.fast.interval.ms": (_i(1, 60000), "*"),
    "topic.metadata.refresh.fast.cnt": (_i(0, 1000), "*"),
    "topic.metadata.refresh.sparse": (_B, "*"),
    "topic.metadata.propagation.max.ms": (_i(0, 3600000), "*"),
    "topic.blacklist": (_S, "*"),
    "socket.timeout.ms": (_i(10, 300000), "*"),
    "socket.blocking.max.ms": (_i(1, 60000), "*"),
    "socket.send.buffer.bytes": (_i(0, 100000000), "*"),
    "socket.receive.buffer.bytes": (_i(0, 100000000), "*"),
    "socket.keepalive.enable": (_B, "*"), "socket.nagle.disable": (_B, "*"),
    "socket.max.fails": (_i(0, 1000000), "*"),
    "socket.connection.setup.timeout.ms": (_i(1000, _INT32_MAX), "*"),
    "broker.address.ttl": (_i(0, 86400000), "*"),
    "broker.address.family": (_e("any", "v4", "v6"), "*"),
    "client.dns.lookup": (_e("use_all_dns_ips", "resolve_canonical_bootstrap_servers_only"),
                          "*"),
    "connections.max.idle.ms": (_i(0, _INT32_MAX), "*"),
    "reconnect.backoff.jitter.ms": (_i(0, 3600000), "*"),
    "reconnect.backoff.ms": (_i(0, 3600000), "*"),
    "reconnect.backoff.max.ms": (_i(0, 3600000), "*"),
    "statistics.interval.ms": (_i(0, 86400000), "*"),
    "internal.termination.signal": (_i(0, 128), "*"),
    "api.version.request": (_B, "*"), "api.version.request.timeout.ms": (_i(1, 300000), "*"),
    "api.version.fallback.ms": (_i(0, 604800000), "*"),
    "broker.version.fallback": (_S, "*"),
    "security.protocol": (_e("plaintext", "ssl", "sasl_plaintext", "sasl_ssl"), "*"),
    "ssl.endpoint.identification.algorithm": (_e("none", "https"), "*"),
    "enable.ssl.certificate.verification": (_B, "*"),
    "enable.sasl.oauthbearer.unsecure.jwt": (_B, "*"),
    "sasl.kerberos.min.time.before.relogin": (_i(0, 86400000), "*"),
    "sasl.oauthbearer.method": (_e("default", "oidc"), "*"),
    "sasl.oauthbearer.grant.type": (_e("client_credentials",
                                       "urn:ietf:params:oauth:grant-type:jwt-bearer"), "*"),
    "sasl.oauthbearer.metadata.authentication.type": (_e("none", "azure_imds"), "*"),
    "sasl.oauthbearer.assertion.algorithm": (_e("RS256", "ES256"), "*"),
    "sasl.oauthbearer.assertion.claim.exp.seconds": (_i(), "*"),
    "sasl.oauthbearer.assertion.claim.nbf.seconds": (_i(), "*"),
    "sasl.oauthbearer.assertion.claim.jti.include": (_B, "*"),
    "enable.sparse.connections": (_B, "*"), "enable.metrics.push": (_B, "*"),
    "retry.backoff.ms": (_i(1, 300000), "*"), "retry.backoff.max.ms": (_i(1, 300000), "*"),
    "client.rack": (_S, "*"), "client.software.name": (_S, "*"),
    "client.software.version": (_S, "*"), "plugin.library.paths": (_S, "*"),
    "test.mock.num.brokers": (_i(0, 10000), "*"), "test.mock.broker.rtt": (_i(0, 3600000), "*"),
    "queue.buffering.backpressure.threshold": (_i(1, 1000000), "P"),
    "batch.num.messages": (_i(1, 1000000), "P"),
    "compression.level": (_i(-1, 12), "P"),
    "message.send.max.retries": (_i(0, _INT32_MAX), "P"),
    "message.timeout.ms": (_i(0, _INT32_MAX), "P"),
    "request.timeout.ms": (_i(1, 900000), "P"),
    "enable.gapless.guarantee": (_B, "P"), "produce.offset.report": (_B, "P"),
    "queuing.strategy": (_e("fifo", "lifo"), "P"),
    "coordinator.query.interval.ms": (_i(1, 3600000), "C"),
    "fetch.wait.max.ms": (_i(0, 300000), "C"),
    "fetch.message.max.bytes": (_i(1, 1000000000), "C"),
    "fetch.max.bytes": (_i(0, _INT32_MAX - 512), "C"),
    "fetch.min.bytes": (_i(1, 100000000), "C"),
    "fetch.error.backoff.ms": (_i(0, 300000), "C"),
    "fetch.queue.backoff.ms": (_i(0, 300000), "C"),
    "queued.min.messages": (_i(1, 10000000), "C"),
    "queued.max.messages.kbytes": (_i(1, 2097151), "C"),
    "consume.callback.max.messages": (_i(0, 1000000), "C"),
    "max.poll.records": (_i(1, _INT32_MAX), "C"),
    "check.crcs": (_B, "C"),
    "group.protocol": (_e("classic", "consumer"), "C"),
    "group.protocol.type": (_S, "C"),
    "group.remote.assignor": (_S, "C"),
    "offset.store.method": (_e("none", "file", "broker"), "C"),
    "offset.store.path": (_S, "C"),
    "offset.store.sync.interval.ms": (_i(-1, 86400000), "C"),
    "share.acknowledgement.mode": (_S, "C"),
}
for _name in (
        "sasl.mechanisms", "sasl.kerberos.service.name", "sasl.kerberos.principal",
        "sasl.kerberos.kinit.cmd", "sasl.kerberos.keytab", "sasl.username", "sasl.password",
        "sasl.oauthbearer.config", "sasl.oauthbearer.client.id",
        "sasl.oauthbearer.client.secret", "sasl.oauthbearer.scope",
        "sasl.oauthbearer.extensions", "sasl.oauthbearer.token.endpoint.url",
        "sasl.oauthbearer.sub.claim.name", "sasl.oauthbearer.assertion.claim.aud",
        "sasl.oauthbearer.assertion.claim.iss", "sasl.oauthbearer.assertion.claim.sub",
        "sasl.oauthbearer.assertion.file", "sasl.oauthbearer.assertion.jwt.template.file",
        "sasl.oauthbearer.assertion.private.key.file",
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.assertion.private.key.pem", "ssl.cipher.suites",
        "ssl.curves.list", "ssl.sigalgs.list", "ssl.key.location", "ssl.key.password",
        "ssl.key.pem", "ssl.certificate.location", "ssl.certificate.pem",
        "ssl.ca.location", "ssl.ca.pem", "ssl.crl.location", "ssl.keystore.location",
        "ssl.keystore.password", "ssl.providers", "ssl.engine.location", "ssl.engine.id",
        "https.ca.location", "https.ca.pem"):
    _PROPS[_name] = (_S, "*")
del _name

ALIASES = {
    "bootstrap.servers": "metadata.broker.list",
    "acks": "request.required.acks",
    "linger.ms": "queue.buffering.max.ms",
    "compression.type": "compression.codec",
    "retries": "message.send.max.retries",
    "delivery.timeout.ms": "message.timeout.ms",
    "max.partition.fetch.bytes": "fetch.message.max.bytes",
    "max.in.flight": "max.in.flight.requests.per.connection",
    "sasl.mechanism": "sasl.mechanisms",
    "auto.commit.enable": "enable.auto.commit",
    "sasl.oauthbearer.client.credentials.client.id": "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.credentials.client.secret": "sasl.oauthbearer.client.secret",
}

# Set only through librdkafka's C API: refused as librdkafka refuses them.
_DEDICATED = {
    "background_event_cb", "closesocket_cb", "connect_cb", "consume_cb",
    "default_topic_conf", "dr_cb", "dr_msg_cb", "log_cb", "msg_order_cmp",
    "oauthbearer_token_refresh_cb", "offset_commit_cb", "opaque", "open_cb",
    "partitioner_cb", "rebalance_cb", "resolve_cb", "socket_cb",
    "ssl.certificate.verify_cb", "ssl_engine_callback_data",
}
_INTERNAL = {"interceptors", "ssl_key", "ssl_certificate", "ssl_ca"}
# Java client settings librdkafka refuses with a pointer to its equivalent.
_JAVA_ONLY = {
    "sasl.jaas.config": "Java JAAS configuration is not supported: use sasl.username and "
                        "sasl.password (or the sasl.kerberos.* properties)",
    "ssl.truststore.location": "Java TrustStores are not supported: use ssl.ca.location "
                               "and a certificate file instead",
}

# confluent-kafka's own (Python) keys, per client kind.
_PY_CALLBACKS = {"error_cb": "*", "throttle_cb": "*", "stats_cb": "*", "oauth_cb": "*",
                 "on_delivery": "P", "on_commit": "C"}


def _bad(message: str) -> Exception:
    return exception("_INVALID_ARG", message)


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise _bad(f'Expected bool value for "{name}": true or false (got {value!r})')


def _as_number(name: str, value: Any, kind: str, lo: float, hi: float) -> float:
    if name in ("acks", "request.required.acks") and str(value).strip().lower() == "all":
        return -1
    try:
        if isinstance(value, bool):
            raise ValueError
        number: float = int(value) if kind == "i" and not isinstance(value, float) \
            else float(value)
        if kind == "i" and number != int(number):
            raise ValueError
    except (TypeError, ValueError):
        raise _bad(f'Invalid value for configuration property "{name}" (got {value!r}: '
                   f"expected {'an integer' if kind == 'i' else 'a number'})") from None
    if not lo <= number <= hi:
        raise _bad(f'Invalid value for configuration property "{name}" ({value!r} is '
                   f"outside {lo}..{hi})")
    return int(number) if kind == "i" else number


def _convert(name: str, spec: tuple, value: Any) -> Any:
    kind = spec[0]
    if kind == "b":
        return _as_bool(name, value)
    if kind in ("i", "f"):
        return _as_number(name, value, kind, spec[1], spec[2])
    text = value if isinstance(value, str) else str(value)
    if kind == "e":
        if text not in spec[1]:
            raise _bad(f'Invalid value "{text}" for configuration property "{name}": use '
                       f"one of {', '.join(spec[1])}")
        return text
    if kind == "c":
        flags = [f.strip() for f in text.split(",") if f.strip()]
        for f in flags:
            if f not in spec[1]:
                raise _bad(f'Invalid value "{f}" for configuration property "{name}": use '
                           f"a comma-separated list of {', '.join(spec[1])}")
        return flags
    return text


def parse(config: Any, kwargs: Mapping[str, Any], role: str) -> dict[str, Any]:
    """Validate a confluent-kafka config (dict plus keyword arguments).

    Args:
        config: the config dict (or None when only keywords are given).
        kwargs: keyword arguments; merged over ``config`` as confluent-kafka does.
        role: "P" (producer), "C" (consumer) or "A" (admin client).

    Returns:
        ``{canonical property name: converted value}`` (aliases resolved; Python
        callbacks and ``logger`` kept under their own names).

    Raises:
        TypeError: ``config`` is not a dict; a callback is not callable.
        KafkaException: ``_INVALID_ARG`` for an unknown property or a bad value.
    """
    if config is None and kwargs:
        merged: dict[str, Any] = {}
    elif not isinstance(config, Mapping):
        raise TypeError("expected configuration dict")
    else:
        merged = dict(config)
    merged.update(kwargs)
    topic_conf = merged.pop("default.topic.config", None)
    if topic_conf is not None:  # deprecated: topic-level defaults merged in
        if not isinstance(topic_conf, Mapping):
            raise TypeError("default.topic.config must be a dict")
        for k, v in topic_conf.items():
            merged.setdefault(k, v)
    out: dict[str, Any] = {}
    client = {"P": "producer", "C": "consumer", "A": "admin client"}[role]
    for raw_name, value in merged.items():
        name = ALIASES.get(raw_name, raw_name)
        if name in _PY_CALLBACKS:
            prop_role = _PY_CALLBACKS[name]
            if prop_role not in ("*", role):
                raise _bad(f'No such configuration property: "{raw_name}" (a '
                           f"{'producer' if prop_role == 'P' else 'consumer'} setting)")
            if value is not None and not callable(value):
                raise TypeError(f"expected {raw_name} property as a callable function")
            out[name] = value
            continue
        if name == "logger":
            out[name] = value
            continue
        if name == "delivery.report.only.error":
            if role != "P":
                raise _bad(f'No such configuration property: "{raw_name}"')
            if not isinstance(value, bool):
                raise TypeError(f"Expected delivery.report.only.error to be bool type, "
                                f"not {type(value).__name__}")
            out[name] = value
            continue
        if name in _DEDICATED:
            raise _bad(f'Property "{raw_name}" must be set through dedicated .._set_..() '
                       "function")
        if name in _INTERNAL:
            raise _bad(f'Internal property "{raw_name}" not settable')
        if name in _JAVA_ONLY:
            raise _bad(_JAVA_ONLY[name])
        spec_role = _PROPS.get(name)
        if spec_role is None:
            raise _bad(f'No such configuration property: "{raw_name}" (mqlog.confluent '
                       "accepts librdkafka's property names; see "
                       "docs/dropin-confluent-kafka.md)")
        spec, prop_role = spec_role
        out[name] = _convert(raw_name, spec, value)
        if prop_role != "*" and role != "A" and prop_role != role:
            log.warning("Configuration property %s is a %s property and will be ignored by "
                        "this %s instance", raw_name,
                        "producer" if prop_role == "P" else "consumer", client)
    return out

