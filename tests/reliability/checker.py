"""The shared checker of the reliability battery.

Given what a store holds after a crash (or any abuse) and what the producers were told
(acknowledged ``(partition, offset) -> record id``), it counts:

- ``acked``: acknowledged records;
- ``lost_acked``: acknowledged records missing, or with other bytes at their offset;
- ``duplicates``: record ids stored more than once;
- ``gaps``: holes in a partition's offsets (from its log start to its end);
- ``inconsistent_offsets``: acknowledged at one offset but stored at another;
- ``order_violations``: one writer's records out of send order within a partition;
- ``torn_values``: stored values that are not exactly what was sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

FIGURES = ("acked", "lost_acked", "duplicates", "gaps", "inconsistent_offsets",
           "order_violations", "torn_values")


def payload(writer: int, seq: int) -> bytes:
    """The value a test writer sends as record ``seq``: self-describing and checkable."""
    tag = f"{writer}:{seq}:".encode()
    return tag + hashlib.sha256(tag).hexdigest().encode() * (1 + seq % 7)


def parse(value: bytes) -> tuple[int, int] | None:
    """``(writer, seq)`` of a payload, or None when it is not one (torn)."""
    try:
        writer, seq, _ = value.split(b":", 2)
        ident = int(writer), int(seq)
    except (ValueError, AttributeError):
        return None
    return ident if value == payload(*ident) else None


def check(records: Iterable[Any], acked: dict[tuple[int, int], tuple[int, int]],
          log_starts: dict[int, int] | None = None) -> dict[str, int]:
    """Count the figures for stored ``records`` (ConsumerRecords, all partitions)
    against ``acked``: ``{(partition, offset): (writer, seq)}``."""
    figures = dict.fromkeys(FIGURES, 0)
    figures["acked"] = len(acked)
    stored: dict[tuple[int, int], tuple[int, int] | None] = {}
    where: dict[tuple[int, int], tuple[int, int]] = {}
    last_seq: dict[tuple[int, int], int] = {}
    offsets: dict[int, list[int]] = {}
    for r in records:
        ident = parse(r.value)
        stored[(r.partition, r.offset)] = ident
        offsets.setdefault(r.partition, []).append(r.offset)
        if ident is None:
            figures["torn_values"] += 1
            continue
        if ident in where:
            figures["duplicates"] += 1
        where[ident] = (r.partition, r.offset)
        key = (r.partition, ident[0])
        if key in last_seq and ident[1] <= last_seq[key]:
            figures["order_violations"] += 1
        last_seq[key] = ident[1]
    for partition, offs in offsets.items():
        previous = (log_starts or {}).get(partition, 0) - 1
        for off in offs:  # one gap per hole, however wide
            if off != previous + 1:
                figures["gaps"] += 1
            previous = off
    for pos, ident in acked.items():
        if stored.get(pos) != ident:
            figures["lost_acked"] += 1
            if ident in where:
                figures["inconsistent_offsets"] += 1
    return figures


def report(test: str, **figures: Any) -> None:
    """Print the one JSON line of figures a reliability test leaves in its output."""
    print(json.dumps({"test": test, **figures}, sort_keys=True))


def assert_clean(figures: dict[str, Any], context: str = "") -> None:
    bad = {k: figures[k] for k in FIGURES if k != "acked" and figures.get(k)}
    assert not bad, f"{context}: {bad} (figures {figures})"
