"""What a user feels with SAM ViT-B against SAM 2.1 (Hiera-T/S), on the same 155x240x240 case.

1. First click on a fresh case: read the NIfTI, window it into SAM's 8-bit stack, embed the
   prompted slice, decode one box (no cache).
2. One box to a followed object: ViT-B embeds every slice and decodes each (our SAM 1
   propagation, prompts from the neighbour's mask); SAM 2.1 propagates with its video memory
   (``Sam2Track``), embedding each slice when it reaches it. Over ``--slices`` slices around
   the prompted one (the object is forced to run through all of them: ``min_area=0``).
3. Prompt-to-mask latency with the slice's features in memory: ours against the stock
   ``SamPredictor`` / ``SAM2ImagePredictor``.

Models alternate A-B-B-A per measurement; medians and per-pair ratios are printed with the
load average. Random weights (timing is that of the real architectures; masks are noise).

Usage::

    python benchmarks/bench_sam2.py                         # CPU: vit_b vs hiera_t, 3 slices
    python benchmarks/bench_sam2.py --models vit_b,hiera_t,hiera_s --slices 155 --rounds 2
    python benchmarks/bench_sam2.py --device cuda --slices 155     # whole volume on a GPU
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

SHAPE = (155, 240, 240)
BOX = [80, 70, 170, 160]  # y0, x0, y1, x1 on the prompted slice
CONFIGS = {
    "hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "hiera_s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "hiera_b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def load(name: str, device: str):
    """A random-weight model: ``vit_b`` (SAM 1) or a SAM 2.1 Hiera size."""
    torch.manual_seed(0)
    if name == "vit_b":
        from segment_anything import build_sam_vit_b

        from napari_medseg.engines.sam_model import LoadedSam, infer_config, prepare

        model = prepare(build_sam_vit_b(checkpoint=None).to(device))
        return LoadedSam(model, infer_config(model.state_dict(), Path("r")), "random", Path("r"))
    from napari_medseg.engines.sam2_model import LoadedSam2, build_model

    model = build_model(CONFIGS[name], []).to(device)
    return LoadedSam2(model, name, "sam2", CONFIGS[name], [], "random", Path("random"))


def write_case(folder: Path) -> Path:
    import nibabel as nib

    from napari_medseg.synthetic.phantom import torso

    ct, _, _ = torso(SHAPE, seed=1)
    path = folder / "case_0001.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(ct.transpose(2, 1, 0)), np.eye(4)), path)
    return path


def is_sam1(sam) -> bool:
    from napari_medseg.engines.sam_model import LoadedSam

    return isinstance(sam, LoadedSam)


def session_for(sam, stack):
    from napari_medseg.engines.sam import SamSession
    from napari_medseg.engines.sam2 import Sam2Session

    return SamSession(sam, stack) if is_sam1(sam) else Sam2Session(sam, stack)


def first_click(sam, path: Path, z: int, device: str) -> float:
    from napari_medseg.engines.sam import case_stack
    from napari_medseg.engines.sam_prompts import Prompt
    from napari_medseg.io.detect import open_dataset

    t = time.perf_counter()
    ds = open_dataset(path)
    stack, _ = case_stack(ds.load_case(ds.case_ids()[0]))
    session_for(sam, stack).predict(Prompt(slice=z, box=BOX))
    sync(device)
    return time.perf_counter() - t


def follow(sam, stack, z: int, device: str) -> float:
    """One box on slice ``z`` to masks on every slice of ``stack`` (a fresh session)."""
    from napari_medseg.engines.sam import propagate
    from napari_medseg.engines.sam2 import Sam2Track
    from napari_medseg.engines.sam_prompts import Prompt

    session = session_for(sam, stack)
    t = time.perf_counter()
    if is_sam1(sam):
        session.embed()  # ViT-B: every slice is embedded, then masks follow slice to slice
        first = session.predict(Prompt(slice=z, box=BOX)).mask
        first[BOX[0] : BOX[2], BOX[1] : BOX[3]] = True  # random weights: keep it going
        propagate(session.predict, z, first, len(stack), min_score=-1, min_area=0)
    else:
        track = Sam2Track(session)
        track.add(Prompt(slice=z, label=1, box=BOX))
        track.propagate(min_area=0)
    sync(device)
    return time.perf_counter() - t


def latency_ms(sam, stack, z: int, repeats: int, device: str) -> tuple[float, float]:
    """Median ms of our decode and the stock predictor's, same prompt, features in memory."""
    from napari_medseg.engines.sam_prompts import Prompt

    session = session_for(sam, stack)
    prompt = Prompt(slice=z, box=BOX)
    session.predict(prompt)
    xyxy = np.array(BOX, float)[[1, 0, 3, 2]]
    if is_sam1(sam):
        from segment_anything import SamPredictor

        stock = SamPredictor(sam.model)
    else:
        from napari_medseg.engines.sam2_model import image_predictor

        stock = image_predictor(sam.model)
    stock.set_image(stack[z])
    ours, theirs = [], []
    for _ in range(repeats):
        runs = ((lambda: session.predict(prompt), ours), (lambda: stock.predict(box=xyxy), theirs))
        for fn, out in runs:
            t = time.perf_counter()
            fn()
            sync(device)
            out.append((time.perf_counter() - t) * 1000)
    return statistics.median(ours), statistics.median(theirs)


