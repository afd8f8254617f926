"""aiokafka's helpers (``aiokafka.helpers``).

mqlog runs in-process and never opens a socket, so an SSL context passed to a client is
accepted and ignored; :func:`create_ssl_context` still builds a real one, so code that
prepares TLS settings runs unchanged (and reports bad certificate paths as it would).
"""

from __future__ import annotations

import ssl
from typing import Any

__all__ = ["create_ssl_context"]


def create_ssl_context(*, cafile: str | None = None, capath: str | None = None,
                       cadata: Any = None, certfile: str | None = None,
                       keyfile: str | None = None, password: Any = None,
                       crlfile: str | None = None) -> ssl.SSLContext:
    """A client-side :class:`ssl.SSLContext` with the given CA, certificate and CRL.

    Raises:
        OSError / ssl.SSLError: a file is missing or not valid.
    """
    context = ssl.create_default_context(
        purpose=ssl.Purpose.SERVER_AUTH, cafile=cafile, capath=capath, cadata=cadata)
    if crlfile is not None:
        context.load_verify_locations(crlfile)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    if certfile is not None:
        context.load_cert_chain(certfile=certfile, keyfile=keyfile, password=password)
    return context
