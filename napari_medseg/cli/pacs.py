"""``napari-medseg pacs``: search a DICOMweb server (QIDO-RS) and open a study (WADO-RS) into
a local folder that then works as a dataset for every command.

Credentials: ``--user`` with the password from ``$NAPARI_MEDSEG_PACS_PASSWORD`` (prompted when
unset and interactive), or a bearer token from ``$NAPARI_MEDSEG_PACS_TOKEN``. They are never
printed nor written to any file.
"""

from __future__ import annotations

import os
import sys

from napari_medseg.cli._common import print_json
from napari_medseg.core.errors import MedsegError

HELP = "search a DICOMweb server (PACS) and open studies from it into a local folder"
PASSWORD_ENV = "NAPARI_MEDSEG_PACS_PASSWORD"
TOKEN_ENV = "NAPARI_MEDSEG_PACS_TOKEN"


def add_server_arguments(parser) -> None:
    parser.add_argument(
        "--user",
        metavar="NAME",
        help=f"basic auth user (password from ${PASSWORD_ENV}, else prompted); "
        f"a bearer token is taken from ${TOKEN_ENV}",
    )


def server_from_args(url: str, user: str | None):
    """The server of ``url`` with the credentials of ``--user`` and the environment."""
    from napari_medseg.pacs.client import Auth, Server

    token = os.environ.get(TOKEN_ENV)
    if user:
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            if not sys.stdin.isatty():
                raise MedsegError(f"--user {user}: set ${PASSWORD_ENV} (no terminal to ask on)")
            import getpass

            password = getpass.getpass(f"password for {user}: ")
        return Server.parse(url, Auth(user, password))
    return Server.parse(url, Auth(token=token) if token else None)


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="pacs_command", required=True)
    search = sub.add_parser("search", help="list studies (QIDO-RS)", description="list studies")
    search.add_argument("url", metavar="URL", help="DICOMweb root, e.g. http://host:8042/dicom-web")
    search.add_argument("--patient", metavar="ID", help="PatientID")
    search.add_argument("--modality", metavar="MOD", help="a modality in the study (CT, MR, PT...)")
    search.add_argument("--study-date", metavar="DATE", help="YYYYMMDD or YYYYMMDD-YYYYMMDD")
    search.add_argument("--accession", metavar="NUMBER", help="AccessionNumber")
    search.add_argument("--limit", type=int, metavar="N", help="at most N studies")
    search.add_argument("--json", action="store_true", help="print the studies as JSON")
    add_server_arguments(search)
    open_ = sub.add_parser(
        "open",
        help="retrieve a study into DIR (WADO-RS; resumable)",
        description="retrieve a study into DIR/<study uid>/<series uid>/<instance uid>.dcm; "
        "running it again fetches only what is missing",
    )
    open_.add_argument("url", metavar="URL", help="DICOMweb root")
    open_.add_argument("study", metavar="STUDY_UID", help="StudyInstanceUID")
    open_.add_argument("--out", metavar="DIR", required=True, help="local cache folder")
    open_.add_argument("--workers", type=int, default=8, metavar="N", help="parallel requests")
    open_.add_argument("--json", action="store_true", help="print what was retrieved as JSON")
    add_server_arguments(open_)


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        print(f"\rretrieved {done}/{total}", end="" if done < total else "\n", file=sys.stderr)


def run(args) -> int:
    server = server_from_args(args.url, args.user)
    if args.pacs_command == "search":
        from napari_medseg.pacs.search import search_studies

        studies = search_studies(server, args.patient, args.modality, args.study_date,
                                 args.accession, args.limit)  # fmt: skip
        if args.json:
            print_json({"server": server.url, "studies": studies})
        else:
            for s in studies:
                mods = "/".join(s["modalities"] or [])
                print(f"{s['study_uid']}  {s['patient_id'] or '-'}  {s['study_date'] or '-'}  "
                      f"{mods or '-'}  {s['instances'] or '?'} instances  {s['description'] or ''}")  # fmt: skip
        return 0
    from napari_medseg.pacs.retrieve import retrieve_study

    res = retrieve_study(server, args.study, args.out, progress=_progress, workers=args.workers)
    if args.json:
        print_json({"server": server.url, "study_uid": args.study, "folder": str(res.folder),
                    "instances": res.instances, "fetched": res.fetched})  # fmt: skip
    else:
        print(res.folder)
    return 0
