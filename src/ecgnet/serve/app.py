"""The viewer's web application: a JSON API over :mod:`ecgnet.inference` and :mod:`ecgnet.explain`, and
the page (``static/``) that draws its answers. No model logic lives here.

Routes (OpenAPI at ``/docs``)::

    GET  /                      the page
    GET  /healthz               liveness, number of models, whether PTB-XL is configured
    GET  /api/models            the models one may choose (name, task, classes, fold-10 macro AUC,
                                reads_signal: false for a model that reads only the patient data)
    POST /api/predict           multipart: files (.hea + .dat/.mat), model, age/sex/height/weight
                                → {prediction (the schema of `ecgnet predict --json`), signal, reference,
                                   patient (the file's patient fields, "Label: value" lines),
                                   reads_signal, low_thresholds {below, classes, note}}
    POST /api/explain           multipart: files or ecg_id, model, target class, scope, steps
                                → attributions over the leads (+ modality contributions)
    POST /api/report            multipart: files or ecg_id, model, age/sex/height/weight
                                → the printable PDF of `ecgnet report` (A4, 25 mm/s, 10 mm/mV)
    GET  /api/records/{ecg_id}  a PTB-XL record (when a dataset is configured), as /api/predict,
                                with its reference labels

What the page shows of a model is the library's answer, never the page's own rule: whether it reads the ECG
(``reads_signal``) and which classes have a low threshold (``low_thresholds``, from
:meth:`~ecgnet.inference.predictor.Predictor.low_thresholds`).

Every refusal is a 4xx whose ``detail`` is one line (the reader's message for unreadable records);
answers are strict JSON (no NaN/Infinity). Routes are plain functions, so requests run in worker
threads; reading, resampling and inference pass through a bounded gate and the model they use is locked
meanwhile (:mod:`ecgnet.serve.limits`). Only loopback ``Host`` names are answered unless configured
and only the viewer's own pages may post (:mod:`ecgnet.serve.hosts`); every answer carries a
Content-Security-Policy and its kin (:mod:`ecgnet.serve.headers`); ``/docs`` is a local page
(:mod:`ecgnet.serve.docs`).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, Optional

from fastapi import Depends, FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from ecgnet import __version__
from ecgnet.data.patient import check_patient
from ecgnet.data.readers import read_ecg_any
from ecgnet.data.records import ECGRecord
from ecgnet.errors import ECGNetError
from ecgnet.inference.predictor import LOW_THRESHOLD, Predictor
from ecgnet.report.fields import patient_lines
from ecgnet.serve.docs import add_api_page, refusals
from ecgnet.serve.errors import StrictJSONResponse, add_error_handlers
from ecgnet.serve.explain import ExplainLimits, explain_record
from ecgnet.serve.headers import SecurityHeaders
from ecgnet.serve.hosts import SameOrigin, add_trusted_hosts, trusted_hosts
from ecgnet.serve.limits import BodyLimit, Gate, ServeLimits, display_signal
from ecgnet.serve.models import Loaded, ModelStore
from ecgnet.serve.reference import PTBXLRecords, header_reference
from ecgnet.serve.uploads import UploadError, UploadFolders, UploadLimits, public_message, saved_record

STATIC = Path(__file__).parent / "static"
# the form fields every diagnosing route takes
MODEL = Form(None, description="a name from GET /api/models (default: the server's default model)")
AGE = Form(None, description="years")
SEX = Form(None, description="male | female (or M / F; numbers are refused: sites code them either way)")
HEIGHT = Form(None, description="cm")
WEIGHT = Form(None, description="kg")
# what /api/models and a diagnosis answer (shown on /docs: the routes return plain JSON, not response models)
MODELS_ANSWER = ("Each model: name, default, task, classes, parameters, architecture, test_macro_auc (or "
                 "cv_macro_auc), thresholds_from, site (the default's, with --site), manifest, loaded, and "
                 "reads_signal — false for a model that reads only the patient's age, sex, height and weight, not "
                 "the ECG (null: its run's files cannot tell).")
DIAGNOSIS_ANSWER = ("Answers prediction (the schema of `ecgnet predict --json`), signal (the leads as drawn, mV), "
                    "reference, patient (the file's patient fields, \"Label: value\" lines), reads_signal (false: "
                    "the model read only the patient data, not the ECG) and low_thresholds: {below, classes, note} — "
                    "the classes whose threshold is under `below`, lowest first, where positive means above that "
                    "threshold, not a probable diagnosis; note: `ecgnet predict`'s line on them (null: none).")


def patient_form(age: Optional[float] = AGE, sex: Optional[str] = SEX, height: Optional[float] = HEIGHT,
                 weight: Optional[float] = WEIGHT) -> dict:
    """The patient fields a diagnosing route takes, checked (a 422 naming the field)."""
    return check_patient(age=age, sex=sex or None, height=height, weight=weight)


def create_app(models: ModelStore | list | tuple | None = None, data_root: str | Path | None = None,
               runs_dir: str | Path | None = None, limits: UploadLimits = UploadLimits(),
               explain_limits: ExplainLimits = ExplainLimits(), serve_limits: ServeLimits = ServeLimits(),
               allowed_hosts: list[str] | None = None) -> FastAPI:
    """``models``: a :class:`ModelStore`, or checkpoints (names or run paths; the first is the default)
    to which the bundled models and the runs of ``runs_dir`` are added. ``data_root``: a PTB-XL folder
    for ``/api/records`` (None: that route answers 404). ``allowed_hosts``: ``Host`` names answered
    besides the loopback ones (``["*"]``: any)."""
    store = models if isinstance(models, ModelStore) else \
        ModelStore.discover(list(models or []), Path(runs_dir) if runs_dir else None)
    ptbxl = PTBXLRecords(data_root) if data_root else None
    gate = Gate(serve_limits.max_concurrent, serve_limits.queue_seconds)

    folders = UploadFolders()

    @contextlib.asynccontextmanager
    async def lifespan(_):
        folders.open()
        yield
        folders.close()  # requests cut short by the shutdown leave no upload behind

    app = FastAPI(title="ECGNet viewer", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  default_response_class=StrictJSONResponse,
                  description="Diagnose a 12-lead ECG with an ECGNet model and see why.")
    app.state.models, app.state.ptbxl, app.state.limits, app.state.uploads = store, ptbxl, limits, folders
    app.state.serve_limits = serve_limits
    app.add_middleware(BodyLimit, max_bytes=limits.max_request_bytes)
    hosts = trusted_hosts(allowed_hosts)
    app.add_middleware(SameOrigin, allowed_hosts=hosts)  # inside the Host check: Origin is compared with a trusted Host
    add_trusted_hosts(app, hosts)
    app.add_middleware(SecurityHeaders)  # outermost: on refusals too
    add_api_page(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    add_error_handlers(app)

    @app.get("/", include_in_schema=False)
    async def page():  # on the event loop: never queued behind requests in worker threads
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz", summary="Whether the server is up (never waits behind other requests)")
    async def healthz():  # on the event loop: never queued behind requests in worker threads
        return {"status": "ok", "version": __version__, "models": len(store.names()), "ptbxl": ptbxl is not None}

    @app.get("/api/models", summary="The models served, the default first, with their classes, thresholds' "
             "origin and the server's limits", description=MODELS_ANSWER)
    def list_models():
        return {"default": store.default, "ptbxl": ptbxl is not None, "models": store.describe(),
                "limits": {**asdict(limits), **asdict(explain_limits), **asdict(serve_limits)}}

    for path, endpoint in (("/", page), ("/healthz", healthz), ("/api/models", list_models)):  # curl -I, uptime checks
        app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)

    @app.post("/api/predict", summary="Diagnose one uploaded record", description=DIAGNOSIS_ANSWER,
              responses=refusals(400, 413, 415, 422, 503))
    def predict(files: list[UploadFile] = File(..., description="one record: its .hea with its .dat/.mat, or one "
                                                                "XML, DICOM, SCP-ECG or EDF file"),
                model: Optional[str] = MODEL, given: dict = Depends(patient_form)):
        loaded = store.get(model)
        with gate(), _uploaded(files, loaded, limits, serve_limits, folders) as record:
            with loaded.lock:
                prediction = _predict(loaded, record, given)
            return _diagnosis(loaded.predictor, record, prediction, header_reference(record, loaded.predictor),
                              serve_limits)

    @app.get("/api/records/{ecg_id}", summary="Diagnose a PTB-XL record by its ecg_id (with its reference labels)",
             description=DIAGNOSIS_ANSWER, responses=refusals(400, 404, 422, 503))
    def ptbxl_record(ecg_id: int, model: Optional[str] = None):
        loaded = store.get(model)
        with gate():
            record, given, reference = _ptbxl(ptbxl, ecg_id, loaded)
            with loaded.lock:
                prediction = _predict(loaded, record, given, ptbxl=True)
        return _diagnosis(loaded.predictor, record, prediction, reference, serve_limits)

    @contextlib.contextmanager
    def files_or_ptbxl(files, ecg_id, loaded: Loaded, given: dict) -> Iterator[tuple[ECGRecord, dict, bool]]:
        """The record a request names, by its uploaded files or a PTB-XL ecg_id (exactly one of them), with
        the patient facts to use (a PTB-XL record brings its own) and whether it is PTB-XL's; an upload's
        folder goes afterwards."""
        if (ecg_id is None) == (not files):
            raise UploadError("send either the record's files or an ecg_id")
        if files:
            with _uploaded(files, loaded, limits, serve_limits, folders) as record:
                yield record, given, False
        else:
            record, given, _ = _ptbxl(ptbxl, ecg_id, loaded)
            yield record, given, True

    @app.post("/api/explain", summary="Why: Integrated Gradients of one class over the leads, and each "
              "modality's share for fusion models", responses=refusals(400, 404, 413, 415, 422, 503))
    def explain(target: str = Form(..., description="the class to explain, e.g. MI"),
                files: Optional[list[UploadFile]] = File(None), ecg_id: Optional[int] = Form(None),
                model: Optional[str] = MODEL, scope: str = Form("best", description="best | segment"),
                steps: Optional[int] = Form(None, description=f"Integrated Gradients steps, 4–{explain_limits.max_steps} "
                                                            f"(default {explain_limits.default_steps})"),
                given: dict = Depends(patient_form)):
        loaded = store.get(model)
        with gate(), files_or_ptbxl(files, ecg_id, loaded, given) as (record, given, _):
            with loaded.lock:
                used = _predict(loaded, record, given)["metadata"]
                return explain_record(loaded.predictor, record, target, used, scope, steps, explain_limits)

    @app.post("/api/report", response_class=Response, summary="The printed report of one record, as a PDF",
              responses={200: {"content": {"application/pdf": {}}, "description": "one A4 landscape page"},
                         **refusals(400, 404, 413, 415, 422, 503)})
    def report(files: Optional[list[UploadFile]] = File(None), ecg_id: Optional[int] = Form(None),
               model: Optional[str] = MODEL, given: dict = Depends(patient_form)):
        from ecgnet.report.pdf import model_identity, pdf_bytes

        loaded = store.get(model)
        with gate(), files_or_ptbxl(files, ecg_id, loaded, given) as (record, given, from_ptbxl):
            with loaded.lock:
                prediction = _predict(loaded, record, given, ptbxl=from_ptbxl)
            pdf = pdf_bytes(record, prediction, model_identity(loaded.predictor))
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(str(record.path)).stem) or "ecg"
        return Response(pdf, media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}_report.pdf"'})

    return app


@contextlib.contextmanager
def _uploaded(files: list[UploadFile], loaded: Loaded, limits: UploadLimits, serve_limits: ServeLimits,
              folders: UploadFolders) -> Iterator[ECGRecord]:
    """The uploaded record read at the model's rate (any source rate is resampled) within the read
    budget, in its temporary folder."""
    with saved_record([(f.filename, f.file) for f in files], limits, serve_limits.read, folders) as header:
        try:
            record = read_ecg_any(header, loaded.predictor.rate, resample=True, limits=serve_limits.read)
        except Exception as e:  # the reader's own message (ECGNetError), or whatever a malformed file raised
            message = public_message(e, header.parent)
            if not isinstance(e, ECGNetError):
                message = f"{header.name}: cannot be read ({type(e).__name__}: {message})"
            raise UploadError(message) from None
        record.path = Path(header.name)  # what the user uploaded, not where it lay
        yield record


def _diagnosis(predictor: Predictor, record: ECGRecord, prediction: dict, reference: dict | None,
               serve_limits: ServeLimits) -> dict:
    """What /api/predict and /api/records answer (:data:`DIAGNOSIS_ANSWER`)."""
    return {"prediction": prediction, "signal": display_signal(record, serve_limits), "reference": reference,
            "patient": patient_lines(record), **what_the_model_read(predictor)}


def what_the_model_read(predictor: Predictor) -> dict:
    """What the page says of the model beside a diagnosis, as the library decides it: whether the model reads the
    ECG, and its classes with a low threshold (those of the site profile's thresholds when it has one)."""
    return {"reads_signal": predictor.reads_signal,
            "low_thresholds": {"below": LOW_THRESHOLD, "classes": predictor.low_threshold_classes(),
                               "note": predictor.low_thresholds()}}


def _predict(loaded: Loaded, record: ECGRecord, given: dict, ptbxl: bool = False) -> dict:
    try:
        result = loaded.predictor.predict_record(record, **given)
    except ECGNetError as e:
        raise UploadError(str(e)) from None
    return {**result, "notes": viewer_notes(result["notes"], ptbxl)}


def viewer_notes(notes: list[str], ptbxl: bool = False) -> list[str]:
    """A prediction's notes in the viewer's words: the patient fields a model lacks are given in its Patient
    fields (not with the command line's --age/--sex/--height/--weight); a PTB-XL record brings its own, and
    what PTB-XL did not record stays unknown."""
    words = "PTB-XL did not record them)" if ptbxl else "the Patient fields give them)"
    return [re.sub(r"--\w+(?: --\w+)* give them\)$", words, n) for n in notes]


def _ptbxl(ptbxl: "PTBXLRecords | None", ecg_id: int, loaded: Loaded) -> tuple[ECGRecord, dict, dict]:
    if ptbxl is None:
        raise HTTPException(404, "no PTB-XL dataset configured on this server (start it with ECGNET_DATA set)")
    if ptbxl.missing(ecg_id):
        raise HTTPException(404, ptbxl.missing(ecg_id))
    return ptbxl.read(ecg_id, loaded.predictor)
