"""The README's set-up commands are what CI runs."""

import os
import re

from helpers import REPO


def _readme_commands():
    text = open(os.path.join(REPO, "README.md")).read()
    return re.findall(r"```sh\n(.*?)\n```", text, re.S)


def test_readme_starts_with_two_setup_commands():
    commands = _readme_commands()
    assert len(commands) >= 2
    demo, tests = commands[0], commands[1]
    assert demo.endswith("mqlog demo")
    assert "'.[test]'" in tests and "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    ci = open(os.path.join(REPO, ".ci", "run")).read().splitlines()
    assert _readme_commands()[1] in ci
