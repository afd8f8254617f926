"""I/O error at N: fail the Nth commit (and, separately, the Nth flush) for every N of a
fixed workload; every failure is a typed error, nothing acknowledged is lost, and the
store's invariants hold after a reopen."""

import pytest
from checker import assert_clean, check, payload, report

import mqlog
from mqlog import TopicPartition
from mqlog.errors import MqlogError


def workload(broker, acked):
    """Topic admin, acks=all produce, offset commits, retention: ~20 commits."""
    errors = 0
    for step in range(6):
        try:
            if "w" not in broker.topics():
                broker.create_topic("w", partitions=2, config={"retention.bytes": 20_000})
            with broker.producer(acks="all") as p:
                futures = [(i, p.send("w", payload(step, i), partition=i % 2))
                           for i in range(40)]
            for i, f in futures:
                try:
                    md = f.get(10)
                    acked[(md.partition, md.offset)] = (step, i)
                except MqlogError:
                    errors += 1
            broker.commit_offsets("g", {TopicPartition("w", 0): step})
            if step % 3 == 2:
                broker.run_cleaner()
        except MqlogError:
            errors += 1
    return errors


@pytest.mark.parametrize("kind", ["commit", "sync"])
def test_failure_at_every_n(tmp_path, kind, long_run):
    with mqlog.open(str(tmp_path / "probe"), cleaner_interval_ms=None) as probe:
        workload(probe, {})
        total = probe._writer.commit_attempts if kind == "commit" else \
            probe._writer.sync_attempts
    limit = total if long_run else min(total, 25)
    failures = 0
    for n in range(1, limit + 1):
        path = str(tmp_path / f"{kind}-{n}")
        acked = {}
        with mqlog.open(path, cleaner_interval_ms=None) as broker:
            setattr(broker._writer, f"fail_{kind}_at", n)
            failures += workload(broker, acked) > 0
        with mqlog.open(path) as broker:
            broker._check()
            if "w" in broker.topics():
                starts = {p.partition: p.log_start for p in broker._topics["w"].partitions}
                records = broker.messages("w")
                # Retention may have deleted acknowledged records below the log start.
                kept = {pos: ident for pos, ident in acked.items() if pos[1] >= starts[pos[0]]}
                figures = check(records, kept, starts)
            else:
                assert not acked
                figures = check([], {})
        assert_clean(figures, f"{kind} failure at {n}")
    report("io_error_at_n", kind=kind, points=limit, runs_with_errors=failures)
    assert failures == limit  # every injected failure surfaced as a typed error
