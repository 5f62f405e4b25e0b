#!/usr/bin/env bash
# Build the one-folder desktop bundle dist/xfr-desktop/ with PyInstaller, then run its
# self-test with no Python environment (env -i) and print the bundle's size.
#
#   bash packaging/build.sh                 CPU build (default)
#   bash packaging/build.sh --cuda          CUDA build (torch from the CUDA wheel index)
#   bash packaging/build.sh --venv .venv    build from an existing environment
#   bash packaging/build.sh --prepare-only  only create/update the build environment
#
# Environment: XFR_VARIANT (cpu|cuda), XFR_BUILD_VENV (default build/venv),
# XFR_TORCH_VERSION (default 2.13.0), XFR_TORCH_INDEX (a torch wheel index URL),
# PYTHON (interpreter that creates the build venv, default python3).
#
# The build venv holds the runtime dependencies only (no test tools, no lir): what
# is installed there is what PyInstaller can find, so it keeps the bundle lean.
set -euo pipefail
cd "$(dirname "$0")/.."

VARIANT=${XFR_VARIANT:-cpu}
BUILD_VENV=${XFR_BUILD_VENV:-build/venv}
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${XFR_TORCH_VERSION:-2.13.0}
TORCH_INDEX=${XFR_TORCH_INDEX:-}
PYINSTALLER_VERSION=6.22.3
HOOKS_CONTRIB_VERSION=2026.9
PREPARE_ONLY=0
SELF_TEST=1
INSTALL=1

while [ $# -gt 0 ]; do
    case "$1" in
        --cuda) VARIANT=cuda ;;
        --cpu) VARIANT=cpu ;;
        --venv) BUILD_VENV=$2; shift ;;
        --no-install) INSTALL=0 ;;
        --prepare-only) PREPARE_ONLY=1 ;;
        --no-self-test) SELF_TEST=0 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "build: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$VARIANT" in cpu|cuda) ;; *) echo "build: XFR_VARIANT must be cpu or cuda" >&2; exit 2 ;; esac

started=$SECONDS
say() { echo "build: $*"; }

# ---- build environment -----------------------------------------------------------
[ -x "$BUILD_VENV/bin/python" ] || { say "creating $BUILD_VENV"; "$PYTHON" -m venv "$BUILD_VENV"; }
PY=$BUILD_VENV/bin/python

torch_state() {  # "<version> <cuda version or None>", empty when torch is missing
    "$PY" -c 'import torch; print(torch.__version__, torch.version.cuda)' 2>/dev/null || true
}

install_torch() {
    local state version index_args=()
    state=$(torch_state)
    version=${state%% *}
    if [ -n "$state" ] && [ "${version%%+*}" = "$TORCH_VERSION" ]; then
        # the right version: keep it when it is the right kind (CPU or CUDA)
        if { [ "$VARIANT" = cpu ] && [ "${state##* }" = None ]; } \
            || { [ "$VARIANT" = cuda ] && [ "${state##* }" != None ]; }; then
            say "torch $state already installed"
            return
        fi
    fi
    if [ -n "$TORCH_INDEX" ]; then
        index_args=(--index-url "$TORCH_INDEX")
    elif [ "$VARIANT" = cuda ]; then
        index_args=(--index-url https://download.pytorch.org/whl/cu128)
    elif [ "$(uname -s)" = Linux ]; then
        # On Linux, PyPI's torch wheel is the CUDA build (plus ~3 GB of nvidia-*
        # wheels).  Use the configured indexes only when they offer a +cpu build
        # (a local wheel mirror), else PyTorch's CPU index.
        local offered
        offered=$("$PY" -m pip install --dry-run --quiet --no-deps --ignore-installed \
            --report - "torch==$TORCH_VERSION" 2>/dev/null \
            | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print(r["install"][0]["metadata"]["version"])' \
            2>/dev/null || true)
        case "$offered" in
            *+cpu) ;;
            *) index_args=(--index-url https://download.pytorch.org/whl/cpu) ;;
        esac
    fi
    say "installing torch==$TORCH_VERSION ($VARIANT) ${index_args[*]}"
    "$PY" -m pip install -q --force-reinstall --no-deps "${index_args[@]}" "torch==$TORCH_VERSION"
    # torch's own dependencies (sympy, networkx, ...; nvidia-* for CUDA) from the same place
    "$PY" -m pip install -q "${index_args[@]}" --extra-index-url https://pypi.org/simple \
        "torch==$TORCH_VERSION"
}

if [ "$INSTALL" = 1 ]; then
    "$PY" -m pip install -q --upgrade pip
    install_torch
    # the project itself (editable: PyInstaller reads the sources from this tree) and
    # its runtime dependencies; --no-deps for the two packages whose metadata pulls in
    # far more than the files used (see scripts/setup.sh)
    "$PY" -m pip install -q -e .
    "$PY" -m pip install -q --no-deps "rinoh-typeface-notosanscjk==0.0.1" "onnx2torch==1.5.15"
    "$PY" -m pip install -q "pyinstaller==$PYINSTALLER_VERSION" \
        "pyinstaller-hooks-contrib==$HOOKS_CONTRIB_VERSION"
fi

state=$(torch_state)
say "torch in the build environment: ${state:-missing}"
if [ "$VARIANT" = cpu ] && [ "${state##* }" != None ]; then
    say "the CPU variant needs the CPU build of torch (found: $state)" >&2
    exit 1
fi
if [ "$VARIANT" = cpu ] && "$PY" -m pip list 2>/dev/null | grep -qiE '^(nvidia-|triton )'; then
    say "warning: nvidia-*/triton packages are installed in $BUILD_VENV; the spec leaves them out" >&2
fi
[ "$PREPARE_ONLY" = 1 ] && { say "environment ready ($((SECONDS - started)) s)"; exit 0; }

# ---- bundle ------------------------------------------------------------------------
say "running PyInstaller ($VARIANT)"
XFR_VARIANT=$VARIANT "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/xfr-desktop.spec
say "bundle built in $((SECONDS - started)) s"

if [ "$SELF_TEST" = 1 ]; then
    say "self-test with no Python environment (env -i)"
    # no PATH, PYTHONPATH, VIRTUAL_ENV or HOME: the bundle must need none of them
    env -i dist/xfr-desktop/xfr-desktop --self-test
fi

say "size: $(du -sh dist/xfr-desktop | cut -f1) (dist/xfr-desktop); the 10 largest items:"
(cd dist/xfr-desktop && du -sh xfr xfr-desktop _internal/* | sort -rh | head -n 10)
say "done in $((SECONDS - started)) s"
