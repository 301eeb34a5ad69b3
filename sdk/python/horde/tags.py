"""Tags (k6's tags): key-value pairs this VU's events carry, so thresholds
(`http_req_duration{flow:checkout}`) and `horde run --breakdown flow` can
select and break results down by them. Every request the VU makes carries
them, whatever library sends it (requests, urllib, xmlrpc.client, grpc).

    set_tags(flow="browse")              # from now on
    with tags(flow="checkout"):          # for a block
        self.client.post("/pay")
"""

from typing import Dict

from wit_world.imports import tags as _wit

_current: Dict[str, str] = {}


def _replace(new: Dict[str, str]) -> None:
    global _current
    _wit.set([(str(k), str(v)) for k, v in new.items()])
    _current = dict(new)


def set_tags(**tags: str) -> None:
    """This VU's tags from now on (no arguments clears them). At most 16
    pairs; keys and values are cut to 128 bytes by the host."""
    _replace(tags)


def current_tags() -> Dict[str, str]:
    """This VU's current tags."""
    return dict(_current)


class tags:
    """A context manager (or decorator) that adds `tags` to this VU's tags
    for its block (a key already set takes the new value), then restores them."""

    def __init__(self, **tags: str):
        self.tags = {str(k): str(v) for k, v in tags.items()}
        self._before: Dict[str, str] = {}

    def __enter__(self) -> "tags":
        self._before = dict(_current)
        _replace({**self._before, **self.tags})
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        _replace(self._before)
        return False

    def __call__(self, function):
        """Use as `@tags(flow="checkout")` on a task or helper."""

        def tagged(*args, **kwargs):
            with tags(**self.tags):
                return function(*args, **kwargs)

        tagged.__name__ = getattr(function, "__name__", "tagged")
        tagged.__doc__ = getattr(function, "__doc__", None)
        return tagged
