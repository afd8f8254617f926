"""Model-based test: random operations against a small pure-Python reference model.

Hypothesis drives produce / send_batch / poll / seek / commit / grow / reopen steps on a
real persistent broker and on a dict-of-lists model, and checks after every step that
they agree and that the store's invariants hold (``Broker._check``).
"""

import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import mqlog
from mqlog import TopicPartition

TOPIC = "m"
values = st.one_of(st.none(), st.binary(max_size=20))
keys = st.one_of(st.none(), st.binary(min_size=1, max_size=4))


class LogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="mqlog-model-")
        self.path = self.dir + "/store"
        self.broker = mqlog.open(self.path)
        self.broker.create_topic(TOPIC, partitions=2)
        self.model: list[list[tuple]] = [[], []]  # per partition: (key, value)
        self.committed: dict[int, int] = {}
        self.positions: dict[int, int] = {}
        self._new_consumer()

    def _new_consumer(self) -> None:
        self.consumer = self.broker.consumer(group_id="g", auto_offset_reset="earliest",
                                             enable_auto_commit=False, max_poll_records=7)
        self.consumer.assign([TopicPartition(TOPIC, p) for p in range(len(self.model))])
        self.positions = {p: self.committed.get(p, 0) for p in range(len(self.model))}

    def teardown(self) -> None:
        self.broker.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(key=keys, value=values, explicit=st.booleans(), data=st.data())
    def send(self, key, value, explicit, data):
        partition = data.draw(st.integers(0, len(self.model) - 1)) if explicit else None
        with self.broker.producer() as p:
            md = p.send(TOPIC, value, key=key, partition=partition).get(10)
        assert md.offset == len(self.model[md.partition])
        if key is not None and partition is None:
            assert md.partition == mqlog.partitioner.partition_for_key(key, len(self.model))
        self.model[md.partition].append((key, value))

    @rule(batch=st.lists(st.binary(max_size=8), min_size=1, max_size=30), data=st.data())
    def send_batch(self, batch, data):
        partition = data.draw(st.integers(0, len(self.model) - 1))
        with self.broker.producer(batch_size=64) as p:
            md = p.send_batch(TOPIC, batch, partition=partition).get(10)
        (pb,) = md.partitions
        assert (pb.partition, pb.base_offset, pb.count) == (
            partition, len(self.model[partition]), len(batch))
        self.model[partition].extend((None, v) for v in batch)

    @rule()
    def poll(self):
        got = self.consumer.poll(timeout_ms=0)
        for tp, recs in got.items():
            p = tp.partition
            expected = self.model[p][self.positions[p]:self.positions[p] + len(recs)]
            assert [(r.key, r.value) for r in recs] == expected
            assert [r.offset for r in recs] == list(
                range(self.positions[p], self.positions[p] + len(recs)))
            self.positions[p] += len(recs)
        if not got:  # nothing returned means every partition was read to its end
            for p, pos in self.positions.items():
                assert pos == len(self.model[p])

    @rule(data=st.data())
    def seek(self, data):
        p = data.draw(st.integers(0, len(self.model) - 1))
        offset = data.draw(st.integers(0, len(self.model[p])))
        self.consumer.seek(TopicPartition(TOPIC, p), offset)
        self.positions[p] = offset

    @rule()
    def commit(self):
        self.consumer.commit()
        self.committed = dict(self.positions)

    @precondition(lambda self: len(self.model) < 4)
    @rule()
    def grow(self):
        self.broker.create_partitions(TOPIC, len(self.model) + 1)
        self.model.append([])
        self.consumer.assign([TopicPartition(TOPIC, p) for p in range(len(self.model))])
        self.positions[len(self.model) - 1] = 0

    @rule()
    def reopen(self):
        self.consumer.close(autocommit=False)
        self.broker.close()
        self.broker = mqlog.open(self.path)
        self._new_consumer()

    @invariant()
    def store_matches_model(self):
        self.broker._check()
        records = self.broker.messages(TOPIC)
        expected = [(p, off, kv) for p, part in enumerate(self.model)
                    for off, kv in enumerate(part)]
        assert [(r.partition, r.offset, (r.key, r.value)) for r in records] == expected
        for p in range(len(self.model)):
            tp = TopicPartition(TOPIC, p)
            assert self.consumer.committed(tp) == self.committed.get(p)
            assert self.consumer.position(tp) == self.positions[p]


LogModel.TestCase.settings = settings(max_examples=25, stateful_step_count=25,
                                      deadline=None)
test_log_model = LogModel.TestCase
