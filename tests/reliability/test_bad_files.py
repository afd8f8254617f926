"""Damaged stores: typed errors naming the file (or topic, partition, offset) and what
to do — never a signal, never a silently empty store; `mqlog check` finds the damage."""

import os
import struct

import pytest
from checker import report
from helpers import run_python

import mqlog

OPEN_AND_READ = (
    "import sys, mqlog\n"
    "from mqlog.errors import MqlogError\n"
    "try:\n"
    "    b = mqlog.open(sys.argv[1])\n"
    "    n = len(b.messages('t'))\n"
    "    print('opened', n)\n"
    "except MqlogError as e:\n"
    "    print(type(e).__name__, '|', e)\n"
)


def make_store(path, records=3000, batch_per_record=False):
    with mqlog.open(path) as b:
        with b.producer() as p:
            for i in range(records):
                f = p.send("t", b"record-%06d" % i)
                if batch_per_record:
                    f.get(10)


def damage(path, how):
    data = os.path.join(path, "data.mdb")
    size = os.path.getsize(data)
    if how == "truncated":
        with open(data, "r+b") as f:
            f.truncate(size // 2)
    elif how == "zero-length":
        open(data, "wb").close()
    elif how == "garbage":
        with open(data, "wb") as f:
            f.write(os.urandom(size))
    elif how == "newer-format":
        s = mqlog._store.Store(path)
        s.write(lambda txn: txn.put_meta(b"v", struct.pack(">I", 2)))
        s.close()


@pytest.mark.parametrize("how, error, words", [
    ("truncated", "CorruptStoreError", "truncated"),
    ("zero-length", "CorruptStoreError", "empty"),
    ("garbage", "CorruptStoreError", "not an LMDB data file"),
    ("newer-format", "FormatVersionError", "format version 2"),
])
def test_damaged_store_gives_a_typed_error_in_a_child(tmp_path, how, error, words):
    path = str(tmp_path / "s")
    make_store(path)
    damage(path, how)
    proc = run_python(OPEN_AND_READ, path, check=False)
    report("bad_files", case=how, returncode=proc.returncode, output=proc.stdout.strip()[:120])
    assert proc.returncode == 0, f"killed by a signal? {proc.returncode} {proc.stderr}"
    kind, _, message = proc.stdout.partition(" | ")
    assert kind == error and words in message
    assert path in message  # the message names the file
    assert "restore" in message or "mqlog release" in message  # and what to do


def test_bit_flip_in_a_batch_is_caught_by_its_checksum(tmp_path):
    path = str(tmp_path / "s")
    make_store(path, records=50, batch_per_record=True)
    data = os.path.join(path, "data.mdb")
    blob = bytearray(open(data, "rb").read())
    # LMDB keeps stale copies in free pages (copy-on-write): flip every copy, so the
    # live one is surely hit.
    i = blob.find(b"record-000042")
    assert i > 0
    while i > 0:
        blob[i + 8] ^= 0x01
        i = blob.find(b"record-000042", i + 1)
    open(data, "wb").write(bytes(blob))
    with mqlog.open(path) as b:
        c = b.consumer(auto_offset_reset="earliest")
        c.assign([mqlog.TopicPartition("t", 0)])
        with pytest.raises(mqlog.errors.CorruptStoreError,
                           match=r"t\[0\]: batch at offset 42 .*fails its CRC-32C"):
            while c.poll(timeout_ms=0):
                pass
        problems = b._topics["t"].partitions[0].verify(b._store)
    assert len(problems) == 1 and "offset 42" in problems[0]
    report("bad_files", case="bit-flip", detected=True)
