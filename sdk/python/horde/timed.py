"""Request events for any library: `horde.timed` around a block (or as a
decorator), and Locust's `events.request.fire(...)`, for protocols the host
does not speak itself (redis-py, paho-mqtt, database drivers, ...).

    with horde.timed("redis", "GET user") as call:
        value = r.get("user:1")
        call.length = len(value or b"")

One event per block: timed from entry to exit, a failure when the block
raises (the exception goes on), its message `Type: message`. HTTP requests
made inside the block through Python's own clients are not recorded on
their own: the block is the request, as in a Locust wrapper."""

import functools
import time
from typing import Any, Optional

from horde import transport
from horde.runtime import record


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
