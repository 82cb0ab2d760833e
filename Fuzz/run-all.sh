#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (CI: a short run, e.g. Fuzz/run-all.sh 30).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
failed=0
for t in change envelope frame noise; do
    Fuzz/run.sh "$t" "$seconds" || failed=1
done
exit $failed
