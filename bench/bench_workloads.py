"""The workloads of bench.py. Each runs one load shape against one target (run), and turns
a target's runs into one summary (summarize); bench_report.py renders the summaries."""

import copy
import dataclasses
import json
import signal
import statistics
import subprocess
import time

from bench_load import (framed_body, h2load_argv, measure, percentiles, probe_call,
                        read_h2load_log, read_h2load_log_times, run_h2load, run_load_client,
                        shown_argv)
from bench_procs import Child, fd_count, memory_map, peak_rss_mib, rss_kib

# Who each kind of workload runs against (those requested and not skipped).
STANDARD = ("direct", "grelay", "nghttpx", "haproxy", "nginx", "envoy")
# unary100 also runs the --baseline grelay binary, when one is given, and the embedded relay
# (examples/embed).
UNARY100 = STANDARD + ("grelay-baseline", "grelay-embedded")
# The bulk workloads run the --baseline binary too: a change on the data path shows its CPU
# per MiB and its counts against the build before it, in the same rounds.
BULK = STANDARD + ("grelay-baseline",)
PROXIES = ("grelay", "nghttpx", "haproxy", "nginx", "envoy")
SCALING = ("direct", "grelay", "grelay-w2", "nghttpx", "nghttpx-w2")
TLS = ("grelay-tls", "nghttpx-tls")
NO_PINS = {"proxy": None, "backend": None, "load": None}
MIB = 1024 * 1024


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


class Workload:
    name = ""
    description = ""
    tool = ""  # Which program generates the load, for the report.
    targets = STANDARD
    # "split": the proxy alone on one CPU, backend and load on the other(s); "shared":
    # everything on the load CPU; "none": nothing pinned.
    pinning = "split"
    fresh_per_run = False  # Start a fresh proxy for every run (memory measurements).
    retry_on_noise = True  # Repeat runs the rest of the machine disturbed.

    def prepare(self, ctx):
        pass

    def pins(self, ctx):
        if self.pinning == "none" or ctx.pins["load"] is None:
            return NO_PINS
        if self.pinning == "shared":
            one = ctx.pins["backend"]
            return {"proxy": one, "backend": one, "load": one}
        return ctx.pins

    def pinning_text(self, ctx):
        pins = self.pins(ctx)
        if pins["proxy"] is None:
            return "nothing pinned"
        if self.pinning == "shared":
            return f"proxy, echo backend and load client all on CPU {pins['proxy']}"
        return (f"proxy on CPU {pins['proxy']}, echo backend on CPU {pins['backend']}, "
                f"load client on CPU {pins['load']}")

    def run(self, ctx, target):
        raise NotImplementedError

    def summarize(self, target, runs):
        raise NotImplementedError

    def run_line(self, r):
        raise NotImplementedError

    def command(self, runs):
        """How the load was generated, from the first run that recorded it."""
        return next((r["command"] for rs in runs.values() for r in rs if "command" in r), "")


def cpu_fields(runs, per):
    """Median proxy CPU per unit of |per(run)| and as % of a core, plus the backend's."""
    def each(key, scale):
        return median([r[key] / max(per(r), 1e-9) * scale for r in runs
                       if r.get(key) is not None])
    return {
        "proxy_us": each("proxy_cpu", 1e6),
        "proxy_load": median([r["proxy_cpu"] / r["elapsed"] * 100 for r in runs
                              if r.get("proxy_cpu") is not None]),
        "backend_us": each("backend_cpu", 1e6),
        "backend_load": median([r["backend_cpu"] / r["elapsed"] * 100 for r in runs]),
        "load_load": median([r["load_cpu"] / r["elapsed"] * 100 for r in runs]),
    }


def cpu_text(r, per, unit):
    if r.get("proxy_cpu") is None:
        return " " * 30
    return (f"proxy {r['proxy_cpu'] / max(per, 1e-9) * 1e6:7.2f} us/{unit} "
            f"{r['proxy_cpu'] / r['elapsed'] * 100:3.0f}% core")


def noise_text(r):
    return (f"other load {r['other_load']:3.0f}% steal {r['steal']:.0f}%"
            + (f" ({r['top_other']})" if r.get("top_other") else "")
            + (f" [attempt {r['attempt']}]" if r.get("attempt", 1) > 1 else ""))


