"""The exception tree: built-in categories, retriable flags, pickling, messages."""

import pickle

import pytest

from mqlog import errors


@pytest.mark.parametrize("cls, builtin", [
    (errors.InvalidTopicError, ValueError),
    (errors.TopicExistsError, ValueError),
    (errors.InvalidConfigError, ValueError),
    (errors.InvalidPartitionsError, ValueError),
    (errors.MessageSizeTooLargeError, ValueError),
    (errors.UnknownTopicOrPartitionError, KeyError),
    (errors.KafkaTimeoutError, TimeoutError),
    (errors.ClosedError, RuntimeError),
    (errors.IllegalStateError, RuntimeError),
    (errors.DiskFullError, OSError),
])
def test_builtin_categories(cls, builtin):
    exc = cls("boom: do this")
    assert isinstance(exc, errors.MqlogError)
    assert isinstance(exc, builtin)
    assert str(exc) == "boom: do this"  # no KeyError-style quoting


def test_retriable_flags():
    assert errors.KafkaTimeoutError.retriable
    assert errors.DiskFullError.retriable
    assert not errors.InvalidTopicError.retriable


@pytest.mark.parametrize("cls", [getattr(errors, n) for n in errors.__all__])
def test_picklable(cls):
    exc = cls("message")
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls
    assert str(back) == "message"


def test_offset_out_of_range_carries_partitions():
    from mqlog import TopicPartition

    tp = TopicPartition("t", 0)
    exc = errors.OffsetOutOfRangeError("out", {tp: 5})
    back = pickle.loads(pickle.dumps(exc))
    assert back.partitions == {tp: 5}
    assert str(back) == "out"
