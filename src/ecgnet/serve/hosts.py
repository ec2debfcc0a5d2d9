"""Which ``Host`` headers the viewer answers: the loopback names unless configured.

A server on 127.0.0.1 is still reachable from a web page through DNS rebinding (a name the attacker
controls resolving to 127.0.0.1): the browser then sends that name as ``Host``. Starlette's
:class:`~starlette.middleware.trustedhost.TrustedHostMiddleware` answers such requests 400 before any route
runs. ``ecgnet serve --host 0.0.0.0`` exposes the viewer to the network; the names clients use to
reach it must then be given with ``--allowed-host`` (``*`` accepts any, as before this check).

A page of another origin can also *post* to the viewer — a form or a ``no-cors`` fetch needs no permission, and
only reading the answer is withheld — and make it work (a 64-step explanation, a large upload). A browser
names the page's origin in ``Origin`` on every such request, so :class:`SameOrigin` refuses a POST whose
``Origin`` is not the server's own (scheme, host and port); clients that are not browsers send none and
are not affected.
"""

from __future__ import annotations

from starlette._utils import parse_host_header
from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def trusted_hosts(configured: list[str] | tuple[str, ...] | None = None, bind_host: str | None = None) -> list[str]:
    """The loopback names, the address the server is bound to (unless a wildcard) and ``configured``."""
    hosts = list(LOCAL_HOSTS)
    if bind_host and bind_host not in ("0.0.0.0", "::", ""):
        hosts.append(f"[{bind_host}]" if ":" in bind_host and not bind_host.startswith("[") else bind_host)
    hosts += [h.strip().lower() for h in configured or () if h.strip()]
    return list(dict.fromkeys(hosts))


class TrustedHosts(TrustedHostMiddleware):
    """Starlette's check (its host parsing and ``*.domain`` patterns), the refusal as one line of JSON like
    every other error of the API, saying how to serve the name (Starlette answers 'Invalid host header' as text)."""

    async def __call__(self, scope, receive, send) -> None:
        if self.allow_any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        parsed = parse_host_header(Headers(scope=scope).get("host"))
        host = parsed.host.lower() if parsed is not None else None
        if host is not None and matches(host, self.allowed_hosts):
            await self.app(scope, receive, send)
            return
        shown = repr(host[:80]) if host else "missing or malformed"
        await JSONResponse({"detail": f"Host header {shown} is not served here (this server answers "
                                      f"{', '.join(self.allowed_hosts)}; start it with --allowed-host NAME to "
                                      "serve another name)"}, status_code=400)(scope, receive, send)


def matches(host: str, patterns) -> bool:
    """Whether ``host`` is one of ``patterns``: a name, ``*.domain`` or ``*`` (any)."""
    return any(p == "*" or host == p or (p.startswith("*") and host.endswith(p[1:])) for p in patterns)


def add_trusted_hosts(app, hosts: list[str]) -> None:
    app.add_middleware(TrustedHosts, allowed_hosts=hosts, www_redirect=False)


class SameOrigin:
    """Refuses (403, one line of JSON) a request other than GET/HEAD/OPTIONS whose ``Origin`` is not the
    server's own page: ``http(s)://`` + its own ``Host``, or a page on a name given with ``--allowed-host`` (any
    port or scheme: behind a reverse proxy the ``Host`` the server sees is rewritten). ``null`` (a sandboxed or
    local page) is refused; a loopback name on another port is another page."""

    SAFE = ("GET", "HEAD", "OPTIONS")

    def __init__(self, app, allowed_hosts: list[str] | tuple[str, ...] = LOCAL_HOSTS):
        self.app = app
        self.configured = [h for h in allowed_hosts if h not in LOCAL_HOSTS]

    def _configured(self, origin: str) -> bool:
        parsed = parse_host_header(origin.split("://", 1)[-1]) if "://" in origin else None
        host = parsed.host.lower() if parsed is not None else ""
        return matches(host, self.configured)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] not in self.SAFE:
            headers = Headers(scope=scope)
            origin, host = headers.get("origin"), (headers.get("host") or "").lower()
            if origin is not None and origin.lower() not in (f"http://{host}", f"https://{host}") \
                    and not self._configured(origin):
                await JSONResponse({"detail": f"a request from the page {origin[:80]!r} to this server is refused "
                                              "(only the viewer's own pages may post to it)"},
                                   status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
