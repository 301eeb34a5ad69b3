"""urllib3 (and so `requests`, and every SDK built on either) over Horde's
`http` import: `HTTPConnectionPool.urlopen`, the call every urllib3 request
ends in, is replaced by one that sends through the host and returns a real
`urllib3.HTTPResponse` (with its `http.client` original, so `requests` keeps
cookies as usual). Failures raise the urllib3 exceptions urllib3 itself
would (`MaxRetryError` around `NewConnectionError` or
`NameResolutionError`, `ReadTimeoutError`, `ProtocolError`), which
`requests` turns into its own `requests.exceptions.*`.

Patched when urllib3 and requests are imported (see `horde.patches`)."""

import io

from horde import transport
from horde.http_client import _Replay, response_bytes


def _body_bytes(body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(c.encode("utf-8") if isinstance(c, str) else bytes(c) for c in body)


def _timeout(timeout):
    read = getattr(timeout, "read_timeout", timeout)
    total = getattr(timeout, "total", None)
    return transport.timeout_seconds(total if total is not None else read)


def patch_connectionpool(module) -> None:
    """Replace `HTTPConnectionPool.urlopen` in `urllib3.connectionpool`."""
    from urllib3 import exceptions
    from urllib3._collections import HTTPHeaderDict
    from urllib3.response import HTTPResponse
    from urllib3.util.retry import Retry
    import http.client

    pool_class = module.HTTPConnectionPool

    def urlopen(self, method, url, body=None, headers=None, retries=None, redirect=True,
                assert_same_host=True, timeout=module._DEFAULT_TIMEOUT, pool_timeout=None,
                release_conn=None, chunked=False, body_pos=None, preload_content=True,
                decode_content=True, **response_kw):
        if not isinstance(retries, Retry):
            retries = Retry.from_int(retries, redirect=redirect, default=self.retries)
        host = f"[{self.host}]" if ":" in self.host else self.host
        full = url if "://" in url else f"{self.scheme}://{host}:{self.port}{url}"
        payload = _body_bytes(body)
        pairs = list((headers if headers is not None else self.headers).items())
        names = {k.lower() for k, _ in pairs}
        if payload and "content-length" not in names:
            pairs.append(("Content-Length", str(len(payload))))
        pairs = [(k, v) for k, v in pairs if k.lower() != "transfer-encoding"]
        if timeout is module._DEFAULT_TIMEOUT:
            timeout = self.timeout
        try:
            reply = transport.exchange(method, full, pairs, payload, _timeout(timeout))
        except TimeoutError:
            raise exceptions.ReadTimeoutError(self, url, "Read timed out.") from None
        except OSError as error:
            if isinstance(error, ConnectionResetError):
                raise exceptions.ProtocolError("Connection aborted.", error) from None
            if isinstance(error, transport.socket.gaierror):
                reason = exceptions.NameResolutionError(self.host, None, error)
            else:
                reason = exceptions.NewConnectionError(
                    None, f"Failed to establish a new connection: {error}")
            raise exceptions.MaxRetryError(self, url, reason) from None
        original = http.client.HTTPResponse(_Replay(response_bytes(method, reply)), method=method)
        original.begin()
        response = HTTPResponse(
            body=io.BytesIO(b"" if method == "HEAD" else reply.body),
            headers=HTTPHeaderDict(reply.headers),
            status=reply.status,
            version=11,
            version_string="HTTP/1.1",
            reason=original.reason,
            preload_content=preload_content,
            decode_content=decode_content,
            original_response=original,
            msg=original.msg,
            retries=retries,
            enforce_content_length=False,
            request_method=method,
            request_url=full,
        )
        location = redirect and response.get_redirect_location()
        if location:
            if reply.status == 303 and method != "HEAD":
                method, body = "GET", None
            retries = retries.increment(method, url, response=response, _pool=self)
            response.drain_conn()
            return urlopen(self, method, location if "://" in location else
                           f"{self.scheme}://{host}:{self.port}{location}", body, headers,
                           retries=retries, redirect=redirect, timeout=timeout,
                           preload_content=preload_content, decode_content=decode_content,
                           **response_kw)
        return response

    urlopen.__doc__ = pool_class.urlopen.__doc__
    pool_class.urlopen = urlopen


def patch_requests_adapters(module) -> None:
    """`requests` checks that its CA bundle file exists before an https
    request; the sandbox has no files, and the host checks certificates."""
    module.HTTPAdapter.cert_verify = lambda self, conn, url, verify, cert: None

