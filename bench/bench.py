#!/usr/bin/python3
"""Benchmarks grelay against direct calls and peer proxies, on one echo backend.

    /usr/bin/python3 bench/bench.py [--build build] [--duration 10] [--rounds 3]
                                    [--targets direct,grelay,nghttpx,haproxy,nginx,envoy]
                                    [--workload all]

For each workload the targets run interleaved in rounds (the order rotates each round),
each run preceded by a short unmeasured warm-up; the tables show medians over the rounds.
Proxy CPU per call is utime+stime of the proxy's whole process tree over the measured run
divided by the calls completed. The bulk workloads also get an untimed counting pass
(syscalls, bytes per read and write, DATA frames and memcpy bytes per MiB; bench_counts.py)
and their timed rounds again by count and unpinned (--bulk-modes). The report goes to
bench/results/latest.md (with the goals of the speed issue, PASS/FAIL, the machine, versions
and the exact command) and the chart to bench/results/latest.png. See bench/README.md for
what each row means.
"""

import argparse
import dataclasses
import datetime
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_counts import count_pass  # noqa: E402
from bench_heaptrack import where_bytes_go  # noqa: E402
from bench_procs import (Child, busy_processes, cpu_model, first_line, machine_info,  # noqa: E402
                         pin_plan, raise_fd_limit)
from bench_report import (chart, counts_table, goals, load_note, modes_table,  # noqa: E402
                          workload_table)
from bench_targets import ALL_TARGETS, make_targets  # noqa: E402
from bench_web import web_workloads  # noqa: E402
from bench_workloads import BULK_MODES, BulkMode, HeldMemory, make_workloads  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TARGETS = ("direct", "grelay", "nghttpx", "haproxy", "nginx", "envoy")


@dataclasses.dataclass
class Section:
    """One workload's part of the report."""

    workload: object
    summaries: list
    runs: dict
    pinning: str
    extra: list
    counts: list = dataclasses.field(default_factory=list)  # Lines of the counting pass.
    modes: list = dataclasses.field(default_factory=list)  # Lines of the bulk modes.
    skipped: str = ""  # The workload's targets that could not run at all, and why.


@dataclasses.dataclass
class Context:
    """What workloads need to run: options, CPU pins, the temp dir, the backend, tools."""

    args: argparse.Namespace
    pins: dict
    workdir: Path
    backend: Child
    backend_port: int
    load_client: Path
    nofile: int
    attacker: Path = None  # rapid_reset, for the underattack workload.


