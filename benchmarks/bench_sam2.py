"""What a user feels with SAM ViT-B against SAM 2.1 (Hiera-T/S), on the same 155x240x240 case.

1. First click on a fresh case: read the NIfTI, window it into SAM's 8-bit stack, embed the
   prompted slice, decode one box (no cache).
2. One box to a followed object: ViT-B embeds every slice and decodes each (our SAM 1
   propagation, prompts from the neighbour's mask); SAM 2.1 propagates with its video memory
   (``Sam2Track``), embedding each slice when it reaches it. Over ``--slices`` slices around
   the prompted one (the object is forced to run through all of them: ``min_area=0``).
3. SAM 2.1 propagation, ours against the package's own ``SAM2VideoPredictor`` (``init_state``
   on the same preprocessed frames, the same box, forward then backward): same work, same
   masks; ours encodes ``--batch-size`` slices per encoder call (default: 1 on CPU, more on
   a GPU).
4. Prompt-to-mask latency with the slice's features in memory: ours against the stock
   ``SamPredictor`` / ``SAM2ImagePredictor``.

Every model is loaded and warmed up (one untimed first click) before timing: "first click"
is that of a fresh case with the model already loaded, as in the panel after the first case.
``hiera_t512`` is MedSAM2's configuration (SAM 2.1 Hiera-T at 512 px).

Models alternate A-B-B-A per measurement; medians and per-pair ratios are printed with the
load average. Random weights (timing is that of the real architectures; masks are noise).

Usage::

    python benchmarks/bench_sam2.py                         # CPU: vit_b vs hiera_t, 3 slices
    python benchmarks/bench_sam2.py --models vit_b,hiera_t,hiera_s --slices 155 --rounds 2
    python benchmarks/bench_sam2.py --models hiera_t,hiera_t512 --slices 20
    python benchmarks/bench_sam2.py --models hiera_t --slices 155 --no-reference  # one model
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
CONFIGS = {  # name: (package config, input size)
    "hiera_t": ("configs/sam2.1/sam2.1_hiera_t.yaml", 1024),
    "hiera_t512": ("configs/sam2.1/sam2.1_hiera_t.yaml", 512),  # MedSAM2
    "hiera_s": ("configs/sam2.1/sam2.1_hiera_s.yaml", 1024),
    "hiera_b+": ("configs/sam2.1/sam2.1_hiera_b+.yaml", 1024),
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
    from napari_medseg.engines.sam2_model import (
        LoadedSam2,
        build_model,
        prepare,
        size_overrides,
        warm_up,
    )

    config, size = CONFIGS[name]
    overrides = size_overrides(size) if size != 1024 else []
    model = prepare(build_model(config, overrides).to(device))
    loaded = LoadedSam2(model, name, "sam2", config, overrides, "random", Path("random"))
    warm_up(loaded)  # prepared and warmed up as load_sam2 does
    return loaded


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
    from napari_medseg.engines.sam_prompts import Prompt

    if not is_sam1(sam):  # SAM 2.1: its video memory, each slice encoded when reached
        return propagate_seconds(sam, stack, z, device)
    session = session_for(sam, stack)
    t = time.perf_counter()
    session.embed()  # ViT-B: every slice is embedded, then masks follow slice to slice
    first = session.predict(Prompt(slice=z, box=BOX)).mask
    first[BOX[0] : BOX[2], BOX[1] : BOX[3]] = True  # random weights: keep it going
    propagate(session.predict, z, first, len(stack), min_score=-1, min_area=0)
    sync(device)
    return time.perf_counter() - t


def stock_video_predictor(sam):
    """The package's own ``SAM2VideoPredictor`` with ``sam``'s weights."""
    from napari_medseg.engines.sam2_model import build_model

    ref = build_model(sam.config, sam.overrides, tracker=False).to(sam.device)
    ref.load_state_dict(sam.model.state_dict())
    return ref


def stock_state(ref, stack):
    """``ref.init_state`` on ``stack``: its frames preprocessed by the package's
    ``SAM2Transforms`` (no JPEG round trip), the first frame encoded, as the package does."""
    import sam2.sam2_video_predictor as svp
    from sam2.utils.transforms import SAM2Transforms

    tf = SAM2Transforms(ref.image_size, 0.0)
    frames = torch.stack([tf(im) for im in stack])
    load_frames = svp.load_video_frames
    svp.load_video_frames = lambda **kw: (frames, *stack.shape[1:3])
    try:
        return ref.init_state("in-memory")
    finally:
        svp.load_video_frames = load_frames


def propagate_seconds(sam, stack, z: int, device: str, stock=None, batch_size=None) -> float:
    """One box on slice ``z``, propagated forward then backward through ``stack``, by ours
    or by the ``stock`` predictor."""
    from napari_medseg.engines.sam2 import Sam2Session, Sam2Track
    from napari_medseg.engines.sam_prompts import Prompt

    t = time.perf_counter()
    if stock is not None:
        state = stock_state(stock, stack)
        stock.add_new_points_or_box(state, z, 1, box=np.array(BOX, float)[[1, 0, 3, 2]])
        for reverse in (False, True):
            for _ in stock.propagate_in_video(state, start_frame_idx=z, reverse=reverse):
                pass
    else:
        track = Sam2Track(Sam2Session(sam, stack, batch_size=batch_size))
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


def per_slice(times: dict, n: int) -> None:
    for name, t in times.items():
        per = statistics.median(t) / n
        print(
            f"  {name}: {per:.2f} s/slice -> {per * 155 / 60:.1f} min for 155 slices, "
            f"{per * 50 / 60:.1f} min for 50 (extrapolated)"
        )


def main() -> None:
    from napari_medseg.engines.device import pick_device

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="vit_b,hiera_t", help="vit_b and SAM 2.1 Hiera sizes")
    p.add_argument("--device", default="auto")
    p.add_argument("--slices", type=int, default=3, help="slices to follow (155: whole volume)")
    p.add_argument("--rounds", type=int, default=1, help="A-B-B-A rounds")
    p.add_argument("--repeats", type=int, default=15, help="latency repeats")
    p.add_argument("--batch-size", type=int, help="SAM 2.1 slices per encoder call")
    p.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the comparison with the package's SAM2VideoPredictor (long volumes)",
    )
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
        for name in names:  # untimed: the process's first-call costs are not a fresh case's
            first_click(models[name], path, z, device)
        if len(names) == 1:  # no model to compare with: the time to follow one box
            times = {base: [follow(models[base], part, z - lo, device) for _ in range(args.rounds)]}
            report(f"one box -> {len(part)} slices", times, base)
            per_slice(times, len(part))
        for other in names[1:]:
            times = abba(
                lambda n: first_click(models[n], path, z, device), base, other, args.rounds
            )
            report("first click (read + window + embed + decode)", times, base)
            times = abba(
                lambda n: follow(models[n], part, z - lo, device), base, other, args.rounds
            )
            report(f"one box -> {len(part)} slices", times, base)
            per_slice(times, len(part))
        for name in (n for n in names if n != "vit_b" and not args.no_reference):
            stock = stock_video_predictor(models[name])
            times = abba(
                lambda kind, m=models[name], ref=stock: propagate_seconds(
                    m, part, z - lo, device, ref if kind == "stock" else None, args.batch_size
                ),
                "stock",
                "ours",
                args.rounds,
            )
            what = f"{name} propagation through {len(part)} slices vs SAM2VideoPredictor"
            report(what, times, "stock")
        for name in names:
            ours, stock = latency_ms(models[name], stack, z, args.repeats, device)
            print(
                f"prompt latency {name}: ours {ours:.1f} ms, stock predictor {stock:.1f} ms "
                f"(median of {args.repeats}); load {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
