"""The counting pass of bench.py: where a relay's bytes go (issue 18). After the timed
rounds of a bulk workload each proxy is started once more, with copy_count_preload.so
loaded, and serves the workload's load for a fixed number of calls twice, untimed:

1. as is: syscalls and bytes of read/readv/write/writev from /proc/PID/io, bytes copied
   by memcpy and memmove (the preloaded library), DATA frames at the client (h2load with
   frame_count_preload.so) and at the echo backend (its SIGUSR1 counters);
2. with `strace -f` attached: every syscall by name, and the bytes each read and write
   family call returned. strace slows the proxy several times over, which lets more data
   pile up between its reads, so its bytes per call are an upper bound; run 1's are not
   disturbed.

Nothing here runs during the timed rounds."""

import json
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

from bench_load import run_h2load, shown_argv
from bench_procs import Child, cpu_delta, process_tree, snapshot, user_system_cpu
from bench_workloads import backend_counters

COPY_SHIM = "copy_count_preload.so"
FRAME_SHIM = "frame_count_preload.so"
# bench/copy_count_preload.cc's file: a 64-byte header, then 64 slots of 8 uint64.
COPY_MAGIC = 0x31796f70636c6572
COPY_SLOTS = 64
COPY_COUNTERS = ("copy_calls", "copy_bytes", "copy_big_calls", "copy_big_bytes",
                 "move_calls", "move_bytes", "move_big_calls", "move_big_bytes")
IO_KEYS = ("syscr", "syscw", "rchar", "wchar")
READS = ("read", "readv", "recvfrom", "recvmsg", "recvmmsg")
WRITES = ("write", "writev", "sendto", "sendmsg", "sendmmsg", "sendfile", "splice")
DATA_KEYS = ("data_frames_in", "data_bytes_in", "data_frames_out", "data_bytes_out")

# One line of `strace -f -o FILE`: "[PID ]name(args) = result [ERRNO (text)]", or the second
# half of a call another thread interrupted: "[PID ]<... name resumed>args) = result".
STRACE_CALL = re.compile(r"^(?:\d+ +)?(?:<\.\.\. (\w+) resumed>|(\w+)\()")
STRACE_RESULT = re.compile(r"\)\s+=\s+(-?\d+|0x[0-9a-f]+|\?)(?:\s+(E[A-Z0-9_]+))?[^=]*$")


def shims(build):
    """(copy library, frame library) in |build|/bench, or None for a missing one."""
    found = []
    for name in (COPY_SHIM, FRAME_SHIM):
        path = Path(build) / "bench" / name
        found.append(path if path.is_file() else None)
    return tuple(found)


def read_copies(directory, pids):
    """The copy counters of |pids| summed: each process writes DIR/copies.PID."""
    totals = dict.fromkeys(COPY_COUNTERS, 0)
    for pid in pids:
        try:
            data = (Path(directory) / f"copies.{pid}").read_bytes()
        except OSError:
            continue
        if len(data) < 64 * (COPY_SLOTS + 1) or struct.unpack_from("<Q", data)[0] != COPY_MAGIC:
            continue
        for slot in range(COPY_SLOTS):
            values = struct.unpack_from("<8Q", data, 64 * (slot + 1))
            for key, value in zip(COPY_COUNTERS, values):
                totals[key] += value
    return totals


def read_io(pids):
    """/proc/PID/io summed over |pids|: read and write syscalls (read, readv, write,
    writev and the like; not recv*/send*) and the bytes they moved."""
    totals = dict.fromkeys(IO_KEYS, 0)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/io") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in totals:
                        totals[key] += int(value)
        except OSError:
            continue
    return totals


def delta(after, before):
    return {key: after[key] - before.get(key, 0) for key in after}


def parse_strace(path):
    """{"calls": {name: n}, "bytes": {name: bytes returned}, "eagain": {name: n}} from a
    `strace -f -o` file. A call split by another thread's line is counted once, on its
    resumed half; calls still unfinished when strace detached are not counted."""
    calls, returned, eagain = {}, {}, {}
    with open(path, errors="replace") as f:
        for line in f:
            if "<unfinished ...>" in line:
                continue
            call = STRACE_CALL.match(line)
            result = STRACE_RESULT.search(line)
            if not call or not result:
                continue
            name = call.group(1) or call.group(2)
            calls[name] = calls.get(name, 0) + 1
            value = result.group(1)
            if result.group(2) == "EAGAIN":
                eagain[name] = eagain.get(name, 0) + 1
            elif value.isdigit() and (name in READS or name in WRITES):
                returned[name] = returned.get(name, 0) + int(value)
    return {"calls": calls, "bytes": returned, "eagain": eagain}


