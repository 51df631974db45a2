"""The FastAPI application: the page at ``/``, the versioned API under ``/v1/``, OpenAPI at ``/docs``.

``create_app(cropper, settings)`` builds it around a loaded Cropper; the
model worker and its queue live as long as the application (started and
stopped by its lifespan). Every error is JSON ``{"error": message, "status": code}``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import io
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from .. import __version__
from ..data.letterbox import Letterbox
from ..geometry import Box
from .batching import BatchQueue, DeadlinePassed, QueueClosed, QueueFull, Reservation
from .deadlines import Deadline
from .errors import ApiError, error_body
from .jobs import CropJob, CropWorker
from .limits import RequestLimits
from .openapi import to_openapi_30
from .params import check_names, check_output_size, parse_shapes, parse_subject
from .settings import ServeSettings
from .uploads import UPLOAD_FIELD, prepare_upload, read_photo
from .workers import ImageWorkers

log = logging.getLogger("gencrop.serve")

STATIC_DIR = Path(__file__).resolve().parent / "static"
IMAGE_OUTPUTS = {
    "jpeg": ("JPEG", "image/jpeg", "jpg"),
    "png": ("PNG", "image/png", "png"),
    "webp": ("WEBP", "image/webp", "webp"),
}
API_DESCRIPTION = """Crop photos around their subject with a GenCrop model.