def parse_args(workload_names):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build",
                        help="meson build directory, relative to the repository (default build)")
    parser.add_argument("--grelay", help="grelay binary (default: BUILD/grelay)")
    parser.add_argument("--baseline",
                        help="another grelay binary, run in unary100 next to grelay as "
                             "grelay-baseline (to show what a change costs)")
    parser.add_argument("--backend", help="echo backend (default: BUILD/bench/echo_backend)")
    parser.add_argument("--load-client", help="load client (default: BUILD/bench/load_client)")
    parser.add_argument("--rapid-reset",
                        help="the underattack workload's attacker (default: "
                             "BUILD/bench/rapid_reset)")
    parser.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                        help="comma-separated subset of " + ",".join(DEFAULT_TARGETS)
                        + " (workers2 adds grelay-w2 and nghttpx-w2 itself, unary100tls "
                        "grelay-tls and nghttpx-tls)")
    parser.add_argument("--workload", default="all",
                        help="comma-separated subset of: " + ", ".join(workload_names)
                        + " (default all)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2,
                        help="seconds of unmeasured load before each run (0: none)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--pingpong-count", type=int, default=20000,
                        help="measured round trips per pingpong run (default 20000)")
    parser.add_argument("--idle-connections", type=int, default=2000,
                        help="connections held by idle_rss (default 2000)")
    parser.add_argument("--open-connections", type=int, default=50,
                        help="connections of open_streams (default 50)")
    parser.add_argument("--open-streams", type=int, default=100,
                        help="streams per connection of open_streams (default 100)")
    parser.add_argument("--max-other-load", type=float, default=25,
                        help="repeat a run during which other processes used more than this "
                             "percentage of a core (default 25)")
    parser.add_argument("--max-steal", type=float, default=10,
                        help="repeat a run during which the hypervisor took more than this "
                             "percentage of a core from the machine (default 10)")
    parser.add_argument("--retries", type=int, default=2,
                        help="how often a disturbed run is repeated before it is kept (default 2)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--no-heaptrack", action="store_true",
                        help="skip the heaptrack pass that says where grelay's held memory goes")
    parser.add_argument("--no-counts", action="store_true",
                        help="skip the untimed counting pass of the bulk workloads (syscalls, "
                             "bytes per read and write, DATA frames, memcpy bytes per MiB)")
    parser.add_argument("--count-mib", type=int, default=256,
                        help="MiB echoed by each run of the counting pass (default 256)")
    parser.add_argument("--bulk-modes", default="all",
                        help="how the bulk workloads' timed rounds are also run, comma-separated: "
                             + ", ".join(m.name for m in BULK_MODES) + "; 'all' (default) or "
                             "'none' (the main table's mode only: duration, pinned unless "
                             "--no-pin)")
    parser.add_argument("--bulk-count-mib", type=int, default=1024,
                        help="MiB echoed by a run of the count modes (default 1024: h2load -n "
                             "1,024 calls of stream1k)")
    parser.add_argument("--bulk-mode-targets", default="grelay,nghttpx",
                        help="targets run in the extra bulk modes (default grelay,nghttpx)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "latest.md"),
                        help="Markdown report (default bench/results/latest.md); the chart "
                             "goes next to it with the extension .png")
    args = parser.parse_args()
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.bulk_mode_targets = [t.strip() for t in args.bulk_mode_targets.split(",") if t.strip()]
    args.workloads = ([w.strip() for w in args.workload.split(",") if w.strip()]
                      if args.workload != "all" else list(workload_names))
    for name in args.targets:
        if name not in ALL_TARGETS:
            parser.error(f"unknown target {name!r}; choose from {', '.join(ALL_TARGETS)}")
    for name in args.bulk_mode_targets:
        if name not in ALL_TARGETS:
            parser.error(f"unknown bulk mode target {name!r}; choose from "
                         f"{', '.join(ALL_TARGETS)}")
    for name in args.workloads:
        if name not in workload_names:
            parser.error(f"unknown workload {name!r}; choose from {', '.join(workload_names)}")
    if args.count_mib < 1 or args.bulk_count_mib < 1:
        parser.error("--count-mib and --bulk-count-mib must be positive")
    modes = {m.name: m for m in BULK_MODES}
    chosen = [m.strip() for m in args.bulk_modes.split(",") if m.strip()]
    if chosen == ["all"]:
        chosen = list(modes)
    elif chosen == ["none"]:
        chosen = []
    for name in chosen:
        if name not in modes:
            parser.error(f"unknown bulk mode {name!r}; choose from {', '.join(modes)}, all, none")
    args.bulk_modes = [modes[name] for name in chosen]
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0 or args.retries < 0:
        parser.error("--rounds and --duration must be positive, --warmup and --retries "
                     "not negative")
    if args.max_other_load < 0 or args.max_steal < 0:
        parser.error("--max-other-load and --max-steal are percentages of a core, not negative")
    return args


def binary(explicit, *candidates):
    paths = [Path(explicit)] if explicit else list(candidates)
    return next((p for p in paths if p.is_file() and os.access(p, os.X_OK)), None)


def explain(error, target, backend):
    """|error| plus the last words of whichever process died."""
    text = str(error).strip()
    for child in ([target.process] if target.process else []) + [backend]:
        if child.proc.poll() is not None and f"{child.name} exited" not in text:
            text += f"; {child.name} exited with {child.proc.returncode}: {child.tail(3)}"
    return text.replace("\n", " ").replace("|", "/")[:400]


