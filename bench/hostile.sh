#!/usr/bin/env bash
# Hostile-archive benchmark: time and peak RSS of forgekeep on archives built to be
# expensive (bench/hostile.py), optionally against an earlier forgekeep binary in the
# same invocation (the machine is shared and noisy: compare within one run only).
#
#   bench/hostile.sh [BEFORE]        # BEFORE: path of an earlier forgekeep binary
#
#   FK           the forgekeep measured      (default: <repo>/target/release/forgekeep)
#   DEEP         components of the deep path (default: 300000)
#   CHAINS       entries in 200-deep chains  (default: 20000)
#   WIDE         files for --only '/a/*'     (default: 60000)
#   BIG          entries of the big manifest (default: 2350000, ~250 MiB of JSON)
#   LIMIT        seconds per run             (default: 600)
#   CASES        which to run                (default: "deep chains wide big")
set -uo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
fk=${FK:-$repo/target/release/forgekeep}
before=${1:-}
limit=${LIMIT:-600}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in age zstd python3 /usr/bin/time timeout; do
    command -v "$t" >/dev/null || { echo "hostile.sh: needs $t" >&2; exit 1; }
done
"$fk" keygen -o "$work/key.txt" > "$work/recipient" 2>/dev/null

mk() { # KIND N NAME
    python3 "$here/hostile.py" "$1" "$2" "$work/$3.tar" &&
    zstd -q -T0 --rm "$work/$3.tar" -o "$work/$3.tar.zst" &&
    age -r "$(cat "$work/recipient")" -o "$work/$3.age" "$work/$3.tar.zst" &&
    rm "$work/$3.tar.zst"
    echo "# $3: $1 $2, $(stat -c %s "$work/$3.age") bytes encrypted"
}

run() { # LABEL TAG BIN ARGS...
    local label=$1 tag=$2 bin=$3; shift 3
    rm -rf "$work/to"
    /usr/bin/time -f "%e %M" -o "$work/time" timeout "$limit" "$bin" "$@" >/dev/null 2>"$work/err"
    local rc=$?
    # GNU time puts "Command exited with non-zero status N" first when it did.
    read -r secs kib < <(tail -n 1 "$work/time") || { secs=?; kib=0; }
    printf '%-44s %-7s exit %3s  %8s s  %8s MiB  %s\n' "$label" "$tag" "$rc" "$secs" \
        "$(( ${kib:-0} / 1024 ))" "$(tail -c 160 "$work/err" | tr '\n' ' ' | cut -c1-110)"
}

both() { # LABEL ARGS...
    local label=$1; shift
    [ -n "$before" ] && run "$label" before "$before" "$@"
    run "$label" after "$fk" "$@"
}

k=(-i "$work/key.txt")
cases=" ${CASES:-deep chains wide big} "
if [[ $cases == *" deep "* ]]; then
mk deep "${DEEP:-300000}" deep
both "verify: one path of ${DEEP:-300000} components" verify "$work/deep.age" "${k[@]}"
fi
if [[ $cases == *" chains "* ]]; then
mk chains "${CHAINS:-20000}" chains
both "verify: ${CHAINS:-20000} entries in 200-deep chains" verify "$work/chains.age" "${k[@]}"
fi
if [[ $cases == *" wide "* ]]; then
mk wide "${WIDE:-60000}" wide
both "restore --dry-run --only '/a/*': ${WIDE:-60000}" restore "$work/wide.age" "${k[@]}" --to "$work/to" --dry-run --only '/a/*'
fi
if [[ $cases == *" big "* ]]; then
mk big "${BIG:-2350000}" big
both "verify: ${BIG:-2350000}-entry manifest" verify "$work/big.age" "${k[@]}"
both "restore --dry-run: ${BIG:-2350000}-entry manifest" restore "$work/big.age" "${k[@]}" --to "$work/to" --dry-run
raise=(--max-entries 3000000 --max-manifest-bytes 1G)
run "verify, ceilings raised: big manifest" after "$fk" verify "$work/big.age" "${k[@]}" "${raise[@]}"
run "restore --dry-run, ceilings raised" after "$fk" restore "$work/big.age" "${k[@]}" --to "$work/to" --dry-run "${raise[@]}"
fi
