"""The server process: uvicorn until SIGTERM or SIGINT, then out promptly with no upload left behind.

On either signal uvicorn stops listening and gives open requests ``GRACE_SECONDS``; the app's shutdown
then removes every upload folder still in use and refuses new ones
(:meth:`~ecgnet.serve.uploads.UploadFolders.close`). What nothing can stop are requests computing in
worker threads, and Python waits for them on its way out (18 s for three 10-minute records after
Ctrl-C), so once uvicorn's shutdown is done the process ends there (``os._exit``, status 0).
"""

from __future__ import annotations

import os
import sys

GRACE_SECONDS = 3


def run(app, host: str, port: int) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None) -> None:
            await super().shutdown(sockets)
            app.state.uploads.close()  # (if the app's shutdown did not run: uvicorn's force exit)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=GRACE_SECONDS)
    Server(config).run()
