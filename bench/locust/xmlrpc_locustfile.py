"""Locust's XML-RPC user, for comparing against guest-examples/rust-xmlrpc.

The pattern of Locust's "testing other systems" guide: a ServerProxy
wrapper that times each call and fires a request event.

    locust -f bench/locust/xmlrpc_locustfile.py --headless -u 8 -r 100 -t 20s --host http://127.0.0.1:8877
"""

import time
from xmlrpc.client import Fault, ServerProxy

from locust import User, constant, task


class TimedServerProxy(ServerProxy):
    def __init__(self, host, request_event):
        super().__init__(host)
        self._request_event = request_event

    def __getattr__(self, name):
        method = ServerProxy.__getattr__(self, name)

        def timed(*args):
            started = time.perf_counter()
            exception, response = None, None
            try:
                response = method(*args)
            except Fault as fault:
                exception = fault
            self._request_event.fire(
                request_type="xmlrpc",
                name=name,
                response_time=(time.perf_counter() - started) * 1000,
                response_length=0,
                response=response,
                context={},
                exception=exception,
            )
            return response

        return timed


class XmlRpcUser(User):
    wait_time = constant(0)

    def __init__(self, environment):
        super().__init__(environment)
        self.client = TimedServerProxy(self.host, environment.events.request)

    @task
    def get_time(self):
        self.client.get_time()

    @task
    def get_random_number(self):
        self.client.get_random_number(0, 100)
