"""LMDB storage: format version, locking, damaged files, map growth, file modes."""

import os
import stat
import struct
import subprocess
import sys

import pytest

import mqlog
from mqlog import _store
from mqlog.errors import (
    BrokerLockedError,
    CorruptStoreError,
    FormatVersionError,
    IllegalStateError,
)

from helpers import child_env, run_python


def _make_store(path: str, records: int = 10) -> None:
    with mqlog.open(path) as b:
        with b.producer() as p:
            for i in range(records):
                p.send("t", b"v%d" % i)


def test_new_store_is_private(data_dir):
    _make_store(data_dir)
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    for name in ("data.mdb", "lock.mdb", _store.LOCK_FILE):
        assert stat.S_IMODE(os.stat(os.path.join(data_dir, name)).st_mode) == 0o600, name


def test_unknown_format_version_is_refused(data_dir):
    _make_store(data_dir)
    s = _store.Store(data_dir)
    s.write(lambda txn: txn.put_meta(b"v", struct.pack(">I", 99)))
    s.close()
    with pytest.raises(FormatVersionError, match="format version 99"):
        mqlog.open(data_dir)
    with pytest.raises(FormatVersionError):
        mqlog.open(data_dir, readonly=True)


def test_second_open_in_same_process_is_refused(data_dir):
    with mqlog.open(data_dir):
        with pytest.raises(BrokerLockedError, match="already open in this process"):
            mqlog.open(data_dir)
    mqlog.open(data_dir).close()  # released on close


def test_other_process_owner_is_named(data_dir):
    code = (
        "import sys, mqlog\n"
        "b = mqlog.open(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "b.close()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, data_dir], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert child.stdout.readline().strip() == "ready"
        with pytest.raises(BrokerLockedError, match=f"owned for writing by process {child.pid}"):
            mqlog.open(data_dir)
        # Readonly inspection is allowed while the owner runs.
        with mqlog.open(data_dir, readonly=True) as ro:
            assert ro.topics() == {}
            with pytest.raises(IllegalStateError, match="readonly"):
                ro.producer()
    finally:
        child.stdin.write("\n")
        child.stdin.close()
        child.wait(30)
    assert child.returncode == 0
    mqlog.open(data_dir).close()  # the lock died with the owner


def test_lock_released_when_owner_is_killed(data_dir):
    code = (
        "import sys, os, signal, mqlog\n"
        "b = mqlog.open(sys.argv[1])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = run_python(code, data_dir, check=False)
    assert proc.returncode == -9
    mqlog.open(data_dir).close()


def test_zero_byte_data_file_is_refused(data_dir):
    _make_store(data_dir)
    open(os.path.join(data_dir, "data.mdb"), "wb").close()
    with pytest.raises(CorruptStoreError, match="is empty"):
        mqlog.open(data_dir)


@pytest.mark.parametrize("keep", [0.5, 4096 * 2 + 10])
def test_truncated_data_file_is_refused_not_sigbus(data_dir, keep):
    _make_store(data_dir, records=3000)
    path = os.path.join(data_dir, "data.mdb")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * keep) if keep < 1 else int(keep))
    # In a child: if the guard failed, LMDB would kill the process with SIGBUS.
    proc = run_python(
        "import sys, mqlog\n"
        "from mqlog.errors import CorruptStoreError\n"
        "try:\n"
        "    b = mqlog.open(sys.argv[1])\n"
        "    b.messages('t')\n"
        "except CorruptStoreError as e:\n"
        "    print('refused:', e)\n",
        data_dir, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and "truncated" in proc.stdout


def test_not_an_lmdb_file(data_dir):
    os.makedirs(data_dir)
    with open(os.path.join(data_dir, "data.mdb"), "wb") as f:
        f.write(b"hello" * 10000)
    with pytest.raises(CorruptStoreError, match="not an LMDB data file"):
        mqlog.open(data_dir)


def test_readonly_needs_an_existing_store(data_dir):
    with pytest.raises(CorruptStoreError, match="no data.mdb"):
        mqlog.open(data_dir, readonly=True)


def test_map_grows_on_demand(data_dir):
    with mqlog.open(data_dir, map_size=256 * 1024) as b:
        start = b._store.map_size()
        with b.producer() as p:
            futures = [p.send("t", os.urandom(1000)) for _ in range(3000)]
        assert all(f.get(10).offset >= 0 for f in futures)
        assert b._store.map_size() > start
        assert len(b.messages("t")) == 3000
        b._check()
    with mqlog.open(data_dir) as b:
        assert len(b.messages("t")) == 3000


def test_map_growth_while_readers_run(data_dir):
    import threading

    with mqlog.open(data_dir, map_size=256 * 1024) as b:
        b.create_topic("t")
        stop = threading.Event()
        seen = []

        def reader():
            c = b.consumer(auto_offset_reset="earliest")
            c.assign([mqlog.TopicPartition("t", 0)])
            while not stop.is_set():
                for recs in c.poll(timeout_ms=50).values():
                    seen.extend(r.offset for r in recs)

        threads = [threading.Thread(target=reader, daemon=True) for _ in range(3)]
        for t in threads:
            t.start()
        with b.producer() as p:
            for _ in range(2000):
                p.send("t", os.urandom(1000))
        b.consumer  # noqa: B018
        stop.set()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        assert b._store.map_size() > 256 * 1024
        assert len(b.messages("t")) == 2000


def test_readonly_reader_survives_owner_growing_the_map(data_dir):
    """The owner grows the map past a reader process's size; the reader adopts it."""
    code = (
        "import sys, mqlog\n"
        "b = mqlog.open(sys.argv[1], readonly=True)\n"
        "c = b.consumer(auto_offset_reset='earliest')\n"
        "c.assign([mqlog.TopicPartition('t', 0)])\n"
        "c.poll(timeout_ms=0)\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "got = 0\n"
        "while True:\n"
        "    batch = c.poll(timeout_ms=0)\n"
        "    if not batch:\n"
        "        break\n"
        "    got += sum(len(v) for v in batch.values())\n"
        "print(got)\n"
    )
    with mqlog.open(data_dir, map_size=256 * 1024) as owner:
        owner.create_topic("t")
        child = subprocess.Popen([sys.executable, "-c", code, data_dir], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=child_env())
        try:
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
            with owner.producer() as p:
                for _ in range(3000):
                    p.send("t", os.urandom(1000))
            assert owner._store.map_size() > 256 * 1024
            out, err = child.communicate("go\n", timeout=60)
            assert out.strip() == "3000", err
        finally:
            if child.poll() is None:
                child.kill()


def test_readonly_open_beside_the_owner_in_one_process(data_dir):
    with mqlog.open(data_dir):
        with pytest.raises(BrokerLockedError, match="already open in this process"):
            mqlog.open(data_dir, readonly=True)


def test_read_scope_translates_lmdb_errors_and_leaves(data_dir):
    """An LMDB error inside ``with store.read()`` comes out as mqlog's type, and the
    reader is counted out (a later map resize would otherwise wait for it forever)."""
    import lmdb

    with mqlog.open(data_dir) as b:
        store = b._store
        with pytest.raises(CorruptStoreError, match="corruption"):
            with store.read():
                raise lmdb.CorruptedError("injected")
        with pytest.raises(KeyError):  # other errors pass through untouched
            with store.read():
                raise KeyError("x")
        assert store._readers == 0 and store._local.depth == 0
        with store.read() as outer, store.read() as inner:  # nested reads on one thread
            assert store._readers == 2 and outer is not inner
        assert store._readers == 0
        store._resize(store.map_size() * 2)  # would hang if a reader had leaked
