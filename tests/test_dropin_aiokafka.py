"""mqlog.aiokafka: aiokafka's API end to end, the way asyncio code uses it.

Each test runs its scenario with ``asyncio.run`` under a deadline (``asyncio.wait_for``)
and checks the outcome through the drop-in and against ``broker.messages(...)``. Waits
are on consumer calls with timeouts or on ``asyncio.Event``s, never timed sleeps: the
only ``asyncio.sleep`` with a duration is in the tickers that measure whether the loop
stays responsive (``sleep(0)`` just lets other tasks run).
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

import mqlog
import mqlog.errors as core_errors
import mqlog.kafka.errors as kafka_errors
from mqlog import _bootstrap
from mqlog.aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerStoppedError,
    IllegalOperation,
    TopicPartition,
)
from mqlog.aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    KafkaTimeoutError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    ProducerClosed,
    ProducerFenced,
    UnknownTopicOrPartitionError,
)
from mqlog.aiokafka.helpers import create_ssl_context
from mqlog.aiokafka.structs import ConsumerRecord, OffsetAndMetadata, RecordMetadata

BOOT = "localhost:9092"  # code written for a real cluster: resolves to the test's broker
DEADLINE = 20.0  # seconds a scenario may take before the test fails
TP = TopicPartition


@pytest.fixture
def broker(monkeypatch):
    """A fresh temporary broker that every drop-in client of the test resolves to."""
    monkeypatch.delenv(_bootstrap.ENV, raising=False)
    b = mqlog.open()
    with _bootstrap.install(b):
        yield b
    b.close()


def run(coro, deadline: float = DEADLINE):
    return asyncio.run(asyncio.wait_for(coro, deadline))


def consumer(*topics, **kw) -> AIOKafkaConsumer:
    kw.setdefault("bootstrap_servers", BOOT)
    kw.setdefault("auto_offset_reset", "earliest")
    return AIOKafkaConsumer(*topics, **kw)


async def produce(topic, values, **send_kw):
    async with AIOKafkaProducer(bootstrap_servers=BOOT) as p:
        for v in values:
            await p.send(topic, v, **send_kw)
        await p.flush()


# -- producing and consuming --------------------------------------------------------


def test_produce_consume_round_trip(broker):
    broker.create_topic("orders", partitions=2)

    async def main():
        async with AIOKafkaProducer(
                bootstrap_servers=BOOT, value_serializer=lambda v: json.dumps(v).encode(),
                key_serializer=str.encode) as p:
            fut = await p.send("orders", {"n": 1}, key="alice", headers=[("h", b"1")],
                               timestamp_ms=1234)
            assert isinstance(fut, asyncio.Future)
            md = await fut
            assert isinstance(md, RecordMetadata)
            assert md.topic_partition == TP("orders", md.partition) and md.offset == 0
            assert (md.timestamp, md.timestamp_type) == (1234, 0)
            md2 = await p.send_and_wait("orders", {"n": 2}, key="alice")
            assert (md2.partition, md2.offset) == (md.partition, 1)  # same key, same place
        async with consumer("orders", group_id="g",
                            value_deserializer=lambda b: json.loads(b),
                            key_deserializer=lambda k: k.decode()) as c:
            first = await c.getone()
            second = await c.getone()
        assert isinstance(first, ConsumerRecord)
        assert (first.key, first.value, first.offset) == ("alice", {"n": 1}, 0)
        assert first.headers == [("h", b"1")] and first.timestamp == 1234
        assert second.value == {"n": 2}

    run(main())
    assert [json.loads(r.value) for r in broker.messages("orders")] == [{"n": 1}, {"n": 2}]


def test_consumer_record_has_aiokafka_shape():
    # aiokafka's ConsumerRecord is generic and built in aiokafka's field order.
    record_type = ConsumerRecord[bytes, bytes]
    made = record_type("t", 1, 7, 1234, 0, b"k", b"v", None, 1, 1, [("h", b"x")])
    assert (made.topic, made.partition, made.offset, made.key, made.value) == (
        "t", 1, 7, b"k", b"v")
    assert made.headers == [("h", b"x")] and made.timestamp_type == 0
    assert isinstance(made, mqlog.ConsumerRecord)


def test_acks_zero_resolves_to_none_and_batches(broker):
    broker.create_topic("t", partitions=2)

    async def main():
        async with AIOKafkaProducer(bootstrap_servers=BOOT, acks=0) as p:
            assert await p.send_and_wait("t", b"fire", partition=0) is None
        async with AIOKafkaProducer(bootstrap_servers=BOOT) as p:
            batch = p.create_batch()
            for i in range(3):
                assert batch.append(key=None, value=b"b%d" % i, timestamp=None) is not None
            assert batch.record_count() == 3
            md = await (await p.send_batch(batch, "t", partition=1))
            assert (md.partition, md.offset) == (1, 0)
            assert await p.partitions_for("t") == {0, 1}

    run(main())
    assert [r.value for r in broker.messages("t")] == [b"fire", b"b0", b"b1", b"b2"]


def test_async_for_with_a_group_splits_partitions(broker):
    broker.create_topic("orders", partitions=4)

    async def main():
        await produce("orders", [], )
        async with AIOKafkaProducer(bootstrap_servers=BOOT) as p:
            for i in range(40):
                await p.send("orders", b"%d" % i, key=b"k%d" % i)
        c1, c2 = consumer("orders", group_id="g"), consumer("orders", group_id="g")
        await c1.start()
        await c2.start()  # joins while c1 sits idle: c1's worker rebalances anyway
        got: dict[int, list] = {1: [], 2: []}
        all_in = asyncio.Event()

        async def drain(n, c):
            async for msg in c:
                got[n].append(msg)
                if len(got[1]) + len(got[2]) == 40:
                    all_in.set()
            return n  # the loop ended: the consumer was stopped

        tasks = [asyncio.create_task(drain(1, c1)), asyncio.create_task(drain(2, c2))]
        await all_in.wait()
        parts = [c1.assignment(), c2.assignment()]
        await c1.stop()
        await c2.stop()
        assert sorted(await asyncio.gather(*tasks)) == [1, 2]
        return got, parts

    got, (p1, p2) = run(main())
    assert len(p1) == len(p2) == 2 and not p1 & p2
    assert sorted(int(m.value) for m in got[1] + got[2]) == list(range(40))
    assert {m.partition for m in got[1]} <= {tp.partition for tp in p1}
    assert {m.partition for m in got[2]} <= {tp.partition for tp in p2}


def test_getmany_across_partitions_with_limits_and_pause(broker):
    broker.create_topic("t", partitions=3)
    tp0 = TP("t", 0)

    async def collect(c, count, *tps):
        out: dict = {}
        while sum(map(len, out.values())) < count:
            for tp, recs in (await c.getmany(*tps, timeout_ms=2000)).items():
                out.setdefault(tp, []).extend(recs)
        return out

    async def main():
        async with AIOKafkaProducer(bootstrap_servers=BOOT) as p:
            for part in range(3):
                for i in range(4):
                    await p.send("t", b"%d-%d" % (part, i), partition=part)
        c = consumer(bootstrap_servers=BOOT)
        c.assign([TP("t", p) for p in range(3)])
        await c.start()
        first = await c.getmany(timeout_ms=2000, max_records=6)
        assert sum(map(len, first.values())) == 6
        c.pause(tp0)
        assert c.paused() == {tp0}
        others = await collect(c, 8 - sum(len(v) for tp, v in first.items() if tp != tp0))
        assert tp0 not in others  # a paused partition returns nothing
        c.resume(tp0)
        only0 = await collect(c, 4 - len(first.get(tp0, [])), tp0)
        assert set(only0) <= {tp0}
        await c.stop()
        return first, others, only0

    first, others, only0 = run(main())
    seen: dict = {}
    for batch in (first, others, only0):
        for tp, recs in batch.items():
            seen.setdefault(tp.partition, []).extend(r.value for r in recs)
    assert seen == {p: [b"%d-%d" % (p, i) for i in range(4)] for p in range(3)}
    assert len(first) >= 2  # one call spans partitions


# -- offsets ------------------------------------------------------------------------


def test_commit_commits_what_was_consumed_not_what_was_prefetched(broker):
    tp = TP("t", 0)

    async def main():
        await produce("t", [b"%d" % i for i in range(10)])
        c = consumer("t", group_id="g", enable_auto_commit=False)
        await c.start()
        for _ in range(3):
            await c.getone()
        await c.commit()  # 10 records are prefetched, 3 consumed
        assert await c.committed(tp) == 3
        assert await c.position(tp) == 3
        await c.commit({tp: 5})
        assert await c.committed(tp) == 5
        await c.commit({tp: (6, "meta")})
        with pytest.raises(IllegalStateError, match="not assigned"):
            await c.commit({TP("t", 9): 1})
        with pytest.raises(ValueError, match="offset"):
            await c.commit({tp: "x"})
        await c.stop()
        # A new member resumes at the committed offset.
        async with consumer("t", group_id="g", enable_auto_commit=True) as c2:
            record = await c2.getone()
            await c2.getone()
        return record

    record = run(main())
    assert record.offset == 6
    assert broker.admin().list_consumer_group_offsets("g")[tp].offset == 8  # stop() auto-commit
    assert broker.admin().list_consumer_group_offsets("g")[tp] == OffsetAndMetadata(8, "")


def test_seek_and_positions(broker):
    tp = TP("t", 0)

    async def main():
        await produce("t", [b"%d" % i for i in range(10)])
        c = consumer(group_id="g", enable_auto_commit=False)
        c.assign([tp])
        await c.start()
        assert (await c.getone()).offset == 0  # the rest is prefetched now
        c.seek(tp, 7)
        assert await c.position(tp) == 7
        assert [(await c.getone()).offset for _ in range(3)] == [7, 8, 9]
        await c.seek_to_beginning(tp)
        assert (await c.getone()).offset == 0
        await c.seek_to_end()
        assert await c.position(tp) == 10
        assert await c.getmany(timeout_ms=50) == {}
        await c.commit({tp: 4})
        assert await c.seek_to_committed() == {tp: 4}
        assert (await c.getone()).offset == 4
        assert await c.beginning_offsets([tp]) == {tp: 0}
        assert await c.end_offsets([tp]) == {tp: 10}
        assert c.highwater(tp) == 10
        times = await c.offsets_for_times({tp: 0})
        assert times[tp].offset == 0
        with pytest.raises(ValueError, match="int >= 0"):
            c.seek(tp, -1)
        with pytest.raises(IllegalStateError, match="not assigned"):
            c.seek(TP("t", 3), 0)
        with pytest.raises(TypeError):
            await c.seek_to_beginning(("t", 0))
        await c.stop()

    run(main())


# -- transactions -------------------------------------------------------------------


def test_transactions_and_read_committed(broker):
    broker.create_topic("out")
    broker.create_topic("in")
    tp_out, tp_in = TP("out", 0), TP("in", 0)

    async def main():
        reader = consumer(isolation_level="read_committed")
        reader.assign([tp_out])
        await reader.start()
        async with AIOKafkaProducer(bootstrap_servers=BOOT, transactional_id="tx") as p:
            with pytest.raises(IllegalOperation):
                await p.send("out", b"outside")
            await p.begin_transaction()
            await p.send("out", b"a")
            await p.send_and_wait("out", b"b")  # written, but not yet committed
            assert await reader.getmany(timeout_ms=0) == {}
            await p.send_offsets_to_transaction({tp_in: 3}, "billing")
            await p.commit_transaction()
            got = await reader.getmany(timeout_ms=2000)
            assert [r.value for r in got[tp_out]] == [b"a", b"b"]
            with pytest.raises(RuntimeError, match="boom"):
                async with p.transaction():
                    await p.send("out", b"aborted")
                    raise RuntimeError("boom")
            async with p.transaction():
                await p.send("out", b"c")
            got = await reader.getmany(timeout_ms=2000)
            assert [r.value for r in got[tp_out]] == [b"c"]
            async with AIOKafkaProducer(bootstrap_servers=BOOT, transactional_id="tx"):
                with pytest.raises(ProducerFenced):  # the newer producer took "tx"
                    async with p.transaction():
                        await p.send("out", b"zombie")
        await reader.stop()
        async with AIOKafkaProducer(bootstrap_servers=BOOT) as plain:
            with pytest.raises(IllegalOperation, match="transactional_id"):
                await plain.begin_transaction()

    run(main())
    assert broker.admin().list_consumer_group_offsets("billing")[tp_in].offset == 3
    committed = [r.value for r in broker.messages("out", isolation_level="read_committed")]
    assert committed == [b"a", b"b", b"c"]
    assert b"aborted" in [r.value for r in broker.messages("out")]


# -- rebalance listeners --------------------------------------------------------------


def test_listener_runs_on_the_loop_and_may_use_the_consumer(broker):
    broker.create_topic("t", partitions=2)
    main_thread = threading.get_ident()

    class Listener(ConsumerRebalanceListener):
        def __init__(self):
            self.events = []
            self.assigned = asyncio.Event()
            self.consumer = None

        async def on_partitions_revoked(self, revoked):
            await self.consumer.commit()  # the manual-commit pattern: save progress now
            self.events.append(("revoked", sorted(revoked), threading.get_ident()))

        async def on_partitions_assigned(self, assigned):
            # Awaiting the consumer and seeking inside the callback must not deadlock.
            committed = {tp: await self.consumer.committed(tp) for tp in assigned}
            for tp in assigned:
                self.consumer.seek(tp, 2)
            self.events.append(("assigned", sorted(assigned), threading.get_ident(),
                                committed))
            self.assigned.set()

    class SyncListener(ConsumerRebalanceListener):
        def __init__(self):
            self.calls = []

        def on_partitions_revoked(self, revoked):
            self.calls.append(("revoked", threading.get_ident()))

        def on_partitions_assigned(self, assigned):
            self.calls.append(("assigned", sorted(assigned), threading.get_ident()))

    async def main():
        async with AIOKafkaProducer(bootstrap_servers=BOOT) as p:
            for part in range(2):
                for i in range(5):
                    await p.send("t", b"%d" % i, partition=part)
        listener = Listener()
        c1 = consumer(group_id="g", enable_auto_commit=False)
        listener.consumer = c1
        c1.subscribe(["t"], listener=listener)
        await c1.start()
        got = await c1.getmany(timeout_ms=2000)
        assert {tp: recs[0].offset for tp, recs in got.items()} == {TP("t", 0): 2,
                                                                     TP("t", 1): 2}
        listener.assigned.clear()
        sync = SyncListener()
        c2 = consumer(group_id="g", enable_auto_commit=False)
        c2.subscribe(["t"], listener=sync)
        await c2.start()
        await listener.assigned.wait()  # c1 went through the rebalance too
        assert len(c1.assignment()) == len(c2.assignment()) == 1
        await c1.stop()
        await c2.stop()
        with pytest.raises(TypeError, match="ConsumerRebalanceListener"):
            consumer(group_id="g").subscribe(["t"], listener=object())
        return listener.events, sync.calls

    events, sync_calls = run(main())
    offsets = broker.admin().list_consumer_group_offsets("g")
    assert {tp: o.offset for tp, o in offsets.items()} == {TP("t", 0): 5, TP("t", 1): 5}
    kinds = [e[0] for e in events]
    assert kinds == ["assigned", "revoked", "assigned"]
    assert events[0][1] == [TP("t", 0), TP("t", 1)] and events[0][3] == {
        TP("t", 0): None, TP("t", 1): None}
    assert len(events[2][1]) == 1
    assert {e[2] for e in events} == {main_thread}  # on the event loop's thread
    assert sync_calls and sync_calls[0][0] == "assigned"
    assert {c[-1] for c in sync_calls} == {main_thread}


def test_pattern_subscription_follows_new_topics(broker):
    async def main():
        c = consumer(group_id="g")
        c.subscribe(pattern="^ev-")
        async with c:
            assert c.subscription() == frozenset()
            await produce("ev-1", [b"one"])
            record = await c.getone()
            return record, c.subscription()

    record, topics = run(main())
    assert (record.topic, record.value) == ("ev-1", b"one") and topics == {"ev-1"}


# -- errors ----------------------------------------------------------------------------


def test_errors_are_catchable_by_aiokafka_names(broker):
    broker.create_topic("t", partitions=1)

    async def main():
        p = AIOKafkaProducer(bootstrap_servers=BOOT)
        with pytest.raises(IllegalStateError, match="start"):
            await p.send("t", b"x")
        await p.start()
        with pytest.raises(UnknownTopicOrPartitionError) as info:
            await p.send("t", b"x", partition=5)
        assert isinstance(info.value, KafkaError)
        assert isinstance(info.value, kafka_errors.UnknownTopicOrPartitionError)  # shared
        assert isinstance(info.value.__cause__, core_errors.UnknownTopicOrPartitionError)
        await p.stop()
        with pytest.raises(ProducerClosed):
            await p.send("t", b"x")
        c = consumer("t")  # no group
        await c.start()
        with pytest.raises(IllegalOperation, match="group_id"):
            await c.commit()
        await c.stop()
        with pytest.raises(ConsumerStoppedError):
            await c.getone()
        c = consumer(auto_offset_reset="none", group_id="fresh")
        c.assign([TP("t", 0)])
        await c.start()
        with pytest.raises(NoOffsetForPartitionError, match="no committed offset"):
            await c.getmany(timeout_ms=0)
        c.seek(TP("t", 0), 100)  # past the end, and no reset policy
        with pytest.raises(OffsetOutOfRangeError, match="out of range"):
            await c.getone()
        await c.stop()
        with pytest.raises(IllegalStateError, match="not started"):
            await consumer().getone()
        nothing = consumer()
        await nothing.start()
        with pytest.raises(IllegalStateError, match="subscribe"):
            await nothing.getone()
        await nothing.stop()

    run(main())
    # aiokafka shares kafka-python's classes: one except clause serves both drop-ins.
    assert CommitFailedError is kafka_errors.CommitFailedError
    assert issubclass(ProducerFenced, kafka_errors.ProducerFencedError)
    with pytest.raises(TypeError):
        AIOKafkaProducer(bootstrap_servers=BOOT, no_such_option=1)
    with pytest.raises(TypeError):
        AIOKafkaConsumer("t", bootstrap_servers=BOOT, fetch_wait_max_ms=1)
    with pytest.raises(ValueError, match="acks"):
        AIOKafkaProducer(acks=2)
    with pytest.raises(ValueError, match="acks"):
        AIOKafkaProducer(acks=1, transactional_id="x")
    with pytest.raises(ValueError, match="isolation_level"):
        AIOKafkaConsumer(isolation_level="dirty")
    # Network and security settings are accepted and ignored.
    AIOKafkaProducer(bootstrap_servers=["a:9092", "b:9092"], security_protocol="SSL",
                     ssl_context=create_ssl_context(), sasl_mechanism="PLAIN",
                     request_timeout_ms=5, metadata_max_age_ms=1, api_version="2.8")


def test_bootstrap_address_selects_a_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(_bootstrap.ENV, raising=False)
    address = f"mqlog://{tmp_path / 'data'}"

    async def main():
        async with AIOKafkaProducer(bootstrap_servers=address) as p:
            await p.send_and_wait("t", b"durable")
        async with consumer("t", bootstrap_servers=[address]) as c:
            return (await c.getone()).value

    assert run(main()) == b"durable"
    shared = _bootstrap.resolve(address)
    assert [r.value for r in shared.messages("t")] == [b"durable"]
    shared.close()


# -- the event loop is never blocked ----------------------------------------------------


def test_loop_stays_responsive_while_a_consumer_waits(broker):
    broker.create_topic("t")

    async def main():
        loop = asyncio.get_running_loop()
        c = consumer()
        c.assign([TP("t", 0)])
        await c.start()
        ticks = []
        async with AIOKafkaProducer(bootstrap_servers=BOOT) as p:
            async def ticker():
                while True:
                    ticks.append(loop.time())
                    if len(ticks) == 20:  # the data arrives only if the loop ran
                        await p.send_and_wait("t", b"late")
                    await asyncio.sleep(0.005)  # the measurement, not a wait

            task = asyncio.create_task(ticker())
            record = await c.getone()
            assert len(ticks) >= 20
            before = len(ticks)
            start = loop.time()
            assert await c.getmany(timeout_ms=300) == {}
            waited = loop.time() - start
            during = len(ticks) - before
            task.cancel()
        await c.stop()
        gaps = [b - a for a, b in zip(ticks, ticks[1:])]
        return record, waited, during, max(gaps)

    record, waited, during, max_gap = run(main())
    assert record.value == b"late"
    assert waited >= 0.29
    assert during >= 5  # the ticker kept running while getmany waited
    assert max_gap < 1.0


def test_cancelled_getone_loses_nothing_and_stop_wakes_waiters(broker):
    broker.create_topic("t")
    tp = TP("t", 0)

    async def main():
        c = consumer(group_id="g")
        c.assign([tp])
        await c.start()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(c.getone(), 0.05)
        await produce("t", [b"a", b"b"])
        assert (await c.getone()).value == b"a"
        await c.commit()  # runs at once: no stale poll holds the worker
        assert await c.committed(tp) == 1
        waiter = asyncio.create_task(c.getone())
        iterator_done = asyncio.Event()

        async def iterate():
            async for _ in c:
                pass
            iterator_done.set()

        assert (await waiter).value == b"b"
        waiter = asyncio.create_task(c.getone())
        it = asyncio.create_task(iterate())
        await asyncio.sleep(0)  # let both start waiting
        await c.stop()
        with pytest.raises(ConsumerStoppedError):
            await waiter
        await iterator_done.wait()
        await it

    run(main())
    # stop() auto-committed what was consumed.
    assert broker.admin().list_consumer_group_offsets("g")[tp].offset == 2


def test_closing_the_broker_under_a_waiting_consumer(monkeypatch):
    monkeypatch.delenv(_bootstrap.ENV, raising=False)
    broker = mqlog.open()

    async def main():
        with _bootstrap.install(broker):
            c = consumer("t", group_id="g")
            await c.start()
            waiter = asyncio.create_task(c.getone())
            await asyncio.sleep(0)  # let it start waiting
            await asyncio.get_running_loop().run_in_executor(None, broker.close)
            with pytest.raises(ConsumerStoppedError):
                await waiter
            await c.stop()  # still completes

    run(main())


# -- fault injection ------------------------------------------------------------------


def test_fault_injection(broker):
    broker.create_topic("t")
    tp = TP("t", 0)

    async def main():
        loop = asyncio.get_running_loop()
        async with AIOKafkaProducer(bootstrap_servers=BOOT) as p:
            broker.faults.fail_next("send", KafkaTimeoutError)
            broker.faults.fail_next("send", core_errors.KafkaTimeoutError)
            for _ in range(2):
                fut = await p.send("t", b"lost")  # the error is on the future
                with pytest.raises(KafkaTimeoutError, match="injected"):
                    await fut
            await p.send_and_wait("t", b"kept")
        c = consumer(group_id="g", enable_auto_commit=False)
        c.assign([tp])
        await c.start()
        broker.faults.fail_next("poll", core_errors.KafkaTimeoutError, times=2)
        with pytest.raises(KafkaTimeoutError):
            await c.getone()
        with pytest.raises(KafkaTimeoutError):
            await c.getmany(timeout_ms=100)
        assert (await c.getone()).value == b"kept"
        broker.faults.fail_next("commit", CommitFailedError)
        with pytest.raises(CommitFailedError, match="injected"):
            await c.commit()
        assert await c.committed(tp) is None
        await c.commit()
        assert await c.committed(tp) == 1
        # Latency is awaited: the loop keeps running meanwhile.
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)  # the measurement, not a wait

        task = asyncio.create_task(ticker())
        broker.faults.delay("poll", 0.2)
        start = loop.time()
        assert await c.getmany(timeout_ms=0) == {}
        elapsed = loop.time() - start
        task.cancel()
        broker.faults.clear()
        await c.stop()
        return elapsed, ticks

    elapsed, ticks = run(main())
    assert elapsed >= 0.19 and ticks >= 3
    assert [r.value for r in broker.messages("t")] == [b"kept"]


# -- the admin client and the assignor modules ------------------------------------------


def test_admin_client_creates_topics_at_start_up(broker):
    # The start-up code of aiokafka services: create the topics, ignore "exists".
    from mqlog.aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, \
        RecordsToDelete

    async def scenario():
        admin = AIOKafkaAdminClient(bootstrap_servers=BOOT, client_id="setup")
        with pytest.raises(IllegalStateError, match="start"):
            await admin.list_topics()
        await admin.start()
        resp = await admin.create_topics([NewTopic("orders", 3, 1),
                                          NewTopic("audit", num_partitions=1,
                                                   replication_factor=1,
                                                   topic_configs={"retention.ms": "1000"})])
        assert resp.topic_errors == [("orders", 0, None), ("audit", 0, None)]
        again = await admin.create_topics([NewTopic("orders", 3, 1)])
        assert again.topic_errors[0][:2] == ("orders", 36)  # reported, not raised
        assert sorted(await admin.list_topics()) == ["audit", "orders"]
        [orders] = await admin.describe_topics(["orders"])
        assert (orders["topic"], orders["error_code"]) == ("orders", 0)
        assert [p["partition"] for p in orders["partitions"]] == [0, 1, 2]
        assert (await admin.describe_cluster())["controller_id"] == 0
        await admin.create_partitions({"orders": NewPartitions(4)})
        with pytest.raises(kafka_errors.InvalidPartitionsError):
            await admin.create_partitions({"orders": NewPartitions(2)})
        await produce("audit", [b"a", b"b", b"c"])
        low = await admin.delete_records({TP("audit", 0): RecordsToDelete(2)})
        assert low == {TP("audit", 0): 2}
        c = consumer("audit", group_id="g", enable_auto_commit=False)
        await c.start()
        await c.getone()
        await c.commit()
        await c.stop()
        assert await admin.list_consumer_groups() == [("g", "consumer")]
        offsets = await admin.list_consumer_group_offsets("g")
        assert offsets[TP("audit", 0)].offset == 3
        assert await admin.delete_consumer_groups(["g"]) == [("g", 0)]
        deleted = await admin.delete_topics(["audit", "nope"])
        assert deleted.topic_error_codes == [("audit", 0), ("nope", 3)]
        await admin.close()
        await admin.close()
        with pytest.raises(IllegalStateError, match="closed"):
            await admin.list_topics()

    run(scenario())
    assert broker.topics()["orders"].partitions == 4
    with pytest.raises(TypeError, match="unexpected keyword argument 'bootstrap_server'"):
        from mqlog.aiokafka.admin import AIOKafkaAdminClient
        AIOKafkaAdminClient(bootstrap_server=BOOT)


def test_assignor_classes_from_aiokafkas_modules(broker):
    from mqlog.aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from mqlog.aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    broker.create_topic("t", 2)

    async def scenario():
        c = consumer("t", group_id="g", partition_assignment_strategy=(
            RangePartitionAssignor, RoundRobinPartitionAssignor))
        await c.start()
        assert c.assignment() == {TP("t", 0), TP("t", 1)}
        admin = broker.admin()
        assert admin.describe_consumer_groups(["g"])["g"].protocol == "range"  # the first
        admin.close()
        await c.stop()

    run(scenario())
