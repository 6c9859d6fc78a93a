"""``napari-medseg embed``: fill the SAM embedding cache for a dataset (GPU server -> laptop)."""

from __future__ import annotations

import sys

from napari_medseg.cli._common import add_dataset_arguments, finite_float, open_cases
from napari_medseg.core.errors import MedsegError

HELP = "compute and cache SAM / SAM 2.1 image embeddings for every slice of a dataset"


def add_arguments(parser) -> None:
    add_dataset_arguments(parser)
    parser.add_argument(
        "--checkpoint",
        metavar="CKPT",
        help="segment-anything .pth or SAM 2.1 .pt (default: the saved setting)",
    )
    parser.add_argument(
        "--variant",
        choices=("sam", "medsam", "sam2", "medsam2"),
        help="checkpoint family: medsam (SAM ViT-B fine-tune), medsam2 (SAM 2.1, 512 px)",
    )
    parser.add_argument(
        "--cache", metavar="DIR", help="embedding cache folder (default: the saved setting)"
    )
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--channels", metavar="A,B,C", help="channels for SAM's 3 inputs, e.g. CT,CT,SUV:suv"
    )
    parser.add_argument(
        "--cache-max-gb",
        type=finite_float,
        metavar="GB",
        help="cache size bound (default: the saved setting)",
    )
    parser.add_argument("--batch-size", type=int, metavar="N", help="slices per encoder batch")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])


def run(args) -> int:
    from napari_medseg.core.atomic import check_output_dir
    from napari_medseg.engines.sam import SamSession
    from napari_medseg.engines.sam2 import Sam2Session
    from napari_medseg.engines.sam2_model import is_sam2_checkpoint, load_sam2
    from napari_medseg.engines.sam_cache import EmbeddingCache
    from napari_medseg.engines.sam_model import load_sam
    from napari_medseg.engines.sam_settings import load_settings
    from napari_medseg.engines.windowing import parse_mapping

    checkpoint = args.checkpoint or load_settings().get("sam_checkpoint")
    if not checkpoint:
        raise MedsegError("no SAM checkpoint: pass --checkpoint PATH")
    mapping = parse_mapping(args.channels) if args.channels else None
    dataset, ids = open_cases(args)
    cache = EmbeddingCache(
        args.cache, None if args.cache_max_gb is None else args.cache_max_gb * 2**30
    )
    check_output_dir(cache.root, dataset.root)  # never a cache inside the data
    if is_sam2_checkpoint(checkpoint):
        sam, session_type = load_sam2(checkpoint, args.device, args.variant), Sam2Session
        options = {"batch_size": args.batch_size}
    else:
        sam, session_type = load_sam(checkpoint, args.device, args.variant), SamSession
        options = {"batch_size": args.batch_size, "precision": args.precision}
    print(f"{sam.model_type} on {sam.device}, cache {cache.root}", file=sys.stderr)
    encoded, failed = 0, 0
    for cid in ids:
        try:
            session = session_type.for_case(
                sam, dataset.load_case(cid), mapping, cache=cache, **options
            )
            n = session.embed()
        except MedsegError as exc:
            failed += 1
            print(f"napari-medseg embed: case {cid}: {exc}", file=sys.stderr)
            continue
        encoded += n
        print(f"{cid}: {len(session.stack)} slices, {n} encoded, {len(session.stack) - n} cached")
    print(f"encoded {encoded} slices; cache: {cache.describe()}")
    return 1 if failed else 0
