"""kafka-python's ``kafka.consumer.fetcher``: the ``ConsumerRecord`` type.

:class:`mqlog.ConsumerRecord` has kafka-python's fields, in kafka-python's order.
"""

from ...records import ConsumerRecord

__all__ = ["ConsumerRecord"]
