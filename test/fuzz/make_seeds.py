#!/usr/bin/python3
"""Writes the seed corpora of the fuzzers in test/fuzz.

corpus/downstream/: HTTP/2 client byte streams in fuzz_downstream's input layout (one flags
byte, then what the client sends after the preface), made with the h2 package.
corpus/config/: the example configs from conf/ and a few small ones.
corpus/grpc_timeout/: a few grpc-timeout values and grpc-message texts.
corpus/request_check/: requests in fuzz_request_check's input layout, one per rule checked.
corpus/response_check/: backend answers in fuzz_response_check's input layout, one per rule.
corpus/web_codec/: base64 bodies, content-types, CORS origins and Connect timeouts in
fuzz_web_codec's input layout (a split byte, then the body).
corpus/request_parser/: HTTP/1.1 client byte streams in fuzz_request_parser's layout (a byte
for the piece size, then the bytes).
downstream.dict: HTTP/2 frames and HPACK header fields, a libFuzzer dictionary.
request_check.dict: header fields in fuzz_request_check's layout.
response_check.dict: header fields and frames in fuzz_response_check's layout.

Run from anywhere: /usr/bin/python3 test/fuzz/make_seeds.py
Existing files of the same name are overwritten; other files (saved crashes) are kept.
"""

import base64
import pathlib
import shutil
import struct

import h2.config
import h2.connection
import h2.errors
import h2.settings
import hpack

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# fuzz_downstream flags: bits 0-2 == 7 leaves the preface out, 6 sends it to a web listener
# (gRPC-Web and Connect on), 5 leaves it out on that listener; bit 3 lingers 20 loop turns
# before the half-close, bits 4-5 pick the write size, bit 6 starts a graceful shutdown once
# everything is written, bit 7 lingers 3 ms.
WITH_PREFACE = 0x00
NO_PREFACE = 0x07
WEB = 0x06
WEB_NO_PREFACE = 0x05
LINGER = 0x08
BYTES_1 = 0x10
BYTES_9 = 0x20
GRACEFUL = 0x40
LINGER_3MS = 0x80


def grpc_message(payload: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def request_headers(path="/fuzz.Echo/Call", authority="fuzz.example", method="POST",
                    content_type="application/grpc", extra=()):
    return [
        (":method", method),
        (":scheme", "http"),
        (":path", path),
        (":authority", authority),
        ("content-type", content_type),
        ("te", "trailers"),
        *extra,
    ]


class Client:
    def __init__(self):
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                           validate_outbound_headers=False)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()

    def call(self, stream_id, headers, messages=(b"hello",), end=True):
        self.conn.send_headers(stream_id, headers)
        for i, payload in enumerate(messages):
            last = end and i == len(messages) - 1
            self.conn.send_data(stream_id, grpc_message(payload), end_stream=last)
        if end and not messages:
            self.conn.end_stream(stream_id)

    def bytes(self, flags=WITH_PREFACE) -> bytes:
        data = self.conn.data_to_send()
        assert data.startswith(PREFACE)
        if (flags & 0x07) in (NO_PREFACE, WEB_NO_PREFACE):
            data = data[len(PREFACE):]
        return bytes([flags]) + data


