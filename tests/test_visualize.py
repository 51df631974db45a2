"""The heatmap shows what decided the crop: the subject cells' weights as the network used them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gencrop.data.letterbox import Letterbox
from gencrop.geometry import Box
from gencrop.visualize import (
    cell_weights,
    cells_on_photo,
    colormap,
    crop_visualization,
    heatmap_rgba,
    legend,
    overlay,
    subject_cells,
)

DIM, GRID = 256, 16  # the bundled model's input and cell grid (stride 16)


def original_weights(logits: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """The research code's formula, written out: softmax(logits * mask / mask.sum()) over all cells."""
    m = cells.astype(np.float64) / (cells.sum() + 1e-4)
    z = np.exp(logits * m - (logits * m).max())
    return z / z.sum()


def test_subject_cells_follow_the_networks_rule():
    torch = pytest.importorskip("torch")
    from gencrop.modeling.gencrop import subject_cell_mask

    rng = np.random.default_rng(0)
    for _ in range(200):
        x1, y1 = rng.uniform(-40, 250, 2)
        box = Box.from_xyxy(x1, y1, x1 + rng.uniform(1, 200), y1 + rng.uniform(1, 120))
        want = subject_cell_mask(torch.tensor([box.xyxy], dtype=torch.float32), GRID)[0].numpy() > 0
        assert np.array_equal(subject_cells(box, GRID).ravel(), want), box


def test_heatmap_is_highest_where_the_weights_are():
    # A wide photo; the subject covers input cells rows 6-9, columns 2-5 (input pixels 32..96, 96..160).
    lb = Letterbox(800, 400, DIM)  # input: 256 x 128 photo band, offset y 64
    subject_input = Box.from_xyxy(32, 96, 96, 160)
    cells = subject_cells(subject_input, GRID)
    assert cells.sum() == 16 and cells[6:10, 2:6].all()
    logits = np.full((GRID, GRID), -3.0)
    logits[8, 4] = 40.0  # the subject cell the model scores best
    weights = original_weights(logits, cells)
    # what readers were shown before: the outside cells, at a fixed 1/256-ish, outweigh every subject cell
    assert weights[~cells].min() > weights[cells & (logits < 0)].max()
    w = cell_weights(weights, subject_input)
    assert np.array_equal(w.scored, cells)
    assert w.share == pytest.approx(weights[cells].sum())
    assert "carry" in w.caption() and f"{w.share:.0%}" in w.caption()

    photo = Image.new("RGB", (800, 400), (128, 128, 128))
    pic = np.asarray(overlay(photo, heatmap=w, letterbox=lb), np.int32)
    # the top cell (row 8, column 4) is input pixels x 64..80, y 128..144: photo x 200..250, y 200..250
    top = colormap(np.array(1.0)).astype(np.int32) * 0.5 + 128 * 0.5
    assert np.abs(pic[225, 225] - top).max() <= 1
    reddest = np.unravel_index(np.argmax(pic[..., 0] - pic[..., 2]), pic.shape[:2])
    assert 200 <= reddest[0] < 250 and 200 <= reddest[1] < 250
    # the cells the scores do not weight are not coloured at all
    assert (pic[20, 700] == 128).all() and (pic[380, 20] == 128).all()


def test_restricted_weights_put_the_whole_crop_on_the_subject():
    subject_input = Box(100, 40, 60, 100)
    cells = subject_cells(subject_input, GRID)
    weights = np.zeros((GRID, GRID))
    weights[cells] = np.linspace(1, 2, cells.sum())
    weights /= weights.sum()
    w = cell_weights(weights, subject_input)
    assert w.share == pytest.approx(1.0) and "no weight" in w.caption()
    rel = w.relative()
    assert np.nanmax(rel) == 1.0 and np.isnan(rel[~cells]).all()
    rgba = heatmap_rgba(w)
    assert (rgba[..., 3][cells] == 255).all() and (rgba[..., 3][~cells] == 0).all()


def test_a_model_weighting_every_cell_is_drawn_everywhere():
    weights = np.random.default_rng(1).uniform(1, 2, (GRID, GRID))
    weights /= weights.sum()
    w = cell_weights(weights, Box(10, 10, 30, 30))
    assert w.scored.all() and not np.isnan(w.relative()).any()
    assert w.relative().max() == 1.0


def test_cells_land_on_the_photo_pixels_they_cover():
    lb = Letterbox(300, 600, 64)  # tall: input band x 16..48, 4 x 4 cells of 16 px
    grid = np.arange(16, dtype=np.float32).reshape(4, 4)
    on = cells_on_photo(grid, lb)
    assert on.shape == (600, 300)
    # photo x 0..150 -> input x 16..32 (column 1); y 0..150 -> input y 0..16 (row 0)
    assert on[10, 10] == grid[0, 1] and on[599, 299] == grid[3, 2] and on[300, 160] == grid[2, 2]


def test_legend_says_in_words_what_the_colours_mean():
    caption = "heatmap: each subject cell's weight in the crop, relative to the top cell"
    plain, worded = np.asarray(legend(600)), np.asarray(legend(600, heatmap=caption))
    assert worded.shape[0] > plain.shape[0]
    text_rows = worded[plain.shape[0] :]
    assert (text_rows.min(axis=2) < 80).any()  # the caption is written below the key


def test_crop_visualization_names_the_found_subject_and_the_heatmap():
    from gencrop.inference import CropResult

    subject = Box(300, 150, 150, 200)
    lb = Letterbox(800, 600, DIM)
    cells = subject_cells(lb.to_input(subject), GRID)
    logits = np.where(cells, np.arange(GRID * GRID).reshape(GRID, GRID) / 10, 0.0)
    result = CropResult(
        box=Box(200, 100, 400, 400),
        raw_box=Box(200, 100, 400, 400),
        subject=subject,
        heatmap=original_weights(logits, cells),
        size=(800, 600),
        subject_source="detection",
        subject_kept=True,
        subject_class="person",
        subject_score=0.87,
    )
    photo = Image.new("RGB", (800, 600), (90, 90, 90))
    pic = np.asarray(crop_visualization(photo, result, DIM))
    panels_height = 360
    key = pic[panels_height:]
    assert key.shape[0] > 60  # the key and at least one line of caption
    assert (key.min(axis=2) < 60).sum() > 200  # written text
