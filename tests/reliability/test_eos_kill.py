"""Exactly-once under kill -9: a consume-transform-produce loop is SIGKILLed again and
again and restarted; the committed output holds every input exactly once, in per-key
order.

The parent fills topic ``in`` with keyed records ``k<key>:<seq>`` and closes its broker.
Then it runs child processes, one at a time, that each open the store by path and run
the loop: a ``read_committed`` consumer in group ``etl`` without auto-commit and a
transactional producer with a fixed ``transactional_id`` (a restart fences the previous
producer and aborts what it left open); per poll ``begin_transaction``, one output per
input to ``out`` with the input's key, ``send_offsets_to_transaction(positions,
group_metadata())``, ``commit_transaction``. An output's value is the input's value
followed by ``|partition:offset:round:transaction``. Scenario ``loop`` writes that loop
by hand; scenario ``pipeline`` runs it as ``mqlog.Pipeline``.

Each child but the last is killed: by the parent after a random delay (up to 60 ms
after its "ready" line, or, one time in three, up to 300 ms after its start, so some
kills land in the open and its recovery of the transaction left open), or by itself at
the n-th pass of an injected point: ``after_sends`` (before the offsets), the
producer's ``after_offsets``, ``before_commit``, ``inside_commit`` (inside the LMDB
write transaction of the markers and offsets) and ``after_commit``. The last child runs
until the group has committed every input, then exits 0.

The oracle. Children print ``txn R T p:first-last ...`` once a transaction's inputs are
known, ``committed R T`` when ``commit_transaction`` returned and ``dying R T point``
before killing themselves. After each round the parent reads the group's offsets with a
readonly broker: the round's last transaction, which the kill may have cut anywhere,
committed iff the offsets cover its inputs (cross-checked against what the child said);
every other transaction without a ``committed`` line aborted. Records of aborted
transactions must be invisible to ``read_committed``; each round must resume exactly at
the offsets the previous one committed.
"""

import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from checker import report
from helpers import child_env, finish

import mqlog
from mqlog import TopicPartition

IN_PARTITIONS, OUT_PARTITIONS, KEYS = 4, 3, 24
POINTS = ["after_sends", "after_offsets", "before_commit", "inside_commit", "after_commit"]
BEFORE_COMMIT = {"after_sends", "after_offsets", "before_commit", "inside_commit"}
WATCHDOG_S = 60  # a child alive this long is hung (a round normally takes < 1 s)

# Shared by both children: argv, stdout protocol, the kill seam and the completion check.
PRELUDE = r"""
import os, signal, sys
import mqlog
from mqlog import TopicPartition

path, rnd, point = sys.argv[1], int(sys.argv[2]), sys.argv[3]
hit_at, max_records, partitions = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
ins = [TopicPartition("in", p) for p in range(partitions)]
out = sys.stdout

def say(*words):
    out.write(" ".join(str(w) for w in words) + "\n")
    out.flush()

def ranges(pairs):  # [(partition, offset)] -> "p:first-last ..."
    spans = {}
    for p, o in pairs:
        spans.setdefault(p, [o, o])[1] = o
    return " ".join(f"{p}:{a}-{b}" for p, (a, b) in spans.items())

def transformed(r, txn):
    return r.value + b"|%d:%d:%d:%d" % (r.partition, r.offset, rnd, txn)

current = [0]  # the number the next transaction gets
active = [None]  # the transaction being sent or committed
hits = [0]

def on_point(name):
    if name == "after_commit":
        say("committed", rnd, active[0])
    if name == point:
        hits[0] += 1
        if hits[0] >= hit_at:
            say("dying", rnd, active[0], name)
            os.kill(os.getpid(), signal.SIGKILL)

broker = mqlog.open(path)
"""

