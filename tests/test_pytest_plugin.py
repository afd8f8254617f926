"""pytest plugin: fixtures, import aliases, the session flag, helpers, faults, xdist.

Most tests run a small inner test suite with ``pytester``, the way a user's suite uses
the plugin (loaded through its ``pytest11`` entry point, as after ``pip install``).

The real kafka-python, confluent-kafka and aiokafka are installed (test extras), and
other test modules import them: every test here must hold whether or not they are
already in ``sys.modules`` when it starts, as in a user's session.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import textwrap
import threading

import pytest
from helpers import run_python

import mqlog
import mqlog.broker  # noqa: F401 - see below
from mqlog import TopicPartition
from mqlog._fake_modules import ModuleAliases, kafka_aliases
from mqlog.errors import KafkaTimeoutError

# pytester takes out of sys.modules whatever an inner run imported. mqlog.broker is
# imported here, before any inner run, so that it is not one of those: otherwise the
# plugin's TestBroker (built on first use, inside an inner run) would derive from a
# Broker class that the next `mqlog.Broker` re-imports as another class.

pytest_plugins = ["pytester"]


# -- helpers -------------------------------------------------------------------------------


def write_package(root, name: str, files: dict[str, str]) -> None:
    """Write a package ``name`` under ``root``: ``files`` maps a relative module path
    ("__init__.py", "errors.py", "admin/__init__.py") to its source."""
    for rel, source in files.items():
        path = root / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


# A stand-in for an installed kafka-python: the fakes must hide it, and put it back.
REAL_KAFKA = {
    "__init__.py": """
        REAL = True
        class KafkaProducer:
            def __init__(self, **config):
                raise RuntimeError("the real kafka-python would connect to a cluster")
        """,
    "errors.py": "REAL = True\n",
}


@pytest.fixture
def planted_kafka(pytester, monkeypatch):
    """The stand-in for kafka-python (REAL_KAFKA) in the inner suite's directory, and
    any `kafka` modules already imported (the real kafka-python, which other test
    modules use) out of sys.modules until the test ends, so the inner run's `import
    kafka` finds the stand-in."""
    write_package(pytester.path, "kafka", REAL_KAFKA)
    for name in [n for n in sys.modules if n.partition(".")[0] == "kafka"]:
        monkeypatch.delitem(sys.modules, name)


def run_inner(pytester, *args: str):
    """Run the inner suite in this process. Hypothesis's plugin is left out: the
    inner run would re-import hypothesis each time (~1 s) and nothing here uses it."""
    return pytester.runpytest("-p", "no:hypothesispytest", *args)


# -- installation and import cost ------------------------------------------------------------


def test_plugin_is_a_pytest11_entry_point():
    eps = importlib.metadata.entry_points(group="pytest11")
    assert {(ep.name, ep.value) for ep in eps if ep.name == "mqlog"} == {
        ("mqlog", "mqlog.pytest_plugin")}


def test_importing_the_plugin_imports_nothing_beyond_the_mqlog_package():
    # pytest imports the plugin in every session of every project with mqlog installed:
    # the broker, the store and the drop-ins must wait for a fixture or the flag.
    out = run_python(
        "import sys, pytest, mqlog\n"
        "before = set(sys.modules)\n"
        "import mqlog.pytest_plugin\n"
        "print(sorted(set(sys.modules) - before))\n").stdout
    assert out.strip() == "['mqlog.pytest_plugin']"


def test_plugin_loads_with_p_when_autoload_is_off_and_p_no_disables_it(pytester,
                                                                     monkeypatch):
    pytester.makepyfile("""
        def test_it(mqlog_broker):
            assert not mqlog_broker.closed
        """)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    run_inner(pytester, "-p", "mqlog").assert_outcomes(passed=1)
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    result = run_inner(pytester, "-p", "no:mqlog")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'mqlog_broker' not found*"])


# -- mqlog_broker ----------------------------------------------------------------------------


def test_mqlog_broker_is_fresh_per_test_and_deleted_after(pytester):
    pytester.makepyfile("""
        import os

        import pytest

        import mqlog

        seen = []

        def test_first(mqlog_broker):
            mqlog_broker.producer().send("t", b"first").get(10)
            assert mqlog_broker.values("t") == [b"first"]
            seen.append(mqlog_broker)

        def test_second(mqlog_broker):
            assert "t" not in mqlog_broker.topics()  # nothing leaks from test_first
            mqlog_broker.producer().send("t", b"second").get(10)
            assert mqlog_broker.values("t") == [b"second"]
            seen.append(mqlog_broker)

        def test_previous_brokers_are_closed_and_deleted(mqlog_broker):
            assert len({b.path for b in seen + [mqlog_broker]}) == 3
            for b in seen:
                assert b.closed and b.temporary and not os.path.exists(b.path)
            # A consumer kept from an earlier test says why it cannot be used.
            with pytest.raises(mqlog.errors.ClosedError, match="kept from an earlier test"):
                seen[0].consumer("t")
        """)
    run_inner(pytester).assert_outcomes(passed=3)


def test_mqlog_broker_serves_drop_in_clients_and_hides_mqlog_bootstrap(pytester,
                                                                       monkeypatch,
                                                                       tmp_path):
    # MQLOG_BOOTSTRAP would send every client to one shared store: inside the fixture
    # the test's broker wins, and the variable is back afterwards.
    shared = tmp_path / "shared-store"
    monkeypatch.setenv("MQLOG_BOOTSTRAP", f"mqlog://{shared}")
    pytester.makepyfile("""
        import os
        from mqlog.kafka import KafkaProducer

        def test_it(mqlog_broker):
            assert "MQLOG_BOOTSTRAP" not in os.environ
            for servers in ("localhost:9092", ["kafka-1:9092", "kafka-2:9092"]):
                producer = KafkaProducer(bootstrap_servers=servers)
                producer.send("t", repr(servers).encode()).get(timeout=10)
                producer.close()
            assert mqlog_broker.values("t") == [
                b"'localhost:9092'", b"['kafka-1:9092', 'kafka-2:9092']"]
        """)
    run_inner(pytester).assert_outcomes(passed=1)
    assert os.environ["MQLOG_BOOTSTRAP"] == f"mqlog://{shared}"
    assert not shared.exists()


def test_mqlog_broker_assertion_helpers(mqlog_broker):
    # The fixture is used directly here: this suite itself runs with the plugin.
    b = mqlog_broker
    b.create_topic("orders", partitions=3)
    with b.producer() as p:
        for i in range(12):
            p.send("orders", b"v%d" % i, key=b"k%d" % (i % 5), partition=i % 3)
    records = b.messages("orders")
    assert [(r.partition, r.offset) for r in records] == [
        (p, o) for p in range(3) for o in range(4)]
    assert b.values("orders") == [r.value for r in records]
    assert b.committed("billing") == {} and b.total_lag("billing") == 0

    c = b.consumer(group_id="billing", auto_offset_reset="earliest",
                   enable_auto_commit=False)
    c.assign([TopicPartition("orders", p) for p in range(3)])
    c.commit({TopicPartition("orders", 0): mqlog.OffsetAndMetadata(4, ""),
              TopicPartition("orders", 1): mqlog.OffsetAndMetadata(1, "")})
    assert b.committed("billing") == {TopicPartition("orders", 0): 4,
                                      TopicPartition("orders", 1): 1}
    assert b.lag("billing") == {TopicPartition("orders", 0): 0,
                                TopicPartition("orders", 1): 3}
    assert b.total_lag("billing") == 3
    c.close()


def test_wait_for_messages_waits_for_background_producers(mqlog_broker):
    b = mqlog_broker
    go = threading.Event()

    def produce_later():
        go.wait(10)
        with b.producer(linger_ms=5) as p:
            for i in range(3):
                p.send("events", b"%d" % i)

    t = threading.Thread(target=produce_later, daemon=True)
    t.start()
    go.set()
    assert [r.value for r in b.wait_for_messages("events", 3, timeout=10)] == [
        b"0", b"1", b"2"]
    t.join(10)
    with pytest.raises(AssertionError, match="'events' has 3 record.*at least 4"):
        b.wait_for_messages("events", 4, timeout=0.05)
    with pytest.raises(AssertionError, match="'missing' has 0 record"):
        b.wait_for_messages("missing", 1, timeout=0)
    with pytest.raises(ValueError, match="count=-1"):
        b.wait_for_messages("events", -1)
    with pytest.raises(ValueError, match="timeout=-1"):
        b.wait_for_messages("events", 1, timeout=-1)


def test_await_messages_lets_the_loop_run_the_code_under_test(mqlog_broker):
    # An async test waiting for what an aiokafka task produces: the task runs on the
    # test's loop, so the wait must not block it (wait_for_messages would, until its
    # timeout).
    import asyncio

    from mqlog.aiokafka import AIOKafkaProducer

    async def app():
        async with AIOKafkaProducer(bootstrap_servers="kafka:9092") as producer:
            for i in range(3):
                await producer.send_and_wait("emails", b"%d" % i)

    async def test():
        task = asyncio.create_task(app())
        records = await mqlog_broker.await_messages("emails", 3, timeout=10)
        await task
        return [r.value for r in records]

    assert asyncio.run(asyncio.wait_for(test(), 20)) == [b"0", b"1", b"2"]
    with pytest.raises(AssertionError, match="'emails' has 3 record"):
        asyncio.run(mqlog_broker.await_messages("emails", 4, timeout=0.05))


def test_test_broker_is_importable_and_not_collected():
    from mqlog.pytest_plugin import TestBroker, new_test_broker

    assert issubclass(TestBroker, mqlog.Broker) and TestBroker.__test__ is False
    with new_test_broker(num_partitions=2) as b:
        assert isinstance(b, TestBroker) and b.temporary and b.num_partitions == 2


def test_faults_are_reachable_through_both_fixtures(mqlog_broker, fake_kafka):
    assert fake_kafka is mqlog_broker
    fake_kafka.faults.fail_next("send", KafkaTimeoutError, times=2)
    assert mqlog_broker.faults.armed


# -- mqlog_server --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_loaded():
    """Serve once in this process before the inner runs that serve: pytester unloads
    whatever an inner run imported, and the server's modules (kio's schemas) take a
    second or more to import each time."""
    with mqlog.open() as broker:
        broker.serve(port=0).close()


def test_mqlog_server_serves_the_tests_broker_to_real_clients(pytester, server_loaded):
    # The real confluent-kafka (librdkafka) over the wire, as an application under test
    # configured with the fixture's address would use it; a drop-in client given the
    # same address lands on the same broker; and a separate process connects too.
    pytester.makepyfile("""
        import re
        import subprocess
        import sys
        import time

        import confluent_kafka
        from confluent_kafka.admin import AdminClient, NewTopic

        from mqlog import TopicPartition
        from mqlog.kafka import KafkaProducer as DropInProducer

        seen = []

        def test_real_clients(mqlog_server, mqlog_broker):
            assert re.fullmatch(r"127\\.0\\.0\\.1:[0-9]+", mqlog_server.bootstrap_servers)
            assert mqlog_server.bootstrap_servers.endswith(f":{mqlog_server.port}")
            assert mqlog_server.broker is mqlog_broker and not mqlog_server.closed
            conf = {"bootstrap.servers": mqlog_server.bootstrap_servers}
            admin = AdminClient(conf)
            for future in admin.create_topics([NewTopic("orders", 2, 1)]).values():
                future.result(10)
            assert mqlog_server.topics()["orders"].partitions == 2
            producer = confluent_kafka.Producer(
                {**conf, "enable.idempotence": True, "compression.type": "lz4"})
            for i in range(4):
                producer.produce("orders", b"v%d" % i, key=b"k%d" % i, partition=i % 2)
            assert producer.flush(10) == 0
            assert sorted(mqlog_server.values("orders")) == [b"v0", b"v1", b"v2", b"v3"]
            drop_in = DropInProducer(bootstrap_servers=mqlog_server.bootstrap_servers)
            drop_in.send("orders", b"v4", partition=0).get(timeout=10)
            drop_in.close()
            consumer = confluent_kafka.Consumer({
                **conf, "group.id": "billing", "auto.offset.reset": "earliest",
                "enable.auto.commit": False, "heartbeat.interval.ms": 100})
            consumer.subscribe(["orders"])
            got = []
            deadline = time.monotonic() + 20
            while len(got) < 5 and time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is not None and message.error() is None:
                    got.append(message.value())
            consumer.commit(asynchronous=False)
            consumer.close()
            assert sorted(got) == [b"v0", b"v1", b"v2", b"v3", b"v4"]
            assert mqlog_server.committed("billing") == {
                TopicPartition("orders", 0): 3, TopicPartition("orders", 1): 2}
            assert mqlog_server.total_lag("billing") == 0
            seen.append(mqlog_server)

        def test_another_process(mqlog_server):
            # A service under test in another process (or language) gets the address.
            child = (
                "import sys, confluent_kafka\\n"
                "p = confluent_kafka.Producer({'bootstrap.servers': sys.argv[1]})\\n"
                "p.produce('events', b'from a child')\\n"
                "sys.exit(p.flush(10))\\n")
            subprocess.run([sys.executable, "-c", child, mqlog_server.bootstrap_servers],
                           check=True, timeout=60)
            records = mqlog_server.wait_for_messages("events", 1, timeout=10)
            assert [r.value for r in records] == [b"from a child"]
            assert "orders" not in mqlog_server.topics()  # its own broker
            seen.append(mqlog_server)

        def test_servers_and_brokers_are_stopped_after_their_test(mqlog_server):
            assert len(seen) == 2 and all(s.closed and s.broker.closed for s in seen)
            assert len({s.broker.path for s in seen + [mqlog_server]}) == 3
            assert "serving" in repr(mqlog_server) and "closed" in repr(seen[0])
        """)
    run_inner(pytester).assert_outcomes(passed=3)


def test_mqlog_server_without_kio_says_which_extra_to_install(pytester):
    # A fresh process (the server's modules must not be imported yet), where kio
    # cannot be imported.
    pytester.makeconftest("""
        import sys
        sys.modules["kio"] = None  # `import kio` fails as if it were not installed
        """)
    pytester.makepyfile("""
        def test_it(mqlog_server):
            pass
        """)
    result = pytester.runpytest_subprocess("-p", "no:hypothesispytest")
    result.assert_outcomes(errors=1)
    result.stdout.re_match_lines([r"E +ImportError: .*pip install 'mqlog\[serve\]'"])


# -- module aliases (mechanics, with stand-in packages) -----------------------------------------


@pytest.fixture
def stub_packages(tmp_path, monkeypatch):
    """A 'real' package and a 'drop-in' target on sys.path, with names unique to this
    module so no other test has imported them."""
    write_package(tmp_path, "plg_real", {
        "__init__.py": "REAL = True\n",
        "only_real.py": "",
        "errors.py": "REAL = True\n"})
    write_package(tmp_path, "plg_target", {
        "__init__.py": "FAKE = True\n",
        "errors.py": "class KafkaError(Exception):\n    pass\n",
        "admin/__init__.py": "from .new import NewTopic\n",
        "admin/new.py": "class NewTopic:\n    pass\n",
        "broken.py": "import plg_no_such_dependency\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    yield ModuleAliases({"plg_real": "plg_target"})
    for name in [n for n in sys.modules if n.startswith(("plg_real", "plg_target"))]:
        del sys.modules[name]


def test_aliases_map_every_submodule_and_restore_sys_modules(stub_packages):
    import plg_real
    import plg_real.errors

    real = plg_real  # the imports below rebind the name plg_real
    before = {n: m for n, m in sys.modules.items() if n.startswith("plg_real")}
    meta_path = list(sys.meta_path)
    with stub_packages.active_in():
        import plg_real as aliased
        import plg_real.admin.new
        from plg_real.admin import NewTopic
        from plg_real.errors import KafkaError

        import plg_target
        import plg_target.admin.new
        import plg_target.errors

        assert aliased is plg_target and aliased.__name__ == "plg_target"
        assert plg_target.__spec__.name == "plg_target"  # the target's own identity
        assert KafkaError is plg_target.errors.KafkaError
        assert NewTopic is plg_target.admin.NewTopic
        assert sys.modules["plg_real.admin.new"] is plg_target.admin.new
        assert importlib.import_module("plg_real.errors") is plg_target.errors
        assert importlib.util.find_spec("plg_real") is not None
        with pytest.raises(ModuleNotFoundError, match="'plg_real.only_real'.*"
                           "'plg_target.only_real'") as info:
            import plg_real.only_real  # noqa: F401 - the real package is hidden
        assert info.value.name == "plg_real.only_real"
        with pytest.raises(ModuleNotFoundError) as info:
            import plg_real.broken  # noqa: F401 - the target's own import error
        assert info.value.name == "plg_no_such_dependency"
    assert list(sys.meta_path) == meta_path
    after = {n: m for n, m in sys.modules.items() if n.startswith("plg_real")}
    assert after.keys() == before.keys()
    assert all(after[n] is before[n] for n in before)
    import plg_real as again

    assert again is real and again.REAL
    assert "plg_target" in sys.modules  # targets stay imported under their own names


def test_aliases_hide_a_real_package_not_imported_before(stub_packages):
    with stub_packages.active_in():
        import plg_real

        assert plg_real.FAKE
    assert not any(n.startswith("plg_real") for n in sys.modules)
    import plg_real

    assert plg_real.REAL


def test_alias_activations_nest(stub_packages):
    aliases = stub_packages
    assert not aliases.active
    aliases.activate()
    aliases.activate()
    import plg_real

    assert plg_real.FAKE
    aliases.deactivate()
    assert aliases.active and sys.modules["plg_real"] is plg_real
    aliases.deactivate()
    assert not aliases.active and "plg_real" not in sys.modules
    assert "inactive" in repr(aliases)
    with pytest.raises(RuntimeError, match="without a matching activate"):
        aliases.deactivate()


def test_a_missing_target_names_the_alias():
    aliases = ModuleAliases({"plg_missing_alias": "plg_missing_target"})
    with aliases.active_in(), pytest.raises(ModuleNotFoundError,
                                            match="'plg_missing_target'") as info:
        import plg_missing_alias  # noqa: F401
    assert info.value.name == "plg_missing_alias"


@pytest.mark.parametrize("mapping, message", [
    ({"kafka.errors": "mqlog.kafka.errors"}, "top-level module name"),
    ({"kafka": "mqlog..kafka"}, "dotted module name"),
    ({"kafka": "kafka.fake"}, "onto itself"),
], ids=["dotted-alias", "bad-target", "onto-itself"])
def test_bad_alias_mappings_are_refused(mapping, message):
    with pytest.raises(ValueError, match=message):
        ModuleAliases(mapping)


def test_kafka_aliases_are_one_shared_instance():
    assert kafka_aliases() is kafka_aliases()
    assert kafka_aliases().aliases == {
        "kafka": "mqlog.kafka", "confluent_kafka": "mqlog.confluent",
        "aiokafka": "mqlog.aiokafka"}


# -- fake_kafka with the drop-ins ------------------------------------------------------------


def test_fake_kafka_hides_real_kafka_for_one_test_and_restores_it(pytester, planted_kafka):
    pytester.makepyfile(test_app="""
        import sys
        import time

        import kafka as real_kafka
        import kafka.errors as real_errors

        def test_real_before():
            assert real_kafka.REAL and sys.modules["kafka.errors"] is real_errors

        def test_fake(fake_kafka):
            import kafka
            import kafka.errors
            from kafka import KafkaConsumer, KafkaProducer
            from kafka.admin import KafkaAdminClient, NewTopic
            from kafka.errors import KafkaError
            from kafka.structs import TopicPartition

            assert kafka.__name__ == "mqlog.kafka" and kafka.errors is sys.modules[
                "mqlog.kafka.errors"]
            assert issubclass(kafka.errors.KafkaTimeoutError, KafkaError)
            admin = KafkaAdminClient(bootstrap_servers="kafka:9092")
            admin.create_topics([NewTopic(name="orders", num_partitions=2,
                                          replication_factor=1)])
            admin.close()
            producer = KafkaProducer(bootstrap_servers="kafka:9092")
            for i in range(6):
                producer.send("orders", b"v%d" % i, key=b"k%d" % i).get(timeout=10)
            producer.close()
            consumer = KafkaConsumer("orders", bootstrap_servers="kafka:9092",
                                     group_id="billing", auto_offset_reset="earliest",
                                     enable_auto_commit=False)
            seen = []
            deadline = time.monotonic() + 10
            while len(seen) < 6 and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=200).values():
                    seen.extend(record.value for record in records)
            consumer.commit()
            consumer.close()
            assert sorted(seen) == sorted(fake_kafka.values("orders"))
            assert len(seen) == 6 and fake_kafka.total_lag("billing") == 0
            assert set(fake_kafka.committed("billing")) == {
                TopicPartition("orders", 0), TopicPartition("orders", 1)}

        def test_real_after():
            import kafka
            import kafka.errors
            assert kafka is real_kafka and kafka.errors is real_errors
            assert sys.modules["kafka.errors"] is real_errors
        """)
    pytester.syspathinsert()
    run_inner(pytester).assert_outcomes(passed=3)


def test_fake_kafka_aliases_confluent_kafka(pytester):
    pytester.makepyfile("""
        import sys

        def test_it(fake_kafka):
            import confluent_kafka
            from confluent_kafka import Consumer, KafkaException, Producer
            from confluent_kafka.admin import AdminClient, NewTopic

            assert confluent_kafka.__name__ == "mqlog.confluent"
            assert sys.modules["confluent_kafka.admin"].__name__ == "mqlog.confluent.admin"
            conf = {"bootstrap.servers": "kafka:9092"}
            futures = AdminClient(conf).create_topics([NewTopic("orders", 3, 1)])
            for future in futures.values():
                future.result(10)
            delivered = []
            producer = Producer(conf)
            for i in range(3):
                producer.produce("orders", value=b"v%d" % i, key=b"k%d" % i,
                                 on_delivery=lambda err, msg: delivered.append(err))
            assert producer.flush(10) == 0 and delivered == [None] * 3
            consumer = Consumer({**conf, "group.id": "billing",
                                 "auto.offset.reset": "earliest"})
            consumer.subscribe(["orders"])
            got = []
            while len(got) < 3:
                msg = consumer.poll(5.0)
                assert msg is not None and msg.error() is None
                got.append(msg.value())
            consumer.close()
            assert sorted(got) == sorted(fake_kafka.values("orders"))
            assert fake_kafka.topics()["orders"].partitions == 3
            assert issubclass(KafkaException, Exception)

        def test_restored():
            assert not any(n.partition(".")[0] == "confluent_kafka" and
                           getattr(m, "__name__", "").startswith("mqlog.")
                           for n, m in sys.modules.items())
        """)
    run_inner(pytester).assert_outcomes(passed=2)


def test_fake_kafka_aliases_aiokafka(pytester):
    pytester.makepyfile("""
        import asyncio
        import sys

        def test_it(fake_kafka):
            import aiokafka
            import aiokafka.structs
            from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
            from aiokafka.errors import KafkaError, KafkaTimeoutError

            assert aiokafka.__name__ == "mqlog.aiokafka"
            assert issubclass(KafkaTimeoutError, KafkaError)

            async def main():
                producer = AIOKafkaProducer(bootstrap_servers="kafka:9092")
                await producer.start()
                fake_kafka.faults.fail_next("send", KafkaTimeoutError)
                try:
                    await producer.send_and_wait("events", b"lost")
                except KafkaTimeoutError:
                    pass
                else:
                    raise AssertionError("the injected send failure was not raised")
                await producer.send_and_wait("events", b"kept")
                await producer.stop()
                consumer = AIOKafkaConsumer("events", bootstrap_servers="kafka:9092",
                                            group_id="g", auto_offset_reset="earliest")
                await consumer.start()
                record = await asyncio.wait_for(consumer.getone(), 10)
                await consumer.stop()
                return record.value

            assert asyncio.run(main()) == b"kept"
            assert fake_kafka.values("events") == [b"kept"]

        def test_restored():
            assert "aiokafka" not in sys.modules or not sys.modules[
                "aiokafka"].__name__.startswith("mqlog.")
        """)
    run_inner(pytester).assert_outcomes(passed=2)


def test_fake_kafka_hides_real_clients_imported_before_it_and_restores_them(pytester,
                                                                           server_loaded):
    # The real packages (test extras here, and in many users' environments) imported
    # first, as a user's module or conftest does; then a fake_kafka test; then the real
    # ones again — the very same module objects — and still working: kafka-python's
    # producer against a served broker.
    pytester.makepyfile("""
        import sys

        import aiokafka
        import confluent_kafka
        import kafka
        import kafka.admin
        import kafka.errors
        from kafka import KafkaProducer as RealProducer

        NAMES = ("kafka", "confluent_kafka", "aiokafka")
        REAL = {n: m for n, m in sys.modules.items() if n.partition(".")[0] in NAMES}

        def is_mqlog(module):
            return getattr(module, "__name__", "").startswith("mqlog.")

        def test_real_packages_first():
            assert RealProducer.__module__ == "kafka.producer.kafka"
            assert "kafka.errors" in REAL and "confluent_kafka.cimpl" in REAL
            assert not any(is_mqlog(m) for m in REAL.values())

        def test_fake(fake_kafka):
            import aiokafka as a
            import confluent_kafka as c
            import kafka as k
            import kafka.errors
            from kafka import KafkaProducer
            from kafka.admin import KafkaAdminClient

            assert (k.__name__, c.__name__, a.__name__) == (
                "mqlog.kafka", "mqlog.confluent", "mqlog.aiokafka")
            assert kafka.errors.__name__ == "mqlog.kafka.errors"
            assert KafkaProducer is not RealProducer
            assert KafkaAdminClient.__module__.startswith("mqlog.kafka")
            assert not any(sys.modules.get(n) is m for n, m in REAL.items())
            KafkaProducer(bootstrap_servers="kafka:9092").send("t", b"fake").get(10)
            assert fake_kafka.values("t") == [b"fake"]

        def test_restored_and_working(mqlog_server):
            now = {n: m for n, m in sys.modules.items() if n.partition(".")[0] in NAMES}
            assert all(now.get(n) is m for n, m in REAL.items())
            assert not any(is_mqlog(m) for m in now.values())
            import kafka as again
            from kafka import KafkaProducer

            assert again is kafka and KafkaProducer is RealProducer
            producer = KafkaProducer(bootstrap_servers=mqlog_server.bootstrap_servers)
            producer.send("t", b"real").get(timeout=10)
            producer.close(timeout=10)
            assert mqlog_server.values("t") == [b"real"]
        """)
    run_inner(pytester).assert_outcomes(passed=3)
    assert not kafka_aliases().active


# -- fault injection through fake_kafka (the user's error handling under test) ------------------


def test_fault_injection_reaches_the_code_under_test(pytester):
    pytester.makepyfile("""
        import threading
        import time

        def publish_with_retries(producer, topic, value, attempts):
            # The kind of code a user wants to test: retry timeouts, give up after N.
            from kafka.errors import KafkaTimeoutError
            for attempt in range(1, attempts + 1):
                try:
                    return attempt, producer.send(topic, value).get(timeout=10)
                except KafkaTimeoutError:
                    if attempt == attempts:
                        raise

        def test_sends_fail_n_times_then_succeed(fake_kafka):
            from kafka import KafkaProducer
            from kafka.errors import KafkaTimeoutError
            fake_kafka.faults.fail_next("send", KafkaTimeoutError, times=2)
            producer = KafkaProducer(bootstrap_servers="kafka:9092")
            attempt, metadata = publish_with_retries(producer, "t", b"x", attempts=3)
            assert attempt == 3 and metadata.offset == 0
            assert fake_kafka.values("t") == [b"x"]  # the failed sends wrote nothing

        def test_retries_exhausted(fake_kafka):
            import pytest
            from kafka import KafkaProducer
            from kafka.errors import KafkaTimeoutError
            fake_kafka.faults.fail_next("send", KafkaTimeoutError, times=2)
            producer = KafkaProducer(bootstrap_servers="kafka:9092")
            with pytest.raises(KafkaTimeoutError, match="injected"):
                publish_with_retries(producer, "t", b"x", attempts=2)
            fake_kafka.create_topic("t")
            assert fake_kafka.values("t") == []

        def test_commit_and_poll_failures(fake_kafka):
            import pytest
            from kafka import KafkaConsumer, KafkaProducer
            from kafka.errors import CommitFailedError, KafkaTimeoutError
            KafkaProducer(bootstrap_servers="k").send("t", b"a").get(timeout=10)
            consumer = KafkaConsumer("t", bootstrap_servers="k", group_id="g",
                                     auto_offset_reset="earliest",
                                     enable_auto_commit=False)
            fake_kafka.faults.fail_next("poll", KafkaTimeoutError("fetch timed out"))
            with pytest.raises(KafkaTimeoutError, match="fetch timed out"):
                consumer.poll(timeout_ms=1000)
            records = {}
            deadline = time.monotonic() + 10
            while not records and time.monotonic() < deadline:
                records = consumer.poll(timeout_ms=200)
            assert [r.value for rs in records.values() for r in rs] == [b"a"]
            fake_kafka.faults.fail_next("commit", CommitFailedError)
            with pytest.raises(CommitFailedError):
                consumer.commit()
            assert fake_kafka.committed("g") == {} and fake_kafka.total_lag("g") == 1
            consumer.commit()
            assert fake_kafka.total_lag("g") == 0
            consumer.close()

        def test_latency(fake_kafka):
            from kafka import KafkaProducer
            producer = KafkaProducer(bootstrap_servers="k")
            fake_kafka.faults.delay("send", 0.2)
            started = time.monotonic()
            producer.send("t", b"slow").get(timeout=10)
            assert time.monotonic() - started >= 0.2
            fake_kafka.faults.clear()

        def test_expired_member_rejoins(fake_kafka):
            from kafka import ConsumerRebalanceListener, KafkaConsumer
            assigned = []

            class Listener(ConsumerRebalanceListener):
                def on_partitions_revoked(self, revoked):
                    pass

                def on_partitions_assigned(self, partitions):
                    assigned.append(sorted(p.partition for p in partitions))

            fake_kafka.create_topic("t", partitions=2)
            consumer = KafkaConsumer(bootstrap_servers="k", group_id="g")
            consumer.subscribe(["t"], listener=Listener())
            deadline = time.monotonic() + 10
            while not assigned and time.monotonic() < deadline:
                consumer.poll(timeout_ms=100)
            assert assigned == [[0, 1]]
            assert len(fake_kafka.faults.expire_member("g")) == 1
            while len(assigned) < 2 and time.monotonic() < deadline:
                consumer.poll(timeout_ms=100)
            assert assigned[-1] == [0, 1] and len(assigned) == 2
            consumer.close()
        """)
    run_inner(pytester).assert_outcomes(passed=5)


# -- the session-wide flag and ini option ------------------------------------------------------


@pytest.mark.parametrize("how", ["ini", "flag"])
def test_session_stand_ins_serve_module_level_imports(pytester, planted_kafka, how):
    after = pytester.path / "after-session.txt"
    if how == "ini":
        pytester.makeini("[pytest]\nmqlog_fake_kafka = true\n")
    pytester.makeconftest(f"""
        import sys
        import pytest
        import kafka  # conftest files load before pytest_configure: this is early

        assert kafka.__name__ == "mqlog.kafka", kafka

        @pytest.hookimpl(hookwrapper=True)
        def pytest_unconfigure(config):
            yield  # the plugin has put the import state back: the real kafka again
            was = sys.modules.get("kafka")
            import kafka
            with open({str(after)!r}, "w") as f:
                f.write(f"{{was!r}} {{kafka.REAL}}")
        """)
    pytester.makepyfile(app="""
        from kafka import KafkaProducer  # at import time, as application code does

        def publish(value):
            producer = KafkaProducer(bootstrap_servers="kafka.prod.example:9092")
            producer.send("events", value).get(timeout=10)
            producer.close()
        """)
    pytester.makepyfile(test_app="""
        import time

        from app import publish
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        def test_uses_its_own_broker(mqlog_broker):
            publish(b"mine")
            assert mqlog_broker.values("events") == [b"mine"]

        def test_isolated_from_the_previous_test(fake_kafka):
            assert "events" not in fake_kafka.topics()
            publish(b"other")
            assert fake_kafka.values("events") == [b"other"]

        def test_without_a_fixture_uses_the_session_broker():
            publish(b"session")
            consumer = KafkaConsumer("events", bootstrap_servers="any:9092",
                                     auto_offset_reset="earliest")
            records = {}
            deadline = time.monotonic() + 10
            while not records and time.monotonic() < deadline:
                records = consumer.poll(timeout_ms=200)
            consumer.close()
            assert [r.value for rs in records.values() for r in rs] == [b"session"]
            assert issubclass(KafkaError, Exception)
        """)
    pytester.syspathinsert()
    result = run_inner(pytester, *(["--mqlog-fake-kafka"] if how == "flag" else []))
    result.assert_outcomes(passed=3)
    assert after.read_text() == "None True"  # as before the session: not imported yet
    assert not kafka_aliases().active


def test_producers_kept_in_globals_follow_each_test(pytester):
    # The commonest shape of application code: one producer for the process, made at
    # import time (confluent-kafka's examples) or on first use (a lazy singleton). With
    # a broker per test it must write to the running test's broker, not to a closed
    # one or the session's.
    pytester.makepyfile(app="""
        import json
        from confluent_kafka import Producer
        from kafka import KafkaProducer

        audit_producer = Producer({"bootstrap.servers": "kafka:9092"})
        _events = None

        def audit(action):
            audit_producer.produce("audit", action.encode())
            audit_producer.flush(10)

        def publish(event):
            global _events
            if _events is None:
                _events = KafkaProducer(bootstrap_servers="kafka:9092",
                                        value_serializer=lambda v: json.dumps(v).encode())
            return _events.send("events", event).get(timeout=10)
        """)
    pytester.makepyfile(test_app="""
        from kafka.errors import KafkaTimeoutError
        from app import audit, publish

        def test_first(fake_kafka):
            audit("login")
            publish({"n": 1})
            assert fake_kafka.values("audit") == [b"login"]
            assert fake_kafka.values("events") == [b'{"n": 1}']

        def test_second_gets_its_own_broker_and_faults(fake_kafka):
            fake_kafka.faults.fail_next("send", KafkaTimeoutError)
            try:
                publish({"n": 2})
            except KafkaTimeoutError:
                pass
            else:
                raise AssertionError("the injected error did not reach the producer")
            publish({"n": 3})
            audit("logout")
            assert fake_kafka.values("events") == [b'{"n": 3}']
            assert fake_kafka.values("audit") == [b"logout"]

        def test_without_a_fixture_writes_to_the_session_broker():
            assert publish({"n": 4}).offset >= 0
            audit("session")

        def test_third(mqlog_broker):
            audit("again")
            assert mqlog_broker.values("audit") == [b"again"]
        """)
    pytester.syspathinsert()
    run_inner(pytester, "--mqlog-fake-kafka").assert_outcomes(passed=4)


def test_a_session_that_fails_to_start_still_undoes_the_stand_ins(pytester, monkeypatch):
    # The session is set up before conftest files load; one that cannot be imported
    # ends the run before pytest_configure, and the stand-ins must not outlive it.
    monkeypatch.setenv("MQLOG_BOOTSTRAP", "mqlog:///nowhere")
    pytester.makeconftest("raise RuntimeError('broken conftest')")
    pytester.makepyfile("def test_never_runs():\n    pass\n")
    result = run_inner(pytester, "--mqlog-fake-kafka")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*broken conftest*"])
    # (pytester restores sys.meta_path and sys.modules itself: ask the aliases)
    assert not kafka_aliases().active
    assert os.environ["MQLOG_BOOTSTRAP"] == "mqlog:///nowhere"


def test_without_the_flag_module_level_imports_get_the_real_package(pytester,
                                                                     planted_kafka):
    pytester.makepyfile("""
        import kafka

        def test_it(mqlog_broker):
            assert kafka.REAL
        """)
    pytester.syspathinsert()
    run_inner(pytester).assert_outcomes(passed=1)


# -- pytest-xdist ------------------------------------------------------------------------------


def test_every_xdist_worker_gets_its_own_brokers(pytester, monkeypatch):
    out = pytester.mkdir("out")
    monkeypatch.setenv("PLG_OUT", str(out))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))
    pytester.makepyfile("""
        import os
        import uuid

        import pytest

        @pytest.mark.parametrize("i", range(3))
        def test_isolated(mqlog_broker, i):
            mine = uuid.uuid4().hex.encode()
            mqlog_broker.producer().send("t", mine).get(10)
            assert mqlog_broker.values("t") == [mine]
            with open(os.path.join(os.environ["PLG_OUT"], uuid.uuid4().hex), "w") as f:
                f.write(f"{os.getpid()} {mqlog_broker.path}")
        """)
    # --dist each: every worker runs every test, so both workers are certainly used.
    result = run_inner(pytester, "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=6)
    lines = [p.read_text().split(" ", 1) for p in out.iterdir()]
    assert len(lines) == 6
    assert len({pid for pid, _ in lines}) == 2
    assert len({path for _, path in lines}) == 6
    assert not any(os.path.exists(path) for _, path in lines)


def test_every_xdist_worker_gets_its_own_session_broker(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))
    pytester.makepyfile("""
        import pytest
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # session aliases

        @pytest.mark.parametrize("i", range(3))
        def test_session_broker_is_the_workers_own(i):
            producer = KafkaProducer(bootstrap_servers="kafka:9092")
            producer.send("t", b"%d" % i).get(timeout=10)
            producer.close()
            consumer = KafkaConsumer(bootstrap_servers="kafka:9092")
            tp = TopicPartition("t", 0)
            # Each worker runs the three tests in order: a shared broker would hold more.
            assert consumer.end_offsets([tp]) == {tp: i + 1}
            consumer.close()
        """)
    result = run_inner(pytester, "-n", "2", "--dist", "each", "--mqlog-fake-kafka")
    result.assert_outcomes(passed=6)
