#!/usr/bin/env bash
# Installs what building and testing QA Hub needs, skipping whatever is already there,
# so a warm machine pays nothing and a brand-new one gets everything. Each phase prints
# what it does and how long it took; what each took on a fresh 2-core machine is measured
# in one place only, BENCHMARKS.md, "The first run on a fresh machine".
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen pinned in Cargo.toml

export PATH="$HOME/.cargo/bin:$PATH"
log() { echo "setup: $*" >&2; }
started=$SECONDS
phase() { log "$1"; phase_started=$SECONDS; }
if ! cargo leptos --version >/dev/null 2>&1; then
  log "a first run compiles tools; BENCHMARKS.md (\"The first run on a fresh machine\") says how long each phase took there"
fi
done_phase() { log "  done in $((SECONDS - phase_started)) s"; }

# Build tools are compiled once and their speed hardly matters, so they get a cheap
# profile: light optimisation, no LTO, many codegen units. The compressors cargo-leptos
# runs on the release bundle (brotli, gzip) keep full optimisation.
TOOL_PROFILE=(
  --config profile.release.opt-level=1
  --config profile.release.lto=false
  --config profile.release.codegen-units=256
  --config profile.release.debug=0
  --config 'profile.release.package.brotli.opt-level=3'
  --config 'profile.release.package.libflate.opt-level=3'
)

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  phase "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
  done_phase
fi

# Downloads run beside the compiler: npm's sass, wasm-opt (npm's binaryen: Debian's
# breaks hydration) and Playwright, pinned by end2end/package-lock.json, and Debian's
# chromium (the browser tests), sqlite3 (they move a token's clock with it) and pg_dump.
pids=()
if [ ! -x end2end/node_modules/.bin/sass ] || [ ! -x end2end/node_modules/.bin/wasm-opt ] \
   || [ ! -d end2end/node_modules/@playwright/test ]; then
  log "installing npm packages in end2end/ in the background"
  (cd end2end && npm ci --no-audit --no-fund --loglevel=error >/dev/null) &
  pids+=($!)
fi
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v pg_dump >/dev/null || missing+=(postgresql-client)   # the README's PostgreSQL backup commands, tested
if [ "${QAHUB_SKIP_BROWSER:-}" != 1 ] && [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian's ${missing[*]} in the background"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  ( $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null ) &
  pids+=($!)
fi

if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
  phase "building cargo-leptos $CARGO_LEPTOS_VERSION from source (the longest phase)"
  cargo install --locked "${TOOL_PROFILE[@]}" "cargo-leptos@$CARGO_LEPTOS_VERSION"
  done_phase
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  phase "building wasm-bindgen-cli $WASM_BINDGEN_VERSION from source"
  # without --locked: its lockfile wants a crate version the registry mirror lacks
  cargo install "${TOOL_PROFILE[@]}" wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  done_phase
fi

for pid in "${pids[@]}"; do
  wait "$pid" || { log "a background install failed"; exit 1; }
done
log "ready after $((SECONDS - started)) s"
