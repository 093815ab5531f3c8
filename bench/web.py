"""Web benchmark: `tcd serve` on the sample session, driven from this process by concurrent
clients (threads, each with its own keep-alive connection and signed-in session) mixing searches,
session pages and byte-range reads of the access copy, on loopback only. The clients are spread
over several processes so that the load generator's own GIL does not add to the latencies it
measures. The server runs as configured (one process per core by default), then, as the baseline
in the same run, as one process.

    .venv/bin/python bench/web.py [--clients 50] [--seconds 60] [--think 0] [--client-processes 4]
                                  [--threads 4] [--processes N] [--no-baseline] [--home DIR] [--keep]

Prints requests per second and p50/p95/p99 latency per kind of request, the errors, and the
ratios against the one-process baseline.
Targets: no errors; p95 under 200 ms for a search and under 50 ms for a range read.
"""
from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from archive import open_archive, users  # noqa: E402
from web.cli import THREADS  # noqa: E402

TCD = str(Path(sys.executable).parent / "tcd")
PASSWORD = "bench-password-123"
QUERIES = ["đất đai", "bồi thường", "Nguyễn Văn Đức", "khiếu nại", "đối thoại trực tiếp",
           "mười lăm ngày", "Hòa Bình", "tài nguyên môi trường", "thu hồi đất", "lãnh đạo tỉnh"]
MIX = [("search", 0.4), ("session", 0.3), ("range", 0.3)]
RANGE_BYTES = 256 * 1024
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(home: Path) -> dict:
    """The sample session ingested through the pipeline (as `make demo` does) and a user."""
    from web.demo import ingest_sample
    archive = open_archive(home, env={})
    session_id = ingest_sample(archive)
    if "bench" not in {u.name for u in archive.catalog.list_users()}:  # kept from a run with --home
        users.add_user(archive, "bench", "inspector", PASSWORD, actor="bench")
    recordings = [r for r in archive.catalog.recordings_for_session(session_id) if r.access_sha256]
    sizes = {r.id: archive.store.size(r.access_sha256) for r in recordings}
    archive.catalog.close()
    return {"session": session_id, "sizes": sizes}


