#!/usr/bin/python3
"""helloworld.Greeter (protos/helloworld.proto) with real protobuf messages, for the web client
tests (test_web_clients.py): the backend that gRPC-Web and Connect clients reach through grelay.

    /usr/bin/python3 greeter_backend.py --port 0 [--host 127.0.0.1] [--events FILE]

It prints the bound port on stdout once it serves. Debian's python3-grpcio comes with
python3-protobuf but without a gRPC code generator, so the message classes are built from
protoc's own reading of protos/helloworld.proto (a descriptor set) and the two methods are
registered by hand.

Messages come in either codec a web client may use: binary protobuf (application/grpc+proto)
or the protobuf JSON mapping (application/grpc+json, which grelay passes through by name for
Connect's JSON codec). A JSON message starts with '{' (0x7b, which no HelloRequest's binary
form starts with); each reply uses the codec of its call's request.

  SayHello(name)              -> "Hello, NAME!"
  SayHelloStream(name, count) -> "Hello #1, NAME!" ... "Hello #COUNT, NAME!"

Each call is steered by these keys, taken from the request metadata or, for browsers (whose
requests carry only the headers a listener's CORS policy allows), from a query after "?" in the
request's name, which is left out of the greeting. Values are percent-encoded UTF-8.

  x-call-id         id of the call in the events file
  x-sleep-ms        sleep before answering (ends early when the call is cancelled)
  x-interval-ms     SayHelloStream: sleep between replies
  x-count           SayHelloStream: number of replies when the request's count is 0
  x-status-code     finish with this status (after the streamed replies)
  x-status-message  its message
  x-custom          sent back as x-echo, in the initial metadata and in the trailers

The events file gets "started ID" when a call with an id reaches its handler, and
"deadline ID SECONDS" (or "deadline ID none") with the deadline the call arrived with.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent import futures

import grpc
from backend import run_until_stopped
from google.protobuf import descriptor_pb2, json_format, message_factory

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "protos")
STATUS_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}
STEERING = ("x-call-id", "x-sleep-ms", "x-interval-ms", "x-count", "x-status-code",
            "x-status-message", "x-custom")
# grpcio reports a call without a deadline as one far in the future.
NO_DEADLINE_SECONDS = 10 * 365 * 24 * 3600


def message_classes():
  """{full name: class} of protos/helloworld.proto, from protoc's descriptor set."""
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "helloworld.pb")
    subprocess.run(["protoc", "--proto_path", PROTOS, "--descriptor_set_out", out,
                    "helloworld.proto"], check=True)
    with open(out, "rb") as f:
      files = descriptor_pb2.FileDescriptorSet.FromString(f.read()).file
  return message_factory.GetMessages(list(files))


class Events:
  """Appends one line per event to a file the test reads."""

  def __init__(self, path):
    self.path_ = path
    self.lock_ = threading.Lock()

  def record(self, *words):
    if not self.path_:
      return
    with self.lock_:
      with open(self.path_, "a") as f:
        f.write(" ".join(words) + "\n")


class Call:
  """One call's steering keys, its greeting name, and helpers that honour cancellation."""

  def __init__(self, events, context, name):
    self.context_ = context
    self.keys_ = {}
    self.name, _, query = name.partition("?")
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
      if key in STEERING:
        self.keys_[key] = value
    for item in context.invocation_metadata():
      if item.key in STEERING and isinstance(item.value, str):
        self.keys_[item.key] = urllib.parse.unquote(item.value)
    call_id = self.keys_.get("x-call-id")
    if call_id:
      events.record("started", call_id)
      remaining = context.time_remaining()
      seen = "none" if remaining is None or remaining > NO_DEADLINE_SECONDS else repr(remaining)
      events.record("deadline", call_id, seen)

  def number(self, key):
    return int(self.keys_.get(key) or 0)

  def sleep(self, ms):
    """Sleeps |ms|; returns False when the call was cancelled meanwhile."""
    end = time.monotonic() + ms / 1000.0
    while self.context_.is_active():
      left = end - time.monotonic()
      if left <= 0:
        return True
      time.sleep(min(left, 0.01))
    return False

  def start(self):
    """Sleeps as asked and sends the initial metadata; returns False if cancelled first."""
    if not self.sleep(self.number("x-sleep-ms")):
      return False
    if "x-custom" in self.keys_:
      self.context_.send_initial_metadata([("x-echo", self.keys_["x-custom"])])
    return True

  def finish(self):
    """Sets the trailers and the requested status; the handler returns right after."""
    if "x-custom" in self.keys_:
      self.context_.set_trailing_metadata([("x-echo", self.keys_["x-custom"])])
    code = self.number("x-status-code")
    if code:
      self.context_.set_code(STATUS_BY_VALUE[code])
      self.context_.set_details(self.keys_.get("x-status-message", ""))

  def abort_if_asked(self):
    """Unary: ends the call with the requested status instead of a reply."""
    code = self.number("x-status-code")
    if code:
      self.finish()
      self.context_.abort(STATUS_BY_VALUE[code], self.keys_.get("x-status-message", ""))


class Greeter:

  def __init__(self, events):
    classes = message_classes()
    self.events_ = events
    self.reply_ = classes["helloworld.HelloReply"]
    request = classes["helloworld.HelloRequest"]
    stream_request = classes["helloworld.HelloStreamRequest"]
    self.handler = grpc.method_handlers_generic_handler("helloworld.Greeter", {
        "SayHello": grpc.unary_unary_rpc_method_handler(
            self.say_hello, request_deserializer=decoder(request),
            response_serializer=encode),
        "SayHelloStream": grpc.unary_stream_rpc_method_handler(
            self.say_hello_stream, request_deserializer=decoder(stream_request),
            response_serializer=encode),
    })

  # Requests arrive as (message, json); replies leave as (message, json).
  def say_hello(self, request, context):
    request, json_codec = request
    call = Call(self.events_, context, request.name)
    if not call.start():
      return (self.reply_(), json_codec)
    call.abort_if_asked()
    call.finish()
    return (self.reply_(message="Hello, %s!" % call.name), json_codec)

  def say_hello_stream(self, request, context):
    request, json_codec = request
    call = Call(self.events_, context, request.name)
    if not call.start():
      return
    count = request.count or call.number("x-count")
    interval = call.number("x-interval-ms")
    for i in range(count):
      if i and interval and not call.sleep(interval):
        return
      yield (self.reply_(message="Hello #%d, %s!" % (i + 1, call.name)), json_codec)
    call.finish()


def decoder(cls):
  """A request deserializer for |cls| that reads either codec: (message, json)."""

  def decode(data):
    if data[:1] == b"{":
      return (json_format.Parse(data.decode(), cls()), True)
    return (cls.FromString(data), False)

  return decode


def encode(reply):
  message, json_codec = reply
  if json_codec:
    return json_format.MessageToJson(message, indent=None).encode()
  return message.SerializeToString()


def serve(host, port, events_path):
  server = grpc.server(futures.ThreadPoolExecutor(max_workers=64),
                       handlers=[Greeter(Events(events_path)).handler])
  bound = server.add_insecure_port("%s:%d" % (host, port))
  return run_until_stopped(server, bound, "greeter_backend", host, port)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--port", type=int, default=0)
  parser.add_argument("--host", default="127.0.0.1")
  parser.add_argument("--events", default="")
  args = parser.parse_args()
  return serve(args.host, args.port, args.events)


if __name__ == "__main__":
  sys.exit(main())
