"""Time the CVAT export of a 155-slice 240x240 volume (three labels) against PIL encoding the
same PNGs at the same zlib level.

Baseline: the exact images our export writes (class and object RGB PNGs for all 155 slices,
decoded once beforehand), saved one after another with PIL at ``compress_level=1``, our
level (PIL also tries its row filters; we write filter 0). Ours: the full CVAT export
(validation, labelmap, colouring, connected components per class and slice, the PNGs,
atomic folder), with its encoding threads and with one thread. A-B-B-A rounds, medians,
per-pair ratios. Target: ours within 1.5x of the baseline.

    python benchmarks/bench_export.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from napari_medseg.core.labelmap import LabelMap
from napari_medseg.export import ExportItem
from napari_medseg.export.cvat import export_cvat
from napari_medseg.synthetic.phantom import brain, ellipsoid

SHAPE = (155, 240, 240)  # BraTS grid


def make_volume(seed: int = 0) -> np.ndarray:
    """The synthetic BraTS tumour (three nested labels) plus small satellite lesions."""
    rng = np.random.default_rng(seed)
    _, vol = brain(SHAPE, seed=seed, channels=1)
    for _ in range(20):  # satellites give several instances per slice
        c = tuple(float(v) for v in rng.uniform(-0.7, 0.7, 3))
        vol[ellipsoid(SHAPE, c, (0.05, 0.04, 0.04)) & (vol == 0)] = int(rng.integers(1, 4))
    return vol


def decoded_outputs(vol: np.ndarray, labelmap, tmp: Path) -> list[tuple[str, np.ndarray]]:
    """The RGB arrays of every PNG our export writes for ``vol``."""
    out = tmp / "reference"
    export_cvat(out, [ExportItem("BraTS2021_00000", vol)], labelmap)
    return [(p.relative_to(out).as_posix(), np.asarray(Image.open(p))) for p in sorted(out.rglob("*.png"))]  # fmt: skip


def pil_pngs(images: list[tuple[str, np.ndarray]], out: Path) -> None:
    for name, arr in images:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(out / name, compress_level=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    vol = make_volume()
    labelmap = LabelMap.from_names({1: "edema", 2: "non-enhancing tumour", 3: "enhancing tumour"})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = decoded_outputs(vol, labelmap, tmp)  # also warms imports
        runs = {
            "PIL level 1": lambda out: pil_pngs(images, out),
            "ours": lambda out: export_cvat(out, [ExportItem("BraTS2021_00000", vol)], labelmap),
            "ours 1 thread": lambda out: export_cvat(
                out, [ExportItem("BraTS2021_00000", vol)], labelmap, workers=1
            ),
        }
        times: dict[str, list[float]] = {k: [] for k in runs}
        order = list(runs)
        for r in range(args.rounds):
            for i, key in enumerate(order + order[::-1]):
                out = tmp / f"run{r}_{i}"
                t0 = time.perf_counter()
                runs[key](out)
                times[key].append(time.perf_counter() - t0)
                shutil.rmtree(out)
    base = times["PIL level 1"]
    print(
        f"volume {SHAPE}, {len(images)} PNGs, {args.rounds} A-B-B-A rounds, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for key, ts in times.items():
        pairs = [t / b for t, b in zip(ts, base, strict=True)]
        print(
            f"{key:>14}: median {statistics.median(ts):.3f} s, "
            f"x{statistics.median(ts) / statistics.median(base):.2f} the PIL time "
            f"(pairs {min(pairs):.2f}-{max(pairs):.2f}; target <= 1.5x)"
        )


if __name__ == "__main__":
    main()
