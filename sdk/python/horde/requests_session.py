"""`HttpUser.client` as a real `requests.Session` (Locust's `HttpSession`),
for scenarios that use `requests` or an SDK built on it.

When the scenario imports `requests` (itself or through a library), the
client is this subclass: `isinstance(self.client, requests.Session)` holds,
responses are `requests.Response`, `raise_for_status()` raises
`requests.exceptions.HTTPError`, and Locust's recipe of handing the client
to an SDK (`sdk._session = self.client`) works. Requests go through the host
like every `requests` call (see `horde.urllib3_pool`). As in Locust:

- a URL without a host is joined to `self.host` (`--host`);
- `name=` groups requests in the statistics (the first request of a call;
  redirect hops are recorded under their own paths), and so does
  `with self.client.rename_request(name):` for every request in the block;
- a request that gets no response does not raise: the response has
  `status_code` 0 and `error` set to the exception.

Horde adds `expect_status=[...]`: the statuses that count as success.
Without `requests` in the scenario, `HttpUser.client` is the lighter
`horde.http.HttpSession`, which behaves the same for scenarios that do not
check types.
"""

import contextlib
from typing import Optional

from horde import transport

_session_class = None


def _make_class():
    import requests

    class RequestsSession(requests.Session):
        """A `requests.Session` with Locust's `HttpSession` additions."""

        def __init__(self, base_url: Optional[str] = None):
            super().__init__()
            self.base_url = (base_url or "").rstrip("/")
            self.request_name: Optional[str] = None

        @contextlib.contextmanager
        def rename_request(self, name: str):
            """Group every request in the block under `name` (Locust's
            `HttpSession.rename_request`), e.g. for an SDK that builds URLs."""
            self.request_name = name
            try:
                yield
            finally:
                self.request_name = None

        def _build_url(self, path: str) -> str:
            if "://" in path or not self.base_url:
                return path
            return f"{self.base_url}/{path.lstrip('/')}"

        def request(self, method, url, name=None, catch_response=False, expect_status=None,
                    **kwargs):
            if catch_response:
                raise TypeError(
                    "catch_response is not supported: Horde records the request itself. Pass "
                    "expect_status=[...] to choose which statuses succeed, and use "
                    "horde.check() for content assertions"
                )
            url = self._build_url(url)
            name_token = transport._name.set(name or self.request_name)
            expect_token = transport._expect.set(tuple(expect_status or ()))
            try:
                response = super().request(method, url, **kwargs)
                response.error = None
                return response
            except requests.exceptions.RequestException as error:
                response = requests.Response()
                response.status_code = 0
                response.error = error
                response.url = url
                response.request = requests.Request(method, url).prepare()
                return response
            finally:
                transport._expect.reset(expect_token)
                transport._name.reset(name_token)

    return RequestsSession


def make(base_url: Optional[str]):
    """A new session joined to `base_url` (requests must be imported)."""
    global _session_class
    if _session_class is None:
        _session_class = _make_class()
    return _session_class(base_url)