def downstream_seeds():
    seeds = {}

    c = Client()
    c.call(1, request_headers(extra=[("grpc-timeout", "1S")]))
    seeds["unary_call"] = c.bytes()

    c = Client()
    c.call(1, request_headers(), end=False)
    c.conn.reset_stream(1, h2.errors.ErrorCodes.CANCEL)
    seeds["call_then_rst_stream"] = c.bytes()

    c = Client()
    c.conn.ping(b"fuzzping")
    seeds["ping"] = c.bytes()

    c = Client()
    c.call(1, request_headers(), end=False)
    c.conn.increment_flow_control_window(65536)
    c.conn.increment_flow_control_window(4096, stream_id=1)
    c.conn.end_stream(1)
    seeds["window_update"] = c.bytes()

    c = Client()
    c.call(1, request_headers(path="/helloworld.Greeter/SayHello"))
    seeds["catch_all_route_linger"] = c.bytes(WITH_PREFACE | LINGER)

    c = Client()
    c.call(1, request_headers(path="/helloworld.Greeter/SayHello", authority="other.example"))
    seeds["no_route"] = c.bytes()

    c = Client()
    c.call(1, request_headers(path="/fuzz.Deadline/Wait"))
    seeds["route_timeout_linger"] = c.bytes(WITH_PREFACE | LINGER)

    c = Client()
    c.call(1, request_headers(path="/fuzz.Deadline/Wait", extra=[("grpc-timeout", "1n")]),
           end=False)
    c.call(3, request_headers(path="/fuzz.Other/Call", extra=[("grpc-timeout", "2m")]),
           end=False)
    seeds["deadlines_linger_3ms"] = c.bytes(WITH_PREFACE | LINGER_3MS)

    # The silent backend takes the connection and never answers: bodies are spliced onto it
    # until the deadline or the connect timeout (no SETTINGS) ends the calls.
    c = Client()
    c.call(1, request_headers(path="/silent.Svc/Unary"), messages=(b"m" * 1000, b"n" * 1500))
    c.call(3, request_headers(path="/silent.Svc/Stream", extra=[("grpc-timeout", "1m")]),
           messages=(b"s" * 300,), end=False)
    c.call(5, request_headers(path="/fuzz.Deadline/Wait"), messages=(b"d",), end=False)
    c.conn.reset_stream(3, h2.errors.ErrorCodes.CANCEL)
    seeds["silent_backend_linger_3ms"] = c.bytes(WITH_PREFACE | LINGER_3MS)

    c = Client()
    c.call(1, request_headers(path="/silent.Svc/Unary"))
    seeds["silent_backend_linger"] = c.bytes(WITH_PREFACE | LINGER)

    c = Client()
    c.call(1, request_headers(path="/silent.Svc/Unary"), messages=(b"g" * 100,))
    c.call(3, request_headers(), end=False)
    seeds["graceful_shutdown_linger_3ms"] = c.bytes(WITH_PREFACE | GRACEFUL | LINGER_3MS)

    # Over 64 KiB of metadata from under 4 KiB of input: the big field is sent once, then
    # repeated by its HPACK dynamic table index.
    c = Client()
    big = [("x-big", "v" * 3000)] * 24
    c.call(1, request_headers(extra=big))
    seeds["metadata_over_limit"] = c.bytes()

    c = Client()
    c.call(1, request_headers(method="GET"), messages=())
    c.call(3, request_headers(content_type="text/plain"))
    c.call(5, request_headers(extra=[("grpc-timeout", "999999999H")]))
    seeds["rejected_requests"] = c.bytes()

    c = Client()
    c.call(1, request_headers(), messages=(b"a" * 100, b"b" * 3000), end=False)
    c.call(3, request_headers(path="/x.Y/Z"), messages=(b"",), end=False)
    c.conn.send_data(1, grpc_message(b"c" * 10))
    c.conn.send_headers(1, [("grpc-status", "0")], end_stream=True)
    c.conn.end_stream(3)
    seeds["two_streams_and_request_trailers"] = c.bytes(WITH_PREFACE | LINGER)

    c = Client()
    c.call(1, request_headers())
    seeds["own_preface"] = c.bytes(NO_PREFACE)

    c = Client()
    c.call(1, request_headers(), messages=(b"split",))
    seeds["byte_by_byte"] = c.bytes(WITH_PREFACE | BYTES_1)

    c = Client()
    c.call(1, request_headers(), messages=(b"x" * 200,))
    seeds["frame_header_writes"] = c.bytes(WITH_PREFACE | BYTES_9)

    c = Client()
    c.call(1, request_headers(), end=False)
    c.conn.close_connection()
    seeds["goaway"] = c.bytes()

    c = Client()
    c.call(1, request_headers(), end=False)
    c.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1,
                            h2.settings.SettingCodes.MAX_FRAME_SIZE: 16384})
    c.conn.end_stream(1)
    seeds["settings_change"] = c.bytes(WITH_PREFACE | LINGER)

    # Web calls on the web listener: each protocol, a preflight, and a text body in pieces.
    web = {
        "grpc_web": ("application/grpc-web+proto", [grpc_message(b"hello")]),
        "grpc_web_text": ("application/grpc-web-text",
                          [base64.b64encode(grpc_message(b"hel"))[:5],
                           base64.b64encode(grpc_message(b"hel"))[5:]]),
        "connect_unary": ("application/proto", [b"hello"]),
        "connect_stream": ("application/connect+json", [grpc_message(b'{"a":1}')]),
    }
    for name, (content_type, chunks) in web.items():
        c = Client()
        headers = [h for h in request_headers(content_type=content_type,
                                              extra=[("origin", "http://page.example"),
                                                     ("connect-timeout-ms", "1000")])
                   if h[0] != "te"]
        c.conn.send_headers(1, headers)
        for i, chunk in enumerate(chunks):
            c.conn.send_data(1, chunk, end_stream=i == len(chunks) - 1)
        seeds["web_" + name] = c.bytes(WEB | LINGER)
    c = Client()
    c.conn.send_headers(1, [(":method", "OPTIONS"), (":scheme", "http"),
                            (":path", "/fuzz.Echo/Call"), (":authority", "fuzz.example"),
                            ("origin", "https://app.example"),
                            ("access-control-request-method", "POST"),
                            ("access-control-request-headers", "content-type,x-fuzz")],
                        end_stream=True)
    seeds["web_preflight"] = c.bytes(WEB)
    return seeds


