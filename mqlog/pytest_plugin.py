"""pytest plugin: a temporary mqlog broker per test, standing in for Kafka.

Installed with mqlog (entry point ``pytest11``, name ``mqlog``); ``-p no:mqlog`` turns
it off, ``-p mqlog`` loads it where plugin autoloading is disabled. It provides:

* ``mqlog_broker``: a fresh temporary :class:`TestBroker` per test, closed and deleted
  after it. Drop-in clients created during the test (``mqlog.kafka``,
  ``mqlog.confluent``, ``mqlog.aiokafka``) with any ``bootstrap_servers`` other than
  an ``mqlog://`` directory use it; ``MQLOG_BOOTSTRAP`` is hidden meanwhile, so no two
  tests ever share a store.
* ``mqlog_server``: the test's broker served over the Kafka protocol on a free loopback
  port (:class:`TestServer`: ``bootstrap_servers``, ``broker`` and the assertion
  helpers), so real Kafka clients — in this process or another, in any language —
  connect to it; stopped after the test. Needs the ``serve`` extra (kio).
* ``fake_kafka``: the ``mqlog_broker`` broker, plus ``import kafka`` /
  ``confluent_kafka`` / ``aiokafka`` (and every submodule) resolving to the drop-ins
  for the test, whether or not the real packages are installed or already imported;
  ``sys.modules`` is restored afterwards (the real modules, the same objects).
* ``--mqlog-fake-kafka`` / ini ``mqlog_fake_kafka = true``: the same aliases for the
  whole session, installed before conftest files and test modules are imported (so
  module-level ``from kafka import KafkaProducer`` gets the drop-in), backed by a
  session temporary broker; tests asking for ``mqlog_broker`` / ``fake_kafka`` still
  get their own.

Under pytest-xdist every worker is a process with its own temporary brokers (fresh
``tempfile`` directories); nothing is shared through files or the environment.

Cheap to import: pytest loads this module in every session of every project that has
mqlog installed, so it imports no other mqlog module at import time (only the package
itself, as any submodule must); the broker, the import aliases and the drop-ins are
imported inside the fixtures and hooks that need them.

Do not also name it in ``pytest_plugins`` or ``-p mqlog.pytest_plugin`` while the entry
point is active: pytest refuses one module registered under two names.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker
    from .records import ConsumerRecord, TopicInfo, TopicPartition
    from .server import ServerHandle

# TestBroker is built on first access (module __getattr__ below).
__all__ = ["TestBroker", "TestServer", "new_test_broker"]  # noqa: F822

_FLAG = "--mqlog-fake-kafka"
_INI = "mqlog_fake_kafka"
_ENV = "MQLOG_BOOTSTRAP"  # mqlog._bootstrap.ENV, spelled out to keep this import cheap


# -- the broker tests get ---------------------------------------------------------------


@functools.cache
def _test_broker_class() -> type:
    """Build :class:`TestBroker` on first use, so importing the plugin stays cheap."""
    from .broker import Broker
    from .errors import UnknownTopicOrPartitionError

    class TestBroker(Broker):
        """A temporary :class:`mqlog.Broker` with assertion helpers for tests.

        Everything a broker does, plus ``values()``, ``committed()``, ``lag()``,
        ``total_lag()``, ``wait_for_messages()`` and ``await_messages()``; ``faults``
        injects errors and latency into the drop-in clients (see :mod:`mqlog.faults`).
        Thread-safe, as every broker.
        """

        __test__ = False  # not a test class, whatever module imports it

        _closed_message = (
            "this test broker is closed: the test that owned it has ended. A client "
            "(consumer, admin) kept from an earlier test cannot be used in a later one: "
            "create it in each test or fixture; see 'Clients your code keeps between "
            "tests' in mqlog's docs/testing.md")

        #: Changes each time the plugin starts or stops serving a broker (a test
        #: begins or ends). A drop-in producer made on a TestBroker compares it at
        #: each send and, when it changed, moves to the broker its bootstrap_servers
        #: resolve to now: a producer kept in a global follows the tests.
        serving_epoch = 0

        def values(self, topic: str) -> list[bytes | None]:
            """The values of every record of ``topic``, ordered by (partition, offset).

            Raises:
                UnknownTopicOrPartitionError: no such topic.
            """
            return [r.value for r in self.messages(topic)]

        def committed(self, group_id: str) -> dict[TopicPartition, int]:
            """The offsets ``group_id`` committed: ``{TopicPartition: next offset to
            read}`` ({} for a group that never committed)."""
            return {tp: om.offset for tp, om in self.group_offsets(group_id).items()}

        def lag(self, group_id: str) -> dict[TopicPartition, int]:
            """How many records ``group_id`` has yet to commit, per partition it
            committed for or is assigned (log end minus committed offset; the whole
            partition where it never committed)."""
            admin = self.admin()
            try:
                return {tp: gl.lag for tp, gl in admin.lag(group_id).items()}
            finally:
                admin.close()

        def total_lag(self, group_id: str) -> int:
            """The sum of :meth:`lag` over the group's partitions."""
            return sum(self.lag(group_id).values())

        def wait_for_messages(self, topic: str, count: int, timeout: float = 10.0
                              ) -> list[ConsumerRecord]:
            """Wait until ``topic`` holds at least ``count`` records; return them all
            (ordered by partition, offset). For code under test that produces in the
            background (callbacks, asyncio tasks, threads).

            Waits on the broker's new-data condition, never by sleeping.

            Raises:
                ValueError: ``count`` < 0 or ``timeout`` < 0.
                AssertionError: fewer than ``count`` records after ``timeout`` seconds
                    (the message says how many there were).
            """
            if not isinstance(count, int) or count < 0:
                raise ValueError(f"count={count!r} must be an int >= 0")
            if not isinstance(timeout, (int, float)) or timeout < 0:
                raise ValueError(f"timeout={timeout!r} must be a number of seconds >= 0")
            deadline = time.monotonic() + timeout
            while True:
                # Read the data sequence before the records: a commit landing between
                # the two changes it, so the wait below cannot miss it.
                with self._data_cond:
                    seq = self._data_seq
                try:
                    found = self.messages(topic)
                except UnknownTopicOrPartitionError:
                    found = []
                remaining = deadline - time.monotonic()
                if len(found) >= count:
                    return found
                if remaining <= 0:
                    raise AssertionError(
                        f"topic {topic!r} has {len(found)} record(s) after {timeout}s, "
                        f"expected at least {count}: did the code under test produce "
                        "(and flush) to this broker?")
                with self._data_cond:
                    self._data_cond.wait_for(lambda s=seq: self._data_seq != s, remaining)

        async def await_messages(self, topic: str, count: int, timeout: float = 10.0
                                 ) -> list[ConsumerRecord]:
            """:meth:`wait_for_messages` for async tests: waits in a worker thread, so
            the event loop keeps running the code under test (aiokafka clients and
            tasks produce on the loop; a blocking wait there would stall them).

            Raises:
                ValueError, AssertionError: as :meth:`wait_for_messages`.
            """
            import asyncio

            return await asyncio.to_thread(self.wait_for_messages, topic, count, timeout)

    TestBroker.__module__ = __name__
    TestBroker.__qualname__ = "TestBroker"
    return TestBroker


