#!/usr/bin/env bash
# The demo network on loopback: a cloud relay and three office nodes, each a `saraban serve`
# process with its own data directory. The offices share one space (by invitation); they write
# while the relay is down, two of them write while cut off from each other, the links return,
# and every office ends with the same documents, including the conflict the cut created.
# Then the clerk's day between the offices: อำเภอเมือง drafts a letter in its own space, signs and
# sends it to both อบต. (a sealed dispatch in the shared space), each finds it in its inbox, one
# takes it in (its own record and receive number) and the other sends it back, and the receipts
# reach อำเภอเมือง's record. Exits 0 only if everything converged and every receipt came back.
# Cleans up its processes and files on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# What the build needs from the system: installed here as root, else the one command to run (exit 69).
Scripts/system-packages.sh

# SARABAN_BUILD_ARGS passes extra flags to swift build (for example --scratch-path DIR).
read -r -a BUILD_ARGS <<<"${SARABAN_BUILD_ARGS:-}"
swift build "${BUILD_ARGS[@]}" --product saraban >&2
SARABAN="$(swift build "${BUILD_ARGS[@]}" --show-bin-path)/saraban"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/saraban-demo.XXXXXX")"
export SARABAN_LOG_LEVEL="${SARABAN_LOG_LEVEL:-notice}"

declare -A PID PORT DIR NAME
NODES=(cloud banmai nongbua mueang)
DIR[cloud]="$WORK/cloud";     NAME[cloud]="คลาวด์กลาง (relay)"
DIR[banmai]="$WORK/banmai";   NAME[banmai]="อบต.บ้านใหม่"
DIR[nongbua]="$WORK/nongbua"; NAME[nongbua]="อบต.หนองบัว"
DIR[mueang]="$WORK/mueang";   NAME[mueang]="อำเภอเมือง"
OFFICES=(banmai nongbua mueang)

cleanup() {
    local status=$?
    for n in "${NODES[@]}"; do
        if [[ -n "${PID[$n]:-}" ]]; then kill -TERM "${PID[$n]}" 2>/dev/null || true; fi
    done
    for n in "${NODES[@]}"; do
        if [[ -n "${PID[$n]:-}" ]]; then wait "${PID[$n]}" 2>/dev/null || true; fi
    done
    if [[ $status -ne 0 ]]; then
        echo "demo failed (status $status); the nodes' logs:" >&2
        for n in "${NODES[@]}"; do [[ -f "$WORK/$n.log" ]] && sed "s/^/  $n: /" "$WORK/$n.log" | tail -n 15 >&2; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }
s() { local n=$1; shift; "$SARABAN" "$@" --data "${DIR[$n]}"; }

