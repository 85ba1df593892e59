"""A fresh `streamlit run app.py` and Debian's Chromium: what the browser tests and the measuring tools share.

    with app_server() as server:              # the shipped config; environment overrides as keyword
        print(server.base, resident_mb(server.pid))

The server runs as the README starts it (.streamlit/config.toml, nothing overridden), offline, on a free
port, and is always terminated. Its output goes to a temporary file, read back when it fails to start.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

ROOT = Path(__file__).resolve().parent.parent
# Chromium as root in a container: no sandbox, no GPU, nothing fetched in the background, /tmp instead of a
# small /dev/shm.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage")


class ServerStartError(RuntimeError):
    """`streamlit run app.py` exited or did not answer its health check in time."""


@dataclass(frozen=True)
class AppServer:
    base: str  # "http://127.0.0.1:<port>"
    pid: int
    launched: float  # time.perf_counter() just before the process started


def chromium_path() -> str | None:
    """Debian's Chromium (apt-get install chromium), or None when it is not installed."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def tree_cpu_seconds(pid: int, exclude: Iterable[int] = ()) -> float:
    """CPU time of process `pid` and all its descendants (each one's user + system time plus that of its children
    it has already reaped), leaving out the subtrees of the processes in `exclude`."""
    children: dict[int, list[int]] = {}
    seconds: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        process = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(process)  # fields[1]: parent pid
        seconds[process] = sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # u, s, cu, cs
    skipped, total, pending = set(exclude), 0.0, [pid]
    while pending:
        process = pending.pop()
        if process in skipped:
            continue
        total += seconds.get(process, 0.0)
        pending += children.get(process, [])
    return total


def resident_mb(pid: int) -> float:
    """The process's resident memory (VmRSS) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    raise ValueError(f"/proc/{pid}/status has no VmRSS line: is process {pid} a zombie?")


def load_average() -> tuple[float, float, float]:
    """The machine's 1-, 5- and 15-minute load averages (/proc/loadavg)."""
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


@contextmanager
def app_server(port: int | None = None, timeout: float = 60.0, **environment: str) -> Iterator[AppServer]:
    """`streamlit run app.py` on `port` (default: a free one), offline, until the block ends.

    Args:
        port: the port to serve on; None picks a free one.
        timeout: seconds to wait for /_stcore/health to answer "ok".
        **environment: variables set for the server on top of this process's (EXPLAIN_CACHE_MB="256").

    Raises:
        ServerStartError: the server exited or stayed unhealthy for `timeout` seconds (with its output's tail).
    """
    port = free_port() if port is None else port
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error", **environment)
    with tempfile.TemporaryFile() as log:
        launched = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while not _healthy(base):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    raise ServerStartError(f"streamlit did not become healthy within {timeout:.0f} s: {output[-2000:]}")
                time.sleep(0.3)
            yield AppServer(base=base, pid=process.pid, launched=launched)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
            return response.read().strip() == b"ok"
    except OSError:
        return False
