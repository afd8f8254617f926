"""Kafka's murmur2 default partitioner."""

from hypothesis import given
from hypothesis import strategies as st

from mqlog.partitioner import murmur2, partition_for_key


def test_kafka_published_vectors():
    # From Kafka's UtilsTest (the Java client's murmur2).
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"abc") == 479470107
    assert murmur2(b"a-little-bit-long-string") == -985981536
    assert murmur2(b"a-little-bit-longer-string") == -1486304829
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971


@given(st.binary(max_size=64), st.integers(1, 1000))
def test_partition_in_range_and_stable(key, n):
    p = partition_for_key(key, n)
    assert 0 <= p < n
    assert p == (murmur2(key) & 0x7FFFFFFF) % n
    assert -(2**31) <= murmur2(key) < 2**31
