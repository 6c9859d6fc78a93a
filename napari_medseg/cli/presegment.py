"""``napari-medseg presegment``: pre-segment every case of a dataset into a mask folder."""

from __future__ import annotations

import sys

from napari_medseg.batch.runner import presegment_dataset
from napari_medseg.cli._common import (
    add_dataset_arguments,
    finite_float,
    non_negative_int,
    open_cases,
)
from napari_medseg.engines.base import ENGINES, engine_options

HELP = "pre-segment every case (U-Net, SAM, SAM 2.1 or a threshold) into OUT/<case id>.nii.gz"


def add_arguments(parser) -> None:
    add_dataset_arguments(parser, "pre-segment this case only")
    parser.add_argument("--engine", required=True, choices=tuple(ENGINES))
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (outside the source data)"
    )
    model = parser.add_argument_group("unet / sam / sam2")
    model.add_argument("--checkpoint", metavar="CKPT", help="model weights (.pt / .pth)")
    model.add_argument(
        "--variant",
        choices=("sam", "medsam", "sam2", "medsam2"),
        help="checkpoint family: medsam (sam engine), medsam2 (sam2 engine, 512 px)",
    )
    model.add_argument("--cache", metavar="DIR", help="SAM embedding cache folder")
    model.add_argument("--prompts", metavar="JSON", help="SAM prompts file")
    model.add_argument(
        "--device", help="auto (default: CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps"
    )
    thr = parser.add_argument_group("threshold")
    thr.add_argument(
        "--method",
        choices=("suv", "suv41", "otsu", "value"),
        help="default: suv for cases with a PET image, otsu otherwise",
    )
    thr.add_argument(
        "--threshold",
        type=finite_float,
        metavar="T",
        help="SUV or intensity threshold (SUV default 2.5)",
    )
    thr.add_argument(
        "--min-size",
        type=non_negative_int,
        metavar="N",
        help="drop components under N voxels (default 10)",
    )
    thr.add_argument(
        "--channel",
        metavar="NAME",
        help="image to threshold (default: PET for suv, else the first)",
    )
    thr.add_argument(
        "--no-fill-holes",
        dest="fill_holes",
        action="store_false",
        default=None,
        help="keep holes inside components",
    )
    run_ = parser.add_argument_group("batch")
    run_.add_argument(
        "--scheduler", metavar="ADDRESS", help="dask scheduler of an existing cluster"
    )
    run_.add_argument(
        "--workers",
        type=non_negative_int,
        metavar="N",
        help="local cluster workers; 0 runs inline without dask (default: inline below 16 cases "
        "or on 2 cores or fewer, else one per core)",
    )
    run_.add_argument(
        "--overwrite", action="store_true", help="redo cases whose mask already exists"
    )


def run(args) -> int:
    dataset, ids = open_cases(args)
    # Each CLI flag is named after the engine option it sets; the chosen engine's own are passed.
    options = {
        k: getattr(args, k)
        for k in engine_options(args.engine)
        if getattr(args, k, None) is not None
    }

    def on_case(cid: str, entry: dict) -> None:
        nonlocal n
        n += 1
        skipped = entry["status"] == "skipped"
        detail = entry.get("reason") or ("mask exists" if skipped else f"{entry['seconds']:.1f} s")
        print(f"[{n}/{len(ids)}] {cid}: {entry['status']} ({detail})", file=sys.stderr)

    n = 0
    summary = presegment_dataset(
        dataset.root,
        args.engine,
        options,
        args.out,
        ids,
        scheduler=args.scheduler,
        workers=args.workers,
        overwrite=args.overwrite,
        on_case=on_case,
    )
    print(
        f"{len(summary['done'])} done, {len(summary['skipped'])} skipped, "
        f"{len(summary['failed'])} failed; summary in {args.out}/summary.json"
    )
    return 1 if summary["failed"] else 0
