#!/usr/bin/env bash
# Builds the libFuzzer targets outside SwiftPM: each module compiled with
# -sanitize=fuzzer,address into a static library, then one binary per target.
#   Fuzz/build.sh [TARGET...]      (default: change envelope frame noise)
# Binaries land in .build-fuzz/bin/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.build-fuzz
mkdir -p "$OUT/mod" "$OUT/bin"
FLAGS=(-sanitize=fuzzer,address -parse-as-library -O -g -I "$OUT/mod" -I Sources/CSodium)

module() { # NAME SOURCES...
    local name=$1; shift
    local stamp="$OUT/mod/$name.stamp"
    if [ -f "$stamp" ] && [ -z "$(find "$@" -newer "$stamp" 2>/dev/null | head -1)" ]; then return; fi
    echo "building module $name" >&2
    swiftc "${FLAGS[@]}" -module-name "$name" -emit-module -emit-module-path "$OUT/mod/$name.swiftmodule" \
        -emit-library -static -o "$OUT/mod/lib$name.a" "$@"
    touch "$stamp"
}

module SarabanCore $(find Sources/SarabanCore -name '*.swift' | sort)
module SarabanCrypto $(find Sources/SarabanCrypto -name '*.swift' | sort)
module SarabanFeed $(find Sources/SarabanFeed -name '*.swift' | sort)
module SarabanSync $(find Sources/SarabanSync -name '*.swift' | sort)

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(change envelope frame noise)
for t in "${targets[@]}"; do
    bin="$OUT/bin/$t"
    if [ -f "$bin" ] && [ -z "$(find Fuzz/shared.swift "Fuzz/$t.swift" "$OUT"/mod/*.a -newer "$bin" 2>/dev/null | head -1)" ]; then
        continue
    fi
    echo "building fuzz target $t" >&2
    swiftc "${FLAGS[@]}" -module-name "Fuzz_$t" Fuzz/shared.swift "Fuzz/$t.swift" \
        -L "$OUT/mod" -lSarabanSync -lSarabanFeed -lSarabanCrypto -lSarabanCore -lsodium -o "$OUT/bin/$t" 2> >(grep -v "Cannot export local symbol" >&2)
done
