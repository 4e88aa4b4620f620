#!/usr/bin/python3
"""Benchmarks grelay against direct calls and nghttpx with h2load, on one echo backend.

    /usr/bin/python3 bench/bench.py [--build build] [--duration 10] [--rounds 3]
                                    [--targets direct,grelay,nghttpx] [--workload unary100]

For each workload the targets run interleaved in rounds (the order rotates each round),
each run preceded by a short unmeasured warm-up; the table shows medians over the rounds.
Proxy CPU per call is utime+stime of the proxy's whole process tree over the measured run
divided by the calls h2load completed. The table goes to stdout and to
bench/results/latest.md with the machine, versions and the exact command. See
bench/README.md for what the numbers mean and the fairness choices.
"""

import argparse
import dataclasses
import datetime
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ALL_TARGETS = ("direct", "grelay", "nghttpx")


@dataclasses.dataclass(frozen=True)
class Workload:
    """One h2load load shape. Every call's request body is |messages_per_call| gRPC
    messages of |message_size| bytes, which the echo backend returns unchanged."""

    name: str
    description: str
    message_size: int
    messages_per_call: int
    clients: int  # h2load -c: connections
    streams: int  # h2load -m: concurrent calls per connection
    path: str = "/bench.Echo/Unary"

    def body(self):
        payload = bytes(i % 251 for i in range(self.message_size))
        message = b"\x00" + self.message_size.to_bytes(4, "big") + payload
        return message * self.messages_per_call


WORKLOADS = {
    w.name: w
    for w in (
        Workload("unary100", "unary call, 100 B message, 16 connections x 32 streams",
                 100, 1, 16, 32),
        Workload("unary64k", "unary call, 64 KiB message, 16 connections x 4 streams",
                 65536, 1, 16, 4),
        Workload("bidi100x100",
                 "one streaming call carrying 100 messages of 100 B each way, "
                 "16 connections x 8 streams", 100, 100, 16, 8, "/bench.Echo/Stream"),
    )
}


# ---------------------------------------------------------------------------------------
# Processes


class Child:
    """A started process whose stdout and stderr are drained by threads, so a chatty
    child never blocks on a full pipe; the last lines are kept for error messages."""

    def __init__(self, name, argv, cpus=None, stop_signal=signal.SIGTERM):
        self.name = name
        self.stop_signal = stop_signal
        self.argv = (["taskset", "-c", cpus] if cpus else []) + list(argv)
        self.lines = []
        self.cond = threading.Condition()
        # taskset execs the program, so the pid is the program's own.
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, errors="replace")
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._drain, args=(stream,), daemon=True).start()

    def _drain(self, stream):
        for line in stream:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                del self.lines[:-200]
                self.cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def wait_for_line(self, pattern, timeout=10.0):
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    match = regex.search(line)
                    if match:
                        return match
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                       f"{self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{self.name}: no line matching {pattern!r} after "
                                       f"{timeout}s: {self.tail()}")
                self.cond.wait(min(left, 0.1))

    def wait_for_port(self, port, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.tail()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: port {port} not accepting after "
                                       f"{timeout}s: {self.tail()}")
                time.sleep(0.05)

    def tail(self, count=10):
        with self.cond:
            return " | ".join(self.lines[-count:]) or "(no output)"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snapshot():
    """{pid: (parent pid, name, CPU ticks)} for every process: utime + stime, all threads
    included (fields 2, 4, 14 and 15 of proc(5))."""
    processes = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                head, tail = f.read().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        processes[int(entry)] = (int(fields[1]), head.split("(", 1)[1],
                                 int(fields[11]) + int(fields[12]))
    return processes


def process_tree(root, processes=None):
    """|root| and all its descendants (a proxy may fork worker processes)."""
    children = {}
    for pid, (ppid, _, _) in (processes or snapshot()).items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_delta(before, after, pids):
    """CPU seconds |pids| used between two snapshots."""
    ticks = sum(after[p][2] - before.get(p, (0, "", 0))[2] for p in pids if p in after)
    return ticks / CLOCK_TICKS


