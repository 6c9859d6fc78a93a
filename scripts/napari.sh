#!/usr/bin/env bash
# Set everything up and open napari with the MedSeg case browser docked and a sample PET/CT case loaded.
# Pass a dataset folder or file to open that instead: `bash scripts/napari.sh /data/Task09_Spleen`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
run=()
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "No display found: running under Xvfb (set DISPLAY to see the window)."
  run=(xvfb-run -a -s "-screen 0 1280x1024x24")
fi
exec "${run[@]}" .venv/bin/python -m napari_medseg.launch "$@"
