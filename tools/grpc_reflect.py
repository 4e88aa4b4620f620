#!/usr/bin/python3
"""A gRPC reflection client: lists, describes and calls any service a server describes over
grpc.reflection (v1, else v1alpha), with JSON in and out, like grpcurl (which Debian does not
package). It knows nothing of the service beforehand: the descriptors come from the server.

    tools/grpc_reflect.py [--target 127.0.0.1:50050] list
    tools/grpc_reflect.py describe helloworld.Greeter
    tools/grpc_reflect.py call helloworld.Greeter/SayHello '{"name": "grelay"}'

Exits 1 with the gRPC status when a call fails.
"""

import argparse
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from demo_backend import reflection_file  # noqa: E402  (the reflection messages themselves)


class Reflector:
  """Asks a server's reflection service and keeps what it answered in a descriptor pool."""

  def __init__(self, channel):
    self.channel_ = channel
    self.pool = descriptor_pool.DescriptorPool()
    self.factory_ = message_factory.MessageFactory(self.pool)
    self.loaded_ = set()
    self.version_ = None
    own = descriptor_pool.DescriptorPool()
    self.own_factory_ = message_factory.MessageFactory(own)
    self.own_ = own
    for version in ("v1", "v1alpha"):
      own.Add(reflection_file(version))

  def _cls(self, pool, factory, name):
    d = pool.FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):
      return message_factory.GetMessageClass(d)
    return factory.GetPrototype(d)

  def ask(self, **request):
    """One ServerReflectionRequest, answered."""
    versions = [self.version_] if self.version_ else ["v1", "v1alpha"]
    for version in versions:
      pkg = "grpc.reflection.%s." % version
      req_cls = self._cls(self.own_, self.own_factory_, pkg + "ServerReflectionRequest")
      resp_cls = self._cls(self.own_, self.own_factory_, pkg + "ServerReflectionResponse")
      stub = self.channel_.stream_stream(
          "/%sServerReflection/ServerReflectionInfo" % pkg,
          request_serializer=req_cls.SerializeToString, response_deserializer=resp_cls.FromString)
      try:
        response = next(iter(stub(iter([req_cls(**request)]), timeout=10)))
      except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNIMPLEMENTED and version != versions[-1]:
          continue
        raise
      self.version_ = version
      if response.WhichOneof("message_response") == "error_response":
        raise LookupError(response.error_response.error_message)
      return response
    raise LookupError("no reflection service")

  def services(self):
    return [s.name for s in self.ask(list_services="").list_services_response.service]

  def load_symbol(self, symbol):
    self._add(self.ask(file_containing_symbol=symbol))

  def _add(self, response):
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
             for raw in response.file_descriptor_response.file_descriptor_proto]
    by_name = {f.name: f for f in files}

    def add(f):
      if f.name in self.loaded_:
        return
      for dep in f.dependency:
        if dep not in self.loaded_:
          add(by_name.get(dep) or self._fetch(dep))
      self.pool.Add(f)
      self.loaded_.add(f.name)

    for f in files:
      add(f)

  def _fetch(self, filename):
    raw = self.ask(file_by_filename=filename).file_descriptor_response.file_descriptor_proto[0]
    return descriptor_pb2.FileDescriptorProto.FromString(raw)

  def message_class(self, descriptor):
    return self._cls(self.pool, self.factory_, descriptor.full_name)


def describe(r, symbol):
  r.load_symbol(symbol)
  try:
    service = r.pool.FindServiceByName(symbol)
  except KeyError:
    message = r.pool.FindMessageTypeByName(symbol)
    print("message %s {" % message.full_name)
    for f in message.fields:
      print("  %s%s %s = %d;" % ("repeated " if f.label == f.LABEL_REPEATED else "",
                                 f.message_type.full_name if f.message_type else
                                 _scalar(f), f.name, f.number))
    print("}")
    return
  print("service %s {" % service.full_name)
  for m in service.methods:
    print("  rpc %s (%s%s) returns (%s%s);" % (
        m.name, "stream " if m.client_streaming else "", m.input_type.full_name,
        "stream " if m.server_streaming else "", m.output_type.full_name))
  print("}")


def _scalar(field):
  names = {v: k[5:].lower() for k, v in vars(descriptor_pb2.FieldDescriptorProto).items()
           if k.startswith("TYPE_")}
  return names.get(field.type, "?")


def call(r, channel, method_path, body):
  service_name, method_name = method_path.rsplit("/", 1)
  r.load_symbol(service_name)
  methods = r.pool.FindServiceByName(service_name).methods_by_name
  if method_name not in methods:
    raise LookupError("%s has no method %s" % (service_name, method_name))
  method = methods[method_name]
  if method.client_streaming:
    raise SystemExit("client-streaming methods are not supported here")
  req_cls, resp_cls = r.message_class(method.input_type), r.message_class(method.output_type)
  request = json_format.Parse(body or "{}", req_cls())
  path = "/%s/%s" % (service_name, method_name)
  kwargs = dict(request_serializer=req_cls.SerializeToString,
                response_deserializer=resp_cls.FromString)
  if method.server_streaming:
    replies = channel.unary_stream(path, **kwargs)(request, timeout=30)
  else:
    replies = [channel.unary_unary(path, **kwargs)(request, timeout=30)]
  for reply in replies:
    print(json.dumps(json_format.MessageToDict(reply), indent=2))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--target", default="127.0.0.1:50050", help="host:port (h2c)")
  sub = parser.add_subparsers(dest="command", required=True)
  sub.add_parser("list", help="the services the server describes")
  d = sub.add_parser("describe", help="a service's methods or a message's fields")
  d.add_argument("symbol")
  c = sub.add_parser("call", help="call SERVICE/METHOD with a JSON request")
  c.add_argument("method")
  c.add_argument("json", nargs="?", default="{}")
  args = parser.parse_args()
  with grpc.insecure_channel(args.target) as channel:
    r = Reflector(channel)
    try:
      if args.command == "list":
        print("\n".join(r.services()))
      elif args.command == "describe":
        describe(r, args.symbol)
      else:
        call(r, channel, args.method, args.json)
    except grpc.RpcError as e:
      print("%s: %s" % (e.code().name, e.details()), file=sys.stderr)
      return 1
    except LookupError as e:
      print("reflection: %s" % e, file=sys.stderr)
      return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
