"""Throughput of each data-engine stage on this machine (images per second; detector load excluded).

    python benchmarks/bench_engine.py [--photos DIR] [-n 8] [--device cpu] [--threads 2]

Stages that need weights which are not installed offline (BLIP-2, SD-2
inpainting, YOLOv8x-seg) are reported as skipped; the rest run on real
photos: ``--photos`` (``img<ID>.jpg`` or any images), by default the GAICD
samples of the shared data folder plus the bundled example photo.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _photos(dest: Path, source: str | None, n: int) -> int:
    from gencrop.io import list_images

    src = (
        Path(source)
        if source
        else Path(os.environ.get("GENCROP_SHARED", REPO.parent / "shared")) / "data" / "gaicd" / "images"
    )
    files = list_images(src) if src.is_dir() else []
    files = files + [REPO / "src" / "gencrop" / "assets" / "astronaut.jpg"]
    dest.mkdir(parents=True)
    for i in range(n):
        shutil.copy(files[i % len(files)], dest / f"img{i:04d}.jpg")
    return n


def _timed(label: str, n: int, fn) -> None:
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    print(f"{label:<42s} {n / dt:7.2f} img/s  ({dt / n * 1000:7.1f} ms/img, {n} images)", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos")
    ap.add_argument("-n", type=int, default=8, help="photos (default 8)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from PIL import Image

    from gencrop.engine.caption import LabelCaptioner, caption_folder
    from gencrop.engine.outpaint import outpaint_folder
    from gencrop.engine.quality import QualityConfig, build_model, quality_folder, save_model
    from gencrop.engine.segment import make_segmenter, segment_folder
    from gencrop.io import list_images

    print(
        f"device {args.device}, torch threads {args.threads}, python {sys.version.split()[0]}, torch {torch.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = _photos(tmp / "photos", args.photos, args.n)
        print(f"{n} photos, sizes e.g. {Image.open(next((tmp / 'photos').iterdir())).size}")

        _timed(
            "outpaint --backend classical (512 px)",
            n,
            lambda: outpaint_folder(tmp / "photos", tmp / "out", backend="classical", per_image=1, quiet=True),
        )
        canvases = len(list_images(tmp / "out"))

        for weights in ("yolov5s-seg", "yolov7-seg"):
            try:
                seg = make_segmenter("yolov7", weights, args.device)
            except ImportError as e:
                print(f"segment --backend yolov7 {weights}: skipped ({e})")
                continue
            seg([Image.new("RGB", (64, 64))])  # warm-up
            _timed(
                f"caption --captioner labels ({weights})",
                n,
                lambda: caption_folder(
                    tmp / "photos", tmp / f"cap-{weights}", captioner=LabelCaptioner(seg), quiet=True
                ),
            )
            _timed(
                f"segment --backend yolov7 ({weights})",
                canvases,
                lambda: segment_folder(tmp / "out", tmp / f"seg-{weights}", segmenter=seg, quiet=True),
            )

        model_dir = tmp / "qmodel"
        save_model(build_model(QualityConfig()), model_dir)  # timing only: random weights
        _timed(
            "quality (tf_efficientnet_lite0, 128 px)",
            canvases,
            lambda: quality_folder(tmp / "out", model_dir, tmp / "bad.json", device=args.device, quiet=True),
        )
    print(
        "caption --captioner blip2, outpaint --backend diffusion, segment --backend ultralytics: skipped "
        "(their weights are not available offline here)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
