"""Slices per second of our batched U-Net inference against a naive one-slice-at-a-time loop.

Model: the published LGG network (3 channels in, 1 out, init_features 32, random weights),
slices of 256x256 as in the Kaggle LGG data. Baseline: each slice sent to the device alone,
float32, under ``torch.no_grad``. Ours: :func:`napari_medseg.engines.unet.predict_volume`
(``batch_size`` slices at a time, inference mode, bfloat16 autocast and pinned memory on
CUDA) at several batch sizes. All run in this process on the same input, interleaved
(A-B-C-C-B-A); medians, per-pair ratios and the agreement of the masks are printed.
Runs on the CPU and, when one is available, on the GPU.

    python benchmarks/bench_unet.py [--slices 16] [--size 256] [--batch-sizes 1 4 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from napari_medseg.engines.unet import predict_volume
from napari_medseg.engines.unet_model import UNet


def naive(model, x: np.ndarray, device: str) -> np.ndarray:
    """One slice per forward pass, float32: the loop a first script would write."""
    model = model.to(device).eval()
    out = []
    with torch.no_grad():
        for z in range(x.shape[1]):
            s = torch.from_numpy(np.ascontiguousarray(x[:, z][None])).to(device)
            out.append((torch.sigmoid(model(s))[0, 0] > 0.5).to(torch.uint8).cpu().numpy())
    return np.stack(out)


def bench(model, device: str, n: int, args) -> None:
    """Naive loop vs ours at each batch size, in A-B-..-B-A rounds: medians, per-pair ratios."""
    x = np.random.default_rng(0).normal(size=(3, n, args.size, args.size)).astype(np.float32)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    predict_volume(model, x[:, :2], batch_size=2, device=device)  # warm-up (kernels, allocator)
    naive(model, x[:, :2], device)
    runs = {"naive loop": lambda: naive(model, x, device)}
    for bs in args.batch_sizes:
        runs[f"batch {bs}"] = lambda bs=bs: predict_volume(model, x, batch_size=bs, device=device)
    times = {k: [] for k in runs}
    outs = {}
    order = list(runs)
    for _ in range(args.rounds):
        for key in order + order[::-1]:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            outs[key] = runs[key]()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[key].append(time.perf_counter() - start)
    print(f"{name}: {n} slices of {args.size}x{args.size}, load {os.getloadavg()[0]:.1f}")
    base = times["naive loop"]
    for key, ts in times.items():
        pairs = [b / t for b, t in zip(base, ts, strict=True)]
        agree = float(np.mean(outs[key] == outs["naive loop"]))
        print(
            f"  {key:>10}: {n / statistics.median(ts):7.1f} slices/s, "
            f"x{statistics.median(base) / statistics.median(ts):.2f} the loop "
            f"(pairs {min(pairs):.2f}-{max(pairs):.2f}), masks agree on {agree:.4%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gpu-slices", type=int, default=256, help="slices for the GPU run")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = UNet(3, 1, 32)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    bench(model, "cpu", args.slices, args)
    if torch.cuda.is_available():
        bench(model, "cuda", args.gpu_slices, args)


if __name__ == "__main__":
    main()