def __getattr__(name: str) -> Any:
    # PEP 562: ``from mqlog.pytest_plugin import TestBroker`` (annotations, isinstance)
    # builds the class on demand instead of at plugin import.
    if name == "TestBroker":
        return _test_broker_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def new_test_broker(**options: Any) -> Broker:
    """A fresh temporary :class:`TestBroker` (``options`` as :func:`mqlog.open`'s,
    without ``path``)."""
    return _test_broker_class()(None, **options)


# -- the served broker --------------------------------------------------------------------


class TestServer:
    """The test's broker served over the Kafka protocol (what ``mqlog_server`` yields).

    ``bootstrap_servers`` (``"127.0.0.1:PORT"``) goes into any Kafka client's
    configuration: kafka-python, confluent-kafka, aiokafka, a Java, Go or Node client,
    ``kcat``, in this process or a subprocess. ``broker`` is the test's
    :class:`TestBroker` (the ``mqlog_broker`` fixture's), and its assertion helpers are
    here too, so a test checks what the real clients did without opening one more.
    Thread-safe, as the broker and the server are.

    Defined here rather than built on demand like :class:`TestBroker`: it imports
    nothing, so it costs the plugin's import nothing.
    """

    __test__ = False  # not a test class, whatever module imports it

    def __init__(self, broker: Any, handle: ServerHandle) -> None:
        self._broker = broker
        self._handle = handle

    @property
    def bootstrap_servers(self) -> str:
        """``"127.0.0.1:PORT"``: the address the server listens on and announces."""
        return self._handle.bootstrap_servers

    @property
    def host(self) -> str:
        return self._handle.host

    @property
    def port(self) -> int:
        return self._handle.port

    @property
    def broker(self) -> Any:
        """The served :class:`TestBroker` (the same object as ``mqlog_broker``)."""
        return self._broker

    @property
    def closed(self) -> bool:
        """Whether the server stopped (it does when the test ends)."""
        return self._handle.closed

    # The broker's assertion helpers and the calls a test makes to arrange its data.

    def create_topic(self, name: str, partitions: int | None = None,
                     config: dict[str, Any] | None = None) -> TopicInfo:
        """As :meth:`mqlog.Broker.create_topic`."""
        return self._broker.create_topic(name, partitions, config)

    def topics(self) -> dict[str, TopicInfo]:
        """As :meth:`mqlog.Broker.topics`."""
        return self._broker.topics()

    def messages(self, topic: str, isolation_level: str = "read_uncommitted"
                 ) -> list[ConsumerRecord]:
        """As :meth:`mqlog.Broker.messages`."""
        return self._broker.messages(topic, isolation_level)

    def values(self, topic: str) -> list[bytes | None]:
        """As :meth:`TestBroker.values`."""
        return self._broker.values(topic)

    def committed(self, group_id: str) -> dict[TopicPartition, int]:
        """As :meth:`TestBroker.committed`."""
        return self._broker.committed(group_id)

    def lag(self, group_id: str) -> dict[TopicPartition, int]:
        """As :meth:`TestBroker.lag`."""
        return self._broker.lag(group_id)

    def total_lag(self, group_id: str) -> int:
        """As :meth:`TestBroker.total_lag`."""
        return self._broker.total_lag(group_id)

    def wait_for_messages(self, topic: str, count: int, timeout: float = 10.0
                          ) -> list[ConsumerRecord]:
        """As :meth:`TestBroker.wait_for_messages`."""
        return self._broker.wait_for_messages(topic, count, timeout)

    async def await_messages(self, topic: str, count: int, timeout: float = 10.0
                             ) -> list[ConsumerRecord]:
        """As :meth:`TestBroker.await_messages`."""
        return await self._broker.await_messages(topic, count, timeout)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "serving"
        return f"<TestServer {self.bootstrap_servers} {state} {self._broker.path}>"