def system_cpu():
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS


def children_cpu():
    """CPU seconds of this script's reaped children (h2load)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib(root):
    """Sum over the process tree of each process's peak resident set (VmHWM)."""
    kib = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        kib += int(line.split()[1])
        except OSError:
            continue
    return kib / 1024


def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else f"(no output, exit {out.returncode})"
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"(unavailable: {error})"


# ---------------------------------------------------------------------------------------
# Targets: each is something h2load calls; a proxy target also has a process to measure.


class Target:
    name = ""
    process = None  # The Child whose CPU and memory are measured; None for direct.
    port = 0
    skipped = None  # Why the target cannot run, or None.
    command = ""  # How it was started, for the report.
    config_text = ""

    def start(self, backend_port, cpus):
        raise NotImplementedError

    def stop(self):
        if self.process:
            self.process.stop()


class Direct(Target):
    name = "direct"

    def start(self, backend_port, cpus):
        self.port = backend_port
        self.command = "(h2load straight to the echo backend)"


class Grelay(Target):
    name = "grelay"

    def __init__(self, binary, workdir):
        self.binary = binary
        self.workdir = workdir
        if binary is None:
            self.skipped = "no grelay binary in the build directory (see --grelay)"

    def start(self, backend_port, cpus):
        self.port = free_port()
        self.config_text = (
            "workers = 1\n\n"
            "[[listener]]\n"
            f'address = "127.0.0.1:{self.port}"\n\n'
            "[[route]]\n"
            "none = true\n"
            'cluster = "echo"\n\n'
            "[[cluster]]\n"
            'name = "echo"\n'
            f'endpoints = ["127.0.0.1:{backend_port}"]\n')
        config = Path(self.workdir) / "grelay.toml"
        config.write_text(self.config_text)
        argv = [str(self.binary), "-c", str(config)]
        self.process = Child("grelay", argv, cpus)
        self.command = shlex.join(self.process.argv)
        self.process.wait_for_line(r"listening on \S+:\d+")
        self.process.wait_for_port(self.port)


class Nghttpx(Target):
    name = "nghttpx"

    def __init__(self):
        self.binary = shutil.which("nghttpx")
        if self.binary is None:
            self.skipped = "nghttpx not on PATH (Debian package nghttp2-proxy)"

    def start(self, backend_port, cpus):
        self.port = free_port()
        argv = [
            self.binary,
            "--conf=/dev/null",  # Do not read /etc/nghttpx/nghttpx.conf.
            f"--frontend=127.0.0.1,{self.port};no-tls",
            f"--backend=127.0.0.1,{backend_port};;proto=h2",
            "--workers=1",
            "--no-ocsp",
            "--errorlog-file=/dev/null",
            "--accesslog-file=/dev/null",
            # Forward calls unchanged, as grelay does: no Via, X-Forwarded-Proto or Server.
            "--no-via",
            "--no-add-x-forwarded-proto",
            "--no-server-rewrite",
            # The same generous windows as the echo backend, so that big messages measure
            # the relay rather than its default 64 KiB windows.
            "--frontend-http2-window-size=1048576",
            "--frontend-http2-connection-window-size=16777216",
            "--backend-http2-window-size=1048576",
            "--backend-http2-connection-window-size=16777216",
        ]
        # SIGQUIT is nghttpx's graceful stop: its master then reaps the worker process,
        # which SIGTERM leaves behind as a zombie.
        self.process = Child("nghttpx", argv, cpus, stop_signal=signal.SIGQUIT)
        self.command = shlex.join(self.process.argv)
        self.process.wait_for_port(self.port)


# ---------------------------------------------------------------------------------------
# h2load


H2LOAD_REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                             r"(\d+) failed, (\d+) errored, (\d+) timeout")
H2LOAD_FINISHED = re.compile(r"finished in ([\d.]+)(s|ms|us)")
H2LOAD_TRAFFIC = re.compile(r"traffic: .*\((\d+)\) data")


