"""Regenerate ``sample_data/``: one small synthetic dataset per supported layout.

python scripts/make_sample_data.py [OUT]   (default: sample_data/ next to this script's repo)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from napari_medseg.synthetic.samples import make_samples


def main() -> None:
    out = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[1] / "sample_data"
    )
    for child in out.glob("*"):
        if child.name != ".keep":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    made = make_samples(out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    for key, rel in made.items():
        print(f"{key:>20}: {rel}")
    print(f"{len(made)} samples, {size / 1e6:.1f} MB in {out}")


if __name__ == "__main__":
    main()
