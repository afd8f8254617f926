"""The package's public surface."""

import importlib

import mqlog


def test_every_public_name_imports():
    for name in mqlog.__all__:
        assert getattr(mqlog, name) is not None, name


def test_all_is_sorted_and_complete():
    assert list(mqlog.__all__) == sorted(mqlog.__all__)
    for name in ("open", "Broker", "Producer", "Consumer", "TopicPartition",
                 "ConsumerRecord", "RecordMetadata", "OffsetAndMetadata",
                 "OffsetAndTimestamp", "TopicInfo", "ConsumerRebalanceListener"):
        assert name in mqlog.__all__


def test_errors_module_names():
    errors = importlib.import_module("mqlog.errors")
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.MqlogError)


def test_version_and_typed_marker():
    import os

    assert mqlog.__version__.count(".") == 2
    assert os.path.exists(os.path.join(os.path.dirname(mqlog.__file__), "py.typed"))


def test_null_handler_installed():
    import logging

    handlers = logging.getLogger("mqlog").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_import_is_lazy_and_cheap():
    """pytest imports mqlog in every session (the plugin entry point): `import mqlog`
    must not load the store, LMDB or the broker until a name is used."""
    from helpers import run_python

    out = run_python("import sys, mqlog; print(sorted(m for m in ('lmdb', 'mqlog.broker', "
                     "'mqlog._store') if m in sys.modules)); mqlog.open; "
                     "print('mqlog.broker' in sys.modules)").stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"
