"""Locust's gRPC user, for comparing against guest-examples/rust-grpc.

grpcio made cooperative with gevent, a channel per user, each SayHello
timed and fired as a request event (messages hand-encoded: no codegen).

    locust -f bench/locust/grpc_locustfile.py --headless -u 8 -r 100 -t 20s --host 127.0.0.1:50051
"""

import time

import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import User, constant, task

grpc_gevent.init_gevent()


def encode_name(name):
    raw = name.encode("utf-8")
    return b"\x0a" + bytes([len(raw)]) + raw


class GrpcUser(User):
    wait_time = constant(0)

    def on_start(self):
        self.channel = grpc.insecure_channel(self.host)
        self.say_hello = self.channel.unary_unary(
            "/hello.HelloService/SayHello", request_serializer=None, response_deserializer=None
        )

    def on_stop(self):
        self.channel.close()

    @task
    def hello(self):
        started = time.perf_counter()
        exception, response = None, None
        try:
            response = self.say_hello(encode_name("locust"))
        except grpc.RpcError as error:
            exception = error
        self.environment.events.request.fire(
            request_type="grpc",
            name="/hello.HelloService/SayHello",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=len(response or b""),
            response=response,
            context={},
            exception=exception,
        )
