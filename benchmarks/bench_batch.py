"""Dataset pre-segmentation inline (``--workers 0``) against a local dask cluster, the two
choices behind ``presegment``'s default worker count (``batch.runner.default_workers``).

Dataset: a synthetic MSD spleen task (``--cases`` CT volumes of 16x128x128). Engine: the
U-Net (1 CT channel, init_features 16, random weights) on the CPU. Inline runs in this
process with torch's threads; the cluster has ``--workers`` processes (default: one per
core) of one thread each, started and closed inside the clock, as a user's run pays for
them. Both write the same masks (checked). Runs alternate A-B-B-A ``--rounds`` times;
medians and per-pair ratios are printed with the load average.

    python benchmarks/bench_batch.py [--cases 8] [--rounds 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_medseg.batch import presegment_dataset
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.engines.unet_model import UNet, UNetConfig, save_checkpoint
from napari_medseg.synthetic.msd import make_msd


def run(root: Path, options: dict, out: Path, workers: int) -> float:
    start = time.perf_counter()
    summary = presegment_dataset(root, "unet", options, out, workers=workers, overwrite=True)
    seconds = time.perf_counter() - start
    assert not summary["failed"], summary["failed"]
    return seconds


def masks(out: Path) -> dict:
    import nibabel as nib

    return {
        p.name: np.asarray(nib.load(p).dataobj).tobytes() for p in sorted(out.rglob("*.nii.gz"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="A-B-B-A rounds")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_msd(
            tmp / "data", "Task09_Spleen", n_train=args.cases, n_test=0, shape=(16, 128, 128)
        )
        config = UNetConfig(1, 1, 16, LabelMap.from_names({1: "spleen"}).to_json(), ["CT"])
        ckpt = save_checkpoint(UNet(1, 1, 16), config, tmp / "unet.pt")
        options = {"checkpoint": str(ckpt), "device": "cpu", "batch_size": 16}
        kinds = {"inline": 0, f"cluster of {args.workers}": args.workers}
        times = {k: [] for k in kinds}
        for _ in range(args.rounds):
            for kind in (*kinds, *reversed(kinds)):
                times[kind].append(run(root, options, tmp / kind, kinds[kind]))
        assert len({tuple(masks(tmp / k).items()) for k in kinds}) == 1, "different masks"
        inline, cluster = (times[k] for k in kinds)
        pairs = [c / i for i, c in zip(inline, cluster, strict=True)]
        for kind, t in times.items():
            med = statistics.median(t)
            print(
                f"{kind}: {args.cases} cases in {med:.1f} s median ({med / args.cases:.2f} s/case)"
            )
        print(
            f"inline vs cluster: x{statistics.median(cluster) / statistics.median(inline):.2f} "
            f"(pairs {min(pairs):.2f}-{max(pairs):.2f}, median {np.median(pairs):.2f}); "
            f"load {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
