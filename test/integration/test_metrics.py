"""/metrics and the rest of the admin endpoint through the real binary: calls with known
outcomes, then the exact counters and histograms scraped, promtool's verdict, h2c access,
/config and /clusters."""

import json
import shutil
import signal
import subprocess
import time

import grpc
import pytest

import admin_support
import support

pytestmark = pytest.mark.relay_only

ROUTES = [
    {"path": "/test.Echo/Unary", "name": "unary", "cluster": "echo"},
    {"service": "slow.Svc", "cluster": "hang", "timeout": "200ms"},
    {"service": "dead.Svc", "cluster": "dead"},
    {"service": "test.Echo", "cluster": "echo"},
]


@pytest.fixture
def relay(tmp_path, echo_backend, h2_backend):
  # The raw h2 backend's Hang method never answers and keeps no deadline of its own, so the
  # relay is what ends the slow call.
  clusters = {"echo": [echo_backend.address], "dead": ["127.0.0.1:%d" % support.free_port()],
              "hang": [h2_backend.address]}
  relay, admin = admin_support.start_relay(tmp_path, ROUTES, clusters)
  yield relay, admin
  if relay.alive():
    relay.stop()


def labels(route, cluster, service, method, **more):
  out = {"route": route, "cluster": cluster, "grpc_service": service, "grpc_method": method}
  out.update(more)
  return out


# How many calls run_known_calls() makes.
KNOWN_CALLS = 10


def run_known_calls(address):
  """Calls with known outcomes; returns once every one has ended."""
  with support.channel(address) as ch:
    for _ in range(3):
      assert support.unary(ch)(b"x" * 100, timeout=support.GUARD_SECONDS) == b"x" * 100
    with pytest.raises(grpc.RpcError) as e:
      support.unary(ch, "/test.Echo/Unary")(b"", metadata=(("x-status-code", "5"),),
                                              timeout=support.GUARD_SECONDS)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
      support.unary(ch, "/dead.Svc/Get")(b"", timeout=support.GUARD_SECONDS)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.RpcError) as e:
      support.unary(ch, "/slow.Svc/Hang")(b"", timeout=support.GUARD_SECONDS)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    with pytest.raises(grpc.RpcError) as e:
      support.unary(ch, "/nope.Svc/Get")(b"", timeout=support.GUARD_SECONDS)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    replies = list(support.server_stream(ch)(
        b"", metadata=(("x-count", "5"), ("x-size", "20")), timeout=support.GUARD_SECONDS))
    assert len(replies) == 5
    assert support.client_stream(ch)(iter([b"abcdefghij"] * 4),
                                     timeout=support.GUARD_SECONDS) == b"abcdefghij" * 4
    assert list(support.bidi(ch)(iter([b"a", b"bb", b"ccc"]),
                                 timeout=support.GUARD_SECONDS)) == [b"a", b"bb", b"ccc"]


def finished_scrape(admin, calls):
  """A scrape taken once |calls| calls are counted as finished: a client may see its answer
  a moment before the relay closes the stream and counts it."""
  def scrape():
    s = admin_support.Scrape(admin)
    done = sum(v for (name, _), v in s.samples.items() if name == "grelay_calls_total")
    return done >= calls and s
  s = support.wait_until(scrape, 5)
  assert s, admin_support.Scrape(admin).text
  return s


