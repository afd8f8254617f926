"""Shared fixtures and options for mqlog's tests.

``--long`` runs the full-length crash/soak counts; the default run stays bounded.
Every test has a timeout (pytest-timeout, see pyproject.toml) and faulthandler dumps
every thread's stack if one hangs.
"""

from __future__ import annotations

import pytest

import mqlog


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help="run full-length crash and soak tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    if config.getoption("--long"):
        return
    skip_long = pytest.mark.skip(reason="full-length run: pass --long")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip_long)


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    """True when the full-length counts were asked for with --long."""
    return bool(request.config.getoption("--long"))


@pytest.fixture
def broker():
    """A fresh temporary broker, closed (and deleted) after the test."""
    b = mqlog.open()
    yield b
    b.close()


@pytest.fixture
def served():
    """A temporary broker and `mqlog serve` for it on a free loopback port (the server
    tests; needs kio)."""
    broker = mqlog.open()
    handle = broker.serve(port=0)
    yield broker, handle
    handle.close()
    broker.close()


@pytest.fixture
def data_dir(tmp_path) -> str:
    """A path for a persistent broker directory (not yet created)."""
    return str(tmp_path / "data")