class H2loadThroughput(Workload):
    """Fixed h2load shape for --duration seconds; calls/s or echoed bytes/s."""

    tool = "h2load"
    # Set on a bulk mode's copy (variant()): a fixed number of calls instead of --duration.
    requests = None
    mode = None

    def __init__(self, name, description, message_size, messages, clients, streams, unit,
                 path="/bench.Echo/Unary", threads=1, targets=None, bulk=False):
        if targets:
            self.targets = targets
        # A bulk workload (bytes, not calls, are the point) gets the counting pass and the
        # bulk modes of bench.py.
        self.bulk = bulk
        self.name = name
        self.description = description
        self.message_size = message_size
        self.messages = messages
        self.clients = clients
        self.streams = streams
        self.unit = unit  # "calls" or "bytes": what the headline number counts.
        self.path = path
        self.threads = threads
        self.body_size = len(framed_body(message_size, messages))

    def prepare(self, ctx):
        self.body_file = ctx.workdir / f"{self.name}.bin"
        self.body_file.write_bytes(framed_body(self.message_size, self.messages))

    def argv(self, port, seconds, scheme="http", requests=None):
        """h2load for |seconds|, or for |requests| calls when given."""
        return h2load_argv(port, self.body_file, self.path, self.clients, self.streams,
                           self.threads, seconds=seconds, requests=requests, scheme=scheme)

    def requests_for(self, mib):
        """Calls that echo about |mib| MiB, a whole number of rounds of the workload's
        connections x streams (so no stream idles at the end for want of a call)."""
        per_round = self.clients * self.streams
        calls = max(1, round(mib * MIB / self.body_size))
        return max(per_round, (calls + per_round - 1) // per_round * per_round)

    def variant(self, mode, requests):
        """A copy of this workload run in bulk |mode| (a BulkMode): with |requests| calls
        instead of --duration when the mode counts, with nothing pinned when it does not pin."""
        variant = copy.copy(self)
        variant.mode = mode
        variant.requests = requests if mode.count else None
        variant.pinning = "split" if mode.pinned else "none"
        return variant

    def run(self, ctx, target):
        pins = self.pins(ctx)
        # A fixed count takes as long as the target needs: allow a slow one plenty.
        timeout = ctx.args.duration + ctx.args.warmup + (120 if self.requests is None else 900)
        if ctx.args.warmup > 0:
            run_h2load(self.argv(target.port, ctx.args.warmup, target.scheme), pins["load"],
                       timeout)
        argv = self.argv(target.port, ctx.args.duration, target.scheme, requests=self.requests)
        result = measure(target, ctx.backend,
                         lambda: run_h2load(argv, pins["load"], timeout))
        result["command"] = shown_argv(argv, target.port, [(self.body_file, "BODY")])
        if not self.echoed(result):
            result["problem"] = "calls not echoed: " + probe_call(target.port, self.body_file,
                                                                 self.path, target.scheme)
        return result

    def echoed(self, r):
        """Every completed call came back with its request body: a relay answering with a
        gRPC error has no body. Calls in flight when a timed run stops may add partial
        bodies, up to one per stream."""
        if r["succeeded"] == 0 or r["non_2xx"]:
            return False
        low = r["succeeded"] * self.body_size * 0.99
        high = (r["succeeded"] + self.clients * self.streams) * self.body_size * 1.01
        return low <= r["data_bytes"] <= high

    def summarize(self, target, runs):
        calls = [r["succeeded"] / r["elapsed"] for r in runs]
        rates = [r["data_bytes"] / r["elapsed"] for r in runs]
        main = calls if self.unit == "calls" else rates
        summary = {
            "target": target.name,
            "value": statistics.median(main),
            "min": min(main),
            "max": max(main),
            "calls_s": statistics.median(calls),
            "bytes_s": statistics.median(rates),
            "failed": sum(r["failed"] for r in runs),
            "errored": sum(r["errored"] + r["timeout"] for r in runs),
            "body_per_call": statistics.median(r["data_bytes"] / max(r["succeeded"], 1)
                                               for r in runs),
            "body_ok": all(self.echoed(r) for r in runs),
            "problem": next((r["problem"] for r in runs if "problem" in r), None),
            "rss": peak_rss_mib(target.process.pid) if target.process else None,
        }
        summary.update(cpu_fields(runs, lambda r: r["succeeded"]))
        summary["proxy_us_mib"] = median([r["proxy_cpu"] / max(r["data_bytes"] / MIB, 1e-9)
                                          * 1e6 for r in runs if r.get("proxy_cpu")])
        return summary

    def run_line(self, r):
        rate = (f"{r['succeeded'] / r['elapsed']:10,.0f} calls/s" if self.unit == "calls" else
                f"{r['data_bytes'] / r['elapsed'] / MIB:8,.1f} MiB/s")
        return (f"{r['target']:10} {rate}  {cpu_text(r, r['succeeded'], 'call')}  "
                f"failed {r['failed']} errored {r['errored'] + r['timeout']}  {noise_text(r)}")


class Scaling(H2loadThroughput):
    """unary100 with 1 and 2 proxy workers, nothing pinned: every process may use both
    CPUs, so a second worker can only help if CPU is left over."""

    targets = SCALING
    pinning = "none"


class TlsThroughput(H2loadThroughput):
    """An h2load shape over TLS (h2 with ALPN) from the client; the backend stays h2c."""

    targets = TLS


class Latency(Workload):
    """One connection, one call at a time, for --duration seconds; per-call latency from
    h2load --log-file."""

    tool = "h2load --log-file"
    # With one call in flight only one process is runnable at a time, so sharing one CPU
    # costs nothing, and no hop has to wake an idle CPU (tens of µs on a VM).
    pinning = "shared"

    def __init__(self, name, description, message_size):
        self.name = name
        self.description = description
        self.message_size = message_size
        self.path = "/bench.Echo/Unary"

    def prepare(self, ctx):
        self.body_file = ctx.workdir / f"{self.name}.bin"
        self.body_file.write_bytes(framed_body(self.message_size, 1))

    def run(self, ctx, target):
        pins = self.pins(ctx)
        timeout = ctx.args.duration + ctx.args.warmup + 120
        if ctx.args.warmup > 0:
            run_h2load(h2load_argv(target.port, self.body_file, self.path, 1, 1,
                                   seconds=ctx.args.warmup), pins["load"], timeout)
        log = ctx.workdir / f"{self.name}-{target.name}.log"
        argv = h2load_argv(target.port, self.body_file, self.path, 1, 1,
                           seconds=ctx.args.duration, log_file=log)
        result = measure(target, ctx.backend, lambda: run_h2load(argv, pins["load"], timeout))
        durations = read_h2load_log(log)
        if not durations:
            raise RuntimeError("h2load logged no successful call: "
                               + probe_call(target.port, self.body_file, self.path))
        result["p50"], result["p99"], result["p999"] = percentiles(durations,
                                                                   (0.5, 0.99, 0.999))
        result["mean"] = statistics.fmean(durations)
        result["samples"] = len(durations)
        result["command"] = shown_argv(argv, target.port, [(self.body_file, "BODY"),
                                                           (log, "LOG")])
        return result

    def summarize(self, target, runs):
        summary = {"target": target.name,
                   "calls_s": median([r["succeeded"] / r["elapsed"] for r in runs]),
                   "samples": sum(r["samples"] for r in runs),
                   "failed": sum(r["failed"] for r in runs),
                   "errored": sum(r["errored"] + r["timeout"] for r in runs)}
        for key in ("p50", "p99", "p999", "mean"):
            summary[key] = median([r[key] for r in runs])
        summary.update(cpu_fields(runs, lambda r: r["succeeded"]))
        return summary

    def run_line(self, r):
        return (f"{r['target']:10} p50 {r['p50']:6.1f} us p99 {r['p99']:7.1f} us "
                f"p99.9 {r['p999']:7.1f} us  {r['succeeded'] / r['elapsed']:8,.0f} calls/s  "
                f"{cpu_text(r, r['succeeded'], 'call')}  {noise_text(r)}")


class PingPong(Latency):
    """One bidi stream; one message out, wait for its echo, repeat (load_client)."""

    tool = "load_client pingpong"

    def __init__(self, name, description, message_size):
        super().__init__(name, description, message_size)
        self.path = "/bench.Echo/Stream"

    def prepare(self, ctx):
        pass

    def argv(self, ctx, port, count, warmup):
        return [ctx.load_client, "pingpong", "--port", str(port), "--size",
                str(self.message_size), "--count", str(count), "--warmup", str(warmup)]

    def run(self, ctx, target):
        pins = self.pins(ctx)
        count = ctx.args.pingpong_count
        argv = self.argv(ctx, target.port, count, 1000)
        out = {}

        def load():
            out.update(run_load_client(argv, pins["load"], 600))
            return {"elapsed": out["elapsed_s"], "succeeded": out["count"], "failed": 0,
                    "errored": 0, "timeout": 0}

        result = measure(target, ctx.backend, load)
        for key in ("p50", "p99", "p999", "mean"):
            result[key] = out[f"{key}_us"]
        result["samples"] = out["count"]
        result["command"] = shown_argv([str(a) for a in argv], target.port,
                                       [(ctx.load_client, "load_client")])
        return result


class Bidi(Workload):
    """Long-lived bidi streams, each with messages in flight all the time (load_client)."""

    tool = "load_client bidi"

    def __init__(self, name, description, message_size, connections, streams, inflight):
        self.name = name
        self.description = description
        self.message_size = message_size
        self.connections = connections
        self.streams = streams
        self.inflight = inflight

    def argv(self, ctx, port, seconds):
        return [ctx.load_client, "bidi", "--port", str(port), "--connections",
                str(self.connections), "--streams", str(self.streams), "--size",
                str(self.message_size), "--inflight", str(self.inflight), "--seconds",
                str(seconds)]

    def run(self, ctx, target):
        pins = self.pins(ctx)
        timeout = ctx.args.duration + 120
        if ctx.args.warmup > 0:
            run_load_client(self.argv(ctx, target.port, ctx.args.warmup), pins["load"], timeout)
        argv = self.argv(ctx, target.port, ctx.args.duration)
        out = {}

        def load():
            out.update(run_load_client(argv, pins["load"], timeout))
            return {"elapsed": out["elapsed_s"], "messages": out["messages"],
                    "bytes": out["bytes"]}

        result = measure(target, ctx.backend, load)
        result["command"] = shown_argv([str(a) for a in argv], target.port,
                                       [(ctx.load_client, "load_client")])
        return result

    def summarize(self, target, runs):
        rates = [r["bytes"] / r["elapsed"] for r in runs]
        summary = {"target": target.name, "value": statistics.median(rates),
                   "min": min(rates), "max": max(rates), "bytes_s": statistics.median(rates),
                   "messages_s": median([r["messages"] / r["elapsed"] for r in runs]),
                   "rss": peak_rss_mib(target.process.pid) if target.process else None}
        summary.update(cpu_fields(runs, lambda r: r["messages"]))
        return summary

    def run_line(self, r):
        return (f"{r['target']:10} {r['bytes'] / r['elapsed'] / MIB:8,.1f} MiB/s "
                f"{r['messages'] / r['elapsed']:10,.0f} messages/s  "
                f"{cpu_text(r, r['messages'], 'msg')}  {noise_text(r)}")


class HeldMemory(Workload):
    """RSS a fresh proxy gains while load_client holds connections (and streams) open."""

    tool = "load_client hold"
    targets = PROXIES
    fresh_per_run = True
    retry_on_noise = False

    def __init__(self, name, description, connections, streams, unit):
        self.name = name
        self.description = description
        self.connections = connections
        self.streams = streams
        self.unit = unit  # "connection" or "stream": what the delta is divided by.

    def units(self):
        return self.connections * max(self.streams, 1) if self.unit == "stream" else \
            self.connections

    def prepare(self, ctx):
        self.warm_file = ctx.workdir / f"{self.name}-warm.bin"
        self.warm_file.write_bytes(framed_body(100, 1))

    def run(self, ctx, target):
        pins = self.pins(ctx)
        # A few calls first, so that the backend connection, buffers and pools exist before
        # the baseline and only what the held load costs is counted.
        run_h2load(h2load_argv(target.port, self.warm_file, "/bench.Echo/Unary", 1, 4,
                               requests=2000), pins["load"], 60)
        time.sleep(0.5)
        pid = target.process.pid
        before, map_before, fds_before = rss_kib(pid), memory_map(pid), fd_count(pid)
        argv = [ctx.load_client, "hold", "--port", str(target.port), "--connections",
                str(self.connections), "--streams", str(self.streams), "--size", "100"]
        client = Child("load_client", argv, pins["load"])
        try:
            client.wait_for_line(r'^\{"mode":"hold","connections"', timeout=180)
            # Let the proxy finish what the set-up started, then take the larger of two
            # samples.
            time.sleep(1.0)
            held = rss_kib(pid)
            time.sleep(0.5)
            held = max(held, rss_kib(pid))
            map_held, fds_held = memory_map(pid), fd_count(pid)
            # SIGTERM: load_client reports what it lost while holding, then exits.
            client.stop()
            released = json.loads(client.wait_for_line(r'^\{.*"released".*\}$',
                                                       timeout=5).group(0))
        finally:
            client.stop()
        if not target.alive():
            raise RuntimeError(f"{target.name} exited while the load was held: "
                               f"{target.process.tail()}")
        delta = held - before
        return {
            "target": target.name,
            "before_kib": before,
            "held_kib": held,
            "delta_kib": delta,
            "per_unit": delta * 1024 / self.units(),
            "map_delta": {k: map_held[k] - map_before.get(k, 0) for k in map_held},
            "fds": fds_held - fds_before,
            "lost": (f"lost {released['lost_streams']} streams, "
                     f"{released['lost_connections']} connections while held"),
            "command": shown_argv([str(a) for a in argv], target.port,
                                  [(ctx.load_client, "load_client")]),
        }

    def summarize(self, target, runs):
        return {
            "target": target.name,
            "value": median([r["per_unit"] for r in runs]),
            "min": min(r["per_unit"] for r in runs),
            "max": max(r["per_unit"] for r in runs),
            "before_kib": median([r["before_kib"] for r in runs]),
            "held_kib": median([r["held_kib"] for r in runs]),
            "delta_kib": median([r["delta_kib"] for r in runs]),
            "map_delta": {k: median([r["map_delta"][k] for r in runs])
                          for k in runs[0]["map_delta"]},
            "fds": median([r["fds"] for r in runs]),
            "lost": "; ".join(sorted({r["lost"] for r in runs})),
        }

    def run_line(self, r):
        m = r["map_delta"]
        return (f"{r['target']:10} {r['per_unit']:9,.0f} B/{self.unit}  RSS "
                f"{r['before_kib'] / 1024:6.1f} -> {r['held_kib'] / 1024:6.1f} MiB  "
                f"(heap {m['heap']:+,} KiB, anon {m['anon']:+,} KiB, file {m['file']:+,} KiB)"
                f"  fds {r['fds']:+,}  {r['lost']}")


def backend_counters(backend):
    """The echo backend's counters so far, which it prints on SIGUSR1: "streams" (requests
    begun), "resets" (RST_STREAM frames received), "data_frames_in", "data_bytes_in" (DATA
    frames and payload bytes received), "data_frames_out", "data_bytes_out" (sent)."""
    start = backend.line_count()
    backend.proc.send_signal(signal.SIGUSR1)
    match = backend.wait_for_line(r"^streams \d+ resets \d+( \w+ \d+)*$", timeout=5,
                                  start=start)
    words = match.group(0).split()
    return {key: int(value) for key, value in zip(words[::2], words[1::2])}


class UnderAttack(Workload):
    """unary100's legitimate load against a fresh proxy, first alone, then while
    rapid_reset attacks the same proxy: how much of its legitimate throughput and latency
    a relay keeps under a spread rapid-reset attack."""

    tool = "h2load --log-file (legitimate calls) and rapid_reset (the attack)"
    targets = PROXIES
    # A fresh proxy for each run: what an attack leaves behind (a backlog, a stalled
    # loop, grown memory) must not spill into the next target's run on the same CPU.
    fresh_per_run = True
    ramp = 1.0  # Seconds of attack before the measured run: every connection has burst.

    def __init__(self, name, description, clients, streams, message_size, attack):
        self.name = name
        self.description = description
        self.clients = clients
        self.streams = streams
        self.message_size = message_size
        self.attack = attack  # {"connections", "streams", "interval_ms"} for rapid_reset.
        self.path = "/bench.Echo/Unary"
        self.body_size = len(framed_body(message_size, 1))

    def prepare(self, ctx):
        self.body_file = ctx.workdir / f"{self.name}.bin"
        self.body_file.write_bytes(framed_body(self.message_size, 1))

    def pinning_text(self, ctx):
        # The attacker is load: it runs where h2load runs.
        return super().pinning_text(ctx).replace("load client on", "h2load and the attacker on")

    def attack_argv(self, ctx, port):
        return [ctx.attacker, "--port", str(port), "--connections",
                str(self.attack["connections"]), "--streams", str(self.attack["streams"]),
                "--interval-ms", str(self.attack["interval_ms"]), "--path", self.path]

    def legit(self, ctx, target, pins, seconds, label, attacker=None):
        """One timed h2load run of the legitimate load, measured; never raises because the
        target stopped answering: calls that did not finish are counted instead."""
        log = ctx.workdir / f"{self.name}-{target.name}-{label}.log"
        argv = h2load_argv(target.port, self.body_file, self.path, self.clients, self.streams,
                           seconds=seconds, log_file=log)
        # h2load -D ends on time even when nothing answers; the limit is for a wedged h2load.
        limit = seconds + 30
        window = {}

        def load():
            window["start"] = time.time()
            try:
                return run_h2load(argv, pins["load"], limit, check_exit=False)
            except subprocess.TimeoutExpired:
                return {"elapsed": time.time() - window["start"], "started": 0, "done": 0,
                        "succeeded": 0, "failed": 0, "errored": 0, "timeout": 0,
                        "non_2xx": 0, "data_bytes": 0, "killed": True}
            finally:
                window["end"] = time.time()

        result = measure(target, ctx.backend, load,
                         more_load=[attacker.pid] if attacker else ())
        calls = read_h2load_log_times(log)
        if result.get("killed"):
            result["succeeded"] = result["done"] = len(calls)
        durations = sorted(d for _, d in calls)
        result["p50"], result["p99"], result["p999"] = (
            [d / 1000 for d in percentiles(durations, (0.5, 0.99, 0.999))] if durations
            else (None, None, None))
        result["stall"] = longest_gap(calls, window["start"], window["end"])
        # h2load judges only :status: calls answered with a gRPC error but no echo count as
        # succeeded there, not here. Calls cut off at the end may add partial bodies.
        result["echoed"] = min(result["succeeded"], result["data_bytes"] // self.body_size)
        result["unfinished"] = result["started"] - result["done"]
        result["command"] = shown_argv(argv, target.port, [(self.body_file, "BODY"),
                                                           (log, "LOG")])
        return result

    def run(self, ctx, target):
        pins = self.pins(ctx)
        if ctx.args.warmup > 0:
            run_h2load(h2load_argv(target.port, self.body_file, self.path, self.clients,
                                   self.streams, seconds=ctx.args.warmup), pins["load"],
                       ctx.args.warmup + 30, check_exit=False)
        quiet = self.legit(ctx, target, pins, ctx.args.duration, "quiet")
        before = backend_counters(ctx.backend)
        argv = self.attack_argv(ctx, target.port)
        attacker = Child("rapid_reset", argv, pins["load"])
        try:
            attacker.wait_for_line(r'"started":true', timeout=10)
            time.sleep(self.ramp)
            attacked = self.legit(ctx, target, pins, ctx.args.duration, "attack", attacker)
        finally:
            attacker.stop()
        totals = json.loads(attacker.wait_for_line(r'^\{.*"elapsed_s".*\}$', timeout=5)
                            .group(0))
        after = backend_counters(ctx.backend)
        if not target.alive():
            raise RuntimeError(f"{target.name} exited under attack: {target.process.tail(3)}")
        # Legitimate calls began during the window too; what is left is the attack's.
        reached = max(0, after["streams"] - before["streams"] - attacked["started"])
        return {
            "target": target.name,
            "elapsed": attacked["elapsed"],
            "quiet": quiet,
            "attack": attacked,
            "attacker": totals,
            "attacker_cpu": attacked["more_load_cpu"],
            "backend_streams": after["streams"] - before["streams"],
            "backend_resets": after["resets"] - before["resets"],
            "reached": reached,
            "rss": peak_rss_mib(target.process.pid),
            # Either run disturbed by the rest of the machine spoils the comparison.
            "other_load": max(quiet["other_load"], attacked["other_load"]),
            "steal": max(quiet["steal"], attacked["steal"]),
            "top_other": attacked["top_other"] or quiet["top_other"],
            "command": quiet["command"] + "` while `" + shown_argv(
                [str(a) for a in argv], target.port, [(ctx.attacker, "rapid_reset")]),
        }

    def summarize(self, target, runs):
        def rate(run):
            return run["echoed"] / max(run["elapsed"], 1e-9)

        def per_run(key, part="attack"):
            return median([r[part][key] for r in runs])

        goaway = {}
        for r in runs:
            for code, count in r["attacker"]["goaway"].items():
                goaway[code] = goaway.get(code, 0) + count
        return {
            "target": target.name,
            "calls_s": median([rate(r["attack"]) for r in runs]),
            "calls_s_quiet": median([rate(r["quiet"]) for r in runs]),
            "ratio": median([rate(r["attack"]) / max(rate(r["quiet"]), 1e-9) for r in runs]),
            "p99": per_run("p99"),
            "p99_quiet": per_run("p99", "quiet"),
            "p50": per_run("p50"),
            "stall": per_run("stall"),
            "stall_max": max(r["attack"]["stall"] for r in runs),
            "unfinished": sum(r["attack"]["unfinished"] for r in runs),
            "errors": sum(r["attack"]["failed"] + r["attack"]["errored"] + r["attack"]["timeout"]
                          for r in runs),
            "not_echoed": sum(r["attack"]["succeeded"] - r["attack"]["echoed"] for r in runs),
            "runs": len(runs),
            "proxy_load": median([r["attack"]["proxy_cpu"] / r["attack"]["elapsed"] * 100
                                  for r in runs]),
            "proxy_load_quiet": median([r["quiet"]["proxy_cpu"] / r["quiet"]["elapsed"] * 100
                                        for r in runs]),
            "backend_load": median([r["attack"]["backend_cpu"] / r["attack"]["elapsed"] * 100
                                    for r in runs]),
            "attacker_load": median([r["attacker_cpu"] / r["attack"]["elapsed"] * 100
                                     for r in runs]),
            "rss": median([r["rss"] for r in runs]),
            "attack_streams_s": median([r["attacker"]["streams_sent"]
                                        / r["attacker"]["elapsed_s"] for r in runs]),
            "attack_mb_s": median([r["attacker"]["bytes_sent"] / r["attacker"]["elapsed_s"]
                                   / 1e6 for r in runs]),
            "attack_streams": median([r["attacker"]["streams_sent"] for r in runs]),
            "closed": median([r["attacker"]["closed_by_server"] for r in runs]),
            "goaway": goaway,
            "skipped": median([r["attacker"]["bursts_skipped"]
                               / max(r["attacker"]["bursts"] + r["attacker"]["bursts_skipped"],
                                     1) * 100 for r in runs]),
            "reached": median([r["reached"] for r in runs]),
            "reached_share": median([r["reached"] / max(r["attacker"]["streams_sent"], 1) * 100
                                     for r in runs]),
        }

    def run_line(self, r):
        q, a, t = r["quiet"], r["attack"], r["attacker"]
        q_rate = q["echoed"] / max(q["elapsed"], 1e-9)
        a_rate = a["echoed"] / max(a["elapsed"], 1e-9)

        def ms(value):
            return "—" if value is None else f"{value:.2f}"

        codes = ",".join(f"{k} {v}" for k, v in t["goaway"].items()) or "no GOAWAY"
        return (f"{r['target']:10} under attack {a_rate:9,.0f} calls/s vs {q_rate:9,.0f} "
                f"({a_rate / max(q_rate, 1e-9):.2f}x), p99 {ms(a['p99'])} ms vs "
                f"{ms(q['p99'])} ms, longest stall {a['stall']:.2f} s, unfinished "
                f"{a['unfinished']}, errors {a['failed'] + a['errored'] + a['timeout']}; proxy "
                f"{a['proxy_cpu'] / a['elapsed'] * 100:3.0f}% core; attack "
                f"{t['streams_sent'] / t['elapsed_s']:,.0f} streams/s "
                f"{t['bytes_sent'] / t['elapsed_s'] / 1e6:.1f} MB/s, closed "
                f"{t['closed_by_server']} ({codes}), bursts skipped {t['bursts_skipped']}, "
                f"reached backend {r['reached']:,}  {noise_text(r)}")


@dataclasses.dataclass(frozen=True)
class BulkMode:
    """How the timed rounds of a bulk workload are run: for --duration seconds or for a
    fixed number of calls, with the proxy pinned apart or nothing pinned."""

    count: bool
    pinned: bool

    @property
    def name(self):
        return f"{'count' if self.count else 'duration'}-{'pinned' if self.pinned else 'unpinned'}"

    def text(self, duration, requests):
        how = f"h2load -n {requests:,}" if self.count else f"h2load -D {duration}"
        return f"{how}, {'pinned' if self.pinned else 'nothing pinned'}"


BULK_MODES = tuple(BulkMode(count, pinned) for pinned in (True, False)
                   for count in (False, True))


def longest_gap(calls, start, end):
    """The longest time, in seconds, during [start, end] (epoch seconds) in which no call
    of |calls| ((start us, duration us) pairs) completed: how long the target stalled."""
    ends = sorted((s + d) / 1e6 for s, d in calls)
    points = [start] + [e for e in ends if start <= e <= end] + [end]
    return max(b - a for a, b in zip(points, points[1:]))


def make_workloads(args):
    """Every workload by name, in report order."""
    idle, open_c, open_s = args.idle_connections, args.open_connections, args.open_streams
    workloads = [
        H2loadThroughput("unary100", "unary call, 100 B message, 16 connections x 32 "
                         "concurrent calls; calls/s", 100, 1, 16, 32, "calls",
                         targets=UNARY100),
        H2loadThroughput("unary64k", "unary call, 64 KiB message, 4 connections x 8 "
                         "concurrent calls; echoed bytes/s", 65536, 1, 4, 8, "bytes",
                         bulk=True, targets=BULK),
        H2loadThroughput("stream1k", "streaming call whose 1 MiB request body is 1,024 gRPC "
                         "messages of 1 KiB, all echoed, 4 connections x 4 concurrent calls; "
                         "echoed bytes/s", 1024, 1024, 4, 4, "bytes", "/bench.Echo/Stream",
                         bulk=True, targets=BULK),
        H2loadThroughput("serial1m", "one connection, one call at a time, one 1 MiB message "
                         "each way; echoed bytes/s", 1 << 20, 1, 1, 1, "bytes", bulk=True,
                         targets=BULK),
        Latency("latency", "one connection, one unary call in flight, 100 B message; "
                "per-call latency from h2load --log-file", 100),
        PingPong("pingpong", "one bidi stream on one connection: one 100 B message, wait "
                 "for its echo, repeat; round-trip latency from load_client", 100),
        Bidi("bidi1k", "long-lived bidi streams, 4 connections x 4 streams, 1 KiB messages, "
             "64 in flight per stream; echoed bytes/s from load_client", 1024, 4, 4, 64),
        HeldMemory("idle_rss", f"{idle:,} idle h2c connections (preface and SETTINGS, "
                   "nothing else) held open; RSS gained per connection", idle, 0,
                   "connection"),
        HeldMemory("open_streams", f"{open_c * open_s:,} open streams ({open_c} "
                   f"connections x {open_s}), each opened with HEADERS and one 100 B message "
                   "that was echoed, never ended; RSS gained per stream", open_c, open_s,
                   "stream"),
        Scaling("workers2", "unary100 (100 B, 16 connections x 32) with h2load -t 2, "
                "nothing pinned; grelay and nghttpx with 1 and with 2 workers; calls/s",
                100, 1, 16, 32, "calls", threads=2),
        TlsThroughput("unary100tls", "unary100 (100 B, 16 connections x 32) with the clients "
                      "on h2 over TLS (TLS 1.3, ALPN h2; backend h2c); grelay and nghttpx; "
                      "calls/s", 100, 1, 16, 32, "calls"),
        UnderAttack("underattack", "the legitimate load of unary100 (100 B, 16 connections "
                    "x 32, h2load) first alone, then while a spread rapid-reset attack runs "
                    "against the same proxy (30 connections, each sending a burst of 990 "
                    "HEADERS, each at once followed by RST_STREAM(CANCEL), every second, "
                    "and reconnecting when closed); legitimate calls/s kept and p99",
                    16, 32, 100, {"connections": 30, "streams": 990, "interval_ms": 1000}),
    ]
    return {w.name: w for w in workloads}
