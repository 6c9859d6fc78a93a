"""``napari-medseg embed``: fill the SAM embedding cache for a dataset (GPU server -> laptop).

``--around SLICE [--radius N]`` embeds that slice first and then its neighbours outward
(:func:`~napari_medseg.engines.sam_prefetch.prefetch`), as the SAM panel does after a prompt.
"""

from __future__ import annotations

import sys

from napari_medseg.cli._common import (
    add_dataset_arguments,
    finite_float,
    non_negative_int,
    open_cases,
    positive_int,
)
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
    parser.add_argument(
        "--batch-size", type=positive_int, metavar="N", help="slices per encoder batch"
    )
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument(
        "--around",
        type=non_negative_int,
        metavar="SLICE",
        help="embed this slice first, then its neighbours outward (default: every slice in order)",
    )
    parser.add_argument(
        "--radius",
        type=non_negative_int,
        metavar="N",
        help="with --around: only slices at most N away (default: the whole volume)",
    )


def run(args) -> int:
    from napari_medseg.core.atomic import check_output_dir
    from napari_medseg.engines.sam import SamSession
    from napari_medseg.engines.sam2 import Sam2Session
    from napari_medseg.engines.sam2_model import is_sam2_checkpoint, load_sam2
    from napari_medseg.engines.sam_cache import EmbeddingCache
    from napari_medseg.engines.sam_model import load_sam
    from napari_medseg.engines.sam_settings import load_settings
    from napari_medseg.engines.windowing import parse_mapping

    if args.radius is not None and args.around is None:
        raise MedsegError("--radius needs --around SLICE")
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
            n, span = embed_case(session, args.around, args.radius)
        except MedsegError as exc:
            failed += 1
            print(f"napari-medseg embed: case {cid}: {exc}", file=sys.stderr)
            continue
        encoded += n
        line = f"{cid}: {len(session.stack)} slices, {n} encoded, {len(span) - n} cached"
        if args.around is not None:
            line += f", slices {min(span)}-{max(span)} around {args.around}"
        print(line)
    print(f"encoded {encoded} slices; cache: {cache.describe()}")
    return 1 if failed else 0


def embed_case(session, around: int | None, radius: int | None) -> tuple[int, list[int]]:
    """Embed every slice (in order), or ``around`` and its neighbours outward up to
    ``radius`` away; return how many were encoded and the slices asked for."""
    from napari_medseg.engines.sam_prefetch import outward, prefetch

    depth = len(session.stack)
    if around is None:
        return session.embed(), list(range(depth))
    if around >= depth:
        raise MedsegError(f"--around {around}: the case has {depth} slices (0-{depth - 1})")
    return prefetch(session, around, radius), outward(around, depth, radius)
