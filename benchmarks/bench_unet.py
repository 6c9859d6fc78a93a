"""Slices per second of our batched U-Net inference against a naive one-slice-at-a-time loop.

Model: the published LGG network (3 channels in, 1 out, init_features 32, random weights),
slices of 256x256 as in the Kaggle LGG data. Baseline: each slice sent to the device alone,
float32, under ``torch.no_grad``. Ours: :func:`napari_medseg.engines.unet.predict_volume`
(``batch_size`` slices at a time, inference mode, bfloat16 autocast and pinned memory on
CUDA). Both run in this process on the same input; the agreement of their masks is printed.
Runs on the CPU and, when one is available, on the GPU.

    python benchmarks/bench_unet.py [--slices 16] [--size 256] [--batch-size 16] [--repeat 2]
"""

from __future__ import annotations

import argparse
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


def timed(fn, repeat: int, device: str) -> tuple[float, np.ndarray]:
    best, result = float("inf"), None
    for _ in range(repeat):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench(model, device: str, n: int, args) -> None:
    x = np.random.default_rng(0).normal(size=(3, n, args.size, args.size)).astype(np.float32)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    predict_volume(model, x[:, :2], batch_size=2, device=device)  # warm-up (kernels, allocator)
    naive(model, x[:, :2], device)
    t_naive, ref = timed(lambda: naive(model, x, device), args.repeat, device)
    t_ours, ours = timed(
        lambda: predict_volume(model, x, batch_size=args.batch_size, device=device),
        args.repeat,
        device,
    )
    agree = float(np.mean(ref == ours))
    print(f"{name}: {n} slices of {args.size}x{args.size}, batch {args.batch_size}")
    print(f"  naive loop   {n / t_naive:8.1f} slices/s")
    print(
        f"  batched      {n / t_ours:8.1f} slices/s   speed-up x{t_naive / t_ours:.2f}"
        f"   masks agree on {agree:.4%} of pixels"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2)
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
