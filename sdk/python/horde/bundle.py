"""Bundling what a scenario's libraries import lazily.

componentize-py puts into the component only the modules that are imported
while it builds (there is no file system at run time). Libraries often
import inside a function (redis-py imports `secrets` when a connection is
made; `datetime.strptime` imports `_strptime` from C): such a module is
missing at run time and the call fails with `ModuleNotFoundError`.

So, once the scenario module has been imported, the source of every loaded
module outside the standard library (the scenario's and its libraries') is
scanned for indented imports (in a function, or under `try`/`if`), and
those modules are imported too (repeatedly, until nothing new turns up). A module that cannot
be imported here (a C extension, a platform-only module) is skipped: it
would not work at run time either. Modules imported by C code are listed
in `_IMPORTED_BY_C`.

`watch_first_import()` (from `horde.patches`) arranges for `complete()` to
run right after the first top-level module imported after start-up, which
is the scenario module componentize-py builds.
"""

import importlib
import importlib.util
import os
import re
import sys

from horde import build_guard

# Imported lazily by the interpreter's C code (so no source scan finds
# them), or by standard modules whose lazy imports are not followed but
# that popular libraries need.
_IMPORTED_BY_C = (
    "_strptime",  # time.strptime, datetime.strptime
    "encodings.idna",  # socket.getaddrinfo on names
    "encodings.latin_1",
    "encodings.ascii",
    "encodings.utf_16",
    "encodings.utf_32",
    "encodings.cp1252",
    "encodings.hex_codec",
    "encodings.base64_codec",
    "encodings.punycode",
    # importlib.resources.files() (certifi, hence httpx) imports these lazily.
    "importlib.readers",
    "importlib.resources._adapters",
)

# Never imported on a module's behalf: side effects at import (a browser, a
# GUI, printing), or tools that make no sense in a virtual user.
_NEVER = (
    "antigravity", "this", "tkinter", "turtle", "turtledemo", "idlelib", "pydoc",
    "pydoc_data", "ensurepip", "venv", "pip", "setuptools", "distutils", "lib2to3",
    "test", "unittest", "doctest", "pdb", "IPython", "_pytest", "pytest",
    "multiprocessing", "concurrent.futures.process", "curses", "readline",
    "sitecustomize", "usercustomize", "__main__",
)


def _never(name: str) -> bool:
    return any(name == n or name.startswith(n + ".") for n in _NEVER)


# An indented `import a.b, c` or `from .x import y, z` line: an import in a
# function (or under `try`/`if`, which is harmless to attempt again). A
# regular expression over the bytes, not an AST: parsing every module would
# leave megabytes of freed memory in the component's snapshot.
_INDENTED_IMPORT = re.compile(
    rb"^[ \t]+(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+\(?([\w, \t]+)|import[ \t]+([\w., \t]+))",
    re.MULTILINE,
)


def _lazy_imports(module) -> set:
    """Absolute names imported on indented lines of `module`'s source."""
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    if not origin or not origin.endswith(".py"):
        return set()
    try:
        with open(origin, "rb") as source:
            text = source.read()
    except OSError:
        return set()
    package = module.__name__ if hasattr(module, "__path__") else module.__name__.rpartition(".")[0]
    names = set()
    for match in _INDENTED_IMPORT.finditer(text):
        base, members, plain = match.groups()
        if plain is not None:
            for part in plain.decode("ascii", "replace").split(","):
                name = part.split(" as ")[0].strip()
                if name:
                    names.add(name)
            continue
        base = base.decode("ascii", "replace")
        if base.startswith("."):
            try:
                base = importlib.util.resolve_name(base, package)
            except (ImportError, ValueError):
                continue
        if not base:
            continue
        names.add(base)
        # `from package import submodule`
        for part in members.decode("ascii", "replace").split(","):
            member = part.split(" as ")[0].strip()
            if member and member != "*":
                names.add(f"{base}.{member}")
    return names


# The standard library's own lazy imports are not followed (the size of the
# component would grow by megabytes for code paths scenarios rarely take);
# those of third-party libraries and the scenario are.
_STANDARD = frozenset(getattr(sys, "stdlib_module_names", ())) | {"horde", "wit_world"}


def _is_standard(name: str) -> bool:
    top = name.partition(".")[0]
    return top in _STANDARD or top.startswith("componentize_py")


_failed = set()


def _try_import(name: str) -> None:
    if name in sys.modules or name in _failed or _never(name):
        return
    try:
        importlib.import_module(name)
    except BaseException:  # noqa: BLE001 - whatever fails here would fail at run time too
        _failed.add(name)
        sys.modules.pop(name, None)


def complete() -> None:
    """Import every module the loaded code imports lazily, to a fixed point."""
    for name in _IMPORTED_BY_C:
        _try_import(name)
    scanned = set()
    while True:
        pending = [(n, m) for n, m in list(sys.modules.items()) if n not in scanned]
        if not pending:
            return
        for key, module in pending:
            scanned.add(key)
            if module is None or _is_standard(key):
                continue
            for name in sorted(_lazy_imports(module)):
                _try_import(name)


