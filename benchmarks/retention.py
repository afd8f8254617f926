"""Disk use under steady produce with retention: the file stops growing.

    python benchmarks/retention.py [--rounds R] [--records N] [--markdown]

Each round produces 20 MB (N = 20,000 records of 1 KB by default) to a topic with
``retention.bytes=50 MB`` and runs the cleaner; the baseline topic has no size limit.
LMDB puts the deleted batches' pages on its free list and later writes reuse them, so
``data.mdb`` levels off at about the retained size plus one round.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mqlog  # noqa: E402

RECORDS, SIZE = 20_000, 1_000


def run(rounds: int, retention_bytes: int | None, records: int = RECORDS) -> list[int]:
    path = tempfile.mkdtemp(prefix="mqlog-retention-")
    config = {"retention.ms": -1}
    if retention_bytes is not None:
        config["retention.bytes"] = retention_bytes
    sizes = []
    with mqlog.open(path, cleaner_interval_ms=None) as broker:
        broker.create_topic("r", config=config)
        value = os.urandom(SIZE)
        with broker.producer() as p:
            for _ in range(rounds):
                p.send_batch("r", [value] * records, partition=0).get(120)
                broker.run_cleaner()
                sizes.append(os.path.getsize(os.path.join(path, "data.mdb")))
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--records", type=int, default=RECORDS, help="records per round")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    limited = run(args.rounds, 50_000_000, args.records)
    baseline = run(args.rounds, None, args.records)
    mb = 1e6
    lines = [
        f"{args.rounds} rounds of {args.records:,} x {SIZE} B records; `data.mdb` size after "
        "each round (MB).",
        "",
        "| round | retention.bytes=50 MB | no retention (baseline) |",
        "| ---: | ---: | ---: |",
    ]
    for i, (a, b) in enumerate(zip(limited, baseline), 1):
        lines.append(f"| {i} | {a / mb:.1f} | {b / mb:.1f} |")
    grew = limited[-1] / limited[len(limited) // 2]
    lines += ["", f"Growth over the second half with retention: x{grew:.2f} (1.00 = flat); "
                  f"took {time.perf_counter() - start:.0f} s."]
    text = "\n".join(lines)
    print(text if args.markdown else "\n" + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
