"""A dataset pre-segmented on a local dask cluster with 1 worker and with 2 workers.

Dataset: a synthetic MSD spleen task (``--cases`` CT volumes of 16x128x128). Engine: the
U-Net (1 CT channel, init_features 16, random weights) on the CPU, one thread per worker
(dask sets OMP_NUM_THREADS=1 in its worker processes). Each cluster is started before the
clock and closed after; the time covers opening cases, inference and writing the masks.
Prints each run's wall time, seconds per case and the speed-up of 2 workers over 1.

    python benchmarks/bench_batch.py [--cases 8]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from dask.distributed import Client, LocalCluster

from napari_medseg.batch import presegment_dataset
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.engines.unet_model import UNet, UNetConfig, save_checkpoint
from napari_medseg.synthetic.msd import make_msd


def run(root: Path, options: dict, out: Path, workers: int) -> tuple[float, dict]:
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster),
    ):
        start = time.perf_counter()
        summary = presegment_dataset(
            root, "unet", options, out, scheduler=cluster.scheduler_address
        )
        return time.perf_counter() - start, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_msd(
            tmp / "data", "Task09_Spleen", n_train=args.cases, n_test=0, shape=(16, 128, 128)
        )
        config = UNetConfig(1, 1, 16, LabelMap.from_names({1: "spleen"}).to_json(), ["CT"])
        ckpt = save_checkpoint(UNet(1, 1, 16), config, tmp / "unet.pt")
        options = {"checkpoint": str(ckpt), "device": "cpu", "batch_size": 16}
        times = {}
        for workers in (1, 2):
            seconds, summary = run(root, options, tmp / f"out{workers}", workers)
            assert len(summary["done"]) == args.cases, summary["failed"]
            times[workers] = seconds
            print(
                f"{workers} worker(s): {args.cases} cases in {seconds:6.1f} s "
                f"({seconds / args.cases:.2f} s/case wall, "
                f"{summary['seconds_per_case']:.2f} s/case in a worker)"
            )
        print(f"speed-up with 2 workers: x{times[1] / times[2]:.2f}")


if __name__ == "__main__":
    main()