LOOP_CHILD = PRELUDE + r"""
consumer = broker.consumer(group_id="etl", isolation_level="read_committed",
                           auto_offset_reset="earliest", enable_auto_commit=False,
                           max_poll_records=max_records)
consumer.subscribe(["in"])
producer = broker.producer(transactional_id="etl-0")
producer.on_point = on_point
producer.init_transactions()
ends = consumer.end_offsets(ins)
say("ready")
while not all(consumer.committed(tp) == ends[tp] for tp in ins):
    batch = consumer.poll(timeout_ms=100)
    if not batch:
        continue
    txn = active[0] = current[0]
    current[0] += 1
    say("txn", rnd, txn, ranges((r.partition, r.offset) for rs in batch.values() for r in rs))
    producer.begin_transaction()
    for tp, recs in batch.items():
        for r in recs:
            producer.send("out", transformed(r, txn), key=r.key)
    on_point("after_sends")
    producer.send_offsets_to_transaction({tp: consumer.position(tp) for tp in batch},
                                         consumer.group_metadata())
    producer.commit_transaction()
producer.close()
consumer.close(autocommit=False)
broker.close()
say("done")
"""

PIPELINE_CHILD = PRELUDE + r"""
pending = []

def transform(r):
    pending.append((r.partition, r.offset))
    return transformed(r, current[0])

def pipeline_point(name):
    if name == "after_sends":  # the transaction's inputs are known only now
        active[0] = current[0]
        current[0] += 1  # the next poll's records belong to the next transaction
        say("txn", rnd, active[0], ranges(pending))
        pending.clear()
    on_point(name)

pipe = mqlog.Pipeline(broker, source="in", sink="out", group_id="etl",
                      transform=transform, max_records=max_records,
                      on_progress=lambda stats: stats.lag == 0 and pipe.stop(),
                      progress_interval_ms=0)
pipe.on_point = pipeline_point
say("ready")
stats = pipe.run()
if stats.lag == 0:
    broker.close()
    say("done")
else:
    say("stopped with lag", stats.lag)
    sys.exit(3)
"""

CHILDREN = {"loop": LOOP_CHILD, "pipeline": PIPELINE_CHILD}


def fill(path, per_key, first_seq=0):
    """Create ``in`` and ``out`` (unless they exist); add ``per_key`` records per key to
    ``in``, numbered from ``first_seq``. Returns ``{(partition, offset): value}`` of
    every record of ``in``."""
    with mqlog.open(path) as b:
        if "in" not in b.topics():
            b.create_topic("in", partitions=IN_PARTITIONS)
            b.create_topic("out", partitions=OUT_PARTITIONS)
        with b.producer(acks="all") as p:
            for seq in range(first_seq, first_seq + per_key):
                for k in range(KEYS):
                    p.send("in", b"k%02d:%d" % (k, seq), key=b"k%02d" % k)
        return {(r.partition, r.offset): r.value for r in b.messages("in")}


def run_round(code, path, rnd, mode, rng):
    """Run one child. ``mode``: an injected point, "random" (the parent kills it) or
    None (let it finish). Returns (parsed stdout lines, finished)."""
    point = mode if mode in POINTS else "none"
    # Small polls while killing (many transactions to cut); larger ones for the last
    # round, which commits the remaining bulk of the inputs.
    max_records = rng.randint(1, 12) if mode else rng.randint(10, 40)
    args = [sys.executable, "-c", code, path, str(rnd), point, str(rng.randint(1, 4)),
            str(max_records), str(IN_PARTITIONS)]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=child_env())
    hung = threading.Event()

    def watchdog_fired():
        hung.set()
        child.kill()

    def kill():
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)

    watchdog = threading.Timer(WATCHDOG_S, watchdog_fired)
    watchdog.start()
    killer = None
    from_start = mode == "random" and rng.random() < 1 / 3
    if from_start:  # anywhere: import, open and its recovery, init_transactions, loop
        killer = threading.Timer(rng.uniform(0, 0.3), kill)
        killer.start()
    lines = []
    try:
        for line in child.stdout:
            words = line.split()
            lines.append(words)
            if words == ["ready"] and mode == "random" and not from_start:
                killer = threading.Timer(rng.uniform(0, 0.06), kill)
                killer.start()
        _, err = finish(child, WATCHDOG_S)  # stdout was read to its end
    finally:
        watchdog.cancel()
        if killer is not None:
            killer.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert not hung.is_set(), f"round {rnd} ({mode}) hung for {WATCHDOG_S} s:\n{err}"
    finished = child.returncode == 0 and ["done"] in lines
    assert finished or child.returncode == -signal.SIGKILL, \
        f"round {rnd} ({mode}) exited {child.returncode}:\n{lines[-5:]}\n{err}"
    return lines, finished