def dict_entry(name: str, data: bytes) -> str:
    return name + '="' + "".join(f"\\x{b:02x}" for b in data) + '"'


def frame_header(length: int, kind: int, flags: int, stream_id: int) -> bytes:
    return length.to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big")


def downstream_dict() -> str:
    """Tokens libFuzzer splices into inputs: whole HPACK header fields and frames, since it
    cannot learn them from nghttp2 (not instrumented)."""
    lines = ["# Generated by make_seeds.py: HTTP/2 frames and HPACK fields for fuzz_downstream."]
    fields = [
        (":method", "POST"), (":method", "GET"), (":scheme", "http"),
        (":path", "/fuzz.Echo/Call"), (":path", "/fuzz.Deadline/Wait"),
        (":path", "/helloworld.Greeter/SayHello"), (":path", "/"),
        (":authority", "fuzz.example"), (":authority", "localhost:50050"),
        ("content-type", "application/grpc"), ("content-type", "application/grpc+proto"),
        ("content-type", "application/grpc;x"), ("te", "trailers"),
        ("grpc-timeout", "1n"), ("grpc-timeout", "1S"), ("grpc-timeout", "99999999H"),
        ("grpc-timeout", "1x"), ("grpc-encoding", "gzip"), ("grpc-status", "0"),
        ("grpc-message", "%41%"), ("connection", "close"), ("keep-alive", "1"),
        ("x-bin", "AAEC"),
    ]
    for i, (name, value) in enumerate(fields):
        # A fresh encoder per field: each token stands alone (literal, no table reference).
        lines.append(dict_entry(f"hpack_{i}", hpack.Encoder().encode([(name, value)],
                                                                     huffman=False)))
    # Frame type, flags and stream id after a length the fuzzer picks.
    heads = {
        "data_1": (0, 0, 1), "data_end_1": (0, 1, 1), "data_padded_1": (0, 8, 1),
        "headers_1": (1, 4, 1), "headers_end_1": (1, 5, 1), "headers_3": (1, 4, 3),
        "headers_partial_1": (1, 0, 1), "headers_priority_1": (1, 0x24, 1),
        "continuation_1": (9, 4, 1), "push_promise_1": (5, 4, 1), "priority_1": (2, 0, 1),
        "unknown_type": (0x20, 0, 1),
    }
    for name, (kind, flags, stream_id) in heads.items():
        lines.append(dict_entry(f"frame_{name}", frame_header(0, kind, flags, stream_id)[3:]))
    frames = {
        "settings_ack": frame_header(0, 4, 1, 0),
        "settings_window_0": frame_header(6, 4, 0, 0) + b"\x00\x04\x00\x00\x00\x00",
        "settings_max_streams_1": frame_header(6, 4, 0, 0) + b"\x00\x03\x00\x00\x00\x01",
        "ping": frame_header(8, 6, 0, 0) + b"fuzzping",
        "rst_cancel_1": frame_header(4, 3, 0, 1) + (8).to_bytes(4, "big"),
        "rst_no_error_3": frame_header(4, 3, 0, 3) + (0).to_bytes(4, "big"),
        "window_update_0": frame_header(4, 8, 0, 0) + (65536).to_bytes(4, "big"),
        "window_update_1": frame_header(4, 8, 0, 1) + (1).to_bytes(4, "big"),
        "goaway": frame_header(8, 7, 0, 0) + bytes(8),
        "empty_data_end_1": frame_header(0, 0, 1, 1),
    }
    for name, data in frames.items():
        lines.append(dict_entry(f"frame_{name}", data))
    lines.append(dict_entry("grpc_message_5", b"\x00\x00\x00\x00\x05hello"))
    lines.append(dict_entry("grpc_compressed", b"\x01\x00\x00\x00\x00"))
    lines.append(dict_entry("preface", PREFACE))
    return "\n".join(lines) + "\n"


