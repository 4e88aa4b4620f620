"""Helpers for tests of the admin endpoint: start a relay with [admin], GET over HTTP/1.1 or
h2c, and parse a Prometheus text scrape."""

import http.client
import re
import struct

import pytest

import support
from h2_client import GOAWAY, NO_ERROR, H2Client, frame

ADMIN_RE = re.compile(r"admin endpoint at http://([\d.]+):(\d+)/")
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def start_relay(workdir, routes, clusters, extra="", name="admin"):
  """A relay with an admin endpoint on a free port; returns (relay, (host, port))."""
  text = support.render_config(routes=routes, clusters=clusters,
                               extra='[admin]\naddress = "127.0.0.1:0"\n' + extra)
  relay = support.RelayProcess(text, str(workdir), name=name)
  lines = relay.log.wait_for(lambda ls: [m for m in map(ADMIN_RE.search, ls) if m], 10)
  if not lines:
    relay.kill()
    pytest.fail("grelay did not log its admin address:\n" + relay.log.tail())
  return relay, (lines[0].group(1), int(lines[0].group(2)))


def get(admin, path, method="GET"):
  """(status, content type, body) over HTTP/1.1."""
  conn = http.client.HTTPConnection(admin[0], admin[1], timeout=5)
  try:
    conn.request(method, path)
    response = conn.getresponse()
    return response.status, response.getheader("Content-Type"), response.read().decode()
  finally:
    conn.close()


def get_h2(admin, paths):
  """GETs every path of |paths| on one h2c connection (prior knowledge), all streams at once;
  returns [(status, content type, body)] in the same order."""
  with H2Client("%s:%d" % admin, timeout=5) as conn:
    sids = [conn.start(path, method="GET", content_type=None, te=None) for path in paths]
    answers = []
    for sid in sids:
      st = conn.wait_stream(sid)
      assert st.reset_code is None, "admin reset stream %d" % sid
      assert st.ended, "admin did not end stream %d: %s" % (sid, st.describe())
      answers.append((int(st.header(":status")), st.header("content-type"), st.data.decode()))
    conn.send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, NO_ERROR)))
  return answers


def parse(text):
  """{(name, frozenset(labels)): value} of every sample in a text scrape."""
  samples = {}
  for line in text.splitlines():
    if not line or line.startswith("#"):
      continue
    m = SAMPLE_RE.match(line)
    assert m, "malformed sample line: %r" % line
    labels = frozenset((k, bytes(v, "utf-8").decode("unicode_escape"))
                       for k, v in LABEL_RE.findall(m.group(2) or ""))
    key = (m.group(1), labels)
    assert key not in samples, "duplicate sample: %r" % line
    samples[key] = float(m.group(3))
  return samples


class Scrape:
  """One /metrics scrape: value(name, label=value, ...) looks up a sample by its exact
  label set (absent samples are None)."""

  def __init__(self, admin):
    status, content_type, body = get(admin, "/metrics")
    assert status == 200, body
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    self.text = body
    self.samples = parse(body)

  def value(self, name, **labels):
    return self.samples.get((name, frozenset(labels.items())))

  def call_labels(self, route, cluster, service, method):
    return {"route": route, "cluster": cluster, "grpc_service": service, "grpc_method": method}
