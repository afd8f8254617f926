"""Assignors: exclusive, complete, balanced and (for sticky) sticky."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqlog import TopicPartition
from mqlog.assignors import (
    ASSIGNORS,
    MemberSubscription,
    range_assign,
    resolve_assignors,
    roundrobin_assign,
    sticky_assign,
)
from mqlog.errors import InvalidConfigError

TP = TopicPartition


def subs(**members):
    return {m: MemberSubscription(frozenset(topics)) for m, topics in members.items()}


def test_range_worked_examples():
    assert range_assign(subs(a="t", b="t"), {"t": 3}) == {
        "a": [TP("t", 0), TP("t", 1)], "b": [TP("t", 2)]}
    assert range_assign(subs(a="tu", b="tu"), {"t": 3, "u": 3}) == {
        "a": [TP("t", 0), TP("t", 1), TP("u", 0), TP("u", 1)],
        "b": [TP("t", 2), TP("u", 2)]}


def test_roundrobin_worked_example():
    assert roundrobin_assign(subs(a="tu", b="tu"), {"t": 3, "u": 3}) == {
        "a": [TP("t", 0), TP("t", 2), TP("u", 1)],
        "b": [TP("t", 1), TP("u", 0), TP("u", 2)]}


def test_sticky_worked_example():
    members = {"a": MemberSubscription(frozenset("t"), tuple(TP("t", p) for p in range(4))),
               "b": MemberSubscription(frozenset("t"))}
    assert sticky_assign(members, {"t": 4}) == {
        "a": [TP("t", 0), TP("t", 1)], "b": [TP("t", 2), TP("t", 3)]}


def test_more_members_than_partitions_leaves_some_idle():
    for assignor in ASSIGNORS.values():
        out = assignor.assign(subs(a="t", b="t", c="t"), {"t": 2})
        assert sorted(len(v) for v in out.values()) == [0, 1, 1], assignor.name


members_st = st.dictionaries(
    st.sampled_from(["m1", "m2", "m3", "m4", "m5"]),
    st.frozensets(st.sampled_from(["t", "u", "v"]), min_size=1), min_size=1)
topics_st = st.fixed_dictionaries({"t": st.integers(0, 9), "u": st.integers(0, 5),
                                   "v": st.integers(0, 3)})


@settings(max_examples=200, deadline=None)
@given(members=members_st, partitions=topics_st,
       name=st.sampled_from(sorted(ASSIGNORS)))
def test_every_subscribed_partition_has_exactly_one_eligible_owner(members, partitions, name):
    subscriptions = {m: MemberSubscription(t) for m, t in members.items()}
    out = ASSIGNORS[name].assign(subscriptions, partitions)
    assert set(out) == set(members)
    owners = {}
    for m, tps in out.items():
        for tp in tps:
            assert tp not in owners, f"{tp} assigned twice"
            assert tp.topic in members[m], f"{m} not subscribed to {tp.topic}"
            owners[tp] = m
    wanted = {TP(t, p) for t in set().union(*members.values()) for p in range(partitions[t])}
    assert set(owners) == wanted


@settings(max_examples=200, deadline=None)
@given(n_members=st.integers(1, 6), n_parts=st.integers(0, 30),
       name=st.sampled_from(["roundrobin", "sticky", "cooperative-sticky"]))
def test_balanced_when_subscriptions_are_equal(n_members, n_parts, name):
    members = {f"m{i}": MemberSubscription(frozenset({"t"})) for i in range(n_members)}
    counts = [len(v) for v in ASSIGNORS[name].assign(members, {"t": n_parts}).values()]
    assert max(counts) - min(counts) <= 1


@settings(max_examples=150, deadline=None)
@given(n_members=st.integers(2, 6), n_parts=st.integers(1, 40), data=st.data())
def test_sticky_moves_only_what_balance_requires(n_members, n_parts, data):
    names = [f"m{i}" for i in range(n_members)]
    first = sticky_assign({m: MemberSubscription(frozenset({"t"})) for m in names},
                          {"t": n_parts})
    # A member leaves: nobody else loses anything.
    gone = data.draw(st.sampled_from(names))
    rest = {m: MemberSubscription(frozenset({"t"}), tuple(first[m]))
            for m in names if m != gone}
    after_leave = sticky_assign(rest, {"t": n_parts})
    for m in rest:
        assert set(first[m]) <= set(after_leave[m])
    # A member joins: only the partitions the newcomer gets move.
    joined = {m: MemberSubscription(frozenset({"t"}), tuple(first[m])) for m in names}
    joined["new"] = MemberSubscription(frozenset({"t"}))
    after_join = sticky_assign(joined, {"t": n_parts})
    moved = sum(1 for m in names for tp in first[m] if tp not in after_join[m])
    assert moved == len(after_join["new"])


def test_resolve_names_classes_and_objects():
    assert [a.name for a in resolve_assignors(None)] == ["range", "roundrobin"]
    assert resolve_assignors("cooperative-sticky")[0].cooperative

    class RoundRobinPartitionAssignor:  # kafka-python's class name
        pass

    assert resolve_assignors([RoundRobinPartitionAssignor])[0].name == "roundrobin"

    class Mine:
        name = "mine"

        @staticmethod
        def assign(members, partitions):
            return {m: [] for m in members}

    assert resolve_assignors([Mine()])[0].name == "mine"
    with pytest.raises(InvalidConfigError, match="'fair'"):
        resolve_assignors(["fair"])
    with pytest.raises(InvalidConfigError, match="empty"):
        resolve_assignors([])
