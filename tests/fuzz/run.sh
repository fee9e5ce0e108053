#!/bin/sh
# tests/fuzz/run.sh - one bounded libFuzzer run, as the "fuzz" meson suite does it.
# Usage: run.sh HARNESS SEED_CORPUS_DIR WORK_DIR SECONDS
# New inputs go to WORK_DIR/corpus (the seed corpus in the source tree is only read) and a
# crashing input to WORK_DIR/crash-*; FUZZ_TIME in the environment overrides SECONDS. Exits
# non-zero on any crash, leak, timeout or sanitizer report (halt_on_error).
set -eu
harness=$1 seeds=$2 work=$3 secs=${FUZZ_TIME:-$4}
mkdir -p "$work/corpus"
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}"
# Fuzzers and the data readers use OpenBLAS only incidentally; one thread keeps runs comparable.
export OPENBLAS_NUM_THREADS=1
# -error_exitcode=1: libFuzzer exits 77 on a crash by default, which meson reads as "skipped".
exec "$harness" -error_exitcode=1 -timeout_exitcode=1 -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -max_len=65536 \
	-print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$seeds" </dev/null
