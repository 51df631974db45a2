"""Would MediaPipe's pose detector find the people that YuNet's faces miss? A probe before any conversion.

The default finder (`people`) keeps a person's figure only where YuNet finds a face; the person
photos without one (backs, small or turned figures) are cropped as before and cause most of the
remaining cut people. The `mediapipe` 0.10.14 wheel holds a person detector (BlazePose's, Apache-2.0)
that does not convert to ONNX as it is (sparse weights), so this probe runs it through TensorFlow
Lite's own interpreter and counts, on the photos of a ``subject_rule_study.py --save`` file:

* person photos (the detector's verdict), with and without a YuNet face: how many get a pose
  detection, and how many of those cover at least 90% of the detector's person box with the body
  square (centre at the hips, side 2.5 × the hips-to-circle distance, as MediaPipe's pose graph
  crops it);
* the other photos: how many get a pose detection at all (each would be a wrong kept subject).

    unzip -j mediapipe-0.10.14-*.whl mediapipe/modules/pose_detection/pose_detection.tflite
    pip install tensorflow-cpu pillow   # or ai-edge-litert
    python benchmarks/pose_detector_probe.py pose_detection.tflite --persons-from val.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

INPUT = 224  # the detector's square input (letterboxed photo, values in [-1, 1])
ANCHOR_LAYERS = ((8, 2), (16, 2), (32, 6))  # (stride, anchors per cell): 2,254 SSD anchors
BODY_SCALE = 1.25  # MediaPipe's pose graph grows the hips-to-circle square by this
COVERED = 0.9  # a body square "finds" the person when it covers this much of the person's box


def load_interpreter(model: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(str(model))
    interpreter.allocate_tensors()
    return interpreter


def anchor_centres() -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in the order of the model's outputs."""
    centres = []
    for stride, per_cell in ANCHOR_LAYERS:
        cells = INPUT // stride
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    return np.array(centres)


def best_body(interpreter, anchors: np.ndarray, photo: Path) -> tuple[float, list[float]] | None:
    """(score, body square x0, y0, x1, y1 in photo pixels) of the most confident detection, if any."""
    image = Image.open(photo).convert("RGB")
    width, height = image.size
    scale = INPUT / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = (INPUT - w) // 2, (INPUT - h) // 2
    canvas = np.zeros((INPUT, INPUT, 3), np.float32)
    canvas[top : top + h, left : left + w] = np.asarray(image.resize((w, h), Image.BILINEAR), np.float32) / 127.5 - 1
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], canvas[None])
    interpreter.invoke()
    outputs = {o["shape"][-1]: interpreter.get_tensor(o["index"])[0] for o in interpreter.get_output_details()}
    regressors, logits = outputs[12], outputs[1][:, 0]
    best = int(np.argmax(logits))
    score = float(1 / (1 + np.exp(-np.clip(logits[best], -100, 100))))
    keypoints = regressors[best, 4:12].reshape(4, 2) / INPUT + anchors[best]
    hips, circle = keypoints[0], keypoints[1]
    half = float(np.hypot(*(circle - hips))) * BODY_SCALE
    x0, y0 = ((hips - half) * INPUT - (left, top)) / scale
    x1, y1 = ((hips + half) * INPUT - (left, top)) / scale
    return score, [float(x0), float(y0), float(x1), float(y1)]


def covered(square: list[float], box: list[float]) -> float:
    """Fraction of ``box`` (x0, y0, x1, y1) inside ``square``."""
    iw = max(0.0, min(square[2], box[2]) - max(square[0], box[0]))
    ih = max(0.0, min(square[3], box[3]) - max(square[1], box[1]))
    return iw * ih / max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_root = Path(os.environ.get("GENCROP_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
    ap.add_argument("model", type=Path, help="pose_detection.tflite from the mediapipe 0.10.14 wheel")
    ap.add_argument("--persons-from", type=Path, required=True, help="a subject_rule_study.py --save file")
    ap.add_argument("--data-root", type=Path, default=default_root, help="folder holding fcdb/")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9])
    args = ap.parse_args()

    finders = json.loads(args.persons_from.read_text())["finders"]
    detector = {r["name"]: r for r in finders.get("detector", finders.get("auto", []))}
    with_face = {r["name"] for r in finders.get("faces", []) if r.get("source") == "face"}
    interpreter, anchors = load_interpreter(args.model), anchor_centres()
    rows = []
    for name, run in sorted(detector.items()):
        found = best_body(interpreter, anchors, args.data_root / "fcdb" / "images" / name)
        person = run.get("cls") == "person"
        x, y, w, h = run["subject"] if person else (0, 0, 1, 1)
        rows.append((person, name in with_face, found, [x, y, x + w, y + h]))

    persons = [r for r in rows if r[0]]
    print(f"{len(rows)} photos: {len(persons)} person photos ({sum(r[1] for r in persons)} with a face)")
    print("score >=  | person, face: found / covers | person, no face: found / covers | other photos: fired")
    for threshold in args.thresholds:
        cells = []
        for face in (True, False):
            group = [r for r in rows if r[0] and r[1] == face]
            hits = [r for r in group if r[2] and r[2][0] >= threshold]
            good = [r for r in hits if covered(r[2][1], r[3]) >= COVERED]
            cells.append(f"{len(hits):>2} / {len(good):>2} of {len(group):>2}")
        others = [r for r in rows if not r[0]]
        fired = sum(bool(r[2] and r[2][0] >= threshold) for r in others)
        print(f"{threshold:>8}  | {cells[0]:>27} | {cells[1]:>30} | {fired} of {len(others)}")


if __name__ == "__main__":
    main()
