#!/usr/bin/env bash
# forgekeep benchmark: forgekeep backup/restore against the plain shell pipeline
#   tar -cf - DIR | zstd -3 -T0 -q | age -r RECIPIENT > out.age
#   age -d -i key out.age | zstd -dq | tar -xf - -C DIR
# on three data sets (forge ~10 MiB, bulk 1 GiB / 1024 files, many 50,000 x 2 KiB).
# See bench/README.md. Everything is configurable through the environment:
#
#   FORGEKEEP_SHARED     shared dir holding bench/mkdata.py   (default: <repo>/../shared)
#   BENCH_DATA           cached data sets                     (default: <repo>/bench/data)
#   BENCH_OUT            scratch dir for archives/restores    (default: <repo>/bench/out; removed at exit)
#   BENCH_SETS           data sets to run                     (default: "forge bulk many")
#   BENCH_REPS           repetitions for bulk and many        (default: 3)
#   BENCH_FORGE_REPS     repetitions for forge                (default: 20)
#   BENCH_RESTORE_MODE   "to" (forgekeep restore --to) or "root" (--root, sets owners) (default: to)
#   BENCH_SYNC           1 = run `sync` (untimed) before every timed run, so that one run's
#                        dirty pages are not written back during the next one   (default: 1)
#   BENCH_PIPE_FSYNC     1 = make the pipeline as durable as forgekeep (which fsyncs): time
#                        `sync ARCHIVE` after the backup pipeline and `sync -f DIR` after
#                        the restore pipeline                                  (default: 0)
#   BENCH_VERIFY         1 = diff -r the last restored trees against the source (default: 1)
#   BENCH_NO_BUILD       1 = do not run cargo build --release
#   BENCH_KEEP_OUT       1 = keep BENCH_OUT (archives, restored trees) for inspection
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
shared=$(cd "${FORGEKEEP_SHARED:-$here/../../shared}" && pwd)
data=${BENCH_DATA:-$repo/bench/data}
out=${BENCH_OUT:-$repo/bench/out}
sets=${BENCH_SETS:-forge bulk many}
reps=${BENCH_REPS:-3}
forge_reps=${BENCH_FORGE_REPS:-20}
restore_mode=${BENCH_RESTORE_MODE:-to}
do_sync=${BENCH_SYNC:-1}
do_verify=${BENCH_VERIFY:-1}
pipe_fsync=${BENCH_PIPE_FSYNC:-0}
fk=$repo/target/release/forgekeep

die() { echo "run.sh: $*" >&2; exit 1; }
note() { echo "# $*" >&2; }

case $restore_mode in to|root) ;; *) die "BENCH_RESTORE_MODE must be 'to' or 'root'" ;; esac

# --- tools ---------------------------------------------------------------
if ! /usr/bin/time -f '%M' -o /dev/null true 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        note "installing GNU time"
        apt-get install -y time >/dev/null || { apt-get update >/dev/null && apt-get install -y time >/dev/null; }
    fi
    /usr/bin/time -f '%M' -o /dev/null true || die "GNU time (/usr/bin/time) is needed: apt-get install -y time"
fi
for t in tar zstd age python3 awk; do command -v "$t" >/dev/null || die "$t is needed"; done
[ -f "$shared/bench/mkdata.py" ] || die "$shared/bench/mkdata.py not found (set FORGEKEEP_SHARED)"

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    note "cargo build --release"
    (cd "$repo" && cargo build --release --quiet) || die "build failed"
fi
[ -x "$fk" ] || die "$fk missing (cargo build --release)"

# --- data sets (cached: mkdata.py skips sets that exist) -------------------
mkdir -p "$data"
note "data sets in $data (generated once, then cached)"
python3 "$shared/bench/mkdata.py" "$data"
data=$(cd "$data" && pwd)

