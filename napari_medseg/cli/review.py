"""``napari-medseg review``: the review session from the command line, action for action.

``status`` lists the queue, ``next`` finds the next case to review, ``set-status`` gives a
verdict (optionally saving a corrected mask file with it), ``history`` and ``audit`` show
what was done to a case.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from napari_medseg.cli._common import finite_float, print_json
from napari_medseg.core.errors import MedsegError
from napari_medseg.io.masks import read_mask
from napari_medseg.review.locks import DEFAULT_STALE_AFTER
from napari_medseg.review.session import STATUSES, ReviewSession

HELP = "review session in an output folder: status, next, set-status, compare, history, audit"


def _default_reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "anonymous"


def add_arguments(parser) -> None:
    parser.add_argument("path", metavar="PATH", help="dataset folder")
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="the session folder (outside the dataset)"
    )
    parser.add_argument(
        "--reviewer", default=_default_reviewer(), help="name recorded with each action"
    )
    parser.add_argument(
        "--initial",
        metavar="DIR",
        help="pre-segmentations <case id>.nii.gz (default: the dataset's masks)",
    )
    parser.add_argument(
        "--initial-by", metavar="NAME", help="engine or person that made the pre-segmentations"
    )
    parser.add_argument(
        "--stale-after",
        type=finite_float,
        default=DEFAULT_STALE_AFTER,
        help="seconds after which another session's case lock expires (default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("status", help="the queue with statuses")
    p.add_argument(
        "--status",
        action="append",
        choices=STATUSES,
        help="only cases with this status (repeatable)",
    )
    p = sub.add_parser("next", help="the next (or --previous) case of the queue")
    p.add_argument("case", nargs="?", metavar="ID", help="from this case (default: the start)")
    p.add_argument("--previous", action="store_true")
    p.add_argument(
        "--status",
        action="append",
        choices=STATUSES,
        help="only cases with this status (repeatable)",
    )
    p = sub.add_parser("set-status", help="set a case's status, optionally saving a corrected mask")
    p.add_argument("case", metavar="ID")
    p.add_argument("status", choices=STATUSES)
    p.add_argument("--notes", help="reviewer notes")
    p.add_argument(
        "--mask", metavar="FILE", help="corrected mask on the case's grid, saved as a new version"
    )
    p = sub.add_parser("compare", help="metrics between two versions of a case's mask")
    p.add_argument("case", metavar="ID")
    p.add_argument("--a", type=int, default=0, help="reference version (default 0, the first)")
    p.add_argument("--b", type=int, default=-1, help="compared version (default -1, the latest)")
    for name in ("history", "audit"):
        p = sub.add_parser(
            name, help=f"the {name} of a case" + (" (or of all)" if name == "audit" else "")
        )
        p.add_argument("case", metavar="ID", nargs="?" if name == "audit" else None)


def run(args) -> int:
    session = ReviewSession.open(
        args.path,
        args.out,
        args.reviewer,
        initial=args.initial,
        initial_by=args.initial_by,
        stale_after=args.stale_after,
    )
    if args.action == "status":
        rows = []
        for cid in session.queue(args.status):
            e = session.entry(cid)
            rows.append(
                {
                    "id": cid,
                    "status": e["status"],
                    "reviewer": e["reviewer"],
                    "notes": e["notes"],
                    "versions": len(e["history"]),
                    "autosave": session.has_autosave(cid),
                    "locked_by": (session.locked_by(cid) or {}).get("owner"),
                }
            )
        if args.json:
            print_json(rows)
        for r in [] if args.json else rows:
            extra = "".join(
                [
                    f" by {r['reviewer']}" if r["reviewer"] else "",
                    f", {r['versions']} versions",
                    " [unsaved autosave]" if r["autosave"] else "",
                    f" [open by {r['locked_by']}]" if r["locked_by"] else "",
                    f": {r['notes']}" if r["notes"] else "",
                ]
            )
            print(f"{r['id']}\t{r['status']}{extra}")
    elif args.action == "next":
        found = session.neighbour(args.case, -1 if args.previous else 1, args.status)
        if found is None:
            print("no case left in this queue")
            return 1
        print(found)
    elif args.action == "set-status":
        if args.mask:
            case = session.load_case(args.case)
            path = Path(args.mask)
            if not path.exists():
                raise MedsegError("no such mask file", path)
            mask = read_mask(path, case.reference_image(), session.labelmap(case)).array
            entry = session.save(args.case, mask, args.status, args.notes)
        else:
            entry = session.set_status(args.case, args.status, args.notes)
        print_json(entry) if args.json else print(f"{args.case}: {entry['status']}")
    elif args.action == "compare":
        metrics = [m.as_dict() for m in session.compare_versions(args.case, args.a, args.b)]
        if args.json:
            print_json(metrics)
        for m in [] if args.json else metrics:
            print(
                f"label {m['label']}: dice {m['dice']:.4f} iou {m['iou']:.4f} "
                f"hd95 {m['hd95_mm']:.2f} mm assd {m['assd_mm']:.2f} mm "
                f"volume {m['volume_ml_reference']:.2f} -> {m['volume_ml_mask']:.2f} ml"
            )
    elif args.action == "history":
        entry = session.entry(args.case)
        if args.json:
            print_json(entry)
        else:
            print(
                f"{args.case}: {entry['status']}"
                + (f" by {entry['reviewer']}" if entry["reviewer"] else "")
            )
            for v in entry["history"]:
                print(
                    f"  v{v['version']} {v['kind']} by {v['by']} at {v['time']}: "
                    f"{session.out / v['file']}"
                )
    else:
        entries = session.audit.entries(args.case)
        if args.json:
            print_json(entries)
        for e in [] if args.json else entries:
            details = {k: v for k, v in e.items() if k not in ("time", "who", "action", "case")}
            print(
                f"{e['time']} {e['who']} {e['action']} {e['case'] or ''} {details or ''}".rstrip()
            )
    return 0
