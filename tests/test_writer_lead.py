"""A thread waiting for its own record writes it when the writer thread is idle
(LogWriter.lead): callbacks still run on the writer thread, in order; the main thread
never leads; a paused writer is never bypassed."""

import threading
import time

import pytest

import mqlog
from mqlog.errors import KafkaTimeoutError

from helpers import run_in_thread

TIMEOUT = 30


def in_thread(fn):
    """Run ``fn`` in a thread named "worker" (not the main one) and wait for it;
    return its result or raise its error."""
    t, box = run_in_thread(fn, name="worker")
    t.join(TIMEOUT)
    assert not t.is_alive(), "the worker thread hung"
    if "error" in box:
        raise box["error"]
    return box["result"]


def committing_threads(broker):
    """Names of the threads that commit producer batches, recorded from now on."""
    names = []
    broker._writer.on_point = lambda point: names.append(
        threading.current_thread().name) if point == "before_commit" else None
    return names


def test_a_waiting_worker_thread_writes_its_own_records(broker):
    broker.create_topic("t")
    names = committing_threads(broker)
    producer = broker.producer()

    def waited_sends():
        return [producer.send("t", b"%d" % i).get(TIMEOUT).offset for i in range(50)]

    assert in_thread(waited_sends) == list(range(50))
    assert "worker" in names  # most commits were made by the waiting thread itself
    assert [r.value for r in broker.messages("t")] == [b"%d" % i for i in range(50)]
    producer.close()


def test_the_main_thread_never_leads(broker):
    broker.create_topic("t")
    names = committing_threads(broker)
    with broker.producer() as producer:
        for i in range(20):
            producer.send("t", b"%d" % i).get(TIMEOUT)
    assert names and set(names) == {"mqlog-writer"}


def test_callbacks_run_on_the_writer_thread_in_send_order(broker):
    broker.create_topic("t")
    producer = broker.producer()
    seen = []
    threads = set()
    done = threading.Event()
    n = 200

    def on_sent(metadata):
        seen.append(metadata.offset)
        threads.add(threading.current_thread().name)
        if len(seen) == n:
            done.set()

    def sends():
        for i in range(n):
            future = producer.send("t", b"%d" % i).add_callback(on_sent)
            if i % 3 == 0:
                future.get(TIMEOUT)  # a led cycle now and then, writer cycles between
        producer.flush(TIMEOUT)

    in_thread(sends)
    assert done.wait(TIMEOUT)
    assert seen == list(range(n))
    assert threads == {"mqlog-writer"}
    producer.close()


def test_a_send_batch_future_and_flush_lead_too(broker):
    broker.create_topic("t")
    names = committing_threads(broker)
    producer = broker.producer()

    def batches():
        for i in range(20):
            producer.send_batch("t", [b"a%d" % i, b"b%d" % i]).get(TIMEOUT)
            producer.send("t", b"c%d" % i)
            producer.flush(TIMEOUT)

    in_thread(batches)
    assert "worker" in names
    assert len(broker.messages("t")) == 60
    producer.close()


def test_a_paused_writer_is_not_bypassed(broker):
    broker.create_topic("t")
    producer = broker.producer()
    with broker._writer.paused():
        future = producer.send("t", b"held")
        with pytest.raises(KafkaTimeoutError):
            in_thread(lambda: future.get(0.2))
        assert broker.messages("t") == []
    assert in_thread(lambda: future.get(TIMEOUT)).offset == 0
    producer.close()


def test_a_callback_that_waits_is_still_refused(broker):
    """Callbacks run on the writer thread even when a worker wrote the record, so a
    wait inside one is refused there as before (it would wait for itself)."""
    broker.create_topic("t")
    producer = broker.producer()
    errors = []
    done = threading.Event()

    def callback(_metadata):
        producer.send("t", b"from the callback")  # something for a flush to wait for
        try:
            producer.flush(1)
        except mqlog.errors.IllegalStateError as exc:
            errors.append(exc)
        done.set()

    def send():
        producer.send("t", b"x").add_callback(callback)
        producer.send("t", b"y").get(TIMEOUT)

    in_thread(send)
    assert done.wait(TIMEOUT)
    assert len(errors) == 1
    producer.close()


