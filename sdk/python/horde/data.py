"""Test data feeds: rows of the files the operator grants with
`horde run --data NAME=FILE`, handed out by the host under the feed's
strategy (sequential, random, shuffle, unique, per-vu).

    from horde import HttpUser, data, task

    class Customer(HttpUser):
        options = {"data": "users;strategy=unique"}

        @task
        def login(self):
            user = data("users").next()      # {"username": ..., "password": ...}
            self.client.post("/login", json=user)
"""

import json
from typing import Any, Dict, List, Union

from componentize_py_types import Err
from wit_world.imports import data as _wit

from horde.user import StopUser


class DataExhausted(Exception):
    """The feed ran out of rows and its `on-end` is `fail`: the task fails
    with this message (counted as an exception)."""


class Feed:
    """A feed, by the name the operator grants it under (`--data NAME=FILE`)."""

    def __init__(self, name: str):
        self.name = str(name)

    def next(self) -> Union[Dict[str, Any], List[str]]:
        """The next row: a dict (CSV with a header, JSON Lines, JSON
        arrays) or a list of strings (CSV without header). When the feed ran
        out and its `on-end` stops the VU or the run, raises `StopUser`
        (the task ends cleanly); with `on-end=fail`, raises `DataExhausted`."""
        try:
            row = _wit.next(self.name)
        except Err as error:
            if isinstance(error.value, _wit.Error_Stopped):
                raise StopUser(error.value.value) from None
            raise DataExhausted(error.value.value) from None
        return json.loads(row.json)

    def __len__(self) -> int:
        """How many rows the feed has (0 when the run grants no such feed)."""
        return _wit.len(self.name)

    def __repr__(self) -> str:
        return f"Feed({self.name!r})"


def data(name: str) -> Feed:
    """The feed named `name` (`horde run --data NAME=FILE`)."""
    return Feed(name)