# fuzz_request_check flags: END_STREAM on the request HEADERS, trailers follow, the trailers
# carry END_STREAM, the last DATA frame carries END_STREAM; bits 4-5 count the DATA frames.
RC_HEADERS_END = 0x01
RC_TRAILERS = 0x02
RC_TRAILERS_END = 0x04
RC_DATA_END = 0x08


def as_bytes(s) -> bytes:
    return s if isinstance(s, bytes) else s.encode("latin-1")


def rc_field(name, value) -> bytes:
    name, value = as_bytes(name), as_bytes(value)
    return bytes([len(name)]) + name + bytes([len(value)]) + value


def rc_input(headers, flags=RC_HEADERS_END, data=(), trailers=None) -> bytes:
    """One request in fuzz_request_check's input layout."""
    out = bytes([flags | len(data) << 4])
    for n in data:
        out += n.to_bytes(2, "big")
    out += b"".join(rc_field(n, v) for n, v in headers)
    if trailers is not None:
        out += b"\xff" + b"".join(rc_field(n, v) for n, v in trailers)
    return out


def request_check_seeds():
    grpc = request_headers(path="/pkg.Svc/Method", authority="relay.example:50050")
    base = [(":method", "POST"), (":scheme", "https"), (":path", "/"), (":authority", "h")]
    ds = RC_DATA_END
    seeds = {
        "grpc_unary": rc_input(grpc, ds, data=[10]),
        "grpc_stream_open": rc_input(grpc, 0, data=[5, 5]),
        "grpc_request_trailers": rc_input(grpc, RC_TRAILERS | RC_TRAILERS_END, data=[5],
                                          trailers=[("x-checksum", "abc")]),
        "trailers_without_end_stream": rc_input(grpc, RC_TRAILERS, data=[5],
                                                trailers=[("x-checksum", "abc")]),
        "pseudo_in_trailers": rc_input(grpc, RC_TRAILERS | RC_TRAILERS_END,
                                       trailers=[(":path", "/a")]),
        "empty_end_data": rc_input(grpc, ds),
        "content_length_exact": rc_input(grpc + [("content-length", "10")], ds, data=[4, 6]),
        "content_length_short": rc_input(grpc + [("content-length", "10")], ds, data=[4]),
        "content_length_over": rc_input(grpc + [("content-length", "3")], 0, data=[4]),
        "content_length_headers_end": rc_input(grpc + [("content-length", "1")]),
        "content_length_in_trailers": rc_input(grpc, RC_TRAILERS | RC_TRAILERS_END, data=[2],
                                               trailers=[("content-length", "2")]),
        "content_length_bad": rc_input(grpc + [("content-length", "+1")]),
        "content_length_twice": rc_input(grpc + [("content-length", "0")] * 2),
        "get_no_body": rc_input(base),
        "host_for_authority": rc_input(base[:3] + [("host", "relay.example")]),
        "host_and_authority": rc_input(base + [("host", "other.example")]),
        "host_twice": rc_input(base + [("host", "a"), ("host", "a")]),
        "host_bad": rc_input(base + [("host", "a b")]),
        "host_userinfo": rc_input(base[:3] + [("host", "u@h")]),
        "authority_userinfo": rc_input(base[:3] + [(":authority", "u@h:1")]),
        "authority_bad": rc_input(base[:3] + [(":authority", "h h")]),
        "no_authority": rc_input(base[:3]),
        "connect": rc_input([(":method", "CONNECT"), (":authority", "h:443")], 0, data=[3]),
        "connect_content_length_trailers": rc_input(
            [(":method", "CONNECT"), (":authority", "h:443"), ("content-length", "2")],
            RC_TRAILERS | RC_TRAILERS_END, data=[2], trailers=[("content-length", "2")]),
        "connect_path": rc_input([(":method", "CONNECT"), (":authority", "h:443"),
                                  (":path", "/")]),
        "connect_content_length": rc_input([(":method", "CONNECT"), (":authority", "h:443"),
                                            ("content-length", "5")], ds),
        "options_asterisk": rc_input([(":method", "OPTIONS"), (":scheme", "http"), (":path", "*"),
                                      (":authority", "h")]),
        "post_asterisk": rc_input([(":method", "POST"), (":scheme", "http"), (":path", "*"),
                                   (":authority", "h")]),
        "relative_path": rc_input([(":method", "POST"), (":scheme", "http"), (":path", "a"),
                                   (":authority", "h")]),
        "other_scheme_relative_path": rc_input([(":method", "POST"), (":scheme", "urn"),
                                                (":path", "a:b"), (":authority", "h")]),
        "scheme_bad": rc_input([(":method", "POST"), (":scheme", "1http"), (":path", "/"),
                                (":authority", "h")]),
        "method_bad": rc_input([(":method", "PO ST")] + base[1:]),
        "method_empty": rc_input([(":method", "")] + base[1:]),
        "path_obs_text": rc_input(base[:2] + [(":path", b"/caf\xc3\xa9"), (":authority", "h")]),
        "path_space": rc_input(base[:2] + [(":path", "/a b"), (":authority", "h")]),
        "pseudo_after_regular": rc_input(base[:3] + [("x", "1"), (":authority", "h")]),
        "pseudo_twice": rc_input(base + [(":path", "/")]),
        "pseudo_unknown": rc_input(base + [(":foo", "1")]),
        "pseudo_status": rc_input(base + [(":status", "200")]),
        "pseudo_protocol": rc_input([(":method", "CONNECT"), (":protocol", "websocket")] +
                                    base[1:]),
        "name_uppercase": rc_input(base + [("X-Foo", "1")]),
        "name_bad_char": rc_input(base + [("x(y", "1")]),
        "name_empty": rc_input(base + [("", "1")]),
        "name_colon_only": rc_input(base + [(":", "1")]),
        "value_control": rc_input(base + [("x-bad", "a\x01b")]),
        "value_nul": rc_input(base + [("x-bad", "a\x00b")]),
        "value_del": rc_input(base + [("x-bad", "a\x7f")]),
        "value_leading_space": rc_input(base + [("x-bad", " a")]),
        "value_trailing_tab": rc_input(base + [("x-bad", "a\t")]),
        "value_inner_tab": rc_input(base + [("x-ok", "a \tb")]),
        "value_long_control": rc_input(base + [("x-bad", "0123456789abcdef\x1fz")]),
        "value_obs_text": rc_input(base + [("x-utf8", b"caf\xc3\xa9")]),
        "te_trailers": rc_input(base + [("te", "Trailers")]),
        "te_gzip": rc_input(base + [("te", "gzip")]),
        "connection": rc_input(base + [("connection", "close")]),
        "transfer_encoding": rc_input(base + [("transfer-encoding", "chunked")]),
        "upgrade": rc_input(base + [("upgrade", "h2c")]),
        "keep_alive": rc_input(base + [("keep-alive", "1")]),
        "proxy_connection": rc_input(base + [("proxy-connection", "close")]),
        "priority": rc_input(base + [("priority", "u=1, i")]),
        "priority_bad": rc_input(base + [("priority", "u=x")]),
        "many_fields": rc_input(base + [(f"x-field-{i}", "v" * i) for i in range(40)]),
    }
    return seeds


