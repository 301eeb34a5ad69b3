"""Locust-style users (`User`, `@task`, wait times) and their adaptation to
the component's exported `user` interface. Several user classes in one
module run together, as in Locust: each class's `weight` (default 1) or
`fixed_count` gives its share of the users, and the host deals each VU to
one class (`control.user_class()`).

componentize-py instantiates the class named `User` in the scenario module
and calls `configure`, `on_start`, `run_task` and `on_stop` on it. That class
is `horde.User` itself: subclassing it (or `HttpUser`) registers the
scenario's class, and the exported calls are passed on to one instance of
it per VU.
"""

import inspect
import os
import random
import sys
import traceback
from typing import Callable, List, Optional, Tuple

from componentize_py_types import Err
from wit_world.exports import user as wit
from wit_world.imports import control

from horde import build_guard, recording, sockets
from horde.recording import Environment


class StopUser(Exception):
    """Raised by `User.stop()`: ends the task and stops this VU."""


class _Wait:
    """A wait time; also callable like Locust's, returning seconds."""

    def __init__(self, describe: str, wit_value, sample: Callable[[], float]):
        self._describe = describe
        self.wit_value = wit_value
        self._sample = sample

    def __call__(self, *_args) -> float:
        return self._sample()

    def __repr__(self) -> str:
        return self._describe


def _ms(seconds: float, what: str) -> int:
    if not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"{what} must be a number of seconds >= 0, got {seconds!r}")
    return int(round(seconds * 1000))


def between(min_wait: float, max_wait: float) -> _Wait:
    """Wait a random time between `min_wait` and `max_wait` seconds."""
    low, high = _ms(min_wait, "between's minimum"), _ms(max_wait, "between's maximum")
    if low > high:
        raise ValueError(f"between({min_wait}, {max_wait}): the minimum is above the maximum")
    return _Wait(
        f"between({min_wait}, {max_wait})",
        wit.WaitTime_Between(wit.Range(min_ms=low, max_ms=high)),
        lambda: random.uniform(min_wait, max_wait),
    )


def constant(wait: float) -> _Wait:
    """Always wait `wait` seconds."""
    return _Wait(f"constant({wait})", wit.WaitTime_Constant(_ms(wait, "constant")), lambda: wait)


def constant_pacing(interval: float) -> _Wait:
    """Start a task every `interval` seconds (the wait shrinks by the task's time)."""
    return _Wait(
        f"constant_pacing({interval})",
        wit.WaitTime_ConstantPacing(_ms(interval, "constant_pacing")),
        lambda: interval,
    )


def constant_throughput(task_runs_per_second: float) -> _Wait:
    """At most this many tasks per second for this VU."""
    if not task_runs_per_second > 0:
        raise ValueError("constant_throughput needs a rate above 0")
    return _Wait(
        f"constant_throughput({task_runs_per_second})",
        wit.WaitTime_ConstantThroughput(float(task_runs_per_second)),
        lambda: 1.0 / task_runs_per_second,
    )


def task(weight=1):
    """Mark a method as a task: `@task` or `@task(3)` (3 times as likely)."""

    def mark(function, weight=weight):
        if not isinstance(weight, int) or weight < 0:
            raise ValueError(f"@task weight must be an integer >= 0, got {weight!r}")
        function.horde_task_weight = weight
        return function

    if callable(weight):
        return mark(weight, 1)
    return mark


_scenario_classes: List[type] = []


def _register(cls: type) -> None:
    if cls.__dict__.get("abstract", False):
        return
    _scenario_classes.append(cls)
    module = sys.modules.get(cls.__module__)
    # componentize-py looks up `User` in the scenario module.
    if module is not None and not hasattr(module, "User"):
        module.User = User


