"""Time opening DICOM series against SimpleITK's GDCM series reader, in the same run.

Two series: a 120-slice 256x256 uncompressed CT, and a 100-slice 512x512 JPEG Lossless
(process 14, SV1: the common PACS export; written with dcmtk's ``dcmcjpeg``, skipped when it is
missing). Baseline: ``ImageSeriesReader`` with ``GetGDCMSeriesFileNames`` (C++ GDCM, sorts by
position) and ``GetArrayFromImage``. Ours: ``find_series`` (headers of every file) plus
``read_series`` and loading the HU voxels (pydicom; pylibjpeg-libjpeg decodes the JPEG).
Both give the same array; the script checks it. Runs are interleaved A-B-B-A so machine load
hits both alike; it prints medians and the per-pair ratios.

    python benchmarks/bench_dicom.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from napari_medseg.io.dicom import find_series, read_series
from napari_medseg.io.dicom_write import write_dicom_series
from napari_medseg.synthetic.phantom import torso


def _sitk(folder: Path) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


def _ours(folder: Path) -> np.ndarray:
    return read_series(find_series(folder)[0]).array


def _timed(fn, folder: Path) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    out = fn(folder)
    return time.perf_counter() - t0, out


def compare(name: str, folder: Path, repeat: int) -> None:
    base, ours, ratios = [], [], []
    for _ in range(repeat):
        a1, expected = _timed(_sitk, folder)
        b1, got = _timed(_ours, folder)
        b2, _ = _timed(_ours, folder)
        a2, _ = _timed(_sitk, folder)
        if not np.array_equal(got, expected):
            raise SystemExit(f"{name}: arrays differ")
        base += [a1, a2]
        ours += [b1, b2]
        ratios.append((b1 + b2) / (a1 + a2))
    b, o = float(np.median(base)), float(np.median(ours))
    print(f"{name}: SimpleITK/GDCM {b:.3f}s  napari-medseg {o:.3f}s  ratio {o / b:.2f}x")
    print(f"  per-pair ratios {' '.join(f'{r:.2f}' for r in ratios)} (A-B-B-A x {repeat})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        ct, _, _ = torso((120, 256, 256), seed=0)
        folder = Path(tmp) / "ct"
        write_dicom_series(folder, np.clip(ct, -1024, 3071), (2.0, 0.8, 0.8))
        compare("uncompressed 120x256x256", folder, args.repeat)
        if shutil.which("dcmcjpeg") is None:
            print("JPEG Lossless: skipped (dcmtk's dcmcjpeg is not installed)")
            return
        ct, _, _ = torso((100, 512, 512), seed=1)
        folder = Path(tmp) / "jpeg"
        for f in write_dicom_series(folder, np.clip(ct, -1024, 3071), (2.0, 0.7, 0.7)):
            subprocess.run(["dcmcjpeg", "+e1", str(f), str(f)], check=True)
        compare("JPEG Lossless SV1 100x512x512", folder, args.repeat)


if __name__ == "__main__":
    main()
