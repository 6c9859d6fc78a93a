"""Argument helpers shared by the subcommands: the same PATH and case ids everywhere."""

from __future__ import annotations

import argparse
import json
import sys

from napari_medseg.core.errors import ReadError
from napari_medseg.core.model import Case, Dataset
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


def load_case(dataset: Dataset, case_id: str) -> Case:
    return dataset.load_case(case_id)


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")
