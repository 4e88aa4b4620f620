"""A local DNS server whose records a test changes (dnsmasq), and a load of unary calls that
counts where they went: for the tests of DNS discovery."""

import collections
import os
import shutil
import signal
import subprocess
import threading
import time

import grpc

import support

NAME = "svc.grelay.test"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


class Dnsmasq:
  """dnsmasq on 127.0.0.1:PORT serving only the records of a hosts file (for |name|)."""

  def __init__(self, workdir, name=NAME):
    self.name = name
    self.hosts_path = os.path.join(workdir, "dns-hosts-%d" % time.monotonic_ns())
    self.set_records([])
    self.port = support.free_port()
    args = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
            "--addn-hosts=" + self.hosts_path, "--listen-address=127.0.0.1",
            "--bind-interfaces", "--port=%d" % self.port, "--pid-file=", "--local-ttl=0",
            "--log-facility=-"]
    if os.geteuid() == 0:
      args.append("--user=root")
    self.log_path = os.path.join(workdir, "dnsmasq-%d.log" % self.port)
    self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                 stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
    ok = support.wait_until(lambda: self.proc.poll() is not None or "started" in self.log(), 5)
    if self.proc.poll() is not None or not ok:
      raise RuntimeError("dnsmasq did not start:\n" + self.log())
    self.address = "127.0.0.1:%d" % self.port

  def log(self):
    with open(self.log_path) as f:
      return f.read()

  def set_records(self, ips):
    """Replaces the A records of NAME (and re-reads them when running)."""
    tmp = self.hosts_path + ".tmp"
    with open(tmp, "w") as f:
      for ip in ips:
        f.write("%s %s\n" % (ip, self.name))
    os.replace(tmp, self.hosts_path)
    if getattr(self, "proc", None):
      self.proc.send_signal(signal.SIGHUP)

  def stop(self):
    support.end_process(self.proc)



class Load:
  """Unary calls from a few threads until stopped; counts answers per backend and failures."""

  def __init__(self, address, threads=4):
    self.counts = collections.Counter()
    self.failures = []
    self.lock_ = threading.Lock()
    self.stop_ = threading.Event()
    self.threads_ = [threading.Thread(target=self._run, args=(address,)) for _ in range(threads)]
    for t in self.threads_:
      t.start()

  def _run(self, address):
    ch = support.channel(address)
    try:
      while not self.stop_.is_set():
        try:
          _, call = support.unary(ch).with_call(b"load", timeout=support.GUARD_SECONDS)
          name = support.metadata_dict(call.trailing_metadata())["x-backend-name"]
          with self.lock_:
            self.counts[name] += 1
        except grpc.RpcError as e:
          with self.lock_:
            self.failures.append("%s: %s" % (e.code(), e.details()))
    finally:
      ch.close()

  def count(self, name):
    with self.lock_:
      return self.counts[name]

  def stop(self):
    self.stop_.set()
    for t in self.threads_:
      t.join()
