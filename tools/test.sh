#!/usr/bin/env bash
# The whole test suite for a user, the same as CI: it runs .ci/run (lint, format, types, every test)
# in a fresh virtual environment of its own, .venv-test (GENCROP_VENV to change it), with
# * the CPU build of PyTorch where its index answers (a fraction of the default CUDA wheels' download),
#   else PyPI's torch;
# * no apt-get: the browser test of `gencrop serve` runs when Debian's chromium and chromium-driver are
#   installed, and skips (with the reason) when they are not.
# Tests that need the shared data folder ($GENCROP_SHARED, default ../shared) skip without it.
set -euo pipefail
cd "$(dirname "$0")/.."

CPU_INDEX="https://download.pytorch.org/whl/cpu"
if [ -z "${GENCROP_TORCH_INDEX+set}" ]; then
    # Linux and Windows have CPU wheels; macOS wheels on PyPI are CPU builds already.
    if [ "$(uname -s)" != Darwin ] && python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/torch/', timeout=10)" "$CPU_INDEX" 2>/dev/null; then
        export GENCROP_TORCH_INDEX="$CPU_INDEX"
        echo "tools/test.sh: PyTorch from the CPU index ($CPU_INDEX)"
    else
        export GENCROP_TORCH_INDEX=""
        echo "tools/test.sh: the CPU index cannot be reached (or is not needed here): PyTorch from PyPI"
    fi
fi
export GENCROP_VENV="${GENCROP_VENV:-.venv-test}" GENCROP_NO_APT=1
exec bash .ci/run