def test_counts_every_outcome_exactly(relay):
  relay, admin = relay
  run_known_calls(relay.address)
  s = finished_scrape(admin, KNOWN_CALLS)
  assert sum(v for (name, _), v in s.samples.items() if name == "grelay_calls_total") == KNOWN_CALLS

  unary = labels("unary", "echo", "test.Echo", "Unary")
  assert s.value("grelay_calls_started_total", **unary) == 4
  assert s.value("grelay_calls_total", **unary, grpc_code="OK") == 3
  assert s.value("grelay_calls_total", **unary, grpc_code="NOT_FOUND") == 1
  assert s.value("grelay_request_messages_total", **unary) == 4
  # The NOT_FOUND answer is Trailers-Only: no message back.
  assert s.value("grelay_response_messages_total", **unary) == 3
  assert s.value("grelay_request_bytes_total", **unary) == 3 * 105 + 5
  assert s.value("grelay_response_bytes_total", **unary) == 3 * 105
  assert s.value("grelay_call_duration_seconds_count", **unary) == 4

  dead = labels("dead.Svc", "dead", "dead.Svc", "Get")
  assert s.value("grelay_calls_total", **dead, grpc_code="UNAVAILABLE") == 1
  assert s.value("grelay_calls_started_total", **dead) == 1

  slow = labels("slow.Svc", "hang", "slow.Svc", "Hang")
  assert s.value("grelay_calls_total", **slow, grpc_code="DEADLINE_EXCEEDED") == 1
  # The relay ends the call when the route's 200ms timeout expires, not before.
  assert s.value("grelay_call_duration_seconds_bucket", **slow, le="0.1") == 0
  assert s.value("grelay_call_duration_seconds_bucket", **slow, le="+Inf") == 1
  assert s.value("grelay_call_duration_seconds_count", **slow) == 1
  # The deadline timer runs on the loop's cached millisecond clock, which may lag the call's
  # start by a fraction of a millisecond: the call lasts the timeout, give or take that.
  assert s.value("grelay_call_duration_seconds_sum", **slow) >= 0.19

  unrouted = labels("", "", "", "")
  assert s.value("grelay_calls_total", **unrouted, grpc_code="UNIMPLEMENTED") == 1
  assert s.value("grelay_calls_started_total", **unrouted) == 1

  stream = labels("test.Echo", "echo", "test.Echo", "ServerStream")
  assert s.value("grelay_calls_total", **stream, grpc_code="OK") == 1
  assert s.value("grelay_request_messages_total", **stream) == 1
  assert s.value("grelay_response_messages_total", **stream) == 5
  assert s.value("grelay_response_bytes_total", **stream) == 5 * 25

  client = labels("test.Echo", "echo", "test.Echo", "ClientStream")
  assert s.value("grelay_request_messages_total", **client) == 4
  assert s.value("grelay_request_bytes_total", **client) == 4 * 15
  assert s.value("grelay_response_messages_total", **client) == 1
  assert s.value("grelay_response_bytes_total", **client) == 45

  bidi = labels("test.Echo", "echo", "test.Echo", "Bidi")
  assert s.value("grelay_request_messages_total", **bidi) == 3
  assert s.value("grelay_response_messages_total", **bidi) == 3
  assert s.value("grelay_calls_total", **bidi, grpc_code="OK") == 1

  # Every histogram is cumulative and ends at its count.
  for key, value in s.samples.items():
    name, labelset = key
    if name == "grelay_call_duration_seconds_count":
      plain = dict(labelset)
      buckets = [v for (n, ls), v in s.samples.items()
                 if n == "grelay_call_duration_seconds_bucket" and
                 {k: x for k, x in ls if k != "le"} == plain]
      assert len(buckets) == 17
      assert max(buckets) == value

  assert s.value("grelay_relay_errors_total", reason="no_route") == 1
  assert s.value("grelay_relay_errors_total", reason="no_endpoint") == 1
  assert s.value("grelay_relay_errors_total", reason="deadline_exceeded") == 1
  assert s.value("grelay_relay_errors_total", reason="backend_reset") == 0
  assert s.value("grelay_backend_connect_failures_total", cluster="dead",
                 endpoint=dict(relay_clusters(admin))["dead"][0]) == 1
  assert s.value("grelay_retries_total", cluster="echo") == 0
  assert s.value("grelay_listener_connections_total", listener="127.0.0.1:0") == 1
  # The client closed its channel; the relay sees the socket close soon after.
  assert support.wait_until(lambda: admin_support.Scrape(admin).value(
      "grelay_listener_active_connections", listener="127.0.0.1:0") == 0, 5)
  assert admin_support.Scrape(admin).value("grelay_listener_active_calls",
                                           listener="127.0.0.1:0") == 0
  assert s.value("grelay_cluster_active_calls", cluster="echo") == 0
  assert s.value("grelay_drains_total") == 0
  assert s.value("grelay_reloads_total", result="success") == 0
  assert s.value("grelay_reloads_total", result="failure") == 0


def relay_clusters(admin):
  status, content_type, body = admin_support.get(admin, "/clusters")
  assert status == 200 and content_type == "application/json"
  return [(c["name"], [e["address"] for e in c["endpoints"]]) for c in json.loads(body)["clusters"]]