# --- scratch dir: same disk as the data, never tmpfs ------------------------
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
fstype=$(df --output=fstype "$out" | tail -n1 | tr -d ' ')
[ "$fstype" = tmpfs ] && die "$out is on tmpfs; set BENCH_OUT to a directory on a real disk"
avail_gib=$(( $(df --output=avail -k "$out" | tail -n1) / 1048576 ))
(( avail_gib >= 10 )) || note "warning: only ${avail_gib} GiB free under $out; the default run keeps ~7 GiB of restored copies until it ends"
cleanup() {
    if [ "${BENCH_KEEP_OUT:-0}" = 1 ]; then note "kept $out"; else rm -rf "$out"; fi
}
trap cleanup EXIT

key=$out/key.txt
recipient=$("$fk" keygen -o "$key" 2>&1 | grep -o 'age1[0-9a-z]*' | head -n1)
[ -n "$recipient" ] || die "forgekeep keygen printed no recipient"

# --- measurement ----------------------------------------------------------
# Wall time: bash's $EPOCHREALTIME (microseconds) around the command, including the
# /usr/bin/time wrapper (one fork+exec, ~1 ms, the same for both sides).
# Peak memory: GNU time %M = ru_maxrss from wait4(), i.e. the peak resident set of the
# process it started (all its threads). For the pipeline every stage gets its own
# /usr/bin/time, and the pipeline's peak is the LARGEST single stage (the stages run at
# the same time, so the sum of the three is also printed in the details, as an upper
# bound of what the pipeline holds at once).
now_us() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }
# Each /usr/bin/time -o file ends with "MAXRSS_KIB USER_S SYS_S" ("Command exited..." may come first).
tfmt='%M %U %S'
maxrss() { tail -n1 "$1" | cut -d' ' -f1; }
cpu() { local f; for f in "$@"; do tail -n1 "$f"; done | awk '{ c += $2 + $3 } END { printf "%.2f", c }'; }

settle() { if [ "$do_sync" = 1 ]; then sync; fi; }

results=$out/results.tsv   # set  op  tool  rep  microseconds  peak_kib  sum_kib  cpu_s
: > "$results"

# forgekeep backup; exit 3 (done, with warnings) still wrote the archive.
run_fk_backup() { # set src rep
    local a=$out/fk.tar.zst.age
    rm -f "$a"; settle
    local t0 t1 rc=0
    t0=$(now_us)
    /usr/bin/time -f "$tfmt" -o "$out/rss.fk" "$fk" backup "$2" -r "$recipient" -o "$a" -q \
        >"$out/log.fk" 2>&1 || rc=$?
    t1=$(now_us)
    if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then cat "$out/log.fk" >&2; die "forgekeep backup of $1 failed (exit $rc)"; fi
    local m; m=$(maxrss "$out/rss.fk")
    printf '%s\tbackup\tforgekeep\t%s\t%s\t%s\t%s\t%s\n' "$1" "$3" "$(( t1 - t0 ))" "$m" "$m" "$(cpu "$out/rss.fk")" >> "$results"
}

