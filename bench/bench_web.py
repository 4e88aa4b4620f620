"""The web workloads of bench.py: unary100's calls sent as gRPC-Web to a listener with
web = true, beside plain gRPC calls to the same config, so the report shows what the
translation costs per call; a probe call that checks a gRPC-Web answer frame by frame; and
their table."""

import http.client
import io
import socket
import time

from bench_load import (GRPC_FIELDS, GRPC_WEB_FIELDS, h2load_argv, measure, probe_call,
                        run_h2load, shown_argv)
from bench_report import error_row, fmt, ratio, table_lines
from bench_workloads import H2loadThroughput, median

# The targets of the web workloads, in table order (those requested and not skipped).
# grelay: plain gRPC to a listener without web, to show whether web = true costs gRPC calls
# anything.
WEB_H2 = ("grelay", "grelay-grpc", "grelay-web", "envoy-grpc", "envoy-web")
WEB_H1 = ("grelay-grpc", "grelay-web", "envoy-grpc", "envoy-web")
TRAILER_FLAG = 0x80  # The flag byte of gRPC-Web's trailer frame.
PROBE_TIMEOUT = 10.0
# GOAWAY error codes a probe may name (RFC 9113, section 7).
H2_ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 7: "REFUSED_STREAM",
             8: "CANCEL", 11: "ENHANCE_YOUR_CALM", 13: "HTTP_1_1_REQUIRED"}


# ---------------------------------------------------------------------------------------
# The probe: one gRPC-Web call, its answer checked frame by frame


def parse_frames(body):
    """The gRPC-Web frames of |body|: [(flag, payload)], and the bytes left over that do
    not make a whole frame."""
    frames, at = [], 0
    while len(body) - at >= 5:
        size = int.from_bytes(body[at + 1:at + 5], "big")
        if len(body) - at - 5 < size:
            break
        frames.append((body[at], bytes(body[at + 5:at + 5 + size])))
        at += 5 + size
    return frames, bytes(body[at:])


def trailer_fields(payload):
    """The "name:value\\r\\n" lines of a trailer frame as a dict (names in lower case)."""
    fields = {}
    for line in payload.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            fields[name.strip().lower()] = value.strip()
    return fields


def check_answer(status, fields, body, trailers, request):
    """Why an answer (|status|, response |fields| as a dict, |body|, HTTP trailers or None)
    to the gRPC-Web call whose body was |request| is not the echo with grpc-status 0 it
    should be; None when it is."""
    if status != 200:
        return f"HTTP status {status}" + (f", body {bytes(body[:80])!r}" if body else "")
    if "grpc-status" in fields:
        return (f"a Trailers-Only answer (no message): grpc-status {fields['grpc-status']} "
                f"grpc-message {fields.get('grpc-message', '')!r}")
    kind = fields.get("content-type", "")
    if not kind.startswith("application/grpc-web"):
        return f"content-type {kind!r}, not application/grpc-web"
    if trailers:
        return "HTTP/2 trailers at the end instead of a trailer frame in the body"
    frames, rest = parse_frames(body)
    messages = b"".join(bytes([flag]) + len(p).to_bytes(4, "big") + p
                        for flag, p in frames if not flag & TRAILER_FLAG)
    ends = [i for i, (flag, _) in enumerate(frames) if flag & TRAILER_FLAG]
    if messages != request:
        return (f"the message did not come back ({len(messages)} B of message frames, "
                f"{len(request)} B sent)")
    if not ends:
        return f"no trailer frame (flag 0x80) after the message ({len(rest)} B left over)"
    if ends != [len(frames) - 1] or rest:
        return "bytes after the trailer frame"
    end = trailer_fields(frames[-1][1])
    if end.get("grpc-status") != "0":
        return (f"trailer frame grpc-status {end.get('grpc-status')!r} "
                f"grpc-message {end.get('grpc-message', '')!r}")
    return None


def goaway_text(data):
    """What the HTTP/2 frames in |data| say about why the server closed: the GOAWAY code
    and debug data when there is one."""
    at = 0
    while len(data) - at >= 9:
        size, kind = int.from_bytes(data[at:at + 3], "big"), data[at + 3]
        payload = data[at + 9:at + 9 + size]
        if kind == 7 and len(payload) >= 8:
            code = int.from_bytes(payload[4:8], "big")
            return (f"GOAWAY {H2_ERRORS.get(code, code)} "
                    f"{payload[8:].decode('latin-1', 'replace')!r}")
        at += 9 + size
    return "no GOAWAY"


