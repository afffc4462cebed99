#!/usr/bin/env bash
# forgekeep benchmark: forgekeep backup/restore against the plain shell pipeline it replaces
#   tar -cf - DIR | zstd -3 -T0 -q | age -r RECIPIENT > out.age
#   age -d -i key out.age | zstd -dq | tar -xf - -C DIR
# on three data sets (forge ~10 MiB, bulk 1 GiB / 1024 files, many 50,000 x 2 KiB), and the
# same pipeline made as durable as forgekeep (`sync ARCHIVE` / `sync -f DIR` timed after it).
# Reports wall time, CPU time (user+sys) and peak RSS for every case, the archive sizes, and
# PASS/FAIL against the targets of issue 12. See bench/README.md. Configurable through the
# environment:
#
#   FORGEKEEP_SHARED     shared dir holding bench/mkdata.py   (default: ../shared next to the main checkout)
#   BENCH_DATA           cached data sets                     (default: <repo>/bench/data)
#   BENCH_OUT            scratch dir for archives/restores    (default: <repo>/bench/out; removed at exit)
#   BENCH_SETS           data sets to run                     (default: "forge bulk many")
#   BENCH_REPS           repetitions for bulk and many        (default: 3)
#   BENCH_FORGE_REPS     repetitions for forge                (default: 20)
#   BENCH_RESTORE_MODE   "to" (forgekeep restore --to) or "root" (--root, sets owners) (default: to)
#   BENCH_FORGEKEEP      the forgekeep binary measured        (default: <repo>/target/release/forgekeep)
#   BENCH_BEFORE         path of an earlier forgekeep binary, measured in the same runs as a
#                        third contender (before/after in one invocation)     (default: none)
#   BENCH_SYNC           1 = run `sync` (untimed) before every timed run, so that one run's
#                        dirty pages are not written back during the next one   (default: 1)
#   BENCH_VERIFY         1 = diff -r the last restored trees against the source (default: 1)
#   BENCH_NO_BUILD       1 = do not run cargo build --release
#   BENCH_KEEP_OUT       1 = keep BENCH_OUT (archives, restored trees) for inspection
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# The shared folder sits next to the main checkout; a git worktree elsewhere finds it
# through the main checkout's .git.
main=$(cd "$repo" && cd "$(dirname "$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null || echo "$repo/.git")")" && pwd)
shared=$(cd "${FORGEKEEP_SHARED:-$main/../shared}" && pwd)
data=${BENCH_DATA:-$repo/bench/data}
out=${BENCH_OUT:-$repo/bench/out}
sets=${BENCH_SETS:-forge bulk many}
reps=${BENCH_REPS:-3}
forge_reps=${BENCH_FORGE_REPS:-20}
restore_mode=${BENCH_RESTORE_MODE:-to}
do_sync=${BENCH_SYNC:-1}
do_verify=${BENCH_VERIFY:-1}
fk=${BENCH_FORGEKEEP:-$repo/target/release/forgekeep}
before=${BENCH_BEFORE:-}

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
for t in tar zstd age python3 awk sync; do command -v "$t" >/dev/null || die "$t is needed"; done
[ -f "$shared/bench/mkdata.py" ] || die "$shared/bench/mkdata.py not found (set FORGEKEEP_SHARED)"

if [ "${BENCH_NO_BUILD:-0}" != 1 ] && [ -z "${BENCH_FORGEKEEP:-}" ]; then
    note "cargo build --release"
    (cd "$repo" && cargo build --release --quiet) || die "build failed"
fi
[ -x "$fk" ] || die "$fk missing (cargo build --release)"
if [ -n "$before" ]; then
    before=$(cd "$(dirname "$before")" && pwd)/$(basename "$before")
    [ -x "$before" ] || die "BENCH_BEFORE=$before is not an executable"
fi

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
(( avail_gib >= 6 )) || note "warning: only ${avail_gib} GiB free under $out; a run holds ~3 GiB of restored copies at a time"
cleanup() {
    if [ "${BENCH_KEEP_OUT:-0}" = 1 ]; then note "kept $out"; else rm -rf "$out"; fi
}
trap cleanup EXIT

key=$out/key.txt
# An unsigned archive restored into a live tree (--root) needs the operator's consent.
consent=(); [ "$restore_mode" = root ] && consent=(--allow-untrusted)
recipient=$("$fk" keygen -o "$key" 2>&1 | grep -o 'age1[0-9a-z]*' | head -n1)
[ -n "$recipient" ] || die "forgekeep keygen printed no recipient"

