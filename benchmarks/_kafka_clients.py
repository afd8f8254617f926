"""The Kafka client cases of benchmarks/serve.py: confluent-kafka and kafka-python
producing and consuming against any Kafka-compatible server, given its bootstrap
address.

serve.py's docstring says what each case measures and how the clients are
configured. Every case creates its topic (or reads one a produce case filled), fails
with ``RuntimeError`` on a failed delivery, a consume error, a missing record or one
too many, and returns only seconds or rates (serve.py turns them into figures). The
client packages are imported inside the cases: serve.py says when one is missing.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

VALUE_SIZE = 100
PARTITIONS = 3
CASE_TIMEOUT_S = 600.0
PRODUCER_CONFIG = {
    "linger.ms": 20,
    "batch.num.messages": 10_000,
    "compression.type": "none",
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
}
CLIENT = {"log_level": 3}  # librdkafka: errors only (failures raise here anyway)
# kafka-python's equivalents: 20 ms linger, batches up to librdkafka's batch.size.
KP_PRODUCER_CONFIG = {"linger_ms": 20, "batch_size": 1_000_000,
                      "max_request_size": 1_048_576 * 2}
KP_READ = 10_000  # max_poll_records, as confluent-kafka's consume(num_messages=10000)
# tansu makes a new group wait about half the session timeout before it assigns:
# confluent-kafka's row shows the default (45 s: ~23 s); kafka-python's group consumer
# uses Kafka's smallest allowed session timeout, against both servers, to save ~20 s.
KP_SESSION_TIMEOUT_MS = 6000


# -- both clients ---------------------------------------------------------------------------

def _create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, **CLIENT})
    futures = admin.create_topics([NewTopic(topic, PARTITIONS, 1)],
                                  operation_timeout=30, request_timeout=30)
    futures[topic].result(60)


def _read_all(read: Callable[[], int], n: int) -> tuple[float, float]:
    """Call ``read`` (one fetch; it returns how many records came) until ``n`` records
    came; (time of the first record, time of the last).

    Raises:
        RuntimeError: not all ``n`` within ``CASE_TIMEOUT_S``, or more than ``n``.
    """
    count = 0
    first = None
    deadline = time.monotonic() + CASE_TIMEOUT_S
    while count < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"consumed {count} of {n} records in {CASE_TIMEOUT_S:g} s")
        k = read()
        count += k
        if k and first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    if count != n or first is None:
        raise RuntimeError(f"consumed {count} records, expected {n}")
    return first, end


# -- confluent-kafka cases --------------------------------------------------------------

def bench_produce(bootstrap: str, topic: str, n: int, acks: str) -> float:
    """Seconds to produce and flush ``n`` records."""
    from confluent_kafka import Producer

    _create_topic(bootstrap, topic)
    failed: list[Any] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, **PRODUCER_CONFIG,
                         **CLIENT,
                         # Only failures reach the callback: no Python call per record.
                         "delivery.report.only.error": True,
                         "on_delivery": lambda err, _msg: failed.append(err)})
    value = os.urandom(VALUE_SIZE)
    produce, poll = producer.produce, producer.poll
    start = time.perf_counter()
    for i in range(n):
        try:
            produce(topic, value)
        except BufferError:  # the local queue is full: let deliveries drain it
            poll(0.05)
            produce(topic, value)
        if not i % 10_000:
            poll(0)
    left = producer.flush(CASE_TIMEOUT_S)
    elapsed = time.perf_counter() - start
    if left:
        raise RuntimeError(f"{left} records were still undelivered after "
                           f"{CASE_TIMEOUT_S:g} s")
    if failed:
        raise RuntimeError(f"{len(failed)} records failed, the first with {failed[0]}")
    return elapsed


def _consume_all(consumer: Any, n: int) -> tuple[float, float]:
    """confluent-kafka: consume ``n`` records, as :func:`_read_all`."""
    consume = consumer.consume

    def read() -> int:
        msgs = consume(num_messages=10_000, timeout=1.0)
        for msg in msgs:
            if msg.error() is not None:
                raise RuntimeError(f"consume failed: {msg.error()}")
        return len(msgs)
    return _read_all(read, n)


def _check_no_more(consumer: Any, n: int) -> None:
    """After the timed part: nothing beyond the N records arrives."""
    extra = [m for m in consumer.consume(num_messages=10_000, timeout=0.5)
             if m.error() is None]
    if extra:
        raise RuntimeError(f"more than the {n} records produced came back")


def bench_consume_assign(bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    """(records/s, seconds from ``assign()`` to the first record)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-assign",
                         "enable.auto.commit": False, **CLIENT})
    try:
        start = time.perf_counter()
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                         for p in range(PARTITIONS)])
        first, end = _consume_all(consumer, n)
        _check_no_more(consumer, n)
        return n / (end - start), first - start
    finally:
        consumer.close()