class _Replay:
    """Bytes already read, offered to http.client as if they were its socket."""

    def __init__(self, data):
        self.data = data

    def makefile(self, mode):
        return io.BytesIO(self.data)


def _parse_h1(data, closed=False):
    """(status, fields, body) of the HTTP/1.1 answer at the start of |data|, or None while
    it is incomplete (its body still arriving). |closed|: the server closed the connection
    after |data|, which ends a body that has neither a length nor chunks."""
    answer = http.client.HTTPResponse(_Replay(data), method="POST")
    try:
        answer.begin()
        if answer.length is None and not answer.chunked and not closed:
            return None
        body = answer.read()
    except (http.client.IncompleteRead, http.client.LineTooLong, ValueError):
        return None
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}, body


def probe_h1(port, request, path):
    """One gRPC-Web call over HTTP/1.1 (keep-alive, as h2load --h1 sends it):
    (problem or None, answer body bytes)."""
    head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            + "".join(f"{field}\r\n" for field in GRPC_WEB_FIELDS)
            + f"content-length: {len(request)}\r\n\r\n").encode()
    data, closed = b"", False
    with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as sock:
        sock.sendall(head + request)
        deadline = time.monotonic() + PROBE_TIMEOUT
        while time.monotonic() < deadline and len(data) < 1 << 20:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except OSError as error:
                return f"the connection failed: {error}", 0
            data += chunk
            closed = not chunk
            if closed or (data.startswith(b"HTTP/1.") and _parse_h1(data)):
                break
    if not data:
        return "no answer over HTTP/1.1 (the connection closed or nothing came)", 0
    if not data.startswith(b"HTTP/1."):
        if len(data) >= 9 and data[3] == 4:  # A SETTINGS frame: the server spoke HTTP/2.
            return ("the answer to an HTTP/1.1 request was HTTP/2 frames, not HTTP/1.1 "
                    f"({goaway_text(data)})"), 0
        return f"the answer is not HTTP/1.1: {data[:60]!r}", 0
    parsed = _parse_h1(data, closed)
    if parsed is None:
        return f"an incomplete HTTP/1.1 answer: {data[:120]!r}", 0
    status, fields, body = parsed
    return check_answer(status, fields, body, None, request), len(body)


def probe_h2(port, request, path):
    """One gRPC-Web call over HTTP/2 (h2c with prior knowledge, as h2load sends it):
    (problem or None, answer body bytes). Uses python3-h2, as the integration tests do."""
    try:
        import h2.config
        import h2.connection
        import h2.events
        import h2.exceptions
    except ImportError:
        return "cannot probe: python3-h2 is not installed (scripts/deps.sh bench)", 0
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding="utf-8"))
    conn.initiate_connection()
    fields = [tuple(part.strip() for part in f.split(":", 1)) for f in GRPC_WEB_FIELDS]
    conn.send_headers(1, [(":method", "POST"), (":scheme", "http"),
                          (":authority", f"127.0.0.1:{port}"), (":path", path)] + fields)
    conn.send_data(1, request, end_stream=True)
    status, answer, body, trailers, ended = None, {}, bytearray(), None, None
    with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as sock:
        sock.sendall(conn.data_to_send())
        deadline = time.monotonic() + PROBE_TIMEOUT
        while ended is None and time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                ended = "the connection closed before the call ended"
                break
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError as error:
                return f"an HTTP/2 protocol error: {error}", 0
            for event in events:
                if isinstance(event, h2.events.ResponseReceived):
                    answer = {k.lower(): v for k, v in event.headers}
                    status = int(answer.get(":status", 0))
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.TrailersReceived):
                    trailers = dict(event.headers)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = ""
                elif isinstance(event, h2.events.StreamReset):
                    ended = f"RST_STREAM {H2_ERRORS.get(event.error_code, event.error_code)}"
                elif isinstance(event, h2.events.ConnectionTerminated):
                    ended = (f"GOAWAY {H2_ERRORS.get(event.error_code, event.error_code)} "
                             f"{(event.additional_data or b'').decode('latin-1')!r}")
            sock.sendall(conn.data_to_send())
    if ended is None:
        return f"no end of the call within {PROBE_TIMEOUT:.0f} s", 0
    if ended:
        return ended, 0
    return check_answer(status, answer, body, trailers, request), len(body)