def h2load_argv(workload, port, body_file, seconds, requests, threads):
    argv = ["h2load", "-d", body_file, "-H", "content-type: application/grpc",
            "-H", "te: trailers", "-c", str(workload.clients), "-m", str(workload.streams),
            "-t", str(threads)]
    argv += ["-n", str(requests)] if requests else ["-D", str(seconds)]
    return argv + [f"http://127.0.0.1:{port}{workload.path}"]


def run_h2load(argv, cpus, timeout):
    full = (["taskset", "-c", cpus] if cpus else []) + argv
    out = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    text = out.stdout
    requests = H2LOAD_REQUESTS.search(text)
    finished = H2LOAD_FINISHED.search(text)
    traffic = H2LOAD_TRAFFIC.search(text)
    if out.returncode != 0 or not (requests and finished and traffic):
        raise RuntimeError(f"h2load failed (exit {out.returncode}): "
                           f"{(out.stderr or text).strip()[-500:]}")
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6}[finished.group(2)]
    return {
        "elapsed": float(finished.group(1)) * scale,
        "succeeded": int(requests.group(4)),
        "failed": int(requests.group(5)),
        "errored": int(requests.group(6)),
        "timeout": int(requests.group(7)),
        "data_bytes": int(traffic.group(1)),
    }


def measure(target, backend, workload, body_file, args, pins):
    """One measured h2load run against |target|, after an unmeasured warm-up."""
    timeout = (args.duration or 0) + 120
    if args.warmup > 0:
        run_h2load(h2load_argv(workload, target.port, body_file, args.warmup, None,
                               args.h2load_threads), pins["load"], timeout)
    argv = h2load_argv(workload, target.port, body_file, args.duration, args.requests,
                       args.h2load_threads)
    before = snapshot()
    system_before, steal_before = system_cpu()
    h2load_before = children_cpu()
    result = run_h2load(argv, pins["load"], timeout)
    system_after, steal_after = system_cpu()
    h2load_cpu = children_cpu() - h2load_before
    after = snapshot()
    proxy_pids = process_tree(target.process.pid, after) if target.process else []
    backend_pids = process_tree(backend.pid, after)
    result["proxy_cpu"] = cpu_delta(before, after, proxy_pids) if target.process else None
    result["backend_cpu"] = cpu_delta(before, after, backend_pids)
    # What the machine did besides the proxy, the backend and h2load: other tenants,
    # builds, this script. It should be near zero for numbers worth comparing.
    ours = cpu_delta(before, after, proxy_pids + backend_pids) + h2load_cpu
    elapsed = result["elapsed"]
    result["other_load"] = max(0.0, system_after - system_before - ours) / elapsed * 100
    result["steal"] = (steal_after - steal_before) / elapsed * 100
    mine = set(proxy_pids + backend_pids)
    names = {p: ("bench.py" if p == os.getpid() else after[p][1]) for p in after}
    others = sorted(((cpu_delta(before, after, [p]), names[p]) for p in after
                     if p not in mine), reverse=True)
    result["top_other"] = ", ".join(f"{name} {seconds / elapsed * 100:.0f}%"
                                    for seconds, name in others[:3]
                                    if seconds / elapsed >= 0.02)
    result["target"] = target.name
    result["h2load"] = shlex.join(argv).replace(body_file, "BODY").replace(
        f":{target.port}/", ":PORT/")
    return result


def measure_or_explain(target, backend, workload, body_file, args, pins):
    """measure(), turning a failure into an exit that says which process misbehaved."""
    try:
        return measure(target, backend, workload, body_file, args, pins)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        for child in ([target.process] if target.process else []) + [backend]:
            if child.proc.poll() is not None:
                error = f"{error}\n{child.name} exited with {child.proc.returncode}: " \
                        f"{child.tail()}"
        sys.exit(f"bench: {workload.name} against {target.name} failed: {error}")


# ---------------------------------------------------------------------------------------
# Report


def fmt(value, digits=1):
    return "—" if value is None else f"{value:,.{digits}f}"


