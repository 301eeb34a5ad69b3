"""gRPC calls through Horde's `grpc` import: `call` on serialized protobuf
bytes, `call_json` with dicts (needs `horde run --proto FILE`). Each call is
recorded as type `grpc`, named by the method path; a non-OK status raises
`GrpcError` with its code."""

import json
from typing import Any, Dict, Optional

from componentize_py_types import Err
from wit_world.imports import grpc as wit

from horde.http import describe_error

CODES = [
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
]


class GrpcError(Exception):
    """A failed call: `code` (e.g. "NOT_FOUND", or "TRANSPORT"/"INVALID"/"MALFORMED")."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _options(metadata: Optional[Dict[str, str]], timeout: Optional[float]) -> wit.Options:
    return wit.Options(
        metadata=[wit.MetadataEntry(key=k, value=str(v)) for k, v in (metadata or {}).items()],
        deadline_ms=None if timeout is None else max(1, int(timeout * 1000)),
    )


def _raise(error) -> None:
    if isinstance(error, wit.Error_Status):
        status = error.value
        name = CODES[status.code] if status.code < len(CODES) else str(status.code)
        raise GrpcError(name, status.message) from None
    if isinstance(error, wit.Error_Transport):
        raise GrpcError("TRANSPORT", describe_error(error.value)) from None
    kind = type(error).__name__.removeprefix("Error_").upper()
    raise GrpcError(kind, str(error.value)) from None


def call(method: str, request: bytes, *, target: str = "", metadata=None, timeout=None) -> bytes:
    """Unary call of `/package.Service/Method` with a serialized request."""
    try:
        return wit.call(target, method, bytes(request), _options(metadata, timeout)).message
    except Err as e:
        _raise(e.value)


def call_json(method: str, request: Dict[str, Any], *, target: str = "", metadata=None,
              timeout=None) -> Any:
    """Unary call with a dict, converted by the run's `--proto` schema."""
    try:
        reply = wit.call_json(target, method, json.dumps(request), _options(metadata, timeout))
    except Err as e:
        _raise(e.value)
    return json.loads(reply)
