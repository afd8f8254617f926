"""The reliability battery: every test here is marked ``reliability``.

Each test prints one JSON line of figures (``checker.report``) and asserts them. The
default run uses bounded counts; ``pytest --long`` runs the full ones.
"""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/reliability/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)
