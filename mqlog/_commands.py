"""The command handlers behind ``mqlog`` (see :mod:`mqlog.cli` for the parser).

Each handler takes the parsed arguments and an :class:`Output` and returns the exit
status. Commands that only read open the store read-only, so they work while an
application owns it; commands that write open it for writing and fail with one clear
line when another process owns it.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from typing import Any, Callable, Iterable, TextIO

from . import open as open_broker
from ._transactions import control_type
from .batch import decode
from .broker import Broker
from .errors import BrokerLockedError, MqlogError, UnknownTopicOrPartitionError
from .records import TopicPartition

__all__ = ["COMMANDS", "Output"]


class Output:
    """Where results go: aligned tables for people, JSON for scripts."""

    def __init__(self, out: TextIO, err: TextIO, as_json: bool) -> None:
        self.out = out
        self.err = err
        self.json = as_json

    def table(self, headers: list[str], rows: Iterable[Iterable[Any]],
              records: list[dict] | None = None) -> None:
        rows = [["" if v is None else str(v) for v in row] for row in rows]
        if self.json:
            data = records if records is not None else [dict(zip(headers, r)) for r in rows]
            print(json.dumps(data, indent=2, default=str), file=self.out)
            return
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
        for row in [headers] + rows:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip(), file=self.out)

    def line(self, text: str, data: Any = None) -> None:
        if self.json:
            print(json.dumps(data if data is not None else {"message": text}, default=str),
                  file=self.out)
        else:
            print(text, file=self.out)


class CliError(MqlogError):
    """A usage problem found by a command (printed as one line, exit status 1)."""


def data_dir(args: Any) -> str:
    path = getattr(args, "data", None)
    if not path:
        raise CliError("no broker directory: pass --data DIR or set MQLOG_DATA")
    return path


def open_read(args: Any) -> Broker:
    """Open for reading: read-only, so it works beside the owning application."""
    path = data_dir(args)
    if not os.path.exists(os.path.join(path, "data.mdb")):
        raise CliError(f"no mqlog store at {path}: check --data (nothing is created by "
                       "reading commands)")
    try:
        return open_broker(path, readonly=True, cleaner_interval_ms=None)
    except BrokerLockedError:
        # This process holds it (cannot happen from the CLI); open normally.
        return open_broker(path, cleaner_interval_ms=None)


def open_write(args: Any, create: bool = False) -> Broker:
    """Open for writing; another owner gives one line naming it.

    Only commands that make things (``topics create``, ``produce``) create a store;
    the others refuse a path with none (a mistyped --data).
    """
    path = data_dir(args)
    if not create and not os.path.exists(os.path.join(path, "data.mdb")):
        raise CliError(f"no mqlog store at {path}: check --data")
    try:
        return open_broker(path, cleaner_interval_ms=None)
    except BrokerLockedError as exc:
        raise CliError(f"{exc}; to write while an application owns the store, run "
                       "`mqlog serve` in it and use a Kafka client") from None


def parse_configs(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--config {item!r} is not KEY=VALUE (e.g. retention.ms=86400000)")
        out[key.strip()] = value.strip()
    return out


def parse_time(text: str) -> int:
    """ISO 8601 (local time unless it says otherwise) or ms since the epoch -> ms."""
    if text.isdigit():
        return int(text)
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"time {text!r} is not ISO 8601 (e.g. 2026-11-28T10:00:00) or ms "
                       "since the epoch") from None
    if when.tzinfo is None:
        when = when.astimezone()
    return int(when.timestamp() * 1000)


# -- topics -----------------------------------------------------------------------------


def topics_list(args: Any, out: Output) -> int:
    with open_read(args) as broker:
        infos = broker.topics()
        out.table(["TOPIC", "PARTITIONS", "CONFIG"],
                  [[t.name, t.partitions, ",".join(f"{k}={v}" for k, v in t.config.items())]
                   for t in infos.values()],
                  [{"topic": t.name, "partitions": t.partitions, "config": dict(t.config)}
                   for t in infos.values()])
    return 0


def topics_create(args: Any, out: Output) -> int:
    with open_write(args, create=True) as broker:
        info = broker.create_topic(args.name, args.partitions, parse_configs(args.config))
        out.line(f"created topic {info.name!r} with {info.partitions} partition(s)",
                 {"topic": info.name, "partitions": info.partitions,
                  "config": dict(info.config)})
    return 0


def topics_describe(args: Any, out: Output) -> int:
    with open_read(args) as broker:
        tlog = broker._topic(args.name)
        rows = [[tlog.name, p.partition, p.log_start, p.end_offset,
                 p.end_offset - p.log_start] for p in tlog.partitions]
        if not out.json:
            out.line(f"Topic: {tlog.name}  PartitionCount: {len(tlog.partitions)}  Configs: "
                     + ",".join(f"{k}={v}" for k, v in tlog.config.items()))
        out.table(["TOPIC", "PARTITION", "LOG-START-OFFSET", "LOG-END-OFFSET", "RECORDS"],
                  rows)
    return 0


def topics_delete(args: Any, out: Output) -> int:
    with open_write(args) as broker:
        broker.delete_topic(args.name)
        out.line(f"deleted topic {args.name!r}", {"deleted": args.name})
    return 0


def topics_alter(args: Any, out: Output) -> int:
    changes: dict[str, Any] = parse_configs(args.config)
    for key in args.delete_config or []:
        changes[key] = None
    if not changes:
        raise CliError("nothing to change: pass --config KEY=VALUE or --delete-config KEY")
    with open_write(args) as broker:
        info = broker.alter_topic_config(args.name, changes)
        out.line(f"topic {info.name!r} config: "
                 + (",".join(f"{k}={v}" for k, v in info.config.items()) or "(defaults)"),
                 {"topic": info.name, "config": dict(info.config)})
    return 0


# -- produce / consume ------------------------------------------------------------------


class Progress:
    """A one-line progress bar for a terminal: count, rate, elapsed (redrawn <= 10/s)."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._start = self._last = clock()

    def _draw(self, count: int, end: str) -> None:
        elapsed = max(self._clock() - self._start, 1e-9)
        bar = "#" * min(20, count.bit_length())
        print(f"\r[{bar:<20}] {count:,} records  {count / elapsed:,.0f}/s  {elapsed:.1f}s",
              end=end, file=self._stream, flush=True)

    def update(self, count: int) -> None:
        now = self._clock()
        if now - self._last >= 0.1:
            self._last = now
            self._draw(count, "")

    def done(self, count: int) -> None:
        self._draw(count, "\n")



