#!/usr/bin/env bash
# One-command set-up: a virtualenv in .venv with torch (CPU), the safety-gymnasium stack and sport itself.
# Usage: ./install.sh            (PYTHON=python3.11 ./install.sh to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "sport needs Python >= 3.11"'
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# This machine's pip config lists extra local indexes that may not exist; their warnings are noise.
exec 2> >(grep -v "WARNING: Location .* is ignored" >&2)
"${PIP[@]}" install --upgrade "pip>=23.2" setuptools wheel
# Exact pin: this version is the CPU wheel on these machines; a range would pull a multi-GB CUDA build.
"${PIP[@]}" install "torch==2.13.0"
# safety-gymnasium's own pins are uninstallable on 3.11, so its stack comes from a complete pinned list.
"${PIP[@]}" install --no-deps -r requirements/safety-gym.txt
# numpy stays at the safety stack's pin (tested with MuJoCo 2.3.3); without it cvxpy/ray would pull numpy 2.
NUMPY_PIN=$(grep -E '^numpy==' requirements/safety-gym.txt)
"${PIP[@]}" install -e ".[dev,ray,video,wandb]" -e examples/sport_example_plugin "$NUMPY_PIN"
echo "sport installed in $VENV: activate with 'source $VENV/bin/activate', then run 'sport --help'."
