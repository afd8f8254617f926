"""``python -m mqlog``: the command line."""

from .cli import main

raise SystemExit(main())
