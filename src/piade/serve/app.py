"""The HTTP API and the web page of ``piade serve``: :func:`create_app` builds the FastAPI app.

Endpoints (docs/serve.md): ``POST /v1/predict`` (one image; ``?map=png`` adds the overlay as a
base64 PNG), ``POST /v1/predict/map`` (the overlay itself, ``image/png``), ``POST
/v1/predict/batch`` (several images, one result or error each, in order), ``GET /v1/model``,
``GET /healthz``, ``GET /metrics``, ``GET /`` (the page), ``GET /docs`` (Swagger UI, served from
the installed fastapi-swagger package: no network needed). Images are decoded and resized as ``piade predict``
does, so a score here equals ``Detector.score`` on the same file; concurrent requests are scored
together (:mod:`piade.serve.batcher`). Errors are JSON ``{"error": "..."}`` with a 4xx status;
an unexpected failure is logged on the server and answered with a 500 that says no more.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import io
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from piade.inference.maps import PNG_LEVEL, map_image
from piade.inference.predict import as_scorer
from piade.serve.batcher import MicroBatcher, Scored
from piade.serve.guard import Guard, Telemetry
from piade.serve.pages import IMAGES, ONE_IMAGE, add_pages
from piade.serve.uploads import Upload, UploadError, decode_upload, read_uploads
from piade.version import __version__

if TYPE_CHECKING:
    from piade.inference.detector import Detector
    from piade.inference.portable import OnnxDetector

log = logging.getLogger(__name__)

ROUTES = ("/", "/docs", "/openapi.json", "/healthz", "/metrics", "/v1/model", "/v1/predict",
          "/v1/predict/map", "/v1/predict/batch")  # fmt: skip
MAX_BATCH_FILES = 64  # images in one /v1/predict/batch request
BATCH_BODY_FACTOR = 4  # a batch request may be this many times --max-image-mb
MapStyle = Literal["overlay", "heatmap"]


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """What ``piade serve`` was told; see its ``--help``."""

    max_image_mb: float = 20.0
    batch_size: int = 16
    batch_window_ms: float = 5.0
    token: str | None = None


def model_id(path: str | Path) -> str:
    """``sha256:`` and the first 16 hex digits of the model file's SHA-256."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()[:16]}"