def request_check_dict() -> str:
    """Names and values with their length bytes, and whole fields, in fuzz_request_check's
    layout."""
    lines = ["# Generated by make_seeds.py: fields for fuzz_request_check (length byte, bytes)."]
    names = [":method", ":scheme", ":path", ":authority", ":status", ":protocol", ":", "host",
             "te", "content-length", "content-type", "connection", "keep-alive",
             "proxy-connection", "transfer-encoding", "upgrade", "grpc-timeout", "priority",
             "Host", "x-foo"]
    values = ["POST", "GET", "CONNECT", "OPTIONS", "HEAD", "http", "https", "/", "*",
              "/pkg.Svc/Method", "relay.example:50050", "u@h", "[::1]:443", "trailers", "0",
              "10", "application/grpc", "1S", "u=1, i", ""]
    for i, name in enumerate(names):
        lines.append(dict_entry(f"name_{i}", rc_field(name, "")[:-1]))
    for i, value in enumerate(values):
        lines.append(dict_entry(f"value_{i}", rc_field("", value)[1:]))
    fields = [(":method", "POST"), (":scheme", "http"), (":path", "/"), (":authority", "h"),
              ("te", "trailers"), ("content-length", "0"), ("host", "h")]
    for i, (name, value) in enumerate(fields):
        lines.append(dict_entry(f"field_{i}", rc_field(name, value)))
    lines.append(dict_entry("trailers_marker", b"\xff"))
    return "\n".join(lines) + "\n"


