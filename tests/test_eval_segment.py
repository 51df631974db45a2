"""`gencrop eval --segment`: one-line errors when no segmenter can load, and --limit honoured."""

import sys

import pytest

torch = pytest.importorskip("torch")

from eval_layouts import gaicd_root  # noqa: E402
from gencrop.cli import main  # noqa: E402
from gencrop.data.benchmarks import load_benchmark, unsegmented  # noqa: E402
from gencrop.engine.detections import Detection  # noqa: E402
from gencrop.modeling import GenCrop, GenCropConfig  # noqa: E402


def _eval(capsys, *argv):
    code = main(["eval", "-q", "--device", "cpu", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def gaicd(shared_data, tmp_path):
    return gaicd_root(shared_data, tmp_path / "root").parent


@pytest.fixture
def recording_segmenter(monkeypatch):
    """Stands in for the backends: records the photos it is given, answers one detection per photo."""
    import gencrop.engine.segment as segment

    seen = []

    def make(backend="ultralytics", model=None, device=None, conf=0.25):
        def seg(images):
            seen.extend(images)
            return [
                [
                    Detection(
                        segment.Box(10, 10, im.width / 2, im.height / 2),
                        0.9,
                        "person",
                        segment.np.array([[10, 10], [60, 10], [10, 60]], segment.np.float32),
                    )
                ]
                for im in images
            ]

        return seg

    monkeypatch.setattr(segment, "make_segmenter", make)
    return seen


def test_missing_ultralytics_is_one_line_with_the_install_and_the_offline_backend(gaicd, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ultralytics", None)  # as when it is not installed
    code, _, err = _eval(
        capsys,
        "--method",
        "subject",
        "--benchmark",
        "gaicd",
        "--data-root",
        gaicd,
        "--segment",
        "--segment-backend",
        "ultralytics",
    )
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "pip install ultralytics" in err and "--segment-backend yolov7" in err


def test_segment_hint_names_the_offline_backend(gaicd, capsys):
    code, _, err = _eval(capsys, "--method", "subject", "--benchmark", "gaicd", "--data-root", gaicd)
    assert code == 0 and "--backend yolov7" in err and "not use them" in err


def test_segment_honours_limit_and_adds_the_rest_later(gaicd, tmp_path, capsys, recording_segmenter):
    torch.manual_seed(0)
    model = tmp_path / "mask-model"
    GenCrop(GenCropConfig(arch="mobilenetv2_050", image_size=64, in_channels=4)).save_pretrained(model)
    n_photos = len(load_benchmark("gaicd", gaicd).photos)
    assert n_photos >= 2

    code, _, err = _eval(capsys, model, "--benchmark", "gaicd", "--data-root", gaicd, "--segment", "--limit", "1")
    assert code == 0, err
    assert len(recording_segmenter) == 1  # only the photo that is scored
    assert sum(map(len, unsegmented(load_benchmark("gaicd", gaicd)).values())) == n_photos - 1

    # the partial detections are not mistaken for complete ones
    code, _, err = _eval(capsys, model, "--benchmark", "gaicd", "--data-root", gaicd)
    assert code == 2 and f"{n_photos - 1} photo" in err and "not in detect.json.gz" in err

    code, _, err = _eval(capsys, model, "--benchmark", "gaicd", "--data-root", gaicd, "--segment")
    assert code == 0, err
    assert len(recording_segmenter) == n_photos  # the rest, once each
    assert unsegmented(load_benchmark("gaicd", gaicd)) == {}


def test_benchmark_is_checked_before_the_model_loads(tmp_path, capsys, monkeypatch):
    import gencrop.inference

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the benchmark was checked")

    monkeypatch.setattr(gencrop.inference.Cropper, "from_pretrained", classmethod(refuse))
    code, _, err = _eval(capsys, "--benchmark", "gaicd", "--data-root", tmp_path / "nothing")
    assert code == 2 and "nothing: no such folder" in err
