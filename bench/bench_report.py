"""The report of bench.py: one Markdown table per workload, the goals of the speed issue
with PASS/FAIL, and a PNG chart drawn by gnuplot."""

import shutil
import statistics
import subprocess

from bench_counts import READS, WRITES
from bench_workloads import (BULK_MODES, Bidi, H2loadThroughput, Latency, MIB, Scaling,
                             UnderAttack)

PEER_NAMES = ("nghttpx", "haproxy", "nginx", "envoy")


def fmt(value, digits=1, suffix=""):
    return "—" if value is None else f"{value:,.{digits}f}{suffix}"


def ratio(a, b):
    return a / b if a is not None and b else None


def row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table_lines(head, rows):
    return [row(head), "|" + "---|" * len(head)] + [row(r) for r in rows]


def error_row(summary, width):
    return [summary["target"], f"**failed**: {summary['error']}"] + ["—"] * (width - 2)


def body_cell(s, workload):
    text = fmt(s["body_per_call"], 0)
    if not s["body_ok"]:
        text += f" (expected {workload.body_size:,}; {s['problem'] or 'not echoed'})"
    return text


def throughput_table(workload, summaries):
    by = {s["target"]: s for s in summaries if "error" not in s}
    # Over TLS the reference is nghttpx with a TLS frontend.
    ref = (by.get("nghttpx") or by.get("nghttpx-tls") or {}).get("value")
    direct = by.get("direct", {}).get("value")
    if workload.unit == "calls":
        head = ["target", "calls/s (median)", "min–max", "vs nghttpx", "proxy CPU µs/call",
                "proxy CPU % of a core", "proxy peak RSS MiB", "backend CPU µs/call",
                "failed", "errored", "response B/call"]
    else:
        head = ["target", "MiB/s echoed (median)", "min–max", "vs nghttpx", "vs direct",
                "calls/s", "proxy CPU µs/call", "proxy CPU µs/MiB", "proxy CPU % of a core",
                "backend + h2load CPU % of a core", "proxy peak RSS MiB", "failed", "errored",
                "response B/call"]
    rows = []
    for s in summaries:
        if "error" in s:
            rows.append(error_row(s, len(head)))
            continue
        scale = 1 if workload.unit == "calls" else MIB
        spread = f"{fmt(s['min'] / scale, 1 if scale > 1 else 0)}–" \
                 f"{fmt(s['max'] / scale, 1 if scale > 1 else 0)}"
        if workload.unit == "calls":
            rows.append([s["target"], fmt(s["value"], 0), spread,
                         fmt(ratio(s["value"], ref), 2, "x"), fmt(s["proxy_us"], 2),
                         fmt(s["proxy_load"], 0), fmt(s["rss"], 1), fmt(s["backend_us"], 2),
                         s["failed"], s["errored"], body_cell(s, workload)])
        else:
            rows.append([s["target"], fmt(s["value"] / MIB, 1), spread,
                         fmt(ratio(s["value"], ref), 2, "x"),
                         fmt(ratio(s["value"], direct), 2, "x"), fmt(s["calls_s"], 0),
                         fmt(s["proxy_us"], 1), fmt(s["proxy_us_mib"], 0),
                         fmt(s["proxy_load"], 0), fmt(s["backend_load"] + s["load_load"], 0),
                         fmt(s["rss"], 1), s["failed"], s["errored"], body_cell(s, workload)])
    return table_lines(head, rows)


def scaling_table(workload, summaries):
    by = {s["target"]: s for s in summaries if "error" not in s}
    head = ["target", "calls/s (median)", "min–max", "vs 1 worker", "proxy CPU µs/call",
            "proxy CPU % of a core", "backend % of a core", "h2load % of a core",
            "proxy + backend + h2load, % of 2 cores", "response B/call"]
    rows = []
    for s in summaries:
        if "error" in s:
            rows.append(error_row(s, len(head)))
            continue
        one = by.get(s["target"].split("-w")[0]) if "-w" in s["target"] else None
        used = sum(v for v in (s["proxy_load"], s["backend_load"], s["load_load"]) if v)
        rows.append([s["target"], fmt(s["value"], 0), f"{fmt(s['min'], 0)}–{fmt(s['max'], 0)}",
                     fmt(ratio(s["value"], one["value"]) if one else None, 2, "x"),
                     fmt(s["proxy_us"], 2), fmt(s["proxy_load"], 0), fmt(s["backend_load"], 0),
                     fmt(s["load_load"], 0), fmt(used / 2, 0), body_cell(s, workload)])
    return table_lines(head, rows)


