"""The shared checker catches each kind of damage it claims to count."""

from checker import check, payload

from mqlog import ConsumerRecord


def rec(partition, offset, value):
    return ConsumerRecord("t", partition, None, offset, 0, 0, None, value, [], None, -1,
                          len(value), -1)


def test_clean_log():
    records = [rec(0, i, payload(1, i)) for i in range(5)]
    acked = {(0, i): (1, i) for i in range(5)}
    figures = check(records, acked)
    assert figures == {"acked": 5, "lost_acked": 0, "duplicates": 0, "gaps": 0,
                       "inconsistent_offsets": 0, "order_violations": 0, "torn_values": 0}


def test_each_figure_counts():
    records = [rec(0, 0, payload(1, 0)), rec(0, 1, payload(1, 2)), rec(0, 2, payload(1, 1)),
               rec(0, 4, payload(1, 2)), rec(0, 5, payload(1, 3)[:-1])]
    acked = {(0, 0): (1, 0), (0, 3): (1, 3), (0, 9): (1, 9), (0, 2): (1, 1),
             (0, 7): (1, 2)}
    figures = check(records, acked)
    assert figures["lost_acked"] == 3  # offsets 3, 9 missing; (1, 2) acked at 7
    assert figures["inconsistent_offsets"] == 1  # (1, 2) stored, but at 1 and 4
    assert figures["duplicates"] == 1
    assert figures["order_violations"] == 1  # seq 1 after seq 2
    assert figures["gaps"] == 1  # offset 3 missing
    assert figures["torn_values"] == 1


def test_log_start_is_not_a_gap():
    records = [rec(0, 10, payload(1, 0)), rec(0, 11, payload(1, 1))]
    assert check(records, {}, {0: 10})["gaps"] == 0
    assert check(records, {})["gaps"] == 1
