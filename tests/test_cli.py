"""The command line: `mqlog demo`, `python -m mqlog`."""

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