def latency_table(workload, summaries):
    by = {s["target"]: s for s in summaries if "error" not in s}
    direct = by.get("direct")
    head = ["target", "p50 µs", "p99 µs", "p99.9 µs", "mean µs", "p50 added vs direct",
            "p99 added vs direct", "calls/s", "proxy CPU µs/call", "samples"]
    rows = []
    for s in summaries:
        if "error" in s:
            rows.append(error_row(s, len(head)))
            continue
        added = [None if not direct or s["target"] == "direct" else s[k] - direct[k]
                 for k in ("p50", "p99")]
        rows.append([s["target"], fmt(s["p50"]), fmt(s["p99"]), fmt(s["p999"]), fmt(s["mean"]),
                     fmt(added[0], 1, " µs"), fmt(added[1], 1, " µs"), fmt(s["calls_s"], 0),
                     fmt(s["proxy_us"], 2), f"{s['samples']:,}"])
    return table_lines(head, rows)


def bidi_table(workload, summaries):
    by = {s["target"]: s for s in summaries if "error" not in s}
    ref = by.get("nghttpx", {}).get("value")
    head = ["target", "MiB/s echoed (median)", "min–max", "messages/s", "vs nghttpx",
            "proxy CPU µs/message", "proxy CPU % of a core", "proxy peak RSS MiB"]
    rows = []
    for s in summaries:
        if "error" in s:
            rows.append(error_row(s, len(head)))
            continue
        rows.append([s["target"], fmt(s["value"] / MIB, 1),
                     f"{fmt(s['min'] / MIB)}–{fmt(s['max'] / MIB)}", fmt(s["messages_s"], 0),
                     fmt(ratio(s["value"], ref), 2, "x"), fmt(s["proxy_us"], 3),
                     fmt(s["proxy_load"], 0), fmt(s["rss"], 1)])
    return table_lines(head, rows)


def memory_table(workload, summaries):
    by = {s["target"]: s for s in summaries if "error" not in s}
    mine = by.get("grelay", {}).get("value")
    unit = workload.unit
    head = ["target", f"RSS per {unit}, bytes (median)", "min–max", "vs grelay",
            "RSS before → held, MiB", "Δ heap / anon mmap / file, KiB", "proxy fds opened",
            "held intact"]
    rows = []
    for s in summaries:
        if "error" in s:
            rows.append(error_row(s, len(head)))
            continue
        m = s["map_delta"]
        rows.append([s["target"], fmt(s["value"], 0), f"{fmt(s['min'], 0)}–{fmt(s['max'], 0)}",
                     fmt(ratio(s["value"], mine), 2, "x"),
                     f"{s['before_kib'] / 1024:.1f} → {s['held_kib'] / 1024:.1f}",
                     f"{m['heap']:+,.0f} / {m['anon']:+,.0f} / {m['file']:+,.0f}",
                     f"{s['fds']:+,.0f}", s["lost"]])
    return table_lines(head, rows)


def goaway_text(goaway):
    return ", ".join(f"{code} {count:,}" for code, count in sorted(goaway.items())) or "none"


def attack_table(workload, summaries):
    head = ["target", "legit calls/s under attack (median)", "without attack", "kept (ratio)",
            "legit p99 ms under attack", "without attack", "longest stall s (max)",
            "legit calls unfinished / errored / not echoed", "proxy CPU % of a core under "
            "attack (without)", "proxy peak RSS MiB", "attack streams/s sent (MB/s)",
            "attack connections closed by the proxy per run (GOAWAYs received, all runs)",
            "attack bursts skipped %", "attack streams reaching the backend per run (% of sent)",
            "backend CPU % under attack"]
    rows = []
    for s in summaries:
        if "error" in s:
            rows.append(error_row(s, len(head)))
            continue
        rows.append([s["target"], fmt(s["calls_s"], 0), fmt(s["calls_s_quiet"], 0),
                     fmt(s["ratio"], 2, "x"), fmt(s["p99"], 2), fmt(s["p99_quiet"], 2),
                     f"{fmt(s['stall'], 2)} ({fmt(s['stall_max'], 2)})",
                     f"{s['unfinished']:,} / {s['errors']:,} / {s['not_echoed']:,}",
                     f"{fmt(s['proxy_load'], 0)} ({fmt(s['proxy_load_quiet'], 0)})",
                     fmt(s["rss"], 1),
                     f"{fmt(s['attack_streams_s'], 0)} ({fmt(s['attack_mb_s'], 2)})",
                     f"{fmt(s['closed'], 0)} ({goaway_text(s['goaway'])})",
                     fmt(s["skipped"], 0),
                     f"{fmt(s['reached'], 0)} ({fmt(s['reached_share'], 0)}%)",
                     fmt(s["backend_load"], 0)])
    runs = max((s.get("runs", 0) for s in summaries), default=0)
    return table_lines(head, rows) + [
        "", f"Unfinished: calls still in flight when h2load stopped, summed over the {runs} "
        f"runs; up to {workload.clients * workload.streams} per run (every stream of a busy client) are normal, more means calls that never "
        "came back. Longest stall: the longest time during the measured run in which no "
        "legitimate call completed (median over runs, max in brackets)."]