def bench_consume_group(bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    """(records/s from the first assignment on, seconds from ``subscribe()`` to the
    first assignment)."""
    from confluent_kafka import Consumer

    assigned: list[float] = []

    def on_assign(consumer: Any, partitions: list) -> None:
        if not assigned:
            assigned.append(time.perf_counter())

    consumer = Consumer({"bootstrap.servers": bootstrap,
                         "group.id": f"bench-group-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", **CLIENT})
    try:
        start = time.perf_counter()
        consumer.subscribe([topic], on_assign=on_assign)
        _first, end = _consume_all(consumer, n)
        _check_no_more(consumer, n)
        return n / (end - assigned[0]), assigned[0] - start
    finally:
        consumer.close()


# -- kafka-python cases ----------------------------------------------------------------------

def kp_produce(bootstrap: str, topic: str, n: int, acks: str) -> float:
    """Seconds for kafka-python to send and flush ``n`` records."""
    from kafka import KafkaProducer

    _create_topic(bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1 if acks == "1" else acks,
                             **KP_PRODUCER_CONFIG)
    try:
        value = os.urandom(VALUE_SIZE)
        send = producer.send
        futures = []
        append = futures.append
        start = time.perf_counter()
        for _ in range(n):
            append(send(topic, value))
        producer.flush(CASE_TIMEOUT_S)
        elapsed = time.perf_counter() - start
    finally:
        producer.close(CASE_TIMEOUT_S)
    failed = [f for f in futures if not f.is_done or f.failed()]
    if failed:
        raise RuntimeError(f"{len(failed)} kafka-python sends failed or never completed, "
                           f"the first with {failed[0].exception!r}")
    return elapsed


def _kp_consume_all(consumer: Any, n: int) -> tuple[float, float]:
    """kafka-python: poll ``n`` records, as :func:`_read_all`, then check that no more
    come."""
    poll = consumer.poll
    first, end = _read_all(
        lambda: sum(map(len, poll(timeout_ms=1000, max_records=KP_READ).values())), n)
    extra = consumer.poll(timeout_ms=500)
    if any(extra.values()):
        raise RuntimeError(f"more than the {n} records produced came back")
    return first, end


def kp_consume_assign(bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    """(records/s, seconds from ``assign()`` to the first record)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             max_poll_records=KP_READ)
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        start = time.perf_counter()
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        first, end = _kp_consume_all(consumer, n)
        return n / (end - start), first - start
    finally:
        consumer.close()


def kp_consume_group(bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    """(records/s from the first assignment on, seconds from ``subscribe()`` to it)."""
    from kafka import ConsumerRebalanceListener, KafkaConsumer

    assigned: list[float] = []

    class FirstAssignment(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked: Any) -> None:
            pass

        def on_partitions_assigned(self, partitions: Any) -> None:
            if not assigned:
                assigned.append(time.perf_counter())

    consumer = KafkaConsumer(bootstrap_servers=bootstrap,
                             group_id=f"bench-kp-{uuid.uuid4().hex[:8]}",
                             auto_offset_reset="earliest", max_poll_records=KP_READ,
                             session_timeout_ms=KP_SESSION_TIMEOUT_MS)
    try:
        start = time.perf_counter()
        consumer.subscribe([topic], listener=FirstAssignment())
        _first, end = _kp_consume_all(consumer, n)
        return n / (end - assigned[0]), assigned[0] - start
    finally:
        consumer.close()
