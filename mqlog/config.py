"""Topic configuration: Kafka's keys, defaults and validation.

Keys and defaults are Kafka's (``retention.ms`` = 7 days, ``cleanup.policy`` =
``delete``...). Values may be given as Python values or as Kafka's strings
(``"86400000"``); they are normalised once, at the public edge. Keys that only make
sense in a cluster of brokers (replication, segment files) are accepted, stored and
reported, so configs written for Kafka work unchanged, but have no effect here.

Thread-safety: pure functions; thread-safe.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from .errors import InvalidConfigError

__all__ = ["TOPIC_DEFAULTS", "effective_config", "validate_topic_config"]

_LONG_MAX = 2**63 - 1


def _integer(lo: int) -> Callable[[str, Any], int]:
    def convert(key: str, value: Any) -> int:
        if isinstance(value, bool):
            raise InvalidConfigError(f"topic config {key}={value!r} must be an integer")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise InvalidConfigError(
                f"topic config {key}={value!r} is not an integer: give a whole number "
                f"(e.g. {key}=86400000)") from None
        if number < lo:
            raise InvalidConfigError(f"topic config {key}={number} must be >= {lo}")
        return number
    return convert


def _choice(*options: str) -> Callable[[str, Any], str]:
    def convert(key: str, value: Any) -> str:
        text = str(value).strip()
        if text not in options:
            raise InvalidConfigError(
                f"topic config {key}={value!r} is not valid: use one of {', '.join(options)}")
        return text
    return convert


def _cleanup_policy(key: str, value: Any) -> str:
    parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
    policies = sorted({str(p).strip() for p in parts if str(p).strip()})
    if not policies or any(p not in ("compact", "delete") for p in policies):
        raise InvalidConfigError(
            f"topic config {key}={value!r} is not valid: use 'delete', 'compact' or "
            "'compact,delete'")
    return ",".join(policies)


def _ratio(key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise InvalidConfigError(f"topic config {key}={value!r} must be a number in 0..1")
    return number


def _boolean(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise InvalidConfigError(f"topic config {key}={value!r} must be true or false")


def _text(key: str, value: Any) -> str:
    return str(value)


# key -> (converter, Kafka's default). The first block has meaning in mqlog.
_TOPIC_KEYS: dict[str, tuple[Callable[[str, Any], Any], Any]] = {
    "cleanup.policy": (_cleanup_policy, "delete"),
    "retention.ms": (_integer(-1), 604_800_000),
    "retention.bytes": (_integer(-1), -1),
    "delete.retention.ms": (_integer(0), 86_400_000),
    "min.compaction.lag.ms": (_integer(0), 0),
    "max.compaction.lag.ms": (_integer(1), _LONG_MAX),
    "max.message.bytes": (_integer(0), 1_048_588),
    "message.timestamp.type": (_choice("CreateTime", "LogAppendTime"), "CreateTime"),
    "compression.type": (
        _choice("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"), "producer"),
    # Accepted for compatibility; no effect in one process.
    "segment.bytes": (_integer(14), 1_073_741_824),
    "segment.ms": (_integer(1), 604_800_000),
    "segment.index.bytes": (_integer(4), 10_485_760),
    "segment.jitter.ms": (_integer(0), 0),
    "min.insync.replicas": (_integer(1), 1),
    "min.cleanable.dirty.ratio": (_ratio, 0.5),
    "unclean.leader.election.enable": (_boolean, False),
    "flush.messages": (_integer(1), _LONG_MAX),
    "flush.ms": (_integer(0), _LONG_MAX),
    "file.delete.delay.ms": (_integer(0), 60_000),
    "index.interval.bytes": (_integer(0), 4096),
    "preallocate": (_boolean, False),
    "message.downconversion.enable": (_boolean, True),
    "message.timestamp.difference.max.ms": (_integer(0), _LONG_MAX),
    "message.timestamp.before.max.ms": (_integer(0), _LONG_MAX),
    "message.timestamp.after.max.ms": (_integer(0), _LONG_MAX),
    "leader.replication.throttled.replicas": (_text, ""),
    "follower.replication.throttled.replicas": (_text, ""),
    "local.retention.ms": (_integer(-2), -2),
    "local.retention.bytes": (_integer(-2), -2),
    "remote.storage.enable": (_boolean, False),
}

TOPIC_DEFAULTS: dict[str, Any] = {k: default for k, (_, default) in _TOPIC_KEYS.items()}


ISOLATION_LEVELS = ("read_uncommitted", "read_committed")


def is_read_committed(isolation_level: Any) -> bool:
    """Whether a consumer-side ``isolation_level`` reads only committed transactions.

    Raises:
        InvalidConfigError: not one of :data:`ISOLATION_LEVELS`.
    """
    if isolation_level not in ISOLATION_LEVELS:
        raise InvalidConfigError(
            f"isolation_level={isolation_level!r} is not valid: use 'read_uncommitted' "
            "or 'read_committed'")
    return isolation_level == "read_committed"


def validate_topic_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check and normalise topic config overrides.

    Returns:
        A new dict of the keys given, values converted to their types.

    Raises:
        InvalidConfigError: an unknown key (named, with a hint) or a bad value.
        TypeError: ``config`` is not a mapping.
    """
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict of Kafka topic config keys, got "
                        f"{type(config).__name__}")
    out = {}
    for key, value in config.items():
        spec = _TOPIC_KEYS.get(key)
        if spec is None:
            close = [k for k in _TOPIC_KEYS if k.replace(".", "") == str(key).replace(
                ".", "").replace("_", "").replace("-", "")]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidConfigError(
                f"unknown topic config key {key!r}{hint}: use Kafka's topic config names, "
                "e.g. retention.ms, cleanup.policy, max.message.bytes")
        out[key] = spec[0](key, value)
    return out


def effective_config(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Every topic config key with its value: the overrides over Kafka's defaults."""
    merged = dict(TOPIC_DEFAULTS)
    merged.update(overrides)
    return merged
