#!/usr/bin/python3
"""The quick start's demo backend: helloworld.Greeter (protos/helloworld.proto) and gRPC
server reflection, so that reflection clients (tools/grpc_reflect.py, grpcurl) can list,
describe and call it, through grelay or directly.

    /usr/bin/python3 tools/demo_backend.py [--address 127.0.0.1:50051]

Debian's python3-grpcio has neither generated code for the service nor the grpc_reflection
package, so both are written here against python3-protobuf: the file descriptors are built
in code (test_demo.py checks them against protoc's reading of the .proto files), messages
are protobuf classes made from them, and ServerReflectionInfo answers list_services,
file_by_filename and file_containing_symbol for v1 and v1alpha. Any other method is
UNIMPLEMENTED, as a real server answers it.
"""

import argparse
import signal
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
REFLECTION_VERSIONS = ("v1", "v1alpha")


def field(name, number, type_, type_name=None, repeated=False, oneof=None):
  f = F(name=name, number=number, type=type_,
        label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL, json_name=_camel(name))
  if type_name:
    f.type_name = type_name
  if oneof is not None:
    f.oneof_index = oneof
  return f


def _camel(name):
  head, *rest = name.split("_")
  return head + "".join(w.capitalize() for w in rest)


def message(name, *fields, oneofs=()):
  m = descriptor_pb2.DescriptorProto(name=name, field=list(fields))
  for o in oneofs:
    m.oneof_decl.add(name=o)
  return m


def helloworld_file():
  """protos/helloworld.proto as a FileDescriptorProto."""
  f = descriptor_pb2.FileDescriptorProto(name="helloworld.proto", package="helloworld",
                                         syntax="proto3")
  f.message_type.extend([
      message("HelloRequest", field("name", 1, F.TYPE_STRING)),
      message("HelloStreamRequest", field("name", 1, F.TYPE_STRING),
              field("count", 2, F.TYPE_INT32)),
      message("HelloReply", field("message", 1, F.TYPE_STRING)),
  ])
  s = f.service.add(name="Greeter")
  s.method.add(name="SayHello", input_type=".helloworld.HelloRequest",
               output_type=".helloworld.HelloReply")
  s.method.add(name="SayHelloStream", input_type=".helloworld.HelloStreamRequest",
               output_type=".helloworld.HelloReply", server_streaming=True)
  return f


def reflection_file(version):
  """grpc/reflection/VERSION/reflection.proto (its messages and service) as a
  FileDescriptorProto."""
  pkg = "grpc.reflection." + version
  t = lambda name: "." + pkg + "." + name  # noqa: E731
  f = descriptor_pb2.FileDescriptorProto(name="grpc/reflection/%s/reflection.proto" % version,
                                         package=pkg, syntax="proto3")
  f.message_type.extend([
      message("ServerReflectionRequest",
              field("host", 1, F.TYPE_STRING),
              field("file_by_filename", 3, F.TYPE_STRING, oneof=0),
              field("file_containing_symbol", 4, F.TYPE_STRING, oneof=0),
              field("file_containing_extension", 5, F.TYPE_MESSAGE, t("ExtensionRequest"),
                    oneof=0),
              field("all_extension_numbers_of_type", 6, F.TYPE_STRING, oneof=0),
              field("list_services", 7, F.TYPE_STRING, oneof=0),
              oneofs=["message_request"]),
      message("ExtensionRequest", field("containing_type", 1, F.TYPE_STRING),
              field("extension_number", 2, F.TYPE_INT32)),
      message("ServerReflectionResponse",
              field("valid_host", 1, F.TYPE_STRING),
              field("original_request", 2, F.TYPE_MESSAGE, t("ServerReflectionRequest")),
              field("file_descriptor_response", 4, F.TYPE_MESSAGE, t("FileDescriptorResponse"),
                    oneof=0),
              field("all_extension_numbers_response", 5, F.TYPE_MESSAGE,
                    t("ExtensionNumberResponse"), oneof=0),
              field("list_services_response", 6, F.TYPE_MESSAGE, t("ListServiceResponse"),
                    oneof=0),
              field("error_response", 7, F.TYPE_MESSAGE, t("ErrorResponse"), oneof=0),
              oneofs=["message_response"]),
      message("FileDescriptorResponse",
              field("file_descriptor_proto", 1, F.TYPE_BYTES, repeated=True)),
      message("ExtensionNumberResponse", field("base_type_name", 1, F.TYPE_STRING),
              field("extension_number", 2, F.TYPE_INT32, repeated=True)),
      message("ListServiceResponse",
              field("service", 1, F.TYPE_MESSAGE, t("ServiceResponse"), repeated=True)),
      message("ServiceResponse", field("name", 1, F.TYPE_STRING)),
      message("ErrorResponse", field("error_code", 1, F.TYPE_INT32),
              field("error_message", 2, F.TYPE_STRING)),
  ])
  s = f.service.add(name="ServerReflection")
  s.method.add(name="ServerReflectionInfo", input_type=t("ServerReflectionRequest"),
               output_type=t("ServerReflectionResponse"), client_streaming=True,
               server_streaming=True)
  return f


