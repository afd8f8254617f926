"""Value types: kafka-python field layouts, defaults, immutability."""

import pickle

import attrs
import pytest

from mqlog import (
    BatchMetadata,
    ConsumerRecord,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    PartitionBatch,
    RecordMetadata,
    TopicInfo,
    TopicPartition,
)


def test_kafka_python_field_names():
    assert ConsumerRecord._fields == (
        "topic", "partition", "leader_epoch", "offset", "timestamp", "timestamp_type",
        "key", "value", "headers", "checksum", "serialized_key_size",
        "serialized_value_size", "serialized_header_size")
    assert RecordMetadata._fields == (
        "topic", "partition", "topic_partition", "offset", "timestamp", "checksum",
        "serialized_key_size", "serialized_value_size", "serialized_header_size")
    assert TopicPartition._fields == ("topic", "partition")
    assert OffsetAndMetadata._fields == ("offset", "metadata", "leader_epoch")
    assert OffsetAndTimestamp._fields == ("offset", "timestamp", "leader_epoch")


def test_trailing_leader_epoch_defaults():
    assert OffsetAndMetadata(10, "") == (10, "", -1)
    assert OffsetAndTimestamp(3, 99).leader_epoch == -1


def test_topic_partition_unpacks_and_hashes():
    tp = TopicPartition("orders", 2)
    topic, partition = tp
    assert (topic, partition) == ("orders", 2)
    assert {tp: 1}[TopicPartition("orders", 2)] == 1


def test_topic_info_frozen_hashable_picklable():
    info = TopicInfo("t", 3, {"retention.ms": 1000})
    assert info.config["retention.ms"] == 1000
    assert hash(info) == hash(TopicInfo("t", 3, {"retention.ms": 1000}))
    assert pickle.loads(pickle.dumps(info)) == info
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        info.partitions = 4
    with pytest.raises(TypeError):
        info.config["retention.ms"] = 5


def test_batch_metadata_offsets():
    md = BatchMetadata("t", (PartitionBatch(0, 10, 2), PartitionBatch(2, 0, 1)))
    assert md.count == 3
    assert md.offsets() == [(0, 10), (0, 11), (2, 0)]