def workload_table(workload, summaries):
    if hasattr(workload, "table"):  # A workload that draws its own (bench_web.py).
        return workload.table(summaries)
    if isinstance(workload, UnderAttack):
        return attack_table(workload, summaries)
    if isinstance(workload, Scaling):
        return scaling_table(workload, summaries)
    if isinstance(workload, H2loadThroughput):
        return throughput_table(workload, summaries)
    if isinstance(workload, Latency):
        return latency_table(workload, summaries)
    if isinstance(workload, Bidi):
        return bidi_table(workload, summaries)
    return memory_table(workload, summaries)


def load_note(runs):
    """One line on how busy the machine was with other work while we measured."""
    flat = [r for target_runs in runs.values() for r in target_runs if "other_load" in r]
    if not flat:
        return None
    other = [r["other_load"] for r in flat]
    note = (f"Other load during the measured runs (CPU used by anything but the proxy, the "
            f"backend and the load client): median {statistics.median(other):.0f}% of a core, "
            f"max {max(other):.0f}%; hypervisor steal max "
            f"{max(r['steal'] for r in flat):.0f}%.")
    if max(other) > 25 or max(r["steal"] for r in flat) > 10:
        note += " **The machine was not quiet: treat rates and latencies with caution.**"
    return note


# ---------------------------------------------------------------------------------------
# Goals


