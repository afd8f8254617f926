"""The command line: `mqlog demo`, `python -m mqlog`."""

import json
import os
import subprocess
import sys

from helpers import child_env

import mqlog
from mqlog import cli


def test_demo_on_a_temporary_broker(capsys):
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "demo on a temporary broker" in out
    assert "consumed 1006 records" in out
    assert "key=alice" in out


def test_demo_on_a_directory_twice_resumes_from_committed(tmp_path, capsys):
    path = str(tmp_path / "d")
    assert cli.main(["--data", path, "demo"]) == 0
    assert "consumed 1006 records" in capsys.readouterr().out
    assert cli.main(["demo", "--data", path]) == 0  # --data also after the command
    assert "consumed 1006 records" in capsys.readouterr().out  # only the new ones
    with mqlog.open(path) as b:
        assert len(b.messages("demo-orders")) == 2012


def test_python_dash_m_and_version():
    proc = subprocess.run([sys.executable, "-m", "mqlog", "--version"], capture_output=True,
                          text=True, env=child_env(), timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"mqlog {mqlog.__version__}"


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_errors_are_reported_not_raised(tmp_path, capsys):
    path = str(tmp_path / "d")
    with mqlog.open(path):
        assert cli.main(["--data", path, "demo"]) == 1
    assert "already open" in capsys.readouterr().err


def mq(*args, data=None, stdin=None, check=True):
    """Run `python -m mqlog` as a user would; returns the completed process."""
    cmd = [sys.executable, "-m", "mqlog", *args]
    env = child_env()
    if data is not None:
        env["MQLOG_DATA"] = data
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env,
                          timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_topics_produce_consume_round_trip(tmp_path):
    d = str(tmp_path / "store")
    mq("topics", "create", "orders", "--partitions", "2", "--config",
       "retention.ms=86400000", data=d)
    assert "orders  2" in mq("topics", "list", data=d).stdout
    mq("produce", "orders", "--key-separator", ":", "--header", "src=cli", data=d,
       stdin="alice:one\nbob:two\nalice:three\n")
    out = mq("consume", "orders", "--format", "%k=%s %h", data=d).stdout.splitlines()
    assert sorted(out) == ["alice=one src=cli", "alice=three src=cli", "bob=two src=cli"]
    assert out.index("alice=one src=cli") < out.index("alice=three src=cli")
    records = [json.loads(line) for line in
               mq("--json", "consume", "orders", data=d).stdout.splitlines()]
    assert {r["value"] for r in records} == {"one", "two", "three"}
    described = mq("topics", "describe", "orders", "--data", d).stdout  # --data after
    assert "PartitionCount: 2" in described and "retention.ms=86400000" in described


def test_consume_group_commits_only_what_it_printed(tmp_path):
    d = str(tmp_path / "store")
    mq("produce", "t", data=d, stdin="".join(f"m{i}\n" for i in range(5)))
    first = mq("consume", "t", "--group", "g", "--from-beginning", "--max-messages", "2",
               data=d).stdout.split()
    rest = mq("consume", "t", "--group", "g", data=d).stdout.split()
    assert first == ["m0", "m1"] and rest == ["m2", "m3", "m4"]
    table = mq("groups", "describe", "g", data=d).stdout
    assert table.splitlines()[0].split() == [
        "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
        "CONSUMER-ID"]
    assert table.splitlines()[1].split()[:6] == ["g", "t", "0", "5", "5", "0"]


def test_groups_reset_is_a_dry_run_unless_execute(tmp_path):
    d = str(tmp_path / "store")
    mq("produce", "t", data=d, stdin="a\nb\nc\n")
    mq("consume", "t", "--group", "g", "--from-beginning", data=d)
    dry = mq("groups", "reset-offsets", "g", "--topic", "t", "--to-earliest", data=d)
    assert "dry run" in dry.stderr
    rows = json.loads(mq("--json", "groups", "describe", "g", data=d).stdout)
    assert rows[0]["CURRENT-OFFSET"] == "3"  # the dry run changed nothing
    assert mq("consume", "t", "--group", "g", data=d).stdout == ""  # unchanged: at end
    mq("groups", "reset-offsets", "g", "--topic", "t", "--shift-by", "-2", "--execute",
       data=d)
    assert mq("consume", "t", "--group", "g", data=d).stdout.split() == ["b", "c"]
    mq("groups", "delete", "g", data=d)
    assert mq("groups", "list", data=d).stdout.strip() == "GROUP  STATE"


def test_dump_and_check(tmp_path):
    d = str(tmp_path / "store")
    mq("produce", "t", data=d, stdin="x\ny\n")
    dumped = mq("dump", "t", data=d).stdout
    assert "batch t[0] offsets 0..1 records=2" in dumped and "value 'y'" in dumped
    assert json.loads(mq("--json", "check", data=d).stdout)["healthy"] is True
    # Damage one byte of a stored record: check says so and exits 1.
    path = os.path.join(d, "data.mdb")
    blob = bytearray(open(path, "rb").read())
    i = blob.find(b"xy")
    assert i > 0
    blob[i] ^= 0xFF
    open(path, "wb").write(bytes(blob))
    proc = mq("check", data=d, check=False)
    assert proc.returncode == 1 and "UNHEALTHY" in proc.stdout and "CRC" in proc.stdout


def test_bad_input_is_one_line_not_a_traceback(tmp_path):
    d = str(tmp_path / "store")
    cases = [
        (("topics", "list"), "no mqlog store at"),
        (("topics", "create", "bad name"), "is invalid"),
        (("topics", "create", "t", "--config", "retention_ms=5"), "did you mean"),
        (("topics", "create", "t", "--config", "novalue"), "KEY=VALUE"),
        (("consume", "t", "--from-beginning", "--offset", "3"), "one of"),
    ]
    mq("topics", "create", "exists", data=d)
    for args, message in cases:
        proc = mq(*args, data=d if args[:2] != ("topics", "list") else d + "-missing",
                  check=False)
        assert proc.returncode == 1, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1
    proc = mq("topics", "create", "exists", data=d, check=False)
    assert proc.returncode == 1 and "already exists" in proc.stderr
    proc = mq("topics", "list", check=False)
    assert proc.returncode == 1 and "pass --data" in proc.stderr
    proc = mq("topics", "frobnicate", data=d, check=False)
    assert proc.returncode == 2


def test_commands_beside_an_owning_application(tmp_path):
    d = str(tmp_path / "store")
    code = ("import sys, mqlog\n"
            "b = mqlog.open(sys.argv[1])\n"
            "with b.producer() as p:\n"
            "    p.send('live', b'from-app')\n"
            "print('ready', flush=True)\n"
            "sys.stdin.readline()\n"
            "b.close()\n")
    app = subprocess.Popen([sys.executable, "-c", code, d], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert app.stdout.readline().strip() == "ready"
        assert "live" in mq("topics", "list", data=d).stdout
        assert mq("consume", "live", data=d).stdout.split() == ["from-app"]
        assert mq("check", data=d).returncode == 0
        proc = mq("produce", "live", data=d, stdin="x\n", check=False)
        assert proc.returncode == 1
        assert f"process {app.pid}" in proc.stderr and "mqlog serve" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    finally:
        app.stdin.write("\n")
        app.stdin.close()
        app.wait(30)


def test_consume_follow_sees_records_from_another_process(tmp_path):
    d = str(tmp_path / "store")
    mq("produce", "f", data=d, stdin="first\n")
    env = child_env()
    env["MQLOG_DATA"] = d
    follower = subprocess.Popen([sys.executable, "-m", "mqlog", "consume", "f", "--follow",
                                 "--max-messages", "2"], stdout=subprocess.PIPE,
                                text=True, env=env)
    try:
        assert follower.stdout.readline().strip() == "first"
        mq("produce", "f", data=d, stdin="second\n")
        assert follower.stdout.readline().strip() == "second"
        assert follower.wait(30) == 0
    finally:
        if follower.poll() is None:
            follower.kill()


def test_produce_progress_bar_on_a_terminal(tmp_path, monkeypatch):
    import io

    from mqlog import _commands

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err = Terminal()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a\nb\nc\n")))
    args = cli.build_parser().parse_args(["--data", str(tmp_path / "d"), "produce", "t"])
    assert _commands.produce(args, _commands.Output(io.StringIO(), err, False)) == 0
    assert "3 records" in err.getvalue() and "/s" in err.getvalue()
    with mqlog.open(str(tmp_path / "d")) as b:
        assert [r.value for r in b.messages("t")] == [b"a", b"b", b"c"]


def test_cli_edge_cases_from_review(tmp_path):
    d = str(tmp_path / "store")
    mq("produce", "t", data=d, stdin="a\nb\n")
    mq("consume", "t", "--group", "g", data=d)
    out = mq("groups", "reset-offsets", "g", "--topic", "t", "--to-offset", "0",
             "--execute", data=d).stdout
    assert out.splitlines()[1].split() == ["g", "t", "0", "0"]
    proc = mq("dump", "t", "--partition", "-1", data=d, check=False)
    assert proc.returncode == 1 and "partition -1 does not exist" in proc.stderr
    typo = str(tmp_path / "typo")
    proc = mq("groups", "delete", "g", data=typo, check=False)
    assert proc.returncode == 1 and "no mqlog store" in proc.stderr
    assert not os.path.exists(typo)  # nothing was created at a mistyped path
    many = "".join(f"{i}\n" for i in range(20000))
    mq("produce", "big", data=d, stdin=many)
    env = child_env()
    env["MQLOG_DATA"] = d
    pipe = subprocess.run(f"{sys.executable} -m mqlog consume big | head -1", shell=True,
                          capture_output=True, text=True, env=env, timeout=60)
    assert pipe.stdout.strip() == "0" and "Broken pipe" not in pipe.stderr


def test_consume_isolation_and_dump_show_transactions(tmp_path):
    data = str(tmp_path / "d")
    with mqlog.open(data) as b:
        b.create_topic("t", 1)
        p = b.producer(transactional_id="cli")
        p.init_transactions()
        for value, commit in ((b"kept", True), (b"dropped", False)):
            p.begin_transaction()
            p.send("t", value)
            if commit:
                p.commit_transaction()
            else:
                p.abort_transaction()
    everything = mq("consume", "t", data=data).stdout.split()
    assert everything == ["kept", "dropped"]  # markers are never printed as records
    committed = mq("consume", "t", "--isolation-level", "read_committed", data=data)
    assert committed.stdout.split() == ["kept"]
    dump = mq("dump", "t", data=data).stdout
    assert "COMMIT marker" in dump and "ABORT marker" in dump and "transactional" in dump
    items = json.loads(mq("--json", "dump", "t", data=data).stdout)
    assert [i.get("control") for i in items] == [None, "commit", None, "abort"]
    assert all(i["producer_id"] == items[0]["producer_id"] for i in items)


KAFKA_SCRIPT = '''
import sys
from kafka import KafkaConsumer, KafkaProducer   # unchanged kafka-python code

producer = KafkaProducer(bootstrap_servers="localhost:9092")
for i in range(3):
    producer.send("events", f"e{i}".encode(), key=b"k")
producer.flush()
consumer = KafkaConsumer("events", bootstrap_servers=["kafka:9092"], group_id="app",
                         auto_offset_reset="earliest", consumer_timeout_ms=500)
print("read", [m.value.decode() for m in consumer], sys.argv[1:])
consumer.close()
'''


def test_run_executes_unchanged_kafka_code_against_the_store(tmp_path):
    data = str(tmp_path / "d")
    script = tmp_path / "app.py"
    script.write_text(KAFKA_SCRIPT)
    proc = mq("--data", data, "run", str(script), "--flag", "x")
    assert "read ['e0', 'e1', 'e2'] ['--flag', 'x']" in proc.stdout
    with mqlog.open(data) as b:  # the records are in the store the command named
        assert [r.value for r in b.messages("events")] == [b"e0", b"e1", b"e2"]
        assert b.committed_offset("app", mqlog.TopicPartition("events", 0)).offset == 3
    bad = mq("run", data=data, check=False)
    assert bad.returncode == 1 and "needs a script or -m MODULE" in bad.stderr


def test_serve_without_the_serve_extra_is_a_one_line_error(tmp_path):
    code = ("import sys; sys.modules['kio'] = None  # as if mqlog[serve] were not installed\n"
            "from mqlog.cli import main\n"
            "raise SystemExit(main(['serve', '--data', sys.argv[1]]))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")],
                          capture_output=True, text=True, env=child_env(), timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "pip install 'mqlog[serve]'" in proc.stderr
    assert not os.path.exists(tmp_path / "d")  # nothing opened or created
