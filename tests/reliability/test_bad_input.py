"""Bad input: every public call with wrong types, None, oversize values and bad names
gets exactly the documented error class with a clear message, and writes nothing."""

import pytest
from checker import report

import mqlog
from mqlog import TopicPartition
from mqlog.errors import (
    ClosedError,
    IllegalStateError,
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    UnknownTopicOrPartitionError,
)

TP = TopicPartition("t", 0)

CASES = [
    # (name, call(broker, producer, consumer), error class, words in the message)
    ("topic ''", lambda b, p, c: b.create_topic(""), InvalidTopicError, "''"),
    ("topic '.'", lambda b, p, c: b.create_topic("."), InvalidTopicError, "'.'"),
    ("topic '..'", lambda b, p, c: b.create_topic(".."), InvalidTopicError, "'..'"),
    ("topic '../x'", lambda b, p, c: b.create_topic("../x"), InvalidTopicError, "../x"),
    ("topic 250 chars", lambda b, p, c: b.create_topic("x" * 250), InvalidTopicError,
     "1-249"),
    ("topic NUL", lambda b, p, c: b.create_topic("a\x00b"), InvalidTopicError, "invalid"),
    ("topic newline", lambda b, p, c: b.create_topic("ok\n"), InvalidTopicError, "invalid"),
    ("topic None", lambda b, p, c: b.create_topic(None), TypeError, "str"),
    ("partitions 0", lambda b, p, c: b.create_topic("n", partitions=0),
     InvalidPartitionsError, "partitions=0"),
    ("config key", lambda b, p, c: b.create_topic("n", config={"bogus": 1}),
     InvalidConfigError, "'bogus'"),
    ("config value", lambda b, p, c: b.create_topic("n", config={"retention.ms": "soon"}),
     InvalidConfigError, "'soon'"),
    ("send str value", lambda b, p, c: p.send("t", "text"), TypeError, "value must be bytes"),
    ("send int key", lambda b, p, c: p.send("t", b"v", key=1), TypeError, "key must be bytes"),
    ("send 2 MB", lambda b, p, c: p.send("t", b"x" * 2_000_000), MessageSizeTooLargeError,
     "exceeds the limit"),
    ("send 10 KB key", lambda b, p, c: p.send("t", b"v", key=b"k" * 10_240).get(10), None,
     None),
    ("send bad partition", lambda b, p, c: p.send("t", b"v", partition=7),
     UnknownTopicOrPartitionError, "partition 7"),
    ("send negative ts", lambda b, p, c: p.send("t", b"v", timestamp_ms=-1), ValueError,
     "timestamp_ms=-1"),
    ("send bad headers", lambda b, p, c: p.send("t", b"v", headers=[("h", 1)]), TypeError,
     "header"),
    ("send_batch mismatched keys", lambda b, p, c: p.send_batch("t", [b"a"], keys=[]),
     ValueError, "1 values but 0 keys"),
    ("seek past end", lambda b, p, c: c.seek(TP, 10**9), None, None),
    ("seek negative", lambda b, p, c: c.seek(TP, -1), ValueError, "-1"),
    ("seek unassigned", lambda b, p, c: c.seek(TopicPartition("t", 5), 0), IllegalStateError,
     "not assigned"),
    ("commit unknown partition", lambda b, p, c: c.commit({TopicPartition("t", 9): 1}),
     UnknownTopicOrPartitionError, "partition 9"),
    ("commit negative", lambda b, p, c: c.commit({TP: -5}), ValueError, "-5"),
    ("assign garbage", lambda b, p, c: c.assign(["t"]), TypeError, "TopicPartition"),
    ("offsets_for_times -1", lambda b, p, c: c.offsets_for_times({TP: -1}), ValueError,
     "-1"),
    ("delete_records past end", lambda b, p, c: b.delete_records(TP, 10**9),
     mqlog.errors.OffsetOutOfRangeError, "outside"),
    ("alter unknown topic", lambda b, p, c: b.alter_topic_config("nope", {}),
     UnknownTopicOrPartitionError, "'nope'"),
    ("grow to fewer", lambda b, p, c: b.create_partitions("t", 1), InvalidPartitionsError,
     "must be larger"),
    ("producer acks", lambda b, p, c: b.producer(acks=3), InvalidConfigError, "acks=3"),
    ("consumer reset", lambda b, p, c: b.consumer(auto_offset_reset="first"),
     InvalidConfigError, "'first'"),
]


@pytest.mark.parametrize("name, call, error, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path, name, call, error, words):
    with mqlog.open(str(tmp_path / "s")) as broker:
        broker.create_topic("t", partitions=2)
        with broker.producer() as p:
            p.send("t", b"kept", partition=0).get(10)
        producer = broker.producer()
        consumer = broker.consumer(group_id="g", auto_offset_reset="earliest")
        consumer.assign([TP])
        before = ({n: i for n, i in broker.topics().items()}, broker.messages("t"),
                  broker.group_offsets("g"))
        if error is None:
            call(broker, producer, consumer)  # accepted (documented as allowed)
            return
        with pytest.raises(error) as info:
            call(broker, producer, consumer)
        assert words in str(info.value), str(info.value)
        producer.flush(10)
        after = ({n: i for n, i in broker.topics().items()}, broker.messages("t"),
                 broker.group_offsets("g"))
        assert after == before, "a refused call changed the store"


def test_use_after_close_everywhere(tmp_path):
    broker = mqlog.open(str(tmp_path / "s"))
    p, c, a = broker.producer(), broker.consumer(), broker.admin()
    broker.close()
    calls = [lambda: broker.topics(), lambda: broker.create_topic("x"),
             lambda: p.send("t", b"v"), lambda: p.flush(), lambda: c.poll(),
             lambda: c.assign([TP]), lambda: c.commit(), lambda: a.list_topics(),
             lambda: broker.producer(), lambda: broker.consumer()]
    for call in calls:
        with pytest.raises(ClosedError):
            call()
    report("bad_input", cases=len(CASES), after_close=len(calls))
