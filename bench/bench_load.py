"""Running load for bench.py: h2load and load_client invocations, and the CPU accounting
around a measured run."""

import json
import os
import re
import shlex
import subprocess

from bench_procs import children_cpu, cpu_delta, process_tree, snapshot, system_cpu

H2LOAD_REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                             r"(\d+) failed, (\d+) errored, (\d+) timeout")
H2LOAD_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
H2LOAD_FINISHED = re.compile(r"finished in ([\d.]+)(s|ms|us)")
H2LOAD_TRAFFIC = re.compile(r"traffic: .*\((\d+)\) data")


def framed_body(message_size, messages):
    """|messages| gRPC messages of |message_size| payload bytes: what the echo returns."""
    payload = bytes(i % 251 for i in range(message_size))
    return (b"\x00" + message_size.to_bytes(4, "big") + payload) * messages


# The request fields of a gRPC call, and of a gRPC-Web call (binary protobuf): a browser
# sends no "te: trailers", and gRPC-Web clients mark their calls with x-grpc-web.
GRPC_FIELDS = ("content-type: application/grpc", "te: trailers")
GRPC_WEB_FIELDS = ("content-type: application/grpc-web+proto", "x-grpc-web: 1")


def h2load_argv(port, body_file, path, clients, streams, threads=1, seconds=None,
                requests=None, log_file=None, scheme="http", fields=GRPC_FIELDS, h1=False):
    """h2load sending one gRPC call per request. |fields|: the request fields it adds;
    |h1|: HTTP/1.1 instead of HTTP/2 (h2load pipelines up to |streams| requests on each
    connection then)."""
    argv = ["h2load", "-d", str(body_file)]
    for field in fields:
        argv += ["-H", field]
    if h1:
        argv.append("--h1")
    argv += ["-c", str(clients), "-m", str(streams), "-t", str(threads)]
    argv += ["-n", str(requests)] if requests else ["-D", str(seconds)]
    if log_file:
        argv.append(f"--log-file={log_file}")
    # With https h2load negotiates h2 with ALPN and does not verify the certificate.
    return argv + [f"{scheme}://127.0.0.1:{port}{path}"]


def shown_argv(argv, port, files=()):
    """|argv| as the report shows it: file names and the port replaced by placeholders."""
    text = shlex.join(argv).replace(f":{port}/", ":PORT/").replace(f"--port {port}",
                                                                    "--port PORT")
    for path, label in files:
        text = text.replace(str(path), label)
    return text


def run_h2load(argv, cpus, timeout, check_exit=True, env=None):
    """Runs h2load to completion; its totals as a dict. With |check_exit| False a non-zero
    exit status is accepted as long as h2load printed its totals (some calls failed).
    |env|: variables added to h2load's environment."""
    full = (["taskset", "-c", cpus] if cpus else []) + argv
    out = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, **env} if env else None)
    text = out.stdout
    requests = H2LOAD_REQUESTS.search(text)
    finished = H2LOAD_FINISHED.search(text)
    traffic = H2LOAD_TRAFFIC.search(text)
    status = H2LOAD_STATUS.search(text)
    if (out.returncode != 0 and check_exit) or not (requests and finished and traffic):
        raise RuntimeError(f"h2load failed (exit {out.returncode}): "
                           f"{(out.stderr or text).strip()[-500:]}")
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6}[finished.group(2)]
    return {
        "elapsed": float(finished.group(1)) * scale,
        "started": int(requests.group(2)),
        "done": int(requests.group(3)),
        "succeeded": int(requests.group(4)),
        "failed": int(requests.group(5)),
        "errored": int(requests.group(6)),
        "timeout": int(requests.group(7)),
        "non_2xx": sum(int(status.group(i)) for i in (2, 3, 4)) if status else 0,
        "data_bytes": int(traffic.group(1)),
    }


