"""Wake-ups by partition (mqlog._wakeups): a waiting consumer is woken for records in
its own partitions and for broker-wide events, never for other partitions' records."""

import threading

import mqlog
from mqlog import TopicPartition as TP
from mqlog._wakeups import Wakeups

from helpers import run_in_thread

TIMEOUT = 30


def test_waiters_are_notified_for_their_partitions_only():
    lock = threading.Lock()
    wakeups = Wakeups(lock)
    a, b = wakeups.waiter(), wakeups.waiter()
    wakeups.watch(a, ("p1", "p2"))
    wakeups.watch(b, ("p2",))
    with lock:
        wakeups.notify(["p1"])
    assert (a.wakes, b.wakes) == (1, 0)
    with lock:
        wakeups.notify(["p2", "p3"])
    assert (a.wakes, b.wakes) == (2, 1)
    with lock:
        wakeups.notify(None)  # broker-wide: everyone, watching or not
    assert (a.wakes, b.wakes) == (3, 2)
    wakeups.watch(a, ("p3",))  # re-watching replaces the set
    with lock:
        wakeups.notify(["p1"])
    assert a.wakes == 3 and wakeups.watching("p1") == 0 and wakeups.watching("p3") == 1
    wakeups.forget(a)  # one last wake-up: a thread still waiting sees its owner closed
    assert a.wakes == 4
    wakeups.forget(a)  # idempotent
    with lock:
        wakeups.notify(None)
    assert (a.wakes, b.wakes) == (5, 3) and wakeups.watching("p3") == 0
    wakeups.watch(a, ("p3",))  # a forgotten waiter is not watched again
    assert wakeups.watching("p3") == 0


def test_a_notification_before_the_wait_is_not_lost():
    lock = threading.Lock()
    wakeups = Wakeups(lock)
    w = wakeups.waiter()
    wakeups.watch(w, ("p",))
    seen = w.wakes  # read before looking for records
    with lock:
        wakeups.notify(["p"])  # records came after the look
    with w:
        assert w.wait(seen, TIMEOUT) is True  # returns at once, without waiting
    with w:
        assert w.wait(w.wakes, 0) is False  # nothing new: the (zero) timeout ends it


def test_a_waiting_thread_is_woken():
    lock = threading.Lock()
    wakeups = Wakeups(lock)
    w = wakeups.waiter()
    wakeups.watch(w, ("p",))
    waiting = threading.Event()
    w.on_wake = None
    result = []

    def wait():
        with w:
            seen = w.wakes
            waiting.set()
            result.append(w.wait(seen, TIMEOUT))

    t = threading.Thread(target=wait)
    t.start()
    assert waiting.wait(TIMEOUT)
    with lock:  # taken only once the waiter released it inside wait()
        wakeups.notify(["p"])
    t.join(TIMEOUT)
    assert not t.is_alive() and result == [True]


def test_commits_to_other_topics_do_not_wake_a_consumer(broker):
    broker.create_topic("mine")
    broker.create_topic("other")
    mine = broker.consumer(auto_offset_reset="earliest")
    mine.assign([TP("mine", 0)])
    theirs = broker.consumer(auto_offset_reset="earliest")
    theirs.assign([TP("other", 0)])
    assert mine.poll(timeout_ms=0) == {} and theirs.poll(timeout_ms=0) == {}  # watching
    before_mine, before_theirs = mine._waiter.wakes, theirs._waiter.wakes
    with broker.producer() as p:
        for i in range(10):
            p.send("other", b"%d" % i).get(TIMEOUT)  # ten commits
    assert mine._waiter.wakes == before_mine
    assert theirs._waiter.wakes >= before_theirs + 10
    with broker.producer() as p:
        p.send("mine", b"x").get(TIMEOUT)
    assert mine._waiter.wakes > before_mine
    assert [r.value for r in mine.poll(timeout_ms=TIMEOUT)[TP("mine", 0)]] == [b"x"]
    mine.close()
    theirs.close()
    plogs = [broker._partition(TP(t, 0)) for t in ("mine", "other")]
    assert [broker._wakeups.watching(plog) for plog in plogs] == [0, 0]  # forgotten


def test_a_blocked_poll_returns_when_its_partition_gets_records(broker):
    broker.create_topic("t", partitions=2)
    consumer = broker.consumer(auto_offset_reset="earliest")
    consumer.assign([TP("t", 1)])
    t, box = _blocked_poll(consumer)
    with broker.producer() as p:
        p.send("t", b"p0", partition=0).get(TIMEOUT)  # not its partition: keeps waiting
        p.send("t", b"p1", partition=1).get(TIMEOUT)
    t.join(TIMEOUT)
    assert not t.is_alive()
    assert [r.value for r in box["result"][TP("t", 1)]] == [b"p1"]
    consumer.close()


def test_a_consumer_dropped_without_close_stops_being_notified(broker):
    import gc

    broker.create_topic("t")
    consumer = broker.consumer(auto_offset_reset="earliest")
    consumer.assign([TP("t", 0)])
    consumer.poll(timeout_ms=0)
    plog = broker._partition(TP("t", 0))
    assert broker._wakeups.watching(plog) == 1
    del consumer
    gc.collect()
    assert broker._wakeups.watching(plog) == 0


