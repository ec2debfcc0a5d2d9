"""Which ``Host`` headers the viewer answers: the loopback names unless configured.

A server on 127.0.0.1 is still reachable from a web page through DNS rebinding (a name the attacker
controls resolving to 127.0.0.1): the browser then sends that name as ``Host``. Starlette's
:class:`~starlette.middleware.trustedhost.TrustedHostMiddleware` answers such requests 400 before any route
runs. ``ecgnet serve --host 0.0.0.0`` exposes the viewer to the network; the names clients use to
reach it must then be given with ``--allowed-host`` (``*`` accepts any, as before this check).
"""

from __future__ import annotations

from starlette.middleware.trustedhost import TrustedHostMiddleware

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def trusted_hosts(configured: list[str] | tuple[str, ...] | None = None, bind_host: str | None = None) -> list[str]:
    """The loopback names, the address the server is bound to (unless a wildcard) and ``configured``."""
    hosts = list(LOCAL_HOSTS)
    if bind_host and bind_host not in ("0.0.0.0", "::", ""):
        hosts.append(f"[{bind_host}]" if ":" in bind_host and not bind_host.startswith("[") else bind_host)
    hosts += [h.strip().lower() for h in configured or () if h.strip()]
    return list(dict.fromkeys(hosts))


def add_trusted_hosts(app, hosts: list[str]) -> None:
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)