def summarize(target, runs, workload):
    calls = [r["succeeded"] / r["elapsed"] for r in runs]
    summary = {
        "target": target.name,
        "calls_s": statistics.median(calls),
        "min": min(calls),
        "max": max(calls),
        "failed": sum(r["failed"] for r in runs),
        "errored": sum(r["errored"] + r["timeout"] for r in runs),
        "body_per_call": statistics.median(r["data_bytes"] / max(r["succeeded"], 1)
                                           for r in runs),
        "backend_us": statistics.median(r["backend_cpu"] / max(r["succeeded"], 1) * 1e6
                                        for r in runs),
        "proxy_us": None,
        "proxy_load": None,
        "rss": None,
    }
    if target.process:
        summary["proxy_us"] = statistics.median(
            r["proxy_cpu"] / max(r["succeeded"], 1) * 1e6 for r in runs)
        summary["proxy_load"] = statistics.median(r["proxy_cpu"] / r["elapsed"] * 100
                                                  for r in runs)
        summary["rss"] = peak_rss_mib(target.process.pid)
    # A timed run ends with calls in flight whose partial responses h2load still counts,
    # so allow 1%; a relay answering without the echoed body is far off.
    expected = len(workload.body())
    summary["body_ok"] = abs(summary["body_per_call"] - expected) <= max(1, expected / 100)
    return summary


def run_line(r):
    proxy = (f"proxy {r['proxy_cpu'] / max(r['succeeded'], 1) * 1e6:5.2f} us/call "
             f"{r['proxy_cpu'] / r['elapsed'] * 100:3.0f}% core" if r["proxy_cpu"] is not None
             else " " * 29)
    return (f"{r['target']:8} {r['succeeded'] / r['elapsed']:10,.0f} calls/s  {proxy}  "
            f"failed {r['failed']} errored {r['errored'] + r['timeout']}  "
            f"other load {r['other_load']:3.0f}% steal {r['steal']:.0f}%"
            + (f" ({r['top_other']})" if r["top_other"] else "")
            + (f" [attempt {r['attempt']}]" if r.get("attempt", 1) > 1 else ""))


def load_note(runs):
    """One line on how busy the machine was with other work while we measured."""
    flat = [r for target_runs in runs.values() for r in target_runs]
    other = [r["other_load"] for r in flat]
    steal = [r["steal"] for r in flat]
    note = (f"Other load during the measured runs (CPU used by anything but the proxy, the "
            f"backend and h2load): median {statistics.median(other):.0f}% of a core, "
            f"max {max(other):.0f}%; hypervisor steal max {max(steal):.0f}%.")
    if max(other) > 25:
        note += " **The machine was not quiet: treat calls/s with caution.**"
    return note


def table(workload, summaries):
    reference = next((s for s in summaries if s["target"] == "nghttpx"), None)
    streaming = workload.messages_per_call > 1
    head = ["target", "calls/s (median)", "min–max"]
    head += ["messages/s"] if streaming else []
    head += ["vs nghttpx", "proxy CPU µs/call", "proxy CPU % of a core", "proxy peak RSS MiB",
             "backend CPU µs/call", "failed", "errored", "response B/call"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        cells = [s["target"], fmt(s["calls_s"], 0), f"{fmt(s['min'], 0)}–{fmt(s['max'], 0)}"]
        if streaming:
            cells.append(fmt(s["calls_s"] * workload.messages_per_call, 0))
        ratio = s["calls_s"] / reference["calls_s"] if reference else None
        body = fmt(s["body_per_call"], 0) + ("" if s["body_ok"] else " (expected "
                                             f"{len(workload.body())})")
        cells += [fmt(ratio, 2) + ("x" if ratio else ""), fmt(s["proxy_us"], 2),
                  fmt(s["proxy_load"], 0), fmt(s["rss"], 1), fmt(s["backend_us"], 2),
                  str(s["failed"]), str(s["errored"]), body]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def machine_info():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), {model}, "
            f"Linux {platform.release()}")


