"""kafka-python's ``kafka.consumer.subscription_state``: the rebalance listener.

``ConsumerRebalanceListener`` is :class:`mqlog.ConsumerRebalanceListener` itself, so a
listener written for either works with both.
"""

from ...consumer import ConsumerRebalanceListener

__all__ = ["ConsumerRebalanceListener"]
