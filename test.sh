#!/usr/bin/env bash
# The README's test command: set up what the build needs from the system (Scripts/system-packages.sh:
# installs it as root, else says the one command to run and exits 69), then build everything and
# run the tests. Arguments go to `swift test` (for example: ./test.sh --filter TextTraceTests).
set -euo pipefail
cd "$(dirname "$0")"
Scripts/system-packages.sh
swift build --build-tests
swift test "$@"
