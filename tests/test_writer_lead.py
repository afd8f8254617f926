"""A thread waiting for its own record writes it when the writer thread is idle
(LogWriter.lead): callbacks still run on the writer thread, in order; the main thread
never leads; a paused writer is never bypassed."""

import threading

import pytest

import mqlog
from mqlog.errors import KafkaTimeoutError

TIMEOUT = 30


def in_thread(fn):
    """Run ``fn`` in a new (non-main) thread; return its result or raise its error."""
    out = []

    def run():
        try:
            out.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            out.append((False, exc))

    t = threading.Thread(target=run, name="worker")
    t.start()
    t.join(TIMEOUT)
    assert not t.is_alive(), "the worker thread hung"
    ok, value = out[0]
    if not ok:
        raise value
    return value


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