def probe_call(port, body_file, path, scheme="http"):
    """One call with h2load -v: a short description of what came back, to explain a
    target whose calls were not echoed."""
    argv = h2load_argv(port, body_file, path, 1, 1, requests=1, scheme=scheme) + ["-v"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "a single call did not finish within 30 s"
    seen = []
    for line in out.stdout.splitlines():
        match = re.search(r"\] (:status|grpc-status|grpc-message): (.*)$", line)
        if match:
            seen.append(f"{match.group(1)} {match.group(2).strip()}")
    return ", ".join(seen) or (out.stderr or out.stdout).strip()[-200:] or "no response"


def run_load_client(argv, cpus, timeout):
    """Runs load_client to completion; returns its last JSON line as a dict."""
    full = (["taskset", "-c", cpus] if cpus else []) + [str(a) for a in argv]
    out = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    if out.returncode != 0 or not result or "error" in result:
        why = result.get("error") or (out.stderr or out.stdout).strip()[-500:]
        raise RuntimeError(f"load_client failed (exit {out.returncode}): {why}")
    return result


def measure(target, backend, run_load, more_load=()):
    """Runs |run_load| (which returns a dict with at least "elapsed") and adds the CPU the
    proxy, the backend and the load client used meanwhile, and what the rest of the
    machine did. |more_load|: pids of load generators that keep running across the
    measurement (the underattack workload's attacker); their CPU is "more_load_cpu"."""
    before = snapshot()
    system_before, steal_before = system_cpu()
    load_before = children_cpu()
    result = run_load()
    system_after, steal_after = system_cpu()
    load_cpu = children_cpu() - load_before
    after = snapshot()
    proxy_pids = process_tree(target.process.pid, after) if target.process else []
    backend_pids = process_tree(backend.pid, after)
    more_pids = [p for root in more_load for p in process_tree(root, after)]
    result["proxy_cpu"] = cpu_delta(before, after, proxy_pids) if target.process else None
    result["backend_cpu"] = cpu_delta(before, after, backend_pids)
    result["load_cpu"] = load_cpu
    result["more_load_cpu"] = cpu_delta(before, after, more_pids)
    # What the machine did besides the proxy, the backend and the load client: other
    # tenants, builds, this script. It should be near zero for numbers worth comparing.
    ours = cpu_delta(before, after, proxy_pids + backend_pids + more_pids) + load_cpu
    elapsed = max(result["elapsed"], 1e-9)
    result["other_load"] = max(0.0, system_after - system_before - ours) / elapsed * 100
    result["steal"] = (steal_after - steal_before) / elapsed * 100
    mine = set(proxy_pids + backend_pids + more_pids)
    names = {p: ("bench.py" if p == os.getpid() else after[p][1]) for p in after}
    others = sorted(((cpu_delta(before, after, [p]), names[p]) for p in after
                     if p not in mine), reverse=True)
    result["top_other"] = ", ".join(f"{name} {seconds / elapsed * 100:.0f}%"
                                    for seconds, name in others[:3]
                                    if seconds / elapsed >= 0.02)
    result["target"] = target.name
    return result


def percentiles(samples, fractions):
    """The |fractions| percentiles of |samples| (nearest rank on the sorted list)."""
    ordered = sorted(samples)
    return [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in fractions]


def read_h2load_log(path):
    """Per-request durations in microseconds from an h2load --log-file: one line per
    request, tab-separated start time (us since the epoch), status, duration (us)."""
    return [duration for _, duration in read_h2load_log_times(path)]


def read_h2load_log_times(path):
    """(start time in us since the epoch, duration in us) of every request an h2load
    --log-file logged with status 200; the file is removed. A missing file (h2load was
    killed before it wrote one) gives an empty list."""
    calls = []
    try:
        with open(path) as f:
            for line in f:
                fields = line.split("\t")
                if len(fields) >= 3 and fields[1].strip() == "200" and fields[2].strip():
                    calls.append((int(fields[0]), int(fields[2])))
    except FileNotFoundError:
        return calls
    os.unlink(path)
    return calls
