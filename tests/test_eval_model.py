"""`gencrop eval MODEL`: a tiny random GenCrop through the same harness as the baselines."""

import json

import pytest

torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from eval_layouts import gaicd_root, write_detections  # noqa: E402
from gencrop.cli import main  # noqa: E402
from gencrop.data.benchmarks import load_benchmark  # noqa: E402
from gencrop.evaluation.report import summary_from_csv  # noqa: E402
from gencrop.modeling import GenCrop, GenCropConfig  # noqa: E402

from test_eval_benchmarks import _own_dataset  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("models")
    GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64)).save_pretrained(d / "rgb")
    GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64, in_channels=4)).save_pretrained(d / "mask")
    GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64)).save_pretrained(d / "run" / "epoch2")
    return d


def _eval(capsys, *argv):
    code = main(["eval", "-q", "--device", "cpu", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_model_on_gaicd_samples_with_heatmaps(shared_data, models, tmp_path, capsys):
    root = tmp_path / "root"
    gaicd_root(shared_data, root)
    report = tmp_path / "rep"
    code, out, err = _eval(
        capsys, str(models / "rgb"), "--benchmark", "gaicd", "--data-root", str(root), "-o", str(report), "--baselines"
    )
    assert code == 0, err
    summary = json.loads((report / "summary.json").read_text())
    again = summary_from_csv(report)
    assert summary["method"] == "rgb" and summary["num_images"] == 2 == again["num_images"]
    assert (summary["mean_iou"], summary["mean_bde"]) == (again["mean_iou"], again["mean_bde"])
    assert set(summary["baselines"]) == {"identity", "center:0.8", "subject"}
    with Image.open(report / "thumbs" / "00000.jpg") as im:  # photo panel + heatmap panel
        assert im.width > 2.5 * im.height  # a 3:2 photo, twice


def test_mask_model_needs_segmentation_then_uses_it(shared_data, models, tmp_path, capsys):
    root = tmp_path / "root"
    gaicd_root(shared_data, root)
    code, _, err = _eval(capsys, str(models / "mask"), "--benchmark", "gaicd", "--data-root", str(root))
    assert code == 2 and "gencrop segment" in err and "--segment" in err
    b = load_benchmark("gaicd", root)
    dets = {}
    for p in b.photos:
        s = p.subject
        dets[p.path.stem] = [(list(s.xywh), [[s.x, s.y], [s.x2, s.y], [s.x2, s.y2]])]
    write_detections(root / "GAICD", dets)
    code, out, err = _eval(
        capsys, str(models / "mask"), "--benchmark", "gaicd", "--data-root", str(root), "-o", str(tmp_path / "rep")
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["info"]["subject_masks"] == "detections (2 matched, 0 boxes)"


def test_epoch_and_own_test_split(models, tmp_path, capsys):
    out_dir = _own_dataset(tmp_path)
    code, out, err = _eval(
        capsys, str(models / "run"), "--epoch", "2", "--dataset", str(out_dir), "-o", str(tmp_path / "rep")
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["method"] == "run @ epoch 2" and summary["num_images"] == 4
    assert summary["benchmark"] == "own"
    code, _, err = _eval(capsys, str(models / "run"), "--epoch", "7", "--dataset", str(out_dir))
    assert code == 2 and "epoch 7" in err and len(err.strip().splitlines()) == 1
