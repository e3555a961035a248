#!/usr/bin/env bash
# Hostile input, in one command: schemathesis against the served OpenAPI document, then
# every cargo-fuzz target (token format, Authorization header, Playwright and JUnit
# importers), each for FUZZ_SECONDS (600 by default), two at a time on 2 cores.
#   scripts/hostile.sh                 # full run: ~1 min schemathesis + 2 × 10 min fuzzing
#   FUZZ_SECONDS=60 scripts/hostile.sh # a quick pass
# Crashes land in fuzz/artifacts/<target>/ and fail the run; new inputs worth keeping go
# to fuzz/corpus/<target>/ (the committed seeds live there too).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
FUZZ_SECONDS=${FUZZ_SECONDS:-600}
JOBS=${FUZZ_JOBS:-2}
TARGETS=(token_format auth_header import_playwright import_junit)

log() { echo "hostile: $*" >&2; }

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

log "building qahub and running schemathesis"
cargo build -p server --bin qahub
start=$(date +%s)
scripts/schemathesis.sh
log "schemathesis: $(( $(date +%s) - start )) s, no failures"

log "building the fuzz targets (nightly, address sanitizer)"
(cd fuzz && cargo +nightly fuzz build)

run_one() {
  local target=$1
  mkdir -p "fuzz/corpus/$target"
  log "fuzzing $target for $FUZZ_SECONDS s"
  # -max_len: reports are large, tokens and headers small; the importers get room.
  local max_len=4096
  case $target in import_*) max_len=65536 ;; esac
  local status=0
  (cd fuzz && cargo +nightly fuzz run "$target" "corpus/$target" -- \
      -max_total_time="$FUZZ_SECONDS" -max_len="$max_len" -rss_limit_mb=2048 -print_final_stats=1) \
    > "fuzz/$target.log" 2>&1 || status=$?
  log "$target: $(grep -E '^stat::number_of_executed_units' "fuzz/$target.log" | tail -1) (exit $status)"
  return $status
}

failed=0
pids=()
for target in "${TARGETS[@]}"; do
  run_one "$target" &
  pids+=($!)
  if [ "${#pids[@]}" -ge "$JOBS" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
if [ "$failed" != 0 ] || ls fuzz/artifacts/*/crash-* fuzz/artifacts/*/oom-* fuzz/artifacts/*/timeout-* 2>/dev/null; then
  log "a fuzz target failed: see fuzz/<target>.log and fuzz/artifacts/"
  exit 1
fi
log "done: no crashes"
