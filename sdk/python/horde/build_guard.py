"""What the scenario module may touch while componentize-py builds it, and
the list of files that went into the component.

`horde build` gives componentize-py a copy of the scenario's folder (its
hidden files and folders left out) as `/0`, the SDK as `/1`, the standard
library as `/python` and the site-packages after them (`/2`, ...); the
module runs inside wasmtime and sees nothing else of the machine. This
audit hook, installed by `sitecustomize` before the scenario module is
imported, turns a read anywhere else into a `FileNotFoundError` that names
the path and says what to do, refuses writes outside the copy (the
site-packages are the machine's own), and records the files read, which
`write_inputs()` leaves in the copy for `horde build` to list. It does
nothing once the run has started (`run_started()`).

The hook is a guard for clear messages, not the boundary: the boundary is
what componentize-py maps into the sandbox.

The host's functions (`wit_world.imports.*`) do not exist while the module
is built either (componentize-py links stubs that trap): until the run
starts, calling one raises `NotWhileBuilding`, which says to move the call
into `on_start` or a task.
"""

import errno
import json
import os
import sys

# Written by `horde build` into the copy: {"folder": the real folder}.
_CONFIG = "/0/.horde-build.json"
# Written here for `horde build`: {"scenario": [...], "libraries": {...}}.
_INPUTS = "/0/.horde-inputs.json"

# Open flags that write. WASI's O_RDONLY is not 0 and its O_RDWR is
# O_RDONLY | O_WRONLY, so the access mode is compared, not tested bit by bit.
_ACCESS = os.O_RDONLY | os.O_WRONLY | os.O_RDWR
_WRITE_FLAGS = os.O_APPEND | os.O_CREAT | os.O_TRUNC
_MUTATING = frozenset({
    "os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.symlink", "os.link",
    "os.truncate", "os.chmod", "os.chown", "os.utime", "shutil.rmtree",
})
_LISTING = frozenset({"os.listdir", "os.scandir"})


def _folder():
    """The real folder `/0` is a copy of, or None when `horde build` did not
    make a copy (componentize-py run by hand)."""
    try:
        with open(_CONFIG, encoding="utf-8") as config:
            return str(json.load(config).get("folder") or "/0")
    except (OSError, ValueError):
        return None


def _normal(path: str) -> str:
    """`path` (absolute) without `.`, `..` and repeated slashes."""
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def _absolute(path, getcwd=os.getcwd, fspath=os.fspath, isinstance=isinstance, bytes=bytes):
    """`path` as an absolute guest path (str, not normalised), or None for a
    file descriptor."""
    if isinstance(path, int):
        return None
    path = fspath(path)
    if isinstance(path, bytes):
        path = path.decode("utf-8", "replace")
    if not path.startswith("/"):
        path = getcwd().rstrip("/") + "/" + path
    return path


class _State:
    """The hook's state: whether the build is going on, and what was read."""

    building = True
    # Whether `horde build` made the copy (and so wants the inputs listed).
    staged = False
    folder = "/0"
    # The files opened for reading in the scenario's folder and site-packages.
    read = set()


def _shown(raw: str) -> str:
    """A guest path as the user knows it: `/0/x` is the scenario's folder
    (so `/0/../secret.txt` is the file beside that folder)."""
    if raw == "/0" or raw.startswith("/0/"):
        return _normal(_State.folder.rstrip("/") + raw[2:])
    return _normal(raw)


def _refusal(raw: str, writing: bool):
    """Why the module may not touch the guest path `raw` while it is built,
    or None."""
    path = _normal(raw)
    root, _, rest = path[1:].partition("/")
    if root == "0":
        if any(part.startswith(".") for part in rest.split("/")) and path != _INPUTS:
            return (
                f"{_shown(raw)} is a hidden file or in a hidden folder of the scenario's "
                "folder: hidden files (keys, credentials, settings) are not copied into the "
                "build; rename it if the scenario needs it at build time"
            )
        return None
    if root in ("python", "bundled", "world") or root.isdigit():
        if writing:
            return (
                f"writing {_shown(raw)} while the scenario is built: only the copy of the "
                "scenario's folder may be written (and it is thrown away after the build); "
                "write files at run time, or not at all"
            )
        return None
    return (
        f"{_shown(raw)} is outside the scenario's folder ({_State.folder}): while it is built, the "
        "module can read only its own folder, the Horde SDK, the standard library and "
        "site-packages; copy the file into the scenario's folder (read it at module level), "
        "or give data to the run with `horde run --data NAME=FILE`"
    )


def _record(raw: str) -> None:
    """Note a file the module opens for reading (whether it exists is seen
    when the list is written)."""
    path = _normal(raw)
    root = path[1:].partition("/")[0]
    if root == "0" or (root.isdigit() and root != "1"):
        _State.read.add(path)


