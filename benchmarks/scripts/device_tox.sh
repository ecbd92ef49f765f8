#!/bin/bash
# `tox -e cuda` on the GPU machine, which has no network: tox and every requirement the host
# lacks come from the wheels carried in .whl-tox (cp312 manylinux, `pip download`), pip reads
# nothing else (PIP_NO_INDEX). The host's torch lives in a virtualenv, so its site-packages is
# passed through PYTHONPATH (see the cuda env in tox.ini). Logs go to $OUT.
# Usage (repo root, $OUT set, carry .whl-tox): bash benchmarks/scripts/device_tox.sh [-- pytest args]
set -o pipefail
export PYTHONUNBUFFERED=1
W=$PWD/.whl-tox
python3 -m pip install -q --no-index --find-links "$W" --target /tmp/toxsite tox > $OUT/tox_install.log 2>&1 \
  || { echo "installing tox failed"; tail -5 $OUT/tox_install.log; exit 1; }
SITE=$(python3 -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
python3 -c "import sys; print('host python', sys.version.split()[0], 'prefix', sys.prefix, 'base', sys.base_prefix)"
export PIP_NO_INDEX=1 PIP_FIND_LINKS=$W MAX_JOBS=16 VLLM_CUDA_ARCHS=90 TORCH_CUDA_ARCH_LIST=9.0
start=$(date +%s)
PYTHONPATH=/tmp/toxsite python3 -m tox --version
# SIGINT first: pytest then reports where it was (a hung test or teardown) before it stops.
PYTHONPATH=/tmp/toxsite:$SITE timeout -s INT -k 20 ${TOX_TIMEOUT:-540} python3 -m tox -e cuda "$@" \
  > $OUT/tox_cuda.log 2>&1
rc=$?
echo "tox -e cuda rc=$rc in $(( $(date +%s) - start )) s"
grep -E "passed|failed|error" $OUT/tox_cuda.log | tail -5
tail -25 $OUT/tox_cuda.log
