"""gRPC test server on grpcio, with hand-encoded protobuf (no codegen).

Serves hello.HelloService (see guest-examples/rust-grpc/hello.proto):
SayHello like Locust's gRPC example, plus Fail (NOT_FOUND), Whoami (echoes
the x-user metadata, gzip-compressed when x-compress: gzip), Slow (sleeps 2 s), Garbage (a reply that is not a
HelloResponse), and GreetEach, GreetAll and Chat (server, client and
bidirectional streams) for the tests (tests/servers/hello_test.proto). Binds 127.0.0.1 on the port given (0 = any
free port) and prints "listening on PORT" once ready.
"""

import sys
import time
from concurrent import futures

import grpc


def read_varint(data, offset):
    value, shift = 0, 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


def write_varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_string_field_1(data):
    """The `string name = 1` of a HelloRequest ('' when absent)."""
    offset = 0
    while offset < len(data):
        key, offset = read_varint(data, offset)
        if key & 7 != 2:
            raise ValueError("unexpected wire type")
        length, offset = read_varint(data, offset)
        if key >> 3 == 1:
            return data[offset : offset + length].decode("utf-8")
        offset += length
    return ""


def encode_string_field_1(text):
    raw = text.encode("utf-8")
    return b"\x0a" + write_varint(len(raw)) + raw


def say_hello(request, context):
    return encode_string_field_1(f"Hello, {decode_string_field_1(request)}!")


def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such greeting")


def whoami(request, context):
    metadata = dict(context.invocation_metadata())
    if metadata.get("x-compress") == "gzip":
        # A compressed reply, as grpcio servers may send (grpcio clients decode it).
        context.set_compression(grpc.Compression.Gzip)
    return metadata.get("x-user", "").encode("utf-8")


def sized(request, context):
    """A reply of x-size bytes (to test the client's receive limit)."""
    return b"x" * int(dict(context.invocation_metadata()).get("x-size", "0"))


def slow(request, context):
    time.sleep(2)
    return b""


def garbage(request, context):
    return b"\xff\xff\xff\xff"


def greet_each(request, context):
    """Server stream: one greeting per character of the name."""
    name = decode_string_field_1(request)
    for index in range(len(name)):
        yield encode_string_field_1(f"Hello, {name[: index + 1]}!")


def greet_all(requests, context):
    """Client stream: one greeting for every name sent."""
    names = [decode_string_field_1(request) for request in requests]
    return encode_string_field_1(f"Hello, {' and '.join(names)}!")


def chat(requests, context):
    """Bidirectional stream: a greeting for each name, as it comes."""
    for request in requests:
        yield encode_string_field_1(f"Hello, {decode_string_field_1(request)}!")


def identity(data):
    return data


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 50051
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(function, request_deserializer=identity, response_serializer=identity)
        for name, function in {
            "SayHello": say_hello,
            "Fail": fail,
            "Whoami": whoami,
            "Sized": sized,
            "Slow": slow,
            "Garbage": garbage,
        }.items()
    }
    plain = {"request_deserializer": identity, "response_serializer": identity}
    handlers["GreetEach"] = grpc.unary_stream_rpc_method_handler(greet_each, **plain)
    handlers["GreetAll"] = grpc.stream_unary_rpc_method_handler(greet_all, **plain)
    handlers["Chat"] = grpc.stream_stream_rpc_method_handler(chat, **plain)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("hello.HelloService", handlers),))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"listening on {bound}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
