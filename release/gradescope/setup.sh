#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu 22.04 base).
# It installs Python 3.11 from Ubuntu's packages and the kit's pinned requirements.txt into a
# virtual environment at $AUTOGRADER_VENV; run_autograder uses that environment's Python.
set -euo pipefail

SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"  # /autograder/source on Gradescope
VENV="${AUTOGRADER_VENV:-/opt/two-layer-net-venv}"       # outside /root: the sandbox uid reads it

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates
python3.11 -m venv "$VENV"
"$VENV/bin/python" -m pip install --no-cache-dir --upgrade pip

# torch from PyTorch's CPU-only index, at the version requirements.txt pins: the default build
# for Linux on PyPI pulls several GB of CUDA libraries that a grader never uses.
TORCH_PIN="$(grep -E '^torch==' "$SOURCE/requirements.txt")"
"$VENV/bin/python" -m pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "$TORCH_PIN"
# Everything else from PyPI, pinned; the installed torch (2.x.y+cpu) satisfies torch==2.x.y.
"$VENV/bin/python" -m pip install --no-cache-dir -r "$SOURCE/requirements.txt"
"$VENV/bin/python" -c "import torch; assert torch.version.cuda is None, 'a CUDA build of torch was installed: ' + torch.__version__"

chmod -R a+rX "$VENV"
chmod 600 "$SOURCE/grader_secret.txt"  # root only: the grader reads it, submissions never can
echo "setup.sh: Python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())') in $VENV with the pinned requirements"