class Descriptors:
  """Every file the backend describes, loaded in a pool, with message classes."""

  def __init__(self):
    self.files = [helloworld_file()] + [reflection_file(v) for v in REFLECTION_VERSIONS]
    self.pool = descriptor_pool.DescriptorPool()
    for f in self.files:
      self.pool.Add(f)
    self.factory_ = message_factory.MessageFactory(self.pool)

  def message_class(self, full_name):
    descriptor = self.pool.FindMessageTypeByName(full_name)
    if hasattr(message_factory, "GetMessageClass"):
      return message_factory.GetMessageClass(descriptor)
    return self.factory_.GetPrototype(descriptor)

  def services(self):
    return sorted("%s.%s" % (f.package, s.name) for f in self.files for s in f.service)

  def file_named(self, name):
    return next((f for f in self.files if f.name == name), None)

  def file_with_symbol(self, symbol):
    for f in self.files:
      names = [f.package + "." + m.name for m in f.message_type]
      for s in f.service:
        names.append(f.package + "." + s.name)
        names += [f.package + "." + s.name + "." + m.name for m in s.method]
      if symbol in names:
        return f
    return None


class Greeter:
  def __init__(self, d):
    self.request_ = d.message_class("helloworld.HelloRequest")
    self.stream_request_ = d.message_class("helloworld.HelloStreamRequest")
    self.reply_ = d.message_class("helloworld.HelloReply")

  def handlers(self):
    return grpc.method_handlers_generic_handler("helloworld.Greeter", {
        "SayHello": grpc.unary_unary_rpc_method_handler(
            self.say_hello, request_deserializer=self.request_.FromString,
            response_serializer=self.reply_.SerializeToString),
        "SayHelloStream": grpc.unary_stream_rpc_method_handler(
            self.say_hello_stream, request_deserializer=self.stream_request_.FromString,
            response_serializer=self.reply_.SerializeToString),
    })

  def say_hello(self, request, context):
    return self.reply_(message="Hello, %s!" % (request.name or "world"))

  def say_hello_stream(self, request, context):
    for i in range(max(0, min(request.count, 1000))):
      yield self.reply_(message="Hello #%d, %s!" % (i + 1, request.name or "world"))


class Reflection:
  """grpc.reflection.VERSION.ServerReflection/ServerReflectionInfo."""

  NOT_FOUND = 5
  UNIMPLEMENTED = 12

  def __init__(self, d, version):
    self.d_ = d
    self.version_ = version
    pkg = "grpc.reflection.%s." % version
    self.request_ = d.message_class(pkg + "ServerReflectionRequest")
    self.response_ = d.message_class(pkg + "ServerReflectionResponse")

  def handlers(self):
    return grpc.method_handlers_generic_handler(
        "grpc.reflection.%s.ServerReflection" % self.version_, {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                self.info, request_deserializer=self.request_.FromString,
                response_serializer=self.response_.SerializeToString),
        })

  def info(self, requests, context):
    for request in requests:
      yield self.answer(request)

  def answer(self, request):
    response = self.response_(valid_host=request.host, original_request=request)
    kind = request.WhichOneof("message_request")
    found = None
    if kind == "list_services":
      for name in self.d_.services():
        response.list_services_response.service.add(name=name)
      return response
    if kind == "file_by_filename":
      found = self.d_.file_named(request.file_by_filename)
    elif kind == "file_containing_symbol":
      found = self.d_.file_with_symbol(request.file_containing_symbol)
    else:
      response.error_response.error_code = self.UNIMPLEMENTED
      response.error_response.error_message = "%s is not supported" % kind
      return response
    if found is None:
      response.error_response.error_code = self.NOT_FOUND
      response.error_response.error_message = "not found"
      return response
    # None of these files imports another, so each answer is one file.
    response.file_descriptor_response.file_descriptor_proto.append(found.SerializeToString())
    return response


def serve(address):
  d = Descriptors()
  server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
  server.add_generic_rpc_handlers([Greeter(d).handlers()] +
                                  [Reflection(d, v).handlers() for v in REFLECTION_VERSIONS])
  if server.add_insecure_port(address) == 0:
    raise SystemExit("demo_backend: cannot listen on %s" % address)
  server.start()
  return server


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--address", default="127.0.0.1:50051", help="host:port to listen on")
  args = parser.parse_args()
  server = serve(args.address)
  print("demo backend (helloworld.Greeter, server reflection) on %s" % args.address, flush=True)
  stop = threading.Event()
  for signum in (signal.SIGTERM, signal.SIGINT):
    signal.signal(signum, lambda *_: stop.set())
  stop.wait()
  server.stop(grace=2).wait()
  return 0


if __name__ == "__main__":
  sys.exit(main())
