"""The TCP server of ``mqlog serve``: sockets, framing, dispatch and shutdown.

Threads: one acceptor thread waits (with a selector) on the listening socket and a wake
pipe; each accepted connection gets a thread that reads one size-prefixed request,
answers it and only then reads the next (Kafka's broker also handles one request per
connection at a time, so answers are in order by construction). Why threads and not
asyncio is explained in ``_apis.py``.

Robustness, in the order things go wrong on a wire:

* a size prefix that is negative or above ``max_request_bytes`` closes the connection
  (the rest of the stream cannot be framed; Kafka does the same);
* a frame too short for a request header, or a header that runs past its frame, closes
  the connection (there is no correlation id to answer to);
* an unknown API key, an unsupported version, a body kio cannot decode, or a handler
  that raises, is answered with an error response (see ``_apis.py``) and the
  connection stays open;
* a connection with no complete request for ``idle_timeout_s`` is disconnected,
  whether it sends nothing or trickles a frame byte by byte; so is one that stops in
  the middle of a frame for ``FRAME_TIMEOUT_S``, and one that stops reading its
  responses for ``SEND_TIMEOUT_S`` (the write blocks only that connection's thread; a
  slow reader that keeps taking bytes is never cut off);
* connections beyond ``max_connections`` are closed as soon as they are accepted;
* request memory is bounded across connections (:class:`RequestMemory`, Kafka's
  ``queued.max.request.bytes``): a connection reserves a request's size before it
  reads the body and gives it back once the request is handled; when the budget is
  used up, connections wait before reading (their peers' sends back up into TCP), so
  memory stays bounded without dropping or cutting any request;
* a vanished client (reset, broken pipe) ends its thread quietly; a handler that
  holds a request (a JoinGroup) can ask :meth:`ConnectionContext.peer_gone`.

Shutdown (:meth:`KafkaServer.close`): stop accepting, set ``stopping`` (long polls,
group waits and waits for request memory return early), shut the read side of every
connection so each thread finishes the request it is processing, sends its answer and
ends; then join them. Past the grace period, produced batches the writer has not taken
are failed (a Produce still waiting ends instead of waiting out its timeout, and no
batch left behind is written later) and stuck connections are shut.

Lock order: ``KafkaServer._lock`` (and its ``_activity`` condition) and
``RequestMemory._cond`` are leaves, never held together or while doing I/O.

Thread-safety: :class:`KafkaServer` methods may be called from any thread.
"""

from __future__ import annotations

import collections
import errno
import ipaddress
import logging
import selectors
import socket
import struct
import threading
import time
from typing import Any

from ..errors import ClosedError
from . import _apis, _codec
from ._appender import WireAppender
from ._txn import TxnRegistry
from ._apis import (
    ApiError,
    ApiKey,
    CloseConnection,
    ConnectionContext,
    ErrorCode,
    ServerConfig,
)

__all__ = ["KafkaServer"]

log = logging.getLogger("mqlog.server")

