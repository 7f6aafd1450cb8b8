#!/usr/bin/env bash
# Create the Python virtual environment of the peer comparison and install the pinned packages
# of requirements.txt from PyPI. Needs python3 (3.11 or later, for pandas 3) with venv.
#
# Usage: benches/peer/setup.sh [VENV_DIR]   (default: target/peer-venv in the repository)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-$repo/target/peer-venv}"

python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
"$venv/bin/python" -c 'import vt, pandas, pyarrow; print("peer venv ready:", vt.__version__, pandas.__version__, pyarrow.__version__)'
