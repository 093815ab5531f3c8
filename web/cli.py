"""`tcd serve`: the web application on waitress (threads in each of one or more processes), bound
to loopback unless told otherwise; on SIGTERM or Ctrl+C it lets the requests running finish
(web/drain.py)."""
from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
import tempfile

import click
import waitress

from archive.cli import pass_ctx

from . import create_app, dispatch, drain, workers

# Requests served at once. Requests are mostly Python under one GIL: more threads than this only
# add switching (bench/web.py, 50 clients: 16 threads served 160-230 requests/s, 4 served 250-280).
THREADS = 4
BIGGEST_UPLOAD = 1 << 40  # waitress refuses bodies over 1 GB by default; a session can be larger


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_app(archive, host: str, port: int, threads: int = THREADS, processes: int = 1,
              drain_seconds: float = 30.0, echo=click.echo) -> int:
    """Run the application until interrupted; the exit status (0: stopped as asked). Requests
    running when it is asked to stop have `drain_seconds` to finish."""
    if not os.environ.get("TMPDIR"):
        # waitress spools request bodies (uploads) to temporary files: keep them on the
        # archive's disk, not in a /tmp that may be small or in memory.
        spool = archive.settings.staging_dir / ".spool"
        spool.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(spool)
    # waitress warns of every request that waits for a thread: under load, that is one line (and
    # its formatting) per request in the server's output, telling nothing a slow page does not.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    if not archive.catalog.list_users():
        echo("No users yet: add one with `tcd user add NAME --role admin` to sign in.")
    if not is_loopback(host):
        echo(f"Warning: {host} is reachable from other machines; serve it behind HTTPS.")
    try:
        listener = socket.create_server((host, port), family=_family(host), backlog=1024)
    except OSError as exc:
        raise click.ClickException(f"Cannot listen on {host}:{port} ({exc.strerror or exc}); "
                                   "is another server using that port?") from None
    listener.setblocking(False)  # with several workers waiting on it, one wins each connection
    many = f" with {processes} processes" if processes > 1 else ""
    echo(f"Serving {archive.home} on http://{host}:{port}/{many} (Ctrl+C stops).")
    if processes <= 1:
        _serve(archive, listener, threads, drain_seconds)
        return 0
    sys.stdout.flush()
    archive.catalog.close()  # each worker opens its own connections
    return workers.Supervisor(lambda seats: _serve(archive, listener, threads, drain_seconds, seats),
                              processes, drain_seconds, listener).run()


def _family(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET


def _serve(archive, listener: socket.socket, threads: int, drain_seconds: float,
           seats: workers.Seats | None = None) -> None:
    # _dispatcher: waitress's own thread pool, but media requests go first (web.dispatch)
    socket_map: dict = {}  # ours, so that web.drain can turn waitress's loop itself
    server = waitress.create_server(
        create_app(archive), map=socket_map, sockets=[listener], threads=threads, ident="tcd",
        max_request_body_size=BIGGEST_UPLOAD, channel_timeout=300, connection_limit=200,
        _dispatcher=dispatch.dispatcher(threads))
    if seats is not None:
        # waitress waits for new connections while readable() says so: only while no other
        # worker holds fewer connections than this one (web.workers.Seats)
        accepting = server.readable
        server.readable = lambda: seats.may_accept(len(server.active_channels)) and accepting()
    drain.Drain(server, socket_map, drain_seconds).serve(alone=seats is None)


@click.command()
@click.option("--host", help="Address to listen on (default: the [server] host of tcd.toml, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default: the [server] port of tcd.toml, 8000).")
@click.option("--threads", type=int, default=THREADS, show_default=True,
              help="Requests each process serves at once.")
@click.option("--processes", type=click.IntRange(min=1),
              help="Server processes (default: the [server] processes of tcd.toml, one per core).")
@click.option("--drain", "drain_seconds", type=click.FloatRange(min=0), metavar="SECONDS",
              help="On SIGTERM or Ctrl+C, how long requests already running may take to finish "
                   "before they are cut (default: the [server] drain_seconds of tcd.toml, 30); "
                   "a second signal stops at once.")
@pass_ctx
def serve(ctx, host, port, threads, processes, drain_seconds):
    """Serve the web application (search, player, uploads, admin)."""
    settings = ctx.archive.settings
    status = serve_app(ctx.archive, host or settings.host, port or settings.port, threads,
                       processes or settings.server_processes,
                       settings.drain_seconds if drain_seconds is None else drain_seconds)
    sys.exit(status)
