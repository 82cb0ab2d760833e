#!/usr/bin/env bash
# Builds and runs one libFuzzer target for SECONDS with its seed corpus from Fixtures/fuzz/TARGET.
#   Fuzz/run.sh TARGET SECONDS [extra libFuzzer flags]
# TARGET is change, envelope, frame or noise. New inputs go to .build-fuzz/corpus/TARGET (the
# checked-in seeds stay untouched); a crash leaves crash-* in .build-fuzz/artifacts/ and exits non-zero.
# Replay a crash: .build-fuzz/bin/TARGET .build-fuzz/artifacts/crash-…
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: Fuzz/run.sh TARGET SECONDS}
seconds=${2:?usage: Fuzz/run.sh TARGET SECONDS}
shift 2
Fuzz/build.sh "$target"
mkdir -p ".build-fuzz/corpus/$target" .build-fuzz/artifacts
cp -n "Fixtures/fuzz/$target"/* ".build-fuzz/corpus/$target/" 2>/dev/null || true
# The frame target also starts from every golden wire frame (Fixtures/wire/*.hex: claims, claims
# digests, head tags, hellos, ...), so each message kind is in its corpus from the first run.
if [ "$target" = frame ]; then
    python3 - <<'PY'
import pathlib
for f in pathlib.Path("Fixtures/wire").glob("*.hex"):
    hexdigits = "".join(l for l in f.read_text().splitlines() if not l.startswith("#")).replace(" ", "")
    pathlib.Path(f".build-fuzz/corpus/frame/wire-{f.stem}.bin").write_bytes(bytes.fromhex(hexdigits))
PY
fi
log=".build-fuzz/$target.log"
set +e
".build-fuzz/bin/$target" ".build-fuzz/corpus/$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=.build-fuzz/artifacts/ "$@" >"$log" 2>&1
rc=$?
set -e
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
if [ $rc -eq 0 ]; then
    echo "$target: ok, ${seconds}s, $execs runs, $rate exec/s, $cov"
else
    echo "$target: FAILED (exit $rc) after $execs runs; see $log and .build-fuzz/artifacts/"
    grep -m5 -E 'ERROR|Fatal error|SUMMARY' "$log" || true
fi
exit $rc