`POST /v1/crop` takes a photo (multipart field `photo`) and answers with the crops in photo pixels
(`output=json`) or with the cropped photo itself (`output=jpeg|png|webp`). Errors are JSON
`{"error": message, "status": code}`: 400 bad field (unknown parameters included), 401 missing or
wrong API key, 408 the upload did not arrive in time, 413 upload or photo too large, 415 not a photo,
422 undecodable photo or no subject found, 429 too many requests in progress, 503 model queue full or
time limit passed (both with `Retry-After`). `GET /v1/health` says whether the server and its model
thread run; `GET /v1/ready` whether it takes photos now.
"""
PHOTO_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [UPLOAD_FIELD],
                "properties": {
                    UPLOAD_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": "the photo (JPEG, PNG, WebP, BMP, TIFF or GIF)",
                    }
                },
            }
        }
    },
}
PNG_COMPRESS_LEVEL = 3  # zlib level: about as small as the default 6, several times faster on large crops


def output_size(result, shape) -> list[int]:
    """The pixel size of the image a crop becomes (the requested size, when one was asked)."""
    if shape.size:
        return [int(shape.size[0]), int(shape.size[1])]
    b = result.box.rounded()
    return [int(b.w), int(b.h)]


def heatmap_json(result, dim: int) -> dict:
    """The heatmap (:mod:`gencrop.visualize`) as a small RGBA PNG of the cells, the photo-pixel box
    that its grid covers, and what it shows in words."""
    from ..visualize import crop_cell_weights, heatmap_rgba

    weights = crop_cell_weights(result, dim)
    buf = io.BytesIO()
    Image.fromarray(heatmap_rgba(weights), "RGBA").save(buf, format="PNG")
    covered = Letterbox(result.size[0], result.size[1], dim).to_photo(Box(0, 0, dim, dim))
    return {
        "image": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
        "box": [round(v, 2) for v in covered.xywh],
        "caption": weights.caption(),
        "subject_share": round(weights.share, 4),
    }


def encode_image(img: Image.Image, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, format="JPEG", quality=quality)
    elif fmt == "WEBP":
        img.save(buf, format="WEBP", quality=quality)
    else:
        img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def render_crop(result, full: Image.Image, fmt: str, quality: int) -> bytes:
    """The crop cut from the full-size photo (resized to the requested size), encoded: an image answer."""
    cut = result.cut(full)
    return encode_image(cut if cut.mode == "RGB" else cut.convert("RGB"), fmt, quality)


EXAMPLE_PHOTO = Path(__file__).resolve().parents[1] / "assets" / "astronaut.jpg"


def warm_up(cropper) -> str:
    """Crop the bundled example photo twice, with a given subject and with one found automatically,
    so that the first request does not pay for the first network pass or for loading the subject
    finder (seconds, for the detector). Says how it went, in words."""
    from ..inference import SubjectRequired

    cropper.crop(EXAMPLE_PHOTO, (150, 30, 200, 300))
    try:
        found = cropper.prepare(EXAMPLE_PHOTO)
        # a photo without a face too: the default finder falls back to saliency, whose model loads then
        cropper.prepare(_faceless_photo())
    except SubjectRequired:
        return "no subject finder installed: requests must give their subject"
    return f"subjects are found automatically ({found.source})"


def _faceless_photo() -> np.ndarray:
    """A grey 160x120 photo with one bright disc: no face, one salient region."""
    ys, xs = np.mgrid[:120, :160]
    photo = np.full((120, 160, 3), 90, np.uint8)
    photo[(xs - 100) ** 2 + (ys - 50) ** 2 < 30**2] = (240, 200, 60)
    return photo


def create_app(cropper, settings: ServeSettings | None = None, *, model_info: dict | None = None) -> FastAPI:
    """The server around a loaded ``Cropper``; ``model_info`` is what ``GET /v1/model`` answers."""
    settings = settings or ServeSettings()
    info = model_info or {"name": "gencrop", "input_size": cropper.dim}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # decoding, finding subjects, resizing and encoding: off the event loop, a bounded number at once
        app.state.workers = ImageWorkers(settings.decode_threads)
        app.state.queue = BatchQueue(
            CropWorker(cropper),
            capacity=settings.queue_size,
            max_batch=settings.batch_size,
            max_wait=settings.batch_wait_ms / 1000,
        )
        try:
            yield
        finally:
            await run_in_threadpool(app.state.queue.close)
            app.state.workers.close()

    app = FastAPI(
        title="gencrop",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.model_info = info
    app.state.in_flight = 0

    # -- errors: always JSON ------------------------------------------------------
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse(
            error_body(exc.status_code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def bad_fields(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse(error_body(400, "; ".join(parts) or "invalid request"), status_code=400)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("internal error on %s", request.url.path)
        return JSONResponse(
            error_body(500, f"internal error ({type(exc).__name__})"),
            status_code=500,
            headers={"Connection": "close"},  # the request may be half read: start afresh
        )

    # -- access -------------------------------------------------------------------
    api_key = settings.api_key.encode("utf-8") if settings.api_key is not None else None

    def check_key(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        # header values arrive as Latin-1 text: their bytes are the UTF-8 a client sends for any key
        if given is None or not hmac.compare_digest(given.encode("latin-1", "replace"), api_key):
            raise ApiError(401, "missing or wrong API key (send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY')")

    # -- page and docs ------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _mount_docs(app)

    # -- API ------------------------------------------------------------------------
    @app.get("/v1/health", summary="Is the server up, is its model thread alive, how busy is it")
    async def health(request: Request):
        """Never limited, never queued and never asks for the API key (for load balancers): 200 while the
        model thread runs, 503 when it has stopped."""
        queue: BatchQueue = request.app.state.queue
        alive = queue.alive
        body = {
            "status": "ok" if alive else "down",
            "model_thread": "alive" if alive else "stopped",
            "version": __version__,
            "queued": len(queue),
            "preparing": queue.reserved,
            "queue_size": queue.capacity,
            "in_flight": request.app.state.in_flight,
            "decoding": request.app.state.workers.busy,
            "served": queue.stats.completed,
            "batches": queue.stats.batches,
        }
        return JSONResponse(body, status_code=200 if alive else 503)

    @app.get("/v1/ready", summary="Does the server take photos now (model thread alive, room in its queue)")
    async def ready(request: Request):
        queue: BatchQueue = request.app.state.queue
        busy = request.app.state.in_flight >= settings.max_in_flight
        if queue.alive and not queue.full() and not busy:
            return {"ready": True}
        why = "the model thread has stopped" if not queue.alive else "the server is busy"
        return JSONResponse({"ready": False, "reason": why}, status_code=503, headers={"Retry-After": "1"})

    @app.get(
        "/v1/model", summary="The loaded model: name, input size, variant, licence", dependencies=[Depends(check_key)]
    )
    async def model():
        return info

    def known_parameters(request: Request) -> None:
        check_names(request.query_params.keys())

    @app.post(
        "/v1/crop",
        summary="Crop one photo around its subject",
        dependencies=[Depends(known_parameters), Depends(check_key)],
        openapi_extra={"requestBody": PHOTO_BODY},
        responses={
            200: {
                "content": {"application/json": {}, "image/jpeg": {}, "image/png": {}, "image/webp": {}},
                "description": "JSON with the crops in photo pixels, or the cropped photo",
            },
            **{
                code: {"description": text}
                for code, text in (
                    (400, "a bad field, an unknown parameter, or an image answer too large"),
                    (401, "missing or wrong API key"),
                    (408, "the upload did not arrive within the time limit"),
                    (413, "upload or photo too large"),
                    (415, "not a photo"),
                    (422, "undecodable photo, or no subject found"),
                    (429, "too many requests in progress (Retry-After)"),
                    (503, "busy: queue full or time limit passed (Retry-After)"),
                )
            },
        },
    )
    async def crop(
        request: Request,
        aspect: list[str] = Query(
            [],
            description="a shape: free, W:H (1:1, 4:5, 16:9), a ratio (0.8) or "
            "WxH pixels (1200x630); repeat for several",
        ),
        size: str | None = Query(None, description="WxH: crop at W:H, then resize to exactly W x H pixels"),
        area: float | None = Query(None, gt=0, le=1, description="the crop's area as a fraction of the photo"),
        subject: str | None = Query(None, description="x,y,w,h in photo pixels; omitted: found automatically"),
        allow_subject_cut: bool = Query(
            False, description="return the network's crop even if it cuts the given subject"
        ),
        output: Literal["json", "jpeg", "png", "webp"] = Query("json", description="json, or the crop itself"),
        heatmap: bool = Query(False, description="json: add the cell weights as a PNG over the photo"),
        quality: int = Query(settings.jpeg_quality, ge=1, le=100, description="JPEG/WebP quality"),
    ):
        started = time.perf_counter()
        deadline = Deadline(settings.timeout)
        state = request.app.state
        queue: BatchQueue = state.queue
        # everything that needs no photo is checked before the upload is read
        shapes = parse_shapes(aspect, size, area)
        subject_box = parse_subject(subject)
        if output != "json" and len(shapes) > 1:
            raise ApiError(400, f"output={output} returns one crop: ask for one shape, or use output=json")
        if shapes[0].size:
            check_output_size(*shapes[0].size, output, settings.max_output_pixels, f"size {size}")
        check_in_flight(state)

        # read (bounded by the upload limit and the deadline) before refusing: closing on an unread body
        # can reach the client as a connection reset instead of the 503
        data, filename = await read_photo(request, deadline)
        if queue.full():  # refused before the photo is decoded
            raise ApiError(503, "the server is busy (its queue is full); try again shortly", retry_after=1)
        check_in_flight(state)
        state.in_flight += 1
        try:
            reservation = reserve(queue)  # a place for the photo before it is decoded
            try:
                t = time.perf_counter()
                prepared, full = await state.workers.run(
                    functools.partial(
                        prepare_upload,
                        cropper,
                        data,
                        subject_box.xywh if subject_box is not None else None,
                        full=output != "json",
                        max_pixels=settings.max_pixels,
                        min_side=settings.min_side,
                        deadline=deadline,
                    ),
                    deadline,
                    waiting="waiting for a thread to decode the photo",
                    running="while the photo was decoded",
                )
                prepare_s = time.perf_counter() - t
                del data
                job = CropJob(prepared, shapes, keep_subject=False if allow_subject_cut else None)
                results, batch = await run_job(queue, job, deadline, reservation)
            finally:
                reservation.release()

            if output != "json":
                fmt, media, ext = IMAGE_OUTPUTS[output]
                cut_box = results[0].box.rounded()  # the pixels cut() takes
                check_output_size(int(cut_box.w), int(cut_box.h), output, settings.max_output_pixels, "the crop")
                body = await state.workers.run(
                    functools.partial(render_crop, results[0], full, fmt, quality),
                    deadline,
                    waiting="waiting for a thread to encode the crop",
                    running="while the crop was encoded",
                )
                del full
                name = f"{Path(filename).stem or 'photo'}_{shapes[0].name}.{ext}"
                headers = {
                    "X-Crop-Box": ",".join(str(int(v)) for v in cut_box.xywh),
                    "X-Subject-Box": ",".join(str(round(v)) for v in results[0].subject.xywh),
                    "Content-Disposition": content_disposition(name),
                }
                return Response(body, media_type=media, headers=headers)

            first = results[0]
            answer = {
                "size": list(first.size),
                "subject": [round(v, 2) for v in first.subject.xywh],
                "subject_source": first.subject_source,
                "subject_kept": first.subject_kept,
                **({"subject_class": first.subject_class} if first.subject_class is not None else {}),
                **({"subject_score": round(first.subject_score, 3)} if first.subject_score is not None else {}),
                "crops": [
                    {"shape": s.name, "box": [round(v, 2) for v in r.box.xywh], "output_size": output_size(r, s)}
                    for s, r in zip(shapes, results)
                ],
                "model": info.get("name"),
            }
            if heatmap:
                answer["heatmap"] = await state.workers.run(
                    functools.partial(heatmap_json, first, cropper.dim),
                    deadline,
                    waiting="waiting for a thread to draw the heatmap",
                    running="while the heatmap was drawn",
                )
            answer["timings"] = {
                "prepare_ms": round(prepare_s * 1000, 1),
                "queue_ms": round(batch.queued_s * 1000, 1),
                "model_ms": round(batch.run_s * 1000, 1),
                "batch_size": batch.batch_size,
                "total_ms": round((time.perf_counter() - started) * 1000, 1),
            }
            return answer
        finally:
            state.in_flight -= 1

    def check_in_flight(state) -> None:
        if state.in_flight >= settings.max_in_flight:
            raise ApiError(429, f"too many requests in progress ({state.in_flight}); try again shortly", retry_after=1)

    def reserve(queue: BatchQueue) -> Reservation:
        try:
            return queue.reserve()
        except QueueFull as e:
            raise ApiError(503, f"the server is busy ({e}); try again shortly", retry_after=1) from None
        except QueueClosed as e:
            raise ApiError(503, str(e), retry_after=5) from None

    async def run_job(queue: BatchQueue, job: CropJob, deadline: Deadline, reservation: Reservation):
        try:
            future = queue.submit(job, deadline=deadline.at, reservation=reservation)
        except QueueClosed as e:
            raise ApiError(503, str(e), retry_after=5) from None
        try:
            async with asyncio.timeout(max(deadline.left(), 0.001)):
                return await asyncio.wrap_future(future)
        except (TimeoutError, DeadlinePassed):
            future.cancel()  # not run if the model has not taken it yet
            raise deadline.passed("waiting for the model" if not future.running() else "while the model ran") from None
        except QueueClosed as e:
            raise ApiError(503, str(e), retry_after=5) from None
        except (ValueError, OverflowError) as e:  # the Cropper's word on a bad shape
            raise ApiError(400, str(e)) from None

    app.add_middleware(RequestLimits, max_body=settings.max_upload_bytes)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key"],
            expose_headers=["X-Crop-Box", "X-Subject-Box"],
        )
    _serve_openapi_30(app)
    return app


def content_disposition(name: str) -> str:
    """``inline`` with the file name: an ASCII stand-in, and the name itself as RFC 6266's UTF-8 ``filename*``."""
    return f"inline; filename=\"{_safe_name(name)}\"; filename*=UTF-8''{quote(name.replace(chr(0), ''), safe='')}"


