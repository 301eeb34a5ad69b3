"""Request events for any library: `horde.timed` around a block (or as a
decorator), and Locust's `events.request.fire(...)`, for protocols the host
does not speak itself (redis-py, paho-mqtt, database drivers, ...).

    with horde.timed("redis", "GET user") as call:
        value = r.get("user:1")
        call.length = len(value or b"")

One event per block: timed from entry to exit, a failure when the block
raises (the exception goes on), its message `Type: message`. Calls made
inside the block through Python's own clients (HTTP, `xmlrpc.client`) are
not recorded on their own: the block is the request, as in a Locust
wrapper. Likewise an event of the same type (`xmlrpc`) fired right after an
`xmlrpc.client` call replaces the one the SDK records for that call, under
whatever name the wrapper gives it, so Locust's wrapper counts each call
once."""

import functools
import time
from typing import Any, Optional

from horde import transport
from horde.runtime import record


# An event the SDK recorded on a library's behalf (an `xmlrpc.client` call),
# held until the next call, the end of the task, or a fired event that
# replaces it: (type, name, duration_ms, length, error).
_pending = None


def defer(request_type: str, name: str, duration_ms: float, length: int,
          error: Optional[str]) -> None:
    """Record a library call's event, unless the scenario records the same
    call itself right after (Locust's wrapper around `ServerProxy` fires
    `events.request` with the same type): then that one counts."""
    global _pending
    flush()
    _pending = (request_type, name, duration_ms, length, error)


def flush() -> None:
    """Record the held event, if any (the SDK calls this after every task)."""
    global _pending
    if _pending is not None:
        event, _pending = _pending, None
        record(*event)


class timed:
    """Record one request event of `request_type` named `name` around a
    block (`with`) or each call of a function (decorator). Set `.length`
    inside the block for the response size in bytes."""

    def __init__(self, request_type: str, name: Optional[str] = None):
        self.request_type = str(request_type)
        self.name = name
        self.length = 0
        self._started = 0.0
        self._token = None

    def __enter__(self) -> "timed":
        flush()
        self.length = 0
        self._token = transport._record.set(False)
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind, error, _traceback) -> bool:
        elapsed_ms = (time.perf_counter() - self._started) * 1000.0
        transport._record.reset(self._token)
        message = None
        if error is not None:
            text = str(error)
            message = f"{kind.__name__}: {text}" if text else kind.__name__
        record(self.request_type, self.name or self.request_type, elapsed_ms,
               int(self.length or 0), message)
        return False

    def __call__(self, function):
        name = self.name or getattr(function, "__name__", self.request_type)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with timed(self.request_type, name):
                return function(*args, **kwargs)

        return wrapper


class _RequestEvent:
    """Locust's `events.request`: `fire(...)` records one request event."""

    @staticmethod
    def fire(*, request_type: str, name: str, response_time: float,
             response_length: int = 0, exception: Optional[BaseException] = None,
             context: Any = None, response: Any = None, url: Any = None,
             start_time: Any = None, **_ignored) -> None:
        global _pending
        if _pending is not None and _pending[0] == str(request_type):
            _pending = None  # the scenario records this call itself (maybe renamed)
        flush()
        message = None
        if exception is not None:
            text = str(exception)
            kind = type(exception).__name__
            message = f"{kind}: {text}" if text else kind
        record(str(request_type), str(name), float(response_time or 0.0),
               int(response_length or 0), message)

    def add_listener(self, _listener) -> None:
        raise TypeError("Horde records request events itself; listeners are not supported")


class _Events:
    request = _RequestEvent()


events = _Events()


class Environment:
    """The part of Locust's `Environment` a ported wrapper uses:
    `self.environment.events.request.fire(...)`."""

    events = events
