#!/usr/bin/env bash
# The web app's speed (issue 15): a node with 10,000 letters and 20,000 register lines
# (`saraban-bench web-seed`), served by `saraban serve`, measured with wrk (Debian's) at 200
# connections: the register page (receive book of a year, a logged-in session), GET
# /api/v1/letters?year= and GET /api/v1/search?q=<Thai word> (an API token). Prints each run's
# p50/p99/requests per second, the medians over RUNS, the daemon's VmRSS after the runs and the
# load average before each run (the machine is shared).
#
#   swift build -c release --product saraban-bench --product saraban --scratch-path .build-release
#   Scripts/web-bench.sh [BIN_DIR]        # default .build-release/release
#
# Environment: RUNS (3), DURATION (15s), CONNECTIONS (200), SEARCH_CONNECTIONS (10: search is
# measured at this concurrency too), THREADS (2), YEAR (2569), WORD (ประชุม), SEED_FROM (a data
# directory web-seed wrote, copied instead of seeding anew: the same letters for two builds).
set -euo pipefail
BIN=${1:-.build-release/release}
RUNS=${RUNS:-3}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-200}
SEARCH_CONNECTIONS=${SEARCH_CONNECTIONS:-10}
THREADS=${THREADS:-2}
YEAR=${YEAR:-2569}
WORD=${WORD:-ประชุม}
command -v wrk >/dev/null || { echo "web-bench: wrk is not installed (apt-get install wrk)" >&2; exit 69; }

WORK=$(mktemp -d /tmp/saraban-web-bench.XXXXXX)
DATA=$WORK/node
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

if [ -n "${SEED_FROM:-}" ]; then
    cp -a "$SEED_FROM" "$DATA"
else
    "$BIN/saraban-bench" web-seed "$DATA"
fi
export SARABAN_HOME=$DATA
(umask 077; printf 'bench-password-1\n' > "$WORK/pw")
"$BIN/saraban" user add bench --role clerk --password-file "$WORK/pw" >/dev/null
TOKEN=$("$BIN/saraban" token create --name bench --scope read | grep -o 'sbt_[A-Za-z0-9_-]*' | head -1)
PORT=$((20000 + RANDOM % 20000))
"$BIN/saraban" serve --listen 127.0.0.1:0 --http 127.0.0.1:$PORT >"$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
URL=http://127.0.0.1:$PORT

# Log in as a browser does: the login page's CSRF cookie, then the form.
JAR=$WORK/jar
curl -s -c "$JAR" "$URL/login" >/dev/null
CSRF=$(awk '$6 == "saraban_login" { print $7 }' "$JAR")
curl -s -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode "name=bench" --data-urlencode "password=bench-password-1" \
    --data-urlencode "_csrf=$CSRF" --data-urlencode "next=/" "$URL/login"
SESSION=$(awk '$6 == "saraban_session" { print $6 "=" $7 }' "$JAR")
[ -n "$SESSION" ] || { echo "web-bench: login failed" >&2; exit 1; }
QWORD=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$WORD")

# name, connections, header, path
TARGETS=(
    "register page|$CONNECTIONS|Cookie: $SESSION|/registers/receive?year=$YEAR"
    "GET /api/v1/letters?year=|$CONNECTIONS|Authorization: Bearer $TOKEN|/api/v1/letters?year=$YEAR"
    "GET /api/v1/search?q=$WORD|$SEARCH_CONNECTIONS|Authorization: Bearer $TOKEN|/api/v1/search?q=$QWORD"
    "GET /api/v1/search?q=$WORD|$CONNECTIONS|Authorization: Bearer $TOKEN|/api/v1/search?q=$QWORD"
)
rss() { awk '$1 == "VmRSS:" { r = $2 } $1 == "VmHWM:" { h = $2 } END { printf "VmRSS %.0f MB (peak %.0f MB)", r / 1024, h / 1024 }' /proc/$PID/status; }
echo "daemon after login: $(rss)"
ms() { # wrk's latency text (e.g. 812.00us, 12.34ms, 1.02s) in ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
for t in "${TARGETS[@]}"; do
    IFS='|' read -r name conns header path <<<"$t"
    name="$name ($conns connections)"
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "$header" "$URL$path")
    [ "$status" = 200 ] || { echo "web-bench: $name answered $status" >&2; exit 1; }
    p50s=(); p99s=(); rps=()
    for run in $(seq "$RUNS"); do
        load=$(cut -d' ' -f1 /proc/loadavg)
        out=$(wrk -t"$THREADS" -c"$conns" -d"$DURATION" --latency -H "$header" "$URL$path")
        p50=$(ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
        p99=$(ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
        r=$(awk '$1 == "Requests/sec:" { print $2 }' <<<"$out")
        errs=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | paste -sd';' || true)
        echo "  $name run $run: p50 $p50 ms, p99 $p99 ms, $r req/s (load $load)${errs:+; $errs}"
        p50s+=("$p50"); p99s+=("$p99"); rps+=("$r")
    done
    echo "$name: median p50 $(printf '%s\n' "${p50s[@]}" | median) ms, p99 $(printf '%s\n' "${p99s[@]}" | median) ms, $(printf '%s\n' "${rps[@]}" | median) req/s; daemon $(rss)"
done
echo "daemon after the runs: $(rss); $(awk '$1 == "RssAnon:" || $1 == "RssFile:" { printf "%s %.0f MB ", $1, $2 / 1024 }' /proc/$PID/status); load $(cut -d' ' -f1-3 /proc/loadavg)"