def _refuse(why: str, writing: bool, PermissionError=PermissionError,
            FileNotFoundError=FileNotFoundError, enoent=errno.ENOENT):
    """The error for a refused access. A refused read is a missing file (it
    is not in the sandbox), so code that looks for optional files goes on."""
    if writing:
        return PermissionError(errno.EACCES, why)
    return FileNotFoundError(enoent, why)


def _hook(event, args, state=_State, absolute=_absolute, refusal=_refusal, record=_record,
          refuse=_refuse, mutating=_MUTATING, listing=_LISTING, write_flags=_WRITE_FLAGS,
          access=_ACCESS, read_only=os.O_RDONLY,
          isinstance=isinstance, str=str, bytes=bytes, hasattr=hasattr, bool=bool, any=any):
    if not state.building:
        return
    if event == "open":
        path, mode, flags = args
        path = absolute(path)
        if path is None:
            return
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
            isinstance(flags, int)
            and ((flags & access) != read_only or flags & write_flags)
        )
        why = refusal(path, writing)
        if why is not None:
            raise refuse(why, writing)
        if not writing:
            record(path)
    elif event in mutating or event in listing:
        for path in args[:2] if event in ("os.rename", "os.link", "os.symlink") else args[:1]:
            if isinstance(path, (str, bytes)) or hasattr(path, "__fspath__"):
                path = absolute(path)
                why = path and refusal(path, event in mutating)
                if why:
                    raise refuse(why, event in mutating)
    elif event == "object.__setattr__" and args[0] in (_hook, _absolute, _normal, _refusal,
                                                       _record, _refuse, _shown):
        raise PermissionError("the build's file guard cannot be changed while it is built")


class NotWhileBuilding(RuntimeError):
    """A host function (a network call, a metric, run control) called while
    the scenario's module is being built, before the host exists."""


# The interfaces whose calls are network calls; the others are the run's.
_NETWORK = {"http": "an HTTP request", "xmlrpc": "an XML-RPC call", "grpc": "a gRPC call"}
_INTERFACES = ("http", "xmlrpc", "grpc", "metrics", "control", "data", "group", "tags")
# (module, name, the host's function) for each function replaced while building.
_ORIGINALS = []


def _not_while_building(interface: str, name: str, function):
    network = _NETWORK.get(interface)
    if network:
        why = (
            f"{network} ({interface}.{name}) while the scenario's module is being built: "
            "network calls are not available then, only at run time; move the call from "
            "module level into on_start or a task"
        )
    else:
        why = (
            f"Horde's {interface}.{name} was called while the scenario's module is being "
            "built: the run does not exist yet; move the call from module level into "
            "on_start or a task"
        )

    def guarded(*args, **kwargs):
        raise NotWhileBuilding(why)

    guarded.__name__ = name
    guarded.__doc__ = function.__doc__
    return guarded


def _guard_host_calls() -> None:
    import importlib
    import types

    for interface in _INTERFACES:
        try:
            module = importlib.import_module(f"wit_world.imports.{interface}")
        except ImportError:
            continue
        for name, value in list(vars(module).items()):
            if isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
                _ORIGINALS.append((module, name, value))
                setattr(module, name, _not_while_building(interface, name, value))


def install() -> None:
    """Start guarding (once, before the scenario module is imported)."""
    if getattr(sys, "_horde_build_guard", False):
        return
    sys._horde_build_guard = True
    folder = _folder()
    _State.staged = folder is not None
    _State.folder = folder or "/0"
    # Bytecode would be written beside the sources (the site-packages are
    # the machine's); the copy of the scenario's folder has none to reuse.
    sys.dont_write_bytecode = True
    sys.addaudithook(_hook)
    _guard_host_calls()


def building() -> bool:
    """Whether the module is being built (the run has not started)."""
    return _State.building


def run_started() -> None:
    """The run has started: nothing more to guard or record, and the host's
    functions are the host's again."""
    _State.building = False
    while _ORIGINALS:
        module, name, function = _ORIGINALS.pop()
        setattr(module, name, function)


def write_inputs() -> None:
    """Leave the files read so far in the copy, for `horde build` to list."""
    if not _State.building or not _State.staged:
        return
    scenario, libraries = [], {}
    for path in sorted(_State.read):
        if path in (_INPUTS, _CONFIG) or "/__pycache__/" in path or not os.path.isfile(path):
            continue
        root, _, rest = path[1:].partition("/")
        if root == "0":
            scenario.append(rest)
            continue
        top = rest.partition("/")[0]
        if top.endswith(".py"):
            top = top[:-3]
        if not top.endswith((".dist-info", ".egg-info", ".pth")):
            libraries[top] = libraries.get(top, 0) + 1
    inputs = {"scenario": scenario, "libraries": libraries}
    try:
        with open(_INPUTS, "w", encoding="utf-8") as out:
            json.dump(inputs, out)
    except OSError:
        pass
