"""Disk full: on a small tmpfs, writing until the disk is full gives a typed
DiskFullError (no signal); earlier data is intact; after space is freed the same broker
writes again without reopening; a reopen finds every acknowledged record."""

import os
import subprocess

import pytest
from checker import report
from helpers import run_python

CHILD = r"""
import json, os, sys
import mqlog
from mqlog.errors import DiskFullError
sys.path.insert(0, sys.argv[2])
from checker import check, payload

mount = sys.argv[1]
ballast = os.path.join(mount, "ballast")
with open(ballast, "wb") as f:
    f.write(b"\0" * (3 << 20))  # space to free later
acked = {}
full_errors = 0
with mqlog.open(os.path.join(mount, "store"), cleaner_interval_ms=None) as broker:
    broker.create_topic("d")
    with broker.producer(acks="all") as p:
        i = 0
        while full_errors == 0 and i < 100000:
            try:
                md = p.send("d", payload(0, i) + b"." * 4000).get(10)
                acked[(md.partition, md.offset)] = (0, i)
            except DiskFullError:
                full_errors += 1
            i += 1
        before = len(acked)
        os.remove(ballast)  # free space; keep using the same broker
        resumed = 0
        for j in range(20):
            md = p.send("d", payload(1, j) + b"." * 4000).get(10)
            acked[(md.partition, md.offset)] = (1, j)
            resumed += 1
with mqlog.open(os.path.join(mount, "store")) as broker:
    records = [r._replace(value=r.value.rstrip(b".")) for r in broker.messages("d")]
    figures = check(records, acked)
print(json.dumps({"full_errors": full_errors, "acked_before_full": before,
                  "resumed": resumed, **figures}))
"""


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {exc}")
    yield str(mount)
    subprocess.run(["umount", str(mount)], check=False)


def test_disk_full_is_typed_and_recoverable(small_disk):
    import json

    here = os.path.dirname(os.path.abspath(__file__))
    proc = run_python(CHILD, small_disk, here, timeout=120, check=False)
    assert proc.returncode == 0, f"child died ({proc.returncode}): {proc.stderr[-2000:]}"
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    report("disk_full", **figures)
    assert figures["full_errors"] == 1 and figures["acked_before_full"] > 100
    assert figures["resumed"] == 20
    assert figures["lost_acked"] == 0 and figures["gaps"] == 0
    assert figures["duplicates"] == 0 and figures["torn_values"] == 0
