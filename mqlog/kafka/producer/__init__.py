"""kafka-python's ``kafka.producer`` package."""

from .future import FutureRecordMetadata, RecordMetadata
from .kafka import KafkaProducer

__all__ = ["FutureRecordMetadata", "KafkaProducer", "RecordMetadata"]