def group_offsets(path):
    """The group's committed offset per ``in`` partition, read without recovering."""
    with mqlog.open(path, readonly=True) as b:
        return {p: (om.offset if (om := b.committed_offset("etl", TopicPartition("in", p)))
                    else 0) for p in range(IN_PARTITIONS)}


def read_committed(b, topic):
    """Every record of ``topic`` a ``read_committed`` reader sees, by partition."""
    tps = [TopicPartition(topic, p) for p in range(OUT_PARTITIONS)]
    with b.consumer(isolation_level="read_committed") as c:
        c.assign(tps)
        c.seek_to_beginning()
        ends = c.end_offsets(tps)
        seen = {tp.partition: [] for tp in tps}
        deadline = time.monotonic() + 60
        while any(c.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, "reading the output did not finish"
            for tp, recs in c.poll(timeout_ms=1000).items():
                seen[tp.partition].extend(recs)
    return seen


class Oracle:
    """What the children said, and each transaction's outcome."""

    def __init__(self):
        self.spans = {}  # (round, txn) -> {partition: (first, last)}
        self.committed = set()  # (round, txn) known committed
        self.resume_errors = 0
        self.outcome_mismatches = []
        self.offsets = dict.fromkeys(range(IN_PARTITIONS), 0)  # after the last round

    def add_round(self, rnd, lines, offsets):
        claimed, dying = set(), {}
        resumed = set()
        for words in lines:
            if not words:
                continue
            if words[0] == "txn":
                txn = int(words[2])
                spans = {}
                for item in words[3:]:
                    p, span = item.split(":")
                    first, last = span.split("-")
                    spans[int(p)] = (int(first), int(last))
                    if int(p) not in resumed:  # resumes exactly at the committed offset
                        resumed.add(int(p))
                        self.resume_errors += int(first) != self.offsets[int(p)]
                self.spans[(rnd, txn)] = spans
            elif words[0] == "committed":
                claimed.add((rnd, int(words[2])))
            elif words[0] == "dying":
                dying[(rnd, int(words[2]))] = words[3]
        announced = sorted(t for (r, t) in self.spans if r == rnd)
        for txn in announced:
            key = (rnd, txn)
            covered = [offsets[p] > last for p, (_, last) in self.spans[key].items()]
            problem = None
            if key in claimed and not all(covered):
                problem = "commit_transaction returned but its offsets are not committed"
            if txn != announced[-1]:  # only the last one can have been cut by the kill
                if key in claimed:
                    self.committed.add(key)
            elif any(covered) != all(covered):
                problem = "the offsets cover some of its partitions only"
            elif dying.get(key) in BEFORE_COMMIT and all(covered):
                problem = f"killed at {dying[key]} but its offsets are committed"
            elif all(covered):
                self.committed.add(key)
            if problem:
                self.outcome_mismatches.append(f"round {rnd} txn {txn}: {problem}")
        self.offsets = offsets


def run_scenario(tmp_path, scenario, long_run, per_key=None):
    started = time.monotonic()
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    path = str(tmp_path / "store")
    per_key = per_key or (500 if long_run else 100)
    inputs = fill(path, per_key)
    modes = (POINTS + ["random"] * 2) * (10 if long_run else 2)
    rng.shuffle(modes)
    oracle = Oracle()
    kills, finished, in_startup, top_ups = [], False, 0, 0
    rnd = 0
    while True:
        mode = modes[len(kills)] if len(kills) < len(modes) else None
        lines, finished = run_round(CHILDREN[scenario], path, rnd, mode, rng)
        oracle.add_round(rnd, lines, group_offsets(path))
        rnd += 1
        if finished and mode is not None:
            # The child committed every input before its kill came (a random kill late
            # on a fast machine, or a point past the work left): add inputs and run the
            # same mode again, so every planned kill happens.
            top_ups += 1
            assert top_ups <= 2 * len(modes), f"seed {seed}: rounds keep finishing early"
            # Enough for a point-mode round (at most 4 passes of 12 records) to reach
            # its kill: 5 per key is 120 inputs.
            more = max(5, per_key // 2)
            inputs = fill(path, more, first_seq=(per_key + more) * (1 + rnd))
            continue
        if finished or mode is None:
            break
        kills.append(mode)
        in_startup += mode == "random" and ["ready"] not in lines
    assert finished, f"seed {seed}: the last round did not finish"
    ends = {p: 1 + max(o for (q, o) in inputs if q == p) for p in range(IN_PARTITIONS)}

    with mqlog.open(path) as b:
        b._check()
        offsets = {p: (om.offset if (om := b.committed_offset("etl", TopicPartition("in", p)))
                       else None) for p in range(IN_PARTITIONS)}
        seen = read_committed(b, "out")
        listed = {(r.partition, r.offset)
                  for r in b.messages("out", isolation_level="read_committed")}
        stored = len(b.messages("out"))
    polled = {(r.partition, r.offset) for recs in seen.values() for r in recs}
    counts = dict.fromkeys(inputs, 0)
    bad = aborted_seen = order_violations = 0
    for recs in seen.values():
        last_seq = {}
        for r in recs:  # offset order
            try:
                value, tag = r.value.split(b"|")
                p, o, rnd_, txn = (int(x) for x in tag.split(b":"))
                key, seq = value.split(b":")
                seq = int(seq)
            except ValueError:
                bad += 1
                continue
            if inputs.get((p, o)) != value or r.key != key:
                bad += 1
                continue
            counts[(p, o)] += 1
            aborted_seen += (rnd_, txn) not in oracle.committed
            if seq <= last_seq.get(key, -1):
                order_violations += 1
            last_seq[key] = seq
    figures = {
        "inputs": len(inputs),
        "outputs": sum(len(recs) for recs in seen.values()),
        "duplicates": sum(n - 1 for n in counts.values() if n > 1),
        "missing": sum(1 for n in counts.values() if n == 0),
        "order_violations": order_violations,
        "aborted_records_seen_by_read_committed": aborted_seen,
        "bad_outputs": bad,
        "resume_errors": oracle.resume_errors,
        "outcome_mismatches": len(oracle.outcome_mismatches),
        "offsets_not_at_end": sum(1 for p in ends if offsets[p] != ends[p]),
        # broker.messages(isolation_level="read_committed") against the consumer
        "readers_disagree": len(polled ^ listed),
    }
    report("eos_kill9", scenario=scenario, seed=seed, rounds=rnd, kills=len(kills),
           top_ups=top_ups,
           injected={m: kills.count(m) for m in sorted(set(kills))},
           random_kills_before_ready=in_startup,
           transactions_committed=len(oracle.committed), stored_outputs=stored,
           seconds=round(time.monotonic() - started, 1), **figures)
    assert len(kills) >= len(modes) // 2, f"seed {seed}: only {len(kills)} kills"
    assert oracle.outcome_mismatches == [], f"seed {seed}: {oracle.outcome_mismatches}"
    bad_figures = {k: v for k, v in figures.items() if k not in ("inputs", "outputs") and v}
    assert not bad_figures, f"seed {seed}: {figures}"
    assert figures["outputs"] == figures["inputs"]


@pytest.mark.parametrize("scenario", ["loop", "pipeline"])
def test_eos_kill9_output_exactly_once(tmp_path, scenario, long_run):
    run_scenario(tmp_path, scenario, long_run)


def test_eos_kill9_rounds_that_finish_early_get_more_inputs(tmp_path):
    """Few inputs: killed rounds often commit everything before their kill comes; the
    scenario adds inputs and repeats the mode, so every planned kill still happens."""
    run_scenario(tmp_path, "loop", long_run=False, per_key=2)


def test_eos_oracle_sees_an_uncovered_commit():
    """The oracle flags a transaction the child saw commit whose offsets are missing."""
    oracle = Oracle()
    oracle.add_round(0, [["txn", "0", "0", "0:0-4"], ["committed", "0", "0"]],
                     dict.fromkeys(range(IN_PARTITIONS), 0))
    assert len(oracle.outcome_mismatches) == 1 and not oracle.committed
    oracle = Oracle()
    oracle.add_round(0, [["txn", "0", "0", "1:0-4"], ["dying", "0", "0", "inside_commit"]],
                     {**dict.fromkeys(range(IN_PARTITIONS), 0), 1: 5})
    assert len(oracle.outcome_mismatches) == 1