def goals(results):
    """[(goal, measured, verdict)] for the speed issue's goals, from
    results[workload][target] = summary."""
    def get(workload, target):
        s = results.get(workload, {}).get(target)
        return s if s and "error" not in s else None

    def verdict(ok):
        return "PASS" if ok else "FAIL"

    def missing(workload, *targets):
        gone = [t for t in targets if not get(workload, t)]
        if workload not in results:
            return f"n/a ({workload} not run)"
        if gone:
            why = [results[workload][t]["error"] for t in gone if t in results[workload]]
            return f"n/a ({', '.join(gone)} did not run{': ' + why[0] if why else ''})"
        return None

    def echo_problem(workload, me="grelay"):
        s = get(workload, me)
        return s is not None and "body_ok" in s and not s["body_ok"]

    out = []

    def vs(workload, goal, ref, need, what, me="grelay"):
        gap = missing(workload, me, ref)
        if gap:
            out.append((goal, "—", gap))
            return
        mine, theirs = get(workload, me), get(workload, ref)
        r = mine["value"] / theirs["value"]
        scale, unit = (1, "calls/s") if what == "calls" else (MIB, "MiB/s")
        measured = (f"{r:.2f}x ({mine['value'] / scale:,.{0 if scale == 1 else 1}f} vs "
                    f"{theirs['value'] / scale:,.{0 if scale == 1 else 1}f} {unit})")
        if echo_problem(workload, me):
            out.append((goal, measured + f"; {me}'s calls were not echoed", "FAIL"))
        else:
            out.append((goal, measured, verdict(r >= need)))

    vs("unary100", "Unary 100 B (16 x 32): grelay calls/s >= 1.5x nghttpx", "nghttpx", 1.5,
       "calls")
    mine = get("unary100", "grelay")
    out.append(("Unary 100 B: grelay CPU <= 3 µs per call (utime+stime / calls)",
                f"{mine['proxy_us']:.2f} µs/call" if mine else "—",
                verdict(mine["proxy_us"] <= 3) if mine else missing("unary100", "grelay")))
    embedded = get("unary100", "grelay-embedded")
    goal = ("Unary 100 B: embedded relay (StreamRelay, examples/embed) CPU per call within 10% "
            "of the grelay binary's")
    if mine and embedded:
        r = embedded["proxy_us"] / mine["proxy_us"]
        out.append((goal, f"{embedded['proxy_us']:.2f} vs {mine['proxy_us']:.2f} µs/call "
                    f"({r:.2f}x)", verdict(r <= 1.10)))
    else:
        out.append((goal, "—", missing("unary100", "grelay", "grelay-embedded")))
    vs("unary64k", "Unary 64 KiB (4 x 8): grelay bytes/s >= 1.3x nghttpx", "nghttpx", 1.3,
       "bytes")
    vs("stream1k", "Streamed 1 KiB messages, 1 MiB bodies (4 x 4): grelay bytes/s >= 1.3x "
       "nghttpx", "nghttpx", 1.3, "bytes")
    vs("serial1m", "One stream, 1 MiB messages, serial: grelay bytes/s >= 0.65x direct",
       "direct", 0.65, "bytes")
    vs("unary100tls", "Unary 100 B over TLS (16 x 32): grelay calls/s >= 1.5x nghttpx",
       "nghttpx-tls", 1.5, "calls", me="grelay-tls")

    for key, label in (("p50", "p50"), ("p99", "p99")):
        goal = (f"Latency at low load (1 connection, 1 call): {label} added by grelay over "
                "direct <= the best peer's")
        peers = [p for p in PEER_NAMES if get("latency", p)]
        gap = missing("latency", "grelay", "direct")
        if gap or not peers:
            out.append((goal, "—", gap or "n/a (no peer ran)"))
            continue
        base = get("latency", "direct")[key]
        added = {p: get("latency", p)[key] - base for p in peers}
        best = min(added, key=added.get)
        mine = get("latency", "grelay")[key] - base
        out.append((goal, f"grelay +{mine:.1f} µs; best peer {best} +{added[best]:.1f} µs "
                    f"(direct {base:.1f} µs)", verdict(mine <= added[best])))

    mine = get("idle_rss", "grelay")
    peers = {p: get("idle_rss", p)["value"] for p in PEER_NAMES if get("idle_rss", p)}
    peer_text = ", ".join(f"{p} {v:,.0f} B" for p, v in peers.items())
    out.append(("Idle h2c connection (2,000 held): <= 16 KiB RSS each",
                f"{mine['value']:,.0f} B per connection" + (f" (peers: {peer_text})"
                                                             if peers else "")
                if mine else "—",
                verdict(mine["value"] <= 16384) if mine else missing("idle_rss", "grelay")))

    mine = get("open_streams", "grelay")
    peers = {p: get("open_streams", p)["value"] for p in PEER_NAMES if get("open_streams", p)}
    if mine and peers:
        best = min(peers, key=peers.get)
        out.append(("Open streams (5,000): RSS per stream below every peer",
                    f"grelay {mine['value']:,.0f} B; lowest peer {best} "
                    f"{peers[best]:,.0f} B", verdict(mine["value"] < peers[best])))
    else:
        out.append(("Open streams (5,000): RSS per stream below every peer", "—",
                    missing("open_streams", "grelay") or "n/a (no peer ran)"))

    one, two = get("workers2", "grelay"), get("workers2", "grelay-w2")
    goal = "workers = 2: throughput scales (unary100; this report counts >= 1.2x as scaling)"
    if one and two:
        r = two["value"] / one["value"]
        extra = ""
        n1, n2 = get("workers2", "nghttpx"), get("workers2", "nghttpx-w2")
        if n1 and n2:
            extra = f"; nghttpx 2/1 workers: {n2['value'] / n1['value']:.2f}x"
        out.append((goal, f"{r:.2f}x ({two['value']:,.0f} vs {one['value']:,.0f} calls/s"
                    f"{extra})", verdict(r >= 1.2)))
    else:
        out.append((goal, "—", missing("workers2", "grelay", "grelay-w2")))

    goal = ("Under a rapid-reset attack (30 connections x 990 HEADERS+RST_STREAM per "
            "second): grelay keeps at least the best peer's legit calls/s ratio and p99")
    mine = get("underattack", "grelay")
    peers = {p: get("underattack", p) for p in PEER_NAMES if get("underattack", p)}
    if mine and peers:
        inf = float("inf")

        def p99(s):  # No legitimate call completed: no p99, worse than any.
            return inf if s["p99"] is None else s["p99"]

        best_ratio = max(peers, key=lambda p: peers[p]["ratio"])
        best_p99 = min(peers, key=lambda p: p99(peers[p]))
        ok = (mine["ratio"] >= peers[best_ratio]["ratio"]
              and p99(mine) <= p99(peers[best_p99]))
        def p99_text(s):
            return "no call completed" if s["p99"] is None else f"{s['p99']:,.2f} ms"

        out.append((goal, f"grelay {mine['ratio']:.2f}x, p99 {p99_text(mine)}; best peers: "
                    f"{best_ratio} {peers[best_ratio]['ratio']:.2f}x, {best_p99} p99 "
                    f"{p99_text(peers[best_p99])}", verdict(ok)))
    else:
        out.append((goal, "—", missing("underattack", "grelay") or "n/a (no peer ran)"))
    return out