class User:
    """A virtual user. Subclass it; give it tasks with `@task`, a `wait_time`
    and optionally `host`, `on_start` and `on_stop`.

    Horde additions: `options` (default `horde run` flags, e.g.
    `{"users": 10, "run-time": "1m"}`) and `thresholds` (k6 syntax, e.g.
    `["http_req_duration: p(95)<200"]`)."""

    abstract = True
    host: Optional[str] = None
    wait_time = None
    tasks = None
    #: With several user classes: this class's share of the users (Locust's).
    weight: int = 1
    #: With several user classes: exactly this many users of this class,
    #: started first (Locust's; the closed model only). 0: use `weight`.
    fixed_count: int = 0
    options: dict = {}
    thresholds: list = []
    #: Locust's `self.environment`, for `self.environment.events.request.fire(...)`.
    environment = Environment()

    def __new__(cls, *args, **kwargs):
        # componentize-py makes the exported `User` of the scenario module
        # while it builds. When the scenario names its own class `User`
        # (`class User(HttpUser)`), that is the scenario's class: the
        # exported instance is still the SDK's `User`, which passes the
        # calls on to the scenario's users, made at run time.
        if cls is not User and build_guard.building() and cls.__name__ == "User":
            return object.__new__(User)
        return object.__new__(cls)

    def __init__(self, environment: Optional[Environment] = None):
        if environment is not None:
            self.environment = environment
        # componentize-py makes the exported `User` while it builds, when the
        # host does not exist yet; the scenario's users are made at run time.
        if type(self) is not User:
            # As in Locust, `self.host` is the effective host: `--host` when
            # given, else the class's own (set before a subclass's __init__ goes on).
            self.host = effective_host(type(self))

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _register(cls)

    def on_start(self) -> None:
        """Called when the VU starts; override it (e.g. to log in)."""
        if type(self) is User:
            _runtime().call_hook("on_start")

    def on_stop(self) -> None:
        """Called when the VU stops; override it."""
        if type(self) is User:
            _runtime().call_hook("on_stop")

    def stop(self) -> None:
        """Stop this VU now (Locust's `self.stop()`); `on_stop` still runs."""
        control.stop_user()
        raise StopUser()

    # The exported `user` interface (called on the instance componentize-py makes).

    def configure(self) -> wit.Config:
        return _runtime().config

    def run_task(self, index: int) -> None:
        _runtime().run_task(index)


def effective_host(cls: type) -> Optional[str]:
    """`--host` when the run has one (without a trailing slash), else `cls.host`."""
    return (control.base_url() or "").rstrip("/") or cls.host


def _task_table(cls: type) -> List[Tuple[str, int, Callable]]:
    tasks = cls.tasks
    table: List[Tuple[str, int, Callable]] = []
    if tasks is not None:
        if isinstance(tasks, dict):
            items = list(tasks.items())
        elif isinstance(tasks, (list, tuple)):
            items = [(t, 1) for t in tasks]
        else:
            raise TypeError(f"{cls.__name__}.tasks must be a list or a dict of functions, got {type(tasks).__name__}")
        merged = {}
        for function, weight in items:
            if not callable(function):
                raise TypeError(f"{cls.__name__}.tasks holds {function!r}, which is not a function")
            if isinstance(function, type):
                raise TypeError(
                    f"{cls.__name__}.tasks holds the class {function.__name__}; TaskSets are not "
                    "supported, use methods marked with @task"
                )
            name = getattr(function, "__name__", repr(function))
            if name in merged:
                merged[name] = (merged[name][0] + weight, function)
            else:
                merged[name] = (weight, function)
        table = [(name, weight, fn) for name, (weight, fn) in merged.items()]
    else:
        seen = set()
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                weight = getattr(value, "horde_task_weight", None)
                if weight is None:
                    continue
                if name in seen:
                    table = [t for t in table if t[0] != name]
                seen.add(name)
                table.append((name, weight, value))
    table = [t for t in table if t[1] > 0]
    if not table:
        raise ValueError(
            f"{cls.__name__} has no tasks: mark a method with @task, or set `tasks = [...]`"
        )
    return table


def _wait_of(cls: type):
    wait = cls.wait_time
    if callable(wait) and not isinstance(wait, _Wait):
        # A function of no arguments, evaluated as the run starts (it may read
        # run variables, which do not exist yet when the module is imported).
        try:
            wait = wait()
        except TypeError:
            raise TypeError(
                f"{cls.__name__}.wait_time is a function: it must take no arguments and return "
                "between(...), constant(...), constant_pacing(...), constant_throughput(...) or "
                "None (use @staticmethod)"
            ) from None
    if wait is None:
        return wit.WaitTime_None_()
    if isinstance(wait, _Wait):
        return wait.wit_value
    raise TypeError(
        f"{cls.__name__}.wait_time must come from between(), constant(), constant_pacing() "
        f"or constant_throughput() (or be None for no wait), got {wait!r}"
    )


def _defaults_of(cls: type) -> List[Tuple[str, str]]:
    defaults = []
    for key, value in dict(cls.options).items():
        # A list gives the option several times (e.g. "data": ["users", "items"]).
        for one in value if isinstance(value, (list, tuple)) else [value]:
            defaults.append((str(key).lstrip("-"), str(one)))
    for threshold in cls.thresholds:
        defaults.append(("threshold", str(threshold)))
    return defaults


