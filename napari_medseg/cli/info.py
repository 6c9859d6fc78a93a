"""``napari-medseg info``: what a dataset holds, as text or JSON."""

from __future__ import annotations

import sys

from napari_medseg.cli._common import add_dataset_arguments, open_cases, print_json
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.summary import describe_case

HELP = "list the cases of a dataset with their images, masks and boxes"


def add_arguments(parser) -> None:
    add_dataset_arguments(parser, "report this case only, with voxel statistics")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args) -> int:
    dataset, ids = open_cases(args)
    stats = bool(args.case)
    cases, failed = [], []
    for cid in ids:
        try:
            cases.append(describe_case(dataset.load_case(cid), stats=stats))
        except MedsegError as exc:
            failed.append({"id": cid, "error": str(exc)})
            print(f"napari-medseg info: case {cid}: {exc}", file=sys.stderr)
    report = {"format": dataset.format, "cases": cases}
    if failed:
        report["failed"] = failed
    if args.json:
        print_json(report)
    else:
        print(f"{dataset.root}: {dataset.format}, {len(ids)} cases")
        for c in cases:
            imgs = ", ".join(
                f"{i['name']} {i['modality']} {'x'.join(map(str, i['shape']))}" for i in c["images"]
            )
            masks = (
                "; ".join(f"{m['name']} {sorted(m['labels'].values())}" for m in c["masks"])
                or "no mask"
            )
            print(
                f"  {c['id']}: {imgs} | {masks}" + (f" | {c['boxes']} boxes" if c["boxes"] else "")
            )
            for i in c["images"]:
                if "stats" in i:
                    print(
                        f"    {i['name']}: "
                        + " ".join(f"{k} {v:.4g}" for k, v in i["stats"].items())
                    )
            for m in c["masks"]:
                if "voxels" in m:
                    print(f"    {m['name']} voxels: {m['voxels']}")
            for problem in c["problems"]:
                print(f"    problem: {problem}")
    return 1 if failed and not cases else 0
