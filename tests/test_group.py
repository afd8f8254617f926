"""Consumer groups: exclusive ownership, rebalances, listeners, liveness, fencing."""

import gc
import random
import threading
import time

import pytest

import mqlog
from mqlog import ConsumerRebalanceListener, TopicPartition
from mqlog.errors import (
    CommitFailedError,
    IllegalStateError,
    InconsistentGroupProtocolError,
)
from helpers import FakeClock

TP = TopicPartition


def settle(*consumers, rounds=6):
    """Poll every consumer a few times so pending rebalance steps complete."""
    got = {c: [] for c in consumers}
    for _ in range(rounds):
        for c in consumers:
            for recs in c.poll(timeout_ms=10).values():
                got[c].extend(recs)
    return got


def member(broker, *topics, group="g", **kw):
    kw.setdefault("auto_offset_reset", "earliest")
    return broker.consumer(*topics, group_id=group, **kw)


def produce(broker, topic, n, partitions):
    with broker.producer() as p:
        for i in range(n):
            p.send(topic, b"%d" % i, partition=i % partitions)


class Recorder(ConsumerRebalanceListener):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def on_partitions_revoked(self, revoked):
        self.log.append((self.name, "revoked", sorted(revoked)))

    def on_partitions_assigned(self, assigned):
        self.log.append((self.name, "assigned", sorted(assigned)))

    def on_partitions_lost(self, lost):
        self.log.append((self.name, "lost", sorted(lost)))


def test_members_split_partitions_exclusively(broker):
    broker.create_topic("t", partitions=6)
    produce(broker, "t", 60, 6)
    a, b, c = member(broker, "t"), member(broker, "t"), member(broker, "t")
    got = settle(a, b, c)
    owned = [a.assignment(), b.assignment(), c.assignment()]
    assert all(len(o) == 2 for o in owned)
    assert set().union(*owned) == {TP("t", p) for p in range(6)}
    broker._check()
    values = sorted(int(r.value) for recs in got.values() for r in recs)
    assert values == list(range(60))  # each record once across the group


def test_members_beyond_partitions_get_nothing(broker):
    broker.create_topic("t", partitions=2)
    consumers = [member(broker, "t") for _ in range(4)]
    settle(*consumers)
    sizes = sorted(len(c.assignment()) for c in consumers)
    assert sizes == [0, 0, 1, 1]


def test_groups_are_independent(broker):
    broker.create_topic("t", partitions=2)
    produce(broker, "t", 10, 2)
    g1 = member(broker, "t", group="one")
    g2 = member(broker, "t", group="two")
    got = settle(g1, g2)
    assert len(got[g1]) == 10 and len(got[g2]) == 10
    g1.commit()
    assert g2.committed(TP("t", 0)) is None
    assert g1.committed(TP("t", 0)) == 5


def test_leaving_member_hands_over_from_committed_offset(broker):
    broker.create_topic("t", partitions=2)
    produce(broker, "t", 20, 2)
    a = member(broker, "t", enable_auto_commit=False, max_poll_records=3)
    b = member(broker, "t", enable_auto_commit=False)
    settle(a, b, rounds=3)
    a_parts = a.assignment()
    a.commit()
    a_pos = {tp: a.position(tp) for tp in a_parts}
    a.close()
    got = settle(b)
    assert b.assignment() == {TP("t", 0), TP("t", 1)}
    for tp in a_parts:  # b resumed a's partitions exactly at a's committed offsets
        first = min(r.offset for r in got[b] if r.partition == tp.partition)
        assert first == a_pos[tp]


