"""kafka-python 3.x's configuration keys: which exist, which mqlog uses, which it ignores.

Each client (:class:`KafkaProducer`, :class:`KafkaConsumer`, :class:`KafkaAdminClient`)
accepts exactly the keys kafka-python 3.x documents, with its defaults. Keys about the
network, security, metrics plumbing and broker discovery have no meaning in one process:
they are accepted and ignored, so configuration written for a real cluster runs
unchanged. Any other key is refused, as kafka-python refuses it, with a message that
names it and suggests the key meant.

Thread-safety: pure functions; thread-safe.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

from .errors import KafkaConfigurationError

__all__ = [
    "ADMIN_DEFAULTS",
    "CONSUMER_DEFAULTS",
    "ConfigError",
    "PRODUCER_DEFAULTS",
    "resolve",
]


class ConfigError(KafkaConfigurationError, ValueError):
    """A bad client configuration. kafka-python raises ``KafkaConfigurationError`` from
    the consumer and admin and ``ValueError`` from the producer: this is both, so either
    ``except`` clause written for kafka-python catches it."""


# Keys every client accepts and ignores: connection, security, metrics plumbing.
_COMMON_IGNORED: dict[str, Any] = {
    "client_dns_lookup": "use_all_dns_ips",
    "request_timeout_ms": 30000,
    "connections_max_idle_ms": 9 * 60 * 1000,
    "reconnect_backoff_ms": 50,
    "reconnect_backoff_max_ms": 30000,
    "max_in_flight_requests_per_connection": 5,
    "receive_message_max_bytes": 100_000_000,
    "receive_buffer_bytes": None,
    "send_buffer_bytes": None,
    "socket_options": None,
    "retry_backoff_ms": 100,
    "metadata_max_age_ms": 300000,
    "security_protocol": "PLAINTEXT",
    "ssl_context": None,
    "ssl_check_hostname": True,
    "ssl_cafile": None,
    "ssl_certfile": None,
    "ssl_keyfile": None,
    "ssl_crlfile": None,
    "ssl_password": None,
    "ssl_ciphers": None,
    "api_version": None,
    "bootstrap_timeout_ms": 30000,
    "selector": None,
    "sasl_mechanism": None,
    "sasl_plain_username": None,
    "sasl_plain_password": None,
    "sasl_kerberos_name": None,
    "sasl_kerberos_service_name": "kafka",
    "sasl_kerberos_domain_name": None,
    "sasl_oauth_token_provider": None,
    "proxy_url": None,
    "socks5_proxy": None,
    "kafka_client": None,
    "metric_reporters": (),
    "metrics_num_samples": 2,
    "metrics_sample_window_ms": 30000,
}

PRODUCER_DEFAULTS: dict[str, Any] = {
    "bootstrap_servers": "localhost",
    "client_id": None,
    "key_serializer": None,
    "value_serializer": None,
    "enable_idempotence": True,
    "transactional_id": None,
    "transaction_timeout_ms": 60000,
    "delivery_timeout_ms": 120000,
    "acks": -1,
    "compression_type": None,
    "retries": math.inf,
    "batch_size": 16384,
    "linger_ms": 0,
    "partitioner": None,
    "max_block_ms": 60000,
    "max_request_size": 1048576,
    "allow_auto_create_topics": True,
    "metrics_enabled": True,
    **_COMMON_IGNORED,
}

CONSUMER_DEFAULTS: dict[str, Any] = {
    "bootstrap_servers": "localhost",
    "client_id": None,
    "client_rack": "",
    "group_id": None,
    "group_instance_id": None,
    "key_deserializer": None,
    "value_deserializer": None,
    "enable_incremental_fetch_sessions": True,
    "fetch_max_wait_ms": 500,
    "fetch_min_bytes": 1,
    "fetch_max_bytes": 52428800,
    "max_partition_fetch_bytes": 1 * 1024 * 1024,
    "auto_offset_reset": "latest",
    "enable_auto_commit": True,
    "auto_commit_interval_ms": 5000,
    "default_offset_commit_callback": None,
    "check_crcs": True,
    "isolation_level": "read_uncommitted",
    "allow_auto_create_topics": True,
    "partition_assignment_strategy": None,
    "max_poll_records": 500,
    "max_poll_interval_ms": 300000,
    "session_timeout_ms": 45000,
    "heartbeat_interval_ms": 3000,
    "consumer_timeout_ms": math.inf,
    "metrics_enabled": True,
    "metric_group_prefix": "consumer",
    "exclude_internal_topics": True,
    **_COMMON_IGNORED,
}

ADMIN_DEFAULTS: dict[str, Any] = {
    "bootstrap_servers": "localhost",
    "client_id": None,
    **_COMMON_IGNORED,
}

# Keys kafka-python 2.x had and 3.x refuses: say so, and what replaced them.
_REMOVED = {
    "api_version_auto_timeout_ms": "kafka-python 3 renamed it bootstrap_timeout_ms",
    "buffer_memory": "kafka-python 3 removed it (deprecated in 2.x)",
    "sock_chunk_bytes": "kafka-python 3 removed it",
    "sock_chunk_buffer_count": "kafka-python 3 removed it",
    "bootstrap_topics_filter": "kafka-python 3 removed it",
}


def _hint(key: Any, known: dict[str, Any], client: str) -> str:
    key = str(key)
    if key in _REMOVED:
        return f"{key!r}: {_REMOVED[key]}"
    underscored = key.replace(".", "_").replace("-", "_")
    if underscored in known:
        return (f"{key!r}: kafka-python spells it {underscored!r} (dotted keys are "
                "confluent-kafka's; see mqlog.confluent)")
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    if close:
        return f"{key!r}: did you mean {close[0]!r}?"
    return f"{key!r}: not a {client} setting"


def resolve(client: str, defaults: dict[str, Any], configs: dict[str, Any]) -> dict[str, Any]:
    """kafka-python's defaults overlaid with ``configs``.

    Raises:
        ConfigError: a key kafka-python 3.x does not know, named with a hint.
    """
    unknown = [k for k in configs if k not in defaults]
    if unknown:
        hints = "; ".join(_hint(k, defaults, client) for k in sorted(map(str, unknown)))
        raise ConfigError(
            f"Unrecognized configs: {sorted(map(str, unknown))} ({hints}). {client} takes "
            "kafka-python 3.x's keyword arguments; see docs/dropin-kafka-python.md")
    merged = dict(defaults)
    merged.update(configs)
    return merged


def timeout_ms(value: Any, name: str) -> float | None:
    """A kafka-python millisecond setting where inf (or None, or a negative number, as
    kafka-python reads it) means "never"."""
    if value is None or value == math.inf:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be a number of milliseconds")
    return None if value < 0 else float(value)