def run_workload(ctx, workload, targets):
    """Runs |workload| against |targets| in rotating rounds. Returns (summaries, runs)."""
    args = ctx.args
    errors = {}
    workload.prepare(ctx)
    pins = workload.pins(ctx)
    if not workload.fresh_per_run:
        # Fresh proxies for each workload, so that peak RSS belongs to this workload.
        for target in targets:
            try:
                target.start(ctx.backend_port, pins["proxy"], ctx.workdir, ctx.nofile)
            except (RuntimeError, OSError) as error:
                errors[target.name] = "did not start: " + explain(error, target, ctx.backend)
                target.stop()
    runs = {t.name: [] for t in targets}
    for round_index in range(args.rounds):
        shift = round_index % len(targets)
        for target in targets[shift:] + targets[:shift]:
            if target.name in errors:
                continue
            for attempt in range(args.retries + 1 if workload.retry_on_noise else 1):
                try:
                    if workload.fresh_per_run:
                        target.start(ctx.backend_port, pins["proxy"], ctx.workdir, ctx.nofile)
                    result = workload.run(ctx, target)
                except (RuntimeError, OSError, ValueError, KeyError,
                        subprocess.TimeoutExpired) as error:
                    errors[target.name] = explain(error, target, ctx.backend)
                    print(f"  {workload.name}: {target.name} failed: {errors[target.name]}",
                          file=sys.stderr, flush=True)
                    break
                finally:
                    if workload.fresh_per_run:
                        target.stop()
                if ctx.backend.proc.poll() is not None:
                    sys.exit(f"bench: the echo backend died: {ctx.backend.tail()}")
                result["attempt"] = attempt + 1
                result["round"] = round_index + 1
                # A run that shared the machine with other processes, or whose CPUs the
                # hypervisor gave to other guests, measured them too: repeat it.
                disturbed = None
                if result.get("other_load", 0) > args.max_other_load:
                    disturbed = "other load"
                elif result.get("steal", 0) > args.max_steal:
                    disturbed = "hypervisor steal"
                if disturbed and attempt < args.retries and workload.retry_on_noise:
                    print(f"  {workload.name} round {round_index + 1}/{args.rounds} "
                          f"{workload.run_line(result)} -> {disturbed}, repeating",
                          file=sys.stderr, flush=True)
                    continue
                runs[target.name].append(result)
                print(f"  {workload.name} round {round_index + 1}/{args.rounds} "
                      f"{workload.run_line(result)}", file=sys.stderr, flush=True)
                break
            if target.name in errors and not workload.fresh_per_run:
                target.stop()
    summaries = []
    for target in targets:
        if runs[target.name] and target.name not in errors:
            summaries.append(workload.summarize(target, runs[target.name]))
        else:
            summaries.append({"target": target.name,
                              "error": errors.get(target.name, "no run")})
    if not workload.fresh_per_run:
        for target in targets:
            target.stop()
    return summaries, runs


def start_backend(binary, cpus):
    """A fresh echo backend (one thread) on a free port: (Child, port)."""
    backend = Child("echo_backend", [binary, "--port", "0", "--threads", "1"], cpus)
    try:
        return backend, int(backend.wait_for_line(r"listening on \S+:(\d+)").group(1))
    except RuntimeError:
        backend.stop()
        raise


def run_bulk_modes(ctx, workload, targets, backend_binary, main):
    """The timed rounds of bulk |workload| in every --bulk-modes mode other than |main|
    (which the workload's own table already ran), each on a fresh backend:
    [(mode, requests, summaries or None, runs or why it was skipped)]."""
    args = ctx.args
    requests = workload.requests_for(args.bulk_count_mib)
    chosen = [t for t in targets if t.name in args.bulk_mode_targets]
    results = []
    for mode in args.bulk_modes:
        if mode == main or not chosen:
            continue
        if mode.pinned and ctx.pins["load"] is None:
            results.append((mode, requests, None, "skipped: nothing is pinned (--no-pin, one "
                            "CPU or no taskset)"))
            continue
        variant = workload.variant(mode, requests)
        print(f"{workload.name} [{mode.text(args.duration, requests)}]", file=sys.stderr,
              flush=True)
        backend, port = start_backend(backend_binary, variant.pins(ctx)["backend"])
        try:
            mode_ctx = dataclasses.replace(ctx, backend=backend, backend_port=port)
            summaries, runs = run_workload(mode_ctx, variant, chosen)
        finally:
            backend.stop()
        results.append((mode, requests, summaries, runs))
    return results


def all_workloads(args):
    """Every workload by name, in report order: bench_workloads.py's, then the web ones."""
    return {**make_workloads(args), **web_workloads()}


def skipped_text(workload, skipped):
    """One line naming the targets of |workload| that could not run at all, or ""."""
    mine = [t for t in skipped if t.name in workload.targets]
    return ("Not run: " + "; ".join(f"{t.name} ({t.skipped})" for t in mine) + "."
            if mine else "")


