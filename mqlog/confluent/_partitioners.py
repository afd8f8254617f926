"""librdkafka's built-in partitioners, selected with the ``partitioner`` config key.

Keyed placement must match the client a user runs in production, so each function
computes exactly what librdkafka computes:

=====================  ==================================================  ===========
``partitioner``        keyed records                                       null key
=====================  ==================================================  ===========
``consistent_random``  ``crc32(key) % n`` (the default); empty key: random  random
``consistent``         ``crc32(key) % n``                                  as ``b""``
``murmur2``            ``(murmur2(key) & 0x7fffffff) % n`` (Java's)        as ``b""``
``murmur2_random``     as ``murmur2``                                      random
``fnv1a``              ``abs(int32(fnv1a(key))) % n``                      as ``b""``
``fnv1a_random``       as ``fnv1a``                                        random
``random``             random                                              random
=====================  ==================================================  ===========

"Random" is sticky, as librdkafka's: one random partition per topic is kept for
``sticky.partitioning.linger.ms`` (default 10 ms; 0: a new one per record).

Thread-safety: the hash functions are pure; a :class:`Partitioner` may be called from
many threads (a race only changes which random partition is picked).
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from typing import Callable

from ..partitioner import murmur2 as _murmur2

__all__ = ["NAMES", "Partitioner", "consistent", "fnv1a", "murmur2"]

NAMES = ("random", "consistent", "consistent_random", "murmur2", "murmur2_random",
         "fnv1a", "fnv1a_random")

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def _check(key: bytes, partition_count: int) -> None:
    if not isinstance(key, bytes):
        raise TypeError(f"key must be bytes, got {type(key).__name__}")
    if not isinstance(partition_count, int) or isinstance(partition_count, bool):
        raise TypeError(f"partition_count must be an int, got {type(partition_count).__name__}")
    if partition_count <= 0:
        raise ValueError(f"partition_count={partition_count} must be > 0")


def _crc(key: bytes, n: int) -> int:
    return zlib.crc32(key) % n


def _murmur(key: bytes, n: int) -> int:
    return (_murmur2(key) & 0x7FFFFFFF) % n


def _fnv1a_hash(key: bytes) -> int:
    h = _FNV_OFFSET
    for byte in key:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def _fnv(key: bytes, n: int) -> int:
    h = _fnv1a_hash(key)
    # librdkafka takes the absolute value of the hash as a signed 32-bit int.
    return abs(h - (1 << 32) if h & 0x80000000 else h) % n


def consistent(key: bytes, partition_count: int) -> int:
    """The partition librdkafka's ``consistent`` partitioner picks (CRC32).

    Raises:
        TypeError: ``key`` is not bytes or ``partition_count`` not an int.
        ValueError: ``partition_count`` <= 0.
    """
    _check(key, partition_count)
    return _crc(key, partition_count)


def murmur2(key: bytes, partition_count: int) -> int:
    """The partition librdkafka's ``murmur2`` (and Java's default) partitioner picks.

    Raises:
        TypeError, ValueError: as :func:`consistent`.
    """
    _check(key, partition_count)
    return _murmur(key, partition_count)


def fnv1a(key: bytes, partition_count: int) -> int:
    """The partition librdkafka's ``fnv1a`` partitioner picks.

    Raises:
        TypeError, ValueError: as :func:`consistent`.
    """
    _check(key, partition_count)
    return _fnv(key, partition_count)


# name -> (hash function, null key is random, empty key is random)
_SPECS: dict[str, tuple[Callable[[bytes, int], int] | None, bool, bool]] = {
    "random": (None, True, True),
    "consistent": (_crc, False, False),
    "consistent_random": (_crc, True, True),
    "murmur2": (_murmur, False, False),
    "murmur2_random": (_murmur, True, False),
    "fnv1a": (_fnv, False, False),
    "fnv1a_random": (_fnv, True, False),
}


class Partitioner:
    """One producer's partitioner, in the form mqlog's producer calls:
    ``partitioner(key, all_partitions, available) -> partition``.

    The topic (for sticky random placement) is set by the producer in a thread-local
    just before each send: :meth:`for_topic`.
    """

    def __init__(self, name: str, sticky_linger_ms: float) -> None:
        self.name = name
        self._hash, self._null_random, self._empty_random = _SPECS[name]
        self._sticky_s = sticky_linger_ms / 1000.0
        self._local = threading.local()
        # topic -> (partition, monotonic time until which it is kept)
        self._sticky: dict[str, tuple[int, float]] = {}

    def for_topic(self, topic: str) -> None:
        """Tell the partitioner which topic the next call (in this thread) is for."""
        self._local.topic = topic

    def _random(self, n: int) -> int:
        if not self._sticky_s:
            return random.randrange(n)
        topic = getattr(self._local, "topic", "")
        now = time.monotonic()
        held = self._sticky.get(topic)
        if held is not None and held[1] > now and held[0] < n:
            return held[0]
        p = random.randrange(n)
        self._sticky[topic] = (p, now + self._sticky_s)
        return p

    def __call__(self, key: bytes | None, all_partitions: list[int],
                 available: list[int]) -> int:
        n = len(all_partitions)
        fn = self._hash
        if fn is None or (key is None and self._null_random) or (
                self._empty_random and key is not None and not key):
            return self._random(n)
        return fn(b"" if key is None else key, n)
