"""Security: private files under any umask and as a non-root user, symlinked store
files refused, no pickle, topic names never reach the file system, one writer."""

import ast
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest
from checker import report
from helpers import REPO, run_python

import mqlog
from mqlog.errors import BrokerLockedError, CorruptStoreError

MODES = (
    "import os, stat, sys, mqlog\n"
    "os.umask(int(sys.argv[2], 8))\n"
    "with mqlog.open(sys.argv[1]) as b:\n"
    "    b.producer().send('t', b'x').get(10)\n"
    "def mode(p):\n"
    "    return oct(stat.S_IMODE(os.stat(p).st_mode))\n"
    "print(mode(sys.argv[1]), *sorted(mode(os.path.join(sys.argv[1], f))\n"
    "      for f in os.listdir(sys.argv[1])))\n"
)


@pytest.mark.parametrize("umask", ["000", "022", "077", "002"])
def test_private_modes_under_any_umask(tmp_path, umask):
    path = str(tmp_path / "store")
    out = run_python(MODES, path, umask).stdout.split()
    assert out[0] == "0o700" and set(out[1:]) == {"0o600"}, out


def _system_python() -> str | None:
    """A system interpreter of this Python version that any user can run (this one may
    live under /root, which other users cannot read)."""
    candidate = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    return candidate if os.access(candidate, os.X_OK) else None


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_private_modes_as_a_non_root_user():
    python = _system_python()
    if python is None:
        pytest.skip("no system interpreter of this version for another user to run")
    site = os.path.dirname(os.path.dirname(lmdb_file()))
    for needed in (REPO, site):
        if not _others_can_read(needed):
            pytest.skip(f"{needed} is not readable by other users in this checkout")
    base = tempfile.mkdtemp(prefix="mqlog-nobody-", dir="/tmp")
    try:
        os.chmod(base, 0o777)
        path = os.path.join(base, "store")

        def become_nobody():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)

        proc = subprocess.run([python, "-c", MODES, path, "000"], capture_output=True,
                              text=True, timeout=60, preexec_fn=become_nobody,
                              env={"PYTHONPATH": os.pathsep.join([REPO, site])})
        assert proc.returncode == 0, proc.stderr[-1500:]
        out = proc.stdout.split()
        assert out[0] == "0o700" and set(out[1:]) == {"0o600"}, out
        assert os.stat(os.path.join(path, "data.mdb")).st_uid == 65534
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _others_can_read(path: str) -> bool:
    """Every directory on the way is searchable, and the last one readable, by others."""
    path = os.path.realpath(path)
    parts = pathlib.Path(path).parents
    if not all(os.stat(p).st_mode & stat.S_IXOTH for p in parts):
        return False
    return bool(os.stat(path).st_mode & stat.S_IROTH and os.stat(path).st_mode & stat.S_IXOTH)


def lmdb_file() -> str:
    import lmdb

    return lmdb.__file__


@pytest.mark.parametrize("name", ["data.mdb", "lock.mdb", "mqlog.lock"])
def test_symlinked_store_files_are_refused(tmp_path, name):
    path = tmp_path / "store"
    with mqlog.open(str(path)):
        pass
    target = tmp_path / "elsewhere"
    os.replace(path / name, target)
    os.symlink(target, path / name)
    with pytest.raises(CorruptStoreError, match=f"{name} is a symbolic link"):
        mqlog.open(str(path))
    with pytest.raises(CorruptStoreError, match="symbolic link"):
        mqlog.open(str(path), readonly=True)


def test_no_pickle_in_the_package():
    users = []
    for file in pathlib.Path(REPO, "mqlog").rglob("*.py"):
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n.split(".")[0] in ("pickle", "marshal", "shelve", "dill") for n in names):
                users.append(str(file))
    assert users == []


def test_topic_names_never_reach_the_file_system(tmp_path):
    path = tmp_path / "store"
    with mqlog.open(str(path)) as b:
        for name in ["...", "x" * 249, "a.b-c_d", "..x"]:
            b.create_topic(name)
        with pytest.raises(mqlog.errors.InvalidTopicError):
            b.create_topic("../escape")
    assert sorted(os.listdir(path)) == ["data.mdb", "lock.mdb", "mqlog.lock"]
    assert not (tmp_path / "escape").exists()


def test_a_second_writer_process_is_refused(tmp_path):
    path = str(tmp_path / "store")
    with mqlog.open(path):
        proc = run_python("import sys, mqlog\n"
                          "from mqlog.errors import BrokerLockedError\n"
                          "try:\n"
                          "    mqlog.open(sys.argv[1])\n"
                          "except BrokerLockedError as e:\n"
                          "    print('refused', e)\n", path)
    assert proc.stdout.startswith("refused") and f"process {os.getpid()}" in proc.stdout
    assert issubclass(BrokerLockedError, mqlog.errors.MqlogError)
    report("security", checks=6, passed=True)
