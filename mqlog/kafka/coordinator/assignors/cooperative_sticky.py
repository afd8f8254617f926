"""kafka-python's ``CooperativeStickyAssignor``: mqlog's ``"cooperative-sticky"``."""

from .abstract import RebalanceProtocol
from .sticky.sticky_assignor import StickyPartitionAssignor

__all__ = ["CooperativeStickyAssignor"]


class CooperativeStickyAssignor(StickyPartitionAssignor):
    """The sticky assignment, reached by cooperative rebalancing (KIP-429)."""

    name = "cooperative-sticky"
    supported_protocols = (RebalanceProtocol.COOPERATIVE, RebalanceProtocol.EAGER)
