#!/usr/bin/env bash
# Single-node demo until the sync issue lands the demo network: two offices, each its own data
# directory, exchange a letter as change files (the USB-stick workflow), edit it concurrently,
# and converge with the conflict kept.
set -euo pipefail
cd "$(dirname "$0")/.."

# SARABAN_BUILD_ARGS passes extra flags to swift build (for example --scratch-path DIR).
read -r -a BUILD_ARGS <<<"${SARABAN_BUILD_ARGS:-}"
swift build "${BUILD_ARGS[@]}" --product saraban >&2
SARABAN="$(swift build "${BUILD_ARGS[@]}" --show-bin-path)/saraban"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/saraban-demo.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
A="$WORK/chiangmai"   # สำนักงานจังหวัดเชียงใหม่
B="$WORK/moi"         # กระทรวงมหาดไทย

say() { printf '\n== %s\n' "$*"; }
a() { "$SARABAN" "$@" --data "$A"; }
b() { "$SARABAN" "$@" --data "$B"; }

say "Two offices initialise their nodes"
a init --office "สำนักงานจังหวัดเชียงใหม่" --code ชม
b init --office "กระทรวงมหาดไทย" --code มท

say "Chiang Mai drafts an urgent letter"
LETTER=$(a doc new --kind letter \
    --set "ที่=ชม ๐๐๑๗/ว ๑๒๓" \
    --set "subject=ขออนุมัติเดินทางไปราชการ" \
    --set "เรียน=ปลัดกระทรวงมหาดไทย" \
    --set "urgency=ด่วนที่สุด")
echo "letter: $LETTER"
a text insert "$LETTER" body 0 "ด้วยจังหวัดเชียงใหม่มีความประสงค์ขออนุมัติเดินทาง"
a text insert "$LETTER" body 49 " จึงเรียนมาเพื่อโปรดพิจารณา"
a set add "$LETTER" tags "ด่วนที่สุด"
a set add "$LETTER" tags "การเดินทาง"
a list append "$LETTER" routing "สารบรรณจังหวัด → ผู้ว่าราชการจังหวัด"
a doc show "$LETTER"

say "The letter travels to the ministry as a change file"
a doc export "$LETTER" "$WORK/letter.changes"
b doc merge "$WORK/letter.changes"
b doc merge "$WORK/letter.changes"   # idempotent: everything is a duplicate now
b doc list

say "Both offices edit the subject while cut off from each other"
a doc set "$LETTER" subject "ขออนุมัติเดินทางไปราชการ (แก้ไขครั้งที่ ๑)"
b doc set "$LETTER" subject "ขออนุมัติเดินทางไปราชการ ณ กรุงเทพมหานคร"
b list append "$LETTER" routing "สารบรรณกลาง มท → กองการเจ้าหน้าที่"
b set remove "$LETTER" tags "การเดินทาง"
a set add "$LETTER" tags "การเดินทาง"     # concurrent add: add wins

say "They exchange change files both ways"
a doc export "$LETTER" "$WORK/a.changes"
b doc export "$LETTER" "$WORK/b.changes"
a doc merge "$WORK/b.changes"
b doc merge "$WORK/a.changes"

say "Chiang Mai's view (the conflict is kept, nobody's edit vanished)"
a doc show "$LETTER"
say "Both replicas hold the same state"
if diff <(a doc show --json "$LETTER") <(b doc show --json "$LETTER") >/dev/null; then
    echo "identical: yes"
else
    echo "identical: NO" >&2
    exit 1
fi

say "The ministry resolves the conflict; Chiang Mai receives the resolution"
b doc set "$LETTER" subject "ขออนุมัติเดินทางไปราชการ ณ กรุงเทพมหานคร (ยืนยัน)"
b doc export "$LETTER" "$WORK/resolve.changes"
a doc merge "$WORK/resolve.changes"
a doc get "$LETTER" subject

say "Status"
a status
b status --json
