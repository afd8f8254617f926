"""Stateful model: produce, poll, commit, seek, join and leave members, retention
(delete_records), injected I/O errors, reopen and a SIGKILLed writer process, against
a small reference model.

After every step: offsets are contiguous from the log start, every poll equals the
model, committed offsets equal the model's and never exceed the end, one owner per
partition, and a write refused by an injected error left nothing behind.
"""

import shutil
import signal
import subprocess
import sys
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from helpers import child_env
from checker import report
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import mqlog
from mqlog import TopicPartition
from mqlog.errors import CommitFailedError, DiskFullError

TOPIC, PARTS = "m", 3


CRASH_CHILD = r"""
import os, signal, sys
import mqlog
path, partition, kill_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b = mqlog.open(path, cleaner_interval_ms=None)
p = b.producer()
acked = [0]
def ack(md):
    acked[0] += 1
    print("ack", flush=True)
    if acked[0] >= kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
if kill_after == 0:
    os.kill(os.getpid(), signal.SIGKILL)
for k in range(1000):
    p.send("m", b"crash-%d" % k, partition=partition).add_callback(ack)
p.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def crash_writer(path, partition, kill_after):
    """Run a producing child that kills itself; returns how many acks it printed."""
    proc = subprocess.run([sys.executable, "-c", CRASH_CHILD, path, str(partition),
                           str(kill_after)], capture_output=True, text=True, timeout=60,
                          env=child_env())
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc.stdout.count("ack")


class GroupModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="mqlog-gmodel-")
        self.path = self.dir + "/store"
        self.broker = mqlog.open(self.path, cleaner_interval_ms=None)
        self.broker.create_topic(TOPIC, partitions=PARTS)
        self.log: list[list[bytes]] = [[] for _ in range(PARTS)]  # values by offset
        self.start = [0] * PARTS  # log start offsets
        self.committed: dict[int, int] = {}
        self.members: list = []
        self.crashes = 0

    def teardown(self) -> None:
        for c in self.members:
            c.close(autocommit=False)
        self.broker.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _member(self, data):
        return data.draw(st.sampled_from(self.members))

    @rule(value=st.binary(min_size=1, max_size=8), partition=st.integers(0, PARTS - 1))
    def produce(self, value, partition):
        with self.broker.producer() as p:
            md = p.send(TOPIC, value, partition=partition).get(10)
        assert md.offset == len(self.log[partition])
        self.log[partition].append(value)

    @rule(partition=st.integers(0, PARTS - 1))
    def produce_with_io_error(self, partition):
        self.broker._writer.fail_next_commit = DiskFullError("injected")
        with self.broker.producer() as p:
            fut = p.send(TOPIC, b"never", partition=partition)
            try:
                fut.get(10)
                raise AssertionError("the injected error did not surface")
            except DiskFullError:
                pass  # refused: the model does not change

    @precondition(lambda self: len(self.members) < 3)
    @rule()
    def join(self):
        self.members.append(self.broker.consumer(
            TOPIC, group_id="g", auto_offset_reset="earliest", enable_auto_commit=False,
            max_poll_records=5))

    @precondition(lambda self: self.members)
    @rule(data=st.data())
    def leave(self, data):
        c = self._member(data)
        self.members.remove(c)
        c.close(autocommit=False)

    @precondition(lambda self: self.members)
    @rule(data=st.data())
    def poll(self, data):
        c = self._member(data)
        for tp, recs in c.poll(timeout_ms=0).items():
            assert tp in c.assignment()
            for r in recs:
                assert r.offset >= self.start[tp.partition]
                assert r.value == self.log[tp.partition][r.offset]

    @precondition(lambda self: self.members)
    @rule(data=st.data())
    def commit(self, data):
        c = self._member(data)
        offsets = {tp: c.position(tp) for tp in c.assignment()}
        if not offsets:
            return
        try:
            c.commit(offsets)
        except CommitFailedError:
            return  # a rebalance moved the partitions: nothing was written
        for tp, off in offsets.items():
            self.committed[tp.partition] = off

    @precondition(lambda self: self.members)
    @rule(data=st.data())
    def seek(self, data):
        c = self._member(data)
        # Draw before looking at the assignment, and never depending on it: which
        # partitions a member owns can vary between runs of the same steps (a member
        # evicted on a loaded machine), and Hypothesis needs the same draws each time.
        pick = data.draw(st.integers(0, PARTS - 1))
        # A fraction, not an offset: the log's length after a crash varies too.
        fraction = data.draw(st.integers(0, 100))
        owned = sorted(c.assignment())
        if owned:
            tp = owned[pick % len(owned)]
            p = tp.partition
            c.seek(tp, self.start[p] + (len(self.log[p]) - self.start[p]) * fraction // 100)

    @rule(partition=st.integers(0, PARTS - 1), fraction=st.integers(0, 100))
    def delete_records(self, partition, fraction):
        before = len(self.log[partition]) * fraction // 100  # see seek() on fractions
        got = self.broker.delete_records(TopicPartition(TOPIC, partition), before)
        self.start[partition] = max(self.start[partition], before)
        assert got == self.start[partition]

    @precondition(lambda self: self.crashes < 1)
    @rule(partition=st.integers(0, PARTS - 1), kill_after=st.integers(0, 40))
    def crash(self, partition, kill_after):
        """A writer process is SIGKILLed mid-stream: every acknowledged record is kept;
        records committed but not yet acknowledged may be kept too, in order."""
        self.crashes += 1
        self.reopen_close_only()
        acked = crash_writer(self.path, partition, kill_after)
        self.broker = mqlog.open(self.path, cleaner_interval_ms=None)
        tail = [r.value for r in self.broker.messages(TOPIC)
                if r.partition == partition and r.offset >= len(self.log[partition])]
        sent = [b"crash-%d" % k for k in range(len(tail))]
        assert tail == sent  # only the child's records, in order, no gaps
        assert len(tail) >= acked  # every acknowledged one survived
        self.log[partition].extend(tail)

    def reopen_close_only(self):
        for c in self.members:
            c.close(autocommit=False)
        self.members = []
        self.broker.close()

    @rule()
    def reopen(self):
        self.reopen_close_only()
        self.broker = mqlog.open(self.path, cleaner_interval_ms=None)

    @invariant()
    def store_matches_model(self):
        self.broker._check()  # offsets contiguous, batches sound, one owner per partition
        got = [(r.partition, r.offset, r.value) for r in self.broker.messages(TOPIC)]
        want = [(p, o, v) for p in range(PARTS)
                for o, v in enumerate(self.log[p]) if o >= self.start[p]]
        assert got == want
        stored = {tp.partition: om.offset for tp, om in self.broker.group_offsets("g").items()}
        assert stored == self.committed
        for p, off in stored.items():
            assert off <= len(self.log[p])


def test_group_model():
    steps = {"examples": 0, "crashes": 0}
    original = GroupModel.teardown

    def counting_teardown(self):
        steps["examples"] += 1
        steps["crashes"] += self.crashes
        original(self)

    GroupModel.teardown = counting_teardown
    try:
        run_state_machine_as_test(GroupModel, settings=settings(
            max_examples=60, stateful_step_count=30, deadline=None))
    finally:
        GroupModel.teardown = original
    report("stateful_model", **steps)
