"""``/docs``: the API described on one page built from the app's own OpenAPI schema, with nothing
fetched from outside (FastAPI's default Swagger UI loads its script and styles from a CDN, and clinics
are often offline; the Swagger UI bundle on PyPI is 4.x, which cannot render FastAPI's OpenAPI 3.1).
The machine-readable schema stays at ``/openapi.json``.
"""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field


class Refusal(BaseModel):
    """Every error of the API: one line, never a traceback or a server path."""
    detail: str = Field(description="what is wrong, naming the file or field")


_WHY = {400: "a bad upload (a malformed or unreadable file, a header naming files not sent), an unknown model, "
             "class or scope, or a Host the server does not answer",
        404: "no such PTB-XL record, or no PTB-XL dataset on this server",
        413: "too many files, or a file or request over the server's limits",
        415: "not an ECG file, or a body that is not a form (send multipart/form-data)",
        422: "a form field of the wrong type or out of range: steps, or implausible patient data (age, sex, height, "
             "weight)",
        503: "the server was busy for 120 s: try again"}


def refusals(*statuses: int) -> dict:
    """OpenAPI ``responses`` for a route's errors, each a :class:`Refusal`."""
    return {s: {"model": Refusal, "description": _WHY[s]} for s in statuses}


_STYLE = """body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2733}
h1{font-size:1.5rem}h2{font-size:1.05rem;margin:1.6rem 0 .3rem;font-family:ui-monospace,monospace}
.m{display:inline-block;min-width:3.5rem;font-weight:600;color:#1d5fa7}table{border-collapse:collapse;width:100%}
td,th{border-top:1px solid #dde3ea;padding:.25rem .5rem;text-align:left;vertical-align:top}code{font-size:.9em}
.req{color:#b3261e}"""


def api_page(app: FastAPI) -> str:
    """An HTML page listing each route: method, path, summary, description and parameters."""
    schema = app.openapi()
    info = schema.get("info", {})
    parts = [f"<!doctype html><meta charset=utf-8><link rel=icon href='data:,'>"  # no /favicon.ico request (a 404)
             f"<title>{escape(info.get('title', 'API'))} — API</title>",
             f"<style>{_STYLE}</style><h1>{escape(info.get('title', 'API'))} {escape(info.get('version', ''))}</h1>",
             f"<p>{escape(info.get('description', ''))} Schema: <a href='/openapi.json'>/openapi.json</a>.</p>"]
    components = schema.get("components", {}).get("schemas", {})
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(f"<h2><span class=m>{method.upper()}</span> {escape(path)}</h2>")
            parts.append(f"<p>{escape(op.get('summary', ''))}. {escape(op.get('description', '') or '')}</p>")
            rows = [(p["name"], p.get("in", ""), p.get("required", False), _type(p.get("schema", {})),
                     p.get("description", "")) for p in op.get("parameters", [])]
            for media in op.get("requestBody", {}).get("content", {}).values():
                body = media.get("schema", {})
                body = components.get(body.get("$ref", "").rsplit("/", 1)[-1], body)
                for name, prop in body.get("properties", {}).items():
                    rows.append((name, "form", name in body.get("required", []), _type(prop),
                                 prop.get("description", "")))
            if rows:
                parts.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>")
                parts += [f"<tr><td><code>{escape(n)}</code>{' <span class=req>*</span>' if req else ''}</td>"
                          f"<td>{escape(where)}</td><td>{escape(kind)}</td><td>{escape(text)}</td></tr>"
                          for n, where, req, kind, text in rows]
                parts.append("</table>")
            errors = [(code, r.get("description", "")) for code, r in op.get("responses", {}).items()
                      if code.startswith(("4", "5"))]
            if errors:
                parts.append("<p>Errors, each <code>{\"detail\": \"one line\"}</code>: " + "; ".join(
                    f"<b>{escape(code)}</b> {escape(text)}" for code, text in errors) + ".</p>")
    return "\n".join(parts)


def _type(schema: dict) -> str:
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if schema.get("format") == "binary" or schema.get("contentMediaType"):
        return "file"
    return schema.get("type", "any")


def add_api_page(app: FastAPI) -> None:
    """Serve :func:`api_page` at ``/docs`` (the app must be created with ``docs_url=None``)."""
    page: list[str] = []

    @app.get("/docs", include_in_schema=False)
    def docs():
        if not page:
            page.append(api_page(app))
        return HTMLResponse(page[0])
