"""Benchmark folders in their published layouts, built by the evaluation tests.

Real annotations and photos come from ``$GENCROP_SHARED/data`` where the
layout allows it; photos that are not shared are synthesised at the size the
annotations imply, so the loaders read exactly the published formats.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from gencrop.data.unsplash import sha256_id


def synth_photo(path: Path, size: tuple[int, int], seed: int = 0) -> None:
    """A smooth random photo (compresses well, decodes fast)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(small).resize(size, Image.BILINEAR).save(path, quality=80)


def fcdb_root(shared_data: Path, root: Path, n_photos: int = 6) -> list[str]:
    """``root/FCDB`` with the human-centric annotation files and the first shared test-split photos.

    The shared FCDB photos leave out the human-centric ones, so the layout
    holds ``n_photos`` photos of the test split (``--all-images``); the
    human-centric mode finds its photos missing.
    """
    folder = root / "FCDB"
    (folder / "data").mkdir(parents=True)
    for f in ("image_crop.json", "human_bboxes.json", "data_split.json"):
        shutil.copy(shared_data / "hcic" / "FCDB" / f, folder / f)
    split = json.loads((folder / "data_split.json").read_text())
    names = [n for n in split["test"] if (shared_data / "fcdb" / "images" / n).is_file()][:n_photos]
    for n in names:
        os.symlink(shared_data / "fcdb" / "images" / n, folder / "data" / n)
    return names


def gaicd_root(shared_data: Path, root: Path) -> Path:
    """``root/GAICD``: the human-centric annotation files and the shared sample photos."""
    folder = root / "GAICD"
    folder.mkdir(parents=True)
    for f in ("image_crop.json", "human_bboxes.json", "human_data_split.json", "original_data_split.json"):
        shutil.copy(shared_data / "hcic" / "GAICD" / f, folder / f)
    os.symlink(shared_data / "gaicd" / "images", folder / "images")
    return folder


def flms_root(shared_data: Path, root: Path) -> list[str]:
    """``root/FLMS``: two human-centric photos and one other, synthesised at the annotation size."""
    folder = root / "FLMS"
    crops = json.loads((shared_data / "hcic" / "FLMS" / "image_crop.json").read_text())
    humans = json.loads((shared_data / "hcic" / "FLMS" / "human_bboxes.json").read_text())
    names = sorted(n for n in humans if n in crops)[:2] + [n for n in sorted(crops) if n not in humans][:1]
    for i, n in enumerate(names):
        w = max(b[2] for b in crops[n])
        h = max(b[3] for b in crops[n])
        synth_photo(folder / "image" / n, (int(w), int(h)), seed=i)
    (folder / "image_crop.json").write_text(json.dumps({n: crops[n] for n in names}))
    (folder / "human_bboxes.json").write_text(json.dumps({n: humans[n] for n in names if n in humans}))
    return names


def cpc_root(shared_data: Path, root: Path) -> list[str]:
    """``root/CPCDataset``: three human-centric photos (sizes from the person-box file) and
    an ``image_crop.json`` in CPC's format (``bboxes`` xyxy, best first)."""
    folder = root / "CPCDataset"
    humans = json.loads((shared_data / "hcic" / "CPC" / "human_bboxes.json").read_text())
    names = sorted(humans)[:3]
    crops = {}
    for i, n in enumerate(names):
        W, H = humans[n]["weight"], humans[n]["height"]
        synth_photo(folder / "images" / n, (W, H), seed=i)
        crops[n] = {
            "bboxes": [[W // 10, H // 10, W - W // 10, H - H // 8], [0, 0, W // 2, H // 2]],
            "scores": [4.0, 2.0],
        }
    (folder / "image_crop.json").write_text(json.dumps(crops))
    (folder / "human_bboxes.json").write_text(json.dumps({n: humans[n] for n in names}))
    return names


def sacd_root(root: Path) -> Path:
    """``root/SACD`` as unzipped: two photos, three examples (subjects), masks, test.json."""
    folder = root / "SACD"
    synth_photo(folder / "images" / "p01.jpg", (320, 240), 1)
    synth_photo(folder / "images" / "p02.jpg", (200, 300), 2)
    examples = {
        "p01_0": ([40, 60, 80, 120], [[20, 30, 250, 220]], [[10, 10, 300, 230], [30, 40, 200, 200]]),
        "p01_1": ([200, 50, 60, 90], [[150, 20, 320, 200]], [[120, 0, 320, 240]]),
        "p02_0": ([50, 100, 100, 150], [[20, 60, 180, 280]], []),
    }
    jsons = []
    for name, (subject, best, crops) in examples.items():
        rel = f"annotations/{name}.json"
        (folder / "annotations").mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(json.dumps({"mask_box": json.dumps(subject), "best_box": best, "crop_box": crops}))
        jsons.append(rel)
        photo = folder / "images" / (name.rsplit("_", 1)[0] + ".jpg")
        W, H = Image.open(photo).size
        m = np.zeros((H, W), np.uint8)
        x, y, w, h = subject
        m[y : y + h, x : x + w // 2] = 255  # half the box: the mask is not the box
        (folder / "masks").mkdir(exist_ok=True)
        Image.fromarray(m).save(folder / "masks" / f"{name}.jpg", quality=95)
    (folder / "test.json").write_text(json.dumps({"jsons": jsons}))
    return folder


def unsplash_layout(shared_data: Path, root: Path, category: str = "horse", n: int = 2) -> tuple[Path, Path, list]:
    """A prepared Unsplash category (real test labels, made-up photo ids) and photos of the masks' size."""
    labels = json.loads(gzip.decompress((shared_data / "unsplash" / category / "testeval_sha256.json.gz").read_bytes()))
    picked = sorted(labels)[:n]
    ds, imgs = root / "unsplash-data" / category, root / "unsplash-images"
    ds.mkdir(parents=True)
    test, new_labels = [], {}
    for i, h in enumerate(picked):
        pid = f"-fake{i}_x"  # ids may start with a dash and hold underscores
        new_hash = sha256_id(pid)
        rec = labels[h]
        new_labels[new_hash] = rec
        test.append({"hash_id": new_hash, "subject_xywh": rec["subject_xywh"], "id": pid})
        mask = Image.open(io.BytesIO(base64.b64decode(rec["subject_mask"])))
        synth_photo(imgs / f"img{pid}.jpg", mask.size, seed=i)
    new_labels[sha256_id("not-downloaded")] = labels[picked[0]]
    test.append({"hash_id": sha256_id("not-downloaded"), "subject_xywh": None, "id": "not-downloaded"})
    (ds / "testeval_sha256.json.gz").write_bytes(gzip.compress(json.dumps(new_labels).encode()))
    (ds / "test.json").write_text(json.dumps(test))
    return ds, imgs, [labels[h] for h in picked]


def write_detections(folder: Path, dets: dict[str, list[tuple[list, np.ndarray]]]) -> None:
    """``detect.json.gz`` + ``mask.npz`` as ``gencrop segment`` writes them: ``{stem: [(xywh, polygon)]}``."""
    records, polys, k = {}, {}, 0
    for stem, items in dets.items():
        records[stem] = []
        for xywh, poly in items:
            records[stem].append({"xywh": list(map(float, xywh)), "score": 0.9, "class": "person", "mask_id": k})
            polys[str(k)] = np.asarray(poly, np.float32)
            k += 1
    (folder / "detect.json.gz").write_bytes(gzip.compress(json.dumps(records).encode()))
    np.savez_compressed(folder / "mask.npz", **polys)
