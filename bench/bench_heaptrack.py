"""Where grelay's held memory goes: one extra, unmeasured pass of a memory workload with
grelay under heaptrack (Debian package heaptrack), its heap at the peak grouped by the code
that allocated it."""

import re
import shutil
import subprocess
import time

from bench_load import h2load_argv, run_h2load
from bench_procs import Child, process_tree, snapshot
from bench_targets import Grelay

# Frames that only carry an allocation along; the report names the code above them.
PLUMBING = re.compile(r"^(malloc|calloc|realloc|operator new|operator delete|std::|__gnu_cxx|"
                      r"grelay::SessionAllocator::|grelay::\{anon\}::mem_|call_init|"
                      r"grelay::ChunkPool::get|grelay::ChunkChain::(add_chunk|append)|"
                      r"non-virtual thunk|0x)")


def available():
    return shutil.which("heaptrack") is not None and shutil.which("heaptrack_print") is not None


def short(frame):
    """A frame without its argument list and source location."""
    frame = re.sub(r" \([^()]*\)$", "", frame.strip())  # " (file.c)" locations.
    frame = frame.replace("(anonymous namespace)", "{anon}")
    depth, out = 0, []
    for ch in frame:  # Drop "(...)" argument lists, keep names.
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    name = "".join(out).strip()
    return name.replace(" [clone .part.0]", "").replace("[clone .part.0]", "")


def group(stack):
    """(what allocated, through which allocator) for one root-first stack."""
    frames = [f for f in stack.split(";") if f]
    if any("ChunkPool::get" in f for f in frames):
        kind = "a 16 KiB buffer chunk"
    elif any("mem_calloc" in f for f in frames):
        kind = "nghttp2 calloc (zeroed, so all resident)"
    elif any("SessionAllocator::" in f or "mem_malloc" in f or "mem_realloc" in f
             for f in frames):
        kind = "nghttp2 malloc (resident where written)"
    else:
        kind = "malloc / new"
    meaningful = [short(f) for f in reversed(frames) if not PLUMBING.match(short(f))]
    return " ← ".join(meaningful[:2]) or "(unknown)", kind


def where_bytes_go(ctx, workload, grelay_binary):
    """Markdown lines attributing grelay's heap at its peak, with |workload|'s load held."""
    if not available():
        return ["Where the bytes go: not measured (heaptrack not on PATH; Debian package "
                "heaptrack)."]
    data = ctx.workdir / f"heaptrack-{workload.name}"
    target = Grelay(grelay_binary)
    target.wrapper = ["heaptrack", "-o", str(data)]
    try:
        target.start(ctx.backend_port, None, ctx.workdir, ctx.nofile)
        run_h2load(h2load_argv(target.port, workload.warm_file, "/bench.Echo/Unary", 1, 4,
                               requests=2000), None, 60)
        time.sleep(0.5)
        argv = [ctx.load_client, "hold", "--port", str(target.port), "--connections",
                str(workload.connections), "--streams", str(workload.streams), "--size", "100"]
        client = Child("load_client", argv)
        try:
            client.wait_for_line(r'^\{"mode":"hold","connections"', timeout=180)
            time.sleep(1.0)
        finally:
            client.stop()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        return [f"Where the bytes go: heaptrack pass failed: {error}"]
    finally:
        # SIGTERM to grelay itself (the wrapper is a shell), then let heaptrack finish.
        if target.process:
            processes = snapshot()
            for pid in process_tree(target.process.pid, processes):
                if processes.get(pid, (0, "", 0))[1] == "grelay":
                    subprocess.run(["kill", "-TERM", str(pid)], check=False)
            try:
                target.process.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                target.stop()
    files = sorted(ctx.workdir.glob(f"heaptrack-{workload.name}*"))
    if not files:
        return ["Where the bytes go: heaptrack wrote no data."]
    stacks = ctx.workdir / f"heaptrack-{workload.name}.stacks"
    subprocess.run(["heaptrack_print", "-f", str(files[0]), "--print-peaks", "0",
                    "--print-allocators", "0", "--print-temporary", "0", "-F", str(stacks),
                    "--flamegraph-cost-type", "peak"], capture_output=True, timeout=300)
    groups = {}
    for line in stacks.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit() and int(count) > 0:
            key = group(stack)
            groups[key] = groups.get(key, 0) + int(count)
    total = sum(groups.values())
    if not total:
        return ["Where the bytes go: heaptrack recorded no heap at the peak."]
    units = workload.units()
    lines = [
        f"Where grelay's bytes go: heaptrack, in a separate unmeasured pass holding the same "
        f"load, found {total / 1024 / 1024:.1f} MiB of heap at the peak, "
        f"{total / units:,.0f} B per {workload.unit}. These are allocated bytes: a block "
        f"is resident only where it was written to, so RSS per {workload.unit} can be lower; "
        f"freed blocks stay resident in the allocator, so RSS can also be higher.",
        "",
        f"| allocated in (innermost first) | through | heap at peak | per {workload.unit} |",
        "|---|---|---|---|",
    ]
    ranked = sorted(groups.items(), key=lambda item: item[1], reverse=True)
    for (where, kind), size in ranked[:8]:
        lines.append(f"| `{where}` | {kind} | {size / 1024:,.0f} KiB | {size / units:,.0f} B |")
    rest = sum(size for _, size in ranked[8:])
    if rest:
        lines.append(f"| everything else ({len(ranked) - 8} places) | | {rest / 1024:,.0f} KiB | "
                     f"{rest / units:,.0f} B |")
    return lines
