"""What this SDK changes in Python's own modules so that any protocol
library runs in the sandbox and is measured: installed by `sitecustomize`
(CPython imports it from the path at start-up, so before the scenario
module and anything it imports).

- `horde.sockets`: no network while the component is built; name lookups
  and connections under the grants, with the `--allow-host` hint.
- `horde.http_client`: `http.client`'s connections go through the host
  (so do `urllib.request` and `xmlrpc.client`, whose calls are recorded as
  `xmlrpc` events named by the method).
- `horde.urllib3_pool`: urllib3's pools go through the host (so does
  `requests`), patched when those modules are first imported.
- `horde.bundle`: modules the scenario's libraries import lazily are
  imported while building, so they are in the component.
"""

import sys

from horde import bundle, http_client, sockets, urllib3_pool, xmlrpc  # noqa: F401  (sockets acts on import)

# Module name -> function called with the module right after it is executed.
_AFTER_IMPORT = {
    "urllib3.connectionpool": urllib3_pool.patch_connectionpool,
    "requests.adapters": urllib3_pool.patch_requests_adapters,
    "xmlrpc.client": xmlrpc.patch_xmlrpc_client,
}


class _AfterImport:
    """A meta path finder that lets the usual finders find a module and
    runs a patch once the module has been executed."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        patch = _AFTER_IMPORT.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is _AfterImport or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        execute = loader.exec_module

        def exec_module(module):
            execute(module)
            patch(module)

        loader.exec_module = exec_module
        return spec


def install() -> None:
    http_client.install()
    if _AfterImport not in sys.meta_path:
        sys.meta_path.insert(0, _AfterImport)
    for name, patch in _AFTER_IMPORT.items():
        if name in sys.modules:
            patch(sys.modules[name])
    bundle.watch_first_import()


install()
