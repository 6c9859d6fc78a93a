"""Start-up cost: what the CLI, the reader and the widgets load before any work is asked of them.

ruff's TID253 keeps heavy modules out of module level; these tests catch the indirect ways in.
"""

from __future__ import annotations

import json
import subprocess
import sys

MODEL_STACKS = {"torch", "segment_anything", "sam2", "SimpleITK"}
MANIFEST_MODULES = (
    "napari_medseg._reader",
    "napari_medseg._writer",
    "napari_medseg._sample_data",
    "napari_medseg._qt.case_browser",
    "napari_medseg._qt.export_widget",
    "napari_medseg._qt.labelmap_editor",
    "napari_medseg._qt.presegment_widget",
    "napari_medseg._qt.qa_widget",
    "napari_medseg._qt.review_widget",
    "napari_medseg._qt.sam_widget",
)


def loaded_after(code: str) -> set[str]:
    """Top-level package names in sys.modules after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_cli_parser_loads_no_heavy_module():
    loaded = loaded_after("from napari_medseg.cli import build_parser\nbuild_parser()")
    assert loaded & (MODEL_STACKS | {"dask", "distributed", "scipy", "skimage"}) == set()


def test_info_loads_no_model_stack(msd_spleen):
    code = (
        "import contextlib, io\nfrom napari_medseg.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main(['info', {str(msd_spleen)!r}])"
    )
    assert loaded_after(code) & (MODEL_STACKS | {"dask", "skimage"}) == set()


def test_manifest_modules_load_no_model_stack():
    # napari itself loads dask and scipy, so only the model stacks are checked here.
    loaded = loaded_after("\n".join(f"import {m}" for m in MANIFEST_MODULES))
    assert loaded & MODEL_STACKS == set()
