#!/usr/bin/python3
"""A well-behaved grpcio client making unary calls in a loop, in a process of its own so that
the attack threads of a test (and the backends it runs in threads) cannot slow it down by
holding the GIL: its latencies are the relay's.

    /usr/bin/python3 legit_client.py ADDRESS [METHOD]

Prints "ready" once its channel is connected and a first call succeeded, then one line per
call: "CODE LATENCY_SECONDS START_MONOTONIC" (CODE is OK or the grpc status name; the start is
CLOCK_MONOTONIC, comparable with the test's time.monotonic()). Stops when stdin closes.
"""

import sys
import threading
import time

import grpc

# A call taking this long is over the tests' 1 s bound anyway; the timeout only keeps a
# stalled relay from stalling this loop.
CALL_TIMEOUT = 5.0
PAUSE = 0.02


def main():
  address = sys.argv[1]
  method = sys.argv[2] if len(sys.argv) > 2 else "/test.Echo/Unary"
  stop = threading.Event()

  def watch_stdin():
    sys.stdin.read()
    stop.set()

  threading.Thread(target=watch_stdin, daemon=True).start()
  options = [("grpc.enable_retries", 0), ("grpc.enable_http_proxy", 0),
             ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
             ("grpc.max_reconnect_backoff_ms", 500)]
  with grpc.insecure_channel(address, options=options) as channel:
    call = channel.unary_unary(method)
    grpc.channel_ready_future(channel).result(timeout=10)
    call(b"warm up", timeout=CALL_TIMEOUT)
    print("ready", flush=True)
    n = 0
    while not stop.is_set():
      start = time.monotonic()
      try:
        reply = call(b"legit %d" % n, timeout=CALL_TIMEOUT)
        code = "OK" if reply == b"legit %d" % n else "WRONG_REPLY"
      except grpc.RpcError as e:
        code = e.code().name
      print("%s %.6f %.6f" % (code, time.monotonic() - start, start), flush=True)
      n += 1
      stop.wait(PAUSE)


if __name__ == "__main__":
  main()