# Packages made of compiled extension modules (C, C++, Cython, Rust), named
# even when they are not installed here: they would not import anyway.
_KNOWN_COMPILED = {
    "lxml": "xml.etree.ElementTree from the standard library",
    "numpy": None,
    "pandas": None,
    "scipy": None,
    "psycopg2": "pg8000",
    "psycopg": "pg8000",
    "asyncpg": "pg8000",
    "MySQLdb": "PyMySQL",
    "cryptography": None,
    "pydantic_core": None,
    "orjson": "json from the standard library",
    "ujson": "json from the standard library",
    "gevent": None,
    "greenlet": None,
    "uvloop": None,
    "zmq": None,
    "hiredis": "redis without hiredis",
    "PIL": None,
}

_CANNOT_IMPORT = re.compile(r"cannot import name '(\w+)' from '([\w.]+)'")


def _names_of(error: ImportError) -> list:
    """The modules a failed import was after: `error.name`, and for
    `from package import name`, `package.name`."""
    names = []
    match = _CANNOT_IMPORT.search(str(error))
    if match:
        names.append(f"{match.group(2)}.{match.group(1)}")
    if getattr(error, "name", None):
        names.append(error.name)
    return names


def _ships_compiled(top: str) -> bool:
    """Whether the package `top` on the path holds compiled extension
    modules (`.so`, `.pyd`), a few folders down."""
    for entry in sys.path:
        folder = os.path.join(entry, top)
        if not os.path.isdir(folder):
            continue
        pending, seen = [(folder, 3)], 0
        while pending and seen < 2000:
            here, depth = pending.pop()
            try:
                listing = os.scandir(here)
            except OSError:
                continue
            with listing:
                for item in listing:
                    seen += 1
                    if item.name.endswith((".so", ".pyd")):
                        return True
                    if depth > 1 and item.is_dir(follow_symlinks=False):
                        pending.append((item.path, depth - 1))
    return False


def _c_extension_hint(error: ImportError):
    """A clear message when the import failed on a compiled extension module
    (a `.so` on the path, a package that ships them, or one known to be
    made of them), which cannot run in the sandbox."""
    path = getattr(error, "path", None) or ""
    if path.endswith((".so", ".pyd")):
        for entry in sys.path:
            if entry and path.startswith(entry.rstrip("/") + "/"):
                relative = path[len(entry.rstrip("/")) + 1:]
                return _c_extension_message(relative.partition(".")[0].replace("/", "."))
        return _c_extension_message(error.name or os.path.basename(path).partition(".")[0])
    names = _names_of(error)
    for name in names:
        *package, leaf = name.split(".")
        for entry in sys.path:
            try:
                files = os.listdir(os.path.join(entry, *package))
            except OSError:
                continue
            if any(f.startswith(leaf + ".") and f.endswith((".so", ".pyd")) for f in files):
                return _c_extension_message(name)
    for name in names:
        for known in _KNOWN_COMPILED:
            if name == known or name.startswith(known + "."):
                return _c_extension_message(name, known)
    for name in names:
        top = name.partition(".")[0]
        if _ships_compiled(top):
            return _c_extension_message(name, top)
    return None


def _c_extension_message(name: str, package: str = "") -> str:
    top = package or name.partition(".")[0]
    instead = _KNOWN_COMPILED.get(top) or _KNOWN_COMPILED.get(name.partition(".")[0])
    if not package:
        what = f"{name} is a compiled extension module (C, Cython, Rust)"
    elif package in _KNOWN_COMPILED:
        what = f"importing {name} failed: {package} is made of compiled extension modules (C, Cython, Rust)"
    else:
        what = (
            f"importing {name} failed, and {package} ships compiled extension modules (C, "
            "Cython, Rust; its .so files), the likely cause"
        )
    advice = f" (for {top}, try {instead})" if instead else ""
    return (
        f"{what}, which cannot run in Horde's sandbox: only pure-Python code is bundled. "
        f"Use a pure-Python library instead of {top}{advice}; for gRPC, `import grpc` is "
        f"Horde's own; for PostgreSQL, pg8000; for MySQL, PyMySQL"
    )


class _FirstImport:
    """Runs `complete()` after the first top-level module imported once
    start-up is over (the scenario module)."""

    armed = True

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if not cls.armed or path is not None or name in sys.modules or name == "usercustomize":
            return None
        cls.armed = False
        sys.meta_path.remove(cls)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            try:
                execute(module)
            except ImportError as error:
                hint = _c_extension_hint(error)
                if hint is None:
                    raise
                raise ImportError(hint, name=error.name) from error
            complete()
            build_guard.write_inputs()

        spec.loader.exec_module = exec_module
        return spec


def watch_first_import() -> None:
    if _FirstImport.armed and _FirstImport not in sys.meta_path:
        sys.meta_path.insert(0, _FirstImport)
