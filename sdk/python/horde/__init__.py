"""Horde's Python SDK: write a virtual user the way you would for Locust.

    from horde import HttpUser, task, between

    class Shopper(HttpUser):
        wait_time = between(1, 3)

        @task(3)
        def view_item(self):
            self.client.get("/item/1", name="/item/[id]")

Build it into a component with componentize-py against Horde's wit/ folder
(see sdk/python/README.md); `horde run` then runs one instance per VU.
"""

from horde.user import (
    StopUser,
    User,
    between,
    constant,
    constant_pacing,
    constant_throughput,
    task,
)
from horde.data import DataExhausted, Feed, data
from horde.group import group
from horde.tags import current_tags, set_tags, tags
from horde.http import HttpSession, HttpUser, Response
from horde.xmlrpc import Fault, ServerProxy, XmlRpcUser
from horde.recording import events, timed
from horde.runtime import (
    add_counter,
    base_url,
    check,
    iteration,
    log,
    record,
    set_gauge,
    add_trend,
    sleep,
    stop_test,
    user_class,
    var,
    vu_id,
)

__all__ = [
    "DataExhausted",
    "Fault",
    "Feed",
    "HttpSession",
    "HttpUser",
    "Response",
    "ServerProxy",
    "StopUser",
    "User",
    "XmlRpcUser",
    "add_counter",
    "add_trend",
    "base_url",
    "between",
    "check",
    "constant",
    "constant_pacing",
    "constant_throughput",
    "current_tags",
    "data",
    "events",
    "group",
    "iteration",
    "log",
    "record",
    "set_gauge",
    "set_tags",
    "sleep",
    "stop_test",
    "tags",
    "task",
    "timed",
    "user_class",
    "var",
    "vu_id",
]

# Python's own networking through the host (see horde.patches). This SDK's
# sitecustomize installs it before the scenario module is imported; if that
# did not run (a scenario folder with a sitecustomize of its own), it is
# installed here, when the scenario imports horde.
from horde import patches  # noqa: E402,F401
