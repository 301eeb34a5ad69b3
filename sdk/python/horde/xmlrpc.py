"""XML-RPC with native Python values, like `xmlrpc.client.ServerProxy`:
`ServerProxy("/RPC2").get_random_number(0, 100)`. Calls go through Horde's
`xmlrpc` import (same grants and connections as HTTP) and are recorded as
type `xmlrpc`, named by the method. Faults raise `Fault`; other failures
raise `ProtocolError`."""

import datetime
import time
from typing import Any, List

from componentize_py_types import Err
from wit_world.imports import xmlrpc as wit

from horde import transport
from horde.http import describe_error
from horde.user import User

_INT32 = range(-(2**31), 2**31)
_DATE_FORMAT = "%Y%m%dT%H:%M:%S"


class Fault(Exception):
    """The server answered with a fault (`faultCode`, `faultString`), like
    `xmlrpc.client.Fault`: `faultCode` is whatever the server sent, usually
    an int, but a string such as "Client" from SOAP::Lite servers."""

    def __init__(self, faultCode: Any, faultString: str):
        super().__init__(f"<Fault {faultCode}: {faultString!r}>")
        self.faultCode = faultCode
        self.faultString = faultString


class ProtocolError(Exception):
    """The call produced no XML-RPC answer (transport, HTTP status, malformed reply)."""


def to_nodes(value: Any, out: List) -> List:
    """Append `value` to `out` as pre-order nodes."""
    stack = [value]
    depth_guard = 0
    while stack:
        depth_guard += 1
        if depth_guard > 1_000_000:
            raise ValueError("the value is too large to send")
        item = stack.pop()
        if isinstance(item, bool):
            out.append(wit.Node_Boolean(item))
        elif isinstance(item, int):
            out.append(wit.Node_Int(item) if item in _INT32 else wit.Node_I8(item))
        elif isinstance(item, float):
            out.append(wit.Node_Double(item))
        elif isinstance(item, str):
            out.append(wit.Node_String(item))
        elif isinstance(item, (bytes, bytearray, memoryview)):
            out.append(wit.Node_Base64(bytes(item)))
        elif item is None:
            out.append(wit.Node_Nil())
        elif isinstance(item, datetime.datetime):
            out.append(wit.Node_DateTime(item.strftime(_DATE_FORMAT)))
        elif isinstance(item, (list, tuple)):
            out.append(wit.Node_Array(len(item)))
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            names = list(item.keys())
            for name in names:
                if not isinstance(name, str):
                    raise TypeError(f"XML-RPC struct keys must be strings, got {name!r}")
            out.append(wit.Node_Struct(names))
            stack.extend(reversed([item[n] for n in names]))
        else:
            raise TypeError(f"cannot send {type(item).__name__} over XML-RPC: {item!r}")
    return out


def from_nodes(nodes: List) -> Any:
    """The value of one pre-order node list."""
    root: List[Any] = []
    # Each frame: (container, remaining count, struct names or None).
    frames = [(root, 1, None)]

    def place(value):
        container, remaining, names = frames[-1]
        if names is None:
            container.append(value)
        else:
            container[names[len(names) - remaining]] = value
        frames[-1] = (container, remaining - 1, names)

    for node in nodes:
        while frames and frames[-1][1] == 0:
            frames.pop()
        if isinstance(node, wit.Node_Array):
            array: List[Any] = []
            place(array)
            frames.append((array, node.value, None))
        elif isinstance(node, wit.Node_Struct):
            struct: dict = {}
            place(struct)
            frames.append((struct, len(node.value), list(node.value)))
        elif isinstance(node, wit.Node_Nil):
            place(None)
        elif isinstance(node, wit.Node_DateTime):
            try:
                place(datetime.datetime.strptime(node.value, _DATE_FORMAT))
            except ValueError:
                place(node.value)
        else:
            place(node.value)
    return root[0] if root else None


def _describe(error) -> str:
    if isinstance(error, wit.Error_Transport):
        return describe_error(error.value)
    if isinstance(error, wit.Error_Status):
        return f"HTTP status {error.value}"
    return f"{type(error).__name__.removeprefix('Error_').lower()}: {error.value}"


class _Method:
    def __init__(self, proxy: "ServerProxy", name: str):
        self._proxy = proxy
        self._name = name

    def __getattr__(self, name: str) -> "_Method":
        return _Method(self._proxy, f"{self._name}.{name}")

    def __call__(self, *params):
        return self._proxy._call(self._name, params)


class ServerProxy:
    """Calls methods of the XML-RPC server at `uri` (absolute, or a path
    relative to the run's host)."""

    def __init__(self, uri: str = "/"):
        self._uri = uri

    def _call(self, method: str, params) -> Any:
        nodes: List = []
        for param in params:
            to_nodes(param, nodes)
        try:
            return from_nodes(wit.call(self._uri, method, nodes))
        except Err as e:
            error = e.value
            if isinstance(error, wit.Error_Fault):
                # The record holds an int code only; the host keeps the
                # faultCode of any type for this.
                code = wit.last_fault_code()
                raise Fault(from_nodes(code) if code else error.value.code,
                            error.value.message) from None
            raise ProtocolError(f"{method}: {_describe(error)}") from None

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Method(self, name)


class XmlRpcUser(User):
    """A user whose `client` is a `ServerProxy` for the run's host (or
    `self.endpoint`, a path such as "/RPC2")."""

    abstract = True
    endpoint = "/"

    def __init__(self, environment=None):
        super().__init__(environment)
        self.client = ServerProxy(self.endpoint)


def patch_xmlrpc_client(module) -> None:
    """Each `ServerProxy` call is one event of type `xmlrpc` named by the
    method (as Horde's own XML-RPC client and Locust's wrapper record it),
    instead of an HTTP POST; a fault or HTTP error is a failure."""
    from horde import recording

    original = module.ServerProxy._ServerProxy__request

    def request(self, methodname, params):
        if not transport._record.get():
            return original(self, methodname, params)  # inside horde.timed
        recording.flush()
        token = transport._record.set(False)
        started = time.perf_counter()
        error = None
        try:
            return original(self, methodname, params)
        except module.Fault as fault:
            error = f"fault {fault.faultCode}: {fault.faultString}"
            raise
        except module.ProtocolError as failure:
            error = f"HTTP {failure.errcode} {failure.errmsg}"
            raise
        except OSError as failure:
            error = f"{type(failure).__name__}: {failure}"
            raise
        finally:
            transport._record.reset(token)
            recording.defer("xmlrpc", methodname, (time.perf_counter() - started) * 1000.0, 0, error)

    module.ServerProxy._ServerProxy__request = request
