"""kafka-python's partition assignor classes, at kafka-python's import paths.

``KafkaConsumer(partition_assignment_strategy=(RangePartitionAssignor,
RoundRobinPartitionAssignor))`` selects mqlog's assignors of the same names
(``"range"``, ``"roundrobin"``, ``"sticky"``, ``"cooperative-sticky"``): the classes
are markers naming an mqlog assignor; mqlog's group coordinator does the assigning.
"""
