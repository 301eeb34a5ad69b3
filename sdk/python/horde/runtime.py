"""Run control and metrics: thin, Pythonic wrappers over Horde's `control`
and `metrics` imports."""

from typing import Optional

from componentize_py_types import Err
from wit_world.imports import control, metrics


def sleep(seconds: float) -> None:
    """Pause this VU (other VUs go on); ends early when the run stops."""
    control.sleep(max(0, int(seconds * 1000)))


def vu_id() -> int:
    """This VU's id, 1-based and unique within the run."""
    return control.vu_id()


def user_class() -> Optional[str]:
    """The name of this VU's user class (when the module defines several
    `User` classes), e.g. "Shopper"; None with one."""
    return control.user_class()


def iteration() -> int:
    """Tasks this VU has started, the current one included."""
    return control.iteration()


def var(key: str, default: Optional[str] = None) -> Optional[str]:
    """A run variable given as `horde run --var key=value`."""
    value = control.get_var(key)
    return default if value is None else value


def base_url() -> Optional[str]:
    """The run's `--host` (else the user class's `host`), e.g. for libraries
    that need absolute URLs."""
    return control.base_url()


_LEVELS = {
    "debug": control.LogLevel.DEBUG,
    "info": control.LogLevel.INFO,
    "warn": control.LogLevel.WARN,
    "warning": control.LogLevel.WARN,
    "error": control.LogLevel.ERROR,
}


def log(message: str, level: str = "info") -> None:
    """Write a line to Horde's log (rate-limited)."""
    control.log(_LEVELS.get(level, control.LogLevel.INFO), str(message))


def stop_test(reason: str = "stopped by the scenario") -> None:
    """End the whole run after the current task; outputs are still written."""
    control.stop_test(reason)


def check(name: str, ok: bool) -> bool:
    """Record a named check (pass rate in the summary); returns `ok`."""
    ok = bool(ok)
    metrics.check(name, ok)
    return ok


def record(
    request_type: str,
    name: str,
    duration_ms: float,
    response_length: int = 0,
    error: Optional[str] = None,
) -> None:
    """Record a request event for a protocol the scenario speaks itself
    (Locust's `events.request.fire`)."""
    try:
        metrics.record(
            metrics.Event(
                request_type=request_type,
                name=name,
                duration_ms=float(duration_ms),
                response_length=int(response_length),
                error=error,
            )
        )
    except Err as e:
        raise ValueError(f"the event was rejected: {e.value.value}") from None


def add_counter(name: str, value: float = 1.0) -> None:
    metrics.add_counter(name, float(value))


def set_gauge(name: str, value: float) -> None:
    metrics.set_gauge(name, float(value))


def add_trend(name: str, value: float) -> None:
    metrics.add_trend(name, float(value))
