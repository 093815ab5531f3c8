"""`tcd serve`: the web application on waitress (threads), bound to loopback unless told otherwise."""
from __future__ import annotations

import ipaddress
import logging
import os
import tempfile

import click
import waitress

from archive.cli import pass_ctx

from . import create_app, dispatch

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


def serve_app(archive, host: str, port: int, threads: int = THREADS, echo=click.echo) -> None:
    """Run the application until interrupted."""
    if not os.environ.get("TMPDIR"):
        # waitress spools request bodies (uploads) to temporary files: keep them on the
        # archive's disk, not in a /tmp that may be small or in memory.
        spool = archive.settings.staging_dir / ".spool"
        spool.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(spool)
    app = create_app(archive)
    # waitress warns of every request that waits for a thread: under load, that is one line (and
    # its formatting) per request in the server's output, telling nothing a slow page does not.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    if not archive.catalog.list_users():
        echo("No users yet: add one with `tcd user add NAME --role admin` to sign in.")
    if not is_loopback(host):
        echo(f"Warning: {host} is reachable from other machines; serve it behind HTTPS.")
    echo(f"Serving {archive.home} on http://{host}:{port}/ (Ctrl+C stops).")
    # _dispatcher: waitress's own thread pool, but media requests go first (web.dispatch)
    waitress.serve(app, host=host, port=port, threads=threads, ident="tcd",
                   max_request_body_size=BIGGEST_UPLOAD, channel_timeout=300,
                   connection_limit=200, _quiet=True, _dispatcher=dispatch.dispatcher(threads))


@click.command()
@click.option("--host", help="Address to listen on (default: the [server] host of tcd.toml, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default: the [server] port of tcd.toml, 8000).")
@click.option("--threads", type=int, default=THREADS, show_default=True, help="Requests served at once.")
@pass_ctx
def serve(ctx, host, port, threads):
    """Serve the web application (search, player, uploads, admin)."""
    archive = ctx.archive
    serve_app(archive, host or archive.settings.host, port or archive.settings.port, threads)