_I32 = struct.Struct(">i")
#: Seconds a connection may go without taking any bytes of a response we send before
#: it is dropped (a stall, not the time to read the whole response).
SEND_TIMEOUT_S = 30.0
#: Seconds a peer may take to deliver the rest of a frame it started.
FRAME_TIMEOUT_S = 30.0


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(
            ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


class RequestMemory:
    """The server-wide budget of request bytes read but not yet handled (Kafka's
    ``queued.max.request.bytes``).

    Thread-safe. Reservations are granted first come, first served, so a large
    request waiting for room is not starved by a stream of small ones.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # Guards _used and _waiting; notified when memory is given back, a waiter
        # leaves the queue, or the server stops.
        self._cond = threading.Condition(threading.Lock())
        self._used = 0
        self._waiting: collections.deque[object] = collections.deque()

    def reserve(self, size: int, stopping: threading.Event) -> bool:
        """Wait until ``size`` more bytes fit in the budget and take them.

        Returns:
            True once reserved; False if the server stopped first.
        """
        assert 0 <= size <= self.capacity, size
        with self._cond:
            if not self._waiting and self._used + size <= self.capacity:
                self._used += size
                return True
            ticket = object()
            self._waiting.append(ticket)
            self._cond.notify_all()  # for wait_for_waiters()
            try:
                while not stopping.is_set():
                    if self._waiting[0] is ticket and self._used + size <= self.capacity:
                        self._used += size
                        return True
                    # Woken by release() and wake(); the timeout is only a safety net.
                    self._cond.wait(1.0)
                return False
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()  # the next in line may fit now

    def release(self, size: int) -> None:
        """Give back ``size`` bytes reserved earlier."""
        with self._cond:
            self._used -= size
            assert self._used >= 0, self._used
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake every waiter (shutdown: they see ``stopping``)."""
        with self._cond:
            self._cond.notify_all()

    def wait_for_waiters(self, count: int, timeout: float) -> bool:
        """Wait until exactly ``count`` connections wait for room (a test seam)."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._waiting) == count, timeout)

    @property
    def used(self) -> int:
        """Bytes reserved now."""
        with self._cond:
            return self._used

    @property
    def waiting(self) -> int:
        """Connections waiting for room now."""
        with self._cond:
            return len(self._waiting)


class _Connection:
    """One client connection and its thread."""

    __slots__ = ("sock", "peer", "thread", "ctx")

    def __init__(self, sock: socket.socket, peer: tuple, ctx: ConnectionContext) -> None:
        self.sock = sock
        self.peer = peer
        self.ctx = ctx
        self.thread: threading.Thread | None = None


class KafkaServer:
    """Serves one :class:`mqlog.Broker` over the Kafka protocol.

    Thread-safe. Create with a broker and a :class:`ServerConfig`, then :meth:`start`;
    :meth:`close` is idempotent. The broker is not closed by the server.
    """

    def __init__(self, broker: Any, config: ServerConfig) -> None:
        if not config.allow_remote and not _is_loopback(config.host):
            raise ValueError(
                f"host {config.host!r} is not a loopback address: mqlog serve has no "
                "authentication, so binding elsewhere needs allow_remote=True "
                "(--allow-remote on the command line)")
        _apis.load_handlers()
        self.broker = broker
        self.config = config
        self.stopping = threading.Event()
        # Guards _conns, _closed, _in_flight, _appender, _writes_closed and
        # _transactions; notified when _in_flight or _conns changes.
        self._lock = threading.Lock()
        self._activity = threading.Condition(self._lock)
        self._in_flight = 0
        self._conns: set[_Connection] = set()
        self._closed = False
        self.memory = RequestMemory(config.queued_max_request_bytes)
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._acceptor: threading.Thread | None = None
        self._address: tuple[str, int] = (config.host, config.port)
        self._appender: WireAppender | None = None  # created by the first Produce
        self._writes_closed = False  # set when close() closes the appender
        self._transactions: TxnRegistry | None = None  # created on first use
        self.handle: Any = None  # the ServerHandle given to users (kept alive by us)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "serving"
        return f"<mqlog KafkaServer {self._address[0]}:{self._address[1]} {state}>"

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Bind, listen and start accepting.

        Raises:
            OSError: the address cannot be bound (in use, not local...).
        """
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.config.host, self.config.port))
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        self._listener = sock
        self._address = sock.getsockname()[:2]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                          name=f"mqlog-serve-accept:{self._address[1]}")
        self._acceptor.start()
        log.info("mqlog serving Kafka protocol on %s:%d", *self._address)

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) bound."""
        return self._address

    def advertised_address(self) -> tuple[str, int]:
        """The (host, port) announced to clients in Metadata and FindCoordinator."""
        return (self.config.advertised_host or self._address[0], self._address[1])

    def close(self, timeout: float = 10.0) -> None:
        """Stop serving: finish in-flight requests, then close every connection.

        Args:
            timeout: seconds to wait for connection threads to finish.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = list(self._conns)
        self.stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        # Long polls wait on their waiters (woken by a broker-wide notification), held
        # JoinGroups on the group coordinator's condition, reads on request memory:
        # wake them so they see stopping.
        notify = getattr(self.broker, "_notify_data", None)
        if notify is not None:
            notify()
        coordinator = getattr(self.broker, "_coordinator", None)
        if coordinator is not None:
            coordinator.wake_waiters()
        self.memory.wake()
        for conn in conns:
            try:
                conn.sock.shutdown(socket.SHUT_RD)  # recv() returns b"" after the answer
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for conn in conns:
            if conn.thread is not None:
                conn.thread.join(max(0.0, deadline - time.monotonic()))
        # What the writer has not taken by now is failed, never written later: a Produce
        # still waiting for it answers (or ends) now, not at its timeout.
        with self._lock:
            appender = self._appender
            self._writes_closed = True
        if appender is not None:
            appender.close()
        stuck = [c for c in conns if c.thread is not None and c.thread.is_alive()]
        for conn in stuck:
            # Past the grace period: a peer that does not read its answers keeps its
            # thread in send(); shutting the write side too makes send() fail now.
            log.warning("closing connection from %s: its request did not finish within "
                        "%g s of shutdown", conn.peer, timeout)
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for conn in stuck:
            conn.thread.join(1.0)
        for conn in conns:
            _close_quietly(conn.sock)
        _close_quietly(self._wake_r)
        _close_quietly(self._wake_w)
        log.info("mqlog server on %s:%d stopped", *self._address)

    def appender(self) -> WireAppender:
        """The source of produced batches for the broker's writer (created once).

        Raises:
            ClosedError: the server's grace period for in-flight requests is over (a
                request still running then must not register a new source that
                nobody would close).
        """
        with self._lock:
            if self._writes_closed:
                raise ClosedError("the server stopped: no more writes are accepted")
            if self._appender is None:
                self._appender = WireAppender(self.broker)
            return self._appender

    def transactions(self) -> TxnRegistry:
        """The wire transactional producers of this server (created once)."""
        with self._lock:
            if self._transactions is None:
                self._transactions = TxnRegistry(
                    self.config.transactional_id_expiration_s)
            return self._transactions

    @property
    def closed(self) -> bool:
        return self._closed

    def connection_count(self) -> int:
        with self._lock:
            return len(self._conns)

    def wait_connections(self, count: int, timeout: float) -> bool:
        """Wait until exactly ``count`` connections are open (a test seam)."""
        with self._activity:
            return self._activity.wait_for(lambda: len(self._conns) == count, timeout)

    # -- accepting ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self.stopping.is_set():
                for key, _ in sel.select():
                    if key.fileobj is self._wake_r or self.stopping.is_set():
                        return
                    try:
                        sock, peer = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as exc:
                        if exc.errno in (errno.EMFILE, errno.ENFILE):
                            # Out of descriptors: drop nothing, but do not spin.
                            log.error("accept failed: %s", exc)
                            self.stopping.wait(0.1)
                            continue
                        raise
                    self._start_connection(sock, peer)
        except Exception:  # pragma: no cover - a bug; clients see refused connections
            log.exception("the mqlog server's accept loop failed")
        finally:
            sel.close()
            _close_quietly(listener)

    def _start_connection(self, sock: socket.socket, peer: tuple) -> None:
        with self._lock:
            if self._closed or len(self._conns) >= self.config.max_connections:
                if not self._closed:
                    log.warning("refusing connection from %s: %d connections open "
                                "(max_connections)", peer, len(self._conns))
                _close_quietly(sock)
                return
            ctx = ConnectionContext(self.broker, self.config, self, peer[:2], self.stopping,
                                    peer_gone=lambda: _peer_closed(sock))
            conn = _Connection(sock, peer[:2], ctx)
            self._conns.add(conn)
            self._activity.notify_all()
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        conn.thread = threading.Thread(target=self._serve_connection, args=(conn,),
                                       daemon=True, name=f"mqlog-serve-conn:{peer[1]}")
        conn.thread.start()

    # -- one connection -----------------------------------------------------------------

    def _serve_connection(self, conn: _Connection) -> None:
        sock = conn.sock
        idle = self.config.idle_timeout_s
        try:
            while not self.stopping.is_set():
                # The idle clock restarts when an answer has gone out: a connection
                # gets ``idle`` seconds for each complete request.
                read = self._read_frame(conn, time.monotonic() + idle)
                if read is None:
                    return
                frame, size = read
                self._count_in_flight(1)
                try:
                    answer = self.handle_frame(conn.ctx, frame)
                finally:
                    del frame  # the request's bytes go now, not at the next read
                    self.memory.release(size)
                    self._count_in_flight(-1)
                if answer is None:
                    continue
                _send(sock, answer)
        except _Disconnect as exc:
            log.debug("closing connection from %s: %s", conn.peer, exc)
        except (ConnectionError, TimeoutError, OSError) as exc:
            log.debug("connection from %s ended: %s", conn.peer, exc)
        except Exception:  # pragma: no cover - a bug; only this connection is lost
            log.exception("connection from %s failed", conn.peer)
        finally:
            _close_quietly(sock)
            conn.ctx.close()
            with self._activity:
                self._conns.discard(conn)
                self._activity.notify_all()

    def _count_in_flight(self, delta: int) -> None:
        with self._activity:
            self._in_flight += delta
            self._activity.notify_all()

    def wait_in_flight(self, count: int, timeout: float) -> bool:
        """Wait until exactly ``count`` requests are being processed (a test seam: a
        test parks a long poll, then acts). Returns whether that happened in time."""
        with self._activity:
            return self._activity.wait_for(lambda: self._in_flight == count, timeout)

    def _recv_exact(self, sock: socket.socket, n: int, deadline: float,
                    in_frame: bool) -> bytes | None:
        """Read exactly n bytes by ``deadline`` (the connection's idle deadline); None
        at a clean end of stream before the first byte of a frame.

        Once a frame has started (``in_frame``, or a first byte came), the peer must
        also never be silent for ``FRAME_TIMEOUT_S``.

        Raises:
            _Disconnect: the deadline passed, the peer went silent mid-frame, or it
                closed the connection mid-frame.
        """
        # Straight into one buffer (a produce request is often a megabyte: a bytes
        # object per recv() and a growing bytearray copied it twice more). The buffer
        # grows with the data received, so a size prefix alone reserves little memory.
        buf = bytearray(min(n, 1 << 20))
        got = 0
        while got < n:
            if got == len(buf):
                buf.extend(bytes(min(n, 2 * got) - got))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Disconnect(self._idle_reason(got, n, in_frame))
            silent_limit = in_frame or got > 0
            timeout = min(remaining, FRAME_TIMEOUT_S) if silent_limit else remaining
            sock.settimeout(timeout)
            try:
                with memoryview(buf) as view:
                    count = sock.recv_into(view[got:])
            except TimeoutError:
                if timeout < remaining:
                    raise _Disconnect(f"silent for {FRAME_TIMEOUT_S:g} s in the middle "
                                      "of a request") from None
                raise _Disconnect(self._idle_reason(got, n, in_frame)) from None
            if not count:
                if not got and not in_frame:
                    return None
                raise _Disconnect(f"the peer closed the connection {got} bytes into a "
                                  f"{n}-byte read")
            got += count
        return bytes(buf)

    def _idle_reason(self, got: int, n: int, in_frame: bool) -> str:
        where = "while sending one" if got or in_frame else "nothing sent"
        return (f"no complete request within idle_timeout_s="
                f"{self.config.idle_timeout_s:g} ({where})")

    def _read_frame(self, conn: _Connection, deadline: float
                    ) -> tuple[bytes, int] | None:
        """The next request frame and the request memory reserved for it (the caller
        releases it), or None at a clean end of stream.

        Raises:
            _Disconnect: a bad size prefix, the idle deadline, a peer gone mid-frame,
                or the server stopping while this waited for request memory.
        """
        sock = conn.sock
        prefix = self._recv_exact(sock, 4, deadline, False)
        if prefix is None:
            return None
        size = _I32.unpack(prefix)[0]
        limit = min(self.config.max_request_bytes, self.memory.capacity)
        if size < 0 or size > limit:
            which = ("max_request_bytes" if limit == self.config.max_request_bytes
                     else "queued_max_request_bytes")
            log.warning("closing connection from %s: request size %d is outside "
                        "0..%d (%s)", conn.peer, size, limit, which)
            raise _Disconnect("bad request size")
        waited_from = time.monotonic()
        if not self.memory.reserve(size, self.stopping):
            raise _Disconnect("the server is stopping")
        # Waiting for memory is the server's doing, not the peer's: it does not count
        # against the peer's idle time.
        deadline += time.monotonic() - waited_from
        try:
            body = self._recv_exact(sock, size, deadline, True) if size else b""
        except BaseException:
            self.memory.release(size)
            raise
        assert body is not None
        return body, size

    # -- dispatch -----------------------------------------------------------------------

    def handle_frame(self, ctx: ConnectionContext, frame: bytes) -> bytes | None:
        """Answer one request frame (without its size prefix).

        Returns:
            The response frame, or None when the request expects no answer (Produce
            with acks=0).

        Raises:
            _Disconnect: the connection must close: the header cannot be read, a
                Produce cannot be decoded, or an acks=0 Produce failed (Kafka's
                answer to both).
        """
        try:
            header = _codec.parse_header(frame)
        except _codec.FrameError as exc:
            raise _Disconnect(str(exc)) from None
        ctx.client_id = header.client_id
        key, version = header.api_key, header.api_version
        api = _apis.REGISTRY.get(key)
        if key == ApiKey.api_versions and (api is None or not
                                            api.min_version <= version <= api.max_version):
            # KIP-511: answer in v0 with UNSUPPORTED_VERSION and the versions we do
            # support, so the client retries with one of them.
            fallback = _apis.api_versions_response(0, ErrorCode.unsupported_version)
            return _codec.encode_response(header.correlation_id, fallback)
        if header.body_offset is None:
            log.debug("%s sent API key %d v%d, which no schema describes", ctx.peer, key,
                      version)
            return _codec.bare_error_frame(header.correlation_id,
                                           ErrorCode.unsupported_version)
        if api is None or not api.min_version <= version <= api.max_version:
            log.debug("%s sent API key %d v%d, which is not supported", ctx.peer, key,
                      version)
            return self._error_frame(ctx, header, None, ErrorCode.unsupported_version)
        try:
            request = _codec.decode_request(header, frame)
        except Exception as exc:
            log.debug("%s sent an undecodable %s v%d request: %s", ctx.peer,
                      _api_name(key), version, exc)
            if key == ApiKey.produce:
                # Its acks cannot be read, and an answer to an acks=0 Produce would be
                # taken for the answer to the client's next request: close, as Kafka
                # does for any request it cannot parse.
                raise _Disconnect("an undecodable Produce request") from None
            return self._error_frame(ctx, header, None, ErrorCode.invalid_request)
        try:
            response = api.handler(ctx, request, version)
        except CloseConnection as exc:
            raise _Disconnect(str(exc)) from None
        except ApiError as exc:
            log.debug("%s v%d from %s refused: %s", _api_name(key), version, ctx.peer, exc)
            return self._error_frame(ctx, header, request, exc.code)
        except Exception as exc:
            log.exception("handling %s v%d from %s failed", _api_name(key), version,
                          ctx.peer)
            return self._error_frame(ctx, header, request, _apis.error_code_for(exc))
        if response is None:
            return None
        try:
            return _codec.encode_response(header.correlation_id, response)
        except Exception:
            log.exception("encoding the %s v%d response failed", _api_name(key), version)
            return self._error_frame(ctx, header, request, ErrorCode.unknown_server_error)

    def _error_frame(self, ctx: ConnectionContext, header: _codec.RequestHeader,
                     request: Any, code: ErrorCode) -> bytes | None:
        api = _apis.REGISTRY.get(header.api_key)
        response = None
        if request is not None and api is not None and api.error_response is not None:
            try:
                response = api.error_response(ctx, request, header.api_version, code)
            except Exception:
                log.exception("building the error response of %s failed",
                              _api_name(header.api_key))
                response = None
            if response is None and header.api_key == ApiKey.produce and \
                    getattr(request, "acks", 1) == 0:
                # Kafka's signal for a failed acks=0 Produce (see _handlers.produce).
                raise _Disconnect(f"an acks=0 Produce failed with {code.name}")
        if response is None:
            response = _codec.error_response(header.api_key, header.api_version, code)
        if response is None:
            return _codec.bare_error_frame(header.correlation_id, code)
        return _codec.encode_response(header.correlation_id, response)


