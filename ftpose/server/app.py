"""The ASGI application of ``ftpose serve``: a JSON API over one Predictor, and the page at ``/``.

Routes:

* ``GET /``: the page (``static/index.html``, ``static/page.js``);
* ``GET /health``: ``{"status": "ok", "model": ..., "trained": ...}``;
* ``GET /models``: the model served, every registered model, the keypoint layouts
  (names and skeletons, so clients can draw), the default filters and the upload limit;
* ``POST /predict``: the photo as multipart field ``image`` -> ``{"people": [...],
  "count", "width", "height", "timing_ms", ...}``, each person as
  :meth:`ftpose.grouping.People.records` gives it (score, ``coco17``, ``openpose18``).
  Queries ``min_score``, ``min_joints``, ``max_people`` filter the people as ``ftpose
  predict``'s options of those names do, with the same defaults; ``maps=1`` adds ``maps``
  (the merged heatmaps and the PAFs drawn over the photo by :mod:`ftpose.mapview`,
  as JPEG data URLs).

Every error is a 4xx (5xx for a server fault) with a one-line JSON body ``{"error": "..."}``;
a bad request never stops the server.  Uploads over ``max_upload_bytes`` are refused
with 413, by their Content-Length when they give one and while they are read otherwise.

Why Starlette: four routes and a static page need routing, multipart parsing and
static files, which Starlette gives in a small, well-maintained ASGI toolkit; FastAPI's
validation and generated docs layer on top of it would add a dependency and nothing
these routes use.  uvicorn is the reference ASGI server.
"""
from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import cv2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ftpose.files import InputError, decode_image
from ftpose.keypoints import COCO17, OPENPOSE18
from ftpose.pipeline import DEFAULT_MIN_JOINTS, DEFAULT_MIN_SCORE

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAPS_JPEG_QUALITY = 85


def create_app(predictor, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> Starlette:
    """The application serving ``predictor``; uploads over ``max_upload_bytes`` get 413."""
    service = _PoseService(predictor, max_upload_bytes)
    routes = [
        Route("/", lambda request: FileResponse(STATIC / "index.html")),
        Route("/health", service.health),
        Route("/models", service.models),
        Route("/predict", service.predict, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _json_error, Exception: _server_fault})


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


async def _json_error(request: Request, exc: HTTPException) -> JSONResponse:
    return _error(exc.status_code, exc.detail)


async def _server_fault(request: Request, exc: Exception) -> JSONResponse:
    return _error(500, f"internal error: {type(exc).__name__}: {exc}")


class _PoseService:
    def __init__(self, predictor, max_upload_bytes: int):
        self.predictor = predictor
        self.model_name = getattr(predictor.network, "model_name", type(predictor.network).__name__)
        self.max_upload_bytes = int(max_upload_bytes)
        self._lock = threading.Lock()   # one network run at a time: it already uses every core

    def _identity(self) -> dict:
        return {"model": self.model_name, "trained": self.predictor.trained}

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", **self._identity()})

    async def models(self, request: Request) -> JSONResponse:
        from ftpose.models import list_models

        predictor = self.predictor
        served = {**self._identity(), "options": getattr(predictor.network, "model_options", {}),
                  "backend": getattr(predictor.backend, "name", None), "scales": list(predictor.scales),
                  "flip": predictor.flip}
        layouts = {layout.name: {"keypoints": list(layout.keypoints), "skeleton": [list(pair) for pair in layout.skeleton]}
                   for layout in (COCO17, OPENPOSE18)}
        defaults = {"min_score": DEFAULT_MIN_SCORE, "min_joints": DEFAULT_MIN_JOINTS, "max_people": None}
        return JSONResponse({"served": served, "registered": list_models(), "layouts": layouts,
                             "defaults": defaults, "max_upload_bytes": self.max_upload_bytes})

    async def predict(self, request: Request) -> JSONResponse:
        start = time.perf_counter()
        limits = (_number_query(request, "min_score", float, DEFAULT_MIN_SCORE),
                  _number_query(request, "min_joints", int, DEFAULT_MIN_JOINTS),
                  _number_query(request, "max_people", int, None))
        with_maps = request.query_params.get("maps", "0").lower() in ("1", "true", "yes")
        data, name = await self._read_upload(request)
        try:
            image = decode_image(data, name)
        except InputError as e:
            status = 400 if not data else 415
            raise HTTPException(status, f"{e} (send a JPEG, PNG, BMP, TIFF or WebP photo)") from None
        decoded = time.perf_counter()
        result = await run_in_threadpool(self._run, image, limits, with_maps)
        result["timing_ms"]["upload_and_decode"] = _ms(decoded - start)
        result["timing_ms"]["total"] = _ms(time.perf_counter() - start)
        return JSONResponse(result)

    async def _read_upload(self, request: Request) -> tuple[bytes, str]:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_upload_bytes:
            raise HTTPException(413, self._too_large(int(length)))
        limited = Request(request.scope, self._limited(request.receive))
        form = await limited.form(max_files=1, max_fields=8)
        upload = form.get("image")
        if upload is None:
            raise HTTPException(400, "no photo: send it as the multipart/form-data file field 'image' "
                                     "(curl -F image=@photo.jpg)")
        if isinstance(upload, str):
            raise HTTPException(400, "field 'image' must be a file upload (curl -F image=@photo.jpg)")
        return await upload.read(), upload.filename or "image"

    def _limited(self, receive):
        """``receive`` that refuses a body growing past the limit (uploads without a Content-Length)."""
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_upload_bytes:
                raise HTTPException(413, self._too_large(received, at_least=True))
            return message

        return limited

    def _too_large(self, size: int, at_least: bool = False) -> str:
        return (f"upload too large: {'over ' if at_least else ''}{size} bytes, the limit is "
                f"{self.max_upload_bytes} bytes (ftpose serve --max-upload-mb)")

    def _run(self, image, limits: tuple, with_maps: bool) -> dict:
        with self._lock:
            start = time.perf_counter()
            maps = self.predictor.maps(image)
            network = time.perf_counter()
            people = self.predictor.decode(maps).filtered(*limits)
            grouped = time.perf_counter()
            result = {**self._identity(), "width": image.shape[1], "height": image.shape[0], "count": len(people),
                      "people": people.records(),
                      "timing_ms": {"network": _ms(network - start), "grouping": _ms(grouped - network)}}
            if with_maps:
                from ftpose.mapview import merged_heatmaps, paf_image

                result["maps"] = {"heatmaps": _jpeg_data_url(merged_heatmaps(image, maps)),
                                  "pafs": _jpeg_data_url(paf_image(image, maps))}
                result["timing_ms"]["maps"] = _ms(time.perf_counter() - grouped)
        return result


def _number_query(request: Request, name: str, kind, default):
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise HTTPException(400, f"query parameter {name}={text!r} is not {'an integer' if kind is int else 'a number'}") \
            from None
    if value < 0:
        raise HTTPException(400, f"query parameter {name}={text!r} is negative")
    return value


def _jpeg_data_url(image) -> str:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, MAPS_JPEG_QUALITY])
    return "data:image/jpeg;base64," + base64.b64encode(buffer.tobytes()).decode("ascii")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
