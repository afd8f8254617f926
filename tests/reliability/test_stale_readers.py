"""Stale readers and forks: reader slots left by killed processes are cleared (at open,
and when the table is full); a broker used after fork() raises a typed error."""

import os
import signal
import subprocess
import sys

from checker import report
from helpers import child_env

import mqlog
from mqlog import _store
from mqlog.errors import ClosedError

HOLD_READ = (
    "import sys, mqlog\n"
    "b = mqlog.open(sys.argv[1], readonly=True)\n"
    "with b._store.read():\n"
    "    print('reading', flush=True)\n"
    "    sys.stdin.readline()\n"
)


def stale_readers(path, n):
    """Start ``n`` processes that each hold a read transaction, then SIGKILL them."""
    procs = [subprocess.Popen([sys.executable, "-c", HOLD_READ, path], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=child_env())
             for _ in range(n)]
    for p in procs:
        assert p.stdout.readline().strip() == "reading"
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait(30)
    return [p.pid for p in procs]


def test_stale_slots_cleared_at_open(tmp_path):
    path = str(tmp_path / "s")
    with mqlog.open(path) as b:
        b.producer().send("t", b"x").get(10)
    pids = stale_readers(path, 4)
    with mqlog.open(path) as b:
        table = b._store._env.readers()
        assert not any(f"{pid} " in table for pid in pids), table
        assert len(b.messages("t")) == 1
    report("stale_readers", killed=len(pids), cleared_at_open=True)


def test_full_reader_table_is_cleared_on_demand(tmp_path):
    """With the table full of dead readers, the next read clears them and succeeds."""
    path = str(tmp_path / "s")
    store = _store.Store(path, max_readers=3)  # the lock file gets 3 reader slots
    try:
        pids = stale_readers(path, 3)  # they fill every slot, then die (after our open)
        assert all(f"{pid} " in store._env.readers() for pid in pids)  # table is full
        with store.read() as txn:  # readers-full -> reader_check -> retry
            assert txn.meta(b"v") is not None
        assert not any(f"{pid} " in store._env.readers() for pid in pids)
    finally:
        store.close()
    report("stale_readers", killed=len(pids), cleared_on_readers_full=True)


def test_use_after_fork_is_a_typed_error(tmp_path):
    b = mqlog.open(str(tmp_path / "s"))
    pid = os.fork()
    if pid == 0:
        try:
            b.producer()
            os._exit(1)
        except ClosedError as exc:
            os._exit(0 if "open a new broker in the child" in str(exc) else 2)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    b.close()
    report("use_after_fork", child_exit=os.WEXITSTATUS(status))
    assert os.WEXITSTATUS(status) == 0