# --- measurement ----------------------------------------------------------
# Wall time: bash's $EPOCHREALTIME (microseconds) around the command, including the
# /usr/bin/time wrapper (one fork+exec, ~1 ms, the same for every side).
# CPU time: user + system seconds of the process and all its threads (GNU time %U + %S,
# from wait4's rusage); for the pipeline the sum over its three stages (and `sync`).
# Kernel writeback done by flusher threads is nobody's CPU time, on either side.
# Peak memory: GNU time %M = ru_maxrss of the process (all its threads). For the pipeline
# every stage gets its own /usr/bin/time, and the pipeline's peak is the LARGEST single
# stage; the sum of the three (an upper bound of what it holds at once) is in the details.
now_us() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }
# Each /usr/bin/time -o file ends with "MAXRSS_KIB USER_S SYS_S" ("Command exited..." may come first).
tfmt='%M %U %S'
maxrss() { tail -n1 "$1" | cut -d' ' -f1; }
cpu() { local f; for f in "$@"; do tail -n1 "$f"; done | awk '{ c += $2 + $3 } END { printf "%.3f", c }'; }

settle() { if [ "$do_sync" = 1 ]; then sync; fi; }

results=$out/results.tsv   # set  op  tool  rep  microseconds  peak_kib  sum_kib  cpu_s
: > "$results"
record() { # set op tool rep us peak sum cpu
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$results"
}

# forgekeep backup (TOOL is forgekeep or before); exit 3 (done, with warnings) still wrote
# the archive.
run_fk_backup() { # tool bin set src rep
    local tool=$1 bin=$2 a=$out/$1.tar.zst.age
    rm -f "$a"; settle
    local t0 t1 rc=0
    t0=$(now_us)
    /usr/bin/time -f "$tfmt" -o "$out/rss.fk" "$bin" backup "$4" -r "$recipient" -o "$a" -q \
        >"$out/log.fk" 2>&1 || rc=$?
    t1=$(now_us)
    if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then cat "$out/log.fk" >&2; die "$tool backup of $3 failed (exit $rc)"; fi
    local m; m=$(maxrss "$out/rss.fk")
    record "$3" backup "$tool" "$5" "$(( t1 - t0 ))" "$m" "$m" "$(cpu "$out/rss.fk")"
}

