"""What bench.py sends load to: the echo backend directly, grelay, and the peer proxies.

Peer configurations are templates in bench/peers/; each @NAME@ is filled in here (ports,
the temp dir, limits). Every proxy runs as the current user with one worker, keeps its
files in the run's temp dir, and is stopped by a signal."""

import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

from bench_procs import Child, first_line, free_port

PEERS = Path(__file__).resolve().parent / "peers"


def _all_output(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return out.stdout + out.stderr
    except (OSError, subprocess.TimeoutExpired):
        return ""


def tls_files(workdir):
    """A self-signed certificate and key for the TLS targets (made once per run; h2load
    does not verify it). They get a directory of their own: grelay watches the directory of
    its certificate files for rotations, and the kernel then does notify work for every
    read of any file in it, such as h2load reading its request body on every call."""
    tls_dir = Path(workdir) / "tls"
    tls_dir.mkdir(exist_ok=True)
    cert, key = tls_dir / "bench-tls.pem", tls_dir / "bench-tls.key"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-subj", "/CN=127.0.0.1", "-days", "2", "-addext",
                        "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
    return cert, key


def fill_template(name, values):
    """The text of bench/peers/|name| with every @KEY@ replaced from |values|."""
    text = (PEERS / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise RuntimeError(f"bench/peers/{name}: no value for {', '.join(left)}")
    return text


def grelay_config(port, backend_port, head="", tls="", web=False):
    """A grelay config: one listener on |port| (with |tls| keys; with |web|, serving
    gRPC-Web and Connect too), every call to the backend."""
    return (f"{head}"
            "[[listener]]\n"
            f'address = "127.0.0.1:{port}"\n{tls}'
            + ("web = true\n" if web else "") + "\n"
            "[[route]]\n"
            "none = true\n"
            'cluster = "echo"\n\n'
            "[[cluster]]\n"
            'name = "echo"\n'
            f'endpoints = ["127.0.0.1:{backend_port}"]\n')


class Target:
    name = ""
    kind = ""  # "direct", "grelay" or the peer's program name.
    workers = 1
    scheme = "http"  # "https": the client side is h2 over TLS (backends stay h2c).
    # What the load sends: "grpc" calls, or "grpc-web" calls (the web workloads) that the
    # proxy translates to gRPC toward the backend.
    protocol = "grpc"
    process = None  # The Child whose CPU and memory are measured; None for direct.
    port = 0
    skipped = None  # Why the target cannot run at all, or None.
    command = ""  # How it was last started, for the report.
    config_text = ""
    config_lang = ""
    # Environment added to the proxy's own (the counting pass preloads a library with it).
    env = None

    def version(self):
        return None

    def start(self, backend_port, cpus, workdir, nofile):
        raise NotImplementedError

    def stop(self):
        if self.process:
            self.process.stop()

    def alive(self):
        return self.process is None or self.process.alive()

    def _launch(self, argv, cpus, stop_signal=signal.SIGTERM, ready_line=None):
        self.process = Child(self.name, argv, cpus, stop_signal=stop_signal, env=self.env)
        self.command = shlex.join(self.process.argv)
        if ready_line:
            self.process.wait_for_line(ready_line)
        self.process.wait_for_port(self.port)


class Direct(Target):
    name = kind = "direct"
    command = "(load straight to the echo backend)"

    def start(self, backend_port, cpus, workdir, nofile):
        self.port = backend_port


class Grelay(Target):
    kind = "grelay"
    wrapper = []  # A program grelay runs under (bench_heaptrack.py uses heaptrack).

    def __init__(self, binary, workers=1, tls=False, name=None, web=False, protocol="grpc"):
        self.binary = binary
        self.workers = workers
        self.web = web  # The listener has web = true.
        self.protocol = protocol
        self.name = name or ("grelay" if workers == 1 else f"grelay-w{workers}")
        if tls:
            self.name += "-tls"
            self.scheme = "https"
        self.config_lang = "toml"
        if binary is None:
            self.skipped = "no grelay binary in the build directory (see --grelay)"

    def version(self):
        return first_line([str(self.binary), "--version"])

    def start(self, backend_port, cpus, workdir, nofile):
        self.port = free_port()
        tls = ""
        if self.scheme == "https":
            cert, key = tls_files(workdir)
            tls = f'tls = {{ cert = "{cert}", key = "{key}" }}\n'
        self.config_text = grelay_config(self.port, backend_port,
                                         head=f"workers = {self.workers}\n\n", tls=tls,
                                         web=self.web)
        config = Path(workdir) / f"{self.name}.toml"
        config.write_text(self.config_text)
        self._launch(self.wrapper + [self.binary, "-c", config], cpus,
                     ready_line=r"listening on \S+:\d+")


class Embedded(Target):
    """examples/embed: a host's own nghttp2 server relaying every call through
    grelay::StreamRelay (the library, not the grelay binary)."""
    kind = "grelay"
    name = "grelay-embedded"

    def __init__(self, binary):
        self.binary = binary
        self.config_lang = "toml"
        if binary is None:
            self.skipped = "no examples/embed/embed_server in the build directory"

    def start(self, backend_port, cpus, workdir, nofile):
        self.port = free_port()
        # The listener only names the limits of the relayed streams: the host listens itself.
        self.config_text = grelay_config(self.port, backend_port)
        config = Path(workdir) / f"{self.name}.toml"
        config.write_text(self.config_text)
        self._launch([self.binary, config, "127.0.0.1", str(self.port)], cpus,
                     ready_line=r"listening on \S+:\d+")


class Nghttpx(Target):
    kind = "nghttpx"

    def __init__(self, workers=1, tls=False):
        self.workers = workers
        self.name = "nghttpx" if workers == 1 else f"nghttpx-w{workers}"
        if tls:
            self.name += "-tls"
            self.scheme = "https"
        self.binary = shutil.which("nghttpx")
        if self.binary is None:
            self.skipped = "nghttpx not on PATH (Debian package nghttp2-proxy)"

    def version(self):
        return first_line([self.binary, "--version"])

    def start(self, backend_port, cpus, workdir, nofile):
        self.port = free_port()
        argv = [
            self.binary,
            "--conf=/dev/null",  # Do not read /etc/nghttpx/nghttpx.conf.
            f"--frontend=127.0.0.1,{self.port}" + ("" if self.scheme == "https" else ";no-tls"),
            f"--backend=127.0.0.1,{backend_port};;proto=h2",
            f"--workers={self.workers}",
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
            # Held idle connections and streams must outlive the memory measurements.
            "--frontend-http2-read-timeout=10m",
            "--backend-read-timeout=10m",
        ]
        if self.scheme == "https":
            argv += [str(path) for path in reversed(tls_files(workdir))]  # KEY CERT
        # SIGQUIT is nghttpx's graceful stop: its master then reaps the worker process,
        # which SIGTERM leaves behind as a zombie.
        self._launch(argv, cpus, stop_signal=signal.SIGQUIT)


class Haproxy(Target):
    name = kind = "haproxy"
    config_lang = "haproxy"

    def __init__(self):
        self.binary = shutil.which("haproxy")
        if self.binary is None:
            self.skipped = "haproxy not on PATH (Debian package haproxy)"

    def version(self):
        return first_line([self.binary, "-v"])

    def start(self, backend_port, cpus, workdir, nofile):
        self.port = free_port()
        # HAProxy needs two descriptors per proxied connection plus its own few.
        maxconn = max(100, min(100000, (nofile - 200) // 2))
        self.config_text = fill_template("haproxy.cfg", {
            "PORT": self.port, "BACKEND_PORT": backend_port, "MAXCONN": maxconn})
        config = Path(workdir) / "haproxy.cfg"
        config.write_text(self.config_text)
        # -db: stay in the foreground. SIGTERM stops at once, held connections included.
        self._launch([self.binary, "-db", "-f", config], cpus)


class Nginx(Target):
    name = kind = "nginx"
    config_lang = "nginx"

    def __init__(self):
        self.binary = shutil.which("nginx")
        if self.binary is None:
            self.skipped = "nginx not on PATH (Debian package nginx-light)"
        elif "--without-http_grpc_module" in _all_output([self.binary, "-V"]):
            self.skipped = "this nginx was built without grpc_pass (--without-http_grpc_module)"

    def version(self):
        return first_line([self.binary, "-v"])

    def start(self, backend_port, cpus, workdir, nofile):
        self.port = free_port()
        home = Path(workdir) / "nginx"
        home.mkdir(exist_ok=True)
        self.config_text = fill_template("nginx.conf", {
            "PORT": self.port, "BACKEND_PORT": backend_port, "WORKDIR": home,
            "NOFILE": nofile, "WORKER_CONNECTIONS": max(1024, nofile - 200)})
        config = home / "nginx.conf"
        config.write_text(self.config_text)
        # -e: start-up errors to stderr, not /var/log/nginx. SIGTERM is the fast stop
        # (SIGQUIT would wait for held streams).
        self._launch([self.binary, "-e", "stderr", "-p", home, "-c", config], cpus)


class Envoy(Target):
    name = kind = "envoy"
    config_lang = "yaml"
    template = "envoy.yaml"

    def __init__(self, name=None, web=False, protocol="grpc"):
        if name:
            self.name = name
        # With |web|, the grpc_web filter translates gRPC-Web calls (HTTP/2 or HTTP/1.1).
        if web:
            self.template = "envoy-web.yaml"
        self.protocol = protocol
        self.binary = shutil.which("envoy")
        if self.binary is None:
            self.skipped = "envoy not on PATH"

    def version(self):
        return first_line([self.binary, "--version"])

    def start(self, backend_port, cpus, workdir, nofile):
        self.port = free_port()
        self.config_text = fill_template(self.template, {
            "PORT": self.port, "BACKEND_PORT": backend_port})
        config = Path(workdir) / f"{self.name}.yaml"
        config.write_text(self.config_text)
        self._launch([self.binary, "-c", config, "--concurrency", "1",
                      "--disable-hot-restart", "--log-level", "warn"], cpus)


def make_targets(names, grelay_binary, baseline_binary=None, embed_binary=None):
    """Target objects for |names| (see ALL_TARGETS), skipped ones included."""
    makers = {
        "direct": Direct,
        "grelay": lambda: Grelay(grelay_binary),
        "grelay-baseline": lambda: Grelay(baseline_binary, name="grelay-baseline"),
        "grelay-w2": lambda: Grelay(grelay_binary, 2),
        "grelay-embedded": lambda: Embedded(embed_binary),
        "grelay-tls": lambda: Grelay(grelay_binary, tls=True),
        "nghttpx-tls": lambda: Nghttpx(tls=True),
        "nghttpx": Nghttpx,
        "nghttpx-w2": lambda: Nghttpx(2),
        "haproxy": Haproxy,
        "nginx": Nginx,
        "envoy": Envoy,
        # The web workloads: plain gRPC and gRPC-Web calls to the same web-enabled config.
        "grelay-grpc": lambda: Grelay(grelay_binary, name="grelay-grpc", web=True),
        "grelay-web": lambda: Grelay(grelay_binary, name="grelay-web", web=True,
                                     protocol="grpc-web"),
        "envoy-grpc": lambda: Envoy("envoy-grpc", web=True),
        "envoy-web": lambda: Envoy("envoy-web", web=True, protocol="grpc-web"),
    }
    return [makers[name]() for name in names]


ALL_TARGETS = ("direct", "grelay", "nghttpx", "haproxy", "nginx", "envoy", "grelay-w2",
               "nghttpx-w2", "grelay-tls", "nghttpx-tls", "grelay-baseline", "grelay-embedded",
               "grelay-grpc", "grelay-web", "envoy-grpc", "envoy-web")
