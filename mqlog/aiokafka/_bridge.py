"""Glue between mqlog's blocking, thread-safe core and an asyncio event loop.

The core resolves producer futures on the broker's writer thread and runs a consumer's
work in the consumer's own thread; asyncio objects may only be touched on their loop.
:class:`LoopPoster` carries results over: any thread posts a callable, the loop runs it.

Also here: the offsets-argument check shared by ``commit`` and
``send_offsets_to_transaction``, and fault injection for coroutines (latency is awaited,
never slept, so it cannot stall the loop).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections import deque
from typing import Any, Callable, NoReturn

from .errors import translate
from .structs import OffsetAndMetadata, TopicPartition

__all__ = ["LoopPoster", "check_offsets", "injected_fault", "maybe_await", "reraise",
           "settle"]

log = logging.getLogger("mqlog.aiokafka")


class LoopPoster:
    """Runs callables on one event loop, posted from any thread, in posting order.
    Thread-safe.

    A burst of posts costs one loop wake-up (``call_soon_threadsafe``): a producer
    batch of 500 records resolves 500 futures after one wake-up, not 500. Posts to a
    closed loop are dropped (nobody is left to receive them).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Guards _pending and _scheduled: a drain is scheduled iff _scheduled.
        self._lock = threading.Lock()
        self._pending: deque[tuple[Callable[..., Any], tuple]] = deque()
        self._scheduled = False

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon; exceptions are logged."""
        with self._lock:
            self._pending.append((fn, args))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed
            with self._lock:
                self._pending.clear()
                self._scheduled = False

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._scheduled = False
                    return
                batch = list(self._pending)
                self._pending.clear()
            for fn, args in batch:
                try:
                    fn(*args)
                except Exception:  # one bad callback must not lose the others
                    log.exception("callback %r posted to the event loop raised", fn)


def reraise(exc: BaseException, closed: type[BaseException] | None = None) -> NoReturn:
    """Raise ``exc`` (caught from mqlog's core) as the error aiokafka code expects
    (:func:`~.errors.translate`), chained to the original."""
    new = translate(exc, closed)
    if new is exc:
        raise exc
    raise new from exc


def settle(fut: asyncio.Future, result: Any = None, error: BaseException | None = None
           ) -> None:
    """Resolve ``fut`` unless it is already done (e.g. the awaiting task gave up)."""
    if fut.done():
        return
    if error is None:
        fut.set_result(result)
    else:
        fut.set_exception(error)


async def maybe_await(value: Any) -> Any:
    """``await value`` if it is awaitable (a coroutine listener), else return it."""
    if inspect.isawaitable(value):
        return await value
    return value


async def injected_fault(broker: Any, op: str, closed: type | None = None
                         ) -> BaseException | None:
    """Consult ``broker.faults`` for ``op``: await its latency, return its error (in
    aiokafka's classes) or None. Cost: one attribute read when nothing is injected."""
    faults = broker.faults
    if not faults.armed:
        return None
    error, latency = faults.take(op)
    if latency:
        await asyncio.sleep(latency)  # injected latency, not synchronisation
    return None if error is None else translate(error, closed)


def check_offsets(offsets: Any) -> dict[TopicPartition, OffsetAndMetadata]:
    """Normalise an offsets argument as aiokafka accepts it.

    Accepts ``{TopicPartition: offset}``, ``{TopicPartition: (offset, metadata)}`` and
    ``{TopicPartition: OffsetAndMetadata}``.

    Raises:
        ValueError: not a non-empty dict of that shape.
    """
    if not isinstance(offsets, dict) or not offsets:
        raise ValueError(
            f"offsets must be a non-empty dict {{TopicPartition: offset}}, got {offsets!r}")
    out: dict[TopicPartition, OffsetAndMetadata] = {}
    for tp, value in offsets.items():
        if not isinstance(tp, TopicPartition):
            raise ValueError(f"offsets key {tp!r} must be a TopicPartition")
        if isinstance(value, OffsetAndMetadata):
            offset, metadata = value.offset, value.metadata
        elif isinstance(value, int) and not isinstance(value, bool):
            offset, metadata = value, ""
        else:
            try:
                offset, metadata = value
            except (TypeError, ValueError):
                raise ValueError(
                    f"offset for {tp} must be an int, (offset, metadata) or "
                    f"OffsetAndMetadata, got {value!r}") from None
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError(f"offset for {tp} must be an int >= 0, got {offset!r}")
        if not isinstance(metadata, str):
            raise ValueError(f"metadata for {tp} must be a str, got {metadata!r}")
        out[tp] = OffsetAndMetadata(offset, metadata)
    return out