# ---------------------------------------------------------------------------------------
# Chart


def chart(results, workdir, png):
    """Draws |png| with gnuplot. Returns None, or why there is no chart."""
    if shutil.which("gnuplot") is None:
        return "no chart: gnuplot not on PATH (Debian package gnuplot-nox)"

    def get(workload, target, key="value"):
        s = results.get(workload, {}).get(target)
        return s.get(key) if s and "error" not in s else None

    def cell(value):
        return "?" if value is None else f"{value:.4g}"

    series = [t for t in ("grelay",) + PEER_NAMES
              if any(get(w, t) is not None for w in results)]
    # nghttpx is the 1.0 line of the ratio panel, not a bar.
    others = [t for t in series if t != "nghttpx"]
    ratio_rows = []
    for w in ("unary100", "unary64k", "stream1k", "serial1m", "bidi1k"):
        ref = get(w, "nghttpx")
        if w in results and ref:
            ratio_rows.append([w] + [cell(ratio(get(w, t), ref)) for t in others])
    cpu_rows = [[t, cell(get("unary100", t, "proxy_us"))] for t in series
                if get("unary100", t, "proxy_us") is not None]
    lat_rows = []
    direct = results.get("latency", {}).get("direct")
    if direct and "error" not in direct:
        for t in series:
            if get("latency", t, "p50") is not None:
                lat_rows.append([t, cell(get("latency", t, "p50") - direct["p50"]),
                                 cell(get("latency", t, "p99") - direct["p99"])])
    mem_rows = [[t, cell(get("idle_rss", t)), cell(get("open_streams", t))] for t in series
                if get("idle_rss", t) is not None or get("open_streams", t) is not None]

    def write(name, rows, header):
        path = workdir / name
        path.write_text("# " + " ".join(header) + "\n" +
                        "".join(" ".join(f'"{r[0]}"' if i == 0 else r[i] for i in range(len(r)))
                                + "\n" for r in rows))
        return path

    panels = []
    if ratio_rows and others:
        path = write("ratios.dat", ratio_rows, ["workload"] + others)
        plots = ", ".join(f"'{path}' using {i + 2}{':xtic(1)' if i == 0 else ''} title '{t}'"
                          for i, t in enumerate(others))
        panels.append("set title 'Throughput vs nghttpx (1 worker each; 1.0 = nghttpx)'\n"
                      "set ylabel 'ratio'\nset yrange [0:*]\n"
                      f"plot {plots}, 1 with lines dt 2 lc rgb 'black' notitle\n")
    if cpu_rows:
        path = write("cpu.dat", cpu_rows, ["target", "us"])
        panels.append("set title 'Proxy CPU per unary 100 B call (goal: grelay <= 3 µs)'\n"
                      "set ylabel 'µs per call'\nset yrange [0:*]\n"
                      f"plot '{path}' using 2:xtic(1) notitle lc rgb '#4477aa', "
                      "3 with lines dt 2 lc rgb 'red' notitle\n")
    if lat_rows:
        path = write("latency.dat", lat_rows, ["target", "p50", "p99"])
        low = "0" if all(float(r[1]) >= 0 and float(r[2]) >= 0 for r in lat_rows
                         if "?" not in r) else "*"
        panels.append("set title 'Latency added over direct (1 connection, 1 call; h2load log)'\n"
                      f"set ylabel 'µs'\nset yrange [{low}:*]\nset key top left\n"
                      f"plot '{path}' using 2:xtic(1) title 'p50', '' using 3 title 'p99'\n"
                      "set key top right\n")
    if mem_rows:
        path = write("memory.dat", mem_rows, ["target", "idle", "stream"])
        panels.append("set title 'RSS per idle connection and per open stream'\n"
                      "set ylabel 'bytes'\nset yrange [0:*]\n"
                      f"plot '{path}' using 2:xtic(1) title 'per idle connection (2,000)', "
                      "'' using 3 title 'per open stream (5,000)'\n")
    if not panels:
        return "no chart: no workload with data for it"
    script = workdir / "chart.gp"
    script.write_text(
        f"set terminal pngcairo size 1600,1100 font 'sans,11'\nset output '{png}'\n"
        "set datafile missing '?'\nset style data histograms\n"
        "set style histogram clustered gap 1\nset style fill solid 0.85 border -1\n"
        "set boxwidth 0.9\nset grid ytics\nset key top right\nset xtics nomirror\n"
        "set offsets 0, 0, graph 0.1, 0\n"
        f"set multiplot layout 2,2 title 'grelay benchmark'\n" + "".join(panels) +
        "unset multiplot\n")
    out = subprocess.run(["gnuplot", str(script)], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return "no chart: gnuplot failed: " + " ".join(out.stderr.split())[-300:]
    return None


# ---------------------------------------------------------------------------------------
# Where the bytes go: the counting pass (bench_counts.py)


def _per(value, total, scale=1.0):
    return value / total * scale if value is not None and total else None


def count_rows(c):
    """{row label: (number or None, text)} for one proxy's counts."""
    mib = c["echoed"] / MIB
    relayed = c["backend"]["data_bytes_in"] + c["echoed"]  # Request plus response DATA.
    io, copies, trace = c["io"], c["copies"], c["strace"]
    rows = {}

    def put(label, value, digits=1, text=None):
        rows[label] = (value, text if text is not None else fmt(value, digits))

    put("MiB echoed (counting run)", mib, 1)
    put("proxy CPU µs per MiB echoed (copy counter loaded)", _per(c["proxy_cpu"] * 1e6, mib), 0)
    # The kernel's part is the sockets' work (two copies per byte each way, TCP, wake-ups),
    # the same for every proxy relaying the same bytes; the user part is the proxy's own.
    put("… of it in user space (utime)", _per(c.get("proxy_user", 0) * 1e6, mib), 0)
    put("… of it in the kernel (stime)", _per(c.get("proxy_system", 0) * 1e6, mib), 0)
    # /proc/PID/io sees read/readv/write/writev only: a proxy using recv/send shows nothing.
    io_ok = io["rchar"] >= 0.5 * relayed
    put("read, readv calls per MiB (/proc/PID/io)", _per(io["syscr"], mib) if io_ok else None)
    put("bytes per read call (/proc/PID/io)", _per(io["rchar"], io["syscr"]) if io_ok else None,
        0)
    io_ok = io["wchar"] >= 0.5 * relayed
    put("write, writev calls per MiB (/proc/PID/io)", _per(io["syscw"], mib) if io_ok else None)
    put("bytes per write call (/proc/PID/io)", _per(io["wchar"], io["syscw"]) if io_ok else None,
        0)
    tmib = trace["echoed"] / MIB
    calls = trace["calls"]
    put("syscalls per MiB, all (strace)", _per(sum(calls.values()), tmib))
    for label, names in (("read", READS), ("write", WRITES)):
        made = sum(calls.get(n, 0) for n in names)
        again = sum(trace["eagain"].get(n, 0) for n in names)
        moved = sum(trace["bytes"].get(n, 0) for n in names)
        used = ", ".join(n for n in names if calls.get(n)) or "none"
        value = _per(made, tmib)
        put(f"{label} calls per MiB (strace; which calls)", value,
            text=f"{fmt(value)} ({used})")
        put(f"… {label}s that returned EAGAIN, per MiB (strace)", _per(again, tmib))
        put(f"bytes per {label} call that moved data (strace)", _per(moved, made - again), 0)
    waits = sum(v for n, v in calls.items() if n.startswith("epoll_wait") or n == "epoll_pwait")
    put("epoll_wait calls per MiB (strace)", _per(waits, tmib))
    top = sorted(calls.items(), key=lambda item: -item[1])[:5]
    rows["most frequent syscalls, per MiB (strace)"] = (None, ", ".join(
        f"{name} {count / max(tmib, 1e-9):,.0f}" for name, count in top
        if count / max(tmib, 1e-9) >= 0.5) or "—")

    def frames(side, key):
        if side is None or not side[f"data_frames_{key}"]:
            return (None, "—")
        count, size = side[f"data_frames_{key}"], side[f"data_bytes_{key}"]
        per_mib = count / max(size / MIB, 1e-9)
        return (per_mib, f"{per_mib:,.0f} ({size / count:,.0f} B each)")

    rows["DATA frames per MiB, client → proxy (h2load's own framing)"] = frames(c["client"], "out")
    rows["DATA frames per MiB, proxy → backend (the proxy's request framing)"] = frames(
        c["backend"], "in")
    rows["DATA frames per MiB, backend → proxy (the echo backend's own framing)"] = frames(
        c["backend"], "out")
    rows["DATA frames per MiB, proxy → client (the proxy's response framing)"] = frames(
        c["client"], "in")
    copied = copies["copy_bytes"] + copies["move_bytes"]
    put("userspace bytes copied per relayed byte (memcpy + memmove)", _per(copied, relayed), 3)
    put("… by memcpy, mempcpy", _per(copies["copy_bytes"], relayed), 3)
    put("… by memmove", _per(copies["move_bytes"], relayed), 3)
    put("memcpy + memmove calls per MiB echoed",
        _per(copies["copy_calls"] + copies["move_calls"], mib), 0)
    big = copies["copy_big_bytes"] + copies["move_big_bytes"]
    put("share of copied bytes in copies of 1 KiB or more", _per(big, copied, 100), 0,
        None if not copied else f"{big / copied * 100:.0f}%")
    return rows


def counts_table(counts, problem=None):
    """Markdown lines for a workload's counting pass: one row per count, one column per
    proxy, and grelay's ratio to nghttpx."""
    if problem:
        return [f"Counting pass: not run ({problem})."]
    if not counts:
        return []
    good = [c for c in counts if "error" not in c]
    lines = []
    if good:
        per = {c["target"]: count_rows(c) for c in good}
        names = [c["target"] for c in good]
        with_ratio = "grelay" in per and "nghttpx" in per
        head = ["per MiB echoed unless said"] + names + (["grelay / nghttpx"] if with_ratio else [])
        rows = []
        for label in per[names[0]]:
            cells = [label] + [per[n][label][1] for n in names]
            if with_ratio:
                mine, theirs = per["grelay"][label][0], per["nghttpx"][label][0]
                # Against a count that is next to nothing a ratio says nothing.
                meaningful = theirs is not None and mine is not None and theirs >= 0.01 and (
                    mine == 0 or 0.01 <= mine / theirs <= 100)
                cells.append(fmt(ratio(mine, theirs), 2, "x") if meaningful else "—")
            rows.append(cells)
        lines += table_lines(head, rows)
        if with_ratio:
            floor = ratio(per["grelay"]["… of it in the kernel (stime)"][0],
                          per["nghttpx"]["proxy CPU µs per MiB echoed (copy counter loaded)"][0])
            if floor is not None:
                lines += ["", f"grelay's kernel time alone is {floor:.2f}x nghttpx's whole CPU "
                          "per MiB here: the lowest ratio of CPU per MiB grelay could reach "
                          "if its own (user-space) work cost nothing, with the sockets' work "
                          "as it is."]
        first = good[0]
        client = ("client side counted in h2load (frame_count_preload.so)" if first["client"]
                  else "client side not counted (no frame_count_preload.so)")
        lines += ["", f"Counting pass (untimed, after the timed rounds; each proxy restarted "
                  f"with copy_count_preload.so): `{first['command']}` ({first['requests']:,} "
                  f"calls), once as is and once with `strace -f` attached; {client}, backend "
                  "side by the echo backend's counters. strace slows the proxy several times "
                  "over, so more data waits between its reads and writes: its bytes per call "
                  "are an upper bound, the /proc/PID/io rows (read, readv, write, writev "
                  "only; — for a proxy that uses recv/send) are from the undisturbed run. "
                  "Relayed bytes: request DATA the backend received plus response DATA the "
                  "client received. Copies the compiler inlined and the kernel's copies "
                  "(the syscalls' bytes) are not in the copy rows."]
    for c in counts:
        if "error" in c:
            lines += ["", f"Counting pass, {c['target']}: **failed**: {c['error']}"]
    return lines


# ---------------------------------------------------------------------------------------
# Bulk modes: by duration and by count, pinned and not


def _round_ratios(runs, target, key):
    """{round: target's value / nghttpx's value} for the rounds both ran; |key| gives a
    run's value."""
    mine = {r["round"]: key(r) for r in runs.get(target, [])}
    ref = {r["round"]: key(r) for r in runs.get("nghttpx", [])}
    return {n: mine[n] / ref[n] for n in sorted(mine) if n in ref and ref[n]}


def _side(values):
    if not values:
        return "—"
    low, high = min(values), max(values)
    if low < 1.0 < high:
        return f"**flips** ({low:.2f}x–{high:.2f}x)"
    return f"{'above' if low >= 1.0 else 'below'} 1.0 ({low:.2f}x–{high:.2f}x)"


def modes_table(workload, results, duration):
    """Markdown lines: each bulk mode's rates and CPU per MiB against nghttpx, every round's
    ratio, and for each target whether its ratio stays on one side of 1.0 over all modes
    and rounds or flips. |results|: [(mode, requests, summaries, runs or why skipped)]."""
    head = ["mode", "target", "MiB/s echoed (median)", "vs nghttpx", "vs nghttpx by round",
            "proxy CPU µs/MiB", "vs nghttpx", "vs nghttpx by round"]
    rows, notes = [], []
    seen = {}  # target -> ([throughput ratios], [CPU ratios]) over every mode and round.

    def rate(r):
        return r["data_bytes"] / r["elapsed"]

    def cpu(r):
        return r["proxy_cpu"] / max(r["data_bytes"] / MIB, 1e-9) if r.get("proxy_cpu") else None

    for mode, requests, summaries, runs in results:
        label = mode.text(duration, requests) if requests else mode.text(duration, 0)
        if summaries is None:
            notes.append(f"{label}: {runs}")
            continue
        by = {s["target"]: s for s in summaries if "error" not in s}
        ref = by.get("nghttpx")
        for s in summaries:
            if "error" in s:
                rows.append([label, s["target"], f"**failed**: {s['error']}"] + ["—"] * 5)
                continue
            compared = ref is not None and s["target"] != "nghttpx"
            value = ratio(s["value"], ref["value"]) if compared else None
            cpu_value = ratio(s["proxy_us_mib"], ref["proxy_us_mib"]) if compared else None
            by_round = _round_ratios(runs, s["target"], rate) if compared else {}
            cpu_round = _round_ratios(runs, s["target"], lambda r: cpu(r) or 0) if compared else {}
            if compared:
                rates, cpus = seen.setdefault(s["target"], ([], []))
                rates += [v for v in [value] + list(by_round.values()) if v]
                cpus += [v for v in [cpu_value] + list(cpu_round.values()) if v]
            rows.append([label, s["target"], fmt(s["value"] / MIB, 1), fmt(value, 2, "x"),
                         " ".join(f"{v:.2f}" for v in by_round.values()) or "—",
                         fmt(s["proxy_us_mib"], 0), fmt(cpu_value, 2, "x"),
                         " ".join(f"{v:.2f}" for v in cpu_round.values()) or "—"])
    lines = table_lines(head, rows) if rows else []
    quiet = load_note({f"{m.name} {t}": rs for m, _, summaries, runs in results
                       if summaries is not None for t, rs in runs.items()})
    busy = quiet is not None and "not quiet" in quiet
    for target, (rates, cpus) in seen.items():
        lines += ["", f"{target} vs nghttpx over every mode and round: MiB/s {_side(rates)}; "
                  f"proxy CPU per MiB {_side(cpus)}."
                  + (" The machine was busy with other work: a flip here may be noise; rerun "
                     "on a quiet machine before reading it as this machine's." if busy and any(
                         "flips" in _side(v) for v in (rates, cpus)) else "")]
    for note in notes:
        lines += ["", note]
    if quiet:
        lines += ["", "All modes: " + quiet[0].lower() + quiet[1:]]
    kept = sorted(((BULK_MODES.index(mode), r["round"], mode, r)
                   for mode, _, summaries, runs in results if summaries is not None
                   for target_runs in runs.values() for r in target_runs),
                  key=lambda k: k[:2])
    if kept:
        lines += ["", "Every kept run of every mode:", "", "```"]
        lines += [f"{mode.name:17} round {r['round']} {workload.run_line(r)}"
                  for _, _, mode, r in kept]
        lines += ["```"]
    if lines:
        lines += ["", "Each mode's rounds ran with a fresh echo backend and fresh proxies, "
                  "pinned as the mode says (pinned: as the table above; nothing pinned: every "
                  "process may run on every CPU). A fixed count (`-n`) includes each run's "
                  "start and its tail, when fewer calls than streams are left; a duration "
                  "(`-D`) cuts calls off at the end. A ratio that is above 1.0 in one mode or "
                  "round and below in another is marked **flips**: the lead depends on how "
                  "it is measured, so it is not averaged into one number."]
    return lines
