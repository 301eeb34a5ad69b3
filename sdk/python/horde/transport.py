"""One HTTP exchange through Horde's `http` import, for the drop-ins that make
Python's own clients (`http.client`, `urllib`, `xmlrpc.client`, `urllib3`,
`requests`) use the host: grants, keep-alive pool, TLS, one request event
per exchange. Redirects are left to the client (each hop is its own event),
and the client keeps its own cookies (the VU's jar is not used).

Errors come back as the `OSError` subclasses a socket would raise, so each
client wraps them the way it always does (`urllib.error.URLError`,
`requests.exceptions.ConnectionError`, ...)."""

import contextvars
import errno
import socket
from typing import List, Optional, Tuple

from componentize_py_types import Err
from wit_world.imports import http as wit

# Set by `HttpUser.client` (its `name=` and `expect_status=`) and by
# `horde.timed` (which records the whole block itself) for the exchanges
# made inside them.
_name: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("horde_name", default=None)
_expect: contextvars.ContextVar[Tuple[int, ...]] = contextvars.ContextVar("horde_expect", default=())
_record: contextvars.ContextVar[bool] = contextvars.ContextVar("horde_record", default=True)


class Reply:
    """What came back: `status`, `headers` (list of (name, value)), `body`, `url`."""

    __slots__ = ("status", "headers", "body", "url", "elapsed_us")

    def __init__(self, status: int, headers: List[Tuple[str, str]], body: bytes, url: str,
                 elapsed_us: int):
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url
        self.elapsed_us = elapsed_us


class Denied(PermissionError):
    """The destination is not granted to this run (the message names the flag)."""


def _error(error) -> OSError:
    """The socket-style exception for an `http` error value."""
    detail = getattr(error, "value", None) or ""
    if isinstance(error, wit.Error_Denied):
        return Denied(detail)
    if isinstance(error, wit.Error_Dns):
        return socket.gaierror(getattr(socket, "EAI_NONAME", -2), f"name lookup failed: {detail}")
    if isinstance(error, wit.Error_Connect):
        if "refused" in detail.lower():
            return ConnectionRefusedError(errno.ECONNREFUSED, detail)
        return ConnectionError(errno.ECONNABORTED, detail)
    if isinstance(error, wit.Error_Timeout):
        return TimeoutError("timed out")
    if isinstance(error, wit.Error_InvalidUrl):
        return OSError(errno.EINVAL, f"invalid request: {detail}")
    if isinstance(error, wit.Error_Tls):
        return ConnectionError(errno.ECONNABORTED, f"TLS: {detail}")
    if isinstance(error, wit.Error_TooLarge):
        return OSError(errno.EFBIG, f"response too large: {detail}")
    return ConnectionResetError(errno.ECONNRESET, f"connection broken: {detail}")


def exchange(method: str, url: str, headers: List[Tuple[str, str]], body: bytes,
             timeout: Optional[float]) -> Reply:
    """Send one request to an absolute (or `--host`-relative) URL and return
    the whole response; raises an `OSError` subclass when there is none."""
    request = wit.Request(
        method=method.upper(),
        url=url,
        headers=[wit.Header(name=str(k), value=str(v)) for k, v in headers],
        body=bytes(body),
        name=_name.get(),
        timeout_ms=None if timeout is None else max(1, int(timeout * 1000)),
        expect_status=list(_expect.get()),
        follow_redirects=False,
        cookie_jar=False,
        record_event=_record.get(),
        discard_body=False,
    )
    # A name set for the first request of a call is not given to redirect hops.
    _name.set(None)
    try:
        reply = wit.send(request)
    except Err as e:
        raise _error(e.value) from None
    # One header per "\n" line; not str.splitlines(), which also breaks at
    # characters a header value may hold (U+0085, U+2028): that would let a
    # server forge headers.
    pairs = [tuple(line.split(": ", 1)) for line in reply.headers.split("\n") if ": " in line]
    return Reply(reply.status, pairs, reply.body, reply.url, reply.elapsed_us)


def timeout_seconds(timeout) -> Optional[float]:
    """A client's timeout as seconds, or None for the run's `--timeout`."""
    if timeout is None or timeout is socket._GLOBAL_DEFAULT_TIMEOUT:
        return None
    try:
        return float(timeout)
    except (TypeError, ValueError):
        return None
