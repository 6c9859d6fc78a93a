#!/usr/bin/env bash
# Set everything up and open napari with the MedSeg case browser docked and a sample PET/CT case loaded.
# Pass a dataset folder or file to open that instead: `bash scripts/napari.sh /data/Task09_Spleen`.
# Without a display, only `--screenshot FILE.png` makes sense (it runs under Xvfb and exits).
set -euo pipefail
cd "$(dirname "$0")/.."
run=()
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  case " $* " in
    *" --screenshot"*) run=(xvfb-run -a -s "-screen 0 1280x1024x24") ;;
    *)
      echo "napari.sh: no display (DISPLAY and WAYLAND_DISPLAY are unset), so no window can be shown." >&2
      echo "Run it from a desktop session, or save what you would see:" >&2
      echo "  bash scripts/napari.sh [PATH] --screenshot shot.png" >&2
      exit 2
      ;;
  esac
fi
bash scripts/setup.sh
exec "${run[@]}" .venv/bin/python -m napari_medseg.launch "$@"
