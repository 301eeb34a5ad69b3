"""Python's `socket` module in the sandbox: name lookups and connections
under the run's grants, with messages that say which flag grants what.

Imported by `sitecustomize` (this SDK's), before the scenario module, while
componentize-py builds the component. Three things are set up here:

- No network while the component is built. wasi-libc fetches its network
  handle once and keeps it in a static; if a library touches the network
  at import time (urllib3 probes IPv6 by binding a socket), the handle of
  the build's sandbox is kept in the snapshot and every later socket call
  at run time traps with "unknown handle index". So until the run starts,
  socket calls that need the network raise `OSError` instead (urllib3 then
  assumes no IPv6, as it would on any machine without it).
- `encodings.idna` is imported, so it is bundled: `getaddrinfo` encodes
  names with it, and a codec imported lazily is not in the component.
- A refused lookup or connection raises with the `--allow-host` hint.
- `ssl`, missing from this Python, is `horde.ssl_standin` (see there).
"""

import errno
import socket
import sys

import encodings.idna  # noqa: F401  (bundled for getaddrinfo; see above)

_building = True


def run_started() -> None:
    """Called on the first call into the component at run time."""
    global _building
    _building = False


def _not_while_building(what: str) -> None:
    if _building:
        raise OSError(
            errno.ENETUNREACH,
            f"{what} while the scenario is being built: the network exists only at run time "
            "(move this call from module level into on_start or a task)",
        )


_getaddrinfo = socket.getaddrinfo


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    _not_while_building("a name lookup")
    try:
        return _getaddrinfo(host, port, family, type, proto, flags)
    except PermissionError:
        name = host.decode() if isinstance(host, bytes) else host
        raise socket.gaierror(
            getattr(socket, "EAI_FAIL", -4),
            f"name lookup of {name!r} denied: not granted to this run; add "
            f"`--allow-host {name}:{port}` to allow it",
        ) from None


getaddrinfo.__doc__ = _getaddrinfo.__doc__
socket.getaddrinfo = getaddrinfo


def _gethostbyname(host):
    return getaddrinfo(host, 0, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]


def _gethostbyname_ex(host):
    addresses = []
    for *_, address in getaddrinfo(host, 0, socket.AF_INET, socket.SOCK_STREAM):
        if address[0] not in addresses:
            addresses.append(address[0])
    return host, [], addresses


socket.gethostbyname = _gethostbyname
socket.gethostbyname_ex = _gethostbyname_ex


def _address_text(address) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


def _guarded_connect(method, what):
    def call(self, address, *args):
        _not_while_building(what)
        try:
            return method(self, address, *args)
        except PermissionError:
            target = _address_text(address)
            raise PermissionError(
                errno.EACCES,
                f"{what} to {target} denied: not granted to this run; add "
                f"`--allow-host {target}` to allow it",
            ) from None

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


def _guarded(method, what):
    def call(self, *args):
        _not_while_building(what)
        return method(self, *args)

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


socket.socket.connect = _guarded_connect(socket.socket.connect, "connect")
socket.socket.connect_ex = _guarded(socket.socket.connect_ex, "connect")
def _guarded_bind(method):
    def bind(self, address):
        _not_while_building("bind")
        try:
            return method(self, address)
        except PermissionError:
            raise PermissionError(
                errno.EACCES,
                f"bind to {_address_text(address)} denied: a scenario may not listen or bind to "
                "a chosen port in Horde's sandbox (no flag allows it); bind to port 0 or not at all",
            ) from None

    bind.__doc__ = method.__doc__
    return bind


socket.socket.bind = _guarded_bind(socket.socket.bind)
socket.socket.sendto = _guarded(socket.socket.sendto, "send")

try:
    import ssl  # noqa: F401
except ImportError:
    # No OpenSSL in this Python: `import ssl` gives the stand-in, whose names
    # let libraries import and whose TLS calls explain what to use instead.
    from horde import ssl_standin

    ssl_standin.__name__ = "ssl"
    sys.modules["ssl"] = ssl_standin
