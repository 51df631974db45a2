"""The conventions users' crops depend on, checked against values worked out by hand.

Every example is asymmetric (non-square photos, off-centre boxes, wide or
tall subjects) so that x cannot be confused with y, xywh with xyxy, or a
scale with a shift without some assertion failing. None of these tests needs
the shared data folder.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from gencrop.data.benchmarks import Benchmark, BenchmarkPhoto  # noqa: E402
from gencrop.data.letterbox import Letterbox, letterbox_image  # noqa: E402
from gencrop.data.sampling import ViewSampler  # noqa: E402
from gencrop.evaluation import evaluate  # noqa: E402
from gencrop.evaluation.baselines import IdentityBaseline, ModelMethod  # noqa: E402
from gencrop.evaluation.report import format_summary, summary_from_csv, write_report  # noqa: E402
from gencrop.geometry import Box, boundary_displacement, iou, summarize  # noqa: E402
from gencrop.inference import Cropper  # noqa: E402
from gencrop.modeling import GenCrop, GenCropConfig  # noqa: E402
from gencrop.modeling.gencrop import subject_cell_mask  # noqa: E402

# -- metrics ---------------------------------------------------------------------------


def test_iou_and_displacement_of_an_off_centre_box_in_a_wide_photo():
    # photo 300 x 120; prediction (30, 12)-(230, 102), truth (60, 0)-(300, 90)
    pred, gt = Box(30, 12, 200, 90), Box(60, 0, 240, 90)
    # overlap (60, 12)-(230, 90) = 170 x 78; union 200*90 + 240*90 - 170*78
    assert iou(pred, gt) == pytest.approx(13260 / (18000 + 21600 - 13260))
    # x edges off by 30 and 70 of W = 300; y edges off by 12 and 12 of H = 120
    assert boundary_displacement(pred, gt, 300, 120) == pytest.approx(100 / 300 + 24 / 120)
    # the same boxes transposed in a tall photo give the transposed figure
    assert boundary_displacement(Box(12, 30, 90, 200), Box(0, 60, 90, 240), 120, 300) == pytest.approx(
        24 / 120 + 100 / 300
    )


def test_summary_counts_the_fraction_at_iou_075_not_another_threshold():
    ious = [0.9, 0.75, 0.7499, 0.6, 0.5]
    disps = [0.4, 0.2, 0.0, 0.0, 0.2]
    s = summarize(ious, disps)
    assert s["num_images"] == 5
    assert s["mean_iou"] == pytest.approx(3.4999 / 5)
    assert s["mean_bde"] == pytest.approx(0.8 / 5 / 4)
    assert s["frac_iou_ge_0.75"] == pytest.approx(2 / 5)  # 0.9 and 0.75; at 0.5 it would be 5/5


def _whole_photo_benchmark(folder) -> tuple[Benchmark, list[float]]:
    """Photos of 300 x 120 whose truths cover a known fraction of the width: the whole photo scores that IoU."""
    fractions = [1.0, 0.8, 0.76, 0.7, 0.5]
    photos = []
    for i, f in enumerate(fractions):
        path = folder / f"p{i}.jpg"
        Image.new("RGB", (300, 120), (40 * i, 90, 160)).save(path)
        photos.append(BenchmarkPhoto(f"p{i}", path, [Box(300 * (1 - f), 0, 300 * f, 120)]))
    return Benchmark("toy", folder, photos, description="toy"), fractions


def test_evaluation_report_figures_match_hand_computed_values(tmp_path):
    bench, fractions = _whole_photo_benchmark(tmp_path)
    run = evaluate(bench, IdentityBaseline(), progress=False)
    assert [r.iou for r in run.results] == pytest.approx(fractions)  # IoU = the width fraction
    assert [r.disp for r in run.results] == pytest.approx([1 - f for f in fractions])  # one x edge moved
    summary = write_report(tmp_path / "report", run)
    want = {"num_images": 5, "mean_iou": 3.76 / 5, "mean_bde": 1.24 / 5 / 4, "frac_iou_ge_0.75": 3 / 5}
    for key, value in want.items():
        assert summary[key] == pytest.approx(value), key
        assert summary_from_csv(tmp_path / "report")[key] == pytest.approx(value), key
    text = format_summary(summary)
    assert "Mean IoU: 0.7520" in text and "BDE: 0.0620" in text and "IoU >= 0.75: 0.6000" in text


# -- letterbox ---------------------------------------------------------------------------


def test_letterbox_maps_photo_pixels_to_input_pixels_scale_then_shift():
    wide = Letterbox(400, 200, 64)  # scale 0.16, resized 64 x 32, shifted down by 16
    assert (wide.scale, wide.resized, wide.offset) == (pytest.approx(0.16), (64, 32), (0, 16))
    assert wide.to_input(Box(100, 50, 200, 100)).xywh == pytest.approx((16, 24, 32, 16))
    assert wide.to_photo(Box(16, 24, 32, 16)).xywh == pytest.approx((100, 50, 200, 100))
    assert wide.to_photo(Box(0, 0, 64, 64)).xywh == pytest.approx((0, -100, 400, 400))
    tall = Letterbox(200, 400, 64)  # resized 32 x 64, shifted right by 16
    assert tall.offset == (16, 0)
    assert tall.to_input(Box(50, 100, 100, 200)).xywh == pytest.approx((24, 16, 16, 32))
    assert tall.to_photo(Box(24, 16, 16, 32)).xywh == pytest.approx((50, 100, 100, 200))


def test_letterboxed_pixels_sit_where_to_input_says():
    """Second route to the same convention: draw the box into the photo and find it in the input."""
    img = Image.new("RGB", (400, 200), (0, 0, 0))
    img.paste((255, 255, 255), (100, 50, 300, 150))
    arr, lb = letterbox_image(img, 64)
    x1, y1, x2, y2 = (int(v) for v in lb.to_input(Box(100, 50, 200, 100)).xyxy)  # (16, 24, 48, 40)
    bright = arr[0] > 0.5
    assert bright[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].all()
    bright[y1 - 1 : y2 + 1, x1 - 1 : x2 + 1] = False
    assert not bright.any()


# -- subject cells ----------------------------------------------------------------------


def test_subject_cell_mask_rows_are_y_and_columns_are_x():
    # 128 px input, 8 x 8 cells of 16 px: a wide box on the top row, a tall box in column 1
    m = subject_cell_mask(torch.tensor([[0.0, 0, 64, 16], [16, 32, 32, 128]]), 8).view(2, 8, 8) > 0
    assert m[0].nonzero().tolist() == [[0, 0], [0, 1], [0, 2], [0, 3]]
    assert m[1].nonzero().tolist() == [[r, 1] for r in range(2, 8)]


def test_restricted_weights_fall_on_the_subject_cells_of_the_picture():
    torch.manual_seed(0)
    model = GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64, subject_weighting="restricted")).eval()
    with torch.no_grad():  # 4 x 4 cells; the subject is the left half of the top row
        out = model(torch.randn(1, 3, 64, 64), torch.tensor([[0.0, 0, 32, 16]]))
    weights = out.weights[0]  # (rows, cols)
    assert weights[0, :2].sum() == pytest.approx(1.0, abs=1e-5)
    assert weights[1:].sum() < 1e-5 and weights[:, 2:].sum() < 1e-5


# -- the cropper ---------------------------------------------------------------------------


class _FixedCropNetwork:
    """Stands in for the network (any runtime): records what it is given, answers one fixed crop."""

    runtime = "torch"

    def __init__(self, info, crop_xyxy_normalised):
        self.info = info
        self.crop = np.asarray([crop_xyxy_normalised], np.float32)
        self.calls = []

    def __call__(self, images, subjects, shapes=None):
        self.calls.append((images.copy(), subjects.copy()))
        g = self.info.image_size // 16
        b = images.shape[0]
        return np.repeat(self.crop, b, 0), np.full((b, g, g), 1.0 / (g * g), np.float32)


@pytest.fixture(scope="module")
def mask_cropper(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("mask-model")
    GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64, in_channels=4)).save_pretrained(d)
    return Cropper.from_pretrained(d, device="cpu")


def test_cropper_gives_the_network_the_subject_as_input_xyxy_and_maps_the_crop_back(mask_cropper):
    cropper = Cropper.__new__(Cropper)
    cropper.__dict__.update(mask_cropper.__dict__)
    # the network answers input (16, 24)-(48, 40), which is photo (100, 50)-(300, 150)
    fake = _FixedCropNetwork(mask_cropper.network.info, [16 / 64, 24 / 64, 48 / 64, 40 / 64])
    cropper.network = fake
    res = cropper.crop(Image.new("RGB", (400, 200), (90, 60, 30)), subject=(150, 25, 100, 125), keep_subject=False)
    x, subject = fake.calls[0]
    # subject photo (150, 25)-(250, 150) -> input x 150*0.16 = 24 .. 40, y 25*0.16+16 = 20 .. 40
    assert subject[0].tolist() == pytest.approx([24, 20, 40, 40])
    channel = x[0, 3]
    assert channel[20:40, 24:40].all() and channel.sum() == 16 * 20  # the mask channel marks the same box
    assert res.raw_box.xywh == pytest.approx((100, 50, 200, 100))
    assert res.box.xywh == pytest.approx((100, 50, 200, 100))
    assert res.subject.xywh == (150, 25, 100, 125)


def test_evaluation_feeds_the_subject_mask_to_mask_channel_models(mask_cropper, tmp_path, monkeypatch):
    """What the report scores is the crop made with the photo's segmentation, not with its box."""
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (120, 200, 3), dtype=np.uint8)).save(path)
    box = Box(20, 10, 120, 90)
    triangle = np.array([[20, 100], [140, 100], [20, 10]], np.float32)  # the lower-left half of the box
    photo = BenchmarkPhoto(
        "photo", path, [Box(10, 5, 150, 100)], subject=box, mask_polygon=triangle, mask_source="detection"
    )
    calls = []
    crop = mask_cropper.crop

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return crop(*args, **kwargs)

    monkeypatch.setattr(mask_cropper, "crop", spy)
    run = evaluate(Benchmark("toy", tmp_path, [photo]), ModelMethod(mask_cropper), progress=False)
    assert run.results[0].ok and len(calls) == 1
    given = calls[0].get("subject_mask")
    assert given is not None, "the model was given the box only"
    mask = photo.subject_mask(200, 120)
    assert 0.3 < mask.sum() / (120 * 90) < 0.7  # a triangle: clearly not the box
    np.testing.assert_array_equal(given, mask)
    # and the mask changes what the network does, so scoring without it would score another crop
    with_mask = crop(path, subject=box, subject_mask=mask, keep_subject=False)
    box_only = crop(path, subject=box, keep_subject=False)
    assert np.abs(with_mask.heatmap - box_only.heatmap).max() > 1e-4


# -- training views ------------------------------------------------------------------------


@pytest.mark.parametrize("frame", [Box(300, 400, 200, 100), Box(400, 300, 100, 200)])
def test_views_grow_to_twice_the_frames_long_side_either_way(frame):
    sampler = ViewSampler()  # max_scale 2: the view's long side is up to twice the frame's
    assert sampler.room(frame, 1000, 1000) == pytest.approx(2.0)
    rng = np.random.default_rng(0)
    longs = [max(v.w, v.h) for v, _ in (sampler.sample(frame, 1000, 1000, rng, invert=False) for _ in range(300))]
    assert max(longs) <= 400 and max(longs) > 380 and min(longs) < 220
