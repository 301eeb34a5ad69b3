"""Horde's Python SDK, set up before the scenario module is imported.

CPython imports `sitecustomize` from its path when it starts; componentize-py
puts this SDK's folder (`-p .../sdk/python`) on that path, so this runs
while the component is built, before any library the scenario imports.
It installs `horde.patches`: Python's own networking (`socket`,
`http.client`, `urllib`, `xmlrpc.client`, urllib3, `requests`) then works
in the sandbox and goes through the host. A scenario folder with its own
`sitecustomize.py` earlier on the path would hide this one.

First of all it installs `horde.build_guard`: while the component is
built, the module reads only its folder, the SDK, the standard library and
site-packages, and the files it reads are listed.
"""

import horde.build_guard

horde.build_guard.install()

import horde.patches  # noqa: E402,F401