# Starts `saraban serve` for node $1 (on the port it had before, or a free one) and waits for
# its ready line: `serving NODE_ID on HOST:PORT (role)`.
start() {
    local n=$1 extra=()
    [[ $n == cloud ]] && extra=(--relay)
    : >"$WORK/$n.out"
    "$SARABAN" serve --data "${DIR[$n]}" --listen "127.0.0.1:${PORT[$n]:-0}" --http 127.0.0.1:0 --max-backoff 1 "${extra[@]}" \
        >"$WORK/$n.out" 2>>"$WORK/$n.log" &
    PID[$n]=$!
    for _ in $(seq 100); do
        if grep -q '^serving ' "$WORK/$n.out"; then
            PORT[$n]=$(sed -n 's/^serving .* on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$WORK/$n.out")
            echo "  ${NAME[$n]}: $(head -n 1 "$WORK/$n.out")"
            return
        fi
        kill -0 "${PID[$n]}" 2>/dev/null || { echo "serve for $n exited" >&2; return 1; }
        sleep 0.1
    done
    echo "serve for $n did not become ready" >&2
    return 1
}

stop() {
    local n=$1
    kill -TERM "${PID[$n]}"
    local status=0
    wait "${PID[$n]}" || status=$?
    PID[$n]=""
    echo "  ${NAME[$n]} stopped (SIGTERM, exit $status)"
    [[ $status -eq 0 ]]
}

# A digest of everything an office shows of its documents: the list and every document in full.
digest() {
    local n=$1
    {
        s "$n" doc list --json
        for id in $(s "$n" doc list --json | sed -n 's/.*"id" : "\(.*\)".*/\1/p'); do s "$n" doc show --json "$id"; done
    } | sha256sum | cut -c1-16
}

# Waits (up to $2 seconds) until the given offices show identical documents.
converge() {
    local what=$1 timeout=$2; shift 2
    local deadline=$((SECONDS + timeout)) first d same
    while :; do
        same=1 first=""
        for n in "$@"; do
            d=$(digest "$n")
            if [[ -z $first ]]; then first=$d; elif [[ $d != "$first" ]]; then same=0; fi
        done
        if [[ $same == 1 ]]; then
            echo "  converged ($what): every office's documents digest to $first"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            echo "  NOT converged ($what) after ${timeout}s:" >&2
            for n in "$@"; do echo "    ${NAME[$n]}: $(digest "$n")" >&2; done
            return 1
        fi
        sleep 0.3
    done
}

T0=$SECONDS
say "A cloud relay and three offices initialise their nodes"
s cloud init --relay --office "${NAME[cloud]}" 2>/dev/null >"$WORK/cloud.id"
s banmai init --office "${NAME[banmai]}" --code บม 2>/dev/null >"$WORK/banmai.id"
s nongbua init --office "${NAME[nongbua]}" --code นบ 2>/dev/null >"$WORK/nongbua.id"
s mueang init --office "${NAME[mueang]}" --code มอ 2>/dev/null >"$WORK/mueang.id"
declare -A ID
for n in "${NODES[@]}"; do ID[$n]=$(cat "$WORK/$n.id"); echo "  ${NAME[$n]}: ${ID[$n]}"; done

say "อำเภอเมือง creates a shared space and invites the two อบต.; the relay carries it without its key"
SPACE=$(s mueang space create "สารบรรณอำเภอ")
for n in banmai nongbua; do
    s mueang space invite "$SPACE" "${ID[$n]}" --office "${NAME[$n]}" --out "$WORK/$n.invite" >/dev/null
    s "$n" space join "$WORK/$n.invite"
done
s cloud space carry "$SPACE" --name "สารบรรณอำเภอ"
echo "  space $SPACE"

say "Every node starts \`saraban serve\` (port 0: each prints the port it got)"
for n in "${NODES[@]}"; do start "$n"; done

# Links: every office to the relay, and the offices in a line บ้านใหม่ — หนองบัว — อำเภอเมือง
# (บ้านใหม่ and อำเภอเมือง have no direct link: they reach each other through หนองบัว or the cloud).
for n in "${OFFICES[@]}"; do
    s "$n" peer add "${ID[cloud]}" "127.0.0.1:${PORT[cloud]}" --name cloud 2>/dev/null
    s cloud peer add "${ID[$n]}" "127.0.0.1:${PORT[$n]}" --name "${NAME[$n]}" 2>/dev/null
done
s banmai peer add "${ID[nongbua]}" "127.0.0.1:${PORT[nongbua]}" --name "${NAME[nongbua]}" 2>/dev/null
s nongbua peer add "${ID[banmai]}" "127.0.0.1:${PORT[banmai]}" --name "${NAME[banmai]}" 2>/dev/null
s nongbua peer add "${ID[mueang]}" "127.0.0.1:${PORT[mueang]}" --name "${NAME[mueang]}" 2>/dev/null
s mueang peer add "${ID[nongbua]}" "127.0.0.1:${PORT[nongbua]}" --name "${NAME[nongbua]}" 2>/dev/null

# The clerks' web app of อำเภอเมือง (every node serves one; port 0 picks a free one).
printf '%s\n' 'demo-สารบรรณ' | s mueang user add clerk --role clerk --display "เจ้าหน้าที่สารบรรณ" --password-file - 2>/dev/null
for _ in $(seq 50); do grep -q '^web app at ' "$WORK/mueang.out" && break; sleep 0.1; done
echo "  ${NAME[mueang]}'s web app: $(sed -n 's/^web app at //p' "$WORK/mueang.out") (log in as clerk / demo-สารบรรณ;" \
    "set SARABAN_DEMO_WAIT=1 to keep the demo running until Enter)"

say "อำเภอเมือง drafts a letter (written with the CLI while its daemon runs)"
LETTER=$(s mueang doc new --space "$SPACE" --kind letter \
    --set "ที่=มอ ๐๐๑๗/ว ๑๒๓" --set "subject=ขอเชิญประชุมประจำเดือน" --set "เรียน=นายก อบต." --set "urgency=ด่วน")
echo "  letter $LETTER"
converge "the letter reached every office" 20 "${OFFICES[@]}"

say "The cloud goes down; the offices keep working and sync office to office"
stop cloud
s banmai doc set "$LETTER" "ผู้เข้าร่วม.บ้านใหม่" "นายสมชาย ใจดี"
s nongbua doc set "$LETTER" "ผู้เข้าร่วม.หนองบัว" "นางสาวมาลี ศรีสุข"
MEMO=$(s banmai doc new --space "$SPACE" --kind memo --set "subject=รายงานน้ำท่วมหมู่ ๓")
echo "  บ้านใหม่ wrote memo $MEMO; it reaches อำเภอเมือง through หนองบัว"
converge "without the cloud" 20 "${OFFICES[@]}"

say "หนองบัว goes offline too: บ้านใหม่ and อำเภอเมือง are cut off from each other"
stop nongbua
s banmai doc set "$LETTER" subject "ขอเชิญประชุมประจำเดือน (เลื่อนเป็นวันศุกร์)"
sleep 1.1   # so the two edits carry visibly different times
s mueang doc set "$LETTER" subject "ขอเชิญประชุมประจำเดือน ณ ห้องประชุมอำเภอ"
s mueang doc set "$LETTER" "วาระ" "๑. เรื่องแจ้งเพื่อทราบ"
echo "  บ้านใหม่ sees:   $(s banmai doc get "$LETTER" subject)"
echo "  อำเภอเมือง sees: $(s mueang doc get "$LETTER" subject)"

say "The links return: หนองบัว and the cloud come back"
start nongbua
start cloud
converge "after the links returned" 30 "${OFFICES[@]}"

say "The cloud relay caught up too (it holds the envelopes, never the key): its view of each office"
deadline=$((SECONDS + 20))
while :; do
    lag=$(s cloud peer list --json | sed -n 's/.*"changes_\(peer_lacks\|we_lack\)" : \([0-9]*\).*/\2/p' | sort -u | tr '\n' ' ')
    [[ $lag == "0 " ]] && break
    ((SECONDS < deadline)) || { echo "  the cloud still lags: $lag" >&2; exit 1; }
    sleep 0.3
done
s cloud peer list

say "The conflict the cut created (both values kept, with author and time; an officer resolves it with doc set)"
for n in "${OFFICES[@]}"; do
    echo "  author $(s "$n" id --json | sed -n 's/.*"replica" : "\(.\{8\}\).*/\1/p') = ${NAME[$n]}"
done
s banmai doc show "$LETTER"
for n in "${OFFICES[@]}"; do
    echo "  ${NAME[$n]}: $(digest "$n")"
done
conflicts=$(s banmai doc show --json "$LETTER" | grep -c '"stamp"' || true)
[[ $conflicts -ge 2 ]] || { echo "expected the subject conflict to be kept" >&2; exit 1; }

# Waits (up to $2 seconds) until command "${@:3}" prints something matching $1.
await() {
    local pattern=$1 timeout=$2; shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" 2>/dev/null | grep -q -- "$pattern"; do
        ((SECONDS < deadline)) || { echo "  timed out waiting for: $pattern" >&2; return 1; }
        sleep 0.3
    done
}

say "The clerk's day: อำเภอเมือง drafts a letter in its own space (no other office sees a draft)"
PASS="$WORK/officer.pass"; (umask 077; printf "%s\n" "รหัสผ่าน-นายอำเภอ" > "$PASS")   # the officer's passphrase (owner-only)
s mueang officer add "นายอำเภอ ตัวอย่าง" --position "นายอำเภอเมือง" --passphrase-file "$PASS" >/dev/null
DRAFT=$(s mueang letter new --kind ภายนอก --subject "ขอเชิญประชุมคณะกรรมการหมู่บ้าน" --to "นายก อบต." --urgency ด่วน \
    --set "ข้อความ=อำเภอขอเชิญท่านเข้าร่วมประชุม ณ ห้องประชุมอำเภอ" --set "คำลงท้าย=ขอแสดงความนับถือ" 2>/dev/null)
s mueang letter sign "$DRAFT" --officer "นายอำเภอ ตัวอย่าง" --passphrase-file "$PASS"
s mueang letter show "$DRAFT" | sed -n 's/^\(อยู่ที่\)/  \1/p'
s mueang office list

say "It sends the letter to both อบต.: numbered and sealed in one dispatch, delivered by sync"
s mueang letter send "$DRAFT" --to "${NAME[banmai]}" --to "${NAME[nongbua]}"
for n in banmai nongbua; do
    await "ขอเชิญประชุมคณะกรรมการหมู่บ้าน" 30 s "$n" letter inbox
    echo "  ${NAME[$n]}'s inbox:"
    s "$n" letter inbox | sed 's/^/    /'
done
DISPATCH=$(s banmai letter inbox --json | sed -n 's/.*"dispatch" : "\(.*\)".*/\1/p' | head -n 1)

say "บ้านใหม่ takes it in (its own record and receive number); หนองบัว sends it back (ส่งคืน)"
s banmai letter receive "$DISPATCH"
s nongbua letter return "$DISPATCH" --reason "ไม่ใช่เรื่องของ อบต.หนองบัว" >/dev/null
if s nongbua doc set "$DISPATCH" "เรื่อง" "แก้ไข" 2>/dev/null; then echo "a dispatch was changed" >&2; exit 1; fi
echo "  หนองบัว cannot change the dispatch (sealed: exit 68)"

say "The receipts reach อำเภอเมือง's record of the letter"
await "รับแล้ว เลขรับ 1" 30 s mueang letter show "$DRAFT"
await "ส่งคืน: ไม่ใช่เรื่องของ" 30 s mueang letter show "$DRAFT"
s mueang letter show "$DRAFT" | grep '^ส่งถึง' | sed 's/^/  /'
s mueang letter verify "$DRAFT" >/dev/null && echo "  signature and registry stamp verify at อำเภอเมือง"
echo "  บ้านใหม่'s receive book:"
s banmai register show receive | sed 's/^/    /'

say "Done in $((SECONDS - T0)) s: every office holds the same documents, nothing written was lost, every receipt came back"
if [[ -n ${SARABAN_DEMO_WAIT:-} ]]; then
    echo "  ${NAME[mueang]}'s web app: $(sed -n 's/^web app at //p' "$WORK/mueang.out") (clerk / demo-สารบรรณ); press Enter to stop"
    read -r _
fi