# -- isolation ----------------------------------------------------------------------------

@contextmanager
def _hide_bootstrap_env() -> Iterator[None]:
    """Hide MQLOG_BOOTSTRAP inside the block: it would send every client to one shared
    store, ahead of the installed broker, and tests would see each other's records.
    Scopes nest (session, then test) and unwind in reverse, so each restores what it
    took."""
    saved = os.environ.pop(_ENV, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[_ENV] = saved


@contextmanager
def _serving(broker: Broker) -> Iterator[Broker]:
    """Make ``broker`` the one drop-in clients resolve to, inside the block."""
    # "from ._bootstrap import" looks the module up in sys.modules, as the drop-ins'
    # own imports do; "from . import _bootstrap" could return a stale package attribute
    # after sys.modules was restored (pytester runs), and install into the wrong list.
    from ._bootstrap import install

    cls = _test_broker_class()
    with _hide_bootstrap_env(), install(broker):
        cls.serving_epoch += 1
        try:
            yield broker
        finally:
            cls.serving_epoch += 1


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def mqlog_broker() -> Iterator[Any]:
    """A fresh temporary mqlog broker (:class:`TestBroker`) for this test only.

    Drop-in clients the test creates without an ``mqlog://`` address use it. It is
    closed (its clients with it) and its directory deleted when the test ends.
    """
    broker = new_test_broker()
    try:
        with _serving(broker):
            yield broker
    finally:
        broker.close()


@pytest.fixture
def mqlog_server(mqlog_broker: Any) -> Iterator[TestServer]:
    """``mqlog_broker`` served over the Kafka protocol on a free loopback port.

    Yields a :class:`TestServer`: real Kafka clients (any library, any language, this
    process or a subprocess) connect to ``mqlog_server.bootstrap_servers``; drop-in
    clients of the test use the same broker, whatever address they are given. The
    server stops when the test ends (its connections are closed), then the broker is
    closed and deleted. Needs the ``serve`` extra (``pip install 'mqlog[serve]'``).
    """
    handle = mqlog_broker.serve(port=0)  # kio missing: its ImportError says what to install
    try:
        yield TestServer(mqlog_broker, handle)
    finally:
        handle.close()


@pytest.fixture
def fake_kafka(mqlog_broker: Any) -> Iterator[Any]:
    """``mqlog_broker``, with ``kafka``, ``confluent_kafka`` and ``aiokafka`` imports
    resolving to mqlog's drop-ins for this test (real packages hidden, restored after).

    Returns the test's :class:`TestBroker`: ``fake_kafka.faults``,
    ``fake_kafka.messages(topic)``, ``fake_kafka.lag(group)`` ...
    """
    from ._fake_modules import kafka_aliases

    with kafka_aliases().active_in():
        yield mqlog_broker


# -- session-wide stand-ins ----------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mqlog", "mqlog (Kafka stand-in)")
    group.addoption(
        _FLAG, action="store_true", default=False, dest="mqlog_fake_kafka",
        help="make kafka, confluent_kafka and aiokafka imports resolve to mqlog's "
             "drop-ins for the whole session (before test modules are imported), "
             "backed by a session temporary broker")
    parser.addini(
        _INI, type="bool", default=False,
        help="true: as " + _FLAG + " (kafka/confluent_kafka/aiokafka are mqlog's "
             "drop-ins for the whole session)")


_SESSION = pytest.StashKey[ExitStack]()


def _wanted(config: pytest.Config) -> bool:
    option = getattr(config.option, "mqlog_fake_kafka", False)
    known = getattr(config, "known_args_namespace", None)
    early = getattr(known, "mqlog_fake_kafka", False) if known is not None else False
    return bool(option or early or config.getini(_INI))


def _start_session(config: pytest.Config) -> None:
    if _SESSION in config.stash or not _wanted(config):
        return
    from ._fake_modules import kafka_aliases

    stack = ExitStack()
    config.stash[_SESSION] = stack
    # pytest_unconfigure undoes it all; this cleanup is the net for a session that
    # fails before it is configured (a conftest that cannot be imported, say).
    config.add_cleanup(stack.close)
    broker = stack.enter_context(new_test_broker())
    stack.enter_context(_serving(broker))
    stack.enter_context(kafka_aliases().active_in())


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> None:
    # Only entry-point and -p plugins see this hook; it runs before the rootdir's
    # conftest.py files are imported, so they may import kafka at module level too.
    _start_session(early_config)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # A plugin loaded after the initial conftests (autoloading off, and named in a
    # conftest's pytest_plugins) starts here, still before test modules are imported.
    _start_session(config)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    stack = config.stash.get(_SESSION, None)
    if stack is not None:
        stack.close()  # aliases off, broker uninstalled, closed and deleted; idempotent
