"""How the viewer answers what it refuses or fails at: one line of strict JSON (no NaN/Infinity) in
``detail`` — the reader's or checker's message for a refusal (4xx), the exception's type only for a fault
of ours (500; the traceback goes to the server's log)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ecgnet.errors import ECGNetError
from ecgnet.serve.headers import SECURITY_HEADERS
from ecgnet.serve.uploads import public_message
from ecgnet.strictjson import dumps

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")  # what the POST endpoints read


class StrictJSONResponse(JSONResponse):
    """JSON without NaN/Infinity: a non-finite float (a value legitimately missing) becomes null."""

    def render(self, content) -> bytes:
        return dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def add_error_handlers(app: FastAPI) -> None:
    """Refusals (ECGNetError, invalid fields, a body that is not a form) and faults, as one line of JSON."""
    @app.exception_handler(ECGNetError)
    def _refused(_: Request, e: ECGNetError):
        return StrictJSONResponse({"detail": public_message(e, None)}, status_code=getattr(e, "status", 400))

    @app.exception_handler(Exception)
    def _failed(_: Request, e: Exception):  # a fault of ours: one line of JSON, the traceback in the server's log
        return StrictJSONResponse({"detail": f"internal error ({type(e).__name__}); the server's log has the details"},
                                  status_code=500, headers=SECURITY_HEADERS)  # answered outside the middleware

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, e: RequestValidationError):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if request.method == "POST" and kind not in FORM_TYPES:  # JSON, raw bytes …: not what the API reads
            return StrictJSONResponse({"detail": f"send multipart/form-data (files as uploads, the other fields as "
                                                 f"form fields), not {kind or 'a body without a content type'}"},
                                      status_code=415)
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return StrictJSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}"}, status_code=422)