def test_promtool_accepts_a_real_scrape(relay):
  relay, admin = relay
  promtool = shutil.which("promtool")
  assert promtool, "promtool not found: install the Debian 'prometheus' package (scripts/deps.sh test)"
  run_known_calls(relay.address)
  text = finished_scrape(admin, KNOWN_CALLS).text
  result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
  assert result.returncode == 0, result.stdout + result.stderr
  assert result.stdout + result.stderr == ""


def test_admin_answers_h2c_with_prior_knowledge(relay):
  relay, admin = relay
  with support.channel(relay.address) as ch:
    support.unary(ch)(b"hi", timeout=support.GUARD_SECONDS)
  finished_scrape(admin, 1)
  answers = admin_support.get_h2(admin, ["/metrics", "/healthz", "/ready", "/nope", "/clusters"])
  (m_status, m_type, m_body), healthz, ready, nope, clusters = answers
  assert m_status == 200 and m_type.startswith("text/plain; version=0.0.4")
  samples = admin_support.parse(m_body)
  assert samples[("grelay_calls_total", frozenset(
      labels("unary", "echo", "test.Echo", "Unary", grpc_code="OK").items()))] == 1
  assert healthz == (200, "text/plain; charset=utf-8", "ok\n")
  assert ready == (200, "text/plain; charset=utf-8", "ready\n")
  assert nope[0] == 404
  assert clusters[0] == 200 and json.loads(clusters[2])["clusters"][0]["name"] == "echo"
  # The same answers over HTTP/1.1.
  assert admin_support.get(admin, "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")
  assert admin_support.get(admin, "/nope")[0] == 404
  assert admin_support.get(admin, "/metrics", method="POST")[0] == 405


def test_config_shows_the_running_config(relay):
  relay, admin = relay
  status, content_type, body = admin_support.get(admin, "/config")
  assert status == 200 and content_type == "application/json"
  config = json.loads(body)
  assert config["admin"] == {"address": "127.0.0.1:0"}
  assert [r["cluster"] for r in config["route"]] == ["echo", "hang", "dead", "echo"]
  assert config["route"][0]["name"] == "unary"
  assert [c["name"] for c in config["cluster"]] == ["echo", "dead", "hang"]


def test_clusters_and_gauges_show_calls_in_flight(relay, echo_backend):
  relay, admin = relay
  with support.channel(relay.address) as ch:
    cid = support.call_id()
    held = support.unary(ch).future(b"", metadata=(("x-sleep-ms", "1500"), ("x-call-id", cid)),
                                    timeout=support.GUARD_SECONDS)
    # Once the backend runs the call, it is on its endpoint's books.
    assert echo_backend.saw_start(cid)
    body = json.loads(admin_support.get(admin, "/clusters")[2])
    echo = body["clusters"][0]
    assert echo["name"] == "echo" and echo["connections"] == 1
    assert echo["endpoints"] == [{
        "address": echo_backend.address, "health": "unknown", "ejected": False,
        "active_calls": 1, "connections": 1, "connect_failures": 0}]
    s = admin_support.Scrape(admin)
    assert s.value("grelay_cluster_active_calls", cluster="echo") == 1
    assert s.value("grelay_cluster_active_connections", cluster="echo") == 1
    assert s.value("grelay_listener_active_connections", listener="127.0.0.1:0") == 1
    assert s.value("grelay_listener_active_calls", listener="127.0.0.1:0") == 1
    held.result()
  assert support.wait_until(
      lambda: admin_support.Scrape(admin).value("grelay_cluster_active_calls", cluster="echo")
      == 0, 5)
  dead = json.loads(admin_support.get(admin, "/clusters")[2])["clusters"][1]
  assert dead["name"] == "dead" and dead["active_calls"] == 0


def test_drain_is_counted(relay):
  relay, admin = relay
  ch = support.channel(relay.address)
  # A call held open keeps the drain (and the admin endpoint) going while it is scraped.
  held = support.unary(ch).future(b"", metadata=(("x-sleep-ms", "1500"),),
                                  timeout=support.GUARD_SECONDS)
  time.sleep(0.3)
  relay.signal(signal.SIGTERM)
  assert support.wait_until(
      lambda: admin_support.Scrape(admin).value("grelay_drains_total") == 1, 5)
  held.result()
  ch.close()
