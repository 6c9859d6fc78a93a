"""Open a 512x512x300 NIfTI case through the plugin vs plain nibabel, in one run.

Our path: detect the layout, list cases, read the case, build napari layer data (CT image +
label mask, with contrast and label colours). Baseline: ``nibabel.load(...).get_fdata()`` for
the image and the mask, the way scripts usually load them, and nibabel's fastest raw path
(``np.asanyarray(img.dataobj)``). Prints times, peak memory (tracemalloc) and ratios.
Targets: <= 1.2x nibabel's time and <= 1.5x the array bytes of peak memory.

    python benchmarks/bench_load.py [--shape 300 512 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np


def make_case(root: Path, shape) -> Path:
    from napari_medseg.synthetic.msd import write_nifti

    rng = np.random.default_rng(0)
    z, y, x = shape
    ct = rng.integers(-1000, 1500, size=shape, dtype=np.int16)
    labels = np.zeros(shape, np.uint8)
    labels[z // 4 : z // 2, y // 4 : y // 2, x // 4 : x // 2] = 1
    task = root / "Task09_Spleen"
    write_nifti(task / "imagesTr" / "spleen_1.nii.gz", ct, (1.0, 0.8, 0.8))
    write_nifti(task / "labelsTr" / "spleen_1.nii.gz", labels, (1.0, 0.8, 0.8), np.uint8)
    (task / "dataset.json").write_text(
        '{"name": "Spleen", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "spleen"},'
        ' "training": [{"image": "./imagesTr/spleen_1.nii.gz", "label": "./labelsTr/spleen_1.nii.gz"}], "test": []}'
    )
    return task


def plugin_open(task: Path):
    from napari_medseg._reader import napari_get_reader

    return napari_get_reader(str(task))(str(task))


def nibabel_fdata(task: Path):
    return [nib.load(task / f"{d}Tr" / "spleen_1.nii.gz").get_fdata() for d in ("images", "labels")]


def nibabel_raw(task: Path):
    return [
        np.asanyarray(nib.load(task / f"{d}Tr" / "spleen_1.nii.gz").dataobj)
        for d in ("images", "labels")
    ]


def timed(fn, task, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(task)
        best = min(best, time.perf_counter() - t0)
        del out
    return best


def peak(fn, task):
    tracemalloc.start()
    out = fn(task)
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del out
    return top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shape", type=int, nargs=3, default=(300, 512, 512), metavar=("Z", "Y", "X")
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        task = make_case(Path(tmp), tuple(args.shape))
        array_bytes = int(np.prod(args.shape)) * (2 + 1)  # int16 CT + uint8 mask
        plugin_open(task)  # warm imports
        results = {name: (timed(fn, task, args.repeat), peak(fn, task))
                   for name, fn in (("plugin", plugin_open), ("nibabel get_fdata", nibabel_fdata),
                                    ("nibabel dataobj", nibabel_raw))}  # fmt: skip
    print(
        f"case {'x'.join(map(str, args.shape))} int16 CT + uint8 mask = {array_bytes / 1e6:.0f} MB of arrays"
    )
    for name, (sec, top) in results.items():
        print(
            f"{name:>18}: {sec:6.2f} s   peak {top / 1e6:7.0f} MB ({top / array_bytes:.2f}x array bytes)"
        )
    ours = results["plugin"][0]
    for base in ("nibabel get_fdata", "nibabel dataobj"):
        print(f"time ratio plugin / {base}: {ours / results[base][0]:.2f}x")
    print(
        f"peak memory plugin / array bytes: {results['plugin'][1] / array_bytes:.2f}x (target <= 1.5x)"
    )


if __name__ == "__main__":
    main()