def pin_plan(enabled):
    """Which CPUs each party runs on: the proxy alone on one CPU, the load generator
    and the backend on the others (sharing one when there are only two)."""
    cpus = sorted(os.sched_getaffinity(0))
    none = {"proxy": None, "backend": None, "load": None}
    if not enabled or len(cpus) < 2 or shutil.which("taskset") is None:
        return none, "no CPU pinning"
    if len(cpus) == 2:
        pins = {"proxy": str(cpus[0]), "backend": str(cpus[1]), "load": str(cpus[1])}
        return pins, (f"proxy on CPU {cpus[0]}; echo backend and h2load share CPU {cpus[1]}")
    load = ",".join(str(c) for c in cpus[2:])
    pins = {"proxy": str(cpus[0]), "backend": str(cpus[1]), "load": load}
    return pins, f"proxy on CPU {cpus[0]}; echo backend on CPU {cpus[1]}; h2load on CPUs {load}"


# ---------------------------------------------------------------------------------------


def find_grelay(args, build):
    candidates = [Path(args.grelay)] if args.grelay else [build / "grelay",
                                                         build / "src" / "app" / "grelay"]
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build",
                        help="meson build directory, relative to the repository (default build)")
    parser.add_argument("--grelay", help="grelay binary (default: BUILD/grelay)")
    parser.add_argument("--backend", help="echo backend binary (default: BUILD/bench/echo_backend)")
    parser.add_argument("--targets", default=",".join(ALL_TARGETS),
                        help="comma-separated subset of " + ",".join(ALL_TARGETS))
    parser.add_argument("--workload", default="unary100",
                        help="comma-separated: " + ", ".join(
                            f"{w.name} ({w.description})" for w in WORKLOADS.values()))
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--requests", type=int,
                        help="calls per measured run (h2load -n) instead of --duration")
    parser.add_argument("--warmup", type=int, default=2,
                        help="seconds of unmeasured load before each run (0: none)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--max-other-load", type=float, default=25,
                        help="repeat a run during which other processes used more than this "
                             "percentage of a core (default 25)")
    parser.add_argument("--retries", type=int, default=2,
                        help="how often a disturbed run is repeated before it is kept (default 2)")
    parser.add_argument("--h2load-threads", type=int, default=1, help="h2load -t")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "latest.md"),
                        help="Markdown report path (default bench/results/latest.md)")
    args = parser.parse_args()
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.workloads = [w.strip() for w in args.workload.split(",") if w.strip()]
    for name in args.targets:
        if name not in ALL_TARGETS:
            parser.error(f"unknown target {name!r}; choose from {', '.join(ALL_TARGETS)}")
    for name in args.workloads:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0 or args.retries < 0:
        parser.error("--rounds and --duration must be positive, --warmup and --retries "
                     "not negative")
    if args.requests is not None and args.requests < 1:
        parser.error("--requests must be positive")
    return args


