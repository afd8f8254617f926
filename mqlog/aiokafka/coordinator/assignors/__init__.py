"""aiokafka's assignor modules, for ``partition_assignment_strategy``.

The classes are mqlog.kafka's (kafka-python's, which aiokafka vendors): each names one
of mqlog's assignors, which the group coordinator runs. Custom assignors written
against aiokafka's interface cannot run on mqlog's coordinator.
"""