def test_listener_order_and_commit_inside_revoked(broker):
    broker.create_topic("t", partitions=2)
    produce(broker, "t", 10, 2)
    log = []
    a = broker.consumer(group_id="g", auto_offset_reset="earliest", enable_auto_commit=False)

    class CommitOnRevoke(Recorder):
        def on_partitions_revoked(self, revoked):
            a.commit({tp: a.position(tp) for tp in revoked})
            super().on_partitions_revoked(revoked)

    a.subscribe(["t"], listener=CommitOnRevoke("a", log))
    first = settle(a)[a]
    assert len(first) == 10
    b = broker.consumer(group_id="g", auto_offset_reset="earliest")
    b.subscribe(["t"], listener=Recorder("b", log))
    second = settle(a, b)
    assert second[a] == [] and second[b] == []  # committed in revoke: nothing twice
    assert log[0] == ("a", "assigned", [TP("t", 0), TP("t", 1)])
    revoked_at = log.index(("a", "revoked", [TP("t", 0), TP("t", 1)]))
    b_assigned = next(i for i, e in enumerate(log) if e[0] == "b" and e[1] == "assigned")
    assert revoked_at < b_assigned  # revocation strictly before the new owner gets them


def test_auto_commit_before_revocation_and_on_close(broker):
    broker.create_topic("t", partitions=2)
    produce(broker, "t", 10, 2)
    a = member(broker, "t")  # enable_auto_commit defaults to True
    settle(a)
    b = member(broker, "t")
    settle(a, b)
    for p in range(2):
        assert broker.committed_offset("g", TP("t", p)).offset == 5
    produce(broker, "t", 2, 2)
    settle(a, b)
    a.close()
    b.close()
    assert [broker.committed_offset("g", TP("t", p)).offset for p in range(2)] == [6, 6]


def test_commit_fencing(broker):
    broker.create_topic("t", partitions=2)
    a = member(broker, "t", enable_auto_commit=False)
    b = member(broker, "t", enable_auto_commit=False)
    settle(a, b)
    mine = next(iter(a.assignment()))
    theirs = next(iter(b.assignment()))
    a.commit({mine: 0})
    with pytest.raises(CommitFailedError, match=r"does not own t\[\d\].*call poll\(\) to rejoin"):
        a.commit({theirs: 0})
    manual = broker.consumer(group_id="g")
    manual.assign([theirs])
    with pytest.raises(CommitFailedError, match="has active members"):
        manual.commit({theirs: 0})


def test_slow_member_is_evicted_and_loses_partitions(broker):
    clock = FakeClock()
    broker._coordinator._clock = clock
    broker.create_topic("t", partitions=2)
    log = []
    slow = broker.consumer(group_id="g", max_poll_interval_ms=1000, enable_auto_commit=False)
    slow.subscribe(["t"], listener=Recorder("slow", log))
    fast = broker.consumer(group_id="g", max_poll_interval_ms=1000)
    fast.subscribe(["t"], listener=Recorder("fast", log))
    settle(slow, fast)
    owned_by_slow = slow.assignment()
    assert len(owned_by_slow) == 1
    clock.advance(0.6)
    fast.poll(timeout_ms=0)
    clock.advance(0.6)  # slow has not polled for 1.2 s > max_poll_interval_ms
    settle(fast)
    assert fast.assignment() == {TP("t", 0), TP("t", 1)}
    with pytest.raises(CommitFailedError, match="removed from the group.*max_poll_interval_ms"):
        slow.commit({next(iter(owned_by_slow)): 0})
    slow.poll(timeout_ms=0)  # learns it was evicted: partitions lost, then rejoins
    assert ("slow", "lost", sorted(owned_by_slow)) in log
    settle(slow, fast)
    assert len(slow.assignment()) == 1 and len(fast.assignment()) == 1
    broker._check()


def test_garbage_collected_consumer_leaves(broker):
    broker.create_topic("t", partitions=2)
    keep = member(broker, "t")
    gone = member(broker, "t")
    settle(keep, gone)
    assert len(keep.assignment()) == 1
    del gone
    gc.collect()
    settle(keep)
    assert len(keep.assignment()) == 2


def test_pattern_subscription_picks_up_new_topics(broker):
    broker.create_topic("orders-eu")
    c = broker.consumer(group_id="g", auto_offset_reset="earliest")
    c.subscribe(pattern=r"orders-.*")
    settle(c)
    assert c.assignment() == {TP("orders-eu", 0)}
    broker.create_topic("orders-us", partitions=2)
    broker.create_topic("billing")
    settle(c)
    assert c.assignment() == {TP("orders-eu", 0), TP("orders-us", 0), TP("orders-us", 1)}
    assert c.subscription() == {"orders-eu", "orders-us"}
    broker.create_partitions("orders-eu", 2)
    settle(c)
    assert TP("orders-eu", 1) in c.assignment()


