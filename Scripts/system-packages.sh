#!/usr/bin/env bash
# Checks (and, run as root on Debian or Ubuntu, installs) what building Saraban needs from the
# system: Swift, pkg-config, libsodium-dev and libsqlite3-dev. The two README commands
# (./test.sh and ./Sync/demo.sh) run it first, so they work on a fresh machine.
#
# Exit 0: everything is there (after installing it, as root). Exit 69 (EX_UNAVAILABLE): something
# is missing and this user cannot install it; the message gives the one command to run.
# SARABAN_SETUP_UID overrides the user id it acts on (tests use it to act as a non-root user).
set -euo pipefail

packages=(pkg-config libsodium-dev libsqlite3-dev)

missing() {
    local out=()
    command -v pkg-config >/dev/null 2>&1 || out+=(pkg-config)
    if command -v pkg-config >/dev/null 2>&1; then
        pkg-config --exists libsodium 2>/dev/null || out+=(libsodium-dev)
        pkg-config --exists sqlite3 2>/dev/null || out+=(libsqlite3-dev)
    else
        out+=(libsodium-dev libsqlite3-dev)
    fi
    echo "${out[@]:-}"
}

if ! command -v swift >/dev/null 2>&1; then
    echo "saraban: Swift 6 is needed and \`swift\` is not on PATH: install it from https://www.swift.org/install/linux/ (then run this again)" >&2
    exit 69
fi

need=$(missing)
[ -z "$need" ] && exit 0

uid=${SARABAN_SETUP_UID:-$(id -u)}
if ! command -v apt-get >/dev/null 2>&1; then
    echo "saraban: the build needs pkg-config and the development files of libsodium and SQLite (missing: $need);" \
        "install them with this system's package manager (for example: dnf install pkgconf libsodium-devel sqlite-devel), then run this again" >&2
    exit 69
fi
if [ "$uid" != 0 ]; then
    echo "saraban: the build needs these system packages, missing here: $need" >&2
    echo "saraban: install them once with:   sudo apt-get install -y ${packages[*]}" >&2
    exit 69
fi
echo "saraban: installing the system packages the build needs (missing: $need)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${packages[@]}" >/dev/null
need=$(missing)
if [ -n "$need" ]; then
    echo "saraban: apt-get ran but these are still missing: $need; install them by hand: apt-get install -y ${packages[*]}" >&2
    exit 69
fi
