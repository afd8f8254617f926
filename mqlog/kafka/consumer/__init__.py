"""kafka-python's ``kafka.consumer`` package."""

from .group import KafkaConsumer

__all__ = ["KafkaConsumer"]