# The pipeline, then (timed on its own) `sync ARCHIVE`: one run gives both the literal
# pipeline and the pipeline made as durable as forgekeep, which fsyncs its archive.
run_pipe_backup() { # set src rep
    local a=$out/pipeline.tar.zst.age rel=${2#/}
    rm -f "$a"; settle
    local t0 t1 t2 st
    t0=$(now_us)
    set +e
    /usr/bin/time -f "$tfmt" -o "$out/rss.p1" tar -C / -cf - "$rel" 2>"$out/log.p1" \
      | /usr/bin/time -f "$tfmt" -o "$out/rss.p2" zstd -3 -T0 -q 2>"$out/log.p2" \
      | /usr/bin/time -f "$tfmt" -o "$out/rss.p3" age -r "$recipient" >"$a" 2>"$out/log.p3"
    st="${PIPESTATUS[*]}"
    t1=$(now_us)
    /usr/bin/time -f "$tfmt" -o "$out/rss.ps" sync "$a"
    t2=$(now_us)
    set -e
    [ "$st" = "0 0 0" ] || { cat "$out"/log.p? >&2; die "pipeline backup of $1 failed ($st)"; }
    pipe_records "$1" backup "$3" "$(( t1 - t0 ))" "$(( t2 - t0 ))"
}

pipe_records() { # set op rep us us_with_sync
    local m1 m2 m3; m1=$(maxrss "$out/rss.p1"); m2=$(maxrss "$out/rss.p2"); m3=$(maxrss "$out/rss.p3")
    local mx=$m1; (( m2 > mx )) && mx=$m2; (( m3 > mx )) && mx=$m3
    record "$1" "$2" pipeline "$3" "$4" "$mx" "$(( m1 + m2 + m3 ))" "$(cpu "$out"/rss.p[123])"
    record "$1" "$2" pipeline+sync "$3" "$5" "$mx" "$(( m1 + m2 + m3 ))" "$(cpu "$out"/rss.p[123s])"
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$m1" "$m2" "$m3" >> "$out/stages.tsv"
}

run_fk_restore() { # tool bin set rep
    local tool=$1 bin=$2 d=$out/restore.$1.$4
    mkdir -p "$d"; settle
    local t0 t1 rc=0
    t0=$(now_us)
    /usr/bin/time -f "$tfmt" -o "$out/rss.fk" "$bin" restore "$out/$tool.tar.zst.age" -i "$key" \
        "--$restore_mode" "$d" "${consent[@]}" -q >"$out/log.fk" 2>&1 || rc=$?
    t1=$(now_us)
    if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then tail -n 20 "$out/log.fk" >&2; die "$tool restore of $3 failed (exit $rc)"; fi
    local m; m=$(maxrss "$out/rss.fk")
    record "$3" restore "$tool" "$4" "$(( t1 - t0 ))" "$m" "$m" "$(cpu "$out/rss.fk")"
}

# The pipeline, then (timed on its own) `sync -f DIR`, the syncfs forgekeep does.
run_pipe_restore() { # set rep
    local d=$out/restore.pipeline.$2
    mkdir -p "$d"; settle
    local t0 t1 t2 st
    t0=$(now_us)
    set +e
    /usr/bin/time -f "$tfmt" -o "$out/rss.p1" age -d -i "$key" "$out/pipeline.tar.zst.age" 2>"$out/log.p1" \
      | /usr/bin/time -f "$tfmt" -o "$out/rss.p2" zstd -dq 2>"$out/log.p2" \
      | /usr/bin/time -f "$tfmt" -o "$out/rss.p3" tar -xf - -C "$d" 2>"$out/log.p3"
    st="${PIPESTATUS[*]}"
    t1=$(now_us)
    /usr/bin/time -f "$tfmt" -o "$out/rss.ps" sync -f "$d"
    t2=$(now_us)
    set -e
    [ "$st" = "0 0 0" ] || { cat "$out"/log.p? >&2; die "pipeline restore of $1 failed ($st)"; }
    pipe_records "$1" restore "$2" "$(( t1 - t0 ))" "$(( t2 - t0 ))"
}

# The contenders, run in a rotating order (run i starts with contender i mod k), so that
# none always runs first (cold) or right after another's writeback.
contenders=(forgekeep pipeline)
[ -n "$before" ] && contenders=(forgekeep before pipeline)
one() { # op tool set src rep
    case $1/$2 in
        backup/pipeline) run_pipe_backup "$3" "$4" "$5" ;;
        restore/pipeline) run_pipe_restore "$3" "$5" ;;
        backup/forgekeep) run_fk_backup forgekeep "$fk" "$3" "$4" "$5" ;;
        backup/before) run_fk_backup before "$before" "$3" "$4" "$5" ;;
        restore/forgekeep) run_fk_restore forgekeep "$fk" "$3" "$5" ;;
        restore/before) run_fk_restore before "$before" "$3" "$5" ;;
    esac
}
round() { # op set src rep
    local k=${#contenders[@]} j
    for ((j = 0; j < k; j++)); do one "$1" "${contenders[$(( (j + $4 - 1) % k ))]}" "$2" "$3" "$4"; done
}

started=$(date -u '+%Y-%m-%d %H:%M UTC')
machine="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(( $(awk '/MemTotal/ { print $2 }' /proc/meminfo) / 1048576 )) GiB RAM, Linux $(uname -r), scratch on $fstype"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
note "machine: $machine; load $load_start"
note "source: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$( [ -n "$(git -C "$repo" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] && echo ' (src modified)')"
note "forgekeep $("$fk" --version 2>&1 | head -n1); $(zstd --version | head -n1); age $(age --version 2>&1); $(tar --version | head -n1)"
[ -n "$before" ] && note "before: $before ($("$before" --version 2>&1 | head -n1))"
sizes=$out/sizes.tsv; : > "$sizes"

