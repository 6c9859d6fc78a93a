"""Time opening a 120-slice 256x256 CT DICOM series against SimpleITK's GDCM series reader.

Baseline: ``ImageSeriesReader`` with ``GetGDCMSeriesFileNames`` (C++ GDCM, sorts by position)
and ``GetArrayFromImage``. Ours: ``find_series`` (headers of every file) plus ``read_series``
and loading the HU voxels (pydicom). Both give the same array; the script checks it.

    python benchmarks/bench_dicom.py [--repeat 5] [--slices 120]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from napari_medseg.io.dicom import find_series, read_series
from napari_medseg.synthetic.dicom import write_dicom_series
from napari_medseg.synthetic.phantom import torso


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--slices", type=int, default=120)
    args = parser.parse_args()
    import SimpleITK as sitk

    warnings.simplefilter("ignore")
    ct, _, _ = torso((args.slices, 256, 256), seed=0)
    base, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ct"
        write_dicom_series(folder, np.clip(ct, -1024, 3071), (2.0, 0.8, 0.8))
        for _ in range(args.repeat):  # interleaved so machine load hits both alike
            t0 = time.perf_counter()
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
            expected = sitk.GetArrayFromImage(reader.Execute())
            t1 = time.perf_counter()
            got = read_series(find_series(folder)[0]).array
            t2 = time.perf_counter()
            if not np.array_equal(got, expected):
                raise SystemExit("arrays differ")
            base.append(t1 - t0)
            ours.append(t2 - t1)
    b, o = float(np.median(base)), float(np.median(ours))
    print(f"SimpleITK/GDCM {b:.3f}s  napari-medseg {o:.3f}s  ratio {o / b:.2f}x", end="")
    print(f" (median of {args.repeat})")


if __name__ == "__main__":
    main()