def abba(fn, a: str, b: str, rounds: int) -> dict:
    """``fn(name)`` timed in A-B-B-A order ``rounds`` times: per-model lists of seconds."""
    times = {a: [], b: []}
    for _ in range(rounds):
        for name in (a, b, b, a):
            times[name].append(fn(name))
    return times


def report(what: str, times: dict, base: str) -> None:
    meds = {k: statistics.median(v) for k, v in times.items()}
    parts = [f"{k} {meds[k]:.2f} s" for k in times]
    for k in times:
        if k != base:
            pairs = [x / y for x, y in zip(times[base], times[k], strict=True)]
            parts.append(
                f"{base}/{k} x{meds[base] / meds[k]:.2f} (pairs {min(pairs):.2f}-{max(pairs):.2f})"
            )
    print(f"{what}: " + ", ".join(parts) + f"; load {os.getloadavg()[0]:.1f}")


def main() -> None:
    from napari_medseg.engines.device import pick_device

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="vit_b,hiera_t", help="vit_b and SAM 2.1 Hiera sizes")
    p.add_argument("--device", default="auto")
    p.add_argument("--slices", type=int, default=3, help="slices to follow (155: whole volume)")
    p.add_argument("--rounds", type=int, default=1, help="A-B-B-A rounds")
    p.add_argument("--repeats", type=int, default=15, help="latency repeats")
    args = p.parse_args()
    device = pick_device(args.device)
    names = args.models.split(",")
    models = {name: load(name, device) for name in names}
    z = SHAPE[0] // 2
    print(
        f"{', '.join(names)} on {device}, random weights, case {SHAPE}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = write_case(Path(tmp))
        from napari_medseg.engines.sam import case_stack
        from napari_medseg.io.detect import open_dataset

        ds = open_dataset(path)
        stack, _ = case_stack(ds.load_case(ds.case_ids()[0]))
        lo = max(0, z - args.slices // 2)
        part = stack[lo : lo + args.slices]
        base = names[0]
        for other in names[1:]:
            times = abba(
                lambda n: first_click(models[n], path, z, device), base, other, args.rounds
            )
            report("first click (read + window + embed + decode)", times, base)
            times = abba(
                lambda n: follow(models[n], part, z - lo, device), base, other, args.rounds
            )
            report(f"one box -> {len(part)} slices", times, base)
            n = len(part)
            for name, t in times.items():
                per = statistics.median(t) / n
                print(
                    f"  {name}: {per:.2f} s/slice -> {per * 155 / 60:.1f} min for 155 slices, "
                    f"{per * 50 / 60:.1f} min for 50 (extrapolated)"
                )
        for name in names:
            ours, stock = latency_ms(models[name], stack, z, args.repeats, device)
            print(
                f"prompt latency {name}: ours {ours:.1f} ms, stock predictor {stock:.1f} ms "
                f"(median of {args.repeats}); load {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