def test_cooperative_revokes_only_what_moves(broker):
    broker.create_topic("t", partitions=4)
    log = []
    a = broker.consumer(group_id="g", partition_assignment_strategy=["cooperative-sticky"])
    a.subscribe(["t"], listener=Recorder("a", log))
    settle(a)
    assert len(a.assignment()) == 4
    b = broker.consumer(group_id="g", partition_assignment_strategy=["cooperative-sticky"])
    b.subscribe(["t"], listener=Recorder("b", log))
    settle(a, b)
    assert len(a.assignment()) == 2 and len(b.assignment()) == 2
    a_revoked = [e for e in log if e[:2] == ("a", "revoked")]
    assert len(a_revoked) == 1 and len(a_revoked[0][2]) == 2  # only the two that moved
    assert set(a_revoked[0][2]) == b.assignment()
    b_assigned = [e[2] for e in log if e[:2] == ("b", "assigned")]
    assert sorted(tp for tps in b_assigned for tp in tps) == sorted(b.assignment())
    assert broker._coordinator.describe("g").protocol == "cooperative-sticky"
    broker._check()


def test_protocol_is_first_common_strategy(broker):
    broker.create_topic("t", partitions=2)
    a = member(broker, "t", partition_assignment_strategy=["roundrobin", "range"])
    settle(a)
    assert broker._coordinator.describe("g").protocol == "roundrobin"
    b = member(broker, "t", partition_assignment_strategy=["range"])
    settle(a, b)
    assert broker._coordinator.describe("g").protocol == "range"
    with pytest.raises(InconsistentGroupProtocolError, match="no partition_assignment_strategy"):
        member(broker, "t", partition_assignment_strategy=["sticky"])


def test_static_member_restart_keeps_assignment_without_rebalance(broker):
    broker.create_topic("t", partitions=4)
    log = []
    other = broker.consumer(group_id="g")
    other.subscribe(["t"], listener=Recorder("other", log))
    static = member(broker, "t", group_instance_id="worker-1")
    settle(other, static)
    before = static.assignment()
    generation = broker._coordinator.describe("g").generation
    events = len(log)
    static.close()
    settle(other)
    again = member(broker, "t", group_instance_id="worker-1")
    settle(other, again)
    assert again.assignment() == before
    assert broker._coordinator.describe("g").generation == generation
    assert len(log) == events  # the other member saw no rebalance at all


def test_static_takeover_sharing_no_assignor_is_refused_before_it_happens(broker):
    broker.create_topic("t", partitions=2)
    other = member(broker, "t", partition_assignment_strategy=["range"])
    static = member(broker, "t", group_instance_id="w1",
                    partition_assignment_strategy=["range"])
    settle(other, static)
    before = static.assignment()
    with pytest.raises(InconsistentGroupProtocolError, match="no partition_assignment"):
        member(broker, "t", group_instance_id="w1",
               partition_assignment_strategy=["roundrobin"])
    settle(other, static)  # the old member was not fenced: it polls on, same partitions
    assert static.assignment() == before
    assert len(broker._coordinator.describe("g").members) == 2


def test_static_takeover_with_other_assignors_chooses_the_protocol_again(broker):
    broker.create_topic("t", partitions=2)
    both = ["range", "roundrobin"]
    other = member(broker, "t", partition_assignment_strategy=both)
    static = member(broker, "t", group_instance_id="w1", partition_assignment_strategy=both)
    settle(other, static)
    assert broker._coordinator.describe("g").protocol == "range"
    static.close()
    again = member(broker, "t", group_instance_id="w1",
                   partition_assignment_strategy=["roundrobin"])
    settle(other, again)
    # The newcomer does not offer range: a round chose roundrobin, which both offer.
    assert broker._coordinator.describe("g").protocol == "roundrobin"
    assert other.assignment() | again.assignment() == {TP("t", 0), TP("t", 1)}
    assert not other.assignment() & again.assignment()


