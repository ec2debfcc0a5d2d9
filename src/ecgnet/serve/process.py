"""The server process: uvicorn until SIGTERM or SIGINT, then out promptly with no upload left behind.

On either signal uvicorn stops listening and gives open requests ``GRACE_SECONDS``; the app's shutdown
then removes every upload folder still in use and refuses new ones
(:meth:`~ecgnet.serve.uploads.UploadFolders.close`). What nothing can stop are requests computing in
worker threads, and Python waits for them on its way out (18 s for three 10-minute records after
Ctrl-C), so once uvicorn's shutdown is done the process ends there (``os._exit``, status 0).

Connections are bounded (:attr:`~ecgnet.serve.limits.ServeLimits.max_connections`): an upload is spooled to
disk in full before a request waits for a slot of the gate, so without a bound thirty uploads held 960 MiB of
temporary files and every worker thread, and the page waited behind them.
"""

from __future__ import annotations

import os
import socket
import sys

from ecgnet.errors import ECGNetError

GRACE_SECONDS = 3


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (0: a free port), or one error line saying why not — before the
    banner, so a port in use is not announced as served (uvicorn logged it after, and exited with status 3)."""
    if not 0 <= port <= 65535:
        raise ECGNetError(f"--port {port}: a port is a number from 1 to 65535 (0 picks a free one)")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError) as e:
        raise ECGNetError(f"--host {host}: not an address of this machine ({getattr(e, 'strerror', None) or e}); "
                          "127.0.0.1 serves this machine only, 0.0.0.0 every network") from e
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        hint = ("another program listens there: choose another --port, or --port 0 for a free one"
                if e.errno == 98 else "choose another --host or --port")
        raise ECGNetError(f"cannot listen on {host}:{port}: {e.strerror or e} — {hint}") from e
    return sock


def run(app, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` (from :func:`listen`) until SIGTERM or SIGINT."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None) -> None:
            await super().shutdown(sockets)
            app.state.uploads.close()  # (if the app's shutdown did not run: uvicorn's force exit)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=GRACE_SECONDS,
                            limit_concurrency=app.state.serve_limits.max_connections)  # beyond it: 503 at once
    Server(config).run(sockets=[sock])
