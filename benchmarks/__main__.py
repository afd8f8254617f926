"""``python -m benchmarks [--quick]``: run the whole suite (see benchmarks/run.py).

The scripts in this folder are standalone programs rather than a package's modules, so
this loads run.py from its file instead of importing it through ``benchmarks``.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def _load_runner():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py")
    spec = importlib.util.spec_from_file_location("_benchmarks_run", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.argv[0] = "python -m benchmarks"  # what --help shows as the program
    raise SystemExit(_load_runner().main(sys.argv[1:]))
