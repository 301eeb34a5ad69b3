"""Groups (k6's `group`, a transaction): time a block as one entry of type
`group`, and file the requests made inside it under the group's name
(`checkout::/login`).

    with group("checkout"):
        self.client.post("/cart", json={"item": 1})
        self.client.post("/pay")
"""

from wit_world.imports import group as _wit


class group:
    """A context manager (or decorator) that runs its block inside group
    `name`, nested in the current group if any. The group's duration is
    recorded when the block ends; an exception marks it failed (and goes on
    up, as usual)."""

    def __init__(self, name: str):
        self.name = str(name)

    def __enter__(self) -> "group":
        _wit.enter(self.name)
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        message = None
        if error is not None:
            message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        _wit.leave(message)
        return False

    def __call__(self, function):
        """Use as `@group("checkout")` on a task or helper."""

        def grouped(*args, **kwargs):
            with group(self.name):
                return function(*args, **kwargs)

        grouped.__name__ = getattr(function, "__name__", "grouped")
        grouped.__doc__ = getattr(function, "__doc__", None)
        return grouped
