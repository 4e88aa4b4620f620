#!/usr/bin/python3
"""How evenly each accept mode spreads long-lived connections over the workers.

Starts grelay with `workers = W` and `accept = MODE`, opens N client connections (each does
the HTTP/2 handshake and stays open, as a gRPC channel's connection does), then stops grelay
and reads how many connections each worker accepted from its exit log. No load is sent: this
measures placement only, so it takes a few seconds and no CPU to speak of.

    bench/accept_spread.py [--grelay build/grelay] [--workers 2 4] [--conns 16 64 256]
                           [--trials 5]
"""

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ACCEPTED_RE = re.compile(rb"worker (\d+) accepted (\d+) connections")
LISTENING_RE = re.compile(rb"listening on ([\d.]+):(\d+)")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def run_once(grelay, mode, workers, conns):
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "spread.toml")
    with open(path, "w") as f:
      f.write('workers = %d\naccept = "%s"\nlog_level = "info"\n\n[[listener]]\n'
              'address = "127.0.0.1:0"\n\n[[route]]\nnone = true\ncluster = "c"\n\n'
              '[[cluster]]\nname = "c"\nendpoints = ["127.0.0.1:9"]\n' % (workers, mode))
    proc = subprocess.Popen([grelay, "-c", path], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = b""
    while True:
      line = proc.stdout.readline()
      out += line
      m = LISTENING_RE.search(line)
      if m or not line:
        break
    if not m:
      proc.kill()
      sys.exit("grelay did not start:\n" + out.decode())
    address = (m.group(1).decode(), int(m.group(2)))
    socks = []
    for _ in range(conns):
      s = socket.create_connection(address)
      s.sendall(PREFACE)
      s.recv(64)  # the relay's SETTINGS: the worker has the connection
      socks.append(s)
    for s in socks:
      s.close()
    time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out += proc.communicate(timeout=30)[0]
  counts = {int(w): int(n) for w, n in ACCEPTED_RE.findall(out)}
  return [counts.get(w, 0) for w in range(workers)]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--grelay", default=os.path.join(HERE, "..", "build", "grelay"))
  parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
  parser.add_argument("--conns", type=int, nargs="+", default=[16, 64, 256])
  parser.add_argument("--trials", type=int, default=5)
  args = parser.parse_args()
  print("| workers | connections | accept | per-worker counts (each trial) | "
        "busiest worker / fair share (worst trial) |")
  print("|---|---|---|---|---|")
  for workers in args.workers:
    for conns in args.conns:
      for mode in ("reuseport", "handoff"):
        trials = [run_once(args.grelay, mode, workers, conns) for _ in range(args.trials)]
        fair = conns / workers
        worst = max(max(t) for t in trials) / fair
        shown = " ".join("/".join(str(c) for c in t) for t in trials)
        print("| %d | %d | %s | %s | %.2fx |" % (workers, conns, mode, shown, worst))


if __name__ == "__main__":
  main()
