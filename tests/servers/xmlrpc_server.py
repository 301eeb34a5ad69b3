"""XML-RPC test server: Python's standard SimpleXMLRPCServer.

Serves get_time and get_random_number (Locust's XML-RPC example), plus
nested, echo, fail and fail_client (a string faultCode) for the tests. Binds 127.0.0.1 on the port given
(0 = any free port) and prints "listening on PORT" once ready.
"""

import random
import sys
import time
from datetime import datetime
from xmlrpc.client import Binary, Fault
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer


class QuietHandler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/", "/RPC2")

    def log_message(self, format, *args):
        pass


def get_time():
    time.sleep(random.random() * 0.01)
    return time.time()


def get_random_number(low, high):
    time.sleep(random.random() * 0.01)
    return random.randint(low, high)


def nested():
    return {
        "name": "horde & <co>",
        "count": 3,
        "ratio": 0.25,
        "ok": True,
        "when": datetime(2026, 1, 2, 3, 4, 5),
        "blob": Binary(bytes([0, 1, 2, 254, 255])),
        "nothing": None,
        "items": [1, ["deep"], {"k": "v"}],
    }


def echo(value):
    return value


def fail():
    raise Fault(42, "no such luck")


def fail_client():
    # A string faultCode, as SOAP::Lite servers send; xmlrpc.client keeps it.
    raise Fault("Client", "Denied access to method (login)")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8877
    server = SimpleXMLRPCServer(
        ("127.0.0.1", port), requestHandler=QuietHandler, allow_none=True, use_builtin_types=True, logRequests=False
    )
    for function in (get_time, get_random_number, nested, echo, fail, fail_client):
        server.register_function(function)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
