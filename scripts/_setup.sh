# Shared by scripts/demo and scripts/test: make .venv and install the project into it.
# Torch is installed first, pinned, only when the venv has none: a bare `torch`
# requirement would pull a multi-GB CUDA build on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
    "$VPY" -m pip install -q "torch==${SPECTRAMORPH_TORCH_VERSION:-2.13.0}"
fi
"$VPY" -m pip install -q -e ".[$1]"