run_pipe_backup() { # set src rep
    local a=$out/pipe.tar.zst.age rel=${2#/}
    rm -f "$a"; settle
    local t0 t1 st
    t0=$(now_us)
    set +e
    /usr/bin/time -f "$tfmt" -o "$out/rss.p1" tar -C / -cf - "$rel" 2>"$out/log.p1" \
      | /usr/bin/time -f "$tfmt" -o "$out/rss.p2" zstd -3 -T0 -q 2>"$out/log.p2" \
      | /usr/bin/time -f "$tfmt" -o "$out/rss.p3" age -r "$recipient" >"$a" 2>"$out/log.p3"
    st="${PIPESTATUS[*]}"
    [ "$pipe_fsync" = 1 ] && sync "$a"
    set -e
    t1=$(now_us)
    [ "$st" = "0 0 0" ] || { cat "$out"/log.p? >&2; die "pipeline backup of $1 failed ($st)"; }
    local m1 m2 m3; m1=$(maxrss "$out/rss.p1"); m2=$(maxrss "$out/rss.p2"); m3=$(maxrss "$out/rss.p3")
    local mx=$m1; (( m2 > mx )) && mx=$m2; (( m3 > mx )) && mx=$m3
    printf '%s\tbackup\tpipeline\t%s\t%s\t%s\t%s\t%s\n' "$1" "$3" "$(( t1 - t0 ))" "$mx" "$(( m1 + m2 + m3 ))" "$(cpu "$out"/rss.p[123])" >> "$results"
    printf '%s\tbackup\t%s\t%s\t%s\n' "$1" "$m1" "$m2" "$m3" >> "$out/stages.tsv"
}

run_fk_restore() { # set rep
    local d=$out/restore.fk.$2
    mkdir -p "$d"; settle
    local t0 t1 rc=0
    t0=$(now_us)
    /usr/bin/time -f "$tfmt" -o "$out/rss.fk" "$fk" restore "$out/fk.tar.zst.age" -i "$key" "--$restore_mode" "$d" -q \
        >"$out/log.fk" 2>&1 || rc=$?
    t1=$(now_us)
    if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then tail -n 20 "$out/log.fk" >&2; die "forgekeep restore of $1 failed (exit $rc)"; fi
    local m; m=$(maxrss "$out/rss.fk")
    printf '%s\trestore\tforgekeep\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(( t1 - t0 ))" "$m" "$m" "$(cpu "$out/rss.fk")" >> "$results"
}

run_pipe_restore() { # set rep
    local d=$out/restore.pipe.$2
    mkdir -p "$d"; settle
    local t0 t1 st
    t0=$(now_us)
    set +e
    /usr/bin/time -f "$tfmt" -o "$out/rss.p1" age -d -i "$key" "$out/pipe.tar.zst.age" 2>"$out/log.p1" \
      | /usr/bin/time -f "$tfmt" -o "$out/rss.p2" zstd -dq 2>"$out/log.p2" \
      | /usr/bin/time -f "$tfmt" -o "$out/rss.p3" tar -xf - -C "$d" 2>"$out/log.p3"
    st="${PIPESTATUS[*]}"
    [ "$pipe_fsync" = 1 ] && sync -f "$d"
    set -e
    t1=$(now_us)
    [ "$st" = "0 0 0" ] || { cat "$out"/log.p? >&2; die "pipeline restore of $1 failed ($st)"; }
    local m1 m2 m3; m1=$(maxrss "$out/rss.p1"); m2=$(maxrss "$out/rss.p2"); m3=$(maxrss "$out/rss.p3")
    local mx=$m1; (( m2 > mx )) && mx=$m2; (( m3 > mx )) && mx=$m3
    printf '%s\trestore\tpipeline\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(( t1 - t0 ))" "$mx" "$(( m1 + m2 + m3 ))" "$(cpu "$out"/rss.p[123])" >> "$results"
    printf '%s\trestore\t%s\t%s\t%s\n' "$1" "$m1" "$m2" "$m3" >> "$out/stages.tsv"
}

note "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); scratch $out ($fstype)"
note "source: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$( [ -n "$(git -C "$repo" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] && echo ' (src modified)')"
note "forgekeep $("$fk" --version 2>&1 | head -n1); $(zstd --version | head -n1); age $(age --version 2>&1)"
sizes=$out/sizes.tsv; : > "$sizes"

