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

import anyio
from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from .. import __version__
from ..data.letterbox import Letterbox
from ..geometry import Box
from .batching import BatchQueue, DeadlinePassed, QueueClosed, QueueFull
from .errors import ApiError, error_body
from .jobs import CropJob, CropWorker
from .limits import RequestLimits
from .settings import ServeSettings
from .uploads import prepare_upload

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
`{"error": message, "status": code}`: 400 bad field, 401 missing or wrong API key, 413 upload or
photo too large, 415 not a photo, 422 undecodable photo or no subject found, 429 too many requests
in progress, 503 model queue full or time limit passed (both with `Retry-After`).
"""


def parse_shapes(aspects: list[str], size: str | None, area: float | None) -> tuple:
    """The requested shapes (``gencrop.shapes.Shape``); the free crop when none is asked."""
    from ..shapes import Shape

    specs = [a for a in aspects if a.strip()] + ([size] if size else [])
    shapes = []
    for spec in specs or ["free"]:
        try:
            shapes.append(Shape.parse(spec.strip(), area))
        except ValueError as e:
            raise ApiError(400, f"aspect/size {spec!r}: {e}") from None
    if len(shapes) > 16:
        raise ApiError(400, f"at most 16 shapes per request, got {len(shapes)}")
    return tuple(shapes)


def parse_subject(text: str | None) -> Box | None:
    if text is None or not text.strip():
        return None
    try:
        return Box.parse(text)
    except ValueError as e:
        raise ApiError(400, f"subject: {e}") from None


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
        img.save(buf, format="PNG")
    return buf.getvalue()


EXAMPLE_PHOTO = Path(__file__).resolve().parents[1] / "assets" / "astronaut.jpg"


def warm_up(cropper) -> str:
    """Crop the bundled example photo twice, with a given subject and with one found automatically,
    so that the first request does not pay for the first network pass or for loading the subject
    finder (seconds, for the detector). Says how it went, in words."""
    from ..inference import SubjectRequired

    cropper.crop(EXAMPLE_PHOTO, (150, 30, 200, 300))
    try:
        found = cropper.prepare(EXAMPLE_PHOTO)
    except SubjectRequired:
        return "no subject finder installed: requests must give their subject"
    return f"subjects are found automatically ({found.source})"


def create_app(cropper, settings: ServeSettings | None = None, *, model_info: dict | None = None) -> FastAPI:
    """The server around a loaded ``Cropper``; ``model_info`` is what ``GET /v1/model`` answers."""
    settings = settings or ServeSettings()
    info = model_info or {"name": "gencrop", "input_size": cropper.dim}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # photos decoded (and their subjects found) at once, beside the model thread: bounds memory too
        app.state.prepare_limiter = anyio.CapacityLimiter(settings.decode_threads)
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
        return JSONResponse(error_body(500, f"internal error ({type(exc).__name__})"), status_code=500)

    # -- access -------------------------------------------------------------------
    def check_key(request: Request) -> None:
        if settings.api_key is None:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given is None or not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise ApiError(401, "missing or wrong API key (send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY')")

    # -- page and docs ------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _mount_docs(app)

    # -- API ------------------------------------------------------------------------
    @app.get("/v1/health", summary="Is the server up, and how busy is it")
    async def health(request: Request):
        queue: BatchQueue = request.app.state.queue
        return {
            "status": "ok",
            "version": __version__,
            "queued": len(queue),
            "queue_size": queue.capacity,
            "served": queue.stats.completed,
            "batches": queue.stats.batches,
        }

    @app.get(
        "/v1/model", summary="The loaded model: name, input size, variant, licence", dependencies=[Depends(check_key)]
    )
    async def model():
        return info

    @app.post(
        "/v1/crop",
        summary="Crop one photo around its subject",
        dependencies=[Depends(check_key)],
        responses={
            200: {
                "content": {"application/json": {}, "image/jpeg": {}, "image/png": {}, "image/webp": {}},
                "description": "JSON with the crops in photo pixels, or the cropped photo",
            },
            **{
                code: {"description": text}
                for code, text in (
                    (400, "a bad field"),
                    (401, "missing or wrong API key"),
                    (413, "upload or photo too large"),
                    (415, "not a photo"),
                    (422, "undecodable photo, or no subject found"),
                    (429, "too many requests in progress"),
                    (503, "busy: queue full or time limit passed (Retry-After)"),
                )
            },
        },
    )
    async def crop(
        request: Request,
        photo: UploadFile = File(..., description="the photo (JPEG, PNG, WebP, BMP, TIFF or GIF)"),
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
        deadline = time.monotonic() + settings.timeout
        shapes = parse_shapes(aspect, size, area)
        subject_box = parse_subject(subject)
        if output != "json" and len(shapes) > 1:
            raise ApiError(400, f"output={output} returns one crop: ask for one shape, or use output=json")

        data = await photo.read()
        t = time.perf_counter()
        prepared, full = await anyio.to_thread.run_sync(
            functools.partial(
                prepare_upload,
                cropper,
                data,
                subject_box.xywh if subject_box is not None else None,
                full=output != "json",
                max_pixels=settings.max_pixels,
                min_side=settings.min_side,
            ),
            limiter=request.app.state.prepare_limiter,
        )
        prepare_s = time.perf_counter() - t
        del data
        job = CropJob(prepared, shapes, keep_subject=False if allow_subject_cut else None)
        results, batch = await run_job(request.app.state.queue, job, deadline)

        if output != "json":
            fmt, media, ext = IMAGE_OUTPUTS[output]
            cut = results[0].cut(full)
            body = await run_in_threadpool(encode_image, cut if cut.mode == "RGB" else cut.convert("RGB"), fmt, quality)
            stem = Path(photo.filename or "photo").stem or "photo"
            cut_box = results[0].box.rounded()  # the pixels cut() takes
            headers = {
                "X-Crop-Box": ",".join(str(int(v)) for v in cut_box.xywh),
                "X-Subject-Box": ",".join(str(round(v)) for v in results[0].subject.xywh),
                "Content-Disposition": f'inline; filename="{_safe_name(stem)}_{shapes[0].name}.{ext}"',
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
            "timings": {
                "prepare_ms": round(prepare_s * 1000, 1),
                "queue_ms": round(batch.queued_s * 1000, 1),
                "model_ms": round(batch.run_s * 1000, 1),
                "batch_size": batch.batch_size,
                "total_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        }
        if heatmap:
            answer["heatmap"] = heatmap_json(first, cropper.dim)
        return answer

    async def run_job(queue: BatchQueue, job: CropJob, deadline: float):
        try:
            future = queue.submit(job, deadline=deadline)
        except QueueFull as e:
            raise ApiError(503, f"the server is busy ({e}); try again shortly", retry_after=1) from None
        except QueueClosed as e:
            raise ApiError(503, str(e), retry_after=5) from None
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=max(0.0, deadline - time.monotonic()))
        except (asyncio.TimeoutError, DeadlinePassed):
            raise ApiError(
                503,
                f"the crop took longer than the time limit ({settings.timeout:g} s); "
                "the server is busy, try again shortly",
                retry_after=2,
            ) from None
        except QueueClosed as e:
            raise ApiError(503, str(e), retry_after=5) from None
        except ValueError as e:  # the Cropper's word on a bad shape
            raise ApiError(400, str(e)) from None

    app.add_middleware(RequestLimits, max_body=settings.max_upload_bytes, max_in_flight=settings.max_in_flight)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key"],
            expose_headers=["X-Crop-Box", "X-Subject-Box"],
        )
    return app


def _safe_name(stem: str) -> str:
    """A file name for Content-Disposition: letters, digits, dot, dash and underscore only."""
    kept = "".join(c if c.isalnum() or c in "._-" else "_" for c in stem)[:80]
    return kept or "photo"


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
