#!/usr/bin/env bash
# Fuzz smoke: every cargo-fuzz target in fuzz/ for a short while (default
# 20 s each; FUZZ_SECONDS=300 for a longer run), printing executions per
# target. Exits non-zero when a target crashes (libFuzzer leaves the input in
# fuzz/artifacts/<target>/). Skips visibly when the nightly toolchain or
# cargo-fuzz is missing: install them with
#   rustup toolchain install nightly && cargo install cargo-fuzz
set -uo pipefail
cd "$(dirname "$0")/.."

secs="${FUZZ_SECONDS:-20}"
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "SKIPPED fuzz smoke: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "SKIPPED fuzz smoke: cargo-fuzz is not installed (cargo install cargo-fuzz)"
  exit 0
fi

echo "building the fuzz targets"
if ! cargo +nightly fuzz build; then
  echo "fuzz smoke: the targets do not build" >&2
  exit 1
fi

targets=$(cargo +nightly fuzz list)
failed=()
printf '%-14s %12s %10s  %s\n' target executions seconds result
for t in $targets; do
  log=$(mktemp)
  # -max_len: frames and programs larger than a jumbo frame add nothing.
  cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -max_len=9000 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    printf '%-14s %12s %10s  %s\n' "$t" "${runs:-?}" "${took:-?}" "ok, 0 crashes"
  else
    printf '%-14s %12s %10s  %s\n' "$t" "${runs:-?}" "${took:-?}" "CRASHED (exit $rc)"
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -20 | sed 's/^/    /'
    failed+=("$t")
  fi
  rm -f "$log"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz smoke: crashes in ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz smoke: all targets ran ${secs} s without a crash"