def test_paused_partitions_are_not_watched(broker):
    broker.create_topic("t", partitions=2)
    consumer = broker.consumer(auto_offset_reset="earliest")
    consumer.assign([TP("t", 0), TP("t", 1)])
    consumer.pause(TP("t", 0))
    consumer.poll(timeout_ms=0)
    p0, p1 = (broker._partition(TP("t", i)) for i in range(2))
    assert (broker._wakeups.watching(p0), broker._wakeups.watching(p1)) == (0, 1)
    consumer.resume(TP("t", 0))
    consumer.poll(timeout_ms=0)
    assert (broker._wakeups.watching(p0), broker._wakeups.watching(p1)) == (1, 1)
    consumer.close()


def test_topic_deleted_and_recreated_is_watched_anew():
    with mqlog.open() as broker:
        broker.create_topic("t")
        consumer = broker.consumer(auto_offset_reset="earliest")
        consumer.assign([TP("t", 0)])
        consumer.poll(timeout_ms=0)
        old = broker._partition(TP("t", 0))
        broker.delete_topic("t")
        broker.create_topic("t")
        new = broker._partition(TP("t", 0))
        assert consumer.poll(timeout_ms=0) == {}
        assert (broker._wakeups.watching(old), broker._wakeups.watching(new)) == (0, 1)
        with broker.producer() as p:
            p.send("t", b"again").get(TIMEOUT)
        assert [r.value for r in consumer.poll(timeout_ms=TIMEOUT)[TP("t", 0)]] == [b"again"]
        consumer.close()


def _blocked_poll(consumer):
    """Start a thread blocked in ``consumer.poll`` (30 s); returns (thread, box)."""
    return run_in_thread(lambda: consumer.poll(timeout_ms=TIMEOUT * 1000))


def test_closing_the_broker_wakes_a_blocked_poll():
    broker = mqlog.open()
    broker.create_topic("t")
    consumer = broker.consumer(auto_offset_reset="earliest")
    consumer.assign([TP("t", 0)])
    assert consumer.poll(timeout_ms=0) == {}
    t, box = _blocked_poll(consumer)
    broker.close()  # closes the consumer first, then wakes everyone
    t.join(10)  # far below the poll's 30 s: the close woke it
    assert not t.is_alive()
    assert isinstance(box["error"], mqlog.errors.ClosedError)


def test_a_poll_on_a_deleted_then_recreated_topic_gets_the_new_records(broker):
    broker.create_topic("t")
    consumer = broker.consumer(auto_offset_reset="earliest")
    consumer.assign([TP("t", 0)])
    assert consumer.poll(timeout_ms=0) == {}
    t, box = _blocked_poll(consumer)
    broker.delete_topic("t")
    broker.create_topic("t")  # wakes the poll, which watches the new partition
    with broker.producer() as p:
        p.send("t", b"new").get(TIMEOUT)
    t.join(10)
    assert not t.is_alive()
    assert [r.value for r in box["result"][TP("t", 0)]] == [b"new"]
    consumer.close()


class _ReentryCheckingLock:
    """A lock that records (and refuses, instead of deadlocking) an acquire by the
    thread already holding it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._owner = None
        self.reentered = False

    def acquire(self, blocking=True, timeout=-1):
        if self._owner == threading.get_ident():
            self.reentered = True
            raise RuntimeError("the lock was taken again by the thread holding it")
        if self._lock.acquire(blocking, timeout):
            self._owner = threading.get_ident()
            return True
        return False

    def release(self):
        self._owner = None
        self._lock.release()

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()


def test_a_consumer_collected_inside_a_collection_under_the_lock_does_not_deadlock(broker):
    """The finaliser of a consumer dropped without close() never takes the data lock:
    a collection can run on a thread that holds it (the writer notifying), and the
    lock is not reentrant."""
    import gc

    broker.create_topic("t")
    wakeups = broker._wakeups
    checking = _ReentryCheckingLock()
    real, wakeups._lock = wakeups._lock, checking
    try:
        def drop_cyclic_consumer():
            consumer = broker.consumer(auto_offset_reset="earliest")
            consumer.assign([TP("t", 0)])
            consumer.poll(timeout_ms=0)
            consumer.self_ref = consumer  # a cycle: only the cyclic collector frees it

        drop_cyclic_consumer()
        with checking:
            gc.collect()
        assert not checking.reentered
    finally:
        wakeups._lock = real
    assert wakeups.watching(broker._partition(TP("t", 0))) == 0  # dropped at this look


def test_a_multi_partition_consumer_watches_once_not_every_poll(broker):
    broker.create_topic("t", partitions=4)
    consumer = broker.consumer(auto_offset_reset="earliest")
    consumer.assign([TP("t", p) for p in range(4)])
    wakeups = broker._wakeups
    calls = []  # re-registrations (each replaces the watch under the lock)
    original = wakeups._unwatch
    wakeups._unwatch = lambda waiter: (calls.append(waiter.watched), original(waiter))
    for _ in range(10):
        consumer.poll(timeout_ms=0)
    assert len(calls) == 1
    consumer.close()
