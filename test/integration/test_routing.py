"""Routes pick clusters by :path and :authority, first match wins (docs/config.md, "How a call
is routed").

Every backend names itself in the x-backend-name trailer, which shows where a call went.
"""

import grpc
import pytest

import support
from support import GUARD_SECONDS, metadata_dict

pytestmark = pytest.mark.relay_only


@pytest.fixture(scope="module")
def relay(module_relay_factory, echo_backend, other_backend):
  return module_relay_factory(
      routes=[{"path": "/test.Route/Unary", "cluster": "other"},
              {"service": "test.Route", "cluster": "echo"},
              {"prefix": "/test.Pre", "cluster": "other"},
              {"service": "test.Auth", "authority": "api.example.com", "cluster": "other"},
              {"service": "test.Auth", "cluster": "echo"},
              {"service": "test.Shadow", "cluster": "echo"},
              {"service": "test.Shadow", "cluster": "other"},
              {"service": "test.Both", "cluster": "both"},
              {"none": True, "cluster": "other"}],
      clusters={"echo": [echo_backend.address], "other": [other_backend.address],
                "both": [echo_backend.address, other_backend.address]},
      listeners=("127.0.0.1:0", "127.0.0.1:0"))


def _served_by(address, method, authority=None):
  options = [("grpc.default_authority", authority)] if authority else []
  ch = support.channel(address, options)
  try:
    _, call = support.unary(ch, method).with_call(b"route me", timeout=GUARD_SECONDS)
    return metadata_dict(call.trailing_metadata())["x-backend-name"]
  finally:
    ch.close()


def test_exact_path_route(relay):
  assert _served_by(relay.address, "/test.Route/Unary") == "other"
  # Same service, other method: the path route does not match, the service route does.
  ch = support.channel(relay.address)
  try:
    call = support.server_stream(ch, "/test.Route/ServerStream")(
        b"", metadata=[("x-count", "1"), ("x-size", "1")], timeout=GUARD_SECONDS)
    assert len(list(call)) == 1
    assert metadata_dict(call.trailing_metadata())["x-backend-name"] == "echo"
  finally:
    ch.close()


def test_service_route_matches_the_whole_service_name(relay):
  # test.Route must not match test.RouteX or test.Rout: both fall to the catch-all.
  assert _served_by(relay.address, "/test.RouteX/Unary") == "other"
  assert _served_by(relay.address, "/test.Rout/Unary") == "other"


def test_prefix_route(relay):
  assert _served_by(relay.address, "/test.Prefixed/Unary") == "other"
  assert _served_by(relay.address, "/test.Pre/Unary") == "other"


def test_authority_route(relay):
  assert _served_by(relay.address, "/test.Auth/Unary", authority="api.example.com") == "other"
  assert _served_by(relay.address, "/test.Auth/Unary", authority="API.Example.COM") == "other"
  assert _served_by(relay.address, "/test.Auth/Unary", authority="www.example.com") == "echo"
  assert _served_by(relay.address, "/test.Auth/Unary") == "echo"


def test_first_match_wins(relay):
  assert _served_by(relay.address, "/test.Shadow/Unary") == "echo"


def test_catch_all_route(relay):
  assert _served_by(relay.address, "/anything.Else/Unary") == "other"


def test_round_robin_uses_every_endpoint(relay):
  served = [_served_by(relay.address, "/test.Both/Unary") for _ in range(20)]
  assert set(served) == {"echo", "other"}, served


def test_every_listener_serves_the_routes(relay):
  assert len(relay.addresses) == 2
  assert relay.addresses[0] != relay.addresses[1]
  for address in relay.addresses:
    assert _served_by(address, "/test.Route/Unary") == "other"
    assert _served_by(address, "/test.Shadow/Unary") == "echo"


def test_unknown_method_through_catch_all_is_backend_unimplemented(relay):
  ch = support.channel(relay.address)
  try:
    with pytest.raises(grpc.RpcError) as info:
      support.unary(ch, "/anything.Else/NoSuchMethod")(b"", timeout=GUARD_SECONDS)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
  finally:
    ch.close()
