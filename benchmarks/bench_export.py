"""Time the CVAT export of a 155-slice 240x240 volume (three labels) against plain PNG encoding.

Baseline: the same 155 label slices, each saved as a plain 8-bit PNG with PIL's default
settings, one after another. Ours: the full CVAT export (validation, labelmap, colouring,
connected components per class and slice, class + object RGB PNGs for every slice, atomic
folder). Target: ours within 1.5x of the baseline.

    python benchmarks/bench_export.py [--repeat 5]

Both a folder export and a zip export are timed. On a busy disk the folder export is bound
by creating files: the format needs two PNGs per slice, the baseline writes one.
"""

from __future__ import annotations

import argparse
import shutil
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


def bare_png(vol: np.ndarray, out: Path) -> None:
    out.mkdir(parents=True)
    for i in range(vol.shape[0]):
        Image.fromarray(vol[i]).save(out / f"slice_{i:04d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    vol = make_volume()
    labelmap = LabelMap.from_names({1: "edema", 2: "non-enhancing tumour", 3: "enhancing tumour"})
    times: dict[str, list[float]] = {"bare": [], "folder": [], "zip": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        export_cvat(tmp / "warmup", [ExportItem("w", vol[70:72])], labelmap)  # imports scipy once
        for r in range(args.repeat):  # interleaved so machine load hits all alike
            t0 = time.perf_counter()
            bare_png(vol, tmp / f"bare{r}")
            times["bare"].append(time.perf_counter() - t0)
            for mode, out in (("folder", tmp / f"cvat{r}"), ("zip", tmp / f"cvat{r}.zip")):
                t0 = time.perf_counter()
                res = export_cvat(out, [ExportItem("BraTS2021_00000", vol)], labelmap)
                times[mode].append(time.perf_counter() - t0)
                assert len(res.items) == SHAPE[0]
            shutil.rmtree(tmp / f"bare{r}")
            shutil.rmtree(tmp / f"cvat{r}")
    b = min(times["bare"])
    print(f"volume {SHAPE}, labels {sorted(np.unique(vol).tolist())}, {args.repeat} runs")
    print(f"bare PNG encoding (155 PNG files, PIL defaults): best {b:.3f} s")
    for mode in ("folder", "zip"):
        o = min(times[mode])
        # Runs went back to back, so the median of per-run ratios resists other jobs' load.
        ratios = sorted(x / y for x, y in zip(times[mode], times["bare"], strict=True))
        print(
            f"CVAT export to a {mode} (310 RGB PNGs + labelmap): best {o:.3f} s, "
            f"ratio best/best {o / b:.2f}x, median of runs {ratios[len(ratios) // 2]:.2f}x "
            "(target <= 1.5x)"
        )


if __name__ == "__main__":
    main()
