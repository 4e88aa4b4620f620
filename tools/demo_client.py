#!/usr/bin/python3
"""Calls /helloworld.Greeter/SayHello through grelay (or any gRPC endpoint) and prints the reply.

The HelloRequest is encoded by hand (field 1, string name), so no generated code is needed.
The reply's field 1 is printed: HelloReply.message from the demo backend
(tools/demo_backend.py), or the name itself from the benchmark's echo backend, which sends
the request back.

    /usr/bin/python3 tools/demo_client.py [--target 127.0.0.1:50050] [--name grelay] [--count N]

Exits 1 and prints the gRPC status if a call fails.
"""

import argparse
import sys
import time

import grpc

METHOD = "/helloworld.Greeter/SayHello"


def encode_varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def encode_hello_request(name):
    """HelloRequest { string name = 1; }: tag (1 << 3 | wire type 2), length, UTF-8 bytes."""
    raw = name.encode("utf-8")
    return b"\x0a" + encode_varint(len(raw)) + raw


def decode_name(message):
    """Returns field 1 (string) of a HelloRequest/HelloReply, skipping any other field."""
    pos = 0
    name = ""
    while pos < len(message):
        key, pos = decode_varint(message, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = decode_varint(message, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 2:
            length, pos = decode_varint(message, pos)
            if pos + length > len(message):
                raise ValueError("truncated field")
            if field == 1:
                name = message[pos:pos + length].decode("utf-8")
            pos += length
        elif wire_type == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    return name


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50050", help="host:port to call")
    parser.add_argument("--name", default="grelay", help="HelloRequest.name to send")
    parser.add_argument("--count", type=int, default=1, help="number of sequential calls")
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline per call, seconds")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")

    request = encode_hello_request(args.name)
    with grpc.insecure_channel(args.target) as channel:
        say_hello = channel.unary_unary(METHOD)  # bytes in, bytes out
        try:
            start = time.perf_counter()
            reply = say_hello(request, timeout=args.timeout)
            first = time.perf_counter() - start
            name = decode_name(reply)
            echoed = " (echoed)" if reply == request else ""
            print(f'SayHello via {args.target} -> "{name}"{echoed}, {first * 1e3:.1f} ms')
            if args.count > 1:
                for _ in range(args.count - 1):
                    say_hello(request, timeout=args.timeout)
                elapsed = time.perf_counter() - start
                print(f"{args.count} calls in {elapsed:.3f} s: {args.count / elapsed:.0f} calls/s "
                      f"(sequential, one channel)")
        except grpc.RpcError as error:
            print(f"SayHello via {args.target} failed: {error.code().name} "
                  f"(grpc-status {error.code().value[0]}): {error.details()}", file=sys.stderr)
            return 1
        except ValueError as error:
            print(f"SayHello via {args.target}: undecodable reply: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