def main():
    workloads = all_workloads(argparse.Namespace(idle_connections=2000, open_connections=50,
                                                 open_streams=100))
    args = parse_args(list(workloads))
    workloads = all_workloads(args)
    build = Path(args.build)
    if not build.is_absolute():
        build = REPO / build
    backend_binary = binary(args.backend, build / "bench" / "echo_backend")
    load_client = binary(args.load_client, build / "bench" / "load_client")
    grelay_binary = binary(args.grelay, build / "grelay", build / "src" / "app" / "grelay")
    attacker = binary(args.rapid_reset, build / "bench" / "rapid_reset")
    embed_binary = binary(None, build / "examples" / "embed" / "embed_server")
    needed = [(backend_binary, "echo_backend"), (load_client, "load_client")]
    if "underattack" in args.workloads:
        needed.append((attacker, "rapid_reset"))
    for path, name in needed:
        if path is None:
            sys.exit(f"bench: no {name} in {build}/bench; build it with ninja -C {build}")
    if shutil.which("h2load") is None:
        sys.exit("bench: h2load not on PATH (Debian package nghttp2-client)")
    command = shlex.join([sys.executable] + sys.argv)
    nofile = raise_fd_limit()
    busy = busy_processes()
    if busy:
        print(f"bench: other processes are busy: {', '.join(busy)}; numbers will be noisy",
              file=sys.stderr)
    pins, pin_text = pin_plan(not args.no_pin)

    names = list(args.targets)
    if "workers2" in args.workloads:
        names += [n + "-w2" for n in ("grelay", "nghttpx") if n in names]
    if "unary100tls" in args.workloads:
        names += [n + "-tls" for n in ("grelay", "nghttpx") if n in names]
    baseline_workloads = ("unary100", "unary64k", "stream1k", "serial1m")
    if args.baseline and "grelay" in names and any(w in baseline_workloads
                                                   for w in args.workloads):
        names.append("grelay-baseline")
    if "unary100" in args.workloads and "grelay" in names:
        names.append("grelay-embedded")
    if any(w in web_workloads() for w in args.workloads):
        # Plain gRPC and gRPC-Web calls to the same web-enabled config of each proxy.
        names += [n + end for n in ("grelay", "envoy") if n in names for end in ("-grpc", "-web")]
    all_targets = make_targets(names, grelay_binary, args.baseline, embed_binary)
    skipped = [t for t in all_targets if t.skipped]
    runnable = [t for t in all_targets if not t.skipped]
    for t in skipped:
        print(f"bench: skipping {t.name}: {t.skipped}", file=sys.stderr)
    versions = {"h2load": first_line(["h2load", "--version"])}
    for t in runnable:
        if t.kind not in versions and t.version():
            versions[t.kind] = t.version()

    workdir = tempfile.TemporaryDirectory(prefix="grelay-bench-")
    backend = None
    sections = []
    try:
        for name in args.workloads:
            workload = workloads[name]
            targets = [t for t in runnable if t.name in workload.targets]
            if not targets:
                continue
            print(f"{workload.name}: {workload.description}", file=sys.stderr, flush=True)
            # A fresh backend for each workload: what an earlier one left in its memory
            # (thousands of held streams, grown free lists) must not slow a later one.
            backend, port = start_backend(backend_binary, pins["backend"])
            ctx = Context(args, pins, Path(workdir.name), backend, port, load_client, nofile,
                          attacker)
            summaries, runs = run_workload(ctx, workload, targets)
            extra = []
            if (isinstance(workload, HeldMemory) and not args.no_heaptrack
                    and any(s["target"] == "grelay" and "error" not in s for s in summaries)):
                extra = where_bytes_go(ctx, workload, grelay_binary)
            counts = []
            if getattr(workload, "bulk", False) and not args.no_counts:
                counted, problem = count_pass(ctx, workload, targets, build, args.count_mib)
                counts = counts_table(counted, problem)
            backend.stop()
            backend = None
            modes = []
            if getattr(workload, "bulk", False) and args.bulk_modes:
                main_mode = BulkMode(count=False, pinned=pins["load"] is not None)
                modes = modes_table(workload, [(main_mode, None, summaries, runs)] + run_bulk_modes(
                    ctx, workload, targets, backend_binary, main_mode), args.duration)
            not_run = skipped_text(workload, skipped)
            sections.append(Section(workload, summaries, runs, workload.pinning_text(ctx), extra,
                                    counts, modes, not_run))
            print("\n".join(workload_table(workload, summaries) + [""] + extra
                            + ([not_run, ""] if not_run else [])
                            + ([""] + counts if counts else [])
                            + ([""] + modes if modes else [])) + "\n", flush=True)
        results = {s.workload.name: {r["target"]: r for r in s.summaries} for s in sections}
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        png = out.with_suffix(".png")
        chart_problem = chart(results, Path(workdir.name), png)
    except RuntimeError as error:  # The backend did not start.
        sys.exit(f"bench: {error}")
    finally:
        for target in runnable:
            target.stop()
        if backend:
            backend.stop()
        workdir.cleanup()
    write_report(args, out, png, chart_problem, command, pin_text, busy, versions, runnable,
                 skipped, sections, results)


