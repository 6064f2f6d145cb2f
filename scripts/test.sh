#!/usr/bin/env bash
# Set up (idempotent, see scripts/setup.sh) and run the whole test suite: unit, then integration.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`: the fast lane, without the
# tests that train, run experiments or synthesize speech (markers in pyproject.toml). Another Python:
# `PYTHON=python3.12 SELFTRAIN_VENV=.venv-3.12 bash scripts/test.sh` (the variables of scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
set +e
"${SELFTRAIN_VENV:-.venv}/bin/python" -m pytest tests "$@"
status=$?
set -e
# pytest's exit 5 means "no test collected": treat as a failure with a clear message.
if [ "$status" -eq 5 ]; then echo "no test was collected" >&2; exit 1; fi
exit "$status"
