#!/usr/bin/env bash
# Set up everything napari-medseg needs on a bare Debian machine with Python 3.11:
# the X virtual framebuffer and the libraries Qt needs, a virtual environment in .venv,
# and the project with its Qt and test extras. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(xvfb xauth libgl1 libegl1 libgl1-mesa-dri libxkbcommon-x11-0 libxcb-xinerama0 libxcb-icccm4
  libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xfixes0
  libxcb-cursor0 libdbus-1-3 libfontconfig1
  orthanc orthanc-dicomweb dicom3tools)  # a real PACS (DICOMweb) and the DICOM IOD validator for the tests
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.medseg-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[pyqt5,test]"
  touch "$stamp"
fi