def produce(args: Any, out: Output) -> int:
    headers = []
    for item in args.header or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"--header {item!r} is not NAME=VALUE")
        headers.append((name, value.encode()))
    source = open(args.file, "rb") if args.file else sys.stdin.buffer
    progress = Progress(out.err) if getattr(out.err, "isatty", lambda: False)() else None
    sep = args.key_separator.encode() if args.key_separator else None
    count = 0
    try:
        with open_write(args, create=True) as broker, \
                broker.producer(acks=args.acks) as producer:
            for raw in source:
                line = raw.rstrip(b"\r\n")
                key = None
                if sep is not None:
                    if sep not in line:
                        raise CliError(f"line {count + 1} has no key separator "
                                       f"{args.key_separator!r}")
                    key, line = line.split(sep, 1)
                producer.send(args.topic, line, key=key, headers=headers or None,
                              partition=args.partition)
                count += 1
                if progress is not None and not count % 256:
                    progress.update(count)
            producer.flush()
    finally:
        if args.file:
            source.close()
    if progress is not None:
        progress.done(count)
    if out.json:
        out.line("", {"topic": args.topic, "produced": count})
    return 0


def _render(fmt: str, r: Any) -> str:
    def text(b: bytes | None) -> str:
        return "" if b is None else b.decode("utf-8", "backslashreplace")

    out = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c == "%" and i + 1 < len(fmt):
            code = fmt[i + 1]
            i += 2
            out.append({
                "t": r.topic, "p": str(r.partition), "o": str(r.offset),
                "k": text(r.key), "s": text(r.value), "T": str(r.timestamp),
                "h": ",".join(f"{n}={text(v)}" for n, v in r.headers), "%": "%",
            }.get(code, "%" + code))
            continue
        if c == "\\" and i + 1 < len(fmt):
            out.append({"n": "\n", "t": "\t"}.get(fmt[i + 1], fmt[i + 1]))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def consume(args: Any, out: Output) -> int:
    starts = [args.from_beginning, args.offset is not None, args.from_time is not None]
    if sum(starts) > 1:
        raise CliError("use one of --from-beginning, --offset, --from-time")
    broker = open_write(args) if args.group else open_read(args)
    with broker:
        tlog = broker._topic(args.topic)
        parts = [args.partition] if args.partition is not None else \
            list(range(len(tlog.partitions)))
        tps = [TopicPartition(args.topic, p) for p in parts]
        for tp in tps:
            broker._partition(tp)
        consumer = broker.consumer(
            group_id=args.group, enable_auto_commit=False,
            isolation_level=args.isolation_level,
            auto_offset_reset="earliest" if args.from_beginning or not args.group else "latest")
        consumer.assign(tps)
        if args.from_beginning:
            consumer.seek_to_beginning()
        elif args.offset is not None:
            for tp in tps:
                consumer.seek(tp, args.offset)
        elif args.from_time is not None:
            when = parse_time(args.from_time)
            for tp, found in consumer.offsets_for_times({tp: when for tp in tps}).items():
                if found is None:
                    consumer.seek_to_end(tp)
                else:
                    consumer.seek(tp, found.offset)
        elif not args.group:
            consumer.seek_to_beginning()  # a console consumer without a group reads all
        stop_at = None if args.follow else consumer.end_offsets(tps)
        shown = 0
        done: dict[TopicPartition, int] = {}  # next offset after what was printed
        try:
            while args.max_messages is None or shown < args.max_messages:
                if stop_at is not None and all(
                        consumer.position(tp) >= stop_at[tp] for tp in tps):
                    break
                batch = consumer.poll(timeout_ms=500)
                for tp in sorted(batch):
                    for r in batch[tp]:
                        if stop_at is not None and r.offset >= stop_at[tp]:
                            continue
                        if args.max_messages is not None and shown >= args.max_messages:
                            break
                        shown += 1
                        done[tp] = r.offset + 1
                        if out.json:
                            print(json.dumps({
                                "topic": r.topic, "partition": r.partition,
                                "offset": r.offset, "timestamp": r.timestamp,
                                "key": None if r.key is None else r.key.decode(
                                    "utf-8", "backslashreplace"),
                                "value": None if r.value is None else r.value.decode(
                                    "utf-8", "backslashreplace"),
                                "headers": {n: None if v is None else v.decode(
                                    "utf-8", "backslashreplace") for n, v in r.headers},
                            }), file=out.out)
                        else:
                            print(_render(args.format, r), file=out.out)
                out.out.flush()
        except KeyboardInterrupt:
            pass
        if args.group and done:
            consumer.commit(done)  # only what was printed: nothing is skipped later
        consumer.close(autocommit=False)
    return 0