def test_resubscribe_can_change_assignors_and_refuses_incompatible_ones(broker):
    from mqlog.assignors import ASSIGNORS

    broker.create_topic("t", partitions=2)
    a = member(broker, "t", partition_assignment_strategy=["range", "roundrobin"])
    b = member(broker, "t", partition_assignment_strategy=["range", "roundrobin"])
    settle(a, b)
    coord = broker._coordinator
    mb = b._membership.member
    with pytest.raises(InconsistentGroupProtocolError):
        coord.resubscribe("g", mb, mb.topics, None, (ASSIGNORS["sticky"],))
    assert [x.name for x in mb.assignors] == ["range", "roundrobin"]  # unchanged
    coord.resubscribe("g", mb, mb.topics, None, (ASSIGNORS["roundrobin"],))
    settle(a, b)
    assert coord.describe("g").protocol == "roundrobin"


def test_solo_subscription_without_group(broker):
    broker.create_topic("t", partitions=2)
    produce(broker, "t", 4, 2)
    c = broker.consumer("t", auto_offset_reset="earliest")
    assert len(settle(c)[c]) == 4
    assert c.assignment() == {TP("t", 0), TP("t", 1)}
    broker.create_partitions("t", 3)
    settle(c)
    assert TP("t", 2) in c.assignment()


def test_assign_and_subscribe_are_exclusive(broker):
    broker.create_topic("t")
    c = member(broker, "t")
    with pytest.raises(IllegalStateError, match="unsubscribe"):
        c.assign([TP("t", 0)])
    c.unsubscribe()
    c.assign([TP("t", 0)])
    with pytest.raises(IllegalStateError, match="unsubscribe"):
        c.subscribe(["t"])
    with pytest.raises(IllegalStateError, match="topics or pattern"):
        broker.consumer(group_id="x").subscribe()


def test_describe_and_list(broker):
    broker.create_topic("t", partitions=2)
    a = member(broker, "t", client_id="alpha")
    settle(a)
    d = broker._coordinator.describe("g")
    assert d.state == "Stable" and d.protocol == "range"
    assert d.members[0].client_id == "alpha"
    assert d.members[0].assignment == (TP("t", 0), TP("t", 1))
    a.close()
    # The last member left: the coordinator forgets the group, as Kafka removes empty
    # groups; its committed offsets keep it listed (as Empty) by the admin.
    assert "g" not in broker._coordinator.active_groups()
    assert [(g.group_id, g.state) for g in broker.admin().list_consumer_groups()] == [
        ("g", "Empty")]


