"""Start-up of ``napari-medseg info`` vs a process that only imports nibabel, in one run.

Each round runs both commands as fresh processes in A-B-B-A order (A: ``napari-medseg info
PATH``, B: ``python -c "import nibabel"``) and records wall time and peak RSS (``wait4``).
Prints medians and per-pair ratios. Targets: info under 1 s and under 250 MB RSS.

    python benchmarks/bench_cli_start.py [PATH] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024  # ru_maxrss is in KB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(ROOT / "sample_data" / "Task09_Spleen"))
    parser.add_argument("--rounds", type=int, default=5, help="A-B-B-A rounds (default 5)")
    args = parser.parse_args()
    commands = {
        # the same code as the napari-medseg console script, with this interpreter
        "info": [sys.executable, "-m", "napari_medseg.cli", "info", args.path],
        "nibabel": [sys.executable, "-c", "import nibabel"],
    }
    results = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name in ("info", "nibabel", "nibabel", "info"):
            results[name].append(run(commands[name]))
    pairs = list(zip(results["info"], results["nibabel"], strict=True))
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        print(f"{name:8s} median wall {wall:6.3f} s   median peak RSS {rss:6.1f} MB")
    ratios = [a[0] / b[0] for a, b in pairs]
    print(
        "info / nibabel wall, per pair: "
        + " ".join(f"{r:.2f}" for r in ratios)
        + f" (median {statistics.median(ratios):.2f})"
    )
    print(
        f"extra RSS over nibabel, median: {statistics.median(a[1] - b[1] for a, b in pairs):.1f} MB"
    )


if __name__ == "__main__":
    main()
