#!/usr/bin/env bash
# forgekeep on S3: upload and download throughput and peak memory, against the same archive
# written to (and read from) a local folder, in one run (issue 11).
#
#   bench/s3.sh                    moto on 127.0.0.1 (started here, as the tests start it)
#   . RUN/env; BENCH_S3_BUCKET=forgekeep bench/s3.sh
#                                  any store the AWS_* environment names (Garage: see
#                                  bench/garage.sh, which writes RUN/env)
#
# Data: the bulk set of ../shared/bench/mkdata.py (1 GiB, 1024 files, half incompressible),
# cached in bench/data as bench/run.sh caches it. Per repetition, interleaved:
#   backup  -o LOCAL_DIR/            and   backup  -o s3://BUCKET/bench-<pid>/
#   verify  LOCAL_ARCHIVE            and   verify  s3://BUCKET/bench-<pid>/NAME
#   restore LOCAL_ARCHIVE --to DIR   and   restore s3://…/NAME --to DIR
# Wall time (median), user+system CPU, peak RSS (GNU time %M of the forgekeep process),
# throughput = archive bytes / wall time, and the ratio s3 / local. On a shared machine the
# ratios of one run are the figure, not the times; moto is a Python server, so against it
# the S3 side measures moto as much as forgekeep (Garage is the realistic store).
#
#   BENCH_DATA   cached data sets      (default: <repo>/bench/data)
#   BENCH_OUT    scratch folder        (default: <repo>/bench/out-s3; removed at exit)
#   BENCH_SET    data set              (default: bulk)
#   BENCH_REPS   repetitions           (default: 3)
#   BENCH_S3_BUCKET  bucket to use when AWS_ENDPOINT_URL is set (must exist)
#   BENCH_NO_BUILD   1 = do not run cargo build --release
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
shared=$(cd "${FORGEKEEP_SHARED:-$here/../../shared}" && pwd)
data=${BENCH_DATA:-$repo/bench/data}
out=${BENCH_OUT:-$repo/bench/out-s3}
set_name=${BENCH_SET:-bulk}
reps=${BENCH_REPS:-3}
fk=$repo/target/release/forgekeep

die() { echo "s3.sh: $*" >&2; exit 1; }
note() { echo "# $*" >&2; }

for t in python3 awk /usr/bin/time; do command -v "$t" >/dev/null || die "$t is needed"; done
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    note "cargo build --release"
    (cd "$repo" && cargo build --release --quiet) || die "build failed"
fi
[ -x "$fk" ] || die "$fk missing (cargo build --release)"

mkdir -p "$data"
python3 "$shared/bench/mkdata.py" "$data" >&2
src=$(cd "$data/$set_name" && pwd)

rm -rf "$out"; mkdir -p "$out/local"; out=$(cd "$out" && pwd)
moto_pid=
cleanup() {
    [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null
    rm -rf "$out"
}
trap cleanup EXIT

# --- the store ------------------------------------------------------------------
if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
    python3 -c 'import moto.server' 2>/dev/null \
        || die "no AWS_ENDPOINT_URL and no moto (python3 -m pip install 'moto[server]==5.2.1')"
    coproc MOTO { exec python3 "$repo/tests/s3/moto_server.py" 2>/dev/null; }
    moto_pid=$MOTO_PID
    read -r word port <&"${MOTO[0]}"
    [ "$word" = PORT ] || die "moto did not start"
    export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_REGION=us-east-1
    export AWS_ACCESS_KEY_ID=AKIAFORGEKEEPBENCH AWS_SECRET_ACCESS_KEY=bench-secret-not-real
    bucket=forgekeep-bench
    python3 - "$AWS_ENDPOINT_URL" "$bucket" <<'EOF'
import sys, boto3
boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
             aws_access_key_id="x", aws_secret_access_key="x").create_bucket(Bucket=sys.argv[2])
EOF
    store="moto $(python3 -c 'import moto; print(moto.__version__)') on 127.0.0.1"
else
    bucket=${BENCH_S3_BUCKET:?set BENCH_S3_BUCKET to an existing bucket of $AWS_ENDPOINT_URL}
    store=$AWS_ENDPOINT_URL
fi
prefix=s3://$bucket/bench-$$/

key=$out/key.txt
recipient=$("$fk" keygen -o "$key" 2>&1 | grep -o 'age1[0-9a-z]*' | head -n1)
[ -n "$recipient" ] || die "forgekeep keygen printed no recipient"

# --- measurement ------------------------------------------------------------------
now_us() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }
results=$out/results.tsv   # op  where  rep  microseconds  peak_kib  cpu_s
: >"$results"

timed() { # op where rep command...
    local op=$1 where=$2 rep=$3 t0 t1 rc=0
    shift 3
    sync
    t0=$(now_us)
    /usr/bin/time -f '%M %U %S' -o "$out/time" "$@" >"$out/log" 2>"$out/err" || rc=$?
    t1=$(now_us)
    if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then cat "$out/err" >&2; die "$op $where failed (exit $rc)"; fi
    tail -n1 "$out/time" | awk -v op="$op" -v w="$where" -v r="$rep" -v us=$((t1 - t0)) \
        '{ printf "%s\t%s\t%s\t%s\t%s\t%.2f\n", op, w, r, us, $1, $2 + $3 }' >>"$results"
}

note "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); store: $store"
note "source: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'); data: $src ($(du -sh "$src" | cut -f1))"
for ((i = 1; i <= reps; i++)); do
    rm -f "$out"/local/*.age
    timed backup local "$i" "$fk" backup "$src" -r "$recipient" -o "$out/local/" -q
    local_archive=$(ls "$out"/local/*.age)
    timed backup s3 "$i" "$fk" backup "$src" -r "$recipient" -o "$prefix" --json
    object=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["archive"])' "$out/log")
    timed verify local "$i" "$fk" verify "$local_archive" -i "$key" -q
    timed verify s3 "$i" "$fk" verify "$object" -i "$key" -q
    rm -rf "$out/to.local" "$out/to.s3"
    timed restore local "$i" "$fk" restore "$local_archive" -i "$key" --to "$out/to.local" -q
    timed restore s3 "$i" "$fk" restore "$object" -i "$key" --to "$out/to.s3" -q
done
size=$(stat -c %s "$local_archive")
diff -r "$out/to.local" "$out/to.s3" >/dev/null || die "the restores from the folder and from the bucket differ"

# --- table --------------------------------------------------------------------------
echo
echo "forgekeep on S3 ($store), $(date -u +%Y-%m-%d), $(nproc) cores; data set $set_name, archive $((size / 1048576)) MiB; median of $reps"
echo
echo "| op | local folder | s3:// | ratio s3/local | throughput local / s3 | peak RSS local / s3 | CPU local / s3 |"
echo "|---|---|---|---|---|---|---|"
for op in backup verify restore; do
    awk -F'\t' -v op="$op" -v size="$size" '
        $1 == op { t[$2] = t[$2] " " $4; m[$2] = ($5 > m[$2] ? $5 : m[$2]); c[$2] = c[$2] " " $6 }
        function median(list,   a, n, i, j, x) {
            n = split(list, a, " ")
            for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        END {
            l = median(t["local"]); s = median(t["s3"])
            printf "| %s | %.2f s | %.2f s | %.2f | %.0f / %.0f MiB/s | %.0f / %.0f MiB | %.1f / %.1f s |\n",
                op, l / 1e6, s / 1e6, s / l, size / 1048576 / (l / 1e6), size / 1048576 / (s / 1e6),
                m["local"] / 1024, m["s3"] / 1024, median(c["local"]), median(c["s3"])
        }' "$results"
done
