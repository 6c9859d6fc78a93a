#!/usr/bin/env bash
# Set everything up (system packages, .venv, project) and run the whole test suite headlessly under Xvfb.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/test_geometry.py -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export NAPARI_MEDSEG_CONFIG_DIR="${NAPARI_MEDSEG_CONFIG_DIR:-$(mktemp -d)}"
.venv/bin/ruff check napari_medseg tests benchmarks scripts
.venv/bin/lint-imports
xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