def test_a_thread_leading_in_a_loop_leaves_the_writer_its_turns(broker):
    """Leading refuses while callbacks wait for the writer thread: a worker doing
    waited sends in a loop cannot pile them up (nor starve the writer's timeouts)."""
    broker.create_topic("t")
    producer = broker.producer()
    writer = broker._writer
    ran = []

    def loop():
        most = 0
        for i in range(2000):
            producer.send("t", b"%d" % i).add_callback(ran.append).get(TIMEOUT)
            most = max(most, len(writer._deferred))
        return most

    assert in_thread(loop) <= 5  # queued callbacks stay bounded
    producer.flush(TIMEOUT)
    assert len(ran) >= 1990  # nearly all ran during the loop, not after it
    producer.close()


def test_a_transaction_times_out_while_another_thread_leads(broker):
    broker.create_topic("t")
    broker.create_topic("busy")
    txn = broker.producer(transactional_id="slow", transaction_timeout_ms=200)
    txn.init_transactions()
    txn.begin_transaction()
    txn.send("t", b"left open").get(TIMEOUT)
    plog = broker._partition(mqlog.TopicPartition("t", 0))
    assert plog.open_txns
    producer = broker.producer()

    def waited_sends_until_aborted():
        deadline = time.monotonic() + 10
        while plog.open_txns and time.monotonic() < deadline:
            producer.send("busy", b"x").get(TIMEOUT)
        return plog.open_txns

    assert in_thread(waited_sends_until_aborted) == {}  # the timeout abort ran
    producer.close()


def test_a_callback_added_after_get_runs_after_the_earlier_ones(broker):
    broker.create_topic("t")
    producer = broker.producer()
    orders = []

    def sends():
        for i in range(50):
            order = []
            both = threading.Event()
            future = producer.send("t", b"%d" % i)
            future.add_callback(lambda _m, order=order: order.append("first"))
            future.get(TIMEOUT)
            future.add_callback(lambda _m, order=order, both=both: (
                order.append("second"), both.set()))
            assert both.wait(TIMEOUT)
            orders.append(order)

    in_thread(sends)
    assert all(order == ["first", "second"] for order in orders)
    producer.close()


def test_a_short_timeout_never_leads(broker):
    """A caller waiting less than LEAD_MIN_TIMEOUT_S never runs the cycle itself:
    that cycle (a slow disk here) could outlast the wait it asked for."""
    broker.create_topic("t")
    producer = broker.producer()
    writer = broker._writer
    release = threading.Event()
    writer.on_point = lambda point: release.wait(TIMEOUT) if point == "before_commit" \
        else None
    try:
        future = producer.send("t", b"slow")
        with pytest.raises(KafkaTimeoutError):
            in_thread(lambda: future.get(0.05))
        with pytest.raises(KafkaTimeoutError):
            in_thread(lambda: producer.flush(0.05))
    finally:
        release.set()
        writer.on_point = None
    assert future.get(TIMEOUT).offset == 0
    producer.close()


def test_a_lingering_batch_is_written_on_time_after_a_led_cycle(broker):
    """The writer thread, woken while a caller leads, looks again when that cycle ends:
    it then waits for the next linger deadline, not for a wake-up that may never come."""
    broker.create_topic("t")
    broker.create_topic("u")
    lingering = broker.producer(linger_ms=50)
    fast = broker.producer()

    def rounds():
        late = 0
        for _ in range(10):
            future = lingering.send("u", b"late")
            fast.send("t", b"x").get(TIMEOUT)  # a led cycle (the other batch lingers)
            try:
                future.get(2)  # due after 50 ms
            except KafkaTimeoutError:
                late += 1
        return late

    assert in_thread(rounds) == 0
    lingering.close()
    fast.close()
