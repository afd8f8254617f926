"""Admin: topic configs, group deletion, offset resets."""

import pytest

import mqlog
from mqlog import OffsetAndMetadata, TopicPartition
from mqlog.errors import IllegalStateError, InvalidConfigError, UnknownTopicOrPartitionError

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


@pytest.fixture
def admin(broker):
    broker.create_topic("t", partitions=2)
    with broker.producer() as p:
        for i in range(10):
            p.send("t", b"%d" % i, partition=i % 2, timestamp_ms=1000 * (i + 1))
    a = broker.admin()
    yield a
    a.close()


def test_topics(admin, broker):
    admin.create_topics([("u", 3, {"cleanup.policy": "compact"}), mqlog.TopicInfo("v", 1)])
    assert admin.list_topics() == ["t", "u", "v"]
    assert admin.describe_topics(["u"])["u"].config == {"cleanup.policy": "compact"}
    admin.create_partitions("v", 2)
    admin.delete_topics(["v"])
    assert "v" not in admin.list_topics()
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.describe_topics(["nope"])


def test_describe_and_alter_config(admin, broker):
    configs = admin.describe_configs("t")
    assert configs["retention.ms"] == 604_800_000 and configs["cleanup.policy"] == "delete"
    admin.alter_topic_config("t", {"retention.ms": "1000", "max.message.bytes": 200})
    assert admin.describe_configs("t")["retention.ms"] == 1000
    with broker.producer() as p:  # producers pick up the new size limit
        with pytest.raises(mqlog.errors.MessageSizeTooLargeError):
            p.send("t", b"x" * 300)
    admin.alter_topic_config("t", {"max.message.bytes": None})  # back to the default
    assert "max.message.bytes" not in broker.topics()["t"].config
    with pytest.raises(InvalidConfigError, match="retention.mss"):
        admin.alter_topic_config("t", {"retention.mss": 1})
    assert broker.topics()["t"].config == {"retention.ms": 1000}  # refused: unchanged


def test_config_survives_reopen(tmp_path):
    path = str(tmp_path / "d")
    with mqlog.open(path) as b:
        b.create_topic("t")
        b.admin().alter_topic_config("t", {"cleanup.policy": "compact"})
    with mqlog.open(path) as b:
        assert b.topics()["t"].config == {"cleanup.policy": "compact"}


def test_delete_consumer_groups(admin, broker):
    broker.commit_offsets("g", {TP0: 3})
    c = broker.consumer("t", group_id="live")
    c.poll(timeout_ms=10)
    with pytest.raises(IllegalStateError, match="active members"):
        admin.delete_consumer_groups(["live"])
    admin.delete_consumer_groups(["g"])
    assert admin.list_consumer_group_offsets("g") == {}
    assert [g.group_id for g in admin.list_consumer_groups()] == ["live"]
    c.close()
    admin.delete_consumer_groups(["live", "never-existed"])
    assert admin.list_consumer_groups() == []


def test_delete_consumer_group_offsets(admin, broker):
    broker.create_topic("u")
    TU = TopicPartition("u", 0)
    broker.commit_offsets("g", {TP0: 3, TP1: 4, TU: 1})
    assert admin.delete_consumer_group_offsets("g", [TP0, TU, TopicPartition("t", 7)]) \
        == [TP0, TU]  # a partition without an offset (or that does not exist): nothing
    assert admin.list_consumer_group_offsets("g") == {TP1: OffsetAndMetadata(4, "", -1)}
    assert admin.delete_consumer_group_offsets("nobody", [TP0]) == []
    # An active member subscribed to the topic: refused, nothing deleted (Kafka's
    # GROUP_SUBSCRIBED_TO_TOPIC); another topic of the same group is fine.
    broker.commit_offsets("live", {TP0: 2, TU: 1})
    c = broker.consumer("t", group_id="live", enable_auto_commit=False)
    c.poll(timeout_ms=10)
    with pytest.raises(IllegalStateError, match=r"subscribed to \['t'\]"):
        admin.delete_consumer_group_offsets("live", [TP0, TU])
    assert set(admin.list_consumer_group_offsets("live")) == {TP0, TU}
    assert admin.delete_consumer_group_offsets("live", [TU]) == [TU]
    c.close()
    assert admin.delete_consumer_group_offsets("live", [TP0]) == [TP0]
    assert admin.list_consumer_group_offsets("live") == {}


@pytest.mark.parametrize("kwargs, expected", [
    ({"to_earliest": True}, {TP0: 0, TP1: 0}),
    ({"to_latest": True}, {TP0: 5, TP1: 5}),
    ({"to_offset": 3}, {TP0: 3, TP1: 3}),
    ({"to_offset": 99}, {TP0: 5, TP1: 5}),  # clamped to the log
    ({"to_timestamp": 4500}, {TP0: 2, TP1: 2}),  # first record at or after 4.5 s
    ({"shift_by": -2}, {TP0: 2, TP1: 0}),
])
def test_reset_offsets(admin, broker, kwargs, expected):
    broker.commit_offsets("g", {TP0: 4})
    assert admin.reset_offsets("g", [TP0, TP1], execute=False, **kwargs) == expected
    assert admin.list_consumer_group_offsets("g") == {TP0: OffsetAndMetadata(4)}  # dry run
    admin.reset_offsets("g", [TP0, TP1], **kwargs)
    got = admin.list_consumer_group_offsets("g")
    assert {tp: om.offset for tp, om in got.items()} == expected


def test_reset_offsets_needs_one_target(admin):
    with pytest.raises(ValueError, match="exactly one"):
        admin.reset_offsets("g", [TP0])
    with pytest.raises(ValueError, match="exactly one"):
        admin.reset_offsets("g", [TP0], to_earliest=True, to_latest=True)


def test_closed_admin(broker):
    a = broker.admin()
    a.close()
    with pytest.raises(mqlog.errors.ClosedError):
        a.list_topics()
