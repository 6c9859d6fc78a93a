"""Retrieve a 300-slice CT study from a local Orthanc over DICOMweb: ours vs dicomweb-client.

Baseline: ``dicomweb_client`` listing the study's instances (QIDO-RS) and retrieving them one by
one in a plain loop (``retrieve_instance``, parsed into pydicom datasets) and saving each file.
Ours: :func:`napari_medseg.pacs.retrieve.retrieve_study` (parallel raw WADO-RS, each file
written as it arrives). Both fill a fresh folder per run and must end with the same instances.
Runs are interleaved A-B-B-A; medians and per-pair ratios are printed.

    python benchmarks/bench_pacs.py [--pairs 4] [--slices 300] [--size 256] [--workers 8]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_medseg.io.dicom_write import write_dicom_series
from napari_medseg.pacs.client import Server
from napari_medseg.pacs.local_orthanc import find_orthanc, local_orthanc, upload
from napari_medseg.pacs.retrieve import retrieve_study
from napari_medseg.synthetic.phantom import torso


def baseline(server: Server, study_uid: str, out: Path) -> int:
    client = server.client()
    found = client.search_for_instances(study_uid, fields=["SeriesInstanceUID", "SOPInstanceUID"])
    for item in found:
        series, sop = item["0020000E"]["Value"][0], item["00080018"]["Value"][0]
        ds = client.retrieve_instance(study_uid, series, sop)
        folder = out / study_uid / series
        folder.mkdir(parents=True, exist_ok=True)
        ds.save_as(folder / f"{sop}.dcm")
    return len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=4, help="A-B / B-A pairs (even is fair)")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=256, help="rows and columns per slice")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    _, _, why = find_orthanc()
    if why:
        raise SystemExit(why)
    import pydicom

    ct, _, _ = torso((args.slices, args.size, args.size), seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = write_dicom_series(tmp / "ct", np.clip(ct, -1024, 3071), (1.0, 0.7, 0.7))
        study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        with local_orthanc(tmp / "orthanc") as url:
            upload(url, files)
            server = Server.parse(url)
            base, ours = [], []
            for k in range(args.pairs):
                order = ("base", "ours") if k % 2 == 0 else ("ours", "base")
                for who in order:
                    out = tmp / f"{who}{k}"
                    t0 = time.perf_counter()
                    if who == "base":
                        n = baseline(server, study, out)
                    else:
                        n = retrieve_study(server, study, out, workers=args.workers).instances
                    (base if who == "base" else ours).append(time.perf_counter() - t0)
                    if n != args.slices or len(list(out.rglob("*.dcm"))) != args.slices:
                        raise SystemExit(f"{who}: {n} instances retrieved, expected {args.slices}")
                a = {p.name for p in (tmp / f"base{k}").rglob("*.dcm")}
                if a != {p.name for p in (tmp / f"ours{k}").rglob("*.dcm")}:
                    raise SystemExit("the two retrievals hold different instances")
                shutil.rmtree(tmp / f"base{k}")
                shutil.rmtree(tmp / f"ours{k}")
    ratios = [b / o for b, o in zip(base, ours, strict=True)]
    mb = args.slices * args.size * args.size * 2 / 1e6
    print(
        f"{args.slices} slices of {args.size}x{args.size} ({mb:.0f} MB), {args.pairs} pairs A-B-B-A"
    )
    print(
        f"dicomweb-client loop  median {np.median(base):.2f} s  runs {[round(t, 2) for t in base]}"
    )
    print(
        f"napari-medseg         median {np.median(ours):.2f} s  runs {[round(t, 2) for t in ours]}"
    )
    print(f"speed-up: median of per-pair ratios {np.median(ratios):.2f}x  "
          f"(pairs {[round(r, 2) for r in ratios]})")  # fmt: skip


if __name__ == "__main__":
    main()