# fuzz_response_check frame kinds: a HEADERS block (fields, then 0xff) or a DATA frame (two
# length bytes); bit 0 puts END_STREAM on the frame.
RS_END = 0x01
RS_DATA = 0x80


def rs_headers(fields, end=False) -> bytes:
    return bytes([RS_END if end else 0]) + b"".join(rc_field(n, v) for n, v in fields) + b"\xff"


def rs_data(length, end=False) -> bytes:
    return bytes([RS_DATA | (RS_END if end else 0)]) + length.to_bytes(2, "big")


def response_check_seeds():
    ok = [(":status", "200"), ("content-type", "application/grpc")]
    trailers = rs_headers([("grpc-status", "0"), ("grpc-message", "")], end=True)
    cl = [("content-length", "10")]
    return {
        "grpc_unary": rs_headers(ok) + rs_data(10) + trailers,
        "trailers_only": rs_headers(ok + [("grpc-status", "14")], end=True),
        "data_end": rs_headers(ok) + rs_data(3, end=True),
        "trailers_without_end_stream": rs_headers(ok) + rs_headers([("grpc-status", "0")]),
        "pseudo_in_trailers": rs_headers(ok) + rs_headers([(":status", "200")], end=True),
        "no_status": rs_headers([("content-type", "application/grpc")]),
        "status_twice": rs_headers([(":status", "200"), (":status", "200")]),
        "status_after_regular": rs_headers([("x-a", "1"), (":status", "200")]),
        "status_after_invalid": rs_headers([("x a", "1"), (":status", "200")]),
        "status_short": rs_headers([(":status", "20")]),
        "status_letters": rs_headers([(":status", "2x0")]),
        "status_101": rs_headers([(":status", "101")]),
        "status_000": rs_headers([(":status", "000")], end=True),
        "request_pseudo": rs_headers(ok + [(":path", "/")]),
        "unknown_pseudo": rs_headers([(":status", "200"), (":x", "1")]),
        "uppercase_name": rs_headers(ok + [("Grpc-Status", "0")]),
        "invalid_names_values": rs_headers(
            ok + [("", "e"), ("a b", "1"), ("x-v", " lead"), ("x-v", "trail\t"), ("x-v", "a\x01"),
                  ("x-v", "a\x7f"), ("x-ok", "a\tb\x80")]) + trailers,
        "connection_specific": rs_headers(ok + [("connection", "close")]),
        "transfer_encoding": rs_headers(ok + [("transfer-encoding", "chunked")]),
        "te_trailers": rs_headers(ok + [("te", "Trailers")]) + trailers,
        "te_other": rs_headers(ok + [("te", "gzip")]),
        "host": rs_headers(ok + [("host", "a b")]) + trailers,
        "host_space": rs_headers(ok + [("host", " a"), ("x-after", "1")]) + trailers,
        "content_length_exact": rs_headers(ok + cl) + rs_data(4) + rs_data(6) + trailers,
        "content_length_over": rs_headers(ok + cl) + rs_data(11),
        "content_length_short_data": rs_headers(ok + cl) + rs_data(9, end=True),
        "content_length_short_trailers": rs_headers(ok + cl) + rs_data(9) + trailers,
        "content_length_headers_end": rs_headers(ok + cl, end=True),
        "content_length_twice": rs_headers(ok + cl + cl),
        "content_length_bad": rs_headers(ok + [("content-length", "1a")]),
        "content_length_space": rs_headers(ok + [("content-length", " 1")], end=True),
        "content_length_in_trailers": rs_headers(ok) + rs_data(2) + rs_headers(
            [("content-length", "3")], end=True),
        "no_content_length_zero": rs_headers([(":status", "204"), ("content-length", "0")]) +
        rs_headers([("x-a", "1")], end=True),
        "no_content_length_one": rs_headers([(":status", "204"), ("content-length", "1")]),
        "no_content_data": rs_headers([(":status", "204")]) + rs_data(1),
        "no_content_removed_then_bad": rs_headers(
            [(":status", "204"), ("content-length", "0"), ("connection", "x")]),
        "not_modified": rs_headers([(":status", "304"), ("content-length", "5")], end=True),
        "informational": rs_headers([(":status", "100")]) + rs_headers([(":status", "103")]) +
        rs_headers(ok) + rs_data(5) + trailers,
        "informational_end": rs_headers([(":status", "100")], end=True),
        "informational_data": rs_headers([(":status", "100")]) + rs_data(1),
        "informational_empty_data_end": rs_headers([(":status", "100")]) + rs_data(0, end=True),
        "informational_content_length": rs_headers([(":status", "100"), ("content-length", "0")]),
        "final_without_status": rs_headers([(":status", "100")]) + rs_headers(
            [("grpc-status", "0")], end=True),
        "many_fields": rs_headers(ok + [(f"x-field-{i}", "v" * i) for i in range(40)]) + trailers,
    }


