#!/usr/bin/env bash
# The README's test command: set up what the build needs from the system (Scripts/system-packages.sh:
# installs it as root, else says the one command to run and exits 69), then build everything and
# run the tests. Arguments go to `swift test` (for example: ./test.sh --filter TextTraceTests).
#
# Without arguments the tests run as three processes, one after the other: the CLI suites, which
# run `saraban` as a child process and wait for it (lines prefixed `[cli]`); the suites with
# daemons and relays in the test process and as children (SarabanIntegrationTests,
# SarabanRelayTests; prefixed `[processes]`); and all the others. Swift's cooperative thread pool
# has one thread per core, and a synchronous test waiting for a child process holds one: on two
# cores two such tests left the socket suites no thread at all, and their timers resumed seconds
# late (a 0.2 s deadline fired after 10.6 s in CI, with the CLI suites in the same process).
set -euo pipefail
cd "$(dirname "$0")"
Scripts/system-packages.sh
swift build --build-tests
if [[ $# -gt 0 ]]; then exec swift test "$@"; fi

cli='^SarabanCLITests\.'
processes='^(SarabanIntegrationTests|SarabanRelayTests)\.'
# One after the other: run at the same time, the simulator's 1,000 seeds in the other group took
# both cores, and daemons in the child-process suites missed their waits (why7, the relay kill).
# Both groups' output is kept in .build/test-logs; at the end the failed tests and issues of
# both are printed again, so the last lines of a long run say what failed.
logs=.build/test-logs
mkdir -p "$logs"
status=0
( swift test --skip-build --filter "$cli" 2>&1 | sed -u 's/^/[cli] /' | tee "$logs/cli.log"
  exit "${PIPESTATUS[0]}" ) || status=$?
( swift test --skip-build --filter "$processes" 2>&1 | sed -u 's/^/[processes] /' | tee "$logs/processes.log"
  exit "${PIPESTATUS[0]}" ) || status=$?
( swift test --skip-build --skip "$cli" --skip "$processes" 2>&1 | tee "$logs/others.log"; exit "${PIPESTATUS[0]}" ) || status=$?
if [[ $status -ne 0 ]]; then
    echo "== test.sh: failed (exit $status); what failed, from $logs:" >&2
    grep -hE '✘|error:|Fatal error|fatal error|Signal|signal [0-9]|crashed|Test run with' "$logs"/*.log \
        | grep -v 'passed after' | head -80 >&2 || true
fi
exit "$status"
