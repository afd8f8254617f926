"""Fault injection registry (broker.faults) and drop-in broker resolution."""

from __future__ import annotations

import logging
import os
import threading

import pytest

import mqlog
from mqlog import _bootstrap
from mqlog.errors import CommitFailedError, KafkaTimeoutError


def test_fail_next_fails_exactly_n_calls_with_the_given_error(broker):
    faults = broker.faults
    assert faults is broker.faults  # one registry per broker
    faults.fail_next("send", KafkaTimeoutError, times=2)
    faults.fail_next("commit", CommitFailedError("rebalanced"))
    for _ in range(2):
        with pytest.raises(KafkaTimeoutError, match="injected"):
            faults.check("send")
    faults.check("send")  # the third passes
    with pytest.raises(CommitFailedError, match="rebalanced"):
        faults.check("commit")
    assert not faults.armed


def test_delay_adds_latency_until_removed(broker):
    broker.faults.delay("poll", 0.05)
    assert broker.faults.take("poll") == (None, 0.05)
    broker.faults.delay("poll", 0)
    assert broker.faults.take("poll") == (None, 0.0) and not broker.faults.armed


def test_bad_arguments_are_refused(broker):
    with pytest.raises(ValueError, match="operation 'fetch'"):
        broker.faults.fail_next("fetch", KafkaTimeoutError)
    with pytest.raises(TypeError, match="exception"):
        broker.faults.fail_next("send", "oops")
    with pytest.raises(ValueError, match="times"):
        broker.faults.fail_next("send", KafkaTimeoutError, times=0)
    with pytest.raises(ValueError, match="seconds"):
        broker.faults.delay("send", -1)


def test_expire_member_makes_the_member_lose_and_rejoin(broker):
    broker.create_topic("t", 2)
    lost = threading.Event()

    class Listener(mqlog.ConsumerRebalanceListener):
        def on_partitions_lost(self, partitions):
            lost.set()

    c = broker.consumer(group_id="g")
    c.subscribe(["t"], listener=Listener())
    c.poll(timeout_ms=50)
    assert len(c.assignment()) == 2
    assert len(broker.faults.expire_member("g")) == 1
    c.poll(timeout_ms=50)
    assert lost.is_set() and len(c.assignment()) == 2  # rejoined
    assert broker.faults.expire_member("nope") == []
    c.close()


def test_bootstrap_resolution(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(_bootstrap.ENV, raising=False)
    path = str(tmp_path / "d")
    shared = _bootstrap.resolve(f"mqlog://{path}")
    assert shared.path == os.path.realpath(path)
    assert _bootstrap.resolve([f"mqlog://{path}"]) is shared  # one broker per directory
    with mqlog.open() as mine:
        with _bootstrap.install(mine):
            assert _bootstrap.resolve("localhost:9092") is mine
            assert _bootstrap.resolve(f"mqlog://{path}") is shared
        monkeypatch.setattr(_bootstrap, "_warned", False)
        with caplog.at_level(logging.WARNING, logger="mqlog.bootstrap"):
            default = _bootstrap.resolve("localhost:9092")
            assert _bootstrap.resolve(["kafka:9092"]) is default is not mine
        assert len([r for r in caplog.records if "temporary" in r.message]) == 1
    monkeypatch.setenv(_bootstrap.ENV, f"mqlog://{path}")
    assert _bootstrap.resolve("localhost:9092") is shared
    with pytest.raises(TypeError, match="bootstrap_servers"):
        monkeypatch.delenv(_bootstrap.ENV)
        _bootstrap.resolve(42)
    with pytest.raises(ValueError, match="names no directory"):
        _bootstrap.resolve("mqlog://")
    shared.close()