def _describe(error: BaseException) -> str:
    """`Type: message (file:line in function)`, for the exceptions table."""
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        last = frames[-1]
        text += f" ({os.path.basename(last.filename)}:{last.lineno} in {last.name})"
    return text


def _wait_text(wait) -> str:
    """A wait time as a class declaration's `wait=` value."""
    if isinstance(wait, wit.WaitTime_Constant):
        return f"constant:{wait.value}"
    if isinstance(wait, wit.WaitTime_Between):
        return f"between:{wait.value.min_ms}:{wait.value.max_ms}"
    if isinstance(wait, wit.WaitTime_ConstantPacing):
        return f"pacing:{wait.value}"
    if isinstance(wait, wit.WaitTime_ConstantThroughput):
        return f"throughput:{wait.value!r}"
    return "none"


def _share_of(cls: type) -> str:
    """`;weight=W` or `;fixed-count=N`, checked as Locust checks them."""
    for attribute in ("weight", "fixed_count"):
        value = getattr(cls, attribute)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{cls.__name__}.{attribute} must be an integer >= 0, got {value!r}")
    if cls.fixed_count > 0:
        return f";fixed-count={cls.fixed_count}"
    return f";weight={cls.weight}"


class _Runtime:
    """The scenario's user classes, their tasks in one table (each class's
    tasks one after the other) and this VU's one user."""

    def __init__(self):
        classes = list(_scenario_classes)
        if not classes:
            raise RuntimeError(
                "the scenario module defines no user class: subclass horde.User or horde.HttpUser"
            )
        # (name, weight, function, class) for every class's tasks.
        self.table = []
        defaults: List[Tuple[str, str]] = []
        declarations = []
        for cls in classes:
            first = len(self.table)
            self.table += [(name, weight, fn, cls) for name, weight, fn in _task_table(cls)]
            for pair in _defaults_of(cls):
                if pair not in defaults:
                    defaults.append(pair)
            if len(classes) > 1:
                indices = ",".join(str(i) for i in range(first, len(self.table)))
                declarations.append(
                    ("class", f"{cls.__name__};tasks={indices}{_share_of(cls)};wait={_wait_text(_wait_of(cls))}")
                )
        self.config = wit.Config(
            tasks=[wit.Task(name=name, weight=weight) for name, weight, _, _ in self.table],
            wait=_wait_of(classes[0]),
            default_host=next((c.host for c in classes if c.host), None),
            defaults=defaults + declarations,
        )
        self.classes = classes
        self._user = None

    @property
    def cls(self) -> type:
        """This VU's class: the one the host dealt it to."""
        if len(self.classes) == 1:
            return self.classes[0]
        mine = control.user_class()
        return next((c for c in self.classes if c.__name__ == mine), self.classes[0])

    @property
    def user(self):
        if self._user is None:
            # Locust passes the environment to the constructor; a class
            # whose __init__ takes no argument gets none.
            parameters = inspect.signature(self.cls).parameters.values()
            positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            if any(p.kind in positional for p in parameters):
                self._user = self.cls(User.environment)
            else:
                self._user = self.cls()
        return self._user

    def _guard(self, call: Callable[[], None]) -> None:
        try:
            call()
        except StopUser:
            pass
        except Err:
            raise
        except Exception as error:
            raise Err(_describe(error)) from None
        finally:
            recording.flush()

    def call_hook(self, name: str) -> None:
        self._guard(lambda: getattr(self.user, name)())

    def run_task(self, index: int) -> None:
        if not 0 <= index < len(self.table):
            raise Err(f"no task at index {index}")
        function, cls = self.table[index][2], self.table[index][3]
        if not isinstance(self.user, cls):
            raise Err(f"task {self.table[index][0]} belongs to {cls.__name__}, not to this VU's class")
        self._guard(lambda: function(self.user))


_the_runtime: Optional[_Runtime] = None


def _runtime() -> _Runtime:
    global _the_runtime
    if _the_runtime is None:
        # The first call at run time: the network exists from now on.
        sockets.run_started()
        build_guard.run_started()
        # The module was imported while the component was built, so the
        # random generator holds the build's seed: reseed it per instance.
        random.seed(os.urandom(16))
        _the_runtime = _Runtime()
    return _the_runtime