class _Disconnect(Exception):
    """The connection cannot continue (bad framing, idle, peer gone)."""


def _send(sock: socket.socket, data: bytes) -> None:
    """Send all of ``data``; the peer must take some of it every ``SEND_TIMEOUT_S``.

    Not ``sendall`` with a timeout: that bounds the whole answer (Python 3.5+), so a
    client reading a 50 MB Fetch answer steadily over a slow link would be cut off, and
    cut off again on every retry.

    Raises:
        TimeoutError: the peer took nothing for ``SEND_TIMEOUT_S``.
        OSError: the connection broke.
    """
    sock.settimeout(SEND_TIMEOUT_S)
    with memoryview(data) as view:
        sent = 0
        while sent < len(view):
            sent += sock.send(view[sent:])


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the peer closed or reset the connection (without consuming anything it
    sent: a pipelined request stays for the next read). Only the connection's own
    thread may call it."""
    try:
        previous = sock.gettimeout()
        sock.settimeout(0.0)  # a socket with a timeout would wait for data first
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        finally:
            sock.settimeout(previous)
    except (BlockingIOError, InterruptedError):
        return False  # nothing to read: still there
    except (OSError, ValueError):  # reset, or already closed
        return True


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _api_name(key: int) -> str:
    try:
        return ApiKey(key).name
    except ValueError:
        return f"API {key}"
