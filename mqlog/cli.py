"""The ``mqlog`` command line (also ``python -m mqlog``).

``mqlog [--data DIR] COMMAND``; ``--data`` (or ``MQLOG_DATA``) selects the broker
directory. This release has ``demo``; the Kafka-tool style commands (``topics``,
``produce``, ``consume``, ``groups``, ``dump``, ``check``) follow.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence, TextIO

from . import __version__
from . import open as open_broker
from .records import TopicPartition

__all__ = ["main"]


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    """Produce and consume on a broker: a temporary one unless --data is given."""
    topic = args.topic
    started = time.perf_counter()
    with open_broker(args.data) as broker:
        where = "a temporary broker" if broker.temporary else broker.path
        print(f"mqlog {__version__} demo on {where}", file=out)
        if topic not in broker.topics():
            broker.create_topic(topic, partitions=3)
            print(f"created topic {topic!r} with 3 partitions", file=out)
        with broker.producer(acks="all" if not broker.temporary else 1) as producer:
            futures = [
                producer.send(topic, f"order #{i} for {user}".encode(), key=user.encode())
                for i, user in enumerate(["alice", "bob", "carol", "alice", "bob", "dave"])
            ]
            producer.flush()
            for f in futures:
                md = f.get(10)
                print(f"  produced to {md.topic}[{md.partition}] at offset {md.offset}",
                      file=out)
            batch = producer.send_batch(topic, [f"bulk-{i}".encode() for i in range(1000)])
            bm = batch.get(10)
            for part in bm.partitions:
                print(f"  send_batch: {part.count} records to {topic}[{part.partition}] "
                      f"at offsets {part.base_offset}..{part.base_offset + part.count - 1}",
                      file=out)
        consumer = broker.consumer(group_id="demo", auto_offset_reset="earliest",
                                   enable_auto_commit=False)
        partitions = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(partitions)
        total = 0
        shown = 0
        while True:
            batch = consumer.poll(timeout_ms=200)
            if not batch:
                break
            for tp, records in sorted(batch.items()):
                for r in records:
                    total += 1
                    if r.key is not None and shown < 6:
                        shown += 1
                        print(f"  consumed {tp.topic}[{tp.partition}]@{r.offset} "
                              f"key={r.key.decode()} value={r.value.decode()!r}", file=out)
        consumer.commit()
        committed = {tp.partition: consumer.committed(tp) for tp in partitions}
        consumer.close()
        print(f"consumed {total} records; group 'demo' committed offsets {committed}",
              file=out)
        print("same key -> same partition (Kafka's murmur2 partitioner); offsets are "
              "dense per partition", file=out)
    print(f"done in {time.perf_counter() - started:.2f} s", file=out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mqlog", description="mqlog: an embedded Kafka-style event log on LMDB")
    parser.add_argument("--version", action="version", version=f"mqlog {__version__}")
    data_help = "broker directory (default: $MQLOG_DATA; demo: a temporary broker)"
    parser.add_argument("--data", default=os.environ.get("MQLOG_DATA"), help=data_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="produce and consume a few records, print them")
    demo.add_argument("--data", default=argparse.SUPPRESS, help=data_help)
    demo.add_argument("--topic", default="demo-orders", help="topic to use")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .errors import MqlogError

    try:
        return args.func(args, sys.stdout)
    except MqlogError as exc:
        print(f"mqlog: error: {exc}", file=sys.stderr)
        return 1
