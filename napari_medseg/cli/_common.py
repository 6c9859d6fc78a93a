"""Argument helpers shared by the subcommands: the same PATH and case ids everywhere."""

from __future__ import annotations

import argparse
import json
import math
import sys

from napari_medseg.core.errors import ReadError
from napari_medseg.core.model import Dataset
from napari_medseg.io.detect import open_dataset


def add_dataset_arguments(
    parser: argparse.ArgumentParser, case_help: str = "only this case id"
) -> None:
    parser.add_argument("path", metavar="PATH", help="dataset folder, archive or image file")
    parser.add_argument("--case", metavar="ID", action="append", help=case_help + " (repeatable)")


def selected_cases(dataset: Dataset, case_ids: list[str] | None) -> list[str]:
    """The requested case ids in dataset order, or all; an unknown id is an error."""
    all_ids = dataset.case_ids()
    if not case_ids:
        return all_ids
    known = set(all_ids)
    for cid in case_ids:
        if cid not in known:
            raise ReadError(f"no case {cid!r} (the dataset has {len(all_ids)} cases)", dataset.root)
    return [c for c in all_ids if c in set(case_ids)]


def open_cases(args) -> tuple[Dataset, list[str]]:
    dataset = open_dataset(args.path)
    return dataset, selected_cases(dataset, args.case)


def finite(obj):
    """``obj`` with NaN and infinities replaced by None (``null``): JSON has no such numbers."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def print_json(obj) -> None:
    json.dump(finite(obj), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (no nan, inf)."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value
