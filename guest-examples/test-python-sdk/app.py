"""Test guest for the Python SDK's semantics: exceptions in tasks, checks, custom metrics, run variables, HTTP failures as responses,
expected statuses, XML-RPC faults, gRPC calls and statuses, and per-VU
random streams."""

import random

from horde import grpc
from horde import (
    Fault,
    HttpUser,
    ServerProxy,
    add_counter,
    add_trend,
    base_url,
    check,
    constant,
    record,
    task,
    var,
    vu_id,
)


class SdkUser(HttpUser):
    options = {"users": 3, "spawn-rate": 1000, "iterations": 60}
    wait_time = constant(0.02)

    def on_start(self):
        # The build snapshot must not fix the random stream: each VU reports its first draw.
        record("random", f"vu{vu_id()} {random.random()}", 0)
    thresholds = ["checks: rate>0.5"]

    @task
    def raises(self):
        {}["missing"]

    @task
    def metrics(self):
        add_counter("orders", 2)
        response = self.client.get("/item/7", name="item")
        add_trend("body_size", len(response.content))
        check("status is 200", response.status_code == 200)
        check("json id is 7", response.json()["id"] == 7)
        check("content type header", response.headers["Content-Type"] == "application/json")
        check("base url is the host", base_url() == var("expected_base"))

    @task
    def statuses(self):
        missing = self.client.get("/item/none", name="expected 404", expect_status=[404])
        check("404 seen", missing.status_code == 404 and missing.ok is False)
        denied = self.client.get("http://127.0.0.1:9/", name="denied")
        check("denied is status 0 with an error",
              denied.status_code == 0 and denied.error.startswith("denied"))

    @task
    def grpc_calls(self):
        target = var("grpc")
        if target is None:
            return
        reply = grpc.call_json("/hello.HelloService/SayHello", {"name": "py"}, target=target)
        check("grpc json reply", reply.get("message") == "Hello, py!")
        raw = grpc.call("/hello.HelloService/SayHello", b"\x0a\x02py", target=target)
        check("grpc bytes reply", raw.endswith(b"Hello, py!"))
        try:
            grpc.call_json("/hello.HelloService/Fail", {"name": "py"}, target=target)
            check("grpc status raised", False)
        except grpc.GrpcError as error:
            check("grpc status raised", (error.code, error.message) == ("NOT_FOUND", "no such greeting"))

    @task
    def fault(self):
        endpoint = var("xmlrpc")
        if endpoint is None:
            return
        try:
            ServerProxy(endpoint).fail()
            check("fault raised", False)
        except Fault as fault:
            check("fault raised", (fault.faultCode, fault.faultString) == (42, "no such luck"))
        try:
            ServerProxy(endpoint).fail_client()
            check("string fault code raised", False)
        except Fault as fault:
            # As xmlrpc.client: Fault('Client', ...), not a ProtocolError.
            check("string fault code raised",
                  (fault.faultCode, fault.faultString) == ("Client", "Denied access to method (login)"))

