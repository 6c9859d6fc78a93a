"""``napari-medseg train``: fine-tune (or train) the U-Net on curated masks."""

from __future__ import annotations

import sys

from napari_medseg.cli._common import (
    add_dataset_arguments,
    finite_float,
    open_cases,
    positive_int,
)

HELP = "fine-tune the U-Net on curated masks (patient-level split, best-Dice checkpoint)"


def add_arguments(parser) -> None:
    add_dataset_arguments(parser, "train on this case only")
    parser.add_argument(
        "--masks",
        metavar="DIR",
        help="curated masks <DIR>/<case id>.nii.gz (default: the dataset's own masks)",
    )
    parser.add_argument("--out", required=True, metavar="MODEL", help="checkpoint to write (.pt)")
    parser.add_argument("--checkpoint", metavar="CKPT", help="start from this model (fine-tuning)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--features", type=int, default=16, help="init_features of a new network (default 16)"
    )
    parser.add_argument(
        "--channel",
        metavar="NAME",
        action="append",
        help="input image of a new network (repeatable; default: all the case's images)",
    )
    parser.add_argument(
        "--val-fraction", type=finite_float, default=0.2, help="share of patients for validation"
    )
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument(
        "--lr", type=finite_float, help="learning rate (default 1e-3, 1e-4 when fine-tuning)"
    )
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--seed", type=int, default=0)


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = round(width * done / max(total, 1))
    return "#" * filled + "-" * (width - filled)


def run(args) -> int:
    from napari_medseg.engines.training import train_unet

    dataset, ids = open_cases(args)
    state = {"text": ""}

    def progress(done: int, total: int) -> None:
        print(
            f"\r[{_bar(done, total)}] {done}/{total} {state['text']}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def report(e: dict) -> None:
        state["text"] = (
            f"epoch {e['epoch']}/{e['epochs']} loss {e['loss']:.3f} val Dice {e['val_dice']:.3f}"
        )
        print(f"\r{state['text']} (best {e['best_dice']:.3f})".ljust(80), file=sys.stderr)

    result = train_unet(
        dataset,
        ids,
        args.masks,
        args.out,
        epochs=args.epochs,
        checkpoint=args.checkpoint,
        init_features=args.features,
        channels=args.channel,
        val_fraction=args.val_fraction,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        seed=args.seed,
        progress=progress,
        report=report,
    )
    if result.skipped:
        print(f"skipped (no curated mask): {', '.join(result.skipped)}", file=sys.stderr)
    print(f"train: {', '.join(result.train_ids)}; validation: {', '.join(result.val_ids)}")
    print(
        f"best validation Dice {result.best_dice:.3f} at epoch {result.best_epoch}; "
        f"model in {args.out}"
    )
    return 0
