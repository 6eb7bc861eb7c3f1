"""The real-time scoring API: the registry's champion behind POST /predict.

Start it with `make serve` (or `python -m loan_default.serving`). Endpoints: POST /predict
(one application or {"applications": [...]}), GET /health, GET /model, GET /model/document (the
champion's model document, HTML), and FastAPI's /docs.
Errors never echo request values, nor keys the schema does not declare unless they look like
field names, so personal data sent in a request cannot come back out. Bodies over
settings.API_MAX_BODY_BYTES are a 413, and undecodable text (invalid UTF-8, a lone surrogate)
a 422: see `guards`.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from loan_default import profile, settings
from loan_default.lib.storage import object_storage
from loan_default.lib.storage.object_storage import S3Endpoint
from loan_default.lib.storage.table_store import TableStore
from loan_default.serving.guards import BodyLimit, StrictJSONRoute, key_name
from loan_default.serving.model_holder import ChampionHolder, LoadedModel, RefreshLoop
from loan_default.serving.schemas import (
    UNION_TAGS,
    Application,
    Batch,
    BatchPrediction,
    Health,
    ModelInfo,
    PredictBody,
    Prediction,
)
from loan_default.serving.scoring import RejectedApplications, score

log = logging.getLogger("loan_default.serving")
UNAVAILABLE = {"description": "No champion model is loaded yet."}
NO_DOCUMENT = {"description": "The champion has no model document (yet)."}
DOCUMENT_URL = "/model/document"
INVALID = {"description": "Invalid request: each entry of `detail` names the field (`loc`)."}


class NoModel(RuntimeError):
    """No champion has been loaded yet (empty registry, or unreadable since start-up)."""


def _error(loc: list[Any], kind: str, msg: str) -> dict:
    """One 422 entry: where and why, never the input value nor an unsafe key."""
    loc = [key_name(part) if isinstance(part, str) else part for part in loc]
    field = next((part for part in reversed(loc) if isinstance(part, str)), None)
    return {"loc": loc, "field": field, "type": kind, "msg": msg}


def _message(error: dict) -> str:
    # The JSON decoder's reason gives a line and column, never the text.
    if error["type"] == "json_invalid" and "error" in error.get("ctx", {}):
        return f"{error['msg']}: {error['ctx']['error']}"
    return error["msg"]


async def _invalid_request(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = [
        _error(
            [part for i, part in enumerate(e["loc"]) if not (i == 1 and part in UNION_TAGS)],
            e["type"],
            _message(e),
        )
        for e in error.errors()
    ]
    log.warning(f"422: {len(details)} invalid field(s): {sorted({d['field'] for d in details})}")
    return JSONResponse(status_code=422, content={"detail": details})


def _rejected(rejected: RejectedApplications, batch: bool) -> JSONResponse:
    details = [
        _error(
            ["body", "applications", e.application, *e.loc] if batch else ["body", *e.loc],
            e.type,
            e.msg,
        )
        for e in rejected.errors
    ]
    log.warning(f"422: {len(details)} refused value(s): {sorted({d['field'] for d in details})}")
    return JSONResponse(status_code=422, content={"detail": details})


async def _no_model(_: Request, error: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": str(error)})


class ChampionDocument:
    """The champion's model document, wherever its registry row says it is (a path or an
    s3:// location).

    Whether it can be read, for GET /model's link: a local file is looked at on every call (one
    stat); an object on S3 is asked for (HEAD) once per version and document write and the
    answer kept (also a failure to reach the store, which is logged), so GET /model stays fast.
    """

    def __init__(self, s3: S3Endpoint | None):
        self.s3 = s3
        self._checked: tuple[tuple, bool] | None = None  # (version, location, written), readable

    def location(self, loaded: LoadedModel) -> str | None:
        """The document's location when it can be read, else None."""
        record = loaded.record
        location = record.document_path
        if not location:
            return None
        if not object_storage.is_remote(location):
            return location if Path(location).is_file() else None
        key = (record.version_id, location, record.document_written_at)
        checked = self._checked
        if checked is None or checked[0] != key:
            checked = self._checked = (key, self._readable(location))
        return location if checked[1] else None

    def _readable(self, location: str) -> bool:
        try:
            return object_storage.exists(location, self.s3)
        except Exception as error:  # an unreachable store, refused credentials: no link
            log.warning(f"model document at {location} unreadable: {error}")
            return False

    def read(self, loaded: LoadedModel) -> str | None:
        """The document's HTML; None when the row links none or it is not there."""
        location = loaded.record.document_path
        if not location:
            return None
        try:
            return object_storage.read_bytes(location, self.s3).decode("utf-8")
        except (FileNotFoundError, IsADirectoryError):
            return None


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def create_app(
    warehouse: TableStore | Path | None = None,
    refresh_seconds: float | None = None,
    s3: S3Endpoint | None = None,
) -> FastAPI:
    """The API over the warehouse's registry; the champion is re-read every `refresh_seconds`.
    By default the configured profile's warehouse and object store (loan_default.profile)."""
    if warehouse is None:
        warehouse, s3 = profile.warehouse(), profile.object_storage()
    holder = ChampionHolder(warehouse, s3)
    document = ChampionDocument(holder.s3)
    interval = refresh_seconds or settings.API_REGISTRY_REFRESH_SECONDS

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(holder.refresh)
        # Libraries and the model, loaded by now, leave the collector's generations, so a full
        # collection during a request never walks them all.
        gc.freeze()
        loop = RefreshLoop(holder, interval)
        loop.start()
        yield
        loop.stop()

    app = FastAPI(
        title="Loan default scoring API",
        description=(
            "Scores loan applications, given in the raw source schema, with the model the "
            "registry names champion, through the pipeline's own cleaning and feature code. "
            f"Default means {settings.LABEL.text}."
        ),
        version="1",
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.router.route_class = StrictJSONRoute
    app.add_middleware(BodyLimit, max_bytes=settings.API_MAX_BODY_BYTES)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(NoModel, _no_model)

    def champion() -> LoadedModel:
        loaded = holder.current
        if loaded is None:
            raise NoModel(f"no champion loaded yet: {holder.last_error or 'starting'}")
        return loaded

    @app.post(
        "/predict",
        response_model=Prediction | BatchPrediction,
        responses={422: INVALID, 503: UNAVAILABLE},
        summary="Score one application, or a batch as {'applications': [...]}",
    )
    async def predict(body: Annotated[PredictBody, Body()]) -> Any:
        loaded = champion()  # one model for the whole request, even if a swap happens meanwhile
        batch = isinstance(body, Batch)
        applications: list[Application] = body.applications if batch else [body]
        try:
            # One application is scored on the event loop: its work is shorter than the
            # hand-off to a worker thread and back. A batch goes to a worker thread, so /health
            # answers while it is scored.
            if batch:
                scored = await run_in_threadpool(score, loaded.model, applications)
            else:
                scored = score(loaded.model, applications)
        except RejectedApplications as rejected:
            return _rejected(rejected, batch)
        version, family = loaded.record.version_id, loaded.record.family
        predictions = [
            Prediction(
                loan_id=application.loan_id,
                Customer_ID=application.Customer_ID,
                probability=row["probability"],
                calibrated_probability=row["calibrated_probability"],
                decision=row["decision"],
                model_version=version,
                model_family=family,
                reasons=row["reasons"],
            )
            for application, row in zip(applications, scored.iter_rows(named=True), strict=True)
        ]
        result: Prediction | BatchPrediction = predictions[0]
        if batch:
            result = BatchPrediction(
                model_version=version, model_family=family, predictions=predictions
            )
        # Serialized by pydantic straight to JSON: FastAPI would first validate the model it is
        # given against the response union again, repeating what building it checked. The
        # response model above still documents it.
        return Response(result.model_dump_json(), media_type="application/json")

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    def health() -> Any:
        loaded = holder.current
        status = Health(
            status="ok" if loaded else "no_model",
            model_version=loaded.record.version_id if loaded else None,
            model_family=loaded.record.family if loaded else None,
            loaded_at=_iso(loaded.loaded_at) if loaded else None,
            last_registry_check=_iso(holder.last_check),
            last_registry_error=holder.last_error,
        )
        if loaded is None:
            return JSONResponse(status_code=503, content=status.model_dump())
        return status

    @app.get("/model", response_model=ModelInfo, responses={503: UNAVAILABLE})
    def model() -> ModelInfo:
        loaded = champion()
        record = loaded.record
        promotion = (
            {k: _iso(v) if hasattr(v, "isoformat") else v for k, v in loaded.promotion.items()}
            if loaded.promotion
            else None
        )
        return ModelInfo(
            version_id=record.version_id,
            family=record.family,
            status=record.status,
            trained_at=_iso(record.trained_at),
            as_of_month=_iso(record.as_of_month),
            reason_trained=record.reason_trained,
            code_version=record.code_version,
            threshold=record.threshold,
            windows=record.windows,
            hyperparameters=record.hyperparameters,
            features=record.features,
            metrics=record.metrics,
            artifact_sha256=record.artifact_sha256,
            loaded_at=_iso(loaded.loaded_at),
            promotion=promotion,
            document_path=record.document_path,
            document_url=DOCUMENT_URL if document.location(loaded) else None,
        )

    @app.get(
        DOCUMENT_URL,
        response_class=HTMLResponse,
        responses={404: NO_DOCUMENT, 503: UNAVAILABLE},
        summary="The champion's model document (self-contained HTML)",
    )
    def model_document() -> Any:
        loaded = champion()
        page = document.read(loaded)
        if page is None:
            detail = f"no model document for {loaded.record.version_id} yet"
            return JSONResponse(status_code=404, content={"detail": detail})
        return HTMLResponse(page)

    return app


app = create_app()
