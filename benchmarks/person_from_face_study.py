"""Can a face stand in for its person? Two person boxes grown from YuNet's faces, kept like a found person.

The default finder finds faces, and a kept face's box leaves the body out: crops still cut the
person on the photos where the detector (YOLOv5s-seg, full install) finds one. This study grows the
face group's box into a person box without a person detector, in two ways, and keeps it as the
shipped rule keeps a found person:

* ``body``: proportions of a standing person: ``--side`` face widths to each side, ``--down`` face
  heights below the face (clipped to the photo);
* ``salient``: the U²-Netp regions that touch the face box or the band below it, within
  ``--widen`` face widths to each side, joined with the face box.

Photos without a face fall back to the salient region (never kept), as in ``faces``. Printed per
kind of photo (the detector's verdict, from a ``subject_rule_study.py --save`` file of the same
split): IoU / BDE against the expert crop and the share of crops that cut the detector's person box
by more than 10% (the tables of ``subject_rule_study.py``).

    python benchmarks/subject_rule_study.py --split val --finders detector faces --save val.json
    python benchmarks/person_from_face_study.py body --persons-from val.json [--save body.json]
    python benchmarks/person_from_face_study.py salient --persons-from val.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import subject_rule_study as study  # noqa: E402

from gencrop import Cropper  # noqa: E402
from gencrop.geometry import Box  # noqa: E402
from gencrop.io import to_rgb  # noqa: E402
from gencrop.subject_rule import SubjectRule  # noqa: E402
from gencrop.subjects.base import View  # noqa: E402
from gencrop.subjects.faces import FaceFinder, detect_faces  # noqa: E402
from gencrop.subjects.regions import label_components  # noqa: E402


class PersonFromFace(FaceFinder):
    """The face group grown into a person box (``how``: ``body`` or ``salient``), class "person"."""

    def __init__(self, how: str, side: float = 1.5, down: float = 7.0, widen: float = 2.5):
        super().__init__()
        self.how, self.side, self.down, self.widen = how, side, down, widen

    def find(self, image, size=None, cls="any", frame=None, detections=None):
        image = to_rgb(image)
        view = View.of(image, size, frame)
        region = view.crop(image)
        boxes, scores = detect_faces(region, self.input_size, self.min_score)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        if not (len(boxes) and areas.max() > 0):
            return self.fallback.find(image, size, cls, frame)
        main = int(areas.argmax())
        group = boxes[areas >= self.group * areas[main]]
        (u1, v1), (u2, v2) = group[:, :2].min(0), group[:, 2:].max(0)
        fw, fh = boxes[main, 2] - boxes[main, 0], boxes[main, 3] - boxes[main, 1]
        if self.how == "body":
            x1, x2 = max(0.0, u1 - self.side * fw), min(1.0, u2 + self.side * fw)
            y1, y2 = max(0.0, v1 - 0.3 * fh), min(1.0, v2 + self.down * fh)
        else:
            x1, y1, x2, y2 = self._grow_by_saliency(region, u1, v1, u2, v2, fw)
        return view.box_subject(x1, y1, x2, y2, source="face", score=float(scores[main]), cls="person")

    def _grow_by_saliency(self, region, u1, v1, u2, v2, fw):
        sal = self.fallback.saliency_map(region)
        h, w = sal.shape
        labels = label_components(self.fallback.salient(sal))
        fx1, fy1 = int(u1 * w), int(v1 * h)
        fx2, fy2 = max(fx1 + 1, int(np.ceil(u2 * w))), max(fy1 + 1, int(np.ceil(v2 * h)))
        touching = set(np.unique(labels[fy1 : min(h, 2 * fy2 - fy1), fx1:fx2])) - {0}
        if not touching:
            return u1, v1, u2, v2
        body = np.isin(labels, sorted(touching))
        body[:, : max(0, int((u1 - self.widen * fw) * w))] = False
        body[:, min(w, int(np.ceil((u2 + self.widen * fw) * w))) :] = False
        body[:fy1] = False
        ys, xs = np.nonzero(body)
        if not len(xs):
            return u1, v1, u2, v2
        return min(u1, xs.min() / w), min(v1, ys.min() / h), max(u2, (xs.max() + 1) / w), max(v2, (ys.max() + 1) / h)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("how", choices=("body", "salient"))
    default_root = Path(os.environ.get("GENCROP_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
    ap.add_argument("--data-root", type=Path, default=default_root, help="folder holding fcdb/")
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--persons-from", type=Path, required=True, help="a subject_rule_study.py --save file")
    ap.add_argument("--side", type=float, default=1.5)
    ap.add_argument("--down", type=float, default=7.0)
    ap.add_argument("--widen", type=float, default=2.5)
    ap.add_argument("--save", type=Path, help="write the per-photo crops here (JSON)")
    args = ap.parse_args()

    persons_run = study.load_runs(args.persons_from)
    if persons_run["split"] != args.split:
        raise SystemExit(f"{args.persons_from} holds the {persons_run['split']} split, not {args.split}")
    detected = [r for r in persons_run["finders"][study.DETECTOR] if "error" not in r]
    persons = {r["name"]: Box.from_xywh(r["subject"]) if r["cls"] == study.PERSON else None for r in detected}
    photos = [p for p in study.photos_of(args.data_root, args.split) if p[0] in persons]
    finder = PersonFromFace(args.how, side=args.side, down=args.down, widen=args.widen)
    records = study.crop_records(Cropper.from_pretrained(), finder, photos, [])
    records = [r for r in records if "error" not in r]
    if args.save:
        args.save.write_text(json.dumps({"split": args.split, "finders": {args.how: records}}))
    rules = [SubjectRule(keep_found=False), SubjectRule(classes=study.PERSON_CLASSES)]
    print(f"FCDB {args.split}: {len(records)} photos; person boxes grown from faces ({args.how})")
    study.table(records, persons, rules, "kept")


if __name__ == "__main__":
    main()