class Client:
    """One browser: a keep-alive connection and a signed-in session cookie."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = self.cookie
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()  # reconnect on the next request
            raise
        for value in response.headers.get_all("Set-Cookie") or []:
            if value.startswith("tcd_session="):
                self.cookie = value.split(";", 1)[0]
        return response.status, data

    def sign_in(self) -> None:
        status, page = self.request("GET", "/login")
        token = CSRF_RE.search(page.decode()).group(1)
        body = urllib.parse.urlencode({"username": "bench", "password": PASSWORD, "csrf_token": token})
        status, _ = self.request("POST", "/login", body)
        if status != 302:
            raise RuntimeError(f"sign-in failed with HTTP {status}")


def drive(port: int, data: dict, seconds: float, think: float, seed: int, results: dict,
          lock: threading.Lock, start_gate) -> None:
    rng = random.Random(seed)
    client = Client(port)
    client.sign_in()
    kinds, weights = zip(*MIX)
    recordings = list(data["sizes"].items())
    local = {kind: [] for kind in kinds}
    errors: list[str] = []
    start_gate.wait()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if think:
            time.sleep(rng.uniform(0.5 * think, 1.5 * think))
        kind = rng.choices(kinds, weights)[0]
        headers, expect = {}, 200
        if kind == "search":
            path = "/search?" + urllib.parse.urlencode({"q": rng.choice(QUERIES)})
        elif kind == "session":
            path = f"/sessions/{data['session']}?t={rng.randint(0, 30)}"
        else:
            rec_id, size = rng.choice(recordings)
            first = rng.randrange(0, size)
            headers["Range"] = f"bytes={first}-{min(size, first + RANGE_BYTES) - 1}"
            path, expect = f"/media/{rec_id}", 206
        started = time.perf_counter()
        try:
            status, _ = client.request("GET", path, headers=headers)
        except Exception as exc:  # a failed request is an error of the run, not of the script
            errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            continue
        elapsed = time.perf_counter() - started
        if status != expect:
            errors.append(f"{kind}: HTTP {status} for {path}")
        else:
            local[kind].append(elapsed)
    with lock:
        for kind, values in local.items():
            results["latency"][kind].extend(values)
        results["errors"].extend(errors)


def client_process(port: int, data: dict, seconds: float, think: float, seeds: list[int],
                   start_gate, out) -> None:
    """One load-generating process: a thread per client; sends back what they measured."""
    results = {"latency": {kind: [] for kind, _ in MIX}, "errors": []}
    lock = threading.Lock()
    workers = [threading.Thread(target=drive, args=(port, data, seconds, think, seed, results, lock, start_gate),
                                daemon=True) for seed in seeds]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    times = os.times()
    out.put({**results, "cpu": times.user + times.system})


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"Server threads (tcd serve --threads; default {THREADS}).")
    parser.add_argument("--processes", type=int, default=0,
                        help="Server processes (tcd serve --processes; default 0: one per core).")
    parser.add_argument("--no-baseline", action="store_true",
                        help="Skip the second run on one server process.")
    parser.add_argument("--client-processes", type=int, default=4,
                        help="Processes the clients are spread over (default 4; 1: all in this one).")
    parser.add_argument("--think", type=float, default=0.0,
                        help="Mean pause of each client between requests in seconds (default 0: "
                             "back to back, a stress test rather than people at work).")
    parser.add_argument("--home", help="Data folder to use (default: a temporary one).")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary data folder.")
    args = parser.parse_args()
    args.load_before = psutil.getloadavg()[0]  # other work on the machine; during the run it counts our threads

    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="tcd-bench-web-")) / "tcd-data"
    print(f"Preparing the sample session in {home} …", flush=True)
    data = prepare(home)
    try:
        measured = measure(home, data, args, args.processes or psutil.cpu_count())
        if not args.no_baseline and measured["processes"] > 1:
            print("\nBaseline: the same load on one server process.", flush=True)
            baseline = measure(home, data, args, 1)
            print(f"\n{measured['processes']} processes against 1: throughput "
                  f"{measured['rate'] / baseline['rate']:.2f}x, search p95 "
                  f"{measured['search95']:.0f} ms against {baseline['search95']:.0f} ms "
                  f"({baseline['search95'] / measured['search95']:.2f}x faster), range p95 "
                  f"{measured['range95']:.0f} ms against {baseline['range95']:.0f} ms")
    finally:
        if not args.home and not args.keep:
            shutil.rmtree(home.parent, ignore_errors=True)


def measure(home: Path, data: dict, args, server_processes: int) -> dict:
    """Start `tcd serve`, run the clients against it, print the report; its main figures."""
    port = free_port()
    log_path = home / "serve.log"  # a file, not a pipe nobody reads: a full pipe would block the server
    log = open(log_path, "wb")
    server = subprocess.Popen([TCD, "--home", str(home), "serve", "--host", "127.0.0.1",
                               "--port", str(port), "--threads", str(args.threads),
                               "--processes", str(server_processes)],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(port, server, log_path)
        results = {"latency": {kind: [] for kind, _ in MIX}, "errors": [], "cpu": 0.0}
        processes = max(1, min(args.client_processes, args.clients))
        gate = multiprocessing.Barrier(args.clients + 1)
        out = multiprocessing.Queue()
        seeds = [list(range(1000 + p, 1000 + args.clients, processes)) for p in range(processes)]
        clients = [multiprocessing.Process(target=client_process, daemon=True,
                                           args=(port, data, args.seconds, args.think, chunk, gate, out))
                   for chunk in seeds]
        for c in clients:
            c.start()
        gate.wait(timeout=300)  # every client signed in: the clock starts now
        # the server's processes: the one started, and its workers when it has several
        serving = [psutil.Process(server.pid)] + psutil.Process(server.pid).children()
        for proc in serving:
            proc.cpu_percent()
        started = time.monotonic()
        peak_rss, received = 0, 0
        while received < processes:
            peak_rss = max(peak_rss, sum(proc.memory_info().rss for proc in serving))
            try:
                part = out.get(timeout=0.5)
            except queue.Empty:
                if not any(c.is_alive() for c in clients):
                    sys.exit("A client process died without sending its results.")
                continue
            received += 1
            wall = time.monotonic() - started
            for kind, values in part["latency"].items():
                results["latency"][kind].extend(values)
            results["errors"].extend(part["errors"])
            results["cpu"] += part["cpu"]
        cpu = sum(proc.cpu_percent() for proc in serving)
        for c in clients:
            c.join()
        args.client_processes = processes
        figures = report(results, wall, args, server_processes, peak_rss, cpu)
        warnings = [l for l in log_path.read_text(errors="replace").splitlines() if "WARNING" in l or "ERROR" in l]
        if warnings:
            print(f"server log: {len(warnings)} warnings/errors, the last: {warnings[-1]}")
        return figures
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def wait_healthy(port: int, server: subprocess.Popen, log_path: Path, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server.poll() is not None:
            sys.exit(f"tcd serve exited: {log_path.read_text(errors='replace')}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("tcd serve did not answer /healthz in time.")


def report(results: dict, wall: float, args, server_processes: int, peak_rss: int, cpu: float) -> dict:
    total = sum(len(v) for v in results["latency"].values())
    errors = results["errors"]
    print(f"\n{args.clients} clients (think {args.think:g} s), {wall:.1f} s, server processes "
          f"{server_processes} x threads {args.threads}, "
          f"{psutil.cpu_count()} cores, load average {args.load_before:.1f} before, {psutil.getloadavg()[0]:.1f} after")
    print(f"{total} requests, {total / wall:.1f} requests/s, {len(errors)} errors; "
          f"server peak RSS {peak_rss / 2**20:.0f} MB (all processes), CPU {cpu:.0f}% (100% = one core)")
    print(f"load generator: {args.client_processes} processes, CPU {100 * results['cpu'] / wall:.0f}% "
          f"(sign-in included)")
    print(f"{'kind':<8} {'count':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, values in results["latency"].items():
        ms = [v * 1000 for v in values]
        print(f"{kind:<8} {len(ms):>7} {len(ms) / wall:>7.1f} {percentile(ms, 50):>8.1f} "
              f"{percentile(ms, 95):>8.1f} {percentile(ms, 99):>8.1f} {max(ms, default=float('nan')):>8.1f}")
    for line in sorted(set(errors))[:10]:
        print(f"  error: {line}")
    search95 = percentile([v * 1000 for v in results["latency"]["search"]], 95)
    range95 = percentile([v * 1000 for v in results["latency"]["range"]], 95)
    verdict = "met" if not errors and search95 < 200 and range95 < 50 else "NOT met"
    print(f"Targets (no errors, search p95 < 200 ms, range p95 < 50 ms): {verdict}")
    return {"processes": server_processes, "rate": total / wall, "search95": search95,
            "range95": range95, "errors": len(errors)}


if __name__ == "__main__":
    main()