def _safe_name(name: str) -> str:
    """An ASCII file name for Content-Disposition: letters, digits, dot, dash and underscore only."""
    kept = "".join(c if (c.isascii() and c.isalnum()) or c in "._-" else "_" for c in name)[-100:]
    return kept.lstrip(".") or "photo"


def _serve_openapi_30(app: FastAPI) -> None:
    """``/openapi.json`` in OpenAPI 3.0, which the bundled Swagger UI renders (see :mod:`.openapi`)."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                servers=app.servers,
            )
            app.openapi_schema = to_openapi_30(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _mount_docs(app: FastAPI) -> None:
    """OpenAPI's Swagger UI at /docs from the installed swagger-ui-bundle: no CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # the schema stays at /openapi.json
        swagger_ui_path = None

    if swagger_ui_path is not None:
        app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request):
        root = request.scope.get("root_path", "").rstrip("/")  # behind a proxy's sub-path
        if swagger_ui_path is None:
            return HTMLResponse(
                f"<p>Install swagger-ui-bundle for this page; the API schema is at "
                f'<a href="{root}/openapi.json">/openapi.json</a>.</p>'
            )
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title="gencrop API",
            swagger_js_url=f"{root}/docs-assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs-assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs-assets/favicon-32x32.png",
        )
