"""Processes for bench.py: started children, CPU and memory from /proc, CPU pinning."""

import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Child:
    """A started process whose stdout and stderr are drained by threads, so a chatty
    child never blocks on a full pipe; the last lines are kept for error messages."""

    def __init__(self, name, argv, cpus=None, stop_signal=signal.SIGTERM, cwd=None, env=None):
        self.name = name
        self.stop_signal = stop_signal
        self.argv = (["taskset", "-c", cpus] if cpus else []) + [str(a) for a in argv]
        self.lines = []
        self.cond = threading.Condition()
        # taskset execs the program, so the pid is the program's own.
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, errors="replace", cwd=cwd,
                                     env={**os.environ, **env} if env else None)
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._drain, args=(stream,), daemon=True).start()

    def _drain(self, stream):
        for line in stream:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                del self.lines[:-400]
                self.cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def wait_for_line(self, pattern, timeout=10.0, start=0):
        """The first match of |pattern| among the lines from index |start| on."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    match = regex.search(line)
                    if match:
                        return match
                if self.proc.poll() is not None:
                    # Give the drain threads a moment to deliver the last lines.
                    self.cond.wait(0.2)
                    for line in self.lines[start:]:
                        match = regex.search(line)
                        if match:
                            return match
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                       f"{self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{self.name}: no line matching {pattern!r} after "
                                       f"{timeout}s: {self.tail()}")
                self.cond.wait(min(left, 0.1))

    def count_lines(self, pattern):
        """How many lines so far match |pattern|."""
        regex = re.compile(pattern)
        with self.cond:
            return sum(1 for line in self.lines if regex.search(line))

    def line_count(self):
        with self.cond:
            return len(self.lines)

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

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit():
    """Lifts this process's soft RLIMIT_NOFILE to the hard limit; every child inherits it.
    Returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


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
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def cpu_delta(before, after, pids):
    """CPU seconds |pids| used between two snapshots."""
    ticks = sum(after[p][2] - before.get(p, (0, "", 0))[2] for p in pids if p in after)
    return ticks / CLOCK_TICKS


def user_system_cpu(pids):
    """(user, system) CPU seconds |pids| used so far, all threads included (fields 14 and
    15 of proc(5)); a pid gone meanwhile counts nothing."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def system_cpu():
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS


def children_cpu():
    """CPU seconds of this script's reaped children (h2load, load_client)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _proc_kib(path, key):
    """The kB value of the line starting with |key| in a /proc file such as
    /proc/PID/status or /proc/meminfo; 0 when absent or unreadable."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _status_kib(pid, key):
    return _proc_kib(f"/proc/{pid}/status", key)


def peak_rss_mib(root):
    """Sum over the process tree of each process's peak resident set (VmHWM)."""
    return sum(_status_kib(pid, "VmHWM:") for pid in process_tree(root)) / 1024


def rss_kib(root):
    """Sum over the process tree of each process's resident set (VmRSS), in KiB."""
    return sum(_status_kib(pid, "VmRSS:") for pid in process_tree(root))


def fd_count(root):
    """Open file descriptors over the process tree (sockets included)."""
    total = 0
    for pid in process_tree(root):
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return total


def memory_map(root):
    """Resident KiB over the process tree by kind of mapping: heap (brk), anonymous mmaps,
    stacks and files, from /proc/PID/smaps."""
    kinds = {"heap": 0, "anon": 0, "stack": 0, "file": 0}
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/smaps") as f:
                kind = "anon"
                for line in f:
                    first = line.split(None, 1)[0]
                    if re.match(r"^[0-9a-f]+-[0-9a-f]+$", first):
                        parts = line.split()
                        name = parts[5] if len(parts) > 5 else ""
                        kind = ("heap" if name == "[heap]" else
                                "stack" if name.startswith("[stack") else
                                "file" if name.startswith("/") else "anon")
                    elif first == "Rss:":
                        kinds[kind] += int(line.split()[1])
        except OSError:
            continue
    return kinds


def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else f"(no output, exit {out.returncode})"
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"(unavailable: {error})"


def cpu_model():
    """The CPU model as /proc/cpuinfo names it, with family, model and stepping (a VM's
    model name is often only "Intel Xeon Processor"; the numbers tell the generation) and
    whether it runs under a hypervisor."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # The first CPU is enough.
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    model = fields.get("model name") or platform.processor() or "unknown"
    numbers = ", ".join(f"{key} {fields[key]}" for key in ("cpu family", "model", "stepping")
                        if key in fields)
    if numbers:
        model += f" ({numbers})"
    if "hypervisor" in fields.get("flags", "").split():
        model += ", virtual machine"
    return model


def machine_info():
    memory = _status_meminfo("MemTotal:")
    return (f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), {cpu_model()}, "
            f"{memory / 1024 / 1024:.1f} GiB RAM, Linux {platform.release()}")


def _status_meminfo(key):
    return _proc_kib("/proc/meminfo", key)


def pin_plan(enabled):
    """Which CPUs each party runs on: the proxy alone on one CPU, the load generator
    and the backend on the others (sharing one when there are only two)."""
    cpus = sorted(os.sched_getaffinity(0))
    none = {"proxy": None, "backend": None, "load": None}
    if not enabled or len(cpus) < 2 or shutil.which("taskset") is None:
        return none, "no CPU pinning"
    if len(cpus) == 2:
        pins = {"proxy": str(cpus[0]), "backend": str(cpus[1]), "load": str(cpus[1])}
        return pins, (f"proxy on CPU {cpus[0]}; echo backend and load client share "
                      f"CPU {cpus[1]}")
    load = ",".join(str(c) for c in cpus[2:])
    pins = {"proxy": str(cpus[0]), "backend": str(cpus[1]), "load": load}
    return pins, (f"proxy on CPU {cpus[0]}; echo backend on CPU {cpus[1]}; load client on "
                  f"CPUs {load}")


def busy_processes(threshold=20.0, interval=1.0):
    """Processes using more than |threshold| % of a core over |interval| seconds, as
    "name NN%" strings, busiest first: what else is running before a long benchmark."""
    before = snapshot()
    time.sleep(interval)
    after = snapshot()
    me = os.getpid()
    busy = []
    for pid, (_, name, _) in after.items():
        if pid == me:
            continue
        share = cpu_delta(before, after, [pid]) / interval * 100
        if share >= threshold:
            busy.append((share, name))
    return [f"{name} {share:.0f}%" for share, name in sorted(busy, reverse=True)]
