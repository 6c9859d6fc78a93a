"""``napari-medseg export``: masks as CVAT Segmentation mask 1.1, NIfTI (source grid) or COCO."""

from __future__ import annotations

import sys
from pathlib import Path

from napari_medseg.cli._common import add_dataset_arguments, open_cases, print_json
from napari_medseg.cli.pacs import add_server_arguments, server_from_args
from napari_medseg.core.atomic import check_output_dir
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap_store import load_edited_case
from napari_medseg.export import FORMATS, export_masks, item_from_case
from napari_medseg.formats.cvat import is_cvat_export
from napari_medseg.formats.slices import AXES
from napari_medseg.io.masks import mask_path

HELP = "export masks as CVAT Segmentation mask 1.1, NIfTI (source grid), COCO RLE, DICOM SEG or 3D Slicer .seg.nrrd"


def add_arguments(parser) -> None:
    add_dataset_arguments(parser, "export this case")
    parser.add_argument("--format", choices=FORMATS, required=True, help="output format")
    parser.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        help="cvat: the export root (DIR/labelmap.txt); nifti: DIR/<case id>.nii.gz; "
        "coco: DIR/instances_default.json; dicom-seg: DIR/<case id>.seg.dcm; "
        "slicer: DIR/<case id>.seg.nrrd",
    )
    parser.add_argument(
        "--masks",
        metavar="DIR",
        help="export these curated masks (<case id>.nii.gz, or a CVAT export) "
        "instead of the dataset's own",
    )
    parser.add_argument(
        "--zip", action="store_true", help="cvat: write DIR.zip instead of a folder"
    )
    parser.add_argument(
        "--axis", choices=list(AXES), default="axial", help="slicing axis of 3D volumes"
    )
    parser.add_argument(
        "--components",
        choices=("2d", "3d"),
        default="2d",
        help="objects without instance ids: connected components per slice or in 3D",
    )
    parser.add_argument(
        "--images", action="store_true", help="cvat: also write JPEGImages/ (8-bit slices)"
    )
    parser.add_argument(
        "--suffix",
        choices=(".nii.gz", ".mha", ".nrrd", "native"),
        default=".nii.gz",
        help="nifti: file type of the masks (native: MHA/NRRD for sources in those formats)",
    )
    parser.add_argument(
        "--derive-series",
        action="store_true",
        help="dicom-seg: for a NIfTI/MHA/NRRD-sourced case, also write a derived DICOM series "
        "(DIR/<case id>_series/) for the SEG to reference",
    )
    parser.add_argument(
        "--compress",
        action="store_true",
        help="dicom-seg: JPEG 2000 lossless frames (allowed for BINARY SEG; not every viewer reads it)",
    )
    parser.add_argument(
        "--send",
        metavar="URL",
        help="dicom-seg: also store the SEG (and a derived series) on this DICOMweb server (STOW-RS)",
    )
    add_server_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")


def _has_mask(case, masks: str | None) -> bool:
    """Whether the case has a mask to export (without ``--case``, cases without one are skipped)."""
    if masks is None:
        return bool(case.masks)
    if is_cvat_export(masks):
        return True  # a CVAT export: a case missing from it is an error worth seeing
    return mask_path(masks, case.id).exists()


def run(args) -> int:
    if args.send and args.format != "dicom-seg":
        raise MedsegError("--send stores DICOM SEG only (use --format dicom-seg)")
    server = server_from_args(args.send, args.user) if args.send else None
    dataset, ids = open_cases(args)
    out = check_output_dir(Path(args.out), dataset.root)
    items, labelmap = [], None
    for cid in ids:
        case = load_edited_case(dataset, cid)
        if not args.case and not _has_mask(case, args.masks):
            print(f"napari-medseg export: case {cid}: no mask, skipped", file=sys.stderr)
            continue
        item, lm = item_from_case(
            case, source=dataset.root, masks=args.masks, with_image=args.images
        )
        if labelmap is not None and lm != labelmap:
            raise MedsegError(
                f"case {cid!r} has a different labelmap from the other cases; export it on its own"
            )
        items.append(item)
        labelmap = lm
    if not items:
        raise MedsegError("no cases to export", dataset.root)

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{done}/{total}", end="" if done < total else "\n", file=sys.stderr)

    notes: list[str] = []
    algorithm = None
    if args.format == "dicom-seg":
        from napari_medseg.export.dicom_seg import algorithm_of

        algorithm = algorithm_of(args.masks)
    written = export_masks(
        args.format,
        out,
        items,
        labelmap,
        axis=args.axis,
        components=args.components,
        images=args.images,
        as_zip=args.zip,
        suffix=args.suffix,
        algorithm=algorithm,
        derive_series=args.derive_series,
        compress=args.compress,
        notes=notes,
        progress=progress,
    )
    for note in notes:
        print(f"napari-medseg export: {note}", file=sys.stderr)
    sent = _send(server, written) if server is not None else []
    if args.json:
        print_json(
            {
                "format": args.format,
                "cases": [it.case_id for it in items],
                "written": [str(p) for p in written],
                "notes": notes,
                **({"sent": sent, "server": server.url} if server is not None else {}),
            }
        )
    else:
        for p in written:
            print(p)
    return 0


def _send(server, written: list[Path]) -> list[str]:
    """STOW-RS the written SEG files (a derived series first: the SEG references it)."""
    from napari_medseg.pacs.store import store_files

    files = [f for p in written if p.is_dir() for f in sorted(p.iterdir())]
    files += [p for p in written if p.is_file()]
    sent = store_files(server, files)
    print(f"napari-medseg export: stored {len(sent)} instance(s) on {server.url}", file=sys.stderr)
    return sent
