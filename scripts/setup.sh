#!/usr/bin/env bash
# Install XFR Desktop and everything it needs into ./.venv (idempotent).
#
# Order matters: the CPU build of torch goes in first, on its own; the project's torch
# range is then already satisfied and pip fetches no multi-GB CUDA build.  onnx2torch
# is installed without its dependencies because its metadata asks for torchvision,
# which would replace the CPU torch (see core/models/onnx_model.py).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_VERSION=${XFR_TORCH_VERSION:-2.13.0}

# Qt needs a few X/EGL client libraries that minimal Debian/Ubuntu images lack.
# Install them when we can (root with apt); otherwise say what to install.
QT_DEBS="libegl1 libgl1 libfontconfig1 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3 \
libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 \
libxcb-randr0 libxcb-render-util0 libxcb-image0"
if command -v dpkg-query >/dev/null 2>&1; then
    missing=""
    for deb in $QT_DEBS; do
        dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "ok installed" \
            || missing="$missing $deb"
    done
    if [ -n "$missing" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "setup: installing Qt system libraries:$missing"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
        else
            echo "setup: the GUI needs these system packages:$missing" >&2
            echo "       install them with: sudo apt-get install$missing" >&2
        fi
    fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
VENV_PY=.venv/bin/python
"$VENV_PY" -m pip install -q --upgrade pip
"$VENV_PY" -m pip install -q "torch==${TORCH_VERSION}"
"$VENV_PY" -m pip install -q -e ".[test]"
# Noto Sans CJK for reports (CJK names embedded in the PDF).  --no-deps: the package
# only needs its font files, not rinohtype and its ~25 dependencies.
"$VENV_PY" -m pip install -q --no-deps "rinoh-typeface-notosanscjk==0.0.1"
"$VENV_PY" -m pip install -q --no-deps "onnx2torch==1.5.15"
echo "setup: done ($("$VENV_PY" -c 'import torch; print("torch", torch.__version__)'))"