def write_report(args, out, png, chart_problem, command, pin_text, busy, versions, targets,
                 skipped, sections, results):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# grelay benchmark",
        "",
        f"- date: {now}",
        f"- machine: {machine_info()}",
        f"- CPU model: {cpu_model()} (ratios of one machine need not hold on another: compare "
        "reports by this line)",
        f"- pinning: {pin_text}, except where a workload says otherwise",
        f"- runs: {args.duration} s per measured run after {args.warmup} s warm-up, "
        f"{args.rounds} rounds, median shown; runs with other load above "
        f"{args.max_other_load:.0f}% of a core or hypervisor steal above {args.max_steal:.0f}% "
        f"repeated up to {args.retries} times",
        f"- command: `{command}`",
        "- other processes busy when the run started: " + (", ".join(busy) if busy else "none"),
        "- what each table means, and the fairness choices: bench/README.md",
    ]
    lines += [f"- {name}: {version}" for name, version in versions.items()]
    for t in skipped:
        label = "Envoy" if t.name == "envoy" else t.name
        lines.append(f"- {label}: skipped ({t.skipped})")
    lines += ["", "## Goals", "", "| goal | measured | verdict |", "|---|---|---|"]
    lines += [f"| {g} | {m} | {'**' + v + '**' if v in ('PASS', 'FAIL') else v} |"
              for g, m, v in goals(results)]
    lines += ["", f"![chart]({png.name})" if not chart_problem else f"({chart_problem})"]
    for section in sections:
        workload, runs = section.workload, section.runs
        lines += ["", f"## {workload.name}", "", workload.description[0].upper()
                  + workload.description[1:] + f". Load: {workload.tool}. Pinning: "
                  f"{section.pinning}.", ""]
        lines += workload_table(workload, section.summaries)
        if section.skipped:
            lines += ["", section.skipped]
        if section.extra:
            lines += [""] + section.extra
        if section.counts:
            lines += ["", f"### {workload.name}: syscalls, frames and copies per MiB (counting "
                      "pass)", ""] + section.counts
        if section.modes:
            lines += ["", f"### {workload.name}: by duration and by count, pinned and not",
                      ""] + section.modes
        note = load_note(runs) if workload.retry_on_noise else None
        if note:
            lines += ["", note]
        command = workload.command(runs)
        if command:
            lines += ["", f"Load command: `{command}`"]
        flat = sorted((r for rs in runs.values() for r in rs), key=lambda r: r["round"])
        if flat:
            lines += ["", "Every kept run, by round:", "", "```"]
            lines += [f"round {r['round']} {workload.run_line(r)}" for r in flat]
            lines += ["```"]
    lines += ["", "## Targets", "", "How each target was last started (each workload's section "
              "says how it was pinned) and its configuration.", ""]
    for t in targets:
        lines.append(f"- {t.name}: `{t.command or '(not started)'}`")
        if t.config_text:
            lines += ["", f"  ```{t.config_lang}"] + [
                "  " + line if line else "" for line in t.config_text.rstrip().splitlines()
            ] + ["  ```", ""]
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)
    print(f"report written to {out}" + ("" if chart_problem else f", chart to {png}"),
          file=sys.stderr)


if __name__ == "__main__":
    main()