def traced(ctx, target, run_load, trace_file):
    """Runs |run_load| with strace attached to every thread of the proxy; returns
    (load result, parsed trace)."""
    pids = process_tree(target.process.pid)
    argv = ["strace", "-f", "-s", "0", "-e", "signal=none", "-o", str(trace_file)]
    for pid in pids:
        argv += ["-p", str(pid)]
    tracer = Child("strace", argv, stop_signal=signal.SIGINT)
    try:
        # strace says "Process N attached" for each process, "... with K threads" when it
        # took over several (strace 6), or once per thread (older versions).
        want = len(pids)
        deadline = time.monotonic() + 10
        while tracer.count_lines(r"Process \d+ attached") < want:
            if not tracer.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"strace did not attach: {tracer.tail(3)}")
            time.sleep(0.05)
        result = run_load()
    finally:
        tracer.stop(timeout=30)
    trace = parse_strace(trace_file)
    trace_file.unlink()
    return result, trace


def count_target(ctx, workload, target, copy_shim, frame_shim, requests):
    """The counting pass of |workload| for one proxy |target|; a dict of counts, or one
    with "error"."""
    pins = workload.pins(ctx)
    copy_dir = ctx.workdir / f"copies-{workload.name}-{target.name}"
    copy_dir.mkdir(exist_ok=True)
    target.env = {"LD_PRELOAD": str(copy_shim), "GRELAY_COPY_COUNT_DIR": str(copy_dir)}
    frame_file = ctx.workdir / f"frames-{workload.name}-{target.name}.json"
    client_env = ({"LD_PRELOAD": str(frame_shim), "GRELAY_FRAME_COUNT_FILE": str(frame_file)}
                  if frame_shim else None)
    timeout = 600
    try:
        target.start(ctx.backend_port, pins["proxy"], ctx.workdir, ctx.nofile)
        # Unmeasured calls first, so the proxy's backend connection and pools exist.
        warm = workload.clients * workload.streams * 2
        run_h2load(workload.argv(target.port, None, target.scheme, requests=warm),
                   pins["load"], timeout)
        argv = workload.argv(target.port, None, target.scheme, requests=requests)
        pids = process_tree(target.process.pid)
        before = {"io": read_io(pids), "copies": read_copies(copy_dir, pids),
                  "backend": backend_counters(ctx.backend), "cpu": snapshot(),
                  "split": user_system_cpu(pids)}
        load = run_h2load(argv, pins["load"], timeout, env=client_env)
        after = {"io": read_io(pids), "copies": read_copies(copy_dir, pids),
                 "backend": backend_counters(ctx.backend), "cpu": snapshot(),
                 "split": user_system_cpu(pids)}
        if not target.alive():
            raise RuntimeError(f"{target.name} exited: {target.process.tail(3)}")
        client = None
        if frame_shim:
            client = json.loads(frame_file.read_text())
            frame_file.unlink()
        backend = delta(after["backend"], before["backend"])
        trace_load, trace = traced(ctx, target, lambda: run_h2load(argv, pins["load"], timeout),
                                   ctx.workdir / f"strace-{workload.name}-{target.name}.txt")
        return {
            "target": target.name,
            "requests": requests,
            "calls": load["succeeded"],
            "echoed": load["data_bytes"],
            "elapsed": load["elapsed"],
            "proxy_cpu": cpu_delta(before["cpu"], after["cpu"], pids),
            "proxy_user": after["split"][0] - before["split"][0],
            "proxy_system": after["split"][1] - before["split"][1],
            "io": delta(after["io"], before["io"]),
            "copies": delta(after["copies"], before["copies"]),
            "backend": {key: backend[key] for key in DATA_KEYS},
            "client": client,
            "strace": dict(trace, echoed=trace_load["data_bytes"],
                           elapsed=trace_load["elapsed"]),
            "command": shown_argv(argv, target.port, [(workload.body_file, "BODY")]),
        }
    except (RuntimeError, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as error:
        text = str(error).replace("\n", " ").replace("|", "/")[:300]
        return {"target": target.name, "error": text}
    finally:
        target.stop()
        target.env = None


def count_pass(ctx, workload, targets, build, mib):
    """Counts for every proxy of |targets| (direct has no proxy), in order. Returns
    (counts, None) or ([], why the pass was skipped)."""
    copy_shim, frame_shim = shims(build)
    if copy_shim is None:
        return [], f"no {COPY_SHIM} in {build}/bench (build it with ninja)"
    if shutil.which("strace") is None:
        return [], "strace not on PATH (Debian package strace)"
    requests = workload.requests_for(mib)
    counts = []
    for target in targets:
        if target.kind == "direct":
            continue
        print(f"  {workload.name} counting pass: {target.name}, {requests:,} calls",
              file=sys.stderr, flush=True)
        counts.append(count_target(ctx, workload, target, copy_shim, frame_shim, requests))
    return counts, None
