"""The rule for found subjects: which are kept (and followed) like a given subject, which only feed the network."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import gencrop.subject_rule as subject_rule
from gencrop.geometry import Box
from gencrop.subject_rule import SubjectRule

PEOPLE = SubjectRule(classes={"person", "face"}, min_score=0.6)


def test_given_subjects_are_always_kept_whatever_the_rule():
    for rule in (SubjectRule(keep_found=False), PEOPLE, SubjectRule(sources={"detection"})):
        assert rule.keeps("given") and rule.keeps("mask")


def test_found_subjects_by_class_score_and_source():
    assert PEOPLE.keeps("detection", "person", 0.6)  # at the threshold
    assert not PEOPLE.keeps("detection", "person", 0.59)
    assert PEOPLE.keeps("faces", "face", 0.9)
    assert not PEOPLE.keeps("detection", "dog", 0.99)
    assert not PEOPLE.keeps("saliency", "salient", 0.99)
    assert not PEOPLE.keeps("detection", "person", None)  # a threshold needs a score
    assert not SubjectRule(keep_found=False).keeps("detection", "person", 1.0)
    assert SubjectRule().keeps("saliency", "salient", None)  # no threshold: any found subject
    detected = SubjectRule(sources={"detection"}, min_score=0.5)
    assert detected.keeps("detection", "car", 0.5) and not detected.keeps("saliency", "salient", 0.9)


def test_rule_rejects_bad_settings_and_says_what_it_does():
    with pytest.raises(ValueError, match="min_score"):
        SubjectRule(min_score=1.5)
    with pytest.raises(TypeError, match="set of names"):
        SubjectRule(classes="person")
    assert PEOPLE.describe() == "found face/person with score >= 0.6"
    assert SubjectRule(keep_found=False).describe() == "no found subject kept"


def test_shipped_rule_keeps_people_and_faces_only():
    rule = subject_rule.FOUND_SUBJECT_RULE
    assert rule.keeps("detection", "person", 0.41) and rule.keeps("faces", "face", 0.61)
    assert not rule.keeps("saliency", "salient", 1.0) and not rule.keeps("detection", "dog", 0.99)
    assert subject_rule.keeps_subject("given") and not subject_rule.keeps_subject("saliency", "salient", 0.9)


# -- the rule applied by the Cropper ---------------------------------------------------------------
@pytest.fixture(scope="module")
def network(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from gencrop.inference import Cropper
    from gencrop.modeling import GenCrop, GenCropConfig

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("model")
    GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64, transpose_anchors=False)).save_pretrained(d)
    return Cropper.from_pretrained(d, device="cpu").network


def _finder(cls: str, score: float, box: Box, source: str = "detection"):
    from gencrop.subject import Subject

    def find(img, size):
        return Subject(box=box, mask=None, source=source, score=score, cls=cls)

    return find


# A person at the left edge of a wide photo: a free crop of a random network is unlikely to hold it all.
PHOTO = Image.fromarray(np.random.default_rng(3).integers(0, 255, (200, 480, 3), dtype=np.uint8))
EDGE = Box(0, 20, 60, 170)


@pytest.mark.parametrize(
    "cls, score, source, kept",
    [("person", 0.9, "detection", True), ("person", 0.3, "detection", False), ("salient", 0.9, "saliency", False)],
)
def test_cropper_keeps_a_found_subject_when_the_rule_says_so(network, monkeypatch, cls, score, source, kept):
    from gencrop.inference import Cropper

    monkeypatch.setattr(subject_rule, "FOUND_SUBJECT_RULE", PEOPLE)
    cropper = Cropper(network, subject_finder=_finder(cls, score, EDGE, source))
    res = cropper.crop(PHOTO, aspect="1:1")
    assert res.subject_kept is kept and res.subject_source == source
    assert (res.subject_class, res.subject_score) == (cls, pytest.approx(score))
    if kept:
        assert res.box.contains(EDGE)
    record = res.to_json("p.jpg")
    assert record["subject_kept"] is kept and record["subject_class"] == cls and record["subject_score"] == score
    # the caller's word still wins over the rule
    assert cropper.crop(PHOTO, keep_subject=not kept).subject_kept is (not kept)


def test_a_subject_found_earlier_is_treated_as_found(network, monkeypatch):
    from gencrop.inference import Cropper
    from gencrop.subject import Subject

    monkeypatch.setattr(subject_rule, "FOUND_SUBJECT_RULE", PEOPLE)
    cropper = Cropper(network, subject_finder=None)
    dog = Subject(box=EDGE, mask=None, source="detection", score=0.95, cls="dog")
    res = cropper.crop(PHOTO, subject=dog)
    assert res.subject_source == "detection" and res.subject_class == "dog" and not res.subject_kept
    given = cropper.crop(PHOTO, subject=EDGE)
    assert given.subject_kept and given.subject_class is None and "subject_class" not in given.to_json()