def response_check_dict() -> str:
    """Names, values, whole fields and frames in fuzz_response_check's layout."""
    lines = ["# Generated by make_seeds.py: fields and frames for fuzz_response_check."]
    names = [":status", ":path", ":", "host", "te", "content-length", "content-type",
             "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
             "grpc-status", "grpc-message", "Grpc-Status", "x a"]
    values = ["200", "100", "103", "101", "204", "304", "404", "0", "10", "trailers",
              "application/grpc", " 1", "1 ", ""]
    for i, name in enumerate(names):
        lines.append(dict_entry(f"name_{i}", rc_field(name, "")[:-1]))
    for i, value in enumerate(values):
        lines.append(dict_entry(f"value_{i}", rc_field("", value)[1:]))
    fields = [(":status", "200"), (":status", "100"), (":status", "204"), ("content-length", "0"),
              ("te", "trailers"), ("grpc-status", "0")]
    for i, (name, value) in enumerate(fields):
        lines.append(dict_entry(f"field_{i}", rc_field(name, value)))
    lines.append(dict_entry("block_end", b"\xff"))
    lines.append(dict_entry("data", rs_data(1)))
    lines.append(dict_entry("data_end", rs_data(0, end=True)))
    lines.append(dict_entry("headers_end_stream", bytes([RS_END])))
    return "\n".join(lines) + "\n"


def timeout_seeds():
    return {
        "seconds": b"1S",
        "hours": b"99999999H",
        "nanos": b"12345678n",
        "minutes": b"30M",
        "micros": b"1500u",
        "message": "caf\u00e9 100% \t\n".encode(),
        "encoded": b"%41%7e%zz%",
    }


def web_split(left: bytes, right: bytes) -> bytes:
    """fuzz_web_codec's input whose body left + right is split between the two."""
    size = len(left) + len(right)
    for b in range(256):
        if b * (size + 1) // 256 == len(left):
            return bytes([b]) + left + right
    raise ValueError("split point out of reach: body over 255 bytes")


