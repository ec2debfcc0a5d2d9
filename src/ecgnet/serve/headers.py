"""The headers every answer of the viewer carries, so a browser holds its pages to what they are: a
Content-Security-Policy (scripts, styles, images and requests from the server itself only — the page needs
nothing else; the API page's inline style and the trace exported as a ``data:`` image allowed), no framing
by other pages (clickjacking), no MIME sniffing, and no referrer sent elsewhere."""

from __future__ import annotations

CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff", "x-frame-options": "DENY",
                    "referrer-policy": "no-referrer"}
HEADERS = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]  # as ASGI sends them


class SecurityHeaders:
    """Adds :data:`HEADERS` to every HTTP answer (refusals included)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)