for s in $sets; do
    src=$data/$s
    [ -d "$src" ] || die "no data set $src"
    n=$reps; [ "$s" = forge ] && n=$forge_reps
    note "$s: $n backups each ($(IFS=,; echo "${contenders[*]}"), order rotating)"
    for ((i = 1; i <= n; i++)); do round backup "$s" "$src" "$i"; done
    printf '%s\t%s\t%s\t%s\t%s\n' "$s" "$(du -sb "$src" | cut -f1)" \
        "$(stat -c %s "$out/forgekeep.tar.zst.age")" "$(stat -c %s "$out/pipeline.tar.zst.age")" \
        "$( [ -n "$before" ] && stat -c %s "$out/before.tar.zst.age" || echo -)" >> "$sizes"
    # Every restore goes to its own fresh folder. Trees of many small files are deleted
    # only at exit: deleting tens of thousands of files between runs makes the next run's
    # file creation crawl on ext4 without a journal (the inode allocator skips "recently
    # deleted" inodes, ext4_ialloc.c recently_deleted(), for up to 5 minutes), which would
    # time the file system, not the tools. Trees of a few large files go at once (disk).
    note "$s: $n restores each (restore --$restore_mode)"
    for ((i = 1; i <= n; i++)); do round restore "$s" "$src" "$i"; done
    if [ "$do_verify" = 1 ]; then
        rel=${src#/}
        for t in "${contenders[@]}"; do
            diff -r "$src" "$out/restore.$t.$n/$rel" >/dev/null || die "$s: the $t restore differs from the source"
        done
        note "$s: every restored tree matches the source (diff -r)"
    fi
    if [ "$s" = many ]; then mkdir -p "$out/kept.$s"; mv "$out"/restore.* "$out/kept.$s/"
    else rm -rf "$out"/restore.*; fi
    rm -f "$out"/*.tar.zst.age
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ---------------------------------------------------------------
# Per (set, op, tool): median wall seconds and median CPU seconds over the runs, peak RSS =
# max over the runs, min and max wall.
summary=$out/summary.tsv
awk -F'\t' '
function median(a, c,   i, j, x) {
    for (i = 2; i <= c; i++) { x = a[i]; j = i - 1; while (j > 0 && a[j] > x) { a[j+1] = a[j]; j-- } a[j+1] = x }
    return (c % 2) ? a[(c+1)/2] : (a[c/2] + a[c/2+1]) / 2
}
{ k = $1 SUBSEP $2 SUBSEP $3; n[k]++; t[k, n[k]] = $5 / 1e6; cp[k, n[k]] = $8
  if ($6 > m[k]) m[k] = $6; if ($7 > sm[k]) sm[k] = $7 }
END {
  for (k in n) {
    c = n[k]; lo = 1e18; hi = 0
    for (i = 1; i <= c; i++) { v[i] = t[k, i]; w[i] = cp[k, i]; if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i] }
    split(k, p, SUBSEP)
    printf "%s\t%s\t%s\t%.6f\t%.1f\t%.1f\t%.6f\t%.6f\t%d\t%.3f\n", p[1], p[2], p[3], median(v, c), m[k]/1024, sm[k]/1024, lo, hi, c, median(w, c)
  }
}' "$results" > "$summary"

# Columns of the summary: 4 median wall s, 5 peak RSS MiB, 6 pipeline stages' RSS sum,
# 7 min wall, 8 max wall, 9 runs, 10 median CPU s.
get() { awk -F'\t' -v s="$1" -v o="$2" -v t="$3" -v f="$4" '$1==s && $2==o && $3==t { print $f }' "$summary"; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
secs() { awk -v a="$1" 'BEGIN { if (a < 1) printf "%.1f ms", a * 1000; else printf "%.2f s", a }'; }

tools=(forgekeep); [ -n "$before" ] && tools+=(before); tools+=(pipeline pipeline+sync)
echo
echo "forgekeep vs tar | zstd -3 -T0 | age  --  $started; load $load_start at the start, $load_end at the end"
echo "machine: $machine"
echo "restore: forgekeep restore --$restore_mode vs age -d | zstd -d | tar -x; pipeline+sync = the same run"
echo "followed by a timed 'sync ARCHIVE' / 'sync -f DIR' (forgekeep fsyncs/syncfs what it writes)."
echo "wall and CPU (user+sys) are medians over the runs; RSS is the largest over the runs (pipeline:"
echo "its largest stage); ratios are forgekeep / pipeline (wall, and CPU in brackets)."
echo
fmt='%-7s %-5s %-13s %4s %10s %10s %8s %16s %16s\n'
printf "$fmt" op set tool runs wall cpu "RSS MiB" "vs pipeline" "vs +sync"
printf "$fmt" ------- ----- ------------- ---- ---------- ---------- -------- ---------------- ----------------
for op in backup restore; do
    for s in $sets; do
        pw=$(get "$s" "$op" pipeline 4); pc=$(get "$s" "$op" pipeline 10)
        sw=$(get "$s" "$op" pipeline+sync 4); sc=$(get "$s" "$op" pipeline+sync 10)
        for t in "${tools[@]}"; do
            w=$(get "$s" "$op" "$t" 4); c=$(get "$s" "$op" "$t" 10)
            r1=-; r2=-
            case $t in
                pipeline*) ;;
                *) r1="$(div "$w" "$pw") ($(div "$c" "$pc"))"; r2="$(div "$w" "$sw") ($(div "$c" "$sc"))" ;;
            esac
            printf "$fmt" "$op" "$s" "$t" "$(get "$s" "$op" "$t" 9)" "$(secs "$w")" "$(printf '%.2f s' "$c")" \
                "$(get "$s" "$op" "$t" 5)" "$r1" "$r2"
        done
    done
done

echo
echo 'details: min..max wall seconds; pipeline RSS per stage (max over runs, MiB) and the sum of the stages'
for op in backup restore; do
    for s in $sets; do
        stages=$(awk -F'\t' -v s="$s" -v o="$op" '$1==s && $2==o { for (i = 3; i <= 5; i++) if ($i > m[i]) m[i] = $i }
            END { printf "%.1f / %.1f / %.1f", m[3]/1024, m[4]/1024, m[5]/1024 }' "$out/stages.tsv")
        names="tar / zstd / age"; [ "$op" = restore ] && names="age / zstd / tar"
        line=""
        for t in "${tools[@]}"; do
            line+=$(printf ' %s %.3f..%.3f' "$t" "$(get "$s" "$op" "$t" 7)" "$(get "$s" "$op" "$t" 8)")
        done
        printf '  %-7s %-5s%s | %s: %s MiB, sum %s\n' "$op" "$s" "$line" "$names" "$stages" "$(get "$s" "$op" pipeline 6)"
    done
done
echo
echo 'archive sizes (bytes): set, source, forgekeep, pipeline, forgekeep/pipeline, before'
while IFS=$'\t' read -r s src a b c; do
    printf '  %-6s %12s %12s %12s %6s %12s\n' "$s" "$src" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }')" "$c"
done < "$sizes"

# --- targets (issue 12), each against the literal pipeline of the same run --------
echo
fails=0
check() { # name ok(0/1) detail
    if [ "$2" = 1 ]; then echo "PASS  $1  ($3)"; else echo "FAIL  $1  ($3)"; fails=$((fails + 1)); fi
}
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? 1 : 0 }'; }
have() { case " $sets " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
ratio_target() { # set op max [moonshot]
    local w p c pc r
    w=$(get "$1" "$2" forgekeep 4); p=$(get "$1" "$2" pipeline 4)
    c=$(get "$1" "$2" forgekeep 10); pc=$(get "$1" "$2" pipeline 10)
    r=$(div "$w" "$p")
    check "$1 $2 <= $3 x pipeline" "$(le "$r" "$3")" \
        "ratio $r: forgekeep $(secs "$w"), pipeline $(secs "$p"); CPU ratio $(div "$c" "$pc")$( [ -n "${4:-}" ] && echo "; moonshot <= $4: $( [ "$(le "$r" "$4")" = 1 ] && echo reached || echo not reached)")"
}
if have bulk; then ratio_target bulk backup 0.8 0.6; ratio_target bulk restore 0.9; fi
if have many; then ratio_target many backup 1.0; ratio_target many restore 1.0; fi
if have forge; then
    ft=$(get forge backup forgekeep 4)
    check "forge backup <= 25 ms" "$(le "$ft" 0.025)" "median $(secs "$ft") over $(get forge backup forgekeep 9) runs"
    ratio_target forge restore 1.0
fi
for s in $sets; do
    for op in backup restore; do
        m=$(get "$s" "$op" forgekeep 5)
        check "$s $op peak RSS <= 64 MiB" "$(le "$m" 64)" "forgekeep ${m} MiB"
    done
done

# --- the same as a Markdown table (README) ---------------------------------------
echo
echo "| op | set | forgekeep wall | CPU | peak RSS | pipeline wall | CPU | peak RSS | + sync | ratio (CPU) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for op in backup restore; do
    for s in $sets; do
        w=$(get "$s" "$op" forgekeep 4); c=$(get "$s" "$op" forgekeep 10)
        pw=$(get "$s" "$op" pipeline 4); pc=$(get "$s" "$op" pipeline 10)
        printf '| %s | %s | %s | %.2f s | %s MiB | %s | %.2f s | %s MiB | %s | %s (%s) |\n' "$op" "$s" \
            "$(secs "$w")" "$c" "$(get "$s" "$op" forgekeep 5)" "$(secs "$pw")" "$pc" \
            "$(get "$s" "$op" pipeline 5)" "$(secs "$(get "$s" "$op" pipeline+sync 4)")" \
            "$(div "$w" "$pw")" "$(div "$c" "$pc")"
    done
done
echo "load at the end: $load_end"
[ "$fails" = 0 ]
