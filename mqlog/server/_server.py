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
* a client that stops sending in the middle of a frame, or sends nothing for
  ``idle_timeout_s``, is disconnected; so is one that does not read its responses
  within ``send_timeout_s`` (the write blocks only that connection's thread);
* a vanished client (reset, broken pipe) ends its thread quietly.

Shutdown (:meth:`KafkaServer.close`): stop accepting, set ``stopping`` (long polls and
group waits return early), shut the read side of every connection so each thread
finishes the request it is processing, sends its answer and ends; then join them.

Thread-safety: :class:`KafkaServer` methods may be called from any thread.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import selectors
import socket
import struct
import threading
import time
from typing import Any

from . import _apis, _codec
from ._appender import WireAppender
from ._txn import TxnRegistry
from ._apis import ApiError, ApiKey, ConnectionContext, ErrorCode, ServerConfig

__all__ = ["KafkaServer"]

log = logging.getLogger("mqlog.server")

_I32 = struct.Struct(">i")
#: Seconds a connection may take to read a response we send before it is dropped.
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
        if not isinstance(config.max_request_bytes, int) or config.max_request_bytes < 1024:
            raise ValueError(f"max_request_bytes={config.max_request_bytes!r} must be an "
                             "int of at least 1024")
        if not isinstance(config.idle_timeout_s, (int, float)) or config.idle_timeout_s <= 0:
            raise ValueError(f"idle_timeout_s={config.idle_timeout_s!r} must be a number "
                             "of seconds > 0")
        if not isinstance(config.max_connections, int) or config.max_connections < 1:
            raise ValueError(f"max_connections={config.max_connections!r} must be an int "
                             ">= 1")
        if not isinstance(config.port, int) or not 0 <= config.port <= 65535:
            raise ValueError(f"port={config.port!r} must be an int from 0 to 65535 (0 "
                             "picks a free port)")
        _apis.load_handlers()
        self.broker = broker
        self.config = config
        self.stopping = threading.Event()
        # Guards _conns, _closed and _in_flight; notified when _in_flight changes.
        self._lock = threading.Lock()
        self._activity = threading.Condition(self._lock)
        self._in_flight = 0
        self._conns: set[_Connection] = set()
        self._closed = False
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._acceptor: threading.Thread | None = None
        self._address: tuple[str, int] = (config.host, config.port)
        self.requests_served = 0  # statistics (approximate: incremented without a lock)
        self._appender: WireAppender | None = None  # created by the first Produce
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
        # Long polls wait on the broker's data condition: wake them so they see stopping.
        cond = getattr(self.broker, "_data_cond", None)
        if cond is not None:
            with cond:
                cond.notify_all()
        for conn in conns:
            try:
                conn.sock.shutdown(socket.SHUT_RD)  # recv() returns b"" after the answer
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for conn in conns:
            if conn.thread is not None:
                conn.thread.join(max(0.0, deadline - time.monotonic()))
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
        with self._lock:
            appender, self._appender = self._appender, None
        if appender is not None:
            appender.close()
        _close_quietly(self._wake_r)
        _close_quietly(self._wake_w)
        log.info("mqlog server on %s:%d stopped", *self._address)

    def appender(self) -> WireAppender:
        """The source of produced batches for the broker's writer (created once)."""
        with self._lock:
            if self._appender is None:
                self._appender = WireAppender(self.broker)
            return self._appender

    def transactions(self) -> TxnRegistry:
        """The wire transactional producers of this server (created once)."""
        with self._lock:
            if self._transactions is None:
                self._transactions = TxnRegistry()
            return self._transactions

    @property
    def closed(self) -> bool:
        return self._closed

    def connection_count(self) -> int:
        with self._lock:
            return len(self._conns)

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
            ctx = ConnectionContext(self.broker, self.config, self, peer[:2], self.stopping)
            conn = _Connection(sock, peer[:2], ctx)
            self._conns.add(conn)
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        conn.thread = threading.Thread(target=self._serve_connection, args=(conn,),
                                       daemon=True, name=f"mqlog-serve-conn:{peer[1]}")
        conn.thread.start()

    # -- one connection -----------------------------------------------------------------

    def _serve_connection(self, conn: _Connection) -> None:
        sock = conn.sock
        try:
            while not self.stopping.is_set():
                frame = self._read_frame(conn)
                if frame is None:
                    return
                self._count_in_flight(1)
                try:
                    answer = self.handle_frame(conn.ctx, frame)
                finally:
                    self._count_in_flight(-1)
                if answer is None:
                    continue
                sock.settimeout(SEND_TIMEOUT_S)
                sock.sendall(answer)
        except _Disconnect as exc:
            log.debug("closing connection from %s: %s", conn.peer, exc)
        except (ConnectionError, TimeoutError, OSError) as exc:
            log.debug("connection from %s ended: %s", conn.peer, exc)
        except Exception:  # pragma: no cover - a bug; only this connection is lost
            log.exception("connection from %s failed", conn.peer)
        finally:
            with self._lock:
                self._conns.discard(conn)
            _close_quietly(sock)

    def _count_in_flight(self, delta: int) -> None:
        with self._activity:
            self._in_flight += delta
            self._activity.notify_all()

    def wait_in_flight(self, count: int, timeout: float) -> bool:
        """Wait until exactly ``count`` requests are being processed (a test seam: a
        test parks a long poll, then acts). Returns whether that happened in time."""
        with self._activity:
            return self._activity.wait_for(lambda: self._in_flight == count, timeout)

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes | None:
        """Read exactly n bytes; None at a clean end of stream before the first byte."""
        # Straight into one buffer (a produce request is often a megabyte: a bytes
        # object per recv() and a growing bytearray copied it twice more). The buffer
        # grows with the data received, so a size prefix alone reserves little memory.
        buf = bytearray(min(n, 1 << 20))
        got = 0
        while got < n:
            if got == len(buf):
                buf.extend(bytes(min(n, 2 * got) - got))
            with memoryview(buf) as view:
                count = sock.recv_into(view[got:])
            if not count:
                if not got:
                    return None
                raise _Disconnect(f"the peer closed the connection {got} bytes into a "
                                  f"{n}-byte read")
            got += count
            sock.settimeout(FRAME_TIMEOUT_S)  # once data flows, the rest must follow
        return bytes(buf)

    def _read_frame(self, conn: _Connection) -> bytes | None:
        sock = conn.sock
        sock.settimeout(self.config.idle_timeout_s)
        try:
            prefix = self._recv_exact(sock, 4)
        except TimeoutError:
            raise _Disconnect(f"idle for {self.config.idle_timeout_s} s") from None
        if prefix is None:
            return None
        size = _I32.unpack(prefix)[0]
        if size < 0 or size > self.config.max_request_bytes:
            log.warning("closing connection from %s: request size %d is outside "
                        "0..%d (max_request_bytes)", conn.peer, size,
                        self.config.max_request_bytes)
            raise _Disconnect("bad request size")
        sock.settimeout(FRAME_TIMEOUT_S)
        body = self._recv_exact(sock, size) if size else b""
        if body is None:
            raise _Disconnect("the peer closed the connection after a size prefix")
        return body

    # -- dispatch -----------------------------------------------------------------------

    def handle_frame(self, ctx: ConnectionContext, frame: bytes) -> bytes | None:
        """Answer one request frame (without its size prefix).

        Returns:
            The response frame, or None when the request expects no answer (Produce
            with acks=0).

        Raises:
            _Disconnect: the header cannot be read; the connection must close.
        """
        try:
            header = _codec.parse_header(frame)
        except _codec.FrameError as exc:
            raise _Disconnect(str(exc)) from None
        self.requests_served += 1
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
            return self._error_frame(ctx, header, None, ErrorCode.invalid_request)
        try:
            response = api.handler(ctx, request, version)
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
                return None
        if response is None:
            response = _codec.error_response(header.api_key, header.api_version, code)
        if response is None:
            return _codec.bare_error_frame(header.correlation_id, code)
        return _codec.encode_response(header.correlation_id, response)


class _Disconnect(Exception):
    """The connection cannot continue (bad framing, idle, peer gone)."""


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
