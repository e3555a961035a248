#!/usr/bin/env bash
# Installs what building and testing QA Hub needs, skipping whatever is already there,
# so a warm machine pays nothing and a brand-new one gets everything.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen pinned in Cargo.toml

log() { echo "setup: $*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
  log "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 15 minutes on 2 cores)"
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --locked "cargo-leptos@$CARGO_LEPTOS_VERSION"
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # without --locked: its lockfile wants a crate version the registry mirror lacks
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# sass (the style step), wasm-opt (npm's binaryen: Debian's breaks hydration) and
# Playwright come from npm, pinned by end2end/package-lock.json.
if [ ! -x end2end/node_modules/.bin/sass ] || [ ! -x end2end/node_modules/.bin/wasm-opt ] \
   || [ ! -d end2end/node_modules/@playwright/test ]; then
  log "installing npm packages in end2end/"
  (cd end2end && npm ci --no-audit --no-fund)
fi

# The browser tests drive Debian's chromium, and move a token's clock with sqlite3.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
if [ "${QAHUB_SKIP_BROWSER:-}" != 1 ] && [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian's ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
log "ready"
