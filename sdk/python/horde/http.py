"""`HttpUser` and its `client`: a requests-like session (Locust's
`HttpSession`) over Horde's `http` import. The host times and records every
request; a status of 400 or more counts as a failure unless `expect_status`
says otherwise. Like Locust, a request that gets no response does not raise:
its `Response` has `status_code` 0 and `error` set."""

import contextlib
import datetime
import json as jsonlib
import sys
from typing import Any, Dict, Iterable, List, Optional
from urllib.parse import urlencode

from componentize_py_types import Err
from wit_world.imports import http as wit

from horde import requests_session
from horde.tags import tags as tagged
from horde.user import User

_ERROR_KINDS = {
    wit.Error_Denied: "denied",
    wit.Error_InvalidUrl: "invalid URL",
    wit.Error_Dns: "DNS",
    wit.Error_Connect: "connect",
    wit.Error_Timeout: "timeout",
    wit.Error_Tls: "TLS",
    wit.Error_Protocol: "protocol",
    wit.Error_TooLarge: "too large",
}


def describe_error(error) -> str:
    """One line for an `http` error value."""
    kind = _ERROR_KINDS.get(type(error), type(error).__name__)
    detail = getattr(error, "value", None)
    return f"{kind}: {detail}" if detail else kind


class Headers(dict):
    """Response headers; lookups ignore case. Repeated headers are joined with ", ".
    Values are ISO-8859-1 (Latin-1), one character per byte the server sent,
    as `http.client` and `requests` give them: `value.encode("latin-1")` is
    the bytes (`.decode("utf-8")` reads a UTF-8 value)."""

    def __init__(self, pairs: Iterable = ()):
        super().__init__()
        for name, value in pairs:
            key = name.lower()
            super().__setitem__(key, f"{self[key]}, {value}" if key in self else value)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)


class HTTPError(Exception):
    """Raised by `Response.raise_for_status()`."""

    def __init__(self, message: str, response: "Response"):
        super().__init__(message)
        self.response = response


class Response:
    """What a request produced: `status_code`, `headers`, `content`, `text`,
    `json()`, `url`, `elapsed`, `ok`; `error` when there was no response."""

    def __init__(self, status_code: int, headers: Headers, content: bytes, url: str,
                 elapsed_us: int, error: Optional[str] = None):
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.url = url
        self.elapsed = datetime.timedelta(microseconds=elapsed_us)
        self.error = error

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code < 400

    def raise_for_status(self) -> None:
        if self.error is not None:
            raise HTTPError(self.error, self)
        if self.status_code >= 400:
            raise HTTPError(f"HTTP {self.status_code} for {self.url}", self)

    def __repr__(self) -> str:
        if self.error is not None:
            return f"<Response [error: {self.error}]>"
        return f"<Response [{self.status_code}]>"


class HttpSession:
    """Sends requests as this VU. Relative URLs go to the run's `--host` (else
    the user class's `host`); `headers` are sent with every request."""

    def __init__(self):
        self.headers: Dict[str, str] = {}
        self.request_name: Optional[str] = None

    @contextlib.contextmanager
    def rename_request(self, name: str):
        """Group every request in the block under `name` (Locust's
        `HttpSession.rename_request`)."""
        self.request_name = name
        try:
            yield
        finally:
            self.request_name = None

    def request(
        self,
        method: str,
        url: str,
        *,
        name: Optional[str] = None,
        params: Optional[Dict[str, Any]] = None,
        data: Any = None,
        json: Any = None,
        headers: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
        allow_redirects: bool = True,
        expect_status: Optional[List[int]] = None,
        catch_response: bool = False,
        discard_body: bool = False,
        tags: Optional[Dict[str, str]] = None,
    ) -> Response:
        """Send one request as this VU and record it. `discard_body=True`
        reads the body to its end without keeping it (k6's `responseType:
        "none"`): `content` is empty and the event records the body's
        length; for downloads of any size (`--max-response-body`, 32 MiB by
        default, bounds only bodies that are kept). `tags` tag this request
        only (added to the VU's, see `horde.tags`)."""
        if catch_response:
            raise TypeError(
                "catch_response is not supported: Horde records the request itself. Pass "
                "expect_status=[...] to choose which statuses succeed, and use horde.check() "
                "for content assertions"
            )
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        merged = dict(self.headers)
        if headers:
            merged.update(headers)
        lower = {k.lower() for k in merged}
        body = b""
        if json is not None:
            body = jsonlib.dumps(json).encode()
            if "content-type" not in lower:
                merged["Content-Type"] = "application/json"
        elif isinstance(data, dict):
            body = urlencode(data, doseq=True).encode()
            if "content-type" not in lower:
                merged["Content-Type"] = "application/x-www-form-urlencoded"
        elif isinstance(data, str):
            body = data.encode()
        elif data is not None:
            body = bytes(data)
        request = wit.Request(
            method=method.upper(),
            url=url,
            headers=[wit.Header(name=k, value=str(v)) for k, v in merged.items()],
            body=body,
            name=name or self.request_name,
            timeout_ms=None if timeout is None else max(1, int(timeout * 1000)),
            expect_status=list(expect_status or []),
            follow_redirects=allow_redirects,
            cookie_jar=True,
            record_event=True,
            discard_body=discard_body,
        )
        try:
            if tags:
                with tagged(**tags):
                    reply = wit.send(request)
            else:
                reply = wit.send(request)
        except Err as e:
            return Response(0, Headers(), b"", url, 0, describe_error(e.value))
        return Response(
            reply.status,
            Headers(line.split(": ", 1) for line in reply.headers.split("\n") if ": " in line),
            reply.body,
            reply.url,
            reply.elapsed_us,
        )

    def get(self, url: str, **kwargs) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, data: Any = None, json: Any = None, **kwargs) -> Response:
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url: str, data: Any = None, **kwargs) -> Response:
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url: str, data: Any = None, **kwargs) -> Response:
        return self.request("PATCH", url, data=data, **kwargs)

    def delete(self, url: str, **kwargs) -> Response:
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs) -> Response:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs) -> Response:
        return self.request("OPTIONS", url, **kwargs)


class HttpUser(User):
    """A user with an HTTP `client` (Locust's `HttpUser`): a real
    `requests.Session` when the scenario imports `requests` (see
    `horde.requests_session`), else the lighter `HttpSession`."""

    abstract = True

    def __init__(self, environment=None):
        super().__init__(environment)
        if "requests" in sys.modules:
            self.client = requests_session.make(self.host)
        else:
            self.client = HttpSession()