for s in $sets; do
    src=$data/$s
    [ -d "$src" ] || die "no data set $src"
    n=$reps; [ "$s" = forge ] && n=$forge_reps
    note "$s: $n backups each (interleaved, order alternating)"
    for ((i = 1; i <= n; i++)); do
        if (( i % 2 )); then run_fk_backup "$s" "$src" "$i"; run_pipe_backup "$s" "$src" "$i"
        else run_pipe_backup "$s" "$src" "$i"; run_fk_backup "$s" "$src" "$i"; fi
    done
    printf '%s\t%s\t%s\t%s\n' "$s" "$(du -sb "$src" | cut -f1)" \
        "$(stat -c %s "$out/fk.tar.zst.age")" "$(stat -c %s "$out/pipe.tar.zst.age")" >> "$sizes"
    # Every restore goes to its own fresh folder and all are deleted only at exit:
    # deleting tens of thousands of files between runs makes the next run's file creation
    # crawl on ext4 without a journal (the inode allocator skips "recently deleted" inodes,
    # ext4_ialloc.c recently_deleted(), for up to 5 minutes), which would time the
    # filesystem, not the tools. Costs disk: 2 x runs x each set (~7 GiB with the defaults).
    note "$s: $n restores each (restore --$restore_mode)"
    for ((i = 1; i <= n; i++)); do
        if (( i % 2 )); then run_fk_restore "$s" "$i"; run_pipe_restore "$s" "$i"
        else run_pipe_restore "$s" "$i"; run_fk_restore "$s" "$i"; fi
    done
    if [ "$do_verify" = 1 ]; then
        rel=${src#/}
        diff -r "$src" "$out/restore.fk.$n/$rel" >/dev/null || die "$s: forgekeep restore differs from the source"
        diff -r "$src" "$out/restore.pipe.$n/$rel" >/dev/null || die "$s: pipeline restore differs from the source"
        note "$s: both restored trees match the source (diff -r)"
    fi
    mkdir -p "$out/kept.$s"; mv "$out"/restore.* "$out/kept.$s/"   # deleted at exit
    rm -f "$out/fk.tar.zst.age" "$out/pipe.tar.zst.age"
done

# --- report ---------------------------------------------------------------
# Per (set, op, tool): median wall seconds over the runs, peak RSS = max over the runs.
summary=$out/summary.tsv
awk -F'\t' '
{ k = $1 SUBSEP $2 SUBSEP $3; n[k]++; t[k, n[k]] = $5 / 1e6; cp[k, n[k]] = $8
  if ($6 > m[k]) m[k] = $6; if ($7 > sm[k]) sm[k] = $7 }
END {
  for (k in n) {
    c = n[k]
    for (i = 1; i <= c; i++) v[i] = t[k, i]
    for (i = 2; i <= c; i++) { x = v[i]; j = i - 1; while (j > 0 && v[j] > x) { v[j+1] = v[j]; j-- } v[j+1] = x }
    med = (c % 2) ? v[(c+1)/2] : (v[c/2] + v[c/2+1]) / 2
    for (i = 1; i <= c; i++) w[i] = cp[k, i]
    for (i = 2; i <= c; i++) { x = w[i]; j = i - 1; while (j > 0 && w[j] > x) { w[j+1] = w[j]; j-- } w[j+1] = x }
    cmed = (c % 2) ? w[(c+1)/2] : (w[c/2] + w[c/2+1]) / 2
    split(k, p, SUBSEP)
    printf "%s\t%s\t%s\t%.6f\t%.1f\t%.1f\t%.6f\t%.6f\t%d\t%.2f\n", p[1], p[2], p[3], med, m[k]/1024, sm[k]/1024, v[1], v[c], c, cmed
  }
}' "$results" > "$summary"

get() { awk -F'\t' -v s="$1" -v o="$2" -v t="$3" -v f="$4" '$1==s && $2==o && $3==t { print $f }' "$summary"; }

echo
printf 'forgekeep vs  tar | zstd -3 -T0 | age   (median wall time; peak RSS = max over runs)\n'
printf 'restore: forgekeep restore --%s vs age -d | zstd -d | tar -x\n' "$restore_mode"
if [ "$pipe_fsync" = 1 ]; then echo 'pipeline timings include sync ARCHIVE / sync -f DIR (BENCH_PIPE_FSYNC=1)'
else echo 'forgekeep fsyncs what it writes, the pipeline does not (BENCH_PIPE_FSYNC=1 to add it)'; fi
echo
fmt='%-8s %-8s %5s %12s %12s %7s %11s %11s\n'
printf "$fmt" op set runs "forgekeep s" "pipeline s" ratio "fk RSS MiB" "pipe RSS MiB"
printf "$fmt" -------- -------- ----- ------------ ------------ ------- ----------- -----------
for op in backup restore; do
    for s in $sets; do
        ft=$(get "$s" "$op" forgekeep 4); pt=$(get "$s" "$op" pipeline 4)
        printf "$fmt" "$op" "$s" "$(get "$s" "$op" forgekeep 9)" "$(printf '%.3f' "$ft")" "$(printf '%.3f' "$pt")" \
            "$(awk -v a="$ft" -v b="$pt" 'BEGIN { printf "%.2f", a / b }')" \
            "$(get "$s" "$op" forgekeep 5)" "$(get "$s" "$op" pipeline 5)"
    done
done

echo
echo 'details: min..max wall seconds; median CPU seconds (user+sys; all pipeline stages summed);'
echo '         pipeline RSS per stage (max over runs, MiB) and the sum of the stages'
for op in backup restore; do
    for s in $sets; do
        stages=$(awk -F'\t' -v s="$s" -v o="$op" '$1==s && $2==o { for (i = 3; i <= 5; i++) if ($i > m[i]) m[i] = $i }
            END { printf "%.1f / %.1f / %.1f", m[3]/1024, m[4]/1024, m[5]/1024 }' "$out/stages.tsv")
        names="tar / zstd / age"; [ "$op" = restore ] && names="age / zstd / tar"
        printf '  %-7s %-5s wall fk %.3f..%.3f  pipe %.3f..%.3f s | cpu fk %s  pipe %s s | %s: %s MiB, sum %s\n' \
            "$op" "$s" "$(get "$s" "$op" forgekeep 7)" "$(get "$s" "$op" forgekeep 8)" \
            "$(get "$s" "$op" pipeline 7)" "$(get "$s" "$op" pipeline 8)" \
            "$(get "$s" "$op" forgekeep 10)" "$(get "$s" "$op" pipeline 10)" "$names" "$stages" "$(get "$s" "$op" pipeline 6)"
    done
done
echo
echo 'archive sizes (bytes): set, source, forgekeep archive, pipeline archive'
while IFS=$'\t' read -r s src a b; do
    printf '  %-6s %12s %12s %12s\n' "$s" "$src" "$a" "$b"
done < "$sizes"

# --- targets ----------------------------------------------------------------
echo
fails=0
check() { # name ok(0/1) detail
    if [ "$2" = 1 ]; then echo "PASS  $1  ($3)"; else echo "FAIL  $1  ($3)"; fails=$((fails + 1)); fi
}
lt() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b) ? 1 : 0 }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? 1 : 0 }'; }
have() { case " $sets " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if have bulk; then
    for op in backup restore; do
        m=$(get bulk "$op" forgekeep 5)
        check "bulk $op peak RSS < 64 MiB" "$(lt "$m" 64)" "forgekeep ${m} MiB"
    done
    ft=$(get bulk backup forgekeep 4); pt=$(get bulk backup pipeline 4)
    r=$(awk -v a="$ft" -v b="$pt" 'BEGIN { printf "%.3f", a / b }')
    check "bulk backup no slower than the pipeline (ratio <= 1.05)" "$(le "$r" 1.05)" \
        "ratio $r: forgekeep $(printf '%.3f' "$ft") s, pipeline $(printf '%.3f' "$pt") s"
fi
if have forge; then
    ft=$(get forge backup forgekeep 4)
    check "forge backup well under 50 ms (median)" "$(lt "$ft" 0.050)" \
        "median $(awk -v a="$ft" 'BEGIN { printf "%.1f", a * 1000 }') ms over $(get forge backup forgekeep 9) runs"
fi
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$fails" = 0 ]
