#!/usr/bin/env bash
# Set up (idempotent, see scripts/setup.sh), then run the demo: synthesize a small corpus, build the
# LM, train a supervised teacher, run self-training generations, print the WER table and write the
# audit reports. Re-running continues where an interrupted run stopped and redoes no finished work.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
WORK=${SELFTRAIN_DEMO_DIR:-demo_work}
ST="${SELFTRAIN_VENV:-.venv}/bin/selftrain"
start=$SECONDS
$ST synth --out "$WORK/corpus" --config recipes/synthetic/demo_corpus.yaml --quiet
C="$WORK/corpus"
$ST run --workdir "$WORK/experiment" --config recipes/synthetic/demo.yaml \
  --labeled "$C/labeled.csv" --unlabeled "$C/unlabeled.csv" --dev "$C/dev.csv" --test "$C/test.csv" \
  --lm-text "$C/lm_text.txt" --unlabeled-reference "$C/unlabeled_reference.csv"
last=$(ls -d "$WORK"/experiment/gen_* | tail -n 1)
echo
echo "summary:      $WORK/experiment/summary.json"
echo "audit report: $last/audit/audit.md (plots beside it)"
echo "demo wall time: $((SECONDS - start)) s (set-up excluded)"
