#!/usr/bin/env bash
# Set up (idempotent, see scripts/setup.sh) and run the whole test suite: unit, then integration.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`: the fast lane, without the
# tests that train, run experiments or synthesize speech (markers in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
set +e
.venv/bin/python -m pytest tests "$@"
status=$?
set -e
# pytest's exit 5 means "no test collected": treat as a failure with a clear message.
if [ "$status" -eq 5 ]; then echo "no test was collected" >&2; exit 1; fi
exit "$status"
