"""A program that embeds grelay (consumer/relay_one.cc): built against an installed tree
(test_install.py) and with grelay as a meson subproject (test_subproject.py), it relays one
grpcio call to the echo backend."""

import os

import support

CONSUMER_DIR = os.path.join(support.HERE, "consumer")
RELAY_ONE_SOURCE = os.path.join(CONSUMER_DIR, "relay_one.cc")


def relay_one_call(program, echo_backend, workdir, env=None):
  """Runs |program| (a relay_one build) in front of |echo_backend|, makes one unary call
  through it, stops it with SIGTERM (it must exit 0) and returns its output lines."""
  text = support.render_config([{"service": "test.Echo", "cluster": "echo"}],
                               {"echo": [echo_backend.address]})
  relay = support.RelayProcess(text, workdir, name="relay_one", env=env, command=[program])
  try:
    with support.channel(relay.address) as ch:
      payload = b"through a program that embeds grelay"
      assert support.unary(ch)(payload, timeout=support.GUARD_SECONDS) == payload
  finally:
    relay.stop()
  relay.log.wait_for(lambda lines: "stopped" in lines, 10)
  lines = list(relay.log.lines)
  # A ConfigError thrown in the library was caught by its type in the program.
  assert "caught grelay::ConfigError at bad.toml:1" in lines, relay.log.tail()
  assert "stopped" in lines, relay.log.tail()
  return lines