def create_app(
    detector: Detector | OnnxDetector, *, model_id: str, settings: ServeSettings
) -> FastAPI:
    """The app serving ``detector`` (a model file's, or an exported .onnx file's); ``model_id``
    identifies its file in every answer."""
    service = _Service(detector, model_id, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.batcher.start()
        try:
            yield
        finally:
            await service.batcher.stop()

    app = FastAPI(
        title="piade",
        version=__version__,
        summary="Image anomaly detection: score images, get a verdict and an anomaly map.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(Guard, token=settings.token, telemetry=service.telemetry)
    _add_error_handlers(app)
    add_pages(app)
    _add_predict_routes(app, service)
    _add_info_routes(app, service)
    return app


class _Service:
    """What the routes share: the detector, its micro-batcher, the metrics and the settings."""

    def __init__(
        self, detector: Detector | OnnxDetector, model_id: str, settings: ServeSettings
    ) -> None:
        self.scorer = as_scorer(detector)
        self.model_id = model_id
        self.settings = settings
        self.batcher = MicroBatcher(
            self.scorer, max_batch=settings.batch_size, window_s=settings.batch_window_ms / 1000
        )
        self.telemetry = Telemetry(ROUTES)
        self.limit = int(settings.max_image_mb * 2**20)  # bytes in one image upload
        self.cal = self.scorer.calibration

    def describe(self, scored: Scored, rgb: np.ndarray, name: str, start: float) -> dict[str, Any]:
        """One image's answer."""
        anomalous = bool(scored.label)
        return {
            "name": name,
            "score": scored.score,
            "normalized_score": scored.normalized_score,
            "label": "anomalous" if anomalous else "normal",
            "anomalous": anomalous,
            "threshold": self.cal["threshold"],
            "score_kind": self.cal["score_kind"],
            "terms": {"mse": scored.mse, "perceptual": scored.perceptual, "ssim": scored.ssim},
            "decoded_vector": scored.decoded,
            "width": int(rgb.shape[1]),
            "height": int(rgb.shape[0]),
            "model_id": self.model_id,
            "batched_with": scored.batch_size,
            "seconds": round(time.perf_counter() - start, 6),
        }

    async def score(self, upload: Upload) -> tuple[Scored, np.ndarray]:
        """Decode, resize and score one upload (with whatever else arrives meanwhile)."""
        rgb = await run_in_threadpool(decode_upload, upload)
        resized = await run_in_threadpool(self.scorer.resize, rgb)
        scored = await self.batcher.score(resized)
        self.telemetry.images.inc()
        self.telemetry.batch.observe(scored.batch_size)
        return scored, rgb

    def map_png(self, scored: Scored, rgb: np.ndarray, style: MapStyle) -> bytes:
        """The anomaly map at the image's own size, over the image or alone, as PNG bytes."""
        height, width = rgb.shape[:2]
        full = self.scorer.map_at(scored.anomaly_map, height, width)
        picture = map_image(full, rgb if style == "overlay" else None, self.scorer.map_scale)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", compress_level=PNG_LEVEL)
        return buffer.getvalue()

    def model_info(self) -> dict[str, Any]:
        """What ``GET /v1/model`` answers."""
        cal, settings, about = self.cal, self.settings, self.scorer.about()
        return {
            "model_id": self.model_id,
            "piade_version": __version__,
            "image_size": self.scorer.image_size,
            "config": about["config"],
            "calibration": cal,
            "threshold_explained": explain_threshold(
                cal["threshold"], cal["threshold_method"], cal["n_images"]
            ),
            "data": about["data"],
            "training": about["training"],
            "loss": about["loss"],
            "runtime": about["runtime"],
            "device": about["device"],
            "precision": about["precision"],
            "serving": {
                "batch_size": settings.batch_size,
                "batch_window_ms": settings.batch_window_ms,
                "max_image_mb": settings.max_image_mb,
                "token_required": settings.token is not None,
            },
        }


def _add_predict_routes(app: FastAPI, service: _Service) -> None:
    @app.post(
        "/v1/predict",
        summary="Score one image (multipart file or raw body)",
        openapi_extra=ONE_IMAGE,
    )
    async def predict(
        request: Request,
        map: Literal["png"] | None = Query(None, description="png: add the overlay, base64"),
    ) -> dict[str, Any]:
        start = time.perf_counter()
        upload = (await read_uploads(request, service.limit, many=False))[0]
        scored, rgb = await service.score(upload)
        result = service.describe(scored, rgb, upload.name, start)
        if map == "png":
            png = await run_in_threadpool(service.map_png, scored, rgb, "overlay")
            result["map_png_base64"] = base64.b64encode(png).decode("ascii")
        result["seconds"] = round(time.perf_counter() - start, 6)
        return result

    @app.post(
        "/v1/predict/map",
        summary="The anomaly map of one image as a PNG, at the image's own size",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
        openapi_extra=ONE_IMAGE,
    )
    async def predict_map(
        request: Request,
        style: MapStyle = Query("overlay", description="the map over the image, or alone"),  # noqa: B008
    ) -> Response:
        start = time.perf_counter()
        upload = (await read_uploads(request, service.limit, many=False))[0]
        scored, rgb = await service.score(upload)
        png = await run_in_threadpool(service.map_png, scored, rgb, style)
        result = service.describe(scored, rgb, upload.name, start)
        headers = {"X-Piade-Score": repr(result["score"]), "X-Piade-Label": result["label"]}
        return Response(png, media_type="image/png", headers=headers)

    @app.post(
        "/v1/predict/batch",
        summary="Score several images (multipart files), in order",
        openapi_extra=IMAGES,
    )
    async def predict_batch(request: Request) -> dict[str, Any]:
        start = time.perf_counter()
        uploads = await read_uploads(request, BATCH_BODY_FACTOR * service.limit, many=True)
        if len(uploads) > MAX_BATCH_FILES:
            raise UploadError(413, f"{len(uploads)} files; at most {MAX_BATCH_FILES} per request")

        async def one(upload: Upload) -> dict[str, Any]:
            try:
                scored, rgb = await service.score(upload)
            except UploadError as error:
                return {"name": upload.name, "error": error.message, "status": error.status}
            return service.describe(scored, rgb, upload.name, start)

        results = await asyncio.gather(*(one(u) for u in uploads))
        return {"results": results, "seconds": round(time.perf_counter() - start, 6)}


def _add_info_routes(app: FastAPI, service: _Service) -> None:
    @app.get("/v1/model", summary="The model: configuration, calibration, training data")
    async def model() -> dict[str, Any]:
        return service.model_info()

    @app.get("/healthz", summary="Liveness: 200 while the server runs (no token needed)")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "model_id": service.model_id,
            "images_scored": service.batcher.images,
        }

    @app.get("/metrics", summary="Request counts and latencies (Prometheus text format)")
    async def metrics() -> Response:
        registry = service.telemetry.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def explain_threshold(threshold: float, method: str, n_images: int) -> str:
    """One line saying what the threshold is, for people reading a verdict."""
    kind, _, detail = method.partition(":")
    if kind == "quantile":
        share = f"{float(detail) * 100:g}"
        how = f"the score that {share} % of {n_images} held-out normal images stay below"
    elif kind == "f1-max":
        how = "the score with the best F1 on a labelled validation set"
    else:
        how = f"chosen by {method}"
    return f"An image is anomalous when its score is above {threshold:.4g}: {how}."


def _add_error_handlers(app: FastAPI) -> None:
    async def upload_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, UploadError)
        return JSONResponse({"error": error.message}, status_code=error.status)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        return JSONResponse({"error": str(error.detail)}, error.status_code, error.headers)

    async def invalid(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in error.errors()
        )
        return JSONResponse({"error": f"invalid request: {problems}"}, status_code=422)

    async def crashed(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return JSONResponse({"error": "internal error; the server log says why"}, 500)

    app.add_exception_handler(UploadError, upload_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, crashed)