def web_codec_seeds():
    return {
        # Separately padded pieces, "a" "bc" "def", cut inside the second one.
        "b64_pieces": web_split(b"YQ==Ym", b"M=ZGVm"),
        "b64_vectors": web_split(b"Zm9vYmFy", b"Zm9vYg=="),
        "b64_one_pad": web_split(b"Zm9vYmE", b"="),
        "b64_bad_pad": web_split(b"AA=A", b"A==="),
        "b64_bad_byte": web_split(b"Zm9v\r\n", b"YmFy"),
        "ct_grpc_web": web_split(b"application/grpc-web+proto", b"application/grpc-web"),
        "ct_text": web_split(b"application/grpc-web-text; charset=utf-8",
                             b"Application/GRPC-WEB-TEXT+Json"),
        "ct_connect": web_split(b"application/connect+json", b"application/proto"),
        "ct_grpc": web_split(b"application/grpc+proto", b"application/grpc-webx"),
        "cors_wildcard": web_split(b"https://*.example.com", b"https://a.b.example.com"),
        "cors_port": web_split(b"https://*.example.com:8443", b"https://example.com:8443"),
        "cors_exact": web_split(b"https://app.example.com", b"HTTPS://APP.EXAMPLE.COM"),
        "cors_any": web_split(b"*", b"null"),
        "timeout_max": web_split(b"9999999999", b"100000000"),
        "timeout_small": web_split(b"0", b"99999999"),
        "timeout_bad": web_split(b"12a", b"12345678901"),
def request_parser_seeds():
    """HTTP/1.1 requests, each after its piece-size byte: one of each framing, and one of each
    kind of refusal."""
    return {
        "get": b"\x07GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "grpc_web": b"\x03POST /pkg.Svc/M HTTP/1.1\r\nHost: relay.test\r\n"
                    b"Content-Type: application/grpc-web+proto\r\nContent-Length: 5\r\n\r\nhello",
        "chunked": b"\x05POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"3\r\nabc\r\n10;x=y\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n",
        "pipelined": b"\x01GET /one HTTP/1.1\r\nHost: h\r\n\r\nPOST /two HTTP/1.1\r\nHost: h\r\n"
                     b"Content-Length: 2\r\n\r\nhiGET /three HTTP/1.0\r\nConnection: keep-alive\r\n"
                     b"Host: h\r\n\r\n",
        "hop_fields": b"\x10GET http://h.test:80/x?y HTTP/1.1\r\nHost: other\r\n"
                      b"Connection: close, X-Hop\r\nX-Hop: 1\r\nTE: trailers\r\nUpgrade: h2c\r\n"
                      b"Expect: 100-continue\r\n\r\n",
        "options": b"\x02OPTIONS * HTTP/1.1\r\nHost: h\r\nX: a \r\n\r\n",
        "bare_lf": b"\x09GET / HTTP/1.1\nHost: h\r\n\r\n",
        "obs_fold": b"\x04GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
        "cl_and_te": b"\x06POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "long_line": b"\x20GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
    }


# Small configs beside the examples: one minimal, and a few each failing a different check.
CONFIG_SEEDS = {
    "minimal": '[[listener]]\naddress = "127.0.0.1:0"\n',
    "routes": """
[[listener]]
address = "[::1]:50050"
max_concurrent_streams = 1

[[route]]
path = "/a.B/C"
authority = "api.example.com:443"
cluster = "c-1"
timeout = "1.5s"

[[route]]
prefix = "/"
cluster = "c-1"

[[cluster]]
name = "c-1"
endpoints = ["backend.example.:1", "10.0.0.1:65535"]
connect_timeout = "250ms"
max_connections_per_endpoint = 1024
""",
    "bad_duration": """
[[listener]]
address = "127.0.0.1:0"
[[route]]
none = true
cluster = "x"
timeout = "0.0001s"
[[cluster]]
name = "x"
endpoints = ["127.0.0.1:1"]
""",
    "bad_address": '[[listener]]\naddress = "[::1:50050"\n[admin]\naddress = "localhost:99999"\n',
    "unknown_key": 'workerz = 2\n[[listener]]\naddress = "127.0.0.1:1"\n',
}


def main():
    out = HERE / "corpus" / "downstream"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in downstream_seeds().items():
        (out / f"seed_{name}").write_bytes(data)

    (HERE / "downstream.dict").write_text(downstream_dict())

    out = HERE / "corpus" / "request_check"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in request_check_seeds().items():
        (out / f"seed_{name}").write_bytes(data)

    (HERE / "request_check.dict").write_text(request_check_dict())

    out = HERE / "corpus" / "response_check"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in response_check_seeds().items():
        (out / f"seed_{name}").write_bytes(data)

    (HERE / "response_check.dict").write_text(response_check_dict())

    out = HERE / "corpus" / "request_parser"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in request_parser_seeds().items():
        (out / f"seed_{name}").write_bytes(data)

    out = HERE / "corpus" / "grpc_timeout"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in timeout_seeds().items():
        (out / f"seed_{name}").write_bytes(data)

    out = HERE / "corpus" / "web_codec"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in web_codec_seeds().items():
        (out / f"seed_{name}").write_bytes(data)

    out = HERE / "corpus" / "config"
    out.mkdir(parents=True, exist_ok=True)
    for toml in sorted((ROOT / "conf").rglob("*.toml")):
        shutil.copyfile(toml, out / f"seed_{toml.stem}.toml")
    for name, text in CONFIG_SEEDS.items():
        (out / f"seed_{name}.toml").write_text(text.lstrip())


if __name__ == "__main__":
    main()
