"""Inference speed of the GenCrop network and of RoD-align (prints figures; no assertions).

    python benchmarks/bench_inference.py [--threads 2] [--dim 256] [--repeats 5]

Reference points measured for the original implementation on a 2-core CPU
(fp32, dim 256): mobilenetv2_100 59 ms/photo at batch 1 and 74 ms/photo at
batch 8, resnet50 194 ms/photo at batch 8, and its compiled RoD-align CPU
kernel 167 ms forward+backward for features 8x32x16x16 with 2,048 boxes.
"""

from __future__ import annotations

import argparse
import time

import torch

from gencrop.modeling import GenCrop, GenCropConfig
from gencrop.modeling.fusion import optimize_for_inference
from gencrop.modeling.rod_align import rod_align_avg


def timed(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_network(arch: str, dim: int, batch: int, repeats: int) -> float:
    torch.manual_seed(0)
    model = GenCrop(GenCropConfig(arch=arch, image_size=dim)).eval()
    model = optimize_for_inference(model, dim, 3)  # what Cropper runs
    x = torch.randn(batch, 3, dim, dim).contiguous(memory_format=torch.channels_last)
    s = torch.tensor([[dim * 0.3, dim * 0.2, dim * 0.7, dim * 0.9]] * batch)

    @torch.inference_mode()
    def run():
        model(x, s)

    return timed(run, repeats) / batch * 1000


def bench_rod_align(repeats: int, device: str = "cpu") -> float:
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(8, 32, 16, 16, generator=g).to(device).requires_grad_()
    xy = torch.rand(2048, 2, generator=g) * 200
    wh = torch.rand(2048, 2, generator=g) * 56 + 8
    rois = torch.cat([torch.arange(8).repeat_interleave(256)[:, None].float(), xy, xy + wh], 1).to(device)

    def run():
        feats.grad = None
        rod_align_avg(feats, rois, 5, 1 / 16).sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()

    return timed(run, repeats) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--archs", nargs="+", default=["mobilenetv2_100", "tf_efficientnet_lite0", "resnet50"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, dim {args.dim}, fp32, best of {args.repeats}")
    print(f"{'backbone':<24}{'batch 1 ms/photo':>18}{'batch 8 ms/photo':>18}")
    for arch in args.archs:
        b1 = bench_network(arch, args.dim, 1, args.repeats)
        b8 = bench_network(arch, args.dim, 8, args.repeats)
        print(f"{arch:<24}{b1:>18.1f}{b8:>18.1f}")
    ms = bench_rod_align(args.repeats)
    print(
        f"RoD-align avg 5x5, features 8x32x16x16, 2048 boxes, forward+backward: {ms:.2f} ms "
        f"({167 / ms:.0f}x faster than the original kernel's 167 ms)"
    )
    if torch.cuda.is_available():
        print(f"RoD-align on CUDA: {bench_rod_align(args.repeats, 'cuda'):.2f} ms")


if __name__ == "__main__":
    main()