# -- groups -------------------------------------------------------------------------------


def groups_list(args: Any, out: Output) -> int:
    with open_read(args) as broker:
        listing = broker.admin().list_consumer_groups()
        out.table(["GROUP", "STATE"], [[g.group_id, g.state] for g in listing])
    return 0


def groups_describe(args: Any, out: Output) -> int:
    with open_read(args) as broker:
        admin = broker.admin()
        owners = {}
        for m in admin.describe_consumer_groups([args.group])[args.group].members:
            for tp in m.assignment:
                owners[tp] = m.member_id
        lag = admin.lag(args.group)
        if not lag:
            raise CliError(f"group {args.group!r} has no committed offsets and no members")
        rows = [[args.group, tp.topic, tp.partition,
                 "-" if g.committed is None else g.committed, g.end, g.lag,
                 owners.get(tp, "-")] for tp, g in sorted(lag.items())]
        out.table(["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                   "CONSUMER-ID"], rows)
    return 0


def groups_reset(args: Any, out: Output) -> int:
    targets = {
        "to_earliest": args.to_earliest, "to_latest": args.to_latest,
        "to_offset": args.to_offset,
        "to_timestamp": None if args.to_datetime is None else parse_time(args.to_datetime),
        "shift_by": args.shift_by,
    }
    chosen = {k: v for k, v in targets.items() if v is not None and v is not False}
    if len(chosen) != 1:
        raise CliError("reset-offsets needs one of --to-earliest, --to-latest, --to-offset, "
                       "--to-datetime, --shift-by")
    opener = open_write if args.execute else open_read
    with opener(args) as broker:
        tlog = broker._topic(args.topic)
        tps = [TopicPartition(args.topic, p) for p in range(len(tlog.partitions))]
        new = broker.admin().reset_offsets(args.group, tps, execute=args.execute, **chosen)
        out.table(["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
                  [[args.group, tp.topic, tp.partition, off] for tp, off in new.items()])
        if not args.execute and not out.json:
            print("(dry run: nothing changed; add --execute to apply)", file=out.err)
    return 0


def groups_delete(args: Any, out: Output) -> int:
    with open_write(args) as broker:
        broker.admin().delete_consumer_groups([args.group])
        out.line(f"deleted group {args.group!r}", {"deleted": args.group})
    return 0


# -- dump / check ----------------------------------------------------------------------


def dump(args: Any, out: Output) -> int:
    with open_read(args) as broker:
        tlog = broker._topic(args.topic)
        parts = [args.partition] if args.partition is not None else \
            range(len(tlog.partitions))
        records = []
        with broker._store.read() as txn:
            for p in parts:
                if not 0 <= p < len(tlog.partitions):
                    raise UnknownTopicOrPartitionError(
                        f"partition {p} does not exist in {args.topic!r}")
                for base, raw in txn.batches(tlog.topic_id, p, 0):
                    b = decode(raw)
                    producer = ""
                    if b.producer_id >= 0:
                        producer = (f" producer_id={b.producer_id} epoch={b.producer_epoch}"
                                    f" base_sequence={b.base_sequence}"
                                    + (" transactional" if b.is_transactional else ""))
                    if not out.json:
                        print(f"batch {args.topic}[{p}] offsets {b.base_offset}..{b.last_offset}"
                              f" records={b.count} bytes={len(raw)} codec={b.codec or 'none'} "
                              f"first_ts={b.first_timestamp} max_ts={b.max_timestamp}"
                              f"{producer}", file=out.out)
                    for r in b.records(args.topic, p):
                        if b.is_control:  # a transaction marker, not a record
                            kind = control_type(r.key)
                            if out.json:
                                records.append({"partition": p, "offset": r.offset,
                                                "timestamp": r.timestamp, "control": kind,
                                                "producer_id": b.producer_id, "batch": base})
                            else:
                                print(f"  offset {r.offset} ts {r.timestamp} {kind.upper()} "
                                      f"marker of producer id {b.producer_id}", file=out.out)
                            continue
                        item = {"partition": p, "offset": r.offset, "timestamp": r.timestamp,
                                "key": None if r.key is None else r.key.decode(
                                    "utf-8", "backslashreplace"),
                                "value": None if r.value is None else r.value.decode(
                                    "utf-8", "backslashreplace"),
                                "batch": base}
                        if b.is_transactional:
                            item["producer_id"] = b.producer_id
                            item["transactional"] = True
                        if out.json:
                            records.append(item)
                        else:
                            print(f"  offset {r.offset} ts {r.timestamp} key {item['key']!r} "
                                  f"value {item['value']!r}", file=out.out)
        if out.json:
            print(json.dumps(records, indent=2), file=out.out)
    return 0


def check(args: Any, out: Output) -> int:
    """Verify every batch's CRC and layout and every partition's offsets."""
    problems: list[str] = []
    try:
        broker = open_read(args)
    except MqlogError as exc:  # format version, damaged file, ...
        out.line(f"UNHEALTHY: {exc}", {"healthy": False, "problems": [str(exc)]})
        return 1
    with broker:
        stat = broker._store.stat()
        batches = stat["entries"]["log"]
        for tlog in broker._topics.values():
            dense = "compact" not in tlog.config.get("cleanup.policy", "delete")
            for plog in tlog.partitions:
                try:
                    problems.extend(plog.verify(broker._store, dense))
                except MqlogError as exc:
                    problems.append(f"{tlog.name}[{plog.partition}]: {exc}")
    healthy = not problems
    out.line(("healthy" if healthy else "UNHEALTHY") +
             f": {len(broker._topics)} topics, {batches} batches checked"
             + "".join(f"\n  {p}" for p in problems),
             {"healthy": healthy, "topics": len(broker._topics), "batches": batches,
              "problems": problems})
    return 0 if healthy else 1


COMMANDS: dict[str, Callable[[Any, Output], int]] = {
    "topics list": topics_list, "topics create": topics_create,
    "topics describe": topics_describe, "topics delete": topics_delete,
    "topics alter": topics_alter, "produce": produce, "consume": consume,
    "groups list": groups_list, "groups describe": groups_describe,
    "groups reset-offsets": groups_reset, "groups delete": groups_delete,
    "dump": dump, "check": check,
}
