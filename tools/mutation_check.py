"""Mutation check: do the tests catch the bugs that matter?

Each mutation below is a realistic, one-line bug in a convention that users'
crops or published figures depend on. For each, the script copies the tree
to a temporary folder, applies the mutation there (never to the checkout),
runs the tests that should catch it, once without the shared data folder and
once with it, and prints caught / NOT CAUGHT with the first failing test.

    python tools/mutation_check.py                 # all mutations
    python tools/mutation_check.py --list          # their names
    python tools/mutation_check.py cell-mask-swapped atomic-in-place
    GENCROP_SHARED=/path/to/shared python tools/mutation_check.py   # the "with shared" runs use it

A mutation whose text no longer occurs in the source is reported as
"does not apply": update its ``old`` text here when the code moves. The
unmutated tree is run first; if its tests fail, nothing else is meaningful.
Exit code: 0 when every mutation is caught in every run, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # file inside the repository
    old: str  # exact text to replace (must occur once)
    new: str
    tests: tuple  # test files that should fail
    what: str  # the bug, in words


MUTATIONS = [
    Mutation(
        "frac-at-0.5",
        "src/gencrop/geometry.py",
        "sum(1 for v in ious if v >= threshold)",
        "sum(1 for v in ious if v >= 0.5)",
        ("tests/test_conventions.py", "tests/test_geometry.py"),
        "the 'IoU >= 0.75' fraction counted at IoU >= 0.5",
    ),
    Mutation(
        "report-threshold-0.5",
        "src/gencrop/evaluation/report.py",
        "THRESHOLD = 0.75",
        "THRESHOLD = 0.5",
        ("tests/test_conventions.py", "tests/test_eval_report.py"),
        "the report's threshold set to 0.5",
    ),
    Mutation(
        "eval-ignores-mask",
        "src/gencrop/evaluation/runner.py",
        "mask = photo.subject_mask(W, H) if method.uses_mask else None",
        "mask = None",
        ("tests/test_conventions.py", "tests/test_eval_model.py"),
        "evaluation never passes the subject mask to mask-channel models",
    ),
    Mutation(
        "model-method-drops-mask",
        "src/gencrop/evaluation/baselines.py",
        "use_mask = self.uses_mask and mask is not None",
        "use_mask = False and mask is not None",
        ("tests/test_conventions.py", "tests/test_eval_model.py"),
        "the model method crops with the box even when it has the mask",
    ),
    Mutation(
        "landscape-view-from-height",
        "src/gencrop/data/sampling.py",
        "choices = [(r, False, self.max_scale * fw) for r in LANDSCAPE_RATIOS]",
        "choices = [(r, False, self.max_scale * fh) for r in LANDSCAPE_RATIOS]",
        ("tests/test_conventions.py", "tests/test_train_synth.py"),
        "the largest landscape view computed from the frame's height instead of its width",
    ),
    Mutation(
        "atomic-in-place",
        "src/gencrop/io.py",
        "    path.parent.mkdir(parents=True, exist_ok=True)\n    suffix = ",
        "    path.parent.mkdir(parents=True, exist_ok=True)\n    yield path\n    return\n    suffix = ",
        ("tests/test_atomic_writes.py",),
        "atomic_path writes the file in place",
    ),
    Mutation(
        "cropper-subject-xywh",
        "src/gencrop/crop_batch.py",
        "[p.subject_input.xyxy for p in prepared]",
        "[p.subject_input.xywh for p in prepared]",
        ("tests/test_conventions.py", "tests/test_bundled_model_pinned.py", "tests/test_bundled_model.py"),
        "Cropper gives the network the subject as x, y, w, h instead of x1, y1, x2, y2",
    ),
    Mutation(
        "cell-mask-swapped",
        "src/gencrop/modeling/gencrop.py",
        "mask = (rows[:, :, None] & cols[:, None, :])",
        "mask = (cols[:, :, None] & rows[:, None, :])",
        ("tests/test_conventions.py", "tests/test_model.py"),
        "the subject-cell mask with rows and columns swapped",
    ),
    Mutation(
        "letterbox-shift-then-scale",
        "src/gencrop/data/letterbox.py",
        "return box.scale(rw / self.width, rh / self.height).translate(ox, oy)",
        "return box.translate(ox, oy).scale(rw / self.width, rh / self.height)",
        ("tests/test_conventions.py", "tests/test_inference.py"),
        "photo -> input mapping shifts before it scales",
    ),
    Mutation(
        "letterbox-both-reversed",
        "src/gencrop/data/letterbox.py",
        "return box.scale(rw / self.width, rh / self.height).translate(ox, oy)\n"
        "\n    def to_photo(self, box: Box) -> Box:\n"
        '        """Input pixels -> photo pixels."""\n'
        "        (ox, oy), (rw, rh) = self.offset, self.resized\n"
        "        return box.translate(-ox, -oy).scale(self.width / rw, self.height / rh)",
        "return box.translate(ox, oy).scale(rw / self.width, rh / self.height)\n"
        "\n    def to_photo(self, box: Box) -> Box:\n"
        '        """Input pixels -> photo pixels."""\n'
        "        (ox, oy), (rw, rh) = self.offset, self.resized\n"
        "        return box.scale(self.width / rw, self.height / rh).translate(-ox, -oy)",
        ("tests/test_conventions.py", "tests/test_inference.py"),
        "both letterbox mappings with scale and shift swapped (round trips still hold)",
    ),
    Mutation(
        "dataset-check-skips-training-files",
        "src/gencrop/data/own.py",
        '    if (dataset_dir / "outpaint" / "images").is_dir() and splits_readable:',
        '    if (dataset_dir / "outpaint" / "images").is_dir() and splits_readable and False:',
        ("tests/test_cli_output.py",),
        "`dataset check` says OK without reading detect.json.gz, mask.npz or the canvases train reads",
    ),
    Mutation(
        "duplicate-crop-first-wins",
        "src/gencrop/validation.py",
        "    elif tuple(crops[name].xywh) != tuple(box.xywh):",
        "    elif False:",
        ("tests/test_cli_output.py",),
        "two different crops of one photo in an annotation file: the first kept silently",
    ),
    Mutation(
        "heatmap-all-cells",
        "src/gencrop/visualize.py",
        "    if not scored.any() or (outside.size and",
        "    if True or (outside.size and",
        ("tests/test_visualize.py",),
        "the heatmap colours every cell on one scale again (the fixed outside weight drawn as 'high')",
    ),
    Mutation(
        "found-subject-rule-ignored",
        "src/gencrop/subject_rule.py",
        "        if self.classes is not None and cls not in self.classes:",
        "        if False:",
        ("tests/test_subject_rule.py",),
        "the rule for found subjects keeps any class",
    ),
    Mutation(
        "batch-resume-wrong-digest",
        "src/gencrop/batch/catalogue.py",
        "if (p.photo, digest) in done_keys:",
        "if (p.photo, job_digest) in done_keys:",
        ("tests/test_batch_ray.py",),
        "a rerun of gencrop batch crops again what a killed run had finished",
    ),
    # -- rules the fast suite missed before the contract tests (tests/test_contracts_*.py) --------
    Mutation(
        "pull-away-vertically",
        "src/gencrop/shapes.py",
        "amount * (sy - cy)",
        "amount * (cy - sy)",
        ("tests/test_contracts_shapes.py", "tests/test_shapes.py"),
        "the subject pull moves the crop away from the subject on the vertical axis",
    ),
    Mutation(
        "fit-area-over-ratio",
        "src/gencrop/shapes.py",
        "m = int(round(math.sqrt(max(area, 1.0) / (p * q))))",
        "m = int(round(math.sqrt(max(area, 1.0) / (p / q))))",
        ("tests/test_contracts_shapes.py", "tests/test_shapes.py"),
        "fit_shape divides the area by p/q instead of p*q: non-square crops lose the proposal's area",
    ),
    Mutation(
        "mask-subject-not-kept",
        "src/gencrop/subject_rule.py",
        'GIVEN_SOURCES = ("given", "mask")',
        'GIVEN_SOURCES = ("given",)',
        ("tests/test_contracts_crop.py", "tests/test_crop_requests.py"),
        "a subject given as a mask is not kept inside the crop",
    ),
    Mutation(
        "exif-transpose-no-swap",
        "src/gencrop/io.py",
        "        if orientation in (5, 6, 7, 8):\n            full = (full[1], full[0])",
        "        if orientation in (6, 8):\n            full = (full[1], full[0])",
        ("tests/test_contracts_crop.py",),
        "EXIF orientations 5 and 7 (transpose, transverse) do not swap the photo's width and height",
    ),
    Mutation(
        "onnx-ignores-shape",
        "src/gencrop/runtime/onnx_network.py",
        "np.zeros((len(images), 4), np.float32) if shapes is None else np.ascontiguousarray(shapes, np.float32)",
        "np.zeros((len(images), 4), np.float32)",
        ("tests/test_contracts_runtime.py",),
        "the ONNX network feeds GenCrop-C models 'no preference' whatever shape is asked for",
    ),
    Mutation(
        "stale-onnx-accepted",
        "src/gencrop/runtime/loading.py",
        'return "fresh" if current is None or made_from == current else "stale"',
        'return "fresh"',
        ("tests/test_contracts_runtime.py",),
        "an ONNX export made from other weights is used as if it were up to date",
    ),
    Mutation(
        "serve-no-subject-400",
        "src/gencrop/serve/uploads.py",
        "    except SubjectRequired as e:\n        raise ApiError(422, str(e)) from None",
        "    except SubjectRequired as e:\n        raise ApiError(400, str(e)) from None",
        ("tests/test_contracts_serve.py",),
        "the server answers 'no subject found' with 400 instead of the documented 422",
    ),
    Mutation(
        "follow-toward-a",
        "src/gencrop/evaluation/following.py",
        "bx, by = self.b.center",
        "bx, by = self.a.center",
        ("tests/test_contracts_following.py",),
        "the following protocol counts a move toward subject A instead of B",
    ),
    Mutation(
        "portrait-view-landscape-branch",
        "src/gencrop/data/sampling.py",
        "lo, hi = max(fh, fw / ratio), min(height, width / ratio)",
        "lo, hi = max(fw, fh / ratio), min(width, height / ratio)",
        ("tests/test_contracts_training.py",),
        "the view range for portrait frames computed by the landscape formula",
    ),
    Mutation(
        "sbl-no-valid-exemption",
        "src/gencrop/training/losses.py",
        "touches = torch.isclose(subject, crop_xyxy.float(), atol=_TOUCH_ATOL) | torch.isclose(\n"
        "        subject, valid_xyxy.float(), atol=_TOUCH_ATOL\n    )",
        "touches = torch.isclose(subject, crop_xyxy.float(), atol=_TOUCH_ATOL)",
        ("tests/test_contracts_training.py", "tests/test_losses.py"),
        "the boundary loss penalises subject edges that lie on the photo's valid area",
    ),
    # -- rules of recently changed code, found by looking for what a test would miss ----------------
    Mutation(
        "shapes-batch-tiled",
        "src/gencrop/crop_batch.py",
        "np.repeat(c, len(shapes), 0), np.repeat(w, len(shapes), 0)",
        "np.tile(c, (len(shapes), 1)), np.tile(w, (len(shapes), 1, 1))",
        ("tests/test_contracts_crop.py",),
        "several photos x several shapes: a photo's crops come from the other photos' proposals",
    ),
    Mutation(
        "free-beside-shape-no-request",
        "src/gencrop/crop_batch.py",
        "all(s.is_free for s in shapes)",
        "any(s.is_free for s in shapes)",
        ("tests/test_contracts_crop.py",),
        "a GenCrop-C model gets no shape request when a free crop is asked for beside a shaped one",
    ),
    Mutation(
        "keep-subject-false-ignored",
        "src/gencrop/crop_batch.py",
        "keep = keeps_subject(p.source, p.subject_class, p.subject_score) "
        "if keep_subject is None else bool(keep_subject)",
        "keep = keeps_subject(p.source, p.subject_class, p.subject_score)",
        ("tests/test_contracts_crop.py", "tests/test_crop_requests.py"),
        "keep_subject=False (--allow-subject-cut) still moves the crop onto the subject",
    ),
    Mutation(
        "mask-channel-from-box",
        "src/gencrop/crop_prepare.py",
        "channel = letterbox_mask(mask, lb)",
        "channel = box_mask(subject_input, dim)",
        ("tests/test_contracts_crop.py",),
        "a mask-channel model gets the subject's box instead of its mask",
    ),
    Mutation(
        "header-size-no-transpose-swap",
        "src/gencrop/io.py",
        "if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):",
        "if im.getexif().get(0x0112, 1) in (6, 8):",
        ("tests/test_contracts_crop.py",),
        "image_size (the header-only size) does not swap width and height for EXIF 5 and 7",
    ),
    Mutation(
        "exif-mirrors-ignored",
        "src/gencrop/io.py",
        "orientation in (2, 3, 4, 5, 6, 7, 8)",
        "orientation in (3, 5, 6, 7, 8)",
        ("tests/test_contracts_crop.py",),
        "photos stored mirrored (EXIF 2 and 4) are not turned the right way",
    ),
    Mutation(
        "reduction-strict",
        "src/gencrop/io.py",
        "while factor < 8 and factor * 2 <= scale:",
        "while factor < 8 and factor * 2 < scale:",
        ("tests/test_contracts_crop.py",),
        "a photo exactly twice the network's size is not reduced (another input than documented)",
    ),
    Mutation(
        "half-size-drafted",
        "src/gencrop/io.py",
        "DRAFT_MIN_FACTOR = 4",
        "DRAFT_MIN_FACTOR = 2",
        ("tests/test_contracts_crop.py",),
        "JPEGs halved by the decoder: another network input than the same photo in memory",
    ),
    Mutation(
        "large-subject-not-centred",
        "src/gencrop/shapes.py",
        "cy = cy if span[1][1] - span[1][0] <= h else (span[1][0] + span[1][1]) / 2",
        "cy = cy",
        ("tests/test_contracts_shapes.py", "tests/test_shapes.py"),
        "a subject taller than the shape allows is cut where the proposal lies, not centred",
    ),
    Mutation(
        "bad-subject-422",
        "src/gencrop/serve/uploads.py",
        "    except ValueError as e:  # the Cropper's word on a bad subject\n        raise ApiError(400,",
        "    except ValueError as e:  # the Cropper's word on a bad subject\n        raise ApiError(422,",
        ("tests/test_contracts_serve.py",),
        "a subject outside the photo (a bad field) answered 422 instead of 400",
    ),
]


_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "__pycache__", "*.egg-info", ".pytest_cache", "runs", "out", "build", "dist"
)


def copy_tree(dest: Path) -> Path:
    tree = dest / "tree"
    tree.mkdir()
    for name in ("src", "tests", "pyproject.toml"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tree / name, ignore=_IGNORE, symlinks=True)
        else:
            shutil.copy2(src, tree / name)
    return tree


def run_tests(tree: Path, tests, shared: Path | None, timeout: float) -> tuple[int, str, float]:
    """pytest on ``tests`` in ``tree`` (its own src first on the path); returns (rc, first failure, seconds)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree / "src")
    env["GENCROP_SHARED"] = str(shared) if shared else str(tree.parent / "no-shared-data")
    env.setdefault("YOLO_OFFLINE", "1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, "timed out", time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, flags=re.M)
    first = failed[0] if failed else (out.strip().splitlines()[-1] if out.strip() else "")
    return proc.returncode, first, time.perf_counter() - t0


def verdict(rc: int) -> str:
    return {0: "NOT CAUGHT", 1: "caught"}.get(rc, f"error (pytest exit {rc})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Apply each listed bug to a copy of the tree and run the tests.")
    ap.add_argument("names", nargs="*", help="mutations to run (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument(
        "--shared",
        type=Path,
        default=None,
        help="shared data folder for the second run (default: $GENCROP_SHARED or ../shared)",
    )
    ap.add_argument("--timeout", type=float, default=600, help="seconds per test run")
    args = ap.parse_args(argv)

    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:<28} {m.what}")
        return 0
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    unknown = set(args.names) - {m.name for m in MUTATIONS}
    if unknown:
        print(f"unknown mutation(s): {', '.join(sorted(unknown))} (see --list)", file=sys.stderr)
        return 2
    shared = args.shared or Path(os.environ.get("GENCROP_SHARED", REPO.parent / "shared"))
    runs = [("no shared", None)] + ([("shared", shared.resolve())] if shared.is_dir() else [])
    if len(runs) == 1:
        print(f"(no shared data folder at {shared}: only the runs without it)")

    all_caught = True
    with tempfile.TemporaryDirectory(prefix="gencrop-mutation-") as tmp:
        tree = copy_tree(Path(tmp))
        every_test = sorted({t for m in chosen for t in m.tests})
        for label, folder in runs:
            rc, first, secs = run_tests(tree, every_test, folder, args.timeout)
            print(
                f"unmutated tree, {label}: {'tests pass' if rc == 0 else 'TESTS FAIL: ' + first} ({secs:.0f} s)",
                flush=True,
            )
            if rc != 0:
                return 1
        print(f"{'mutation':<28} {'run':<10} {'result':<12} first failing test")
        for m in chosen:
            target = tree / m.path
            original = target.read_text()
            if original.count(m.old) != 1:
                print(f"{m.name:<28} {'-':<10} {'does not apply':<12} (its text is not in {m.path} exactly once)")
                all_caught = False
                continue
            target.write_text(original.replace(m.old, m.new))
            try:
                for label, folder in runs:
                    rc, first, secs = run_tests(tree, m.tests, folder, args.timeout)
                    all_caught &= rc == 1
                    print(
                        f"{m.name:<28} {label:<10} {verdict(rc):<12} {first if rc else ''} ({secs:.0f} s)", flush=True
                    )
            finally:
                target.write_text(original)
    return 0 if all_caught else 1


if __name__ == "__main__":
    sys.exit(main())
