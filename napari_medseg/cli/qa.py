"""``napari-medseg qa``: check masks and compare them with a reference; CSV + HTML report."""

from __future__ import annotations

import sys
from pathlib import Path

from napari_medseg.cli._common import add_dataset_arguments, finite_float, open_cases
from napari_medseg.core.atomic import make_output_dir
from napari_medseg.core.errors import MedsegError
from napari_medseg.review.qa import QAOptions, run_qa
from napari_medseg.review.report import run_info, write_report

HELP = "check masks (<DIR>/<case id>.nii.gz), compare them with a reference: report.csv/.html/.json"


def add_arguments(parser) -> None:
    add_dataset_arguments(parser)
    parser.add_argument(
        "--masks", required=True, metavar="DIR", help="folder of <case id>.nii.gz masks"
    )
    parser.add_argument(
        "--reference", metavar="DIR", help="reference masks (default: the dataset's own masks)"
    )
    parser.add_argument(
        "--out", required=True, metavar="REPORTDIR", help="where report.csv and report.html go"
    )
    parser.add_argument(
        "--min-component-ml",
        type=finite_float,
        default=QAOptions.min_component_ml,
        help="components smaller than this (ml) are flagged tiny (default %(default)s)",
    )
    parser.add_argument(
        "--jump-factor",
        type=finite_float,
        default=QAOptions.jump_factor,
        help="flag neighbouring slices whose areas differ by more (default %(default)s)",
    )
    parser.add_argument(
        "--min-dice",
        type=float,
        default=QAOptions.min_dice,
        help="flag labels whose Dice against the reference is lower (default %(default)s)",
    )
    parser.add_argument(
        "--max-volume-diff",
        type=float,
        default=QAOptions.max_volume_diff,
        help="flag labels whose volume differs from the reference's by more than this "
        "fraction of it (default %(default)s)",
    )
    parser.add_argument(
        "--single",
        metavar="LABEL",
        action="append",
        type=int,
        help="label id expected to be one connected component (repeatable)",
    )


def run(args) -> int:
    dataset, ids = open_cases(args)
    masks = Path(args.masks)
    if not masks.is_dir():
        raise MedsegError("no such masks folder", masks)
    if args.reference and not Path(args.reference).is_dir():
        raise MedsegError("no such reference folder", args.reference)
    out = make_output_dir(args.out, dataset.root)
    options = QAOptions(
        min_component_ml=args.min_component_ml,
        jump_factor=args.jump_factor,
        single=frozenset(args.single or ()),
        min_dice=args.min_dice,
        max_volume_diff=args.max_volume_diff,
    )
    results = run_qa(dataset, masks, ids, args.reference, options)
    write_report(results, out, run=run_info(dataset.root, masks, args.reference, options))
    flagged = [r for r in results if r.flags]
    for r in flagged:
        where = f" (slice {r.first_slice})" if r.first_slice is not None else ""
        print(
            f"  {r.case}: {', '.join(dict.fromkeys(f.name for f in r.flags))}{where}",
            file=sys.stderr,
        )
    print(
        f"{len(results)} cases, {len(flagged)} flagged: {out / 'report.csv'}, {out / 'report.html'}"
    )
    return 0