def web_probe(port, request, path, h1):
    """One gRPC-Web call with body |request|: (problem or None, bytes of the answer's body:
    the message frame and the trailer frame)."""
    try:
        return (probe_h1 if h1 else probe_h2)(port, request, path)
    except OSError as error:
        return f"the connection failed: {error}", 0


# ---------------------------------------------------------------------------------------
# The workloads


class WebUnary(H2loadThroughput):
    """unary100's calls as gRPC-Web (targets whose protocol is "grpc-web") and as plain
    gRPC (the others), each target with its own proxy, in the same interleaved rounds.
    A gRPC-Web answer is the message frame and a trailer frame in the body, so "echoed"
    means: a probe call got its message back and a trailer frame with grpc-status:0, and
    every call's response bytes are those of the probe's answer."""

    def __init__(self, name, description, clients, streams, targets, h1=False):
        super().__init__(name, description, 100, 1, clients, streams, "calls",
                         targets=targets)
        self.h1 = h1  # gRPC-Web calls over HTTP/1.1; plain gRPC stays on HTTP/2.
        self.tool = "h2load" + (" (--h1 for the gRPC-Web calls)" if h1 else "")

    def transport(self, target):
        return "HTTP/1.1" if self.h1 and target.protocol == "grpc-web" else "HTTP/2"

    def load_argv(self, target, seconds):
        web = target.protocol == "grpc-web"
        return h2load_argv(target.port, self.body_file, self.path, self.clients, self.streams,
                           seconds=seconds, fields=GRPC_WEB_FIELDS if web else GRPC_FIELDS,
                           h1=self.transport(target) == "HTTP/1.1")

    def probe(self, target):
        """Why one call to |target| does not come back right (None when it does), and how
        many response body bytes a call that does brings."""
        if target.protocol == "grpc-web":
            return web_probe(target.port, self.body_file.read_bytes(), self.path,
                             self.transport(target) == "HTTP/1.1")
        return None, self.body_size

    def run(self, ctx, target):
        pins = self.pins(ctx)
        timeout = ctx.args.duration + ctx.args.warmup + 120
        # First one call, checked frame by frame: a target that cannot answer gRPC-Web (or
        # HTTP/1.1) fails here with the reason, before any load.
        problem, expected = self.probe(target)
        if problem:
            raise RuntimeError(f"one gRPC-Web call over {self.transport(target)} did not come "
                               f"back right: {problem}")
        if ctx.args.warmup > 0:
            warm = run_h2load(self.load_argv(target, ctx.args.warmup), pins["load"], timeout)
            if warm["succeeded"] == 0:
                raise RuntimeError(f"no call of the warm-up succeeded ({warm['failed']} failed, "
                                   f"{warm['errored']} errored, {warm['started']} started)")
        argv = self.load_argv(target, ctx.args.duration)
        result = measure(target, ctx.backend, lambda: run_h2load(argv, pins["load"], timeout))
        result["expected"] = expected
        result["command"] = shown_argv(argv, target.port, [(self.body_file, "BODY")])
        if not self.echoed(result):
            if target.protocol == "grpc-web":
                why = self.probe(target)[0] or "a probe call after the run came back right"
            else:
                why = probe_call(target.port, self.body_file, self.path, target.scheme)
            result["problem"] = "calls not echoed: " + why
        return result

    def command(self, runs):
        """The load of the gRPC rows and of the gRPC-Web rows (the report wraps the text
        in backticks)."""
        seen = {}
        for target_runs in runs.values():
            for r in target_runs:
                seen.setdefault("gRPC-Web" if "grpc-web" in r["command"] else "gRPC",
                                r["command"])
        return "` for the gRPC rows; for the gRPC-Web rows `".join(
            seen[k] for k in ("gRPC", "gRPC-Web") if k in seen)

    def echoed(self, r):
        """Every completed call brought the bytes of a good answer (the probe's: for
        gRPC-Web the message frame and the trailer frame); calls in flight when a timed run
        stops may add up to one partial answer per stream."""
        expected = r.get("expected", self.body_size)
        if r["succeeded"] == 0 or r["non_2xx"]:
            return False
        low = r["succeeded"] * expected * 0.99
        high = (r["succeeded"] + self.clients * self.streams) * expected * 1.01
        return low <= r["data_bytes"] <= high

    def summarize(self, target, runs):
        summary = super().summarize(target, runs)
        summary["expected"] = median([r.get("expected") for r in runs])
        summary["calls_as"] = (("gRPC-Web" if target.protocol == "grpc-web" else "gRPC")
                               + ", " + self.transport(target)
                               + ("" if getattr(target, "web", True)
                                  else ", listener without web"))
        summary["kind"] = target.kind
        return summary

    def table(self, summaries):
        """Markdown lines: every target's calls/s and proxy CPU per call, each against the
        plain gRPC row of the same proxy and config (grelay-grpc, envoy-grpc); then the
        ratios of the web rows in a sentence."""
        by = {s["target"]: s for s in summaries if "error" not in s}
        head = ["target", "calls as", "calls/s (median)", "min–max", "calls/s vs its -grpc row",
                "proxy CPU µs/call", "CPU/call vs its -grpc row", "proxy CPU % of a core",
                "proxy peak RSS MiB", "backend CPU µs/call", "failed", "errored",
                "response B/call (expected)"]
        rows, notes = [], []
        for s in summaries:
            if "error" in s:
                rows.append(error_row(s, len(head)))
                continue
            ref = by.get(s["kind"] + "-grpc")
            compared = ref is not None and ref is not s
            body = f"{fmt(s['body_per_call'], 0)} ({fmt(s['expected'], 0)})"
            if not s["body_ok"]:
                body += f"; {s['problem'] or 'not echoed'}"
            rows.append([s["target"], s["calls_as"], fmt(s["value"], 0),
                         f"{fmt(s['min'], 0)}–{fmt(s['max'], 0)}",
                         fmt(ratio(s["value"], ref["value"]) if compared else None, 2, "x"),
                         fmt(s["proxy_us"], 2),
                         fmt(ratio(s["proxy_us"], ref["proxy_us"]) if compared else None, 2,
                             "x"),
                         fmt(s["proxy_load"], 0), fmt(s["rss"], 1), fmt(s["backend_us"], 2),
                         s["failed"], s["errored"], body])
            if compared and s["target"].endswith("-web"):
                notes.append(f"{s['target']} / {ref['target']}: proxy CPU per call "
                             f"{fmt(ratio(s['proxy_us'], ref['proxy_us']), 2, 'x')} "
                             f"({fmt(s['proxy_us'], 2)} vs {fmt(ref['proxy_us'], 2)} µs), "
                             f"calls/s {fmt(ratio(s['value'], ref['value']), 2, 'x')} "
                             f"({fmt(s['value'], 0)} vs {fmt(ref['value'], 0)}).")
        lines = table_lines(head, rows)
        if notes:
            lines += [""] + [" ".join(notes)]
        lines += ["", "Response B/call: response body bytes h2load received per completed "
                  "call; expected: the body of a probe call's answer (gRPC: the 105 B message "
                  "frame; gRPC-Web: the message frame and the trailer frame), which was "
                  "checked frame by frame before each run."]
        return lines


def web_workloads():
    """The web workloads by name, in report order."""
    workloads = [
        WebUnary("webunary100", "the calls of unary100 (100 B message, 16 connections x 32 "
                 "concurrent calls) as gRPC-Web over HTTP/2 (content-type "
                 "application/grpc-web+proto, x-grpc-web: 1, no te) to a listener with "
                 "web = true (grelay-web), beside plain gRPC calls to the same config "
                 "(grelay-grpc) and to a listener without web (grelay); calls/s and proxy "
                 "CPU per call", 16, 32, WEB_H2),
        WebUnary("webunary100h1", "the gRPC-Web calls of webunary100 over HTTP/1.1 (h2load --h1, "
                 "keep-alive; h2load pipelines HTTP/1.1 requests beyond one per connection, "
                 "so -m 1 and 64 connections x 1 call in flight), beside plain gRPC over "
                 "HTTP/2 to the same config in the same 64 x 1 shape (grelay-grpc); calls/s "
                 "and proxy CPU per call", 64, 1, WEB_H1, h1=True),
    ]
    return {w.name: w for w in workloads}