def test_poll_returns_within_timeout_while_rebalance_waits(broker):
    broker.create_topic("t", partitions=2)
    a = member(broker, "t")
    settle(a)
    member(broker, "t")  # joins, never polls: the round waits for it
    start = time.monotonic()
    a.poll(timeout_ms=200)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_exclusive_ownership_under_churn(broker, strategy, long_run):
    """Members join and leave continuously; every record a member returns belongs to
    a partition it owned at that moment, and no record is lost (at-least-once)."""
    partitions, total = 6, 3000
    broker.create_topic("churn", partitions=partitions)
    seen = []
    seen_lock = threading.Lock()
    errors = []
    stop = threading.Event()
    duration = 20.0 if long_run else 3.0

    def worker(seed):
        rng = random.Random(seed)
        while not stop.is_set():
            c = broker.consumer("churn", group_id="churn", auto_offset_reset="earliest",
                                partition_assignment_strategy=[strategy],
                                max_poll_records=20)
            try:
                for _ in range(rng.randint(1, 30)):
                    for tp, recs in c.poll(timeout_ms=5).items():
                        if tp not in c.assignment():
                            errors.append(f"record from {tp} not owned")
                        with seen_lock:
                            seen.extend((tp.partition, r.offset) for r in recs)
                    broker._coordinator._check()
            except Exception as exc:  # handed to the test
                errors.append(repr(exc))
            finally:
                c.close()

    producer = broker.producer()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    for i in range(total):
        producer.send("churn", b"%d" % i, partition=i % partitions)
        if i % 300 == 0:
            producer.flush()
    producer.flush()
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline and not errors:
        stop.wait(0.05)  # let the churn run for the test's duration
    stop.set()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    assert errors == []
    # Anything not yet consumed is read by a final member from the committed offsets.
    last = broker.consumer("churn", group_id="churn", auto_offset_reset="earliest")
    for _ in range(50):
        for tp, recs in last.poll(timeout_ms=20).items():
            seen.extend((tp.partition, r.offset) for r in recs)
    last.close()
    assert set(seen) == {(i % partitions, i // partitions) for i in range(total)}


def test_admin_group_views(broker):
    broker.create_topic("t", partitions=2)
    produce(broker, "t", 10, 2)
    a = member(broker, "t", enable_auto_commit=False, client_id="alpha")
    settle(a)
    a.commit({TP("t", 0): 3})
    admin = broker.admin()
    assert admin.list_consumer_groups() == [mqlog.GroupListing("g", "Stable")]
    desc = admin.describe_consumer_groups(["g"])["g"]
    assert desc.members[0].assignment == (TP("t", 0), TP("t", 1))
    assert admin.list_consumer_group_offsets("g") == {TP("t", 0): mqlog.OffsetAndMetadata(3)}
    lag = admin.lag("g")
    assert lag[TP("t", 0)] == mqlog.GroupLag(3, 5, 2)
    assert lag[TP("t", 1)] == mqlog.GroupLag(None, 5, 5)
    with pytest.raises(IllegalStateError, match="active members"):
        admin.alter_consumer_group_offsets("g", {TP("t", 0): 0})
    a.close(autocommit=False)
    admin.alter_consumer_group_offsets("g", {TP("t", 1): 4})
    assert admin.lag("g")[TP("t", 1)] == mqlog.GroupLag(4, 5, 1)
    assert admin.list_consumer_groups() == [mqlog.GroupListing("g", "Empty")]


def test_stalled_member_mid_batch_loses_nothing(broker):
    """A member stalls after taking records and before committing: it is evicted and
    the new owner re-reads from the committed offset (at-least-once)."""
    clock = FakeClock()
    broker._coordinator._clock = clock
    broker.create_topic("t", partitions=1)
    produce(broker, "t", 10, 1)
    stalled = member(broker, "t", enable_auto_commit=False, max_poll_records=4,
                     max_poll_interval_ms=1000)
    first = settle(stalled, rounds=1)[stalled]
    stalled.commit({TP("t", 0): first[1].offset + 1})  # processed two of them
    taker = member(broker, "t", enable_auto_commit=False, max_poll_interval_ms=1000)
    taker.poll(timeout_ms=0)
    clock.advance(2)  # the stalled member never polls again
    got = settle(taker)[taker]
    assert [r.offset for r in got] == list(range(2, 10))


def test_member_evicted_inside_its_revoke_listener_takes_nothing(broker):
    """(review) A cooperative member evicted while its listener runs must not take
    partitions afterwards, or they would be owned by a non-member forever."""
    clock = FakeClock()
    broker._coordinator._clock = clock
    broker.create_topic("t", partitions=4)
    cs = ["cooperative-sticky"]
    other = {}

    class EvictMeDuringRevoke(ConsumerRebalanceListener):
        armed = False

        def on_partitions_revoked(self, revoked):
            if self.armed:
                self.armed = False
                clock.advance(5)  # longer than max_poll_interval_ms
                other["b"].poll(timeout_ms=0)  # b's heartbeat evicts a

    listener = EvictMeDuringRevoke()
    a = broker.consumer(group_id="g", partition_assignment_strategy=cs,
                        max_poll_interval_ms=1000)
    a.subscribe(["t"], listener=listener)
    settle(a)
    other["b"] = member(broker, "t", partition_assignment_strategy=cs,
                        max_poll_interval_ms=60_000)
    listener.armed = True
    settle(a, other["b"])
    broker._check()
    coord = broker._coordinator._groups["g"]
    assert all(owner in coord.members for owner in coord.owners.values())
    assert len(a.assignment()) + len(other["b"].assignment()) == 4


def test_group_forgotten_while_a_revoke_listener_runs(broker):
    """An eager member's revoke listener runs between "a round is open" and "joined":
    if every member is evicted meanwhile, the coordinator forgets the empty group; the
    poll must then rejoin at its next call, not fail with a KeyError."""
    broker.create_topic("t", partitions=2)
    produce(broker, "t", 4, 2)
    events = []

    class EvictEveryone(ConsumerRebalanceListener):
        armed = False

        def on_partitions_revoked(self, revoked):
            if self.armed:
                self.armed = False
                events.append(broker._coordinator.evict("g"))

        def on_partitions_assigned(self, assigned):
            pass

    listener = EvictEveryone()
    a = broker.consumer(group_id="g", auto_offset_reset="earliest")
    a.subscribe(["t"], listener=listener)
    settle(a)
    assert a.assignment() == {TP("t", 0), TP("t", 1)}
    b = member(broker, "t")
    b.poll(timeout_ms=0)  # joins: a round opens that a must join, revoking first
    listener.armed = True
    a.poll(timeout_ms=0)
    assert len(events) == 1 and len(events[0]) == 2  # a and b were both evicted
    settle(a, b)
    assert sorted(a.assignment() | b.assignment()) == [TP("t", 0), TP("t", 1)]
    assert not a.assignment() & b.assignment()
    a.close()
    b.close()


def test_pattern_matches_like_kafka_python_everywhere(broker):
    broker.create_topic("orders-eu")
    c = broker.consumer(group_id="g")
    c.subscribe(pattern="orders")  # re.match: a prefix, as kafka-python matches
    settle(c)
    assert c.subscription() == {"orders-eu"} and c.assignment() == {TP("orders-eu", 0)}


def test_iteration_commits_nothing_not_handed_out(broker):
    broker.create_topic("t", partitions=2)
    produce(broker, "t", 20, 2)
    c = member(broker, "t", enable_auto_commit=False, consumer_timeout_ms=100)
    first = next(iter(c))
    c.commit()
    c.close(autocommit=False)
    committed = {p: broker.committed_offset("g", TP("t", p)) for p in range(2)}
    assert committed[first.partition].offset == first.offset + 1
    other = 1 - first.partition
    assert committed[other] is None or committed[other].offset == 0


def test_broken_assignor_does_not_wedge_the_group(broker):
    broker.create_topic("t", partitions=2)
    calls = []

    class Flaky:
        name = "flaky"

        @staticmethod
        def assign(members, partitions):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("first call fails")
            return mqlog.assignors.range_assign(members, partitions)

    c = member(broker, "t", partition_assignment_strategy=[Flaky()])
    settle(c)
    assert c.assignment() == {TP("t", 0), TP("t", 1)} and len(calls) >= 2


def test_second_live_consumer_with_same_static_id_fences_the_first(broker):
    from mqlog.errors import FencedInstanceIdError

    broker.create_topic("t", partitions=2)
    first = member(broker, "t", group_instance_id="w1")
    settle(first)
    second = member(broker, "t", group_instance_id="w1")
    settle(second)
    with pytest.raises(FencedInstanceIdError, match="same group_instance_id 'w1'"):
        first.poll(timeout_ms=0)
    assert second.assignment() == {TP("t", 0), TP("t", 1)}


def test_closed_static_member_expires_without_other_members(broker):
    clock = FakeClock()
    broker._coordinator._clock = clock
    broker.create_topic("t")
    s = member(broker, "t", group_instance_id="w1", session_timeout_ms=1000)
    settle(s)
    s.close()
    admin = broker.admin()
    with pytest.raises(IllegalStateError):
        admin.delete_consumer_groups(["g"])  # the slot is kept for a successor
    clock.advance(2)
    admin.delete_consumer_groups(["g"])  # session expired: the group is empty


def test_round_numbers_never_repeat_when_a_group_comes_back(broker):
    """A waiter holding a group's round number must see any later change, even after
    the group was forgotten (its last member left) and created again: a count that
    restarted at 0 would come back to the number the waiter holds."""
    broker.create_topic("t")
    coord = broker._coordinator
    first = member(broker, "t")
    settle(first)
    held = coord.round_seq("g")
    first.close()
    assert coord.round_seq("g") == 0  # forgotten
    again = member(broker, "t")
    settle(again)
    assert coord.round_seq("g") > held
    assert coord.wait_round_change("g", held, 0.01)
    again.close()
