"""``kafka.version``: the kafka-python API level this drop-in follows.

Code logs ``kafka.__version__`` or compares it to choose between kafka-python 2 and 3
behaviour; it reads a kafka-python 3.x version here (not mqlog's).
"""

__version__ = "3.0.0"
