"""End to end, through the public API only, the way a user writes it."""

import json
import subprocess
import sys
import threading

import mqlog
from mqlog import TopicPartition
from helpers import REPO, child_env


def test_orders_pipeline_survives_restart(tmp_path):
    path = str(tmp_path / "shop")
    with mqlog.open(path) as broker:
        broker.create_topic("orders", partitions=3)
        with broker.producer(acks="all", value_serializer=lambda v: json.dumps(v).encode(),
                             key_serializer=str.encode) as producer:
            for i in range(30):
                producer.send("orders", {"id": i, "total": i * 10}, key=f"user-{i % 4}")
        consumer = broker.consumer(group_id="billing", auto_offset_reset="earliest",
                                   enable_auto_commit=False,
                                   value_deserializer=lambda b: json.loads(b))
        consumer.assign([TopicPartition("orders", p) for p in range(3)])
        first = []
        for records in consumer.poll(timeout_ms=1000, max_records=10).values():
            first.extend(r.value["id"] for r in records)
        consumer.commit()
        consumer.close()

    with mqlog.open(path) as broker:  # a restart: same directory
        assert broker.topics()["orders"].partitions == 3
        consumer = broker.consumer(group_id="billing", auto_offset_reset="earliest",
                                   consumer_timeout_ms=300,
                                   value_deserializer=lambda b: json.loads(b))
        consumer.assign([TopicPartition("orders", p) for p in range(3)])
        rest = [r.value["id"] for r in consumer]
        consumer.close()
    assert len(first) == 10
    assert sorted(first + rest) == list(range(30))  # nothing lost, nothing twice


def test_same_key_same_partition_in_order(broker):
    broker.create_topic("events", partitions=4)
    with broker.producer() as p:
        for i in range(100):
            p.send("events", b"%d" % i, key=b"device-%d" % (i % 5))
    by_key = {}
    for r in broker.messages("events"):
        by_key.setdefault(r.key, []).append((r.partition, int(r.value)))
    for key, items in by_key.items():
        assert len({part for part, _ in items}) == 1, key
        values = [v for _, v in items]
        assert values == sorted(values)


def test_producers_and_consumers_in_threads(broker):
    broker.create_topic("work", partitions=2)
    n_producers, per_producer = 4, 500
    received = {0: [], 1: []}
    done = threading.Event()

    def consume(partition):
        c = broker.consumer(auto_offset_reset="earliest")
        c.assign([TopicPartition("work", partition)])
        while not done.is_set() or c.position(TopicPartition("work", partition)) < \
                c.end_offsets([TopicPartition("work", partition)])[
                    TopicPartition("work", partition)]:
            for recs in c.poll(timeout_ms=100).values():
                received[partition].extend(r.offset for r in recs)
        c.close()

    def produce(pid):
        with broker.producer() as p:
            for i in range(per_producer):
                p.send("work", b"%d-%d" % (pid, i), partition=i % 2)

    consumers = [threading.Thread(target=consume, args=(p,), daemon=True) for p in (0, 1)]
    producers = [threading.Thread(target=produce, args=(i,), daemon=True)
                 for i in range(n_producers)]
    for t in consumers + producers:
        t.start()
    for t in producers:
        t.join(60)
        assert not t.is_alive()
    done.set()
    for t in consumers:
        t.join(60)
        assert not t.is_alive()
    total = n_producers * per_producer
    assert len(received[0]) + len(received[1]) == total
    for part in (0, 1):
        assert received[part] == list(range(total // 2))  # dense, ordered, once


def test_readonly_reader_in_another_process_follows(tmp_path):
    path = str(tmp_path / "store")
    writer = mqlog.open(path)
    writer.create_topic("feed")
    with writer.producer() as p:
        p.send("feed", b"one")
    code = (
        "import sys, mqlog\n"
        "b = mqlog.open(sys.argv[1], readonly=True)\n"
        "c = b.consumer(auto_offset_reset='earliest')\n"
        "c.assign([mqlog.TopicPartition('feed', 0)])\n"
        "got = []\n"
        "while len(got) < 2:\n"
        "    for recs in c.poll(timeout_ms=10000).values():\n"
        "        got.extend(r.value.decode() for r in recs)\n"
        "    print('seen', len(got), flush=True)\n"
        "print(','.join(got))\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=child_env(), cwd=REPO)
    try:
        assert child.stdout.readline().strip() == "seen 1"
        with writer.producer() as p:
            p.send("feed", b"two")  # the reader is woken by polling LMDB's txn id
        out, err = child.communicate(timeout=30)
        assert out.strip().splitlines()[-1] == "one,two", err
    finally:
        if child.poll() is None:
            child.kill()
        writer.close()