def main():
    args = parse_args()
    build = Path(args.build)
    if not build.is_absolute():
        build = REPO / build
    backend_binary = Path(args.backend) if args.backend else build / "bench" / "echo_backend"
    if not backend_binary.is_file():
        sys.exit(f"bench: no echo backend at {backend_binary}; build it with ninja -C {build}")
    if shutil.which("h2load") is None:
        sys.exit("bench: h2load not on PATH (Debian package nghttp2-client)")
    pins, pin_text = pin_plan(not args.no_pin)
    grelay_binary = find_grelay(args, build)
    command = shlex.join([sys.executable] + sys.argv)

    workdir = tempfile.TemporaryDirectory(prefix="grelay-bench-")
    makers = {"direct": Direct, "grelay": lambda: Grelay(grelay_binary, workdir.name),
              "nghttpx": Nghttpx}
    targets = [makers[name]() for name in args.targets]
    skipped = [t for t in targets if t.skipped]
    targets = [t for t in targets if not t.skipped]
    for t in skipped:
        print(f"bench: skipping {t.name}: {t.skipped}", file=sys.stderr)
    if not targets:
        sys.exit("bench: no target can run")

    versions = {"h2load": first_line(["h2load", "--version"])}
    if any(t.name == "nghttpx" for t in targets):
        versions["nghttpx"] = first_line(["nghttpx", "--version"])
    if any(t.name == "grelay" for t in targets):
        versions["grelay"] = first_line([str(grelay_binary), "--version"])

    backend = Child("echo_backend", [str(backend_binary), "--port", "0", "--threads", "1"],
                    pins["backend"])
    sections = []
    try:
        backend_port = int(backend.wait_for_line(r"listening on \S+:(\d+)").group(1))
        for workload_name in args.workloads:
            workload = WORKLOADS[workload_name]
            body_file = Path(workdir.name) / f"{workload.name}.bin"
            body_file.write_bytes(workload.body())
            # Fresh proxies for each workload, so peak RSS belongs to this workload.
            for target in targets:
                target.start(backend_port, pins["proxy"])
            runs = {t.name: [] for t in targets}
            for round_index in range(args.rounds):
                # Rotate the order so no target always runs first or last.
                shift = round_index % len(targets)
                for target in targets[shift:] + targets[:shift]:
                    # A run disturbed by other work on the machine is repeated.
                    for attempt in range(args.retries + 1):
                        result = measure_or_explain(target, backend, workload,
                                                    str(body_file), args, pins)
                        result["attempt"] = attempt + 1
                        if result["other_load"] <= args.max_other_load:
                            break
                        if attempt < args.retries:
                            print(f"  {workload.name} round {round_index + 1}/{args.rounds} "
                                  f"{run_line(result)} -> other load, repeating",
                                  file=sys.stderr, flush=True)
                    result["round"] = round_index + 1
                    runs[target.name].append(result)
                    print(f"  {workload.name} round {round_index + 1}/{args.rounds} "
                          f"{run_line(result)}", file=sys.stderr, flush=True)
            summaries = [summarize(t, runs[t.name], workload) for t in targets]
            for target in targets:
                target.stop()
            text = table(workload, summaries) + "\n\n" + load_note(runs)
            print(f"\n{workload.name}: {workload.description}\n\n{text}\n", flush=True)
            sections.append((workload, text, runs))
    except RuntimeError as error:  # A process that did not start.
        sys.exit(f"bench: {error}")
    finally:
        for target in targets:
            target.stop()
        backend.stop()
        workdir.cleanup()

    write_report(args, command, pin_text, versions, targets, skipped, sections)


def write_report(args, command, pin_text, versions, targets, skipped, sections):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    length = (f"{args.requests} calls" if args.requests else f"{args.duration} s") + \
        f" per run after {args.warmup} s warm-up, {args.rounds} rounds, median shown; " \
        f"runs with other load above {args.max_other_load:.0f}% repeated up to " \
        f"{args.retries} times"
    lines = [
        "# grelay benchmark",
        "",
        f"- date: {now}",
        f"- machine: {machine_info()}",
        f"- pinning: {pin_text}",
        f"- runs: {length}",
        f"- command: `{command}`",
    ]
    lines += [f"- {name}: {version}" for name, version in versions.items()]
    lines += [f"- {t.name}: skipped, {t.skipped}" for t in skipped]
    for workload, text, runs in sections:
        all_runs = sorted((r for target_runs in runs.values() for r in target_runs),
                          key=lambda r: r["round"])
        lines += ["", f"## {workload.name}", "", workload.description + ".", "", text, "",
                  f"h2load (BODY: {len(workload.body())} bytes, the gRPC-framed request): "
                  f"`{all_runs[0]['h2load']}`", "", "Every kept run, by round (a run repeated for other load shows its attempt):",
                  "", "```"]
        lines += [f"round {r['round']} {run_line(r)}" for r in all_runs]
        lines += ["```"]
    lines += ["", "## Targets", ""]
    for t in targets:
        lines.append(f"- {t.name}: `{t.command}`")
        if t.config_text:
            lines += ["", "  ```toml"] + ["  " + l if l else "" for l in
                                          t.config_text.rstrip().splitlines()] + ["  ```", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)
    print(f"report written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
