"""The ``mqlog`` command line (also ``python -m mqlog``).

``mqlog [--data DIR] [--json] COMMAND ...`` — ``--data`` (or ``MQLOG_DATA``) selects
the broker directory; both options are also accepted after the command. Commands are
modelled on Kafka's tools (kafka-topics, kafka-console-producer/consumer,
kafka-consumer-groups) and kcat: ``topics``, ``produce``, ``consume``, ``groups``,
``dump``, ``check`` and ``demo``. Output is aligned tables (``--json`` for scripts);
errors are one line on stderr with exit status 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Sequence, TextIO

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


def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    default = os.environ.get("MQLOG_DATA") if top else argparse.SUPPRESS
    p.add_argument("--data", default=default, metavar="DIR",
                   help="broker directory (default: $MQLOG_DATA)")
    p.add_argument("--json", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="machine-readable output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mqlog", description="mqlog: an embedded Kafka-style event log on LMDB")
    parser.add_argument("--version", action="version", version=f"mqlog {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, parent: Any = sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help)
        _common(p)
        return p

    topics = command("topics", "list, create, describe, alter and delete topics")
    tsub = topics.add_subparsers(dest="action", metavar="ACTION", required=True)
    command("list", "list topics", tsub)
    p = command("create", "create a topic", tsub)
    p.add_argument("name")
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--config", action="append", metavar="KEY=VALUE")
    p = command("describe", "partitions and offsets of a topic", tsub)
    p.add_argument("name")
    p = command("delete", "delete a topic and its records", tsub)
    p.add_argument("name")
    p = command("alter", "change topic config", tsub)
    p.add_argument("name")
    p.add_argument("--config", action="append", metavar="KEY=VALUE")
    p.add_argument("--delete-config", action="append", metavar="KEY")

    p = command("produce", "produce lines from stdin (or --file) as records")
    p.add_argument("topic")
    p.add_argument("--key-separator", metavar="SEP", help="split KEY<SEP>VALUE per line")
    p.add_argument("--header", action="append", metavar="NAME=VALUE")
    p.add_argument("--file", help="read lines from this file instead of stdin")
    p.add_argument("--partition", type=int)
    p.add_argument("--acks", default="all", choices=["0", "1", "all"])

    p = command("consume", "print records of a topic")
    p.add_argument("topic")
    p.add_argument("--group", help="consumer group: resume from and commit its offsets")
    p.add_argument("--from-beginning", action="store_true")
    p.add_argument("--offset", type=int)
    p.add_argument("--from-time", metavar="ISO", help="ISO 8601 time or ms since the epoch")
    p.add_argument("--partition", type=int)
    p.add_argument("--max-messages", type=int)
    p.add_argument("--follow", action="store_true", help="keep waiting for new records")
    p.add_argument("--isolation-level", default="read_uncommitted",
                   choices=["read_uncommitted", "read_committed"],
                   help="read_committed hides records of aborted and open transactions")
    p.add_argument("--format", default="%s",
                   help="kcat-style: %%t topic %%p partition %%o offset %%k key %%s value "
                        "%%T timestamp %%h headers (default %%s)")

    groups = command("groups", "list, describe, reset and delete consumer groups")
    gsub = groups.add_subparsers(dest="action", metavar="ACTION", required=True)
    command("list", "list consumer groups", gsub)
    p = command("describe", "offsets, lag and members of a group", gsub)
    p.add_argument("group")
    p = command("reset-offsets", "move a group's committed offsets (dry run by default)", gsub)
    p.add_argument("group")
    p.add_argument("--topic", required=True)
    p.add_argument("--to-earliest", action="store_true")
    p.add_argument("--to-latest", action="store_true")
    p.add_argument("--to-offset", type=int)
    p.add_argument("--to-datetime", metavar="ISO")
    p.add_argument("--shift-by", type=int)
    p.add_argument("--execute", action="store_true")
    p = command("delete", "delete a group's committed offsets", gsub)
    p.add_argument("group")

    p = command("dump", "batches and records of a topic, as stored")
    p.add_argument("topic")
    p.add_argument("--partition", type=int)
    command("check", "verify checksums, offsets and format; exit 1 if damaged")

    p = command("serve", "serve the store over the Kafka protocol (any Kafka client)")
    from .server._command import add_arguments as _serve_arguments

    _serve_arguments(p)

    p = command("run", "run a program written for kafka-python, confluent-kafka or "
                       "aiokafka, unchanged, against this store")
    p.add_argument("-m", dest="module", metavar="MODULE", help="run a module, as python -m")
    p.add_argument("script", nargs="?", help="the Python script to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")

    demo = command("demo", "produce and consume a few records, print them")
    demo.add_argument("--topic", default="demo-orders", help="topic to use")
    return parser


def _run_program(args: Any) -> int:
    """``mqlog run``: the program's ``import kafka`` / ``confluent_kafka`` / ``aiokafka``
    load mqlog's drop-ins, and every ``bootstrap_servers`` maps to the store (``--data``
    or ``MQLOG_DATA``; without one, the process's temporary broker)."""
    import runpy

    from ._bootstrap import ENV, SCHEME
    from ._fake_modules import kafka_aliases

    if (args.module is None) == (args.script is None):
        raise ValueError("mqlog run needs a script or -m MODULE (one of them): e.g. "
                         "mqlog --data ./data run app.py")
    data = getattr(args, "data", None) or os.environ.get("MQLOG_DATA")
    if data:
        os.environ[ENV] = SCHEME + os.path.abspath(data)
    kafka_aliases().activate()
    target = args.module or args.script
    sys.argv = [target, *args.args]
    try:
        if args.module:
            runpy.run_module(args.module, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(args.script, run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from ._commands import COMMANDS, Output
    from .errors import MqlogError

    out = Output(sys.stdout, sys.stderr, args.json)
    try:
        if args.command == "demo":
            return _demo(args, sys.stdout)
        if args.command == "run":
            return _run_program(args)
        if args.command == "serve":
            try:
                from .server import _apis  # noqa: F401 - needs the optional serve extra
            except ImportError as exc:
                print(f"mqlog: error: {exc}", file=sys.stderr)
                return 1
            from .server._command import run as _serve

            return _serve(args)
        name = args.command + (f" {args.action}" if getattr(args, "action", None) else "")
        return COMMANDS[name](args, out)
    except BrokenPipeError:  # e.g. `mqlog consume ... | head` (before OSError: a subclass)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except MqlogError as exc:
        print(f"mqlog: error: {exc}", file=sys.stderr)
        return 1
    except (TypeError, ValueError, OSError) as exc:
        print(f"mqlog: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
