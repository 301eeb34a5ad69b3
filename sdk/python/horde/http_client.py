"""`http.client.HTTPConnection` and `HTTPSConnection` over Horde's `http`
import, so `http.client`, `urllib.request`, `xmlrpc.client` and everything
built on them reach the network through the host: under the run's grants,
over its keep-alive pool, with TLS done by the host (this Python has no
`ssl`), each exchange recorded as one request event named by its path.

The classes subclass the standard ones: the request is formatted by
`http.client` itself (`putrequest`, `putheader`, `endheaders`, `send`), kept
in memory instead of written to a socket, and sent as a whole by
`getresponse()`, which returns a real `http.client.HTTPResponse`. Network
errors surface there, as the `OSError` subclasses a socket would raise.
Installed by `install()` (from this SDK's `sitecustomize`)."""

import http
import http.client as std
import io
from typing import List, Tuple

from horde import transport

_StdHTTPConnection = std.HTTPConnection


class _Replay:
    """A socket stand-in that `HTTPResponse` reads a finished response from."""

    def __init__(self, data: bytes):
        self._data = data

    def makefile(self, mode="rb", *args, **kwargs):
        return io.BufferedReader(io.BytesIO(self._data))

    def close(self):
        pass


def _dechunk(body: bytes) -> bytes:
    """The payload of a body framed with `Transfer-Encoding: chunked`."""
    out = bytearray()
    rest = body
    while rest:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2:]
    return bytes(out)


def parse_request(wire: bytes) -> Tuple[str, str, List[Tuple[str, str]], bytes]:
    """Method, target, headers and body of a request as `http.client` wrote it."""
    head, _, body = wire.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target = lines[0].split(" ")[:2]
    headers = []
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if name.lower() == "transfer-encoding" and value.lower() == "chunked":
            chunked = True
            continue
        headers.append((name, value))
    if chunked:
        body = _dechunk(body)
        headers.append(("Content-Length", str(len(body))))
    return method, target, headers, body


def response_bytes(method: str, reply: transport.Reply) -> bytes:
    """The reply as HTTP/1.1 bytes, framed by Content-Length (the host has
    already removed the transfer framing)."""
    try:
        reason = http.HTTPStatus(reply.status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {reply.status} {reason}"]
    bodyless = method == "HEAD" or reply.status in (204, 304) or 100 <= reply.status < 200
    for name, value in reply.headers:
        lower = name.lower()
        if lower == "transfer-encoding" or (lower == "content-length" and not bodyless):
            continue
        if lower == "connection":
            continue
        lines.append(f"{name}: {value}")
    if not bodyless:
        lines.append(f"Content-Length: {len(reply.body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")
    return head if bodyless else head + reply.body


class HTTPConnection(_StdHTTPConnection):
    """`http.client.HTTPConnection` whose requests go through Horde's host."""

    _scheme = "http"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._wire = bytearray()
        self._reply = None

    def connect(self):
        # The host opens (and pools) connections; there is no socket here.
        pass

    def send(self, data):
        if self._reply is not None:
            raise std.CannotSendRequest(
                "the request was already sent whole; read its response before sending more"
            )
        if hasattr(data, "read"):
            while chunk := data.read(self.blocksize):
                self._wire += chunk.encode("iso-8859-1") if isinstance(chunk, str) else chunk
            return
        if isinstance(data, str):
            data = data.encode("iso-8859-1")
        if isinstance(data, (bytes, bytearray, memoryview)):
            self._wire += data
        else:
            for chunk in data:
                self._wire += chunk

    def set_tunnel(self, host, port=None, headers=None):
        raise std.HTTPException(
            "proxies are not used in Horde's sandbox: the host connects to granted origins itself"
        )

    def _origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self._scheme}://{host}:{self.port}"

    def _complete(self) -> bool:
        """Has the whole request (headers and the body they announce) been sent?"""
        head, sep, body = bytes(self._wire).partition(b"\r\n\r\n")
        if not sep:
            return False
        length, chunked = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length" and value.strip().isdigit():
                length = int(value)
            elif name == b"transfer-encoding" and value.strip().lower() == b"chunked":
                chunked = True
        if chunked:
            return body.endswith(b"0\r\n\r\n")
        return len(body) >= length

    def _perform(self) -> transport.Reply:
        wire, self._wire = bytes(self._wire), bytearray()
        method, target, headers, body = parse_request(wire)
        self._method = method
        url = target if "://" in target else self._origin() + target
        return transport.exchange(method, url, headers, body,
                                  transport.timeout_seconds(self.timeout))

    def endheaders(self, message_body=None, *, encode_chunked=False):
        super().endheaders(message_body, encode_chunked=encode_chunked)
        # Exchanged now when the request is whole, so a refused or failed
        # connection raises here, where a real connect would.
        if self._complete():
            self._reply = self._perform()

    def getresponse(self):
        reply, self._reply = self._reply, None
        if reply is None:
            if not self._wire:
                raise std.ResponseNotReady("no request was sent")
            reply = self._perform()
        # The standard class's state: the request is done, the next may start.
        self._HTTPConnection__state = std._CS_IDLE
        self._HTTPConnection__response = None
        response = self.response_class(_Replay(response_bytes(self._method, reply)),
                                       method=self._method)
        response.begin()
        return response

    def close(self):
        self._wire = bytearray()
        self._reply = None
        super().close()


class HTTPSConnection(HTTPConnection):
    """`http.client.HTTPSConnection`: TLS is the host's (certificates are
    checked unless the run has `--insecure`); `context` is accepted and unused."""

    _scheme = "https"
    default_port = std.HTTPS_PORT

    def __init__(self, host, port=None, *args, context=None, check_hostname=None, **kwargs):
        for legacy in ("key_file", "cert_file"):
            kwargs.pop(legacy, None)
        super().__init__(host, port, *args, **kwargs)


def install() -> None:
    """Replace the standard connection classes (before other modules bind them)."""
    std.HTTPConnection = HTTPConnection
    std.HTTPSConnection = HTTPSConnection
    # urllib.request makes an ssl context for HTTPS by default; the host does TLS.
    if getattr(std, "ssl", None) is None:
        std._create_https_context = lambda *args, **kwargs: None
    if "HTTPSConnection" not in std.__all__:
        std.__all__.append("HTTPSConnection")
