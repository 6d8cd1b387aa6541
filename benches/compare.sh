#!/bin/sh
# Times the `merge_file` example against `git merge-file -p` and `diff3 -m`
# as whole processes on the synthetic workloads of
# ../shared/corpus/merge-synth/gen.rs and prints MB/s of base bytes, the
# ratios against git, and the peak RSS.
#
# usage: benches/compare.sh [RUNS]      (from the workspace root)
# Wall times are medians of RUNS runs, taken with hyperfine when installed.
# env:   CARGO_TARGET_DIR (default target), CASES (space-separated case names),
#        CMK_SHARED_DIR (default ../shared), MERGE_FILE (a built merge_file to time
#        instead of building the example)
#
# Every output of merge_file is also compared with git's, byte for byte.
set -eu

RUNS=${1:-7}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SHARED=${CMK_SHARED_DIR:-$ROOT/../shared}
GEN_SRC=$SHARED/corpus/merge-synth/gen.rs
WORK=$TARGET/merge-synth
CASES=${CASES:-"1KiB 64KiB 1MiB 4MiB 16MiB 1MiB-sparse 16MiB-sparse path-allchanged-4MiB path-reversed-4MiB path-repeat-4MiB"}

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null LC_ALL=C

[ -f "$GEN_SRC" ] || { echo "missing $GEN_SRC" >&2; exit 2; }
mkdir -p "$WORK"
if [ ! -d "$WORK/data/16MiB" ]; then
    rustc -O -o "$WORK/gen" "$GEN_SRC"
    "$WORK/gen" "$WORK/data" >/dev/null
fi
HYPERFINE=$(command -v hyperfine || true)
[ -n "$HYPERFINE" ] || echo "note: hyperfine not found, timing with a shell loop" >&2
MF=${MERGE_FILE:-}
if [ -z "$MF" ]; then
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --quiet --release -p toolkit-examples --example merge_file)
    MF=$TARGET/release/examples/merge_file
fi

# median wall seconds of RUNS runs of "$@" (stdout discarded): with
# hyperfine (-N, 2 warm-up runs) when it is installed, as the spec measures,
# else with a plain loop (which adds a fork of the shell to every run)
median() {
    if [ -n "$HYPERFINE" ]; then
        "$HYPERFINE" -N -i --warmup 2 --runs "$RUNS" --export-csv "$WORK/hf.csv" -- "$*" >/dev/null 2>&1
        awk -F, 'NR == 2 {printf "%.6f", $4}' "$WORK/hf.csv"
        return
    fi
    i=0
    : > "$WORK/times"
    while [ $i -lt "$RUNS" ]; do
        s=$(date +%s%N)
        "$@" > /dev/null 2>&1 || true
        e=$(date +%s%N)
        echo $(( e - s )) >> "$WORK/times"
        i=$((i + 1))
    done
    sort -n "$WORK/times" | awk '{a[NR]=$1} END {printf "%.6f", a[int((NR+1)/2)]/1e9}'
}

# "peak-RSS-MB cpu-seconds" of one run (user + sys, which a busy machine
# distorts less than wall time)
rss() {
    /usr/bin/time -f '%M %U %S' "$@" 2>&1 >/dev/null | tail -n 1 | awk '{printf "%.1f %.3f", $1/1024, $2+$3}'
}

printf '%-22s %8s %9s %9s %9s %7s %8s %7s %7s %7s %6s %6s %6s %7s\n' case base_MB ours_MB/s git_MB/s d3_MB/s vs_git vs_diff3 rss_us rss_git rss_d3 cpu_us cpu_gt cpu_d3 cpu_vs_git
for c in $CASES; do
    d=$WORK/data/$c
    [ -d "$d" ] || { echo "no case $c" >&2; continue; }
    "$MF" -p "$d/ours" "$d/base" "$d/theirs" > "$WORK/ours.out" || true
    git merge-file -p "$d/ours" "$d/base" "$d/theirs" > "$WORK/git.out" || true
    cmp -s "$WORK/ours.out" "$WORK/git.out" || echo "WARNING: $c differs from git" >&2
    bytes=$(wc -c < "$d/base")
    tm=$(median "$MF" -p "$d/ours" "$d/base" "$d/theirs")
    tg=$(median git merge-file -p "$d/ours" "$d/base" "$d/theirs")
    td=$(median diff3 -m "$d/ours" "$d/base" "$d/theirs")
    set -- $(rss "$MF" -p "$d/ours" "$d/base" "$d/theirs") \
        $(rss git merge-file -p "$d/ours" "$d/base" "$d/theirs") \
        $(rss diff3 -m "$d/ours" "$d/base" "$d/theirs")
    awk -v c="$c" -v b="$bytes" -v tm="$tm" -v tg="$tg" -v td="$td" -v rm="$1" -v cm="$2" \
        -v rg="$3" -v cg="$4" -v rd="$5" -v cd="$6" 'BEGIN {
        printf "%-22s %8.2f %9.1f %9.1f %9.1f %6.2fx %7.2fx %7s %7s %7s %6.3f %6.3f %6.3f %6.2fx\n",
            c, b/1e6, b/1e6/tm, b/1e6/tg, b/1e6/td, tg/tm, td/tm, rm, rg, rd, cm, cg, cd, (cm > 0 ? cg/cm : 0) }'
done
