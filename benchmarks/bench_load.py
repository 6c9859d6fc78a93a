"""Open a 512x512x300 NIfTI case through the plugin vs plain nibabel, in one run.

Our path: detect the layout, list cases, read the case, build napari layer data (CT image +
label mask, with contrast and label colours). Two cases, each against the nibabel call that
returns the same arrays:

- int16 CT (no scaling): ``np.asanyarray(img.dataobj)`` (int16, as ours);
- scaled CT (int16 with scl_slope 0.25, scl_inter -1024): ``get_fdata(dtype=np.float32)``.

The mask is read with ``dataobj`` (uint8) in both baselines. Runs alternate A-B-B-A; medians,
per-pair ratios and peak memory (tracemalloc, against the bytes of the returned arrays) are
printed. Targets: <= 1.2x the baseline's time and <= 1.5x the array bytes of peak memory.

    python benchmarks/bench_load.py [--shape 300 512 512] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np

SLOPE, INTER = 0.25, -1024.0


def make_case(root: Path, shape, scaled: bool) -> Path:
    from napari_medseg.synthetic.msd import write_nifti

    rng = np.random.default_rng(0)
    z, y, x = shape
    ct = rng.integers(-1000, 1500, size=shape, dtype=np.int16)
    labels = np.zeros(shape, np.uint8)
    labels[z // 4 : z // 2, y // 4 : y // 2, x // 4 : x // 2] = 1
    task = root / ("scaled" if scaled else "int16") / "Task09_Spleen"
    image = task / "imagesTr" / "spleen_1.nii.gz"
    write_nifti(image, ct, (1.0, 0.8, 0.8))
    if scaled:
        img = nib.load(image)
        img = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine, img.header)
        img.header.set_slope_inter(SLOPE, INTER)
        nib.save(img, image)
    write_nifti(task / "labelsTr" / "spleen_1.nii.gz", labels, (1.0, 0.8, 0.8), np.uint8)
    (task / "dataset.json").write_text(
        '{"name": "Spleen", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "spleen"},'
        ' "training": [{"image": "./imagesTr/spleen_1.nii.gz", "label": "./labelsTr/spleen_1.nii.gz"}], "test": []}'
    )
    return task


def plugin_open(task: Path):
    from napari_medseg._reader import napari_get_reader

    return napari_get_reader(str(task))(str(task))


def nibabel_open(task: Path):
    image = nib.load(task / "imagesTr" / "spleen_1.nii.gz")
    mask = np.asanyarray(nib.load(task / "labelsTr" / "spleen_1.nii.gz").dataobj)
    if image.dataobj.slope != 1 or image.dataobj.inter != 0:
        return [image.get_fdata(dtype=np.float32), mask]
    return [np.asanyarray(image.dataobj), mask]


def seconds(fn, task) -> float:
    t0 = time.perf_counter()
    out = fn(task)
    del out
    return time.perf_counter() - t0


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
    parser.add_argument("--rounds", type=int, default=2, help="A-B-B-A rounds")
    args = parser.parse_args()
    n = int(np.prod(args.shape))
    print(f"case {'x'.join(map(str, args.shape))}; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        for scaled in (False, True):
            task = make_case(Path(tmp), tuple(args.shape), scaled)
            out_bytes = n * ((4 if scaled else 2) + 1)  # CT (float32 or int16) + uint8 mask
            base = "get_fdata(float32)" if scaled else "dataobj"
            plugin_open(task)  # warm imports and the OS file cache
            times = {"plugin": [], base: []}
            fns = {"plugin": plugin_open, base: nibabel_open}
            for _ in range(args.rounds):
                for name in ("plugin", base, base, "plugin"):
                    times[name].append(seconds(fns[name], task))
            pairs = [a / b for a, b in zip(times["plugin"], times[base], strict=True)]
            med = {k: statistics.median(v) for k, v in times.items()}
            tops = {k: peak(fn, task) / out_bytes for k, fn in fns.items()}
            kind = f"{'scaled' if scaled else 'int16'} CT + uint8 mask ({out_bytes / 1e6:.0f} MB)"
            print(
                f"{kind}: plugin {med['plugin']:.2f} s, nibabel {base} {med[base]:.2f} s -> "
                f"x{med['plugin'] / med[base]:.2f} (pairs {min(pairs):.2f}-{max(pairs):.2f}); "
                f"peak memory plugin {tops['plugin']:.2f}x, nibabel {tops[base]:.2f}x the "
                f"array bytes (target <= 1.5x); load {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
