"""Benchmark SAM in napari-medseg against stock ``SamPredictor``, in the same run.

Measures, on 256x256 CT phantom slices:

1. embedding throughput: our batched path (``SamSession.embed``: batches, inference_mode,
   bf16/fp16 autocast on CUDA) against ``SamPredictor.set_image`` one slice at a time;
2. mask agreement: our masks (from the float16 cached embedding, autocast on GPU) against the
   stock fp32 predictor's, for a point and a box prompt per slice (target IoU >= 0.97);
3. prompt-to-mask latency with a cached embedding (target <= 50 ms on CPU), from memory and
   from the disk cache, against stock ``SamPredictor.predict``.

Usage::

    python benchmarks/bench_sam.py                      # random-weight vit_b, auto device
    python benchmarks/bench_sam.py --checkpoint sam_vit_b_01ec64.pth --device cuda --slices 64

Without ``--checkpoint`` the model is a random-weight vit_b
(``segment_anything.build_sam_vit_b(checkpoint=None)``): timings are those of the real
model; mask agreement is a stricter test on random weights (masks are noisier).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def load_model(args):
    from napari_medseg.engines.device import pick_device
    from napari_medseg.engines.sam_model import (
        LoadedSam,
        infer_config,
        load_sam,
        prepare,
    )

    device = pick_device(args.device)
    if args.checkpoint:
        return load_sam(args.checkpoint, device)
    from segment_anything import build_sam_vit_b

    torch.manual_seed(0)
    model = prepare(build_sam_vit_b(checkpoint=None).to(device))  # as load_sam prepares it
    config = infer_config(model.state_dict(), Path("random"))
    return LoadedSam(model, config, "random-vit-b-seed0", Path("random-vit_b"))


def phantom_stack(n: int, size: int) -> np.ndarray:
    from napari_medseg.core.model import Volume
    from napari_medseg.engines.windowing import default_mapping, sam_stack, source_channels
    from napari_medseg.synthetic.phantom import torso

    ct, _, _ = torso((max(n, 2) * 2, size, size), seed=1)
    ct = ct[n // 2 : n // 2 + n]  # slices through the organs
    sources = source_channels([Volume.from_array("CT", ct, modality="CT")])
    return sam_stack(sources, default_mapping(sources))[0]


def prompts(n: int, size: int):
    from napari_medseg.engines.sam_prompts import Prompt

    c = size / 2
    for z in range(n):
        yield Prompt(slice=z, points=[[c * 0.9, c * 0.6]], point_labels=[1])
        yield Prompt(slice=z, box=[c * 0.5, c * 0.3, c * 1.3, c * 1.0])


def stock_predict(predictor, prompt):
    pts = prompt.points[:, ::-1] if len(prompt.points) else None
    lab = prompt.point_labels if len(prompt.points) else None
    box = prompt.box[[1, 0, 3, 2]] if prompt.box is not None else None
    masks, scores, _ = predictor.predict(pts, lab, box, multimask_output=True)
    return masks[int(np.argmax(scores))]


def median_ms(fns: dict, repeats: int, device: str) -> dict:
    """Median milliseconds of each callable, run in turn so that a load change hits all alike."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            sync(device)
            times[name].append((time.perf_counter() - t) * 1000)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    from segment_anything import SamPredictor

    from napari_medseg.engines.sam import SamSession
    from napari_medseg.engines.sam_cache import EmbeddingCache

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--checkpoint", help="segment-anything checkpoint (default: random-weight vit_b)"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--slices", type=int, help="slices to embed (default: 2 on CPU, 32 on GPU)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--repeats", type=int, default=20, help="decoder latency repeats")
    args = p.parse_args()

    sam = load_model(args)
    device = str(sam.device)
    n = args.slices or (32 if device.startswith("cuda") else 2)
    stack = phantom_stack(n, args.size)
    print(
        f"model {sam.model_type} on {device}, {n} slices of {args.size}x{args.size}, "
        f"torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, load average {os.getloadavg()[0]:.1f}"
    )

    predictor = SamPredictor(sam.model)
    if device != "cpu":  # warm-up: CUDA kernels, allocator, autotuning
        predictor.set_image(stack[0])
        SamSession(sam, stack[:1], batch_size=args.batch_size, precision=args.precision).embed()
        sync(device)

    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(tmp, max_bytes=2**34)
        session = SamSession(
            sam, stack, cache, batch_size=args.batch_size, precision=args.precision
        )
        stock_feats = {}

        def stock(slices) -> None:
            for z in slices:
                predictor.set_image(stack[z])
                stock_feats[z] = predictor.features

        # Halves in A-B-B-A order, so that a change of machine load hits both alike.
        half = max(1, n // 2)
        runs = [(stock, range(half)), (session.embed, range(half)),
                (session.embed, range(half, n)), (stock, range(half, n))]  # fmt: skip
        spent = {stock: 0.0, session.embed: 0.0}
        for fn, slices in runs:
            t = time.perf_counter()
            fn(list(slices))
            sync(device)
            spent[fn] += time.perf_counter() - t
        stock_s, ours_s = spent[stock], spent[session.embed]
        print(
            f"embedding: stock set_image {n / stock_s:.3f} slices/s ({stock_s / n:.2f} s/slice), "
            f"ours batched {n / ours_s:.3f} slices/s ({ours_s / n:.2f} s/slice) "
            f"-> speed-up x{stock_s / ours_s:.2f}"
        )

        ious = []
        for prompt in prompts(n, args.size):
            predictor.features = stock_feats[prompt.slice]
            ref = stock_predict(predictor, prompt)
            ours = session.predict(prompt).mask
            ious.append((ref & ours).sum() / max(1, (ref | ours).sum()))
        print(
            f"mask agreement with stock fp32 ({len(ious)} prompts): IoU min {min(ious):.4f}, "
            f"mean {np.mean(ious):.4f} (target >= 0.97)"
        )

        point = next(prompts(1, args.size))
        predictor.features = stock_feats[0]
        session.predict(point)  # warm-up
        ms = median_ms(
            {
                "stock": lambda: stock_predict(predictor, point),
                "memory": lambda: session.predict(point),
                "disk": lambda: SamSession(sam, stack, cache).predict(point),  # a reopened case
            },
            args.repeats,
            device,
        )
        print(
            f"prompt-to-mask latency: ours {ms['memory']:.1f} ms (embedding in memory), "
            f"{ms['disk']:.1f} ms (reopened case, embedding read from the disk cache); "
            f"stock predict {ms['stock']:.1f} ms -> x{ms['stock'] / ms['memory']:.2f} "
            "(target <= 50 ms on CPU)"
        )
        print(
            f"cache: {cache.describe()} "
            f"({cache.size_bytes() / n / 2**20:.2f} MiB per slice, float16); "
            f"load average now {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
